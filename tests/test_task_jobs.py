"""Quality jobs with the paper's task metrics, on the CLI and over HTTP (real uvicorn, SQLite); and no silent metric.

The model is a tiny untrained reference MDM: these tests check that the jobs are accepted, run the metric (the code
metric through the sandbox) and report it, not what score they reach.
"""

from __future__ import annotations

import json

import pytest
from apiartifacts import native_folder, zip_folder
from apiserver import database, running_server, wait_for_status

from mdmtune.cli.main import main
from mdmtune.data.evalsets import dumps_eval_set
from mdmtune.service.settings import Settings

MAX_LEN = 32
ANSWERS = {
    "gsm8k": lambda i: f"{i} + {i} = {2 * i}\n#### {2 * i}",
    "math": lambda i: f"$\\boxed{{{2 * i}}}$",
    "bbh": lambda i: str(2 * i),
    "pass_at_1": lambda i: str(2 * i),
}


def records(metric: str, declare: bool = False) -> list[dict]:
    rows = [{"prompt": f"{i}+{i}=", "answer": ANSWERS[metric](i)} for i in range(1, 9)]
    for row in rows:
        if metric == "pass_at_1":
            row["test"] = "assert True"  # MBPP style: the program is the completion, then this
        if declare:
            row["metric"] = metric
    return rows


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return native_folder(tmp_path_factory.mktemp("task-model") / "tiny", max_len=MAX_LEN)


def _tune(capsys, model, eval_set, *extra: str) -> tuple[int, str, str]:
    args = ["tune", "--checkpoint", str(model), "--eval-set", str(eval_set), "--steps", "2", "--gen-length", "4"]
    args += ["--trials", "2", "--trials-per-batch", "2", "--no-figures", "--json", *extra]
    return run_cli(capsys, *args)


@pytest.mark.parametrize("metric", ["gsm8k", "gsm8k_strict", "math", "bbh", "pass_at_1"])
def test_cli_quality_job_runs_with_each_task_metric(capsys, tmp_path, model, metric):
    eval_set = tmp_path / "set.jsonl"
    eval_set.write_bytes(dumps_eval_set(records(metric.replace("_strict", ""))))
    code, out, err = _tune(capsys, model, eval_set, "--metric", metric, "--out", str(tmp_path / "run"))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["objective"] == "quality" and 0.0 <= doc["best"]["score"] <= 1.0
    assert json.loads((tmp_path / "run" / "result.json").read_text())["metric"] == metric
    if metric == "pass_at_1":  # the confirm outputs of the best schedule, counted by the sandbox's verdicts
        _check_reasons(doc)
    else:
        assert doc["best"]["reasons"] is None


def _check_reasons(result: dict) -> None:
    reasons = result["best"]["reasons"]
    assert sum(reasons.values()) == result["confirm_records"], reasons
    assert reasons.get("passed", 0) / result["confirm_records"] == pytest.approx(result["best"]["score"])


def test_cli_quality_job_without_a_metric_is_refused_unless_the_set_declares_one(capsys, tmp_path, model):
    plain, declared = tmp_path / "plain.jsonl", tmp_path / "declared.jsonl"
    plain.write_bytes(dumps_eval_set(records("gsm8k")))
    declared.write_bytes(dumps_eval_set(records("gsm8k", declare=True)))
    code, out, err = _tune(capsys, model, plain)
    assert code == 2 and out == "" and err.startswith("mdmtune: error: metric: required")
    code, out, err = _tune(capsys, model, declared, "--out", str(tmp_path / "run"))
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "result.json").read_text())["metric"] == "gsm8k"


def test_cli_metric_that_cannot_score_the_records_is_refused_naming_metric(capsys, tmp_path, model):
    eval_set = tmp_path / "set.jsonl"
    eval_set.write_bytes(dumps_eval_set(records("gsm8k")))  # no "test" field
    code, _, err = _tune(capsys, model, eval_set, "--metric", "pass_at_1")
    assert code == 2 and "metric: pass_at_1 cannot score this eval set" in err and '"test"' in err


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-tasks")
    with database("sqlite", folder) as url:
        settings = Settings(
            data_dir=folder, database_url=url, require_api_key=True, poll_seconds=0.05, device="cpu", workers=1
        )
        with running_server(settings, workers=1) as srv:
            yield srv


@pytest.fixture(scope="module")
def uploaded(server, model):
    key = server.new_key()
    sets = {
        "plain": dumps_eval_set(records("gsm8k")),
        "declared": dumps_eval_set(records("gsm8k", declare=True)),
        "code": dumps_eval_set(records("pass_at_1")),
        "math": dumps_eval_set(records("math")),
        "bbh": dumps_eval_set(records("bbh")),
    }
    with server.client(key) as client:
        checkpoint = client.post("/v1/checkpoints", files={"file": ("tiny.zip", zip_folder(model))})
        assert checkpoint.status_code == 201, checkpoint.text
        ids = {}
        for name, data in sets.items():
            response = client.post("/v1/eval-sets", files={"file": (f"{name}.jsonl", data)})
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]
    return key, checkpoint.json()["id"], ids


def _body(checkpoint_id: str, eval_set_id: str, **extra) -> dict:
    return {
        "checkpoint_id": checkpoint_id,
        "eval_set_id": eval_set_id,
        "steps": 2,
        "gen_length": 4,
        "n_trials": 2,
        **extra,
    }


@pytest.mark.parametrize(
    ("eval_set", "metric"),
    [("declared", None), ("plain", "gsm8k_strict"), ("code", "pass_at_1"), ("math", "math"), ("bbh", "bbh")],
)
def test_http_quality_job_runs_with_a_task_metric(server, uploaded, eval_set, metric):
    key, checkpoint_id, ids = uploaded
    body = _body(checkpoint_id, ids[eval_set], **({"metric": metric} if metric else {}))
    with server.client(key) as client:
        created = client.post("/v1/tune", json=body)
        assert created.status_code == 202, created.text
        job = wait_for_status(client, created.json()["id"], {"succeeded", "failed", "cancelled"}, timeout=300)
        assert job["status"] == "succeeded", job["error"]
        best = client.get(f"/v1/tune/{job['id']}/best").json()
    assert best["result"]["metric"] == job["request"]["metric"] == (metric or "gsm8k")
    if metric == "pass_at_1":
        _check_reasons(best["result"])


@pytest.mark.parametrize(
    ("eval_set", "metric", "says"),
    [("plain", None, "required"), ("plain", "pass_at_1", "cannot score"), ("code", "bleu", "unknown metric")],
)
def test_http_job_without_a_usable_metric_is_422_naming_metric(server, uploaded, eval_set, metric, says):
    key, checkpoint_id, ids = uploaded
    body = _body(checkpoint_id, ids[eval_set], **({"metric": metric} if metric else {}))
    with server.client(key) as client:
        response = client.post("/v1/tune", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "metric" and says in response.json()["detail"]


def test_http_code_job_fails_once_with_the_reason_without_the_sandbox(server, uploaded, no_bubblewrap):
    """A worker that cannot start bubblewrap fails pass_at_1 jobs (allow_weak_sandbox is off) and only those."""
    key, checkpoint_id, ids = uploaded
    with server.client(key) as client:
        code = client.post("/v1/tune", json=_body(checkpoint_id, ids["code"], metric="pass_at_1"))
        plain = client.post("/v1/tune", json=_body(checkpoint_id, ids["plain"], metric="gsm8k"))
        assert code.status_code == plain.status_code == 202, (code.text, plain.text)
        done = {"succeeded", "failed", "cancelled"}
        failed = wait_for_status(client, code.json()["id"], done, timeout=300)
        other = wait_for_status(client, plain.json()["id"], done, timeout=300)
    assert failed["status"] == "failed" and "bubblewrap" in failed["error"], failed
    assert "MDMTUNE_ALLOW_WEAK_SANDBOX" in failed["error"], failed
    assert other["status"] == "succeeded", other["error"]
