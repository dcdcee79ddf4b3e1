"""`mdmtune frontier`: which decoding policy wins at each budget of model calls per record, on the user's model.

`mdmtune frontier --checkpoint CK --eval-set E --metric M --budgets 4,8,16 [--json]`: the tuned Beta schedule,
linear and cos2 at N = B, the threshold and entropy decoders tuned to at most B calls per record, and the hybrid
(the tuned plan at N = B as its floor, tau swept), chosen on a search split and scored on a confirm split
(mdmtune.tuning.frontier). Self-contained: every setting has a default and the command loads the checkpoint, the
eval set, tunes, scores, writes `frontier.json` and `frontier.png` under --out, and prints a table (or one JSON
document with --json). Progress goes to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mdmtune import display
from mdmtune.cli.model_options import (
    ADD_SPECIAL_TOKENS_OPTION,
    BATCH_SIZE_OPTION,
    BLOCK_LENGTH_OPTION,
    CFG_SCALE_OPTION,
    CHAT_TEMPLATE_OPTION,
    CONFIDENCE_DTYPE_OPTION,
    FAMILY_OPTION,
    GEN_LENGTH_OPTION,
    MASK_SYMBOL_OPTION,
    TEMPERATURE_OPTION,
    TRUST_REMOTE_CODE_OPTION,
    print_model_line,
)
from mdmtune.cli.output import emit_json, to_jsonable
from mdmtune.cli.tune import parse_bounds
from mdmtune.errors import InvalidInput
from mdmtune.tuning.limits import MAX_BUDGETS


def parse_budgets(text: str) -> tuple[int, ...]:
    """ "4,8,16" -> (4, 8, 16): distinct integers >= 1, at most MAX_BUDGETS of them."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InvalidInput("budgets", f"must be comma-separated integers such as 4,8,16, got {text!r}") from None
    if not values or len(values) > MAX_BUDGETS:
        raise InvalidInput("budgets", f"give 1 to {MAX_BUDGETS} budgets, got {len(values)}")
    if any(v < 1 for v in values) or len(set(values)) != len(values):
        raise InvalidInput("budgets", f"must be distinct integers >= 1, got {list(values)}")
    return tuple(sorted(values))


def frontier_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint folder or file (native, hf, torchscript)."),
    eval_set: Path = typer.Option(..., "--eval-set", help="JSONL eval set (completion or infill records)."),
    metric: str | None = typer.Option(
        None, "--metric", help="Scorer from the metric registry; default: the one the eval set declares."
    ),
    budgets: str = typer.Option("4,8,16", "--budgets", help="Mean model calls per record, e.g. 4,8,16."),
    trials: int = typer.Option(40, "--trials", help="Trials of the Beta search at each budget."),
    temperature: float = TEMPERATURE_OPTION,
    gen_length: int | None = GEN_LENGTH_OPTION,
    block_length: int | None = BLOCK_LENGTH_OPTION,
    seed: int = typer.Option(0, "--seed", help="Seeds the split, the searches, the sampler and the bootstrap."),
    subset_size: int | None = typer.Option(None, "--subset-size", help="Search-split records used (default all)."),
    replicates: int = typer.Option(1, "--replicates", help="Samples per record (common random numbers)."),
    confirm_fraction: float = typer.Option(0.3, "--confirm-fraction", help="Share held out for confirmation."),
    mask_symbol: str | None = MASK_SYMBOL_OPTION,
    a_bounds: str | None = typer.Option(None, "--a-bounds", help="Log-uniform range of a, 'low,high'."),
    b_bounds: str | None = typer.Option(None, "--b-bounds", help="Log-uniform range of b, 'low,high'."),
    batch_size: int = BATCH_SIZE_OPTION,
    trust_remote_code: bool = TRUST_REMOTE_CODE_OPTION,
    add_special_tokens: bool = ADD_SPECIAL_TOKENS_OPTION,
    chat_template: bool = CHAT_TEMPLATE_OPTION,
    cfg_scale: float = CFG_SCALE_OPTION,
    confidence_dtype: str = CONFIDENCE_DTYPE_OPTION,
    family: str = FAMILY_OPTION,
    out: Path | None = typer.Option(None, "--out", help="Folder for frontier.json and frontier.png."),
    no_figures: bool = typer.Option(False, "--no-figures", help="Skip the figure."),
    json_output: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Quality per model call: at each budget, the best schedule against the adaptive decoders."""
    from mdmtune.tuning.spec import TuneSpec

    spec = TuneSpec(
        objective="frontier",
        steps=parse_budgets(budgets),
        n_trials=trials,
        a_bounds=parse_bounds(a_bounds, "a_bounds"),
        b_bounds=parse_bounds(b_bounds, "b_bounds"),
        seed=seed,
        gen_length=gen_length,
        block_length=block_length,
        temperature=temperature,
        metric=metric,
        subset_size=subset_size,
        replicates=replicates,
        confirm_fraction=confirm_fraction,
        mask_symbol=mask_symbol,
        batch_size=batch_size,
        add_special_tokens=add_special_tokens,
        chat_template=chat_template,
        cfg_scale=cfg_scale,
        confidence_dtype=confidence_dtype,  # type: ignore[arg-type]
        family=family,
    ).validate()
    result = _run(spec, checkpoint, eval_set, trust_remote_code)
    folder = out if out is not None else Path("runs") / f"frontier-{_digest(spec)}"
    folder.mkdir(parents=True, exist_ok=True)
    if not no_figures:
        from mdmtune.plots.frontier import plot_frontier

        result.figures["frontier"] = str(plot_frontier(result, folder / "frontier.png"))
    (folder / "frontier.json").write_text(json.dumps(to_jsonable(result), indent=1) + "\n")
    print_model_line(result.model)
    if json_output:
        emit_json(result)
    else:
        _print(result, folder)


def _digest(spec: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def _run(spec: Any, checkpoint: Path, eval_set: Path, trust_remote_code: bool) -> Any:
    import optuna

    from mdmtune.cli.model_options import load_for_cli
    from mdmtune.tuning.cache import path_sha256
    from mdmtune.tuning.frontier import run_frontier

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    model = load_for_cli(checkpoint, spec.family, trust_remote_code)

    def say(message: str) -> None:
        sys.stderr.write(f"frontier: {message}\n")
        sys.stderr.flush()

    return run_frontier(spec, checkpoint=model, eval_set=eval_set, checkpoint_sha=path_sha256(checkpoint), progress=say)


def _parameters(point: Any) -> str:
    if point.decoder == "schedule":
        return f"a={display.parameter(point.a)} b={display.parameter(point.b)} N={point.steps}"
    if point.decoder == "threshold":
        return f"tau={display.parameter(point.threshold)}"
    if point.decoder == "hybrid":
        floor = f"a={display.parameter(point.a)} b={display.parameter(point.b)} N={point.steps}"
        return f"{floor} tau={display.parameter(point.threshold)}"
    return f"gamma={display.parameter(point.entropy_bound)}"


def _print(result: Any, folder: Path) -> None:
    console = Console()
    if not console.is_terminal:
        console.width = 150  # a log file or a pipe: keep each row on one line
    title = f"mdmtune frontier: {result.metric}, confirm split of {result.confirm_records} records"
    table = Table(title=title)
    for column in ("budget", "policy", "parameters", "NFE/record", "score", "95% CI", "vs linear [95% CI]", ""):
        table.add_column(column)
    for budget in result.frontier:
        for point in budget.points:
            mark = "winner" if point is budget.winner else ("" if point.within_budget else "over budget")
            table.add_row(
                str(budget.budget),
                point.name,
                _parameters(point),
                f"{point.nfe_per_record:.2f}",
                display.score(point.score),
                display.interval(point.ci),
                f"{display.diff(point.diff_vs_linear)} {display.interval(point.diff_vs_linear_ci, signed=True)}",
                mark,
            )
    console.print(table)
    console.print(
        f"NFEs: {result.nfe} model calls ({result.row_nfe} per-row); wall time {result.wall_time_s:.1f} s; "
        f"records: search {result.search_records}, confirm {result.confirm_records}"
    )
    for kind, path in result.figures.items():
        console.print(f"figure {kind}: {path}")
    console.print(f"result: {folder / 'frontier.json'}")


def register(app: typer.Typer) -> None:
    """Add `frontier` to the `mdmtune` command."""
    app.command("frontier")(frontier_command)
