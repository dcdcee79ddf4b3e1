"""Eval sets: JSON Lines, one record a line, UTF-8 (INTERFACES.md "Eval sets").

A completion record is {"id", "prompt", "answer"}, an infill record {"id", "masked", "answer"}; other fields are kept
in `extra` and ignored. Parsing validates the whole set before returning anything, so a caller never stores or scores
half a set, and every error names its line because the person reading it has the file, not the code. Pure Python:
never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdmtune.errors import InvalidInput
from mdmtune.jsonsafe import MAX_JSON_DEPTH, json_depth

KINDS: tuple[str, ...] = ("completion", "infill")
_TEXT_FIELD = {"completion": "prompt", "infill": "masked"}


@dataclass(frozen=True)
class EvalRecord:
    """One validated record; `line` is its 1-based line in the file (0 for records not read from a file)."""

    id: str | int
    kind: str
    prompt: str | None
    masked: str | None
    answer: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0

    @property
    def text(self) -> str:
        """The given text the model conditions on: the prompt (completion) or the masked text (infill)."""
        return self.prompt if self.kind == "completion" else self.masked  # type: ignore[return-value]

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object again, extra fields included."""
        return {"id": self.id, _TEXT_FIELD[self.kind]: self.text, "answer": self.answer, **self.extra}


@dataclass(frozen=True)
class EvalSet:
    """A validated eval set: its records (all of one kind) and the sha256 of the bytes it was parsed from."""

    records: tuple[EvalRecord, ...]
    kind: str
    sha256: str

    def __len__(self) -> int:
        return len(self.records)


def _fail(line: int, message: str) -> InvalidInput:
    return InvalidInput("eval_set", f"line {line}: {message}")


def _decode(data: bytes) -> str:
    """UTF-8 text of `data` (a leading byte-order mark dropped); bad bytes are reported with their line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise _fail(line, f"not valid UTF-8 ({error.reason} at byte {error.start})") from None


def _parse_record(raw: str, line: int) -> EvalRecord:
    """One non-blank line -> EvalRecord, or InvalidInput naming the line and the field."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as error:
        raise _fail(line, f"not valid JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:  # the parser recurses per level: a hostile line can exhaust the stack
        raise _fail(line, f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    if json_depth(obj) > MAX_JSON_DEPTH:
        raise _fail(line, f"nested deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(obj, dict):
        raise _fail(line, f"a record must be a JSON object, got {type(obj).__name__}")
    record_id = obj.get("id")
    if "id" not in obj:
        raise _fail(line, 'missing field "id"')
    if isinstance(record_id, bool) or not isinstance(record_id, (str, int)):
        raise _fail(line, f'"id" must be a string or an integer, got {json.dumps(record_id)}')
    present = [kind for kind in KINDS if _TEXT_FIELD[kind] in obj]
    if len(present) != 1:
        which = "both" if present else "neither"
        raise _fail(line, f'a record has exactly one of "prompt" (completion) or "masked" (infill); this has {which}')
    kind = present[0]
    for name in (_TEXT_FIELD[kind], "answer"):
        if name not in obj:
            raise _fail(line, f'missing field "{name}"')
        if not isinstance(obj[name], str):
            raise _fail(line, f'"{name}" must be a string, got {json.dumps(obj[name])}')
    extra = {key: value for key, value in obj.items() if key not in ("id", _TEXT_FIELD[kind], "answer")}
    return EvalRecord(
        id=record_id,
        kind=kind,
        prompt=obj.get("prompt"),
        masked=obj.get("masked"),
        answer=obj["answer"],
        extra=extra,
        line=line,
    )


def parse_eval_set(data: bytes) -> EvalSet:
    """Validate JSONL bytes into an EvalSet; the first bad line raises InvalidInput(field="eval_set").

    Blank lines are skipped. All records must be of one kind. Ids must be unique; 1 and "1" count as the same id,
    because outputs are reported in JSON objects keyed by id.
    """
    text = _decode(data)
    records: list[EvalRecord] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        record = _parse_record(raw, line)
        if records and record.kind != records[0].kind:
            first = records[0]
            raise _fail(line, f"a {record.kind} record in a set of {first.kind} records (line {first.line})")
        key = str(record.id)
        if key in seen:
            raise _fail(line, f"duplicate id {json.dumps(record.id)} (first on line {seen[key]})")
        seen[key] = line
        records.append(record)
    if not records:
        raise InvalidInput("eval_set", "no records: an eval set needs at least one JSON object line")
    return EvalSet(records=tuple(records), kind=records[0].kind, sha256=hashlib.sha256(data).hexdigest())


def load_eval_set(path: str | os.PathLike[str]) -> EvalSet:
    """Read and validate the JSONL file at `path`."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput("eval_set", f"no such file: {file}")
    return parse_eval_set(file.read_bytes())


def dumps_eval_set(records: Iterable[EvalRecord | Mapping[str, Any]]) -> bytes:
    """JSONL bytes of `records` (EvalRecords or plain dicts), one compact object a line, UTF-8."""
    lines = [
        json.dumps(r.to_json() if isinstance(r, EvalRecord) else dict(r), ensure_ascii=False, separators=(",", ":"))
        for r in records
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_eval_set(records: Iterable[EvalRecord | Mapping[str, Any]], path: str | os.PathLike[str]) -> EvalSet:
    """Validate `records`, then write them to `path` atomically (temporary file + rename); returns the written set.

    Validation first and the rename last mean a reader sees either the old file or the complete new one.
    """
    data = dumps_eval_set(records)
    eval_set = parse_eval_set(data)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; an eval set is a shared, readable file
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return eval_set
