"""Jobs end to end over HTTP (real uvicorn on loopback, the in-process worker, SQLite and Postgres), on the
energy objective, which needs no model: POST /v1/tune, poll, GET best, trials, cancel, Idempotency-Key, owners."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from apiserver import Server, database, running_server, wait_for_status

from mdmtune.core import plans, schedules
from mdmtune.core.energy import discrete_energy_of_alpha
from mdmtune.service.settings import Settings

FINAL = {"succeeded", "failed", "cancelled"}
JOB = {
    "objective": "energy",
    "steps": 8,
    "gen_length": 32,
    "block_length": 16,
    "weight_a": 2.0,
    "weight_b": 0.5,
    "n_trials": 24,
    "seed": 3,
}


def _settings(folder, url: str) -> Settings:
    return Settings(data_dir=folder, database_url=url, require_api_key=True, poll_seconds=0.05, workers=1)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def busy(request, tmp_path_factory) -> Server:
    """A server with one in-process worker."""
    folder = tmp_path_factory.mktemp(f"api-jobs-{request.param}")
    with database(request.param, folder) as url, running_server(_settings(folder, url), workers=1) as srv:
        yield srv


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def idle(request, tmp_path_factory) -> Server:
    """An API-only server (no worker): its jobs stay queued."""
    folder = tmp_path_factory.mktemp(f"api-idle-{request.param}")
    with database(request.param, folder) as url, running_server(_settings(folder, url), workers=0) as srv:
        yield srv


@pytest.fixture(scope="module")
def finished(busy: Server) -> tuple[Server, str, dict]:
    """One energy job run to the end on the busy server: (server, key, final job document)."""
    key = busy.new_key("owner-a")
    with busy.client(key) as client:
        response = client.post("/v1/tune", json=JOB)
        assert response.status_code == 202, response.text
        assert response.headers["location"] == f"/v1/tune/{response.json()['id']}"
        job = wait_for_status(client, response.json()["id"], FINAL)
    return busy, key, job


def all_trials(client: httpx.Client, job_id: str, limit: int) -> list[dict]:
    items, offset = [], 0
    while offset is not None:
        page = client.get(f"/v1/tune/{job_id}/trials", params={"limit": limit, "offset": offset}).json()
        assert page["limit"] == limit
        items += page["items"]
        offset = page["next_offset"]
    return items


def test_energy_job_succeeds_with_every_trial_counted(finished):
    _, _, job = finished
    assert job["status"] == "succeeded", job.get("error")
    assert job["progress"]["trials_done"] == job["progress"]["n_trials"] == JOB["n_trials"]
    assert job["progress"]["eta_seconds"] == 0.0
    assert job["progress"]["elapsed_seconds"] >= 0.0
    assert job["request"]["weight_a"] == JOB["weight_a"] and job["request"]["sampler"] == "count"  # defaults shown


def test_best_plan_is_the_count_plan_of_the_best_schedule_per_block(finished):
    server, key, job = finished
    with server.client(key) as client:
        best = client.get(f"/v1/tune/{job['id']}/best").json()
    a, b = best["a"], best["b"]
    n_blocks = JOB["gen_length"] // JOB["block_length"]
    expected = plans.block_count_plans(schedules.beta(a, b), JOB["steps"], [JOB["block_length"]] * n_blocks)
    assert [p["counts"] for p in best["plan"]] == [row.tolist() for row in expected]
    assert all(sum(p["counts"]) == JOB["block_length"] for p in best["plan"])
    grid = np.arange(JOB["steps"] + 1) / JOB["steps"]
    assert best["t"] == pytest.approx(grid.tolist())
    assert best["alpha"][0] == 0.0 and best["alpha"][-1] == 1.0
    assert "I_t(a, b)" in best["gamma_formula"] and "sin^2" in best["alpha_formula"]
    # The reported energy, recomputed from the reported alpha grid by the alpha route (not the Beta route).
    gamma_w = schedules.beta_gamma(grid, JOB["weight_a"], JOB["weight_b"])
    assert best["value"] == pytest.approx(float(discrete_energy_of_alpha(np.array(best["alpha"]), gamma_w)), rel=1e-6)
    assert set(best["baselines"]) >= {"linear", "cos2"}


def test_best_is_the_lowest_energy_among_the_trials(finished):
    server, key, job = finished
    with server.client(key) as client:
        best = client.get(f"/v1/tune/{job['id']}/best").json()
        trials = all_trials(client, job["id"], limit=100)
    values = [t["value"] for t in trials if t["state"] == "COMPLETE" and isinstance(t["value"], float)]
    assert best["value"] == pytest.approx(min(values))
    for baseline in best["baselines"].values():
        score = baseline["score"]
        assert score == "inf" or best["value"] <= score + 1e-12


def test_trial_pages_cover_every_trial_once(finished):
    server, key, job = finished
    with server.client(key) as client:
        whole = all_trials(client, job["id"], limit=100)
        paged = all_trials(client, job["id"], limit=5)
        last = client.get(f"/v1/tune/{job['id']}/trials", params={"limit": 5, "offset": len(whole)}).json()
    assert paged == whole
    numbers = [t["number"] for t in whole]
    assert numbers == sorted(set(numbers))
    assert sum(t["state"] in ("COMPLETE", "PRUNED") for t in whole) == JOB["n_trials"]
    assert last["items"] == [] and last["next_offset"] is None and last["total"] == len(whole)
    assert {t["user_attrs"].get("baseline") for t in whole} >= {"linear", "cos2"}


def test_another_key_cannot_see_or_cancel_the_job(finished):
    server, _, job = finished
    with server.client(server.new_key("owner-b")) as other:
        for response in (
            other.get(f"/v1/tune/{job['id']}"),
            other.get(f"/v1/tune/{job['id']}/best"),
            other.get(f"/v1/tune/{job['id']}/trials"),
            other.post(f"/v1/tune/{job['id']}/cancel"),
        ):
            assert response.status_code == 404
            assert response.headers["content-type"].startswith("application/problem+json")


def test_cancelling_a_finished_job_is_409(finished):
    server, key, job = finished
    with server.client(key) as client:
        response = client.post(f"/v1/tune/{job['id']}/cancel")
    assert response.status_code == 409 and response.json()["field"] == "status"


def test_running_job_is_cancelled_at_its_next_step_boundary(busy):
    with busy.client(busy.new_key()) as client:
        job_id = client.post("/v1/tune", json={**JOB, "n_trials": 10_000}).json()["id"]
        running = wait_for_status(client, job_id, {"running"} | FINAL)
        assert running["status"] == "running"
        accepted = client.post(f"/v1/tune/{job_id}/cancel")
        assert accepted.status_code == 202 and accepted.json()["cancel_requested"] is True
        done = wait_for_status(client, job_id, FINAL)
        best = client.get(f"/v1/tune/{job_id}/best")
    assert done["status"] == "cancelled"
    assert done["progress"]["trials_done"] < 10_000
    assert best.status_code == 409 and best.json()["field"] == "status"


def test_queued_job_is_cancelled_at_once_and_has_no_best(idle):
    with idle.client(idle.new_key()) as client:
        job_id = client.post("/v1/tune", json=JOB).json()["id"]
        assert client.get(f"/v1/tune/{job_id}/best").status_code == 409
        cancelled = client.post(f"/v1/tune/{job_id}/cancel").json()
        again = client.post(f"/v1/tune/{job_id}/cancel")
    assert cancelled["status"] == "cancelled" and cancelled["progress"]["trials_done"] == 0
    assert again.status_code == 202 and again.json()["status"] == "cancelled"


def test_same_idempotency_key_and_body_returns_the_first_job(idle):
    with idle.client(idle.new_key()) as client:
        headers = {"Idempotency-Key": "retry-1"}
        first = client.post("/v1/tune", json=JOB, headers=headers)
        jobs_after_first = idle.row_counts()["jobs"]
        reordered = dict(reversed(list(JOB.items())))  # same body, other key order
        second = client.post("/v1/tune", json=reordered, headers=headers)
        other_body = client.post("/v1/tune", json={**JOB, "seed": 4}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert idle.row_counts()["jobs"] == jobs_after_first
    assert other_body.status_code == 422 and other_body.json()["field"] == "Idempotency-Key"


def test_idempotency_keys_belong_to_their_owner(idle):
    headers = {"Idempotency-Key": "shared-name"}
    with idle.client(idle.new_key()) as one, idle.client(idle.new_key()) as two:
        first = one.post("/v1/tune", json=JOB, headers=headers).json()["id"]
        second = two.post("/v1/tune", json={**JOB, "seed": 9}, headers=headers).json()["id"]
    assert first != second


def test_concurrent_retries_make_one_job_or_a_409(idle):
    key = idle.new_key()
    jobs_before = idle.row_counts()["jobs"]

    def post(_: int) -> httpx.Response:
        with idle.client(key) as client:
            return client.post("/v1/tune", json=JOB, headers={"Idempotency-Key": "burst"})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))
    accepted = {r.json()["id"] for r in responses if r.status_code == 202}
    conflicts = [r for r in responses if r.status_code == 409]
    assert len(accepted) == 1
    assert len(conflicts) + sum(r.status_code == 202 for r in responses) == len(responses)
    assert all(r.json()["field"] == "Idempotency-Key" for r in conflicts)
    assert idle.row_counts()["jobs"] == jobs_before + 1


def test_health_and_readiness(idle):
    with httpx.Client(base_url=idle.base_url) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        ready = anonymous.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["database"] in ("sqlite", "postgresql")


def test_openapi_shows_the_request_defaults(idle):
    with httpx.Client(base_url=idle.base_url) as anonymous:
        schema = anonymous.get("/openapi.json").json()
    fields = schema["components"]["schemas"]["TuneRequest"]["properties"]
    assert fields["sampler"]["default"] == "count"
    assert fields["seed"]["default"] == 0
    assert fields["a_bounds"]["default"] == [0.05, 5.0]
    assert "steps" in schema["components"]["schemas"]["TuneRequest"]["required"]
    assert not math.isnan(fields["temperature"]["default"])


@pytest.mark.parametrize(("kind", "needs_key"), [("sqlite", False), ("postgres", True)])
def test_keys_are_required_unless_embedded_on_loopback(tmp_path, kind, needs_key):
    """Default settings: the embedded SQLite server on 127.0.0.1 is open; on Postgres a key is required."""
    with database(kind, tmp_path) as url:
        settings = Settings(data_dir=tmp_path, database_url=url, host="127.0.0.1", workers=0)
        assert settings.require_api_key is None
        with running_server(settings) as srv, httpx.Client(base_url=srv.base_url) as anonymous:
            response = anonymous.post("/v1/tune", json=JOB)
    assert response.status_code == (401 if needs_key else 202), response.text
