"""Eval sets: JSON Lines, one record a line, UTF-8 (README.md "Eval sets").

A completion record is {"prompt", "answer"}, an infill record {"masked", "answer"}, each with an optional "id"
(default: the record's line number, so a set written by hand needs none); a chat completion record carries
`messages` (a list of {"role", "content"}) instead of `prompt`, rendered by the model's chat template when the set
is encoded; other fields are kept in `extra` and ignored by the sampler (metrics read the ones they need: a code
record's "test" and "entry_point"). A set may declare the metric it is scored with by a "metric" field on its
records (the same on every record). Parsing validates the whole set before returning anything, so a caller never
stores or scores half a set, and every error names its line because the person reading it has the file, not the
code. Pure Python: never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
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
    messages: tuple[Mapping[str, str], ...] | None = None
    """A chat (completion records only), given instead of a prompt."""

    @property
    def text(self) -> str:
        """The given text the model conditions on: the prompt (completion) or the masked text (infill)."""
        return self.prompt if self.kind == "completion" else self.masked  # type: ignore[return-value]

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object again, extra fields included."""
        if self.messages is not None:
            given: dict[str, Any] = {"messages": [dict(m) for m in self.messages]}
        else:
            given = {_TEXT_FIELD[self.kind]: self.text}
        return {"id": self.id, **given, "answer": self.answer, **self.extra}


@dataclass(frozen=True)
class EvalSet:
    """A validated eval set: its records (all of one kind) and the sha256 of the bytes it was parsed from."""

    records: tuple[EvalRecord, ...]
    kind: str
    sha256: str

    @property
    def declared_metric(self) -> str | None:
        """The metric the set's records name in their "metric" field (parse_eval_set checked they agree), or None."""
        value = self.records[0].extra.get("metric")
        return value if isinstance(value, str) else None

    def __len__(self) -> int:
        return len(self.records)


def where(record: EvalRecord) -> str:
    """How an error names a record: its id, and its line when it was read from a file."""
    return f"record {record.id!r}" + (f" (line {record.line})" if record.line else "")


def _fail(line: int, message: str) -> InvalidInput:
    return InvalidInput("eval_set", f"line {line}: {message}")


def json_lines(data: bytes, fail: Callable[[int, str], InvalidInput]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of every non-blank line of JSON Lines bytes; `fail(line, message)` makes the error.

    The one reader of user JSON Lines (eval sets, outputs to score, benchmark files to convert): bad UTF-8, bad JSON
    and hostile nesting are each reported with their line, never as a parser's own exception.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise fail(line, f"not valid UTF-8 ({error.reason} at byte {error.start})") from None
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as error:
            raise fail(line, f"not valid JSON ({error.msg} at column {error.colno})") from None
        except RecursionError:  # the parser recurses per level: a hostile line can exhaust the stack
            raise fail(line, f"nested deeper than {MAX_JSON_DEPTH} levels") from None
        if json_depth(value) > MAX_JSON_DEPTH:
            raise fail(line, f"nested deeper than {MAX_JSON_DEPTH} levels")
        yield line, value


def _parse_record(obj: Any, line: int) -> EvalRecord:
    """One parsed line -> EvalRecord, or InvalidInput naming the line and the field."""
    if not isinstance(obj, dict):
        raise _fail(line, f"a record must be a JSON object, got {type(obj).__name__}")
    record_id = obj.get("id", line)
    if isinstance(record_id, bool) or not isinstance(record_id, (str, int)):
        raise _fail(line, f'"id" must be a string or an integer, got {json.dumps(record_id)}')
    if "messages" in obj and "prompt" not in obj and "masked" not in obj:
        return _chat_record(obj, record_id, line)
    present = [kind for kind in KINDS if _TEXT_FIELD[kind] in obj]
    if len(present) != 1:
        which = "both" if present else "neither"
        raise _fail(line, f'a record has exactly one of "prompt" (completion) or "masked" (infill); this has {which}')
    kind = present[0]
    if "answer" not in obj and _answer_optional(obj):
        obj = {**obj, "answer": ""}
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


def _answer_optional(obj: dict[str, Any]) -> bool:
    """A code record (a `test`, or the declared metric pass_at_1) needs no answer: pass_at_1 runs the test, never
    reads the reference; a missing answer reads as ""."""
    return "test" in obj or obj.get("metric") == "pass_at_1"


def _chat_record(obj: dict[str, Any], record_id: str | int, line: int) -> EvalRecord:
    """A completion record whose prompt is a chat: `messages`, a non-empty list of {"role", "content"} strings."""
    messages = obj["messages"]
    if not isinstance(messages, list) or not messages:
        raise _fail(line, '"messages" must be a non-empty list of {"role", "content"} objects')
    for index, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("role"), str)
            or not isinstance(message.get("content"), str)
        ):
            raise _fail(line, f'"messages"[{index}] must be an object with string "role" and "content"')
    if "answer" not in obj and _answer_optional(obj):
        obj = {**obj, "answer": ""}
    if not isinstance(obj.get("answer"), str):
        raise _fail(line, '"answer" must be a string' if "answer" in obj else 'missing field "answer"')
    extra = {key: value for key, value in obj.items() if key not in ("id", "messages", "answer")}
    chat = tuple({"role": m["role"], "content": m["content"]} for m in messages)
    return EvalRecord(
        id=record_id,
        kind="completion",
        prompt=None,
        masked=None,
        answer=obj["answer"],
        extra=extra,
        line=line,
        messages=chat,
    )


def _check_declared_metric(record: EvalRecord, first: EvalRecord) -> None:
    """A set declares one metric or none: every record's "metric" field must equal the first record's."""
    value = record.extra.get("metric")
    if value is not None and not isinstance(value, str):
        raise _fail(record.line, f'"metric" must be a metric name, got {json.dumps(value)}')
    expected = first.extra.get("metric")
    if value != expected:
        raise _fail(
            record.line,
            f'"metric" {json.dumps(value)} differs from line {first.line}\'s {json.dumps(expected)}: '
            "a set declares one metric for all its records",
        )


def parse_eval_set(data: bytes) -> EvalSet:
    """Validate JSONL bytes into an EvalSet; the first bad line raises InvalidInput(field="eval_set").

    Blank lines are skipped. All records must be of one kind. Ids must be unique; 1 and "1" count as the same id,
    because outputs are reported in JSON objects keyed by id. A record without an id gets its line number.
    """
    records: list[EvalRecord] = []
    seen: dict[str, int] = {}
    for line, obj in json_lines(data, _fail):
        record = _parse_record(obj, line)
        if records and record.kind != records[0].kind:
            first = records[0]
            raise _fail(line, f"a {record.kind} record in a set of {first.kind} records (line {first.line})")
        key = str(record.id)
        if key in seen:
            raise _fail(line, f"duplicate id {json.dumps(record.id)} (first on line {seen[key]})")
        seen[key] = line
        _check_declared_metric(record, records[0] if records else record)
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
