"""Generations made elsewhere: JSON Lines `{"id", "output"}`, matched to the records of an eval set by id.

What `mdmtune score` reads, so a user can score their own harness's generations with mdmtune's metrics. Ids match
as the eval set's do (1 and "1" are the same id; a record without an id has its line number). Every record needs
exactly one output; an output for no record, a second output for one, or a bad line is refused naming its line.
Pure Python: never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mdmtune.data.evalsets import EvalSet, json_lines
from mdmtune.errors import InvalidInput


def _fail(line: int, message: str) -> InvalidInput:
    return InvalidInput("outputs", f"line {line}: {message}")


def read_outputs(path: str | os.PathLike[str], eval_set: EvalSet) -> list[str]:
    """The output of each record of `eval_set`, in the set's order."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput("outputs", f"no such file: {file}")
    wanted = {str(record.id): index for index, record in enumerate(eval_set.records)}
    found: dict[int, tuple[str, int]] = {}
    for line, obj in json_lines(file.read_bytes(), _fail):
        index, output = _parse_line(obj, line, wanted)
        if index in found:
            raise _fail(
                line,
                f"a second output for id {json.dumps(eval_set.records[index].id)} (first on line {found[index][1]})",
            )
        found[index] = (output, line)
    missing = [record.id for index, record in enumerate(eval_set.records) if index not in found]
    if missing:
        raise InvalidInput("outputs", f"no output for {len(missing)} record(s), first id {json.dumps(missing[0])}")
    return [found[index][0] for index in range(len(eval_set.records))]


def _parse_line(obj: Any, line: int, wanted: dict[str, int]) -> tuple[int, str]:
    if not isinstance(obj, dict) or "id" not in obj or not isinstance(obj.get("output"), str):
        raise _fail(line, 'each line is an object with "id" and "output" (a string)')
    key = str(obj["id"])
    if isinstance(obj["id"], bool) or key not in wanted:
        raise _fail(line, f"id {json.dumps(obj['id'])} is no record of the eval set")
    return wanted[key], obj["output"]
