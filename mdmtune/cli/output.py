"""How every command reports: one JSON document on stdout with --json, rich text otherwise, errors as one line.

Kept in one place so that every command writes infinities, numpy scalars and arrays the same way
(the contract of every command: infinite values are the string "inf").
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from mdmtune.data.jsonsafe import to_jsonable

__all__ = ["add_reasons", "emit_json", "fail", "records_table", "table_console", "to_jsonable"]

PIPE_WIDTH = 150


def emit_json(document: Any) -> None:
    """Write one JSON document on stdout and nothing else."""
    sys.stdout.write(json.dumps(to_jsonable(document)) + "\n")
    sys.stdout.flush()


def fail(reason: str, code: int = 2) -> NoReturn:
    """Exit with `code` after one line on stderr (bad input is exit 2 with a one-line reason, as every command does)."""
    sys.stderr.write(f"mdmtune: error: {reason}\n")
    raise SystemExit(code)


def add_reasons(rows: list[dict[str, Any]], metric: Any, records: Sequence[Any]) -> None:
    """Give each record row its `reason` (pass_at_1: the sandbox's verdict) when the metric has reasons."""
    reasons = metric.reasons([row["output"] for row in rows], records)
    if reasons is not None:
        for row, reason in zip(rows, reasons, strict=True):
            row["reason"] = reason


def table_console() -> Any:
    """A rich Console for stdout; writing to a log file or a pipe it is PIPE_WIDTH wide, so that a table's rows and
    intervals stay on one line each (rich would wrap them at 80 columns)."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    return console


def records_table(title: str, rows: list[dict[str, Any]], output_chars: int | None = None) -> Any:
    """The per-record table of `sample` and `score`: id, output (cut to `output_chars`), score, and the metric's
    reason where it gives one."""
    from rich.table import Table

    from mdmtune.data import display

    table = Table(title=title)
    reasons = any("reason" in row for row in rows)
    for column in ("id", "output", "score", "reason") if reasons else ("id", "output", "score"):
        table.add_column(column)
    for row in rows:
        output = row["output"]
        if output_chars is not None and len(output) > output_chars:
            output = output[: output_chars - 3] + "..."
        table.add_row(str(row["id"]), output, display.score(row["score"]), *([row["reason"]] if reasons else []))
    return table
