"""A quality job end to end over HTTP (real uvicorn, in-process worker, SQLite and Postgres): upload a native
checkpoint and an eval set, POST /v1/tune, poll, GET best and trials; and the POST-time checks of a job against
its checkpoint and eval set, which refuse a misfit before any worker spends time on it."""

from __future__ import annotations

import pytest
from apiartifacts import native_folder, zip_folder
from apiserver import Server, database, running_server, wait_for_status

from mdmtune.core import plans, schedules
from mdmtune.data.evalsets import dumps_eval_set
from mdmtune.service.settings import Settings

FINAL = {"succeeded", "failed", "cancelled"}
MAX_LEN = 32


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory) -> Server:
    folder = tmp_path_factory.mktemp(f"api-quality-{request.param}")
    with database(request.param, folder) as url:
        settings = Settings(
            data_dir=folder, database_url=url, require_api_key=True, poll_seconds=0.05, device="cpu", workers=1
        )
        with running_server(settings, workers=1) as srv:
            yield srv


@pytest.fixture(scope="module")
def uploaded(server: Server, tmp_path_factory) -> tuple[str, str, str, str]:
    """(key, checkpoint id, completion eval set id, infill eval set id)."""
    key = server.new_key()
    folder = native_folder(tmp_path_factory.mktemp("model") / "tiny", max_len=MAX_LEN)
    completion = dumps_eval_set([{"id": i, "prompt": f"{i}+{i}=", "answer": str(2 * i)} for i in range(12)])
    infill = dumps_eval_set([{"id": i, "masked": f"{i}+1=_", "answer": f"{i}+1={i + 1}"} for i in range(3, 8)])
    with server.client(key) as client:
        checkpoint = client.post("/v1/checkpoints", files={"file": ("tiny.zip", zip_folder(folder))})
        assert checkpoint.status_code == 201, checkpoint.text
        sets = [client.post("/v1/eval-sets", files={"file": ("set.jsonl", data)}) for data in (completion, infill)]
        assert all(s.status_code == 201 for s in sets), [s.text for s in sets]
    return key, checkpoint.json()["id"], sets[0].json()["id"], sets[1].json()["id"]


def test_quality_job_runs_to_a_best_schedule_with_intervals(server, uploaded):
    key, checkpoint_id, eval_set_id, _ = uploaded
    body = {
        "checkpoint_id": checkpoint_id,
        "eval_set_id": eval_set_id,
        "metric": "exact_match",
        "steps": 4,
        "gen_length": 4,
        "block_length": 2,
        "n_trials": 6,
        "seed": 1,
    }
    with server.client(key) as client:
        created = client.post("/v1/tune", json=body)
        assert created.status_code == 202, created.text
        job = wait_for_status(client, created.json()["id"], FINAL, timeout=300)
        assert job["status"] == "succeeded", job["error"]
        best = client.get(f"/v1/tune/{job['id']}/best").json()
        trials = client.get(f"/v1/tune/{job['id']}/trials", params={"limit": 100}).json()
    assert job["progress"]["trials_done"] == 6 and job["progress"]["nfe"] > 0
    low, high = best["quality"]["ci"]
    assert 0.0 <= low <= best["quality"]["score"] <= high <= 1.0
    for name in ("linear", "cos2"):
        assert len(best["baselines"][name]["diff_ci"]) == 2
    expected = plans.block_count_plans(schedules.beta(best["a"], best["b"]), 4, [2, 2])
    assert [p["counts"] for p in best["plan"]] == [row.tolist() for row in expected]
    assert sum(t["state"] in ("COMPLETE", "PRUNED") for t in trials["items"]) == 6


def _refused(server: Server, key: str, body: dict, field: str) -> dict:
    before = server.row_counts()
    with server.client(key) as client:
        response = client.post("/v1/tune", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field, response.json()
    assert server.row_counts() == before
    return response.json()


def test_generation_as_long_as_the_model_context_is_refused_at_post(server, uploaded):
    key, checkpoint_id, eval_set_id, _ = uploaded
    body = {"checkpoint_id": checkpoint_id, "eval_set_id": eval_set_id, "steps": 4, "gen_length": MAX_LEN}
    body["metric"] = "exact_match"
    problem = _refused(server, key, body, "gen_length")  # from the max length stored at upload
    assert str(MAX_LEN) in problem["detail"]


def test_completion_set_without_gen_length_is_refused_at_post(server, uploaded):
    key, checkpoint_id, eval_set_id, _ = uploaded
    body = {"checkpoint_id": checkpoint_id, "eval_set_id": eval_set_id, "steps": 4, "metric": "exact_match"}
    _refused(server, key, body, "gen_length")


def test_metric_that_cannot_score_the_answers_is_refused_at_post(server, uploaded):
    key, checkpoint_id, _, infill_id = uploaded  # infill answers like "3+1=4" are not numbers
    body = {"checkpoint_id": checkpoint_id, "eval_set_id": infill_id, "steps": 1, "metric": "sudoku"}
    _refused(server, key, body, "metric")


def test_infill_mask_symbol_missing_from_the_records_is_refused_at_post(server, uploaded):
    key, checkpoint_id, _, infill_id = uploaded
    body = {"checkpoint_id": checkpoint_id, "eval_set_id": infill_id, "steps": 1, "mask_symbol": "#"}
    body["metric"] = "exact_match"
    problem = _refused(server, key, body, "eval_set")  # the library names the record without the symbol
    assert "'#'" in problem["detail"] and "line 1" in problem["detail"]


def test_someone_elses_checkpoint_cannot_be_used(server, uploaded):
    _, checkpoint_id, eval_set_id, _ = uploaded
    body = {"checkpoint_id": checkpoint_id, "eval_set_id": eval_set_id, "steps": 4, "gen_length": 4}
    _refused(server, server.new_key("stranger"), body, "checkpoint_id")


def test_checkpoint_declarations_are_stored_at_upload(server, uploaded, tmp_path):
    key = uploaded[0]
    from mdmtune.models.native import load_reference

    _, codec, _ = load_reference(native_folder(tmp_path / "same", max_len=MAX_LEN))
    with server.client(key) as client:
        folder = native_folder(tmp_path / "again", max_len=MAX_LEN)
        meta = client.post("/v1/checkpoints", files={"file": ("t.zip", zip_folder(folder))}).json()["meta"]
    assert meta["format"] == "native" and meta["max_length"] == MAX_LEN
    assert (meta["mask_token"], meta["mask_token_id"]) == (codec.mask_token, codec.mask_token_id)
    assert meta["vocab_size"] == codec.vocab_size and meta["end_ids"] == [codec.eot_token_id]


def test_infill_steps_beyond_the_largest_masked_count_are_refused_at_post(server, uploaded):
    key, checkpoint_id, _, infill_id = uploaded  # every infill record has one mask
    body = {"checkpoint_id": checkpoint_id, "eval_set_id": infill_id, "steps": 2, "metric": "exact_match"}
    problem = _refused(server, key, body, "steps")
    assert "largest masked count, 1" in problem["detail"]


def test_a_prompt_too_long_for_the_model_fails_the_job_once_at_the_worker_naming_the_line(server, uploaded):
    key, checkpoint_id, eval_set_id, _ = uploaded  # prompts "10+10=" .. "11+11=" (6 tokens) + 28 > 32
    body = {"checkpoint_id": checkpoint_id, "eval_set_id": eval_set_id, "steps": 4, "gen_length": MAX_LEN - 4}
    body["metric"] = "exact_match"
    with server.client(key) as client:
        created = client.post("/v1/tune", json=body)
        assert created.status_code == 202, created.text  # the API cannot know without tokenizing: the worker can
        job = wait_for_status(client, created.json()["id"], FINAL, timeout=120)
    assert job["status"] == "failed" and job["phase"] == "finished"
    assert job["error"].startswith("eval_set: ") and "(line 11)" in job["error"], job["error"]


def test_the_api_never_reads_the_weights(server, uploaded, tmp_path):
    """The weights are removed from the store after upload: the job is still accepted (the checks use what was
    stored at upload); only the worker finds out, and fails the job saying what is missing."""
    key = uploaded[0]
    folder = native_folder(tmp_path / "doomed", seed=7, max_len=MAX_LEN)
    infill = dumps_eval_set([{"id": i, "masked": f"{i}+1=_", "answer": f"{i}+1={i + 1}"} for i in range(3, 6)])
    with server.client(key) as client:
        checkpoint = client.post("/v1/checkpoints", files={"file": ("d.zip", zip_folder(folder))}).json()
        eval_set = client.post("/v1/eval-sets", files={"file": ("i.jsonl", infill)}).json()
        stored = server.settings.resolved_artifact_dir / "blobs" / checkpoint["sha256"]
        for weights in stored.rglob("model.safetensors"):
            weights.unlink()
        body = {"checkpoint_id": checkpoint["id"], "eval_set_id": eval_set["id"], "steps": 1, "metric": "exact_match"}
        created = client.post("/v1/tune", json=body)
        assert created.status_code == 202, created.text
        job = wait_for_status(client, created.json()["id"], FINAL, timeout=120)
    assert job["status"] == "failed" and "model.safetensors" in job["error"], job["error"]
