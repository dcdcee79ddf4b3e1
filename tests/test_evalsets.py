"""Eval sets: JSONL parsing, validation that names the line, atomic writing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mdmtune.data.evalsets import EvalRecord, load_eval_set, parse_eval_set, write_eval_set
from mdmtune.errors import InvalidInput


def jsonl(*objects: object) -> bytes:
    return ("\n".join(json.dumps(o) for o in objects) + "\n").encode()


def refused(data: bytes) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_eval_set(data)
    assert caught.value.field == "eval_set"
    return caught.value.message


def test_completion_set_parses_with_ids_as_given_and_its_sha256():
    data = jsonl({"id": 7, "prompt": "1+1=", "answer": "2"}, {"id": "b", "prompt": "2+2=", "answer": "4"})
    eval_set = parse_eval_set(data)
    assert eval_set.kind == "completion"
    assert [r.id for r in eval_set.records] == [7, "b"]
    assert eval_set.records[0] == EvalRecord(id=7, kind="completion", prompt="1+1=", masked=None, answer="2", line=1)
    assert eval_set.sha256 == hashlib.sha256(data).hexdigest()


def test_infill_set_keeps_extra_fields_and_skips_blank_lines():
    data = b"\n" + jsonl({"id": 1, "masked": "1_3", "answer": "123", "source": "x", "level": 2}) + b"  \r\n\n"
    eval_set = parse_eval_set(data)
    (record,) = eval_set.records
    assert (record.kind, record.masked, record.prompt, record.line) == ("infill", "1_3", None, 2)
    assert record.extra == {"source": "x", "level": 2}
    assert record.to_json() == {"id": 1, "masked": "1_3", "answer": "123", "source": "x", "level": 2}


def test_crlf_line_endings_and_byte_order_mark_are_accepted():
    data = b"\xef\xbb\xbf" + b'{"id": 1, "prompt": "a", "answer": "b"}\r\n{"id": 2, "prompt": "c", "answer": "d"}\r\n'
    assert len(parse_eval_set(data)) == 2


def test_bad_json_names_its_line():
    data = jsonl({"id": 1, "prompt": "a", "answer": "b"}) + b'{"id": 2, "prompt": \n'
    assert refused(data).startswith("line 2: not valid JSON")


def test_non_object_line_is_refused_with_its_line():
    assert "line 2: a record must be a JSON object" in refused(jsonl({"id": 1, "prompt": "a", "answer": "b"}, [1, 2]))


@pytest.mark.parametrize(
    ("record", "says"),
    [
        ({"id": 2, "prompt": "a"}, 'missing field "answer"'),
        ({"id": 2, "answer": "b"}, "neither"),
        ({"id": 2, "prompt": "a", "masked": "_", "answer": "b"}, "both"),
    ],
)
def test_missing_field_names_the_line_and_the_field(record, says):
    message = refused(jsonl({"id": 1, "prompt": "a", "answer": "b"}, record))
    assert message.startswith("line 2:")
    assert says in message


@pytest.mark.parametrize(
    ("record", "says"),
    [
        ({"id": 1.5, "prompt": "a", "answer": "b"}, '"id" must be a string or an integer'),
        ({"id": True, "prompt": "a", "answer": "b"}, '"id" must be a string or an integer'),
        ({"id": None, "prompt": "a", "answer": "b"}, '"id" must be a string or an integer'),
        ({"id": 2, "prompt": 3, "answer": "b"}, '"prompt" must be a string'),
        ({"id": 2, "masked": ["_"], "answer": "b"}, '"masked" must be a string'),
        ({"id": 2, "prompt": "a", "answer": 4}, '"answer" must be a string'),
    ],
)
def test_wrong_type_names_the_line_and_the_field(record, says):
    message = refused(b"\n" + jsonl(record))
    assert message.startswith("line 2:")
    assert says in message


def test_mixed_kinds_are_refused_naming_both_lines():
    message = refused(jsonl({"id": 1, "masked": "_", "answer": "1"}, {"id": 2, "prompt": "a", "answer": "b"}))
    assert message == "line 2: a completion record in a set of infill records (line 1)"


def test_duplicate_id_names_both_lines_and_int_and_string_forms_collide():
    data = jsonl({"id": 1, "prompt": "a", "answer": "b"}, {"id": 2, "prompt": "a", "answer": "b"})
    data += jsonl({"id": "1", "prompt": "c", "answer": "d"})
    assert refused(data) == 'line 3: duplicate id "1" (first on line 1)'


def test_empty_set_is_refused():
    assert "no records" in refused(b"")
    assert "no records" in refused(b"\n   \n\r\n")


def test_bad_utf8_names_its_line():
    data = jsonl({"id": 1, "prompt": "a", "answer": "b"}) + b'{"id": 2, "prompt": "\xff", "answer": "b"}\n'
    assert refused(data).startswith("line 2: not valid UTF-8")


def test_non_ascii_text_round_trips_through_write_and_load(tmp_path: Path):
    records = [{"id": "ü", "prompt": "½ + ½ =", "answer": "1", "note": "日本"}]
    written = write_eval_set(records, tmp_path / "sub" / "set.jsonl")
    loaded = load_eval_set(tmp_path / "sub" / "set.jsonl")
    assert loaded == written
    assert loaded.records[0].to_json() == records[0]
    assert loaded.sha256 == hashlib.sha256((tmp_path / "sub" / "set.jsonl").read_bytes()).hexdigest()


def test_write_validates_before_touching_the_file(tmp_path: Path):
    path = tmp_path / "set.jsonl"
    write_eval_set([{"id": 1, "prompt": "a", "answer": "b"}], path)
    before = path.read_bytes()
    with pytest.raises(InvalidInput, match="line 2: duplicate id"):
        write_eval_set([{"id": 1, "prompt": "a", "answer": "b"}, {"id": 1, "prompt": "c", "answer": "d"}], path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["set.jsonl"]


def test_written_records_from_evalrecords_reparse_identically(tmp_path: Path):
    original = parse_eval_set(jsonl({"id": 3, "masked": "_2", "answer": "12", "k": [1]}))
    again = write_eval_set(original.records, tmp_path / "x.jsonl")
    assert again.records == original.records


def test_missing_file_is_refused_with_the_field(tmp_path: Path):
    with pytest.raises(InvalidInput, match="no such file") as caught:
        load_eval_set(tmp_path / "absent.jsonl")
    assert caught.value.field == "eval_set"


def test_id_is_optional_and_defaults_to_the_line_number():
    data = b"\n" + jsonl({"prompt": "1+1=", "answer": "2"}, {"id": "x", "prompt": "2+2=", "answer": "4"})
    data += jsonl({"prompt": "3+3=", "answer": "6"})
    assert [r.id for r in parse_eval_set(data).records] == [2, "x", 4]


def test_a_default_id_that_collides_with_a_given_one_is_reported():
    message = refused(jsonl({"id": 2, "prompt": "a", "answer": "b"}, {"prompt": "c", "answer": "d"}))
    assert message.startswith("line 2:") and "duplicate id 2 (first on line 1)" in message


def test_the_readme_eval_set_example_parses_as_written():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("```jsonl\n", 1)[1].split("```", 1)[0]
    eval_set = parse_eval_set(block.encode("utf-8"))
    assert eval_set.kind == "completion" and [r.id for r in eval_set.records] == [1, 2]


def test_a_set_declares_its_metric_on_every_record():
    data = jsonl({"prompt": "a", "answer": "1", "metric": "gsm8k"}, {"prompt": "b", "answer": "2", "metric": "gsm8k"})
    assert parse_eval_set(data).declared_metric == "gsm8k"
    assert parse_eval_set(jsonl({"prompt": "a", "answer": "1"})).declared_metric is None
    mixed = jsonl({"prompt": "a", "answer": "1", "metric": "gsm8k"}, {"prompt": "b", "answer": "2"})
    assert refused(mixed).startswith("line 2:") and '"metric"' in refused(mixed)
    assert '"metric" must be a metric name' in refused(jsonl({"prompt": "a", "answer": "1", "metric": 3}))


@pytest.mark.parametrize(
    ("data", "fragment"),
    [(b'{"id": 1, "output": "x"}\n\xff\xfe\n', "line 2: not valid UTF-8"), (b"[" * 100_000 + b"\n", "line 1: nested")],
)
def test_outputs_and_benchmark_files_report_bad_bytes_and_deep_nesting_by_line(tmp_path, data, fragment):
    """The readers of outputs to score and of benchmark files to convert share the eval sets' guards."""
    from mdmtune.data.convert import read_rows
    from mdmtune.data.outputs import read_outputs

    eval_set = parse_eval_set(b'{"id": 1, "prompt": "q", "answer": "a"}\n')
    path = tmp_path / "file.jsonl"
    path.write_bytes(data)
    with pytest.raises(InvalidInput) as scored:
        read_outputs(path, eval_set)
    with pytest.raises(InvalidInput) as converted:
        read_rows(path)
    assert fragment in scored.value.message and scored.value.field == "outputs"
    assert fragment in converted.value.message and converted.value.field == "input"


ADD_TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n"


@pytest.mark.parametrize(
    "record",
    [
        {"id": "t", "prompt": "def add(a, b):\n", "test": ADD_TEST, "entry_point": "add"},
        {"id": "t", "prompt": "def add(a, b):\n", "test": ADD_TEST, "entry_point": "add", "metric": "pass_at_1"},
        {"id": "t", "messages": [{"role": "user", "content": "def add(a, b):\n"}], "test": ADD_TEST},
    ],
)
def test_a_code_record_needs_no_answer_and_pass_at_1_scores_it(record):
    from mdmtune.metrics import resolve_metric

    eval_set = parse_eval_set(jsonl(record))
    loaded = eval_set.records[0]
    assert loaded.answer == "" and loaded.extra["test"] == ADD_TEST
    metric = resolve_metric("pass_at_1", eval_set)  # checks every record before scoring
    if loaded.messages is None:
        assert metric.score("    return a + b\n", loaded) == 1.0
        assert metric.score("    return a - b\n", loaded) == 0.0


def test_a_record_that_is_no_code_record_still_needs_its_answer():
    assert 'line 1: missing field "answer"' in refused(jsonl({"prompt": "2+2=", "metric": "exact_match"}))


def test_parsing_a_set_holds_under_three_times_its_file_size(tmp_path):
    """tracemalloc's peak in a fresh interpreter (benchmarks/evalset_memory.py), on question-sized records: a dict
    per record and the whole file decoded and split beside the records once took ten times the file."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "evalset_memory.py"
    done = subprocess.run(
        [sys.executable, str(script), "--mb", "3", "--shape", "question"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)["question"]
    assert figures["records"] > 10_000
    assert figures["peak_ratio"] < 3, figures


def test_compact_records_read_like_dicts_and_ids_compare_as_before():
    data = b'{"id": 7, "prompt": "a", "answer": "b", "group": "g", "level": 2}\n'
    data += b'{"id": "x", "prompt": "c", "answer": "d"}\n'
    records = parse_eval_set(data).records
    assert records[0].extra == {"group": "g", "level": 2} and dict(records[0].extra) == {"group": "g", "level": 2}
    assert records[0].extra["group"] == "g" and "level" in records[0].extra and records[1].extra == {}
    assert records[0].to_json() == {"id": 7, "prompt": "a", "answer": "b", "group": "g", "level": 2}
    for first, second in (("1", "1"), ('"1"', "1"), ("-3", '"-3"')):
        twice = f'{{"id": {first}, "prompt": "a", "answer": "b"}}\n{{"id": {second}, "prompt": "a", "answer": "b"}}\n'
        assert "duplicate id" in refused(twice.encode())
    distinct = b'{"id": "01", "prompt": "a", "answer": "b"}\n{"id": 1, "prompt": "a", "answer": "b"}\n'
    assert len(parse_eval_set(distinct)) == 2


def test_a_nul_or_a_lone_surrogate_in_a_record_names_the_line_and_field():
    assert refused(b'{"prompt": "a", "answer": "b"}\n{"prompt": "a\\u0000", "answer": "b"}\n').startswith(
        "line 2: prompt must not contain the NUL"
    )
    assert "lone surrogate" in refused(b'{"prompt": "a", "answer": "\\ud800"}\n')
    assert len(parse_eval_set(b'{"prompt": "print(\\"\\\\u0000\\")", "answer": "b"}\n')) == 1  # an escaped backslash
