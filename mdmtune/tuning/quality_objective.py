"""The quality objective: maximize the mean metric score of a checkpoint on an eval set, at the lowest model cost.

- Split: the eval set is shuffled once by the job's seed into a search split and a confirm split
  (spec.confirm_fraction). The search sees only the search split; finalize re-scores its top candidates on the
  confirm split, so the reported numbers are not the ones that chose the winner.
- Rungs (the paper's App. E.1 coarse-to-fine advice, automated): a batch of trials is scored on the first r0 records
  of the search split, then the survivors on r0 * eta, ..., up to the whole split (or spec.subset_size). After each
  rung but the last each trial reports its running mean and the study's successive-halving pruner (optuna's ASHA,
  shared through the storage by every worker) prunes those outside the top 1/eta of that rung.
- Cost: every trial of a batch is sampled in one `mdmtune.tuning.evaluation.evaluate` call (one model batch holds many
  schedules); per-record scores are cached by (checkpoint sha, eval set sha, schedule, N, sampler settings, seed,
  replicates), so rungs, confirmations and reruns never sample a (schedule, record) twice. With the count sampler a
  schedule is identified by its count plans (all that sampler reads of it): the many (a, b) that round to the same
  plans, a plateau of the landscape at small N, are scored once.
Records are scored with common random numbers (the seed of a record and replicate is the same for every schedule),
so differences between schedules are paired. Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import optuna

from mdmtune.core import schedules
from mdmtune.core.plans import count_plan
from mdmtune.core.schedules import Schedule
from mdmtune.data.evalsets import EvalSet, load_eval_set
from mdmtune.errors import InvalidInput
from mdmtune.metrics import Metric, resolve_metric
from mdmtune.models.base import Denoiser
from mdmtune.options import BY_NAME
from mdmtune.options.names import RIVAL_FIELDS
from mdmtune.tuning.cache import ScoreCache, context_key, denoiser_fingerprint, schedule_key
from mdmtune.tuning.objective import BatchValues, EvaluationStopped, Points, ReportHook, StopCheck
from mdmtune.tuning.spec import TuneSpec

if TYPE_CHECKING:
    from mdmtune.sampling import SamplerSettings
    from mdmtune.tuning.evaluation import EncodedSet


def split_records(n_records: int, confirm_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(search indices, confirm indices): a seeded shuffle; each side gets at least one record."""
    if n_records < 2:
        raise InvalidInput("eval_set", f"needs at least 2 records to hold out a confirm split, got {n_records}")
    order = np.random.default_rng([seed, 0x5EA2C4]).permutation(n_records)
    n_confirm = min(n_records - 1, max(1, round(confirm_fraction * n_records)))
    return np.sort(order[n_confirm:]), np.sort(order[:n_confirm])


def rung_sizes(n_search: int, reduction_factor: int, min_records: int) -> list[int]:
    """Cumulative record counts r0, r0 * eta, ..., n_search; r0 >= min_records (a single rung when too few)."""
    sizes = [n_search]
    while sizes[0] // reduction_factor >= min_records:
        sizes.insert(0, math.ceil(sizes[0] / reduction_factor))
    return _aligned(sizes, reduction_factor)


def _aligned(sizes: list[int], eta: int) -> list[int]:
    """Optuna's pruner decides at steps r0 * eta^k: make every rung but the last exactly that."""
    first = sizes[0]
    return [first * eta**k for k in range(len(sizes) - 1)] + [sizes[-1]]


def sampling_fields(spec: TuneSpec, leave_out: tuple[str, ...]) -> dict[str, str | float | int | None]:
    """The job's sampling options but `leave_out`, floats as floats (the score cache's key spells them so)."""
    fields = {k: v for k, v in spec.sampling.values().items() if k not in leave_out}
    return {k: float(v) if v is not None and BY_NAME[k].kind == "float" else v for k, v in fields.items()}


@dataclass
class QualityObjective:
    """Mean per-record score of `denoiser` on the eval set's search split, for each (a, b) of a batch."""

    denoiser: Denoiser
    encoded: EncodedSet
    """The whole eval set, encoded for the denoiser."""
    spec: TuneSpec
    steps: int
    metric_obj: Metric
    search_indices: np.ndarray
    confirm_indices: np.ndarray
    rungs: list[int]
    cache: ScoreCache
    checkpoint_sha: str
    eval_set_sha: str
    direction: Literal["minimize", "maximize"] = "maximize"
    nfe_spent: int = 0
    row_nfe_spent: int = 0
    """Forward passes counted per row (what each sampled row would cost alone): a batch-size-free cost measure."""
    _pruner: optuna.pruners.BasePruner | None = field(default=None, repr=False)
    _reasons: dict[tuple[str, int], Counter[str]] = field(default_factory=dict, repr=False)
    """(schedule identity, record index) -> how its replicates' outputs scored (pass_at_1: the sandbox's verdicts)."""

    @classmethod
    def build(
        cls,
        spec: TuneSpec,
        *,
        checkpoint: str | os.PathLike[str] | Denoiser,
        eval_set: str | os.PathLike[str] | EvalSet,
        cache: ScoreCache | None = None,
        checkpoint_sha: str | None = None,
    ) -> QualityObjective:
        """Load what is given as a path, encode the eval set once, split it, plan the rungs."""
        from mdmtune.tuning.evaluation import encode_records

        records = eval_set if isinstance(eval_set, EvalSet) else load_eval_set(eval_set)
        metric = resolve_metric(spec.metric, records)  # before the model loads: a wrong metric costs nothing
        if not metric.per_record:
            raise InvalidInput("metric", f"{metric.name} scores a whole set; tuning needs a per-record metric")
        spec = spec.replace(metric=metric.name)
        denoiser, sha = _denoiser(checkpoint, spec.family)
        if records.kind == "completion" and spec.gen_length is None:
            raise InvalidInput("gen_length", "required for a completion eval set (tokens generated after the prompt)")
        encoded = encode_records(
            denoiser,
            records,
            gen_length=spec.gen_length,
            mask_symbol=spec.mask_symbol,
            add_special_tokens=spec.add_special_tokens,
            chat_template=spec.chat_template,
        )
        search, confirm = split_records(len(records), spec.confirm_fraction, spec.seed)
        if spec.subset_size is not None:
            search = search[: spec.subset_size]
        return cls(
            denoiser=denoiser,
            encoded=encoded,
            spec=spec,
            steps=spec.steps_list[0],
            metric_obj=metric,
            search_indices=search,
            confirm_indices=confirm,
            rungs=rung_sizes(len(search), spec.reduction_factor, spec.min_rung_records),
            cache=cache if cache is not None else ScoreCache(),
            checkpoint_sha=checkpoint_sha or sha,
            eval_set_sha=records.sha256,
        )

    def with_steps(self, steps: int) -> QualityObjective:
        """The same model, records, split and cache at another N (a steps sweep)."""
        return dataclasses.replace(
            self, steps=steps, spec=self.spec.for_steps(steps), nfe_spent=0, row_nfe_spent=0, _pruner=None
        )

    @property
    def metric(self) -> str:
        return self.spec.metric

    @property
    def search_records(self) -> int:
        return len(self.search_indices)

    @property
    def confirm_records(self) -> int:
        return len(self.confirm_indices)

    @property
    def typical_masked(self) -> int | None:
        """The most common count of generated tokens per record (infill sets vary): what the reported plan uses."""
        values, counts = np.unique(np.asarray(self.encoded.masked), return_counts=True)
        return int(values[np.argmax(counts)]) if len(values) else None

    @property
    def pruner(self) -> optuna.pruners.BasePruner | None:
        """Successive halving at the rung boundaries; None when the split is too small for more than one rung."""
        if len(self.rungs) < 2:
            return None
        if self._pruner is None:
            self._pruner = optuna.pruners.SuccessiveHalvingPruner(
                min_resource=self.rungs[0], reduction_factor=self.spec.reduction_factor, min_early_stopping_rate=0
            )
        return self._pruner

    def _context(self) -> str:
        s = self.spec
        return context_key(
            checkpoint=self.checkpoint_sha,
            eval_set=self.eval_set_sha,
            steps=self.steps,
            **self._sampler_fields(),
            gen_length=s.gen_length,
            mask_symbol=s.mask_symbol,
            metric=s.metric,
            seed=s.seed,
            replicates=s.replicates,
            add_special_tokens=s.add_special_tokens,
            chat_template=s.chat_template,
            family=s.family,
        )

    def sampler_settings(self) -> SamplerSettings:
        """The SamplerSettings every schedule of this job is sampled with (a second eval set uses them too)."""
        return self._settings()

    def confirm_strata(self) -> dict[str, list[str]]:
        """Stratum name -> a group label per confirm record: the per-group breakdown of the reported result."""
        from mdmtune.tuning.groups import record_strata

        return record_strata(self.encoded, self.confirm_indices)

    def _settings(self) -> SamplerSettings:
        from mdmtune.sampling import SamplerSettings

        return SamplerSettings(**self._sampler_fields())

    def _sampler_fields(self) -> dict[str, str | float | int | None]:
        """How the job's schedules are sampled: every sampling option but the rival decoder's (the schedules always
        use the count plan), named as SamplerSettings takes them and as the score cache's key holds them. Read off
        the option table, so a new sampling option reaches both the sampler and the key by itself."""
        return sampling_fields(self.spec, leave_out=RIVAL_FIELDS)

    def model_report(self) -> dict[str, Any]:
        """How the checkpoint was read and the records encoded, for the result: a wrong guess must be visible."""
        return model_report(self.denoiser, self.encoded)

    def schedule_identity(self, schedule: Schedule) -> str:
        """What decides the outputs: the count sampler reads a schedule only through its count plans (one per
        distinct masked count of a window), so equal plans are the same schedule to it; the ancestral sampler reads
        the alpha values themselves."""
        if self.spec.sampler != "count":
            return schedule_key(schedule)
        grid = schedule.on_grid(self.steps // self._n_blocks)
        plans = [count_plan(grid, m).tolist() for m in self._window_masked]
        return "plan:" + json.dumps(plans, separators=(",", ":"))

    @property
    def _n_blocks(self) -> int:
        if self.encoded.gen_length is None or self.spec.block_length is None:
            return 1
        return self.encoded.gen_length // self.spec.block_length

    @property
    def _window_masked(self) -> list[int]:
        """Distinct masked counts of a sampling window: the block length (completion), each record's (infill)."""
        if self.encoded.gen_length is not None:
            return [self.spec.block_length or self.encoded.gen_length]
        return sorted({int(m) for m in np.asarray(self.encoded.masked)})

    def record_scores(
        self,
        schedule_list: Sequence[Schedule],
        indices: np.ndarray,
        should_stop: StopCheck | None = None,
    ) -> tuple[np.ndarray, int]:
        """Scores [S, len(indices)] (replicates averaged) and the NFEs paid: only what the cache lacks is sampled.

        should_stop is polled after every model batch; True raises EvaluationStopped (nothing partial is cached).
        """
        from mdmtune.tuning.evaluation import evaluate

        context = self._context()
        keys = [self.schedule_identity(s) for s in schedule_list]
        todo: dict[str, Schedule] = {}
        for key, schedule in zip(keys, schedule_list, strict=True):
            if key not in todo and self.cache.missing(context, key, indices):
                todo[key] = schedule  # one representative per distinct plan
        nfe = 0
        if todo:
            needed = sorted({i for key in todo for i in self.cache.missing(context, key, indices)})
            result = evaluate(
                self.denoiser,
                self.encoded,
                list(todo.values()),
                self.steps,
                self._settings(),
                self.metric_obj,
                record_indices=needed,
                replicates=self.spec.replicates,
                seed=self.spec.seed,
                batch_size=self.spec.batch_size,
                on_batch=None if should_stop is None else _stop_hook(should_stop),
            )
            for key, scores in zip(todo, result.scores, strict=True):
                self.cache.put(context, key, needed, scores)
            self._keep_reasons(list(todo), needed, result.outputs)
            nfe = int(result.nfe)
            self.row_nfe_spent += int(np.asarray(result.row_nfe).sum())
        self.nfe_spent += nfe
        values = np.stack([self.cache.get(context, key, indices).mean(axis=1) for key in keys])
        return values, nfe

    def evaluate(
        self, params: Points, report: ReportHook | None = None, should_stop: StopCheck | None = None
    ) -> BatchValues:
        """Rung by rung over the search split; survivors of each rung go on together in one batch."""
        points = [schedules.beta(float(a), float(b)) for a, b in params]
        totals = np.zeros(len(points))
        values = [math.nan] * len(points)
        pruned = [False] * len(points)
        alive, done, nfe = list(range(len(points))), 0, 0
        for rung, size in enumerate(self.rungs):
            indices = self.search_indices[done:size]
            scores, cost = self.record_scores([points[i] for i in alive], indices, should_stop)
            nfe += cost
            for row, i in enumerate(alive):
                totals[i] += scores[row].sum()
                values[i] = float(totals[i] / size)
            if rung < len(self.rungs) - 1 and report is not None:
                for i in alive:
                    pruned[i] = report(i, size, values[i])
            alive, done = [i for i in alive if not pruned[i]], size
            if not alive:
                break
        return BatchValues(values=values, pruned=pruned, nfe=nfe)

    def _keep_reasons(self, keys: list[str], indices: list[int], outputs: list[list[list[str]]]) -> None:
        """Remember each (schedule, record)'s reasons, for metrics that give them (asked after scoring: no cost)."""
        if self.metric_obj.many_reasons is None:
            return
        rows = [
            (k, r, text)
            for k, per_record in zip(keys, outputs, strict=True)
            for r, texts in zip(indices, per_record, strict=True)
            for text in texts
        ]
        records = [self.encoded.records[r] for _, r, _ in rows]
        reasons = self.metric_obj.reasons([text for _, _, text in rows], records) or []
        for (key, record, _), reason in zip(rows, reasons, strict=True):
            self._reasons.setdefault((key, int(record)), Counter())[reason] += 1

    def confirm_reasons(self, schedule: Schedule) -> dict[str, int] | None:
        """How `schedule`'s outputs on the confirm split scored, counted by reason (None: the metric gives none)."""
        if self.metric_obj.many_reasons is None:
            return None
        key = self.schedule_identity(schedule)
        total: Counter[str] = Counter()
        for record in self.confirm_indices:
            total.update(self._reasons.get((key, int(record)), Counter()))
        return dict(sorted(total.items()))

    def confirm_scores(
        self, schedule_list: list[Schedule], should_stop: StopCheck | None = None
    ) -> tuple[np.ndarray, int]:
        """Per-record scores of each schedule on the confirm split (one batch), for finalize; should_stop as in
        record_scores (a job cancelled while confirming stops within one model batch)."""
        return self.record_scores(schedule_list, self.confirm_indices, should_stop)


def _stop_hook(should_stop: StopCheck) -> Callable[[int, int], None]:
    def hook(done: int, total: int) -> None:
        if done < total and should_stop():
            raise EvaluationStopped(f"stopped after {done} of {total} rows")

    return hook


def model_report(denoiser: Denoiser, encoded: EncodedSet) -> dict[str, Any]:
    """The detected checkpoint facts (family, mask id, end ids, shift) and the template the records were wrapped in."""
    describe = getattr(denoiser, "describe", None)
    report: dict[str, Any] = dict(describe()) if describe is not None else {}
    report.setdefault("mask_token_id", int(denoiser.mask_token_id))
    report.setdefault("end_token_ids", [int(i) for i in getattr(denoiser, "end_token_ids", ())])
    report["add_special_tokens"] = bool(encoded.add_special_tokens)
    report["template"] = encoded.template.to_json()
    return report


def _denoiser(checkpoint: str | os.PathLike[str] | Denoiser, family: str = "auto") -> tuple[Denoiser, str]:
    """A loaded model and its identity: the checkpoint files' sha256 for a path, the parameters' for an object."""
    if isinstance(checkpoint, (str, os.PathLike)):
        from mdmtune.models.loading import load_denoiser
        from mdmtune.tuning.cache import path_sha256

        return load_denoiser(checkpoint, family=family), path_sha256(checkpoint)
    if not isinstance(checkpoint, Denoiser):
        raise InvalidInput("checkpoint", f"must be a path or a loaded Denoiser, got {type(checkpoint).__name__}")
    return checkpoint, denoiser_fingerprint(checkpoint)
