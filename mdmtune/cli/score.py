"""`mdmtune score`: score generations made elsewhere with the tuner's own scoring code, no model involved.

A user checks mdmtune's metric against the harness they trust before trusting a tuned schedule: same outputs, same
scores. The scoring path is `mdmtune.metrics.score_outputs`, the function the tuner's evaluation calls. The JSON has
the `records` ({id, output, score}, and `reason` for metrics that give one) and `mean_score` of `mdmtune sample --json`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from mdmtune.cli.core import JSON_OPTION
from mdmtune.cli.model_options import Options, with_options
from mdmtune.cli.output import add_reasons, emit_json, records_table, table_console
from mdmtune.data import display


@with_options("score")
def score_command(
    eval_set: Path = typer.Option(..., "--eval-set", help="JSONL eval set (the references)."),
    outputs: Path = typer.Option(..., "--outputs", help='JSONL generations: {"id", "output"} per record.'),
    json_output: bool = JSON_OPTION,
    *,
    options: Options,
) -> None:
    """Score outputs made elsewhere: per-record scores and the mean, exactly as the tuner scores them."""
    from mdmtune.data.evalsets import load_eval_set
    from mdmtune.data.outputs import read_outputs
    from mdmtune.metrics import resolve_metric, score_outputs

    records = load_eval_set(eval_set)
    scorer = resolve_metric(options["metric"], records)
    texts = read_outputs(outputs, records)
    scores, mean = score_outputs(scorer, texts, records.records)
    report = {
        "metric": scorer.name,
        "metric_description": scorer.description,
        "records": [
            {"id": record.id, "output": text, "score": None if math.isnan(score) else float(score)}
            for record, text, score in zip(records.records, texts, scores.tolist(), strict=True)
        ],
        "mean_score": mean,
    }
    add_reasons(report["records"], scorer, records.records)
    if json_output:
        emit_json(report)
    else:
        _print(report)


def _print(report: dict[str, Any]) -> None:
    title = f"metric {report['metric']}: {report['metric_description']}"
    table = records_table(title, report["records"], output_chars=60)
    console = table_console()
    console.print(table)
    console.print(f"mean score {display.score(report['mean_score'])} over {len(report['records'])} records")


def register(app: typer.Typer) -> None:
    """Add `score` to the `mdmtune` command."""
    app.command("score")(score_command)
