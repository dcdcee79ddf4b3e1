"""What a tuning job asks for: `TuneSpec`, one frozen dataclass shared by the library, the CLI and the service.

The service builds a `TuneSpec` from its request (`TuneSpec.from_mapping(request_fields)`) and stores
`spec.to_dict()` on the job, so a resumed job runs the same search. `validate()` raises `InvalidInput` naming the
field (the service maps it to a 422, the CLI to exit 2). Only checks that need no model or eval set live here;
the ones that do (mask token present, prompt + gen_length fits the model) happen where those are loaded.
Pure Python: no web, no database.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mdmtune.errors import InvalidInput
from mdmtune.option_names import CONFIDENCE_DTYPES, FAMILIES, MAX_CFG_SCALE, REMASKINGS, SAMPLERS
from mdmtune.plans import check_blocks
from mdmtune.tuning import limits as L

OBJECTIVES = ("quality", "energy", "frontier")
"""frontier: quality per model call across budgets (mdmtune.tuning.frontier); `steps` holds the budgets."""
SEARCH_ALGORITHMS = ("tpe", "gp", "cmaes", "random")
DEFAULT_TRIALS = {"quality": 60, "energy": 200, "frontier": 40}
DEFAULT_BOUNDS = (0.05, 5.0)


@dataclass(frozen=True)
class TuneSpec:
    """One tuning job. Defaults are the documented ones; `n_trials=None` means 60 (quality) or 200 (energy)."""

    objective: Literal["quality", "energy", "frontier"] = "quality"
    steps: int | tuple[int, ...] = 8
    """N, or several N for a steps sweep (the CLI's `--steps 4,8,16`; one study per N)."""
    weight_a: float = 1.0
    """Energy objective: the weight gamma_w = I_t(weight_a, weight_b); the search should land on (a, b) ~= w."""
    weight_b: float = 1.0
    n_trials: int | None = None
    a_bounds: tuple[float, float] = DEFAULT_BOUNDS
    """Log-uniform search range of a (both ends > 0)."""
    b_bounds: tuple[float, float] = DEFAULT_BOUNDS
    search_algorithm: Literal["tpe", "gp", "cmaes", "random"] = "tpe"
    seed: int = 0
    """Seeds the search, the search/confirm split, the sampler's per-record draws and the bootstrap."""
    trials_per_batch: int = 8
    """Trials asked at once and sampled in one batch (one model batch for many schedules)."""
    gen_length: int | None = None
    """Completion records: tokens generated after the prompt. Infill records ignore it."""
    block_length: int | None = None
    """Semi-autoregressive block length (completion); None means one block of gen_length."""
    sampler: Literal["count", "ancestral"] = "count"
    remasking: Literal["low_confidence", "random", "margin", "entropy"] = "low_confidence"
    temperature: float = 0.0
    metric: str | None = None
    """Quality: the scorer's registry name; None means the one the eval set declares (refused if it declares none)."""
    subset_size: int | None = None
    """Records of the search split used at the last rung (None: all of it)."""
    replicates: int = 1
    """Samples per record (own seed each, shared by every schedule: common random numbers)."""
    confirm_fraction: float = 0.3
    """Share of the eval set held out to re-score the top candidates (the reported numbers come from it)."""
    mask_symbol: str | None = None
    """Infill mask symbol; None means the tokenizer's own mask token text."""
    top_k: int = 5
    """Candidates (best search values) re-scored on the confirm split."""
    reduction_factor: int = 3
    """Successive halving: each rung has reduction_factor times the records of the one before and keeps ~1/that."""
    min_rung_records: int = 8
    """The first rung's record count is at least this (fewer make the pruning decision noise)."""
    bootstrap_resamples: int = 10_000
    decoder: Literal["schedule", "threshold", "entropy", "hybrid"] = "schedule"
    """A quality job always tunes a schedule; an adaptive decoder named here (with its `threshold` or `entropy_bound`)
    is scored beside the baselines on the confirm split: the rival the tuned schedule has to beat. A frontier job
    chooses the decoders' parameters itself and takes none. "hybrid" (with `threshold`): the tuned schedule's plan as
    a floor plus every position above tau (diffusers' BlockRefinementScheduler)."""
    threshold: float | None = None
    entropy_bound: float | None = None
    batch_size: int = 64
    """Rows per model call in evaluation (the denoiser's batch; adapts down on out-of-memory where supported)."""
    add_special_tokens: bool = True
    """Encode records as the tokenizer's own `__call__` does by default (its template: [CLS] ... [SEP], BOS, ...);
    False: the texts' tokens alone."""
    chat_template: bool = False
    """Completion prompts become one user turn of the tokenizer's chat template (records with `messages` always do)."""
    cfg_scale: float = 0.0
    """LLaDA's classifier-free guidance (0: off)."""
    confidence_dtype: Literal["model", "float64"] = "model"
    """Precision of the remasking softmax: the model's dtype (LLaDA's current generate) or float64."""
    family: str = "auto"
    """Hugging Face checkpoints: the model family (auto: detected; masked_lm, llada, dream, mdlm)."""

    @property
    def trials(self) -> int:
        """n_trials with the objective's default filled in."""
        return self.n_trials if self.n_trials is not None else DEFAULT_TRIALS.get(self.objective, 60)

    @property
    def steps_list(self) -> tuple[int, ...]:
        return tuple(self.steps) if isinstance(self.steps, (tuple, list)) else (self.steps,)

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "minimize" if self.objective == "energy" else "maximize"

    def for_steps(self, steps: int) -> TuneSpec:
        """The same job at one N (a steps sweep runs one of these per N)."""
        return dataclasses.replace(self, steps=steps)

    def replace(self, **changes: Any) -> TuneSpec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields (tuples as lists), `n_trials` filled in."""
        out = dataclasses.asdict(self)
        out["n_trials"] = self.trials
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TuneSpec:
        """Build from a request/JSON mapping; unknown keys are refused by name, lists become tuples."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidInput(unknown[0], f"unknown tuning option; allowed: {', '.join(sorted(known))}")
        cleaned = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if v is not None}
        return cls(**cleaned)

    def validate(self) -> TuneSpec:
        """Raise InvalidInput naming the first bad field; return self so calls chain."""
        _one_of("objective", self.objective, OBJECTIVES)
        _one_of("search_algorithm", self.search_algorithm, SEARCH_ALGORITHMS)
        self._validate_steps()
        for name in ("weight_a", "weight_b"):
            _positive_finite(name, getattr(self, name), L.MAX_SHAPE)
        for name in ("a_bounds", "b_bounds"):
            _bounds(name, getattr(self, name))
        _int_at_least("n_trials", self.trials, 1, L.MAX_TRIALS)
        _int_at_least("trials_per_batch", self.trials_per_batch, 1, L.MAX_TRIALS_PER_BATCH)
        _int_at_least("seed", self.seed, 0, L.MAX_SEED)
        if self.objective in ("quality", "frontier"):
            self._validate_quality()
        return self

    def _validate_steps(self) -> None:
        steps = self.steps_list
        if not steps:
            raise InvalidInput("steps", "give at least one step count")
        for n in steps:
            _int_at_least("steps", n, 1, L.MAX_STEPS)
        if len(set(steps)) != len(steps):
            raise InvalidInput("steps", f"repeated step counts in {list(steps)}")
        if self.gen_length is not None:
            _int_at_least("gen_length", self.gen_length, 1, L.MAX_GEN_LENGTH)
            for n in steps:
                if n > self.gen_length:
                    raise InvalidInput("steps", f"{n} is more than gen_length {self.gen_length} tokens")
                if self.block_length is not None:
                    check_blocks(self.gen_length, self.block_length, n)
        elif self.block_length is not None:
            raise InvalidInput("block_length", "needs gen_length")

    def _validate_quality(self) -> None:
        _one_of("sampler", self.sampler, SAMPLERS)
        _one_of("remasking", self.remasking, REMASKINGS)
        if not isinstance(self.temperature, (int, float)) or not math.isfinite(self.temperature):
            raise InvalidInput("temperature", f"must be a finite number >= 0, got {self.temperature!r}")
        if not 0 <= self.temperature <= L.MAX_TEMPERATURE:
            raise InvalidInput("temperature", f"must be between 0 and {L.MAX_TEMPERATURE:g}, got {self.temperature!r}")
        _check_metric(self.metric)
        if self.subset_size is not None:
            _int_at_least("subset_size", self.subset_size, 2, L.MAX_SUBSET_SIZE)
        _int_at_least("replicates", self.replicates, 1, L.MAX_REPLICATES)
        _int_at_least("top_k", self.top_k, 1, L.MAX_TOP_K)
        _int_at_least("reduction_factor", self.reduction_factor, 2, L.MAX_REDUCTION_FACTOR)
        _int_at_least("min_rung_records", self.min_rung_records, 1, L.MAX_SUBSET_SIZE)
        _int_at_least("bootstrap_resamples", self.bootstrap_resamples, 100, L.MAX_BOOTSTRAP_RESAMPLES)
        _int_at_least("batch_size", self.batch_size, 1, L.MAX_BATCH_SIZE)
        fraction = self.confirm_fraction
        if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise InvalidInput("confirm_fraction", f"must be strictly between 0 and 1, got {fraction!r}")
        symbol = self.mask_symbol
        if symbol is not None and (not isinstance(symbol, str) or not 0 < len(symbol) <= L.MAX_MASK_SYMBOL_CHARS):
            raise InvalidInput("mask_symbol", f"must be a string of 1 to {L.MAX_MASK_SYMBOL_CHARS} characters")
        self._validate_model_reading()
        self._validate_decoder()

    def _validate_model_reading(self) -> None:
        for name in ("add_special_tokens", "chat_template"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInput(name, f"must be true or false, got {getattr(self, name)!r}")
        scale = self.cfg_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= MAX_CFG_SCALE:
            raise InvalidInput("cfg_scale", f"must be a number in [0, {MAX_CFG_SCALE:g}], got {scale!r}")
        _one_of("confidence_dtype", self.confidence_dtype, CONFIDENCE_DTYPES)
        _one_of("family", self.family, ("auto", *FAMILIES))

    def _validate_decoder(self) -> None:
        """The decoder fields, by the sampler's own rules (imported only when they are used: it loads torch)."""
        if self.decoder == "schedule" and self.threshold is None and self.entropy_bound is None:
            return
        if self.objective == "frontier":
            raise InvalidInput("decoder", "a frontier job tunes the adaptive decoders itself; leave decoder unset")
        if self.decoder == "schedule":
            field = "threshold" if self.threshold is not None else "entropy_bound"
            raise InvalidInput(field, "needs decoder threshold or hybrid (threshold) or entropy (entropy_bound)")
        from mdmtune.sampling.settings import SamplerSettings

        SamplerSettings(decoder=self.decoder, threshold=self.threshold, entropy_bound=self.entropy_bound)


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidInput(name, f"unknown value {value!r}; allowed: {', '.join(allowed)}")


def _int_at_least(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInput(name, f"must be an integer >= {low}, got {value!r}")
    if high is not None and value > high:
        raise InvalidInput(name, f"must be an integer between {low} and {high}, got {value!r}")


def _positive_finite(name: str, value: Any, high: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidInput(name, f"must be a finite number > 0, got {value!r}")
    if high is not None and value > high:
        raise InvalidInput(name, f"must be at most {high:g}, got {value!r}")


def _bounds(name: str, value: Any) -> None:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise InvalidInput(name, f"must be two numbers (low, high), got {value!r}")
    low, high = value
    _positive_finite(name, low, L.MAX_SHAPE)
    _positive_finite(name, high, L.MAX_SHAPE)
    if low >= high:
        raise InvalidInput(name, f"low must be below high, got ({low}, {high})")


def _check_metric(name: Any) -> None:
    """The metric must be registered (mdmtune.metrics owns the list)."""
    from mdmtune.metrics import get_metric

    if name is None:
        return  # resolved against the eval set when it is loaded (mdmtune.metrics.resolve_metric)
    if not isinstance(name, str):
        raise InvalidInput("metric", f"must be a metric name, got {name!r}")
    try:
        get_metric(name)
    except InvalidInput as error:
        raise InvalidInput("metric", error.message) from None
    except KeyError:
        raise InvalidInput("metric", f"unknown metric {name!r}") from None
