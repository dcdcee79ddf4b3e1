"""How a job row is shown: its phase, and an eta only while an estimate means something (searching with a trial
done), never the "eta 0" a confirming job used to show."""

from __future__ import annotations

from datetime import timedelta

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
