"""Eval sets from the field: HumanEval, MBPP, GSM8K, MATH and BBH files -> mdmtune eval sets.

Reads the files those benchmarks are distributed as (JSON Lines, or Parquet as on the Hugging Face Hub; Parquet
needs pyarrow, the extra `parquet`), gzip-compressed or not (HumanEval ships HumanEval.jsonl.gz); nothing is
downloaded. Each converted record is a completion record that keeps
the source's fields a metric needs and declares its metric, so a job on it needs no `metric`. Prompts follow the
lm-evaluation-harness tasks LLaDA was evaluated with (docs/evalsets.md writes every convention down):
- humaneval: the prompt as given (the function signature and docstring), `test`, `entry_point`; metric pass_at_1.
- mbpp: "You are an expert Python programmer, and here is your task: {text} Your code should pass these tests:\\n\\n
  {three asserts}\\n[BEGIN]\\n"; shots end with their code and "\\n[DONE]"; `test` = setup code + the asserts.
- gsm8k: "Question: {question}\\nAnswer:"; shots "Question: ...\\nAnswer: {solution}" joined by blank lines.
- math: "Problem:\\n{problem}\\n\\nSolution:"; shots end with their solution; the reference is the solution (its
  last \\boxed{} is the answer) or the file's `answer` field where it has one.
- bbh: "Q: {input}\\nA: Let's think step by step.\\n"; shots (chain-of-thought targets, from --fewshot-from) as
  "Q: ...\\nA: Let's think step by step.\\n{target}" joined by blank lines.
Shots come from a second file of the same format (`fewshot`), its first `shots` rows in file order, never a record's
own row (shots from the converted file itself skip it, with a warning): LLaDA's
reported settings are GSM8K 4, MATH 4, HumanEval 0, MBPP 3, BBH 3. Never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mdmtune.data.evalsets import EvalSet, json_lines, write_eval_set
from mdmtune.errors import InvalidInput

Row = Mapping[str, Any]
FORMATS: tuple[str, ...] = ("humaneval", "mbpp", "gsm8k", "math", "bbh")
MAX_SHOTS = 32


GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
MAX_DECOMPRESSED_BYTES = 1 << 30
"""A gzip file that inflates past this is refused (benchmark files are a few MB; HumanEval's is 0.2 MB inflated)."""


def read_rows(path: str | os.PathLike[str], field: str = "input") -> list[dict[str, Any]]:
    """The rows of a JSON Lines or Parquet file, gzip-compressed or not, as dicts; errors name the file and the line.

    What a file holds is read from its first bytes, not its name: gzip (1f 8b, as HumanEval's HumanEval.jsonl.gz),
    then Parquet (PAR1) or else JSON Lines; a `.parquet` name is read as Parquet whatever it starts with.
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(field, f"no such file: {file}")
    data = file.read_bytes()
    if data.startswith(GZIP_MAGIC):
        data = _gunzip(data, file, field)
    if data.startswith(PARQUET_MAGIC) or file.suffix == ".parquet":
        return _read_parquet(data, file, field)

    def fail(line: int, message: str) -> InvalidInput:
        return InvalidInput(field, f"{file.name} line {line}: {message}")

    rows: list[dict[str, Any]] = []
    for line, row in json_lines(data, fail):
        if not isinstance(row, dict):
            raise fail(line, "a row must be a JSON object")
        rows.append(row)
    return rows


def _gunzip(data: bytes, file: Path, field: str) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            inflated = stream.read(MAX_DECOMPRESSED_BYTES + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise InvalidInput(field, f"{file.name}: not a readable gzip file ({error})") from None
    if len(inflated) > MAX_DECOMPRESSED_BYTES:
        raise InvalidInput(field, f"{file.name}: inflates to more than {MAX_DECOMPRESSED_BYTES} bytes")
    return inflated


def _read_parquet(data: bytes, file: Path, field: str) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInput(field, "reading Parquet needs pyarrow: pip install 'mdmtune[parquet]'") from None
    try:
        return pq.read_table(io.BytesIO(data)).to_pylist()
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        raise InvalidInput(field, f"{file.name}: not a readable Parquet file ({error})") from None


def _text(row: Row, name: str, line: int) -> str:
    value = row.get(name)
    if not isinstance(value, str):
        raise InvalidInput("input", f"row {line}: needs a text field {name!r}, got {json.dumps(value)[:60]}")
    return value


def _humaneval(row: Row, line: int, shots: str) -> dict[str, Any]:
    record = {"prompt": shots + _text(row, "prompt", line), "answer": _text(row, "canonical_solution", line)}
    record.update(test=_text(row, "test", line), entry_point=_text(row, "entry_point", line))
    return {"id": row.get("task_id", line), **record, "metric": "pass_at_1"}


def _mbpp_text(row: Row, line: int) -> str:
    tests = row.get("test_list")
    if not isinstance(tests, (list, tuple)) or not tests or not all(isinstance(t, str) for t in tests):
        raise InvalidInput("input", f"row {line}: needs 'test_list', a list of assert statements")
    listed = "\n".join(tests[:3])
    return (
        f"You are an expert Python programmer, and here is your task: {_text(row, 'text', line)} "
        f"Your code should pass these tests:\n\n{listed}\n[BEGIN]\n"
    )


def _mbpp(row: Row, line: int, shots: str) -> dict[str, Any]:
    prompt = shots + _mbpp_text(row, line)  # checks test_list first
    setup = row.get("test_setup_code") or ""
    test = (str(setup) + "\n" if setup else "") + "\n".join(row["test_list"])
    return {
        "id": row.get("task_id", line),
        "prompt": prompt,
        "answer": _text(row, "code", line),
        "test": test,
        "metric": "pass_at_1",
    }


def _mbpp_shot(row: Row, line: int) -> str:
    return _mbpp_text(row, line) + _text(row, "code", line) + "\n[DONE]\n\n"


def _gsm8k(row: Row, line: int, shots: str) -> dict[str, Any]:
    prompt = f"{shots}Question: {_text(row, 'question', line)}\nAnswer:"
    return {"prompt": prompt, "answer": _text(row, "answer", line), "metric": "gsm8k"}


def _gsm8k_shot(row: Row, line: int) -> str:
    return f"Question: {_text(row, 'question', line)}\nAnswer: {_text(row, 'answer', line)}\n\n"


def _math(row: Row, line: int, shots: str) -> dict[str, Any]:
    answer = row.get("answer") if isinstance(row.get("answer"), str) else _text(row, "solution", line)
    record = {"prompt": f"{shots}Problem:\n{_text(row, 'problem', line)}\n\nSolution:", "answer": answer}
    kept = {name: row[name] for name in ("level", "type", "subject", "unique_id") if name in row}
    return {**record, **kept, "metric": "math"}


def _math_shot(row: Row, line: int) -> str:
    return f"Problem:\n{_text(row, 'problem', line)}\n\nSolution:\n{_text(row, 'solution', line)}\n\n"


def _bbh(row: Row, line: int, shots: str) -> dict[str, Any]:
    prompt = f"{shots}Q: {_text(row, 'input', line)}\nA: Let's think step by step.\n"
    return {"prompt": prompt, "answer": _text(row, "target", line), "metric": "bbh"}


def _bbh_shot(row: Row, line: int) -> str:
    return f"Q: {_text(row, 'input', line)}\nA: Let's think step by step.\n{_text(row, 'target', line)}\n\n"


_CONVERT: dict[str, tuple[Callable[[Row, int, str], dict[str, Any]], Callable[[Row, int], str]]] = {
    "humaneval": (_humaneval, lambda row, line: _text(row, "prompt", line) + _text(row, "canonical_solution", line)),
    "mbpp": (_mbpp, _mbpp_shot),
    "gsm8k": (_gsm8k, _gsm8k_shot),
    "math": (_math, _math_shot),
    "bbh": (_bbh, _bbh_shot),
}


def convert_rows(fmt: str, rows: Sequence[Row], fewshot: Sequence[Row] = (), shots: int = 0) -> list[dict[str, Any]]:
    """The eval-set records of `rows` in format `fmt`, each prompt preceded by the first `shots` rows of `fewshot`.

    A row is never its own shot: where the few-shot rows include the record's own row (shots taken from the file
    being converted), that row is skipped and the next one taken, so no prompt holds its own reference.
    """
    if fmt not in FORMATS:
        raise InvalidInput("format", f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if isinstance(shots, bool) or not isinstance(shots, int) or not 0 <= shots <= MAX_SHOTS:
        raise InvalidInput("shots", f"must be an integer in [0, {MAX_SHOTS}], got {shots!r}")
    if shots > len(fewshot):
        raise InvalidInput("shots", f"{shots} shots need a few-shot file with at least {shots} rows ({len(fewshot)})")
    if not rows:
        raise InvalidInput("input", "no rows to convert")
    convert, shot = _CONVERT[fmt]
    candidates = [(row, shot(row, i)) for i, row in enumerate(fewshot[: shots + 1], start=1)] if shots else []
    records = []
    for line, row in enumerate(rows, start=1):
        chosen = [text for shot_row, text in candidates if shot_row != row][:shots]
        if len(chosen) < shots:
            raise InvalidInput(
                "shots", f"row {line} is among the first {shots} few-shot rows: {shots} shots need one row more"
            )
        records.append(convert(row, line, "".join(chosen)))
    return records


def own_shots(rows: Sequence[Row], fewshot: Sequence[Row], shots: int) -> int:
    """How many of `rows` are also among the few-shot rows they would be given (each is left out of its own)."""
    candidates = list(fewshot[: shots + 1]) if shots else []
    return sum(1 for row in rows if row in candidates)


def convert_file(
    fmt: str,
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    fewshot: str | os.PathLike[str] | None = None,
    shots: int = 0,
    warn: Callable[[str], None] | None = None,
) -> EvalSet:
    """Convert `source` into the eval set `target` (validated, written atomically); returns the written set.

    `warn(message)` hears when the shots come from the converted file itself (or share rows with it): the harness
    takes them from another split, and a record's own row would leak its reference into its prompt (it is left out).
    """
    rows = read_rows(source)
    shot_rows = read_rows(fewshot, "fewshot") if fewshot is not None else []
    records = convert_rows(fmt, rows, shot_rows, shots)
    if warn is not None and fewshot is not None and shots:
        same = Path(source).resolve() == Path(fewshot).resolve()
        shared = own_shots(rows, shot_rows, shots)
        if same or shared:
            where = "the input file itself" if same else f"rows that are also in the input ({shared} of them)"
            warn(
                f"the few-shot examples come from {where}: each record's own row is left out of its shots (the "
                "next row is taken), so records do not all see the same shots; give --fewshot-from another split "
                "(e.g. the train file) to prompt as the harness does"
            )
    return write_eval_set(records, target)
