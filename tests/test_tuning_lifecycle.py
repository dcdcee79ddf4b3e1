"""The job lifecycle (prepare -> search -> finish) that the library and the worker share: what a stop means to each,
that the worker's hooks are called, and that a sweep keeps one prepared model across its step counts."""

from __future__ import annotations

import pytest

from mdmtune.errors import InvalidInput
from mdmtune.tuning import TuneSpec, create_study, tune
from mdmtune.tuning.lifecycle import JobHooks, JobInputs, Stopped, prepare, run_job, run_one, run_sweep
from mdmtune.tuning.result import TuneResult
from mdmtune.tuning.toy_denoiser import ToyPosterior, toy_eval_set

ENERGY = TuneSpec(objective="energy", steps=8, n_trials=12, trials_per_batch=3, weight_a=2.0, weight_b=0.5)


def _in_memory(name: str = "job"):
    return lambda one: create_study(one, None, name)


def _stop_after(batches: int):
    seen: list[object] = []
    return seen, (lambda: len(seen) >= batches)


def test_the_library_finishes_a_stopped_search_on_the_trials_it_has():
    seen, stop = _stop_after(2)
    result = run_one(ENERGY, JobInputs(), _in_memory(), JobHooks(progress=seen.append, should_stop=stop))
    assert isinstance(result, TuneResult)
    assert len(result.trials) == 6 and len(seen) == 2


def test_a_worker_ends_a_stopped_job_without_a_result():
    seen, stop = _stop_after(2)
    hooks = JobHooks(progress=seen.append, should_stop=stop, finish_when_stopped=False)
    assert run_one(ENERGY, JobInputs(), _in_memory(), hooks) == Stopped(trials_done=6)


def test_a_finished_job_is_the_same_through_tune_and_through_a_workers_hooks():
    """The worker's hooks (its own seed hook, no stop) change nothing in what the library computes."""
    seeds: list[int] = []

    def seed(study) -> int:
        seeds.append(len(study.trials))
        return ENERGY.seed

    worker = run_job(ENERGY, JobInputs(), _in_memory(), JobHooks(worker_seed=seed, finish_when_stopped=False))
    library = tune(ENERGY)
    assert seeds == [2]  # called once, on the opened study holding the enqueued baselines
    assert isinstance(worker, TuneResult)
    assert (worker.best.a, worker.best.b, worker.best.score) == (library.best.a, library.best.b, library.best.score)


def test_a_service_job_tunes_one_step_count():
    with pytest.raises(InvalidInput) as error:
        run_job(ENERGY.replace(steps=(4, 8)), JobInputs(), _in_memory(), JobHooks())
    assert error.value.field == "steps"


def test_a_second_eval_set_is_refused_for_an_energy_job_before_any_trial():
    with pytest.raises(InvalidInput) as error:
        prepare(ENERGY, JobInputs(validate_eval_set=toy_eval_set("two-or-three", 10)))
    assert error.value.field == "validate_eval_set"


def test_a_sweep_keeps_one_prepared_model_and_score_cache_across_its_step_counts():
    spec = TuneSpec(
        objective="quality",
        steps=(2, 3),
        metric="regex",
        remasking="random",
        temperature=1.0,
        n_trials=4,
        trials_per_batch=4,
        min_rung_records=8,
    )
    model = ToyPosterior("two-or-three")
    inputs = JobInputs(checkpoint=model, eval_set=toy_eval_set("two-or-three", 40))
    opened = []

    def open_study(one):
        opened.append(one.steps)
        return create_study(one, None, f"sweep-{one.steps}")

    sweep = run_sweep(spec, inputs, open_study, JobHooks())
    assert opened == [2, 3] and sweep.steps == [2, 3]
    first = prepare(spec.for_steps(2), inputs)
    second = first.at_steps(3, inputs)
    assert second.objective.denoiser is first.objective.denoiser is model
    assert second.objective.cache is first.objective.cache and second.spec.steps == 3
