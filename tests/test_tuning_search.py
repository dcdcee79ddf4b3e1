"""The search machinery on the model-free energy objective: it lands on the minimum, respects its budget when
resumed or shared between workers, enqueues the baselines once, is deterministic, and stops when told to."""

from __future__ import annotations

import math
import threading

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from scipy.special import betainc

from mdmtune.errors import InvalidInput
from mdmtune.tuning import (
    EnergyObjective,
    TuneSpec,
    count_trials,
    create_study,
    fail_stale_running_trials,
    finalize,
    open_storage,
    run_search,
)
from mdmtune.tuning.search import _ask_within_budget, distributions


def chord_energy(a: np.ndarray, b: np.ndarray, steps: int, wa: float, wb: float) -> np.ndarray:
    """E_N written from docs/math.md directly (theta_k = pi/2 I_{t_k}(a, b); the chord form), independent of mdmtune."""
    t = np.arange(steps + 1) / steps
    theta = 0.5 * math.pi * betainc(a[:, None], b[:, None], t[None, :])
    gamma_w = betainc(wa, wb, t)
    return 4 * np.sum(2 * (1 - np.cos(np.diff(theta, axis=1))) / np.diff(gamma_w), axis=1)


def energy_spec(**changes) -> TuneSpec:
    base = {"objective": "energy", "steps": 16, "n_trials": 200, "seed": 0}
    return TuneSpec(**{**base, **changes})


def run_energy(spec: TuneSpec, storage=None, name=None, **kwargs) -> optuna.Study:
    study = create_study(spec, storage, name)
    run_search(spec, study, EnergyObjective(spec.steps, spec.weight_a, spec.weight_b), **kwargs)
    return study


@pytest.mark.parametrize("weight", [(0.8, 0.8), (1.0, 0.2), (2.0, 3.0), (0.3, 1.5)])
def test_energy_search_lands_on_the_dense_grid_minimum(weight):
    spec = energy_spec(weight_a=weight[0], weight_b=weight[1])
    study = run_energy(spec)
    grid = np.exp(np.linspace(math.log(0.05), math.log(5), 300))
    a, b = (m.ravel() for m in np.meshgrid(grid, grid, indexing="ij"))
    energies = chord_energy(a, b, spec.steps, *weight)
    best = int(np.argmin(energies))
    found = study.best_params
    assert study.best_value <= energies[best] * (1 + 1e-3)
    assert abs(math.log(found["a"] / a[best])) < 0.06
    assert abs(math.log(found["b"] / b[best])) < 0.06
    value = chord_energy(np.array([found["a"]]), np.array([found["b"]]), spec.steps, *weight)[0]
    assert study.best_value == pytest.approx(value, rel=1e-10)


@pytest.mark.parametrize("weight", [(0.8, 0.8), (2.0, 3.0), (0.3, 1.5)])
def test_energy_search_recovers_the_weight_at_many_steps(weight):
    study = run_energy(energy_spec(steps=64, weight_a=weight[0], weight_b=weight[1]))
    assert study.best_params["a"] == pytest.approx(weight[0], rel=0.08)
    assert study.best_params["b"] == pytest.approx(weight[1], rel=0.08)


def test_energy_result_reports_best_and_baseline_energies():
    spec = energy_spec(steps=8, n_trials=40, weight_a=0.8, weight_b=0.8, gen_length=32, block_length=8)
    study = run_energy(spec)
    result = finalize(spec, study, EnergyObjective(8, 0.8, 0.8))
    lin, cos2 = chord_energy(np.array([0.5, 1.0]), np.array([0.5, 1.0]), 8, 0.8, 0.8)
    assert result.baselines["linear"].score == pytest.approx(lin, rel=1e-10)
    assert result.baselines["cos2"].score == pytest.approx(cos2, rel=1e-10)
    assert result.best.score <= min(lin, cos2)
    assert len(result.trials) == 40 and result.nfe == 0
    assert [sum(block) for block in result.plan.block_counts] == [8, 8, 8, 8]


def test_baselines_are_the_first_trials_and_enqueued_once_even_if_create_study_runs_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    spec = energy_spec(n_trials=6)
    create_study(spec, url, "job")
    create_study(spec, url, "job")
    study = optuna.load_study(study_name="job", storage=url)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    fixed = sorted(tuple(t.system_attrs["fixed_params"].values()) for t in waiting)
    assert fixed == [(0.5, 0.5), (1.0, 1.0)]
    run_search(spec, study, EnergyObjective(16))
    first = study.get_trials()[:2]
    assert [t.user_attrs["baseline"] for t in first] == ["linear", "cos2"]
    assert sum("baseline" in t.user_attrs for t in study.get_trials()) == 2


def test_baselines_outside_the_bounds_are_not_enqueued():
    study = create_study(energy_spec(a_bounds=(0.7, 5.0)), None, "x")
    assert [t.system_attrs["fixed_params"] for t in study.get_trials()] == [{"a": 1.0, "b": 1.0}]


def test_resumed_study_keeps_finished_trials_and_stops_at_n_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    spec = energy_spec(n_trials=18, trials_per_batch=4)
    batches = []
    first = run_energy(spec, url, "job", progress=batches.append, should_stop=lambda: len(batches) >= 2)
    before = [(t.number, t.params, t.value) for t in first.get_trials(states=(TrialState.COMPLETE,))]
    assert len(before) == 8
    resumed = run_energy(spec, url, "job")
    after = resumed.get_trials()
    assert count_trials(resumed) == (18, 0)
    assert len(after) == 18
    assert [(t.number, t.params, t.value) for t in after[:8]] == before
    again = run_energy(spec, url, "job")
    assert len(again.get_trials()) == 18


def test_should_stop_is_checked_between_batches():
    spec = energy_spec(n_trials=50, trials_per_batch=5)
    seen = []
    study = create_study(spec, None, "x")
    run = run_search(spec, study, EnergyObjective(16), progress=seen.append, should_stop=lambda: len(seen) == 3)
    assert run.stopped and run.batches == 3
    assert count_trials(study) == (15, 0)
    assert [p.trials_done for p in seen] == [5, 10, 15]
    assert seen[-1].best_value == min(t.value for t in study.get_trials())


def test_same_seed_same_trials_and_another_seed_other_trials():
    def params(seed):
        return [tuple(t.params.values()) for t in run_energy(energy_spec(n_trials=40, seed=seed)).get_trials()]

    assert params(3) == params(3)
    assert params(3)[2:] != params(4)[2:]


def _two_workers(spec: TuneSpec, open_study) -> None:
    errors = []

    def worker(seed: int) -> None:
        try:
            run_search(spec, open_study(), EnergyObjective(spec.steps), worker_seed=seed, poll_s=0.01)
        except Exception as error:  # surfaced below, with the thread's error
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def _assert_exactly_n_finished(study: optuna.Study, n: int) -> None:
    trials = study.get_trials()
    assert count_trials(study) == (n, 0)
    assert not [t for t in trials if t.state == TrialState.FAIL and not t.user_attrs.get("surplus")]
    assert sorted(t.user_attrs.get("baseline") for t in trials if "baseline" in t.user_attrs) == ["cos2", "linear"]


def test_two_workers_on_one_sqlite_study_stop_at_exactly_n_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    spec = energy_spec(n_trials=23, trials_per_batch=4)
    create_study(spec, url, "job")
    _two_workers(spec, lambda: create_study(spec, url, "job"))
    _assert_exactly_n_finished(optuna.load_study(study_name="job", storage=url), 23)


@pytest.mark.postgres
def test_two_workers_on_one_postgres_study_stop_at_exactly_n_trials(migrated_postgres_url):
    from mdmtune.service.db.session import optuna_storage

    spec = energy_spec(n_trials=29, trials_per_batch=3)
    create_study(spec, optuna_storage(migrated_postgres_url), "two-workers")
    _two_workers(spec, lambda: create_study(spec, optuna_storage(migrated_postgres_url), "two-workers"))
    study = optuna.load_study(study_name="two-workers", storage=optuna_storage(migrated_postgres_url))
    _assert_exactly_n_finished(study, 29)


def test_trials_asked_past_the_budget_are_failed_as_surplus():
    spec = energy_spec(n_trials=5)
    study = run_energy(spec.replace(n_trials=4))
    kept = _ask_within_budget(study, distributions(spec), 3, n_trials=5)
    assert len(kept) == 1
    surplus = [t for t in study.get_trials() if t.user_attrs.get("surplus")]
    assert [t.state for t in surplus] == [TrialState.FAIL, TrialState.FAIL]


def test_stale_running_trials_are_failed_requeued_and_the_budget_refilled(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    spec = energy_spec(n_trials=10)
    dead = create_study(spec, url, "job")
    asked = [dead.ask(distributions(spec)) for _ in range(3)]  # a worker that died mid-batch
    stale_params = [t.params for t in asked]
    study = create_study(spec, url, "job")
    assert fail_stale_running_trials(study) == [0, 1, 2]
    run_search(spec, study, EnergyObjective(16))
    trials = study.get_trials()
    assert count_trials(study) == (10, 0)
    assert [t.state for t in trials[:3]] == [TrialState.FAIL] * 3
    assert [t.params for t in trials[3:6]] == stale_params  # re-enqueued points run first
    assert [t.user_attrs.get("baseline") for t in trials[3:5]] == ["linear", "cos2"]


def test_storage_url_and_storage_object_both_work(tmp_path):
    spec = energy_spec(n_trials=4)
    for storage in (f"sqlite:///{tmp_path / 'a.db'}", open_storage(f"sqlite:///{tmp_path / 'b.db'}")):
        assert count_trials(run_energy(spec, storage, "s")) == (4, 0)


def test_objective_of_the_wrong_direction_is_refused():
    spec = energy_spec(objective="quality")
    with pytest.raises(InvalidInput) as error:
        run_search(spec, create_study(energy_spec(), None, "x"), EnergyObjective(16))
    assert error.value.field == "objective"


@pytest.mark.parametrize("algorithm", ["random", "gp"])
def test_other_search_algorithms_run_and_respect_the_budget(algorithm):
    spec = energy_spec(n_trials=14, search_algorithm=algorithm, trials_per_batch=4)
    study = run_energy(spec)
    assert count_trials(study) == (14, 0)
    assert study.best_value <= min(t.value for t in study.get_trials()[:2])


def test_cmaes_runs_within_the_budget():
    spec = energy_spec(n_trials=12, search_algorithm="cmaes")
    assert count_trials(run_energy(spec)) == (12, 0)
