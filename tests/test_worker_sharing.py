"""Which RUNNING trials are reaped when several workers share a study: only those of workers that are gone."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from mdmtune.service.workers.sharing import WORKER_ATTR, TaggedStudy, reap_stale_trials
from mdmtune.tuning.search import BASELINE_ATTR, create_study, distributions
from mdmtune.tuning.spec import TuneSpec

SPEC = TuneSpec(objective="energy", steps=4, n_trials=10)


def _study(storage) -> optuna.Study:
    create_study(SPEC, storage, "shared")  # enqueues the baselines linear, cos2
    return optuna.load_study(study_name="shared", storage=storage)


def test_trials_carry_the_asking_workers_tag_and_name():
    storage = optuna.storages.InMemoryStorage()
    _study(storage)
    trial = TaggedStudy("shared", storage, "tag-a", "worker-a").ask(distributions(SPEC))
    assert trial.user_attrs[WORKER_ATTR] == {"tag": "tag-a", "name": "worker-a"}


def test_only_dead_workers_running_trials_are_failed_and_re_enqueued():
    storage = optuna.storages.InMemoryStorage()
    study = _study(storage)
    dead = TaggedStudy("shared", storage, "dead", "w-dead").ask(distributions(SPEC))  # takes the linear baseline
    live = TaggedStudy("shared", storage, "live", "w-live").ask(distributions(SPEC))  # takes cos2
    untagged = study.ask(distributions(SPEC))

    assert reap_stale_trials(study, {"live"}, untagged_grace_s=3600) == [dead.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states[dead.number] == TrialState.FAIL
    assert states[live.number] == states[untagged.number] == TrialState.RUNNING
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs[BASELINE_ATTR] == "linear"  # the baseline is kept

    assert reap_stale_trials(study, {"live"}, untagged_grace_s=0) == [untagged.number]  # older than the grace
    assert study.get_trials()[live.number].state == TrialState.RUNNING
