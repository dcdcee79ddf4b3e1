"""The quality search end to end on real project pieces: the batched sampler, evaluation, metrics and eval sets.

The model is the exact toy's posterior (mdmtune.tuning.toy_denoiser): for each masked position, P(a | the unmasked
tokens) under the target. With the count sampler, random remasking and temperature 1 this is
exactly the toy's count sampler, so the expected score of a schedule under the regex metric "the output is in the
target's support" is the toy's exact support_mass: an independent reference for what the search should find.
A second test runs a real native checkpoint (a random reference MDM written with save_native) from its path.
"""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState

from mdmtune.cli.output import to_jsonable
from mdmtune.core import schedules
from mdmtune.core.schedules import named
from mdmtune.core.toy import run_toy, run_toy_schedule
from mdmtune.models.codec import CharCodec
from mdmtune.tuning import TuneSpec, count_trials, create_study, finalize, run_search, study_nfe, tune
from mdmtune.tuning.cache import ScoreCache
from mdmtune.tuning.quality_objective import QualityObjective, rung_sizes, split_records
from mdmtune.tuning.toy_denoiser import ToyPosterior, toy_eval_set


def toy_spec(**changes) -> TuneSpec:
    base = dict(
        objective="quality",
        steps=3,
        metric="regex",
        sampler="count",
        remasking="random",
        temperature=1.0,
        n_trials=24,
        trials_per_batch=6,
        min_rung_records=8,
        seed=0,
    )
    return TuneSpec(**{**base, **changes})


def test_pipeline_score_estimates_the_exact_toy_support_mass():
    spec = toy_spec(confirm_fraction=0.5)
    objective = QualityObjective.build(
        spec, checkpoint=ToyPosterior("two-or-three"), eval_set=toy_eval_set("two-or-three", 400)
    )
    schedules = [named("linear"), named("cos2")]
    scores, nfe = objective.record_scores(schedules, objective.search_indices)
    for schedule, row in zip(schedules, scores, strict=True):
        exact = run_toy_schedule("two-or-three", schedule, 3, "count").support_mass
        se = math.sqrt(exact * (1 - exact) / row.size)
        assert abs(row.mean() - exact) < 4 * se
    assert nfe > 0


def test_splits_are_seeded_disjoint_and_rungs_grow_by_the_reduction_factor():
    search, confirm = split_records(100, 0.3, seed=1)
    assert len(confirm) == 30 and len(search) == 70
    assert not set(search) & set(confirm) and set(search) | set(confirm) == set(range(100))
    assert np.array_equal(split_records(100, 0.3, seed=1)[0], search)
    assert not np.array_equal(split_records(100, 0.3, seed=2)[0], search)
    assert rung_sizes(70, 3, 8) == [8, 24, 70]
    assert rung_sizes(10, 3, 8) == [10]


@pytest.fixture(scope="module")
def toy_run():
    """One small search on the two-or-three target, shared by the tests that read its study and result."""
    spec = toy_spec(min_rung_records=5)
    objective = QualityObjective.build(
        spec, checkpoint=ToyPosterior("two-or-three"), eval_set=toy_eval_set("two-or-three", 90)
    )
    study = create_study(spec, None, "toy")
    run = run_search(spec, study, objective)
    result = finalize(spec, study, objective)
    return spec, objective, study, run, result


def test_search_stops_at_n_trials_and_prunes_on_rungs_but_never_a_baseline(toy_run):
    spec, objective, study, _run, _ = toy_run
    assert objective.rungs == [7, 21, 63]
    assert count_trials(study) == (spec.trials, 0)
    states = [t.state for t in study.get_trials()]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    baselines = [t for t in study.get_trials() if "baseline" in t.user_attrs]
    assert [t.state for t in baselines] == [TrialState.COMPLETE] * 2
    for trial in study.get_trials(states=(TrialState.PRUNED,)):
        assert trial.last_step < objective.rungs[-1]


def test_result_is_the_confirm_winner_with_intervals_and_paired_differences(toy_run):
    _spec, _objective, _study, _run, result = toy_run
    assert result.objective == "quality" and result.steps == 3
    winner = max(result.candidates, key=lambda c: c.confirm_score)
    assert (result.best.a, result.best.b) == (winner.a, winner.b)
    assert result.best.ci[0] <= result.best.score <= result.best.ci[1]
    assert set(result.baselines) == {"linear", "cos2", "sine"}
    for base in result.baselines.values():
        assert base.diff == pytest.approx(result.best.score - base.score)
        assert base.diff_ci[0] <= base.diff <= base.diff_ci[1]
    assert result.confirm_records == 27 and result.search_records == 63
    document = json.loads(json.dumps(to_jsonable(result)))
    assert {"best", "baselines", "trials", "nfe", "objective", "steps"} <= set(document)
    assert {"a", "b", "score", "ci"} <= set(document["best"])
    assert {"a", "b", "score", "diff_ci"} <= set(document["baselines"]["cos2"])
    assert {"a", "b", "value", "state"} <= set(document["trials"][0])
    assert sum(document["plan"]["counts"]) == 5


def test_nfe_is_the_search_spend_plus_the_confirmation(toy_run):
    _, objective, study, run, result = toy_run
    assert result.nfe_search == study_nfe(study) == run.nfe
    assert result.nfe == result.nfe_search + result.nfe_confirm
    assert objective.nfe_spent == result.nfe


def test_cached_scores_cost_no_model_call_again(toy_run):
    spec, objective, study, _, result = toy_run
    calls = objective.denoiser.calls
    again = finalize(spec, study, objective)
    assert again.nfe_confirm == 0 and objective.denoiser.calls == calls
    assert again.best == result.best


def test_the_search_finds_a_schedule_the_exact_toy_ranks_above_linear():
    """At 3 steps the toy's best point beats linear (the paper's Fig. 4); the tuned one must too, exactly scored."""
    spec = toy_spec(n_trials=30)
    result = tune(spec, checkpoint=ToyPosterior("extremes"), eval_set=toy_eval_set("extremes", 150))
    # cos2 already reaches the whole support here: a tuned point can only tie it, and ties go to the baseline
    assert (result.best.a, result.best.b) == (1.0, 1.0) and result.best.score == 1.0
    exact_best = run_toy("extremes", result.best.a, result.best.b, 3, "count").support_mass
    exact_linear = run_toy("extremes", 0.5, 0.5, 3, "count").support_mass
    assert exact_best > exact_linear


def test_same_seed_same_search_and_result():
    def once():
        spec = toy_spec(n_trials=12)
        model = ToyPosterior("two-or-three")
        study = create_study(spec, None, "x")
        objective = QualityObjective.build(spec, checkpoint=model, eval_set=toy_eval_set("two-or-three", 40))
        run_search(spec, study, objective)
        return [(t.params, t.value, t.state) for t in study.get_trials()], finalize(spec, study, objective).best

    assert once() == once()


def test_score_cache_file_is_read_back_by_a_new_objective(tmp_path):
    spec = toy_spec(n_trials=8)
    path = tmp_path / "scores.jsonl"

    def build(seed: int = 0) -> QualityObjective:
        return QualityObjective.build(
            spec.replace(seed=seed),
            checkpoint=ToyPosterior("extremes"),
            eval_set=toy_eval_set("extremes", 30),
            cache=ScoreCache(path),
            checkpoint_sha="toy-extremes",  # a model without parameters has no content hash: name it
        )

    scores, nfe = build().confirm_scores([named("linear")])
    assert nfe > 0
    again, nfe_again = build().confirm_scores([named("linear")])
    assert nfe_again == 0 and np.array_equal(again, scores)
    assert build(seed=1).confirm_scores([named("linear")])[1] > 0  # another seed is another key


def test_native_checkpoint_path_tunes_end_to_end(tmp_path):
    """A real checkpoint written by save_native (random weights) and a real testbed eval set, through tune()."""
    from mdmtune.data.evalsets import write_eval_set
    from mdmtune.models.native import save_native
    from mdmtune.models.reference import ReferenceConfig, ReferenceMDM
    from mdmtune.testbeds import get_testbed

    torch.manual_seed(0)
    testbed = get_testbed("arithmetic")
    codec = CharCodec.for_alphabet(testbed.alphabet, eot_text=testbed.pad_char)
    config = ReferenceConfig(
        vocab_size=codec.vocab_size,
        max_len=testbed.context_length + testbed.target_length,
        mask_token_id=codec.mask_token_id,
        pad_token_id=codec.eot_token_id,
        d_model=16,
        n_layers=1,
        n_heads=2,
        d_ff=32,
    )
    checkpoint = save_native(ReferenceMDM(config), codec, tmp_path / "ckpt")
    eval_path = tmp_path / "eval.jsonl"
    write_eval_set(testbed.eval_records(12, seed=0), eval_path)
    spec = TuneSpec(steps=4, gen_length=testbed.gen_length, metric=testbed.metric, n_trials=6, trials_per_batch=3)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    result = tune(spec, checkpoint=checkpoint, eval_set=eval_path, storage=storage, study_name="job")
    assert len(result.trials) == 6 and result.nfe > 0
    assert result.plan.counts is not None and sum(result.plan.counts) == testbed.gen_length
    study = optuna.load_study(study_name="job", storage=storage)
    assert count_trials(study) == (6, 0)


def test_should_stop_interrupts_a_batch_between_model_calls_and_a_resume_reruns_its_points():
    spec = toy_spec(n_trials=10, trials_per_batch=5, batch_size=8)
    model = ToyPosterior("two-or-three")
    objective = QualityObjective.build(spec, checkpoint=model, eval_set=toy_eval_set("two-or-three", 60))
    study = create_study(spec, None, "x")
    polls = []

    def stop() -> bool:
        polls.append(model.calls)
        return model.calls > 0  # say stop as soon as the first batch has made a model call

    run = run_search(spec, study, objective, should_stop=stop)
    assert run.stopped and run.batches == 0
    trials = study.get_trials()
    interrupted = [t for t in trials if t.state == TrialState.FAIL]
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(interrupted) == 5
    assert [t.system_attrs["fixed_params"] for t in waiting] == [t.params for t in interrupted]
    run_search(spec, study, objective)
    assert count_trials(study) == (10, 0)
    done = [t.params for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))]
    assert all(t.params in done for t in interrupted)


def test_hf_checkpoint_written_by_transformers_tunes_end_to_end(tmp_path):
    """A tiny BertForMaskedLM saved with save_pretrained, infill records with its own [MASK] text."""
    from _model_builders import save_tiny_bert

    save_tiny_bert(tmp_path / "bert")
    pairs = [("the [MASK] sat on a mat", "the cat sat on a mat"), ("a dog [MASK] to [MASK] mat", "a dog ran to it")]
    lines = [{"id": i, "masked": masked, "answer": answer} for i, (masked, answer) in enumerate(pairs * 6)]
    eval_path = tmp_path / "eval.jsonl"
    eval_path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    spec = TuneSpec(steps=2, metric="exact_match", n_trials=5, trials_per_batch=5, confirm_fraction=0.5)
    result = tune(spec, checkpoint=tmp_path / "bert", eval_set=eval_path)
    assert len(result.trials) == 5 and result.nfe > 0
    assert result.search_records == result.confirm_records == 6
    assert sum(result.plan.counts) == result.plan.masked in (1, 2)


def test_schedules_with_the_same_count_plans_are_sampled_once():
    """The count sampler reads a schedule only through its plans: a plateau of (a, b) costs one evaluation."""
    spec = toy_spec()

    def objective(sampler: str = "count") -> QualityObjective:
        return QualityObjective.build(
            spec.replace(sampler=sampler), checkpoint=ToyPosterior("extremes"), eval_set=toy_eval_set("extremes", 20)
        )

    same = [schedules.beta(0.8, 0.8), schedules.beta(0.8, 0.82)]  # both commit 2, 2, 1 of the 5 tokens
    first = objective()
    assert first.schedule_identity(same[0]) == first.schedule_identity(same[1])
    assert first.schedule_identity(schedules.beta(0.1, 3.0)) != first.schedule_identity(same[0])
    both, nfe_both = first.record_scores(same, first.search_indices)
    alone, nfe_alone = objective().record_scores(same[:1], first.search_indices)
    assert nfe_both == nfe_alone and np.array_equal(both[0], both[1]) and np.array_equal(both[0], alone[0])
    ancestral = objective("ancestral")
    assert ancestral.schedule_identity(same[0]) != ancestral.schedule_identity(same[1])
