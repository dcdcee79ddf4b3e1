"""Does the tuned schedule hold beyond the records that chose it? Group breakdowns, a second set, plain warnings.

The confirm split keeps the reported numbers honest for data like the eval set, but not for other data: a tuned
point can win on the confirm split and lose on the records the user will actually run (measured on the shipped
Sudoku model: tuned beats linear by 0.30 on the confirm split and loses to it by 0.08 on puzzles from another grid
generator, examples/README.md).
So a quality result carries
- `groups`: the confirm split broken down by strata of its records, best vs each baseline (mdmtune.tuning.groups);
- `validation` (optional): the best and the baselines re-scored on a second eval set when the search ends, with
  the same sampler settings, seed and statistics (mdmtune.tuning.compare.sample_scores);
- `warnings`: plain sentences when the best wins overall but loses significantly in some group, or scores below a
  baseline on the second set. Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from mdmtune.core import schedules
from mdmtune.errors import InvalidInput
from mdmtune.tuning.groups import GroupBreakdown, GroupLoss, breakdown, record_strata
from mdmtune.tuning.result import BaselineScore, BestSchedule, TuneResult, Validation
from mdmtune.tuning.spec import TuneSpec
from mdmtune.tuning.stats import paired, score_interval

if TYPE_CHECKING:
    from mdmtune.data.evalsets import EvalSet
    from mdmtune.tuning.evaluation import EncodedSet
    from mdmtune.tuning.quality_objective import QualityObjective

BEST = "best"


def best_vs_baselines(
    best_scores: np.ndarray, baseline_scores: dict[str, np.ndarray], strata: dict[str, list[str]], spec: TuneSpec
) -> GroupBreakdown:
    """Per-group scores of the best and each baseline, and best - baseline per group (pairs over the records)."""
    names = [BEST, *baseline_scores]
    scores = np.stack([best_scores, *baseline_scores.values()])
    pairs = [(0, j) for j in range(1, len(names))]
    return breakdown(scores, names, pairs, strata, resamples=spec.bootstrap_resamples, seed=spec.seed)


def baseline_scores(
    best_scores: np.ndarray,
    baseline_rows: dict[str, np.ndarray],
    shapes: dict[str, tuple[float | None, float | None]],
    spec: TuneSpec,
) -> dict[str, BaselineScore]:
    """Each baseline (name -> its per-record scores, its (a, b)) with the best scored against it, paired."""
    return {
        name: BaselineScore.against_best(
            paired(best_scores, row, resamples=spec.bootstrap_resamples, seed=spec.seed), *shapes[name]
        )
        for name, row in baseline_rows.items()
    }


def prepare_validation(
    objective: QualityObjective, eval_set: str | os.PathLike[str] | EvalSet
) -> tuple[EvalSet, EncodedSet]:
    """Load (a path) and encode the second eval set for the objective's model, before the search: a set the metric
    cannot score, or without the mask symbol, is refused at once, naming `validate_eval_set`."""
    from mdmtune.data.evalsets import EvalSet, load_eval_set
    from mdmtune.tuning.evaluation import encode_records

    try:
        records = eval_set if isinstance(eval_set, EvalSet) else load_eval_set(eval_set)
        objective.metric_obj.check_records(records.records)
        spec = objective.spec
        encoded = encode_records(
            objective.denoiser,
            records,
            gen_length=spec.gen_length,
            mask_symbol=spec.mask_symbol,
            add_special_tokens=spec.add_special_tokens,
            chat_template=spec.chat_template,
        )
    except InvalidInput as error:
        raise InvalidInput("validate_eval_set", error.message) from None
    if encoded.kind != objective.encoded.kind:
        raise InvalidInput(
            "validate_eval_set", f"holds {encoded.kind} records, the tuning eval set {objective.encoded.kind} records"
        )
    return records, encoded


def validate(result: TuneResult, objective: QualityObjective, prepared: tuple[EvalSet, EncodedSet]) -> Validation:
    """Re-score the best and the baselines on every record of the prepared second set; paired statistics."""
    from mdmtune.tuning.compare import sample_scores

    records, encoded = prepared
    spec: TuneSpec = objective.spec
    names = [name for name in result.baselines if name in schedules.NAMES]  # a rival decoder is no schedule
    items = [schedules.beta(result.best.a, result.best.b), *(schedules.named(n) for n in names)]
    sampled = sample_scores(
        objective.denoiser, encoded, items, result.steps, objective.sampler_settings(), objective.metric_obj,
        seed=spec.seed, replicates=spec.replicates, batch_size=spec.batch_size,
    )  # fmt: skip
    best_row = sampled.scores[0]
    rows = {name: sampled.scores[1 + i] for i, name in enumerate(names)}
    shapes = {name: (result.baselines[name].a, result.baselines[name].b) for name in names}
    baselines = baseline_scores(best_row, rows, shapes, spec)
    best = BestSchedule(
        a=result.best.a, b=result.best.b, score=float(best_row.mean()), ci=score_interval(best_row).as_list(),
        name=result.best.name,
    )  # fmt: skip
    strata = record_strata(encoded, np.arange(len(encoded)))
    groups = best_vs_baselines(best_row, rows, strata, spec)
    return Validation(records.sha256, len(encoded), best, baselines, groups, nfe=sum(sampled.nfe))


def attach_validation(
    result: TuneResult, objective: QualityObjective, prepared: tuple[EvalSet, EncodedSet]
) -> TuneResult:
    """Add the second set's re-scoring to `result` (its NFEs counted) and refresh the warnings."""
    result.validation = validate(result, objective, prepared)
    result.nfe += result.validation.nfe
    result.warnings = shift_warnings(result)
    return result


def shift_warnings(result: TuneResult) -> list[str]:
    """Plain sentences for every sign that the best's win does not carry over (empty when none)."""
    if result.objective != "quality":
        return []
    point = f"the tuned schedule (a = {result.best.a:.4g}, b = {result.best.b:.4g})"
    out = []
    if result.groups is not None:
        out += [_group_sentence(point, loss, result.baselines, "confirm split") for loss in result.groups.losses]
    validation = result.validation
    if validation is not None:
        for name, base in validation.baselines.items():
            sentence = _validation_sentence(point, name, base, result.baselines.get(name))
            if sentence:
                out.append(sentence)
        out += [_group_sentence(point, loss, result.baselines, "second eval set") for loss in validation.groups.losses]
    return out


def _group_sentence(point: str, loss: GroupLoss, baselines: dict[str, BaselineScore], where: str) -> str:
    overall = baselines.get(loss.reference)
    won = overall is not None and overall.diff is not None and overall.diff > 0
    lead = f"{point} beats {loss.reference} overall ({overall.diff:+.3f})" if won else point
    joint = " but" if won else ""
    return (
        f"{lead}{joint} loses to {loss.reference} on the {where}'s records with {loss.stratum} = {loss.group}: "
        f"{loss.diff:+.3f} over {loss.records} records ({100 * loss.confidence:.2f}% interval "
        f"[{loss.diff_ci[0]:.3f}, {loss.diff_ci[1]:.3f}], corrected for the number of groups); "
        f"check such records before deploying it."
    )


def _validation_sentence(point: str, name: str, base: BaselineScore, confirm: BaselineScore | None) -> str | None:
    if base.diff is None or base.diff >= 0 or base.diff_ci is None:
        return None
    won = confirm is not None and confirm.diff is not None and confirm.diff > 0
    low, high = base.diff_ci
    before = f"beat {name} on the confirm split ({confirm.diff:+.3f}) and " if won else ""
    if high < 0:
        return (
            f"{point} {before}loses to {name} on the second eval set: {base.diff:+.3f} (paired 95% interval "
            f"[{low:.3f}, {high:.3f}]); its win does not hold on that data, so do not deploy it there."
        )
    if not won:
        return None
    return (
        f"{point} {before}scores below {name} on the second eval set: {base.diff:+.3f} (paired 95% interval "
        f"[{low:.3f}, {high:.3f}], not significant); its win is not confirmed on that data."
    )
