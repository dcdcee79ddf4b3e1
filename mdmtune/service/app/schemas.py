"""Request and response bodies of the HTTP API (docs/api.md), with the defaults shown in the OpenAPI schema.

The tuning defaults are read from `mdmtune.tuning.spec.TuneSpec` and the bounds from `mdmtune.tuning.limits` (shown
as minimum and maximum here), so that the API, the CLI and the library can never disagree about them; checks across
fields (steps <= gen_length, blocks dividing) are left to `TuneSpec.validate()`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    field_serializer,
)

from mdmtune.errors import InvalidInput
from mdmtune.jsonsafe import to_jsonable, unstorable_text
from mdmtune.option_names import MAX_CFG_SCALE, MAX_ENTROPY_BOUND
from mdmtune.tuning import limits as L
from mdmtune.tuning.groups import GroupBreakdown
from mdmtune.tuning.result import BaselineScore, TuneResult, Validation
from mdmtune.tuning.spec import DEFAULT_TRIALS, TuneSpec

"""The largest frontier budget (model calls per record) a request may name."""
_SPEC_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TuneSpec)}


def _default(name: str) -> Any:
    value = _SPEC_DEFAULTS[name]
    return list(value) if isinstance(value, tuple) else value


def _storable(value: str) -> str:
    reason = unstorable_text(value)
    if reason:
        raise ValueError(reason)
    return value


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean (true/false)")
    return value


NOT_A_BOOLEAN = BeforeValidator(_not_a_boolean)
STORABLE = AfterValidator(_storable)
"""Placed after a type's Field constraints (`Annotated[int, Field(ge=1), NOT_A_BOOLEAN]`), so that the constraints
still show as minimum and maximum in the OpenAPI schema."""

Text = Annotated[str, STORABLE]
"""A string a request carries: refused with a 422 naming the field when it holds a NUL character or a lone surrogate,
which Postgres cannot store (it answered 500 before), so both databases refuse the same requests."""

Int = Annotated[int, NOT_A_BOOLEAN]
"""An integer field: JSON `true` is refused rather than read as 1 (pydantic's lax mode would take it); 8.0 is 8."""

Number = Annotated[float, NOT_A_BOOLEAN]
"""A float field: JSON `true` is refused rather than read as 1.0."""

Shape = Annotated[float, Field(gt=0, le=L.MAX_SHAPE), NOT_A_BOOLEAN]
"""A Beta parameter: the ends of the (a, b) search box."""


class TuneRequest(BaseModel):
    """POST /v1/tune. A quality job needs checkpoint_id, eval_set_id and steps; an energy job only steps."""

    model_config = ConfigDict(extra="forbid")

    checkpoint_id: Text | None = Field(None, description="From POST /v1/checkpoints; required for objective=quality.")
    eval_set_id: Text | None = Field(None, description="From POST /v1/eval-sets; required for objective=quality.")
    validate_eval_set_id: Text | None = Field(
        None,
        description="Quality: a second eval set (from POST /v1/eval-sets, same kind) on which the best schedule and "
        "the baselines are re-scored when the search ends; reported beside the confirm split under `validation`, "
        "with a warning where the best loses there.",
    )
    steps: Int = Field(
        ...,
        ge=1,
        le=L.MAX_STEPS,
        description="N, the number of sampling steps the schedule is tuned for. A quality job's N is at most "
        "gen_length (completion) or the eval set's largest masked count (infill).",
    )
    gen_length: Annotated[int, Field(ge=1, le=L.MAX_GEN_LENGTH), NOT_A_BOOLEAN] | None = Field(
        _default("gen_length"),
        description="Completion records: tokens generated after the prompt (>= steps). Infill records ignore it.",
    )
    block_length: Annotated[int, Field(ge=1, le=L.MAX_GEN_LENGTH), NOT_A_BOOLEAN] | None = Field(
        _default("block_length"),
        description="Semi-autoregressive block length; must divide gen_length, and the block count must divide "
        "steps. None: one block of gen_length.",
    )
    sampler: Literal["count", "ancestral"] = Field(_default("sampler"), description="count (LLaDA) or ancestral.")
    remasking: Literal["low_confidence", "random", "margin", "entropy"] = Field(
        _default("remasking"), description="Which positions the count sampler commits at each step."
    )
    temperature: Number = Field(
        _default("temperature"), ge=0, le=L.MAX_TEMPERATURE, description="Sampling temperature (0: greedy)."
    )
    objective: Literal["quality", "energy", "frontier"] = Field(
        _default("objective"),
        description="quality (score on the eval set), energy (model-free, docs/math.md), or frontier (quality per "
        "model call: at each of `budgets`, the tuned schedule, linear and cos2 against the threshold and entropy "
        "decoders).",
    )
    budgets: list[Annotated[int, Field(ge=1, le=L.MAX_STEPS), NOT_A_BOOLEAN]] | None = Field(
        None,
        min_length=1,
        max_length=L.MAX_BUDGETS,
        description="objective=frontier: mean model calls per record to compare at, e.g. [4, 8, 16] (each >= 1, "
        "at most gen_length); None: [steps]. n_trials is then the Beta search's trials at each budget.",
    )
    weight_a: Number = Field(
        _default("weight_a"), gt=0, le=L.MAX_SHAPE, description="Energy objective: Beta weight gamma_w's a."
    )
    weight_b: Number = Field(
        _default("weight_b"), gt=0, le=L.MAX_SHAPE, description="Energy objective: Beta weight gamma_w's b."
    )
    metric: Text | None = Field(
        _default("metric"),
        description="Quality: scorer name from the metric registry (exact_match, numeric_match, regex, sudoku, "
        "gsm8k, gsm8k_strict, math, bbh, pass_at_1, ...). Required unless the eval set declares one (a `metric` "
        "field on its records); there is no default.",
    )
    n_trials: Annotated[int, Field(ge=1, le=L.MAX_TRIALS), NOT_A_BOOLEAN] | None = Field(
        _default("n_trials"),
        description=f"Finished trials to run; None: {DEFAULT_TRIALS['quality']} (quality), "
        f"{DEFAULT_TRIALS['energy']} (energy). Includes the linear and cos2 baselines.",
    )
    a_bounds: list[Shape] = Field(
        _default("a_bounds"), min_length=2, max_length=2, description="Log-uniform search range of a: [low, high]."
    )
    b_bounds: list[Shape] = Field(
        _default("b_bounds"), min_length=2, max_length=2, description="Log-uniform search range of b: [low, high]."
    )
    search_algorithm: Literal["tpe", "gp", "cmaes", "random"] = Field(
        _default("search_algorithm"), description="Optuna sampler."
    )
    subset_size: Annotated[int, Field(ge=2, le=L.MAX_SUBSET_SIZE), NOT_A_BOOLEAN] | None = Field(
        _default("subset_size"),
        description="Records used at the last rung of the search (None: the whole split).",
    )
    replicates: Int = Field(
        _default("replicates"), ge=1, le=L.MAX_REPLICATES, description="Samples per record (common random numbers)."
    )
    seed: Int = Field(
        _default("seed"),
        ge=0,
        le=L.MAX_SEED,
        description="Seeds the search, the split, the sampler draws, the bootstrap.",
    )
    mask_symbol: Annotated[str, Field(min_length=1, max_length=L.MAX_MASK_SYMBOL_CHARS), STORABLE] | None = Field(
        _default("mask_symbol"),
        description="Infill mask symbol; None: the tokenizer's own mask token text.",
    )
    add_special_tokens: StrictBool = Field(
        _default("add_special_tokens"),
        description="Encode records as the tokenizer's own __call__ does by default, its special tokens included "
        "([CLS] ... [SEP] for BERT, BOS for LLaDA); false: the texts' tokens alone.",
    )
    chat_template: StrictBool = Field(
        _default("chat_template"),
        description="Wrap each completion prompt as one user turn of the tokenizer's chat template (records with "
        "`messages` always use it).",
    )
    cfg_scale: Number = Field(
        _default("cfg_scale"),
        ge=0,
        le=MAX_CFG_SCALE,
        description="LLaDA's classifier-free guidance scale (0: off); the unconditional pass masks the prompt.",
    )
    confidence_dtype: Literal["model", "float64"] = Field(
        _default("confidence_dtype"),
        description="Precision of the remasking softmax: the model's dtype (as LLaDA's current generate) or float64 "
        "(as before June 2025).",
    )
    family: Literal["auto", "masked_lm", "llada", "dream", "mdlm"] = Field(
        _default("family"),
        description="hf checkpoints: the model family (auto: detected from config.json and the tokenizer).",
    )
    decoder: Literal["schedule", "threshold", "entropy", "hybrid"] = Field(
        _default("decoder"),
        description="objective=quality: an adaptive decoder scored beside the baselines on the confirm split, the "
        "rival the tuned schedule must beat: threshold (Fast-dLLM, with `threshold`) or entropy (EB-sampler, with "
        "`entropy_bound`) or hybrid (diffusers' BlockRefinementScheduler: the tuned plan as a floor plus every "
        "position above `threshold`); schedule: none.",
    )
    threshold: Annotated[float, Field(ge=0, le=1), NOT_A_BOOLEAN] | None = Field(
        _default("threshold"),
        description="decoder=threshold: commit positions at least this confident; hybrid: above it.",
    )
    entropy_bound: Annotated[float, Field(ge=0, le=MAX_ENTROPY_BOUND), NOT_A_BOOLEAN] | None = Field(
        _default("entropy_bound"),
        description="decoder=entropy: commit the lowest-entropy positions while sum - max <= this (nats).",
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=L.MAX_TIMEOUT_SECONDS), NOT_A_BOOLEAN] | None = Field(
        None,
        description="Running time limit of this job (at most a week); None: the server's job_timeout_seconds.",
    )

    def spec_fields(self) -> dict[str, Any]:
        """The fields that make up the TuneSpec (not the ids, not the job's timeout)."""
        fields = self.model_dump(
            exclude={"checkpoint_id", "eval_set_id", "validate_eval_set_id", "timeout_seconds", "budgets"}
        )
        if self.objective == "frontier":
            fields["steps"] = sorted(self.budgets) if self.budgets else [self.steps]
        elif self.budgets is not None:
            raise InvalidInput("budgets", "only a frontier job takes budgets")
        return fields


class CheckpointUri(BaseModel):
    """POST /v1/checkpoints with JSON: a server-side checkpoint under an operator-allowed root."""

    model_config = ConfigDict(extra="forbid")

    uri: Text = Field(..., description="A path or file:// URI inside one of the server's allowed_uri_roots.")


class CheckpointOut(BaseModel):
    id: str
    sha256: str
    format: str = Field(..., description="native | hf | torchscript")
    size: int = Field(..., description="Bytes as uploaded (for a server-side folder: the sum of its files).")
    filename: str | None = None
    created_at: datetime
    meta: dict[str, Any] | None = Field(
        None,
        description="What the checkpoint declares (vocab_size, mask_token_id, mask_token, max_length, "
        "special_tokens, end_ids), read from its JSON files at upload; jobs are checked against it.",
    )


class EvalSetOut(BaseModel):
    id: str
    sha256: str
    record_count: int
    kind: str = Field(..., description="completion | infill")
    size: int
    filename: str | None = None
    created_at: datetime


class Progress(BaseModel):
    trials_done: int
    n_trials: int
    nfe: int = Field(..., description="Model forward passes so far (0 for energy jobs).")
    elapsed_seconds: float | None = Field(None, description="Since the first claim; None while queued.")
    eta_seconds: float | None = Field(
        None,
        description="Rough: elapsed / done * remaining while searching; None until a trial is done and while "
        "confirming (its length is not known); 0 once finished.",
    )


class BestSoFar(BaseModel):
    a: float | None = None
    b: float | None = None
    value: float | None = Field(None, description="The objective's value (energy: lower is better; quality: higher).")


class JobOut(BaseModel):
    id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    phase: Literal["queued", "searching", "confirming", "finished"] = Field(
        ...,
        description="Where a job stands: queued; searching (trials run); confirming (the search is done and the "
        "best candidates are re-scored on the held-out split); finished (succeeded, failed or cancelled).",
    )
    objective: str
    checkpoint_id: str | None = None
    eval_set_id: str | None = None
    validate_eval_set_id: str | None = None
    request: dict[str, Any] = Field(..., description="The full tuning request, defaults filled in.")
    progress: Progress
    best: BestSoFar | None = Field(None, description="Best trial so far (final once succeeded).")
    cancel_requested: bool = False
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class BlockPlan(BaseModel):
    block: int
    masked: int
    counts: list[int] = Field(..., description="Tokens committed at each step of this block; sums to masked.")


class QualityOut(BaseModel):
    score: float = Field(..., description="Mean score of the best schedule on the held-out confirm split.")
    ci: list[float] | None = Field(None, description="Its Wilson 95% interval.")


class BestOut(BaseModel):
    """GET /v1/tune/{id}/best: everything a sampler needs, plus how sure we are that it beats the baselines."""

    job_id: str
    objective: str
    a: float
    b: float
    gamma_formula: str
    alpha_formula: str
    steps: int
    gen_length: int | None = None
    block_length: int | None = None
    t: list[float] = Field(..., description="The step grid t_k = k/N, k = 0..N.")
    alpha: list[float] = Field(..., description="alpha(t_k) on the grid.")
    plan: list[BlockPlan] | None = Field(
        None, description="The count plan per block for gen_length/block_length (None when gen_length is unknown)."
    )
    value: float | str | None = Field(None, description="The objective's value at (a, b); 'inf' where infinite.")
    quality: QualityOut | None = Field(None, description="Quality jobs: score with its confidence interval.")
    baselines: dict[str, BaselineScore] = Field(
        default_factory=dict, description="name -> a, b, score, diff_ci (paired)."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Quality: plain-words shift warnings, where the best wins overall but loses significantly to a "
        "baseline in some group of records, or scores below a baseline on the validation set.",
    )
    groups: GroupBreakdown | None = Field(
        None, description="Quality: the confirm split by groups of records (strata, losses, loss_confidence)."
    )
    validation: Validation | None = Field(
        None, description="With validate_eval_set_id: the best and the baselines re-scored on that set."
    )
    result: TuneResult | None = Field(None, description="The whole stored tuning result.")
    model: dict[str, JsonValue] | None = Field(
        None,
        description="Quality: how the checkpoint was read and the records encoded (format, family, mask_token_id, "
        "end_token_ids, shifted_logits, add_special_tokens, template).",
    )

    @field_serializer("baselines", "groups", "validation", "result")
    def _as_stored(self, value: object):  # no return type: the docs keep each field's own schema
        """The tuning result's parts as result.json holds them (mdmtune.jsonsafe): an infinite energy is "inf"."""
        return to_jsonable(value)


class TrialOut(BaseModel):
    number: int
    state: str
    a: float | None = None
    b: float | None = None
    value: float | str | None = None
    user_attrs: dict[str, Any] = Field(default_factory=dict)


class TrialsPage(BaseModel):
    items: list[TrialOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(None, description="Offset of the next page; None on the last page.")
