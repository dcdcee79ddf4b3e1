"""`mdmtune sample`: one schedule applied to every record of an eval set (README.md).

The way a user checks a schedule by hand, and the unit the tuner repeats: per-record output and score, the mean
score and the NFEs actually spent. Thin: parse, call mdmtune.evaluation, print (one JSON document with --json).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from mdmtune import display
from mdmtune.cli.core import A_OPTION, B_OPTION, JSON_OPTION, NAME_OPTION, pick_schedule
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
    REMASKING_OPTION,
    SAMPLER_OPTION,
    TEMPERATURE_OPTION,
    TRUST_REMOTE_CODE_OPTION,
    load_for_cli,
    print_model_line,
)
from mdmtune.cli.output import add_reasons, emit_json, table_console
from mdmtune.errors import InvalidInput


def sample_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint folder or file (native, hf, torchscript)."),
    eval_set: Path = typer.Option(..., "--eval-set", help="JSONL eval set (completion or infill records)."),
    steps: int | None = typer.Option(None, "--steps", help="N, the number of sampling steps (decoder schedule)."),
    a: float | None = A_OPTION,
    b: float | None = B_OPTION,
    name: str | None = NAME_OPTION,
    metric: str | None = typer.Option(
        None, "--metric", help="Scorer from the metric registry (required unless the eval set declares one)."
    ),
    sampler: str = SAMPLER_OPTION,
    remasking: str = REMASKING_OPTION,
    temperature: float = TEMPERATURE_OPTION,
    gen_length: int | None = GEN_LENGTH_OPTION,
    block_length: int | None = BLOCK_LENGTH_OPTION,
    seed: int = typer.Option(0, "--seed", help="Seeds every record's draws (the tuner uses the same ones)."),
    mask_symbol: str | None = MASK_SYMBOL_OPTION,
    batch_size: int = BATCH_SIZE_OPTION,
    trust_remote_code: bool = TRUST_REMOTE_CODE_OPTION,
    add_special_tokens: bool = ADD_SPECIAL_TOKENS_OPTION,
    chat_template: bool = CHAT_TEMPLATE_OPTION,
    cfg_scale: float = CFG_SCALE_OPTION,
    confidence_dtype: str = CONFIDENCE_DTYPE_OPTION,
    family: str = FAMILY_OPTION,
    decoder: str = typer.Option(
        "schedule",
        "--decoder",
        help="schedule | threshold | entropy | hybrid (the schedule's plan as a floor plus every position above tau).",
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", help="Threshold and hybrid decoders: confidence tau in [0, 1]."
    ),
    entropy_bound: float | None = typer.Option(None, "--entropy-bound", help="Entropy decoder: gamma in nats."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Adaptive decoders: cap on model calls per record."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Apply one schedule (or an adaptive decoder) to every record: output and score per record, mean score, NFEs."""
    # Imported here, not at the top: they pull in torch, which other commands should not wait for.
    from mdmtune.evalsets import load_eval_set
    from mdmtune.evaluation import encode_records, evaluate, evaluate_decoder
    from mdmtune.metrics import resolve_metric
    from mdmtune.sampling import SamplerSettings
    from mdmtune.tuning.quality_objective import model_report

    settings = SamplerSettings(
        sampler,
        remasking,
        temperature,
        block_length,
        cfg_scale=cfg_scale,
        confidence_dtype=confidence_dtype,
        decoder=decoder,
        threshold=threshold,
        entropy_bound=entropy_bound,
        max_steps=max_steps,
    )
    schedule = _schedule_or_none(decoder, steps, a, b, name)
    records = load_eval_set(eval_set)
    scorer = resolve_metric(metric, records)
    denoiser = load_for_cli(checkpoint, family, trust_remote_code)
    encoded = encode_records(
        denoiser,
        records,
        gen_length=gen_length,
        mask_symbol=mask_symbol,
        add_special_tokens=add_special_tokens,
        chat_template=chat_template,
    )
    model = model_report(denoiser, encoded)
    if schedule is None:
        parameter = threshold if decoder == "threshold" else entropy_bound
        result = evaluate_decoder(denoiser, encoded, [parameter], settings, scorer, seed=seed, batch_size=batch_size)
    else:
        result = evaluate(denoiser, encoded, [schedule], steps, settings, scorer, seed=seed, batch_size=batch_size)
    report = {
        "schedule": None if schedule is None else {"name": schedule.name, "a": schedule.a, "b": schedule.b},
        "decoder": decoder,
        "threshold": threshold,
        "entropy_bound": entropy_bound,
        "max_steps": max_steps,
        "steps": steps,
        "sampler": settings.sampler,
        "remasking": settings.remasking,
        "temperature": settings.temperature,
        "gen_length": gen_length,
        "block_length": block_length,
        "metric": scorer.name,
        "cfg_scale": settings.cfg_scale,
        "confidence_dtype": settings.confidence_dtype,
        "model": model,
        "records": [
            {"id": record.id, "output": outputs[0], "score": _score(score), "nfe": int(calls[0])}
            for record, outputs, score, calls in zip(
                records.records, result.outputs[0], result.scores[0, :, 0], result.row_nfe[0], strict=True
            )
        ],
        "mean_score": float(result.mean_scores()[0]),
        "nfe": result.nfe,
        "nfe_per_record": float(result.row_nfe.mean()),
    }
    add_reasons(report["records"], scorer, records.records)
    print_model_line(model)
    if json_output:
        emit_json(report)
    else:
        _print(report)


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
    table = Table(title=f"{_title(report)}, metric {report['metric']}")
    reasons = any("reason" in row for row in report["records"])
    columns = ("id", "output", "score", "reason") if reasons else ("id", "output", "score")
    for column in columns:
        table.add_column(column)
    for row in report["records"]:
        table.add_row(str(row["id"]), row["output"], display.score(row["score"]), *([row["reason"]] if reasons else []))
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
