"""From a finished study to a reported result: `finalize(spec, study, objective) -> TuneResult`.

Quality: the search split chose the candidates, so their search values are optimistic (the winner's curse). The
top `spec.top_k` distinct complete trials and the baseline trials (linear, cos2) are re-scored on the held-out
confirm split beside sine (one batch, same records and seeds: common random numbers); the reported best is the
confirm winner (a baseline when nothing beats it there, and on ties), with a Wilson 95% interval on its confirm
score and a paired bootstrap 95% interval of its difference to each baseline, the same broken down by groups of the
confirm records, and plain-words warnings where the best loses in a group (mdmtune.tuning.shift). (Picking
the winner among k candidates on the confirm split leaves a small optimism of its own; k is kept small for that.)
Energy: exact values, no intervals: the best trial and the baselines' energies.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Protocol

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from mdmtune.core import schedules
from mdmtune.core.plans import block_count_plans, count_plan
from mdmtune.core.schedules import NAMED_AB, Schedule
from mdmtune.errors import MdmtuneError
from mdmtune.tuning.energy_objective import EnergyObjective
from mdmtune.tuning.result import (
    BaselineScore,
    BestSchedule,
    Candidate,
    CountPlan,
    TrialRecord,
    TuneResult,
)
from mdmtune.tuning.search import BASELINE_ATTR, study_nfe
from mdmtune.tuning.shift import baseline_scores, best_vs_baselines, shift_warnings
from mdmtune.tuning.spec import TuneSpec
from mdmtune.tuning.stats import paired, score_interval

CONFIRM_BASELINES: tuple[str, ...] = ("linear", "cos2", "sine")


class ConfirmingObjective(Protocol):
    """What finalize needs from a quality objective beyond `evaluate`."""

    metric: str
    search_records: int
    confirm_records: int
    typical_masked: int | None

    def confirm_scores(
        self, schedule_list: list[Schedule], should_stop: Callable[[], bool] | None = None
    ) -> tuple[np.ndarray, int]:
        """Per-record scores [S, confirm records] (replicates averaged) and the NFEs spent (cache hits cost 0)."""
        ...

    def confirm_strata(self) -> dict[str, list[str]]:
        """Stratum name -> a group label per confirm record (mdmtune.tuning.groups.record_strata)."""
        ...


def finalize(
    spec: TuneSpec, study: optuna.Study, objective: object, should_stop: Callable[[], bool] | None = None
) -> TuneResult:
    """The job's result from its study (and, for quality, a confirm-split re-scoring). `should_stop` is polled
    between the confirm split's model batches, as during the search; True raises EvaluationStopped."""
    if isinstance(objective, EnergyObjective):
        return _finalize_energy(spec, study, objective)
    return _finalize_quality(spec, study, objective, should_stop)  # type: ignore[arg-type]


def trial_records(study: optuna.Study) -> list[TrialRecord]:
    """Every trial of the study, in order, as reported (WAITING ones left out: they never ran)."""
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.WAITING:
            continue
        value = None if t.value is None else float(t.value)
        if value is None and t.state == TrialState.PRUNED and t.intermediate_values:
            value = float(t.intermediate_values[t.last_step])
        out.append(
            TrialRecord(
                number=t.number,
                a=_param(t, "a"),
                b=_param(t, "b"),
                value=value,
                state=t.state.name,
                baseline=t.user_attrs.get(BASELINE_ATTR),
            )
        )
    return out


def _param(trial: FrozenTrial, name: str) -> float | None:
    return float(trial.params[name]) if name in trial.params else None


def _wall_time(study: optuna.Study) -> float:
    """Seconds from the first trial's start to now: the job's wall time, across resumes and workers."""
    starts = [t.datetime_start for t in study.get_trials(deepcopy=False) if t.datetime_start is not None]
    if not starts:
        return 0.0
    return max(0.0, (_dt.datetime.now() - min(starts)).total_seconds())


def _complete_sorted(study: optuna.Study) -> list[FrozenTrial]:
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    minimize = study.direction == optuna.study.StudyDirection.MINIMIZE
    return sorted(complete, key=lambda t: (t.value if minimize else -t.value, t.number))


def best_plan(schedule: Schedule, spec: TuneSpec, steps: int, masked: int | None) -> CountPlan | None:
    """K_k of `schedule` for the job's lengths: one plan over gen_length, or one per block."""
    if masked is None or masked < 1:
        return None
    if spec.block_length is not None and spec.gen_length is not None:
        n_blocks = spec.gen_length // spec.block_length
        plans = block_count_plans(schedule, steps, [spec.block_length] * n_blocks)
        return CountPlan(masked=masked, block_counts=[p.tolist() for p in plans])
    return CountPlan(masked=masked, counts=count_plan(schedule.on_grid(steps), masked).tolist())


def _finalize_energy(spec: TuneSpec, study: optuna.Study, objective: EnergyObjective) -> TuneResult:
    ranked = _complete_sorted(study)
    if not ranked:
        raise MdmtuneError("the study has no finished trial to report")
    top = ranked[0]
    a, b = float(top.params["a"]), float(top.params["b"])
    names = list(NAMED_AB)
    energies = objective.energies([NAMED_AB[n] for n in names])
    best_value = float(top.value)
    baselines = {
        name: BaselineScore(a=NAMED_AB[name][0], b=NAMED_AB[name][1], score=float(e), diff=best_value - float(e))
        for name, e in zip(names, energies, strict=True)
    }
    chosen = schedules.beta(a, b)
    return TuneResult(
        objective="energy",
        steps=objective.steps,
        best=BestSchedule(
            a=a, b=b, score=best_value, name=chosen.name, search_value=best_value, trial_number=top.number
        ),
        baselines=baselines,
        trials=trial_records(study),
        nfe=0,
        wall_time_s=_wall_time(study),
        n_trials=spec.trials,
        alpha=chosen.on_grid(objective.steps).tolist(),
        plan=best_plan(chosen, spec, objective.steps, spec.gen_length),
        weight=[float(objective.weight_a), float(objective.weight_b)],
        study_name=study.study_name,
    )


def _top_candidates(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The baseline trials (linear, cos2), then the k best other complete trials, all with distinct (a, b).

    The baselines always compete on the confirm split: when nothing the search found beats them there, the honest
    answer is the baseline. Listed first, they win exact ties (no evidence that the tuned point is better).
    """
    ranked = _complete_sorted(study)
    baselines = [t for t in ranked if BASELINE_ATTR in t.user_attrs]
    seen, out = set(), []
    for trial in baselines + ranked:
        key = (round(trial.params["a"], 12), round(trial.params["b"], 12))
        if key in seen:
            continue
        if BASELINE_ATTR not in trial.user_attrs and len(out) - len(baselines) >= k:
            break
        seen.add(key)
        out.append(trial)
    return out


def _confirm_reasons(objective: object, schedule: Schedule) -> dict[str, int] | None:
    """The best schedule's confirm outputs counted by reason, where the objective keeps them."""
    counts = getattr(objective, "confirm_reasons", None)
    return counts(schedule) if counts is not None else None


def _rival_decoder(
    spec: TuneSpec,
    objective: object,
    win_scores: np.ndarray,
    should_stop: Callable[[], bool] | None,
    winner: schedules.Schedule | None = None,
) -> tuple[BaselineScore, int]:
    """The job's adaptive decoder on the confirm split, paired with the winner like the baselines; and its NFEs.
    The hybrid decoder's floor is the winner's count plan at the job's N (the tuned plan, plus every position above
    tau)."""
    from mdmtune.tuning.adaptive_sweep import AdaptiveSweep

    value = spec.entropy_bound if spec.decoder == "entropy" else spec.threshold
    floor = None if spec.decoder != "hybrid" else (winner, spec.steps_list[0])
    sweep = AdaptiveSweep(objective, spec.decoder, should_stop, floor)  # type: ignore[arg-type]
    sweep.measure([float(value)], objective.confirm_indices)  # type: ignore[attr-defined]
    measured = sweep.on(float(value), objective.confirm_indices)  # type: ignore[attr-defined]
    pair = paired(win_scores, measured.scores, resamples=spec.bootstrap_resamples, seed=spec.seed)
    rival = BaselineScore.against_best(pair, None, None, nfe_per_record=float(measured.calls.mean()))
    return rival, sweep.nfe


def _finalize_quality(
    spec: TuneSpec, study: optuna.Study, objective: ConfirmingObjective, should_stop: Callable[[], bool] | None
) -> TuneResult:
    steps = spec.steps_list[0]
    candidates = _top_candidates(study, spec.top_k)
    if not candidates:
        raise MdmtuneError("the study has no complete trial to confirm (all pruned, failed or cancelled)")
    tuned = [schedules.beta(float(t.params["a"]), float(t.params["b"])) for t in candidates]
    references = [schedules.named(name) for name in CONFIRM_BASELINES]
    scores, nfe_confirm = objective.confirm_scores(tuned + references, should_stop)
    means = scores.mean(axis=1)
    winner = int(np.argmax(means[: len(tuned)]))  # ties: a baseline, then the better search value
    win_scores = scores[winner]
    top = candidates[winner]
    best = BestSchedule(
        a=float(top.params["a"]),
        b=float(top.params["b"]),
        score=float(means[winner]),
        ci=score_interval(win_scores).as_list(),
        name=tuned[winner].name,
        reasons=_confirm_reasons(objective, tuned[winner]),
        search_value=float(top.value),
        trial_number=top.number,
    )
    rows = {reference.name: scores[len(tuned) + i] for i, reference in enumerate(references)}
    baselines = baseline_scores(win_scores, rows, {r.name: (r.a, r.b) for r in references}, spec)
    if spec.decoder != "schedule":
        baselines[spec.decoder], decoder_nfe = _rival_decoder(spec, objective, win_scores, should_stop, tuned[winner])
        nfe_confirm += decoder_nfe
    nfe_search = study_nfe(study)
    masked = spec.gen_length if spec.gen_length is not None else objective.typical_masked
    result = TuneResult(
        objective="quality",
        steps=steps,
        best=best,
        baselines=baselines,
        trials=trial_records(study),
        nfe=nfe_search + nfe_confirm,
        wall_time_s=_wall_time(study),
        n_trials=spec.trials,
        alpha=tuned[winner].on_grid(steps).tolist(),
        plan=best_plan(tuned[winner], spec, steps, masked),
        nfe_search=nfe_search,
        nfe_confirm=nfe_confirm,
        metric=objective.metric,
        search_records=objective.search_records,
        confirm_records=objective.confirm_records,
        model=objective.model_report(),
        candidates=[
            Candidate(
                a=float(t.params["a"]),
                b=float(t.params["b"]),
                search_value=float(t.value),
                confirm_score=float(means[i]),
                trial_number=t.number,
            )
            for i, t in enumerate(candidates)
        ],
        study_name=study.study_name,
        groups=best_vs_baselines(win_scores, rows, objective.confirm_strata(), spec),
    )
    result.warnings = shift_warnings(result)
    return result
