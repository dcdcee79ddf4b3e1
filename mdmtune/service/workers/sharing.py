"""Several workers on one job's study: every trial is tagged with the worker that asked it, and the RUNNING trials
of workers that are gone are told FAIL and re-enqueued.

Optuna's own heartbeat works only inside `optimize()`, not with ask/tell, so liveness comes from the service's
leases: the lease holder's (jobs.lease_token) and the helpers' (job_helpers). A RUNNING trial whose tag is not among
the live ones was left by a dead worker. A trial without a tag (its worker died inside `ask`, after Optuna created
the trial and before the tag was written: a sampler's whole `ask` time) counts as stale once it is older than a
lease; a live worker tags within that time.
"""

from __future__ import annotations

import datetime as dt
import logging

import optuna
from optuna.trial import Trial, TrialState

log = logging.getLogger(__name__)

WORKER_ATTR = "mdmtune_worker"
"""Trial user attr: {"tag": trial_tag(token), "name": worker id}."""


class TaggedStudy(optuna.Study):
    """The job's study as one worker uses it: each trial it asks carries the worker's tag and name."""

    def __init__(self, study_name: str, storage: optuna.storages.BaseStorage, tag: str, worker_name: str) -> None:
        super().__init__(study_name=study_name, storage=storage)
        self.worker = {"tag": tag, "name": worker_name}

    def ask(self, fixed_distributions=None) -> Trial:
        trial = super().ask(fixed_distributions)
        trial.set_user_attr(WORKER_ATTR, self.worker)
        return trial


def reap_stale_trials(study: optuna.Study, live_tags: set[str], untagged_grace_s: float) -> list[int]:
    """Tell FAIL to RUNNING trials of workers that are gone and re-enqueue their (a, b); returns their numbers.

    Same contract as mdmtune.tuning.search.fail_stale_running_trials (baseline attrs kept on the re-enqueued
    trial), restricted to the dead workers' trials so that live helpers keep theirs.
    """
    from mdmtune.tuning.search import fail_and_requeue

    now = dt.datetime.now()
    reaped = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tag = (trial.user_attrs.get(WORKER_ATTR) or {}).get("tag")
        if tag in live_tags:
            continue
        started = trial.datetime_start
        if tag is None and started is not None and (now - started).total_seconds() < untagged_grace_s:
            continue
        if fail_and_requeue(study, trial):
            reaped.append(trial.number)
    if reaped:
        log.info("study %s: re-enqueued trials %s left running by dead workers", study.study_name, reaped)
    return reaped
