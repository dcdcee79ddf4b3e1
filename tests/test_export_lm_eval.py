"""lm-eval's `--model mdmtune` scores a generate_until task as `mdmtune sample` scores the same records.

The task is a local YAML (tmp_path) over the shipped BERT arithmetic eval set (examples/bert_arithmetic/eval.jsonl):
prompt as the context, answer as the target, exact_match with surrounding white space ignored (mdmtune's
exact_match). lm-eval runs through its Python API, `lm_eval.simple_evaluate`, with schedule= a tune result.json;
at temperature 0 every record's output and score and the mean must be `mdmtune sample`'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mdmtune.cli.main import main

pytest.importorskip("transformers")
lm_eval = pytest.importorskip("lm_eval")

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "examples" / "bert_arithmetic" / "checkpoint"
EVAL_SET = ROOT / "examples" / "bert_arithmetic" / "eval.jsonl"
STEPS, GEN_LENGTH, BLOCK_LENGTH = 8, 16, 8
A, B = 0.35, 0.78

TASK = """task: mdmtune_bert_arithmetic
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
target_delimiter: ""
generation_kwargs:
  until: ["\\n"]
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    regexes_to_ignore: ["^\\\\s+", "\\\\s+$"]
"""


def _tune_result(folder: Path) -> Path:
    """A result.json as `mdmtune tune --out` writes it, for a best schedule (A, B) at N = 8, blocks of 8."""
    from mdmtune.core.schedules import beta
    from mdmtune.tuning.confirmation import best_plan
    from mdmtune.tuning.result import BestSchedule, TuneResult
    from mdmtune.tuning.spec import TuneSpec

    spec = TuneSpec(steps=STEPS, gen_length=GEN_LENGTH, block_length=BLOCK_LENGTH)
    result = TuneResult(
        objective="quality",
        steps=STEPS,
        best=BestSchedule(a=A, b=B, score=0.5, name=beta(A, B).name),
        baselines={},
        trials=[],
        nfe=0,
        wall_time_s=0.0,
        n_trials=1,
        plan=best_plan(beta(A, B), spec, STEPS, GEN_LENGTH),
        metric="exact_match",
    )
    path = folder / "result.json"
    path.write_text(json.dumps(result.to_json()))
    return path


@pytest.fixture(scope="module")
def sampled(tmp_path_factory) -> dict:
    """`mdmtune sample --json` on every record of the eval set with the tuned schedule."""
    capture = tmp_path_factory.mktemp("sample") / "out.json"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit) as done:
        main(
            ["sample", "--checkpoint", str(CHECKPOINT), "--eval-set", str(EVAL_SET), "--steps", str(STEPS),
             "--a", str(A), "--b", str(B), "--gen-length", str(GEN_LENGTH), "--block-length", str(BLOCK_LENGTH),
             "--metric", "exact_match", "--json"]
        )  # fmt: skip
    assert done.value.code == 0
    capture.write_text(buffer.getvalue())
    return json.loads(buffer.getvalue())


def test_lm_eval_scores_what_mdmtune_sample_scores(tmp_path, sampled):
    from lm_eval.tasks import TaskManager

    import mdmtune.integrations.lm_eval_model  # noqa: F401  (registers the model type)

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "mdmtune_bert_arithmetic.yaml").write_text(TASK.format(data=EVAL_SET))
    schedule = _tune_result(tmp_path)
    results = lm_eval.simple_evaluate(
        model="mdmtune",
        model_args=f"checkpoint={CHECKPOINT},schedule={schedule}",
        tasks=["mdmtune_bert_arithmetic"],
        task_manager=TaskManager(include_path=str(tasks)),
        log_samples=True,
    )
    score = results["results"]["mdmtune_bert_arithmetic"]["exact_match,none"]
    samples = sorted(results["samples"]["mdmtune_bert_arithmetic"], key=lambda s: s["doc_id"])
    assert len(samples) == len(sampled["records"]) == 200
    for theirs, ours in zip(samples, sampled["records"], strict=True):
        assert theirs["doc"]["id"] == ours["id"]
        assert (theirs["filtered_resps"][0], float(theirs["exact_match"])) == (ours["output"], ours["score"])
    assert score == pytest.approx(sampled["mean_score"], abs=1e-12)
    assert 0 < score < 1


def test_loglikelihood_requests_are_refused_clearly():
    from mdmtune.integrations.lm_eval_model import MdmtuneLM

    model = MdmtuneLM(checkpoint=str(CHECKPOINT), a=A, b=B, steps=STEPS, gen_length=GEN_LENGTH)
    with pytest.raises(NotImplementedError, match="no left-to-right likelihood"):
        model.loglikelihood([])
    with pytest.raises(NotImplementedError, match="generate_until"):
        model.loglikelihood_rolling([])


def test_the_model_type_is_registered_for_lm_eval():
    from lm_eval.api.registry import get_model

    import mdmtune.integrations.lm_eval_model  # noqa: F401
    from mdmtune.integrations.lm_eval_model import MdmtuneLM

    assert get_model("mdmtune") is MdmtuneLM
