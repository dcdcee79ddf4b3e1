"""`mdmtune evalset convert`: a benchmark file the user has (HumanEval, MBPP, GSM8K, MATH, BBH) -> an eval set.

Thin: parse, call mdmtune.data.convert, report. Nothing is downloaded; the prompt conventions are in that module
and in docs/evalsets.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mdmtune.cli.core import JSON_OPTION
from mdmtune.cli.output import emit_json

evalset_app = typer.Typer(
    help="Eval-set tools: convert benchmark files into eval sets.", no_args_is_help=True, rich_markup_mode=None
)


@evalset_app.command("convert")
def convert_command(
    source: Path = typer.Argument(..., help="The benchmark file: JSON Lines or Parquet, gzip-compressed or not."),
    target: Path = typer.Argument(..., help="The eval set to write (JSON Lines)."),
    fmt: str = typer.Option(..., "--format", help="humaneval | mbpp | gsm8k | math | bbh."),
    fewshot: Path | None = typer.Option(
        None,
        "--fewshot-from",
        help="A file of the same format whose first --shots rows prefix every prompt (never a record's own row).",
    ),
    shots: int = typer.Option(0, "--shots", help="Few-shot examples (LLaDA: gsm8k 4, math 4, mbpp 3, bbh 3)."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Convert a benchmark file into an eval set whose records declare their metric."""
    from mdmtune.data.convert import convert_file

    written = convert_file(fmt, source, target, fewshot=fewshot, shots=shots, warn=_warn)
    metric = written.declared_metric
    report = {"path": str(target), "records": len(written), "format": fmt, "shots": shots, "metric": metric}
    if json_output:
        emit_json(report)
    else:
        typer.echo(f"wrote {len(written)} {fmt} records to {target} (metric {metric}, {shots} shots)")


def _warn(message: str) -> None:
    sys.stderr.write(f"mdmtune: warning: {message}\n")
    sys.stderr.flush()


def register(app: typer.Typer) -> None:
    """Add the `evalset` command group to the `mdmtune` command."""
    app.add_typer(evalset_app, name="evalset")
