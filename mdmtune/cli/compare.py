"""`mdmtune compare`: several schedules on the same records with the same noise, with intervals and per-group results.

The check to run before deploying a tuned schedule on other data: `--schedules linear,cos2,0.3475:0.7776` on the
user's own eval set. Thin: parse, call mdmtune.tuning.compare, print a table (or one JSON document with --json).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mdmtune.cli.core import JSON_OPTION
from mdmtune.cli.model_options import (
    Options,
    check_reading,
    load_for_cli,
    part_values,
    print_model_line,
    with_options,
)
from mdmtune.cli.output import emit_json, table_console, to_jsonable
from mdmtune.data import display
from mdmtune.errors import InvalidInput
from mdmtune.options import BY_NAME
from mdmtune.options.checks import check_value

BOOTSTRAP_LIMIT = 100_000


@with_options("compare")
def compare_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint folder or file (native, hf, torchscript)."),
    eval_set: Path = typer.Option(..., "--eval-set", help="JSONL eval set; records may carry a `group` field."),
    steps: int = typer.Option(..., "--steps", help="N, the number of sampling steps."),
    schedules: str = typer.Option(
        ..., "--schedules", help="Comma-separated: linear, cos2, sine or Beta points a:b (e.g. 0.3475:0.7776)."
    ),
    baseline: str = typer.Option("linear", "--baseline", help="The schedule every other one is compared with."),
    resamples: int = typer.Option(10_000, "--resamples", help="Bootstrap resamples of the paired differences."),
    per_record: bool = typer.Option(False, "--per-record", help="JSON: add every record's score per schedule."),
    json_output: bool = JSON_OPTION,
    *,
    options: Options,
) -> None:
    """Score several schedules on the same records: Wilson intervals, paired differences to the baseline, groups."""
    from mdmtune.data.evalsets import load_eval_set
    from mdmtune.metrics import resolve_metric
    from mdmtune.sampling import SamplerSettings
    from mdmtune.tuning.compare import compare, parse_schedules, with_baseline

    items = with_baseline(parse_schedules(schedules), baseline)
    _check_counts(steps, resamples, options)
    settings = SamplerSettings(**part_values(options, "sampling"))
    records = load_eval_set(eval_set)
    metric_name = resolve_metric(options["metric"], records).name
    denoiser = load_for_cli(checkpoint, options["family"], options["trust_remote_code"])
    result = compare(
        denoiser, records, items, steps, settings, metric_name, baseline=baseline, gen_length=options["gen_length"],
        mask_symbol=options["mask_symbol"], seed=options["seed"], replicates=options["replicates"],
        batch_size=options["batch_size"], resamples=resamples, on_schedule=_progress,
        add_special_tokens=options["add_special_tokens"], chat_template=options["chat_template"],
    )  # fmt: skip
    report = to_jsonable(result)
    report["groups"] = report["groups"]["strata"]
    report["losses"] = to_jsonable(result.groups.losses)
    report["loss_confidence"] = result.groups.loss_confidence
    if not per_record:
        report.pop("per_record")
        report.pop("record_ids")
    print_model_line(report["model"])
    if json_output:
        emit_json(report)
    else:
        _print(report)


def _check_counts(steps: int, resamples: int, options: Options) -> None:
    """The numbers compare takes beside its sampler settings, by their declarations (resamples is its own)."""
    for name in ("replicates", "seed"):
        check_value(BY_NAME[name], options[name])
    check_value(BY_NAME["steps"], steps)
    check_reading(options)
    if resamples < 100 or resamples > BOOTSTRAP_LIMIT:
        raise InvalidInput("resamples", f"must be an integer in [100, {BOOTSTRAP_LIMIT}], got {resamples}")


def _progress(done: int, total: int) -> None:
    sys.stderr.write(f"schedules sampled: {done}/{total}\n")
    sys.stderr.flush()


def _diff(value: float, ci: list[float] | None) -> str:
    return f"{display.diff(value)} {display.interval(ci, signed=True)}".rstrip()


def _print(report: dict[str, Any]) -> None:
    console = table_console()
    title = f"mdmtune compare: N = {report['steps']}, metric {report['metric']}, {report['records']} records"
    table = Table(title=title)
    for column in ("schedule", "a", "b", "score", "95% CI", f"- {report['baseline']} [95% CI]", "NFE"):
        table.add_column(column)
    for row in report["schedules"]:
        baseline = row["name"] == report["baseline"]
        diff = "baseline" if baseline else _diff(row["diff_vs_baseline"], row["diff_ci"])
        a, b = display.parameter(row["a"]), display.parameter(row["b"])
        table.add_row(
            row["name"], a, b, display.score(row["score"]), display.interval(row["ci"]), diff, str(row["nfe"])
        )
    console.print(table)
    print_groups(console, report["groups"], f"records; difference to {report['baseline']}")
    for loss in report["losses"]:
        console.print(
            f"[yellow]{loss['schedule']} loses to {loss['reference']} on {loss['stratum']} = {loss['group']} "
            f"({loss['records']} records): {display.diff(loss['diff'])}, {100 * loss['confidence']:.2f}% CI "
            f"{display.interval(loss['diff_ci'], signed=True)}[/yellow]"
        )


def print_groups(
    console: Console, strata: dict[str, list[dict[str, Any]]], what: str, diff_column: str = "schedule"
) -> None:
    """One table per stratum: each group's scores and, in brackets, its paired differences with 95% intervals,
    shown in the column of the diff's `schedule` (compare: each against the baseline) or `reference` (tune: the
    best against each baseline)."""
    for stratum, groups in strata.items():
        _print_stratum(console, stratum, groups, what, diff_column)


def _print_stratum(console: Console, stratum: str, groups: list[dict[str, Any]], what: str, diff_column: str) -> None:
    names = list(groups[0]["scores"]) if groups else []
    table = Table(title=f"by {stratum} ({what})")
    for column in (stratum, "records", *names):
        table.add_column(column)
    for group in groups:
        diffs = {d[diff_column]: d for d in group["diffs"]}
        cells = []
        for name in names:
            cell = display.score(group["scores"][name])
            if name in diffs:
                cell += f" ({_diff(diffs[name]['diff'], diffs[name]['diff_ci'])})"
            cells.append(cell)
        table.add_row(group["label"], str(group["records"]), *cells)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `compare` to the `mdmtune` command."""
    app.command("compare")(compare_command)
