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
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from mdmtune.data.jsonsafe import MAX_JSON_DEPTH, first_unstorable, json_depth
from mdmtune.errors import InvalidInput

KINDS: tuple[str, ...] = ("completion", "infill")
_TEXT_FIELD = {"completion": "prompt", "infill": "masked"}
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
"""The `extra` of every parsed record without other fields: one shared, read-only empty mapping, not a dict each."""
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
"""How a NUL or a lone surrogate can appear in valid JSON text: only as an escape (a raw NUL is a control character
JSON refuses, raw surrogates are not UTF-8). Lines matching it (rarely: `\\\\u0000` in a code prompt does) get the
exact check."""


class _Extra(Mapping[str, Any]):
    """A parsed record's other fields, read-only: the names as one tuple shared by every record with the same fields,
    the values as a tuple, short string values interned (a `group` or `metric` repeats on every line). A dict per
    record was the largest part of a parsed set (about 200 bytes each for one field)."""

    __slots__ = ("_names", "_values")
    _shared_names: ClassVar[dict[tuple[str, ...], tuple[str, ...]]] = {}

    def __init__(self, names: tuple[str, ...], values: tuple[Any, ...]) -> None:
        self._names = self._shared_names.setdefault(names, names) if len(self._shared_names) < 4096 else names
        self._values = values

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[self._names.index(key)]
        except ValueError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return repr(dict(self))


def _extra(obj: dict[str, Any], skip: tuple[str, ...]) -> Mapping[str, Any]:
    names = tuple(key for key in obj if key not in skip)
    if not names:
        return _NO_EXTRA
    values = tuple(_intern(obj[key]) for key in names)
    return _Extra(names, values)


def _intern(value: Any) -> Any:
    return sys.intern(value) if isinstance(value, str) and len(value) <= 64 else value


@dataclass(frozen=True, slots=True)
class EvalRecord:
    """One validated record; `line` is its 1-based line in the file (0 for records not read from a file).

    Slotted, and parsed records without other fields share one empty `extra`: a set of millions of small records
    is held in about twice its file size (docs/evalsets.md "Memory"), where a dict per record took ten times it."""

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


def _split_lines(data: bytes) -> Iterator[bytes]:
    """The lines of `data`, each with its newline, one at a time (no list of every line, no decoded copy)."""
    start, size = 0, len(data)
    while start < size:
        end = data.find(b"\n", start)
        end = size if end < 0 else end + 1
        yield data[start:end]
        start = end


def json_lines(data: bytes | Iterable[bytes], fail: Callable[[int, str], InvalidInput]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of every non-blank line of JSON Lines bytes; `fail(line, message)` makes the error.

    `data` is the bytes, or their lines (a file opened in binary mode), read one line at a time: only the current
    line's text and value are held, never a decoded copy of the whole file. The one reader of user JSON Lines (eval
    sets, outputs to score, benchmark files to convert): bad UTF-8, bad JSON, hostile nesting and text a database
    cannot store (a NUL character, a lone surrogate) are each reported with their line, never as a parser's own
    exception.
    """
    lines = _split_lines(data) if isinstance(data, (bytes, bytearray)) else data
    offset = 0
    for line, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8-sig" if line == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise fail(line, f"not valid UTF-8 ({error.reason} at byte {offset + error.start})") from None
        offset += len(raw)
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise fail(line, f"not valid JSON ({error.msg} at column {error.colno})") from None
        except RecursionError:  # the parser recurses per level: a hostile line can exhaust the stack
            raise fail(line, f"nested deeper than {MAX_JSON_DEPTH} levels") from None
        # A value is nested no deeper than its line has brackets: most lines skip the walk.
        if text.count("[") + text.count("{") > MAX_JSON_DEPTH and json_depth(value) > MAX_JSON_DEPTH:
            raise fail(line, f"nested deeper than {MAX_JSON_DEPTH} levels")
        if _UNSTORABLE_ESCAPE.search(text):
            found = first_unstorable(value)
            if found:
                raise fail(line, f"{found[0]} {found[1]}")
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
    extra = _extra(obj, ("id", _TEXT_FIELD[kind], "answer"))
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
    extra = _extra(obj, ("id", "messages", "answer"))
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


def _id_key(record_id: str | int) -> str | int:
    """The key ids are compared by: 1 and "1" are the same id (outputs are JSON objects keyed by id), "01" is not.
    An int id keys as itself (the line number of a record without an id is shared, not copied into a string)."""
    if isinstance(record_id, str) and record_id and record_id[0] in "-0123456789":
        try:
            number = int(record_id)
        except ValueError:
            return record_id
        return number if str(number) == record_id else record_id
    return record_id


def _parse_lines(lines: bytes | Iterable[bytes]) -> tuple[tuple[EvalRecord, ...], str]:
    """(records, kind) of JSON Lines, validated line by line; the first bad line raises InvalidInput."""
    records: list[EvalRecord] = []
    seen: set[str | int] = set()
    for line, obj in json_lines(lines, _fail):
        record = _parse_record(obj, line)
        if records and record.kind != records[0].kind:
            first = records[0]
            raise _fail(line, f"a {record.kind} record in a set of {first.kind} records (line {first.line})")
        key = _id_key(record.id)
        if key in seen:
            earlier = next(r for r in records if _id_key(r.id) == key)
            raise _fail(line, f"duplicate id {json.dumps(record.id)} (first on line {earlier.line})")
        seen.add(key)
        _check_declared_metric(record, records[0] if records else record)
        records.append(record)
    if not records:
        raise InvalidInput("eval_set", "no records: an eval set needs at least one JSON object line")
    return tuple(records), records[0].kind


def parse_eval_set(data: bytes) -> EvalSet:
    """Validate JSONL bytes into an EvalSet; the first bad line raises InvalidInput(field="eval_set").

    Blank lines are skipped. All records must be of one kind. Ids must be unique; 1 and "1" count as the same id,
    because outputs are reported in JSON objects keyed by id. A record without an id gets its line number.
    """
    records, kind = _parse_lines(data)
    return EvalSet(records=records, kind=kind, sha256=hashlib.sha256(data).hexdigest())


def load_eval_set(path: str | os.PathLike[str]) -> EvalSet:
    """Read and validate the JSONL file at `path`, a line at a time (hashed as it is read): what is held at the end
    is the records, not the file's bytes beside them."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput("eval_set", f"no such file: {file}")
    digest = hashlib.sha256()

    def hashed(handle: Iterable[bytes]) -> Iterator[bytes]:
        for raw in handle:
            digest.update(raw)
            yield raw

    with open(file, "rb") as handle:
        records, kind = _parse_lines(hashed(handle))
    return EvalSet(records=records, kind=kind, sha256=digest.hexdigest())


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
