"""How a job row is shown: its phase, and an eta only while an estimate means something (searching with a trial
done), never the "eta 0" a confirming job used to show."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import numpy as np
import pytest

from mdmtune.service.app.jobs_view import job_out
from mdmtune.service.db.models import Job, utcnow


def _job(status: str, trials_done: int, n_trials: int = 10) -> Job:
    now = utcnow()
    return Job(
        id="j",
        owner_key_id="o",
        status=status,
        objective="energy",
        request={"steps": 8},
        study_name="s",
        n_trials=n_trials,
        trials_done=trials_done,
        nfe=0,
        cancel_requested=False,
        created_at=now - timedelta(seconds=60),
        started_at=None if status == "queued" else now - timedelta(seconds=40),
        finished_at=now if status in ("succeeded", "failed", "cancelled") else None,
    )


@pytest.mark.parametrize(
    ("status", "done", "phase"),
    [
        ("queued", 0, "queued"),
        ("running", 0, "searching"),
        ("running", 4, "searching"),
        ("running", 10, "confirming"),
        ("succeeded", 10, "finished"),
        ("failed", 3, "finished"),
        ("cancelled", 0, "finished"),
    ],
)
def test_phase_follows_status_and_trials(status, done, phase):
    assert job_out(_job(status, done)).phase == phase


def test_eta_only_while_searching_with_a_trial_done():
    searching = job_out(_job("running", 4)).progress
    assert searching.eta_seconds == pytest.approx(searching.elapsed_seconds / 4 * 6, rel=0.01)
    assert job_out(_job("running", 0)).progress.eta_seconds is None
    assert job_out(_job("running", 10)).progress.eta_seconds is None  # confirming: length unknown, not 0
    assert job_out(_job("succeeded", 10)).progress.eta_seconds == 0.0


def _stored_results() -> dict[str, dict]:
    """A quality result with every part `best` serves (a rival decoder, groups, a second set) and an energy one with
    an infinite energy, as a job row stores them."""
    from mdmtune.tuning.groups import breakdown
    from mdmtune.tuning.result import BaselineScore, BestSchedule, TuneResult, Validation
    from mdmtune.tuning.stats import paired

    best, linear = np.array([1.0] * 10 + [0.0] * 10), np.array([0.0] * 10 + [1.0] * 10)  # loses where masked = 45
    strata = {"masked": ["40"] * 10 + ["45"] * 10}
    groups = breakdown(np.stack([best, linear]), ["best", "linear"], [(0, 1)], strata, resamples=200)
    baselines = {
        "linear": BaselineScore.against_best(paired(best, linear, resamples=200), 0.5, 0.5),
        "threshold": BaselineScore.against_best(paired(best, linear, resamples=200), None, None, nfe_per_record=3.5),
    }
    top = BestSchedule(a=0.3, b=0.7, score=0.75, ci=[0.53, 0.89], name="beta(0.3, 0.7)")
    quality = TuneResult(
        "quality", 8, top, baselines, [], nfe=10, wall_time_s=1.0, n_trials=4, metric="sudoku", groups=groups,
        validation=Validation("sha", 20, top, {"linear": baselines["linear"]}, groups, nfe=4), warnings=["careful"],
        model={"family": "reference", "end_token_ids": [2]},
    )  # fmt: skip
    energy = TuneResult(
        "energy", 8, BestSchedule(a=1.0, b=1.0, score=2.5), {"sine": BaselineScore(None, None, math.inf, -math.inf)},
        [], nfe=0, wall_time_s=0.5, n_trials=4,
    )  # fmt: skip
    return {"quality": quality.to_json(), "energy": energy.to_json()}


def test_best_serves_the_stored_result_typed_and_unchanged_over_http():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from mdmtune.service.app.jobs_view import best_out
    from mdmtune.service.app.schemas import BestOut

    stored = _stored_results()
    app = FastAPI()

    @app.get("/{kind}", response_model=BestOut)
    def get(kind: str) -> BestOut:
        job = _job("succeeded", 10)
        job.objective, job.result, job.request = kind, stored[kind], {"steps": 8}
        return best_out(job)

    client = TestClient(app)
    for kind, result in stored.items():
        served = json.loads(client.get(f"/{kind}").text)
        assert served["result"] == result and served["baselines"] == result["baselines"]
        assert served["groups"] == result["groups"] and served["validation"] == result["validation"]
        assert served["model"] == result["model"]
    assert served["baselines"]["sine"]["score"] == "inf" and served["quality"] is None  # energy: exact, no interval
    quality = json.loads(client.get("/quality").text)
    assert quality["quality"] == {"score": 0.75, "ci": [0.53, 0.89]}
    assert quality["baselines"]["threshold"]["nfe_per_record"] == 3.5 and quality["validation"]["groups"]["losses"]
    fields = app.openapi()["components"]["schemas"]["BestOut"]["properties"]
    assert fields["baselines"]["additionalProperties"] == {"$ref": "#/components/schemas/BaselineScore"}
    for name, model in [("groups", "GroupBreakdown"), ("validation", "Validation"), ("result", "TuneResult")]:
        assert {"$ref": f"#/components/schemas/{model}"} in fields[name]["anyOf"]
