"""`mdmtune sample`: one schedule applied to every record of an eval set (README.md).

The way a user checks a schedule by hand, and the unit the tuner repeats: per-record output and score, the mean
score and the NFEs actually spent. Thin: parse, call mdmtune.tuning.evaluation, print (one JSON document with --json).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mdmtune.cli.core import A_OPTION, B_OPTION, JSON_OPTION, NAME_OPTION, pick_schedule
from mdmtune.cli.model_options import (
    Options,
    check_reading,
    encode_for_cli,
    load_for_cli,
    part_values,
    print_model_line,
    with_options,
)
from mdmtune.cli.output import add_reasons, emit_json, records_table, table_console
from mdmtune.data import display
from mdmtune.errors import InvalidInput
from mdmtune.options import BY_NAME
from mdmtune.options.checks import check_value

if TYPE_CHECKING:
    from mdmtune.data.evalsets import EvalSet
    from mdmtune.tuning.evaluation import Evaluation


@with_options("sample")
def sample_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint folder or file (native, hf, torchscript)."),
    eval_set: Path = typer.Option(..., "--eval-set", help="JSONL eval set (completion or infill records)."),
    steps: int | None = typer.Option(None, "--steps", help="N, the number of sampling steps (decoder schedule)."),
    a: float | None = A_OPTION,
    b: float | None = B_OPTION,
    name: str | None = NAME_OPTION,
    json_output: bool = JSON_OPTION,
    *,
    options: Options,
) -> None:
    """Apply one schedule (or an adaptive decoder) to every record: output and score per record, mean score, NFEs."""
    # Imported here, not at the top: they pull in torch, which other commands should not wait for.
    from mdmtune.data.evalsets import load_eval_set
    from mdmtune.metrics import resolve_metric
    from mdmtune.sampling import SamplerSettings
    from mdmtune.tuning.evaluation import evaluate, evaluate_decoder
    from mdmtune.tuning.quality_objective import model_report

    settings = SamplerSettings(**part_values(options, "sampling"))
    _check_counts(steps, options)
    schedule = _schedule_or_none(settings.decoder, steps, a, b, name)
    records = load_eval_set(eval_set)
    scorer = resolve_metric(options["metric"], records)
    denoiser = load_for_cli(checkpoint, options["family"], options["trust_remote_code"])
    encoded = encode_for_cli(denoiser, records, options)
    model = model_report(denoiser, encoded)
    seed, batch_size = options["seed"], options["batch_size"]
    if schedule is None:
        parameter = settings.threshold if settings.decoder == "threshold" else settings.entropy_bound
        result = evaluate_decoder(denoiser, encoded, [parameter], settings, scorer, seed=seed, batch_size=batch_size)
    else:
        result = evaluate(denoiser, encoded, [schedule], steps, settings, scorer, seed=seed, batch_size=batch_size)
    report = {
        "schedule": None if schedule is None else {"name": schedule.name, "a": schedule.a, "b": schedule.b},
        "steps": steps,
        "gen_length": options["gen_length"],
        "metric": scorer.name,
        **settings.values(),  # every sampler setting, as used
        "model": model,
        **_scores(records, result),
    }
    add_reasons(report["records"], scorer, records.records)
    print_model_line(model)
    if json_output:
        emit_json(report)
    else:
        _print(report)


def _scores(records: EvalSet, result: Evaluation) -> dict[str, Any]:
    """Each record's output, score and model calls, then the mean score and the NFEs."""
    rows = zip(records.records, result.outputs[0], result.scores[0, :, 0], result.row_nfe[0], strict=True)
    return {
        "records": [
            {"id": record.id, "output": outputs[0], "score": _score(score), "nfe": int(calls[0])}
            for record, outputs, score, calls in rows
        ],
        "mean_score": float(result.mean_scores()[0]),
        "nfe": result.nfe,
        "nfe_per_record": float(result.row_nfe.mean()),
    }


def _check_counts(steps: int | None, options: Options) -> None:
    """What no part built here checks, by its declaration: how the checkpoint is read, the seed and N."""
    check_reading(options)
    check_value(BY_NAME["seed"], options["seed"])
    if steps is not None:
        check_value(BY_NAME["steps"], steps)


def _schedule_or_none(decoder: str, steps: int | None, a: float | None, b: float | None, name: str | None) -> Any:
    """The schedule and hybrid decoders need --steps and a schedule (the hybrid's is its floor); the adaptive ones
    decide their own steps and take neither."""
    if decoder in ("schedule", "hybrid"):
        if steps is None:
            raise InvalidInput("steps", f"give --steps N (the {decoder} decoder's plan; or threshold or entropy)")
        return pick_schedule(a, b, name)
    for field, value in (("steps", steps), ("a", a), ("b", b), ("name", name)):
        if value is not None:
            raise InvalidInput(field, f"the {decoder} decoder decides its own steps; drop --{field} (see --max-steps)")
    return None


def _score(value: float) -> float | None:
    """A set-level metric has no per-record score: null, not NaN."""
    return None if math.isnan(value) else float(value)


def _print(report: dict[str, Any]) -> None:
    table = records_table(f"{_title(report)}, metric {report['metric']}", report["records"])
    console = table_console()
    console.print(table)
    console.print(
        f"mean score {display.score(report['mean_score'])}   nfe {report['nfe']} "
        f"(per record {report['nfe_per_record']:.2f})"
    )


def _title(report: dict[str, Any]) -> str:
    if report["decoder"] == "hybrid":
        floor = f"{report['schedule']['name']}, N = {report['steps']}"
        return f"hybrid decoder, floor {floor}, tau = {display.parameter(report['threshold'])}"
    if report["schedule"] is not None:
        return f"{report['schedule']['name']}, N = {report['steps']}"
    if report["decoder"] == "threshold":
        return f"threshold decoder, tau = {display.parameter(report['threshold'])}"
    return f"entropy decoder, gamma = {display.parameter(report['entropy_bound'])}"


def register(app: typer.Typer) -> None:
    """Add `sample` to the `mdmtune` command."""
    app.command("sample")(sample_command)
