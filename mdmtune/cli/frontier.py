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

from mdmtune.cli.model_options import Options, print_model_line, spec_values, with_options
from mdmtune.cli.output import emit_json, to_jsonable
from mdmtune.data import display
from mdmtune.errors import InvalidInput
from mdmtune.options.limits import MAX_BUDGETS
from mdmtune.options.names import DEFAULT_TRIALS


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


@with_options("frontier", defaults={"n_trials": DEFAULT_TRIALS["frontier"]})
def frontier_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint folder or file (native, hf, torchscript)."),
    eval_set: Path = typer.Option(..., "--eval-set", help="JSONL eval set (completion or infill records)."),
    budgets: str = typer.Option("4,8,16", "--budgets", help="Mean model calls per record, e.g. 4,8,16."),
    out: Path | None = typer.Option(None, "--out", help="Folder for frontier.json and frontier.png."),
    no_figures: bool = typer.Option(False, "--no-figures", help="Skip the figure."),
    json_output: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    *,
    options: Options,
) -> None:
    """Quality per model call: at each budget, the best schedule against the adaptive decoders."""
    from mdmtune.tuning.spec import TuneSpec

    spec = TuneSpec(objective="frontier", steps=parse_budgets(budgets), **spec_values(options))
    trust_remote_code = options["trust_remote_code"]
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
