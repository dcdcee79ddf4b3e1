"""`mdmtune score`: outputs made elsewhere, scored by the tuner's own code; and `mdmtune evalset convert`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mdmtune.cli.main import main
from mdmtune.evalsets import load_eval_set
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
