"""Request and response bodies of the HTTP API (docs/api.md), with the defaults shown in the OpenAPI schema.

`TuneRequest` is derived from the option table (mdmtune.options.table): every option declared `http` becomes a field
with the table's default, bounds (shown as minimum and maximum here) and help text, so that the API, the CLI and the
library can never disagree about them. Checks across fields (steps <= gen_length, blocks dividing) are left to
`TuneSpec`, which checks itself when the route builds it.
"""

from __future__ import annotations

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
    create_model,
    field_serializer,
)

from mdmtune.data.jsonsafe import to_jsonable, unstorable_text
from mdmtune.errors import InvalidInput
from mdmtune.options import OPTIONS, Option
from mdmtune.options import limits as L
from mdmtune.tuning.groups import GroupBreakdown
from mdmtune.tuning.result import BaselineScore, TuneResult, Validation


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


def _constraints(option: Option) -> list[Any]:
    """The table's bounds as pydantic constraints (a string's bound its length)."""
    if option.kind == "str":
        return [Field(min_length=int(option.low or 0), max_length=int(option.high))] if option.high else []
    if option.low is None or option.high is None:
        return []
    low = {"gt": option.low} if option.low_open else {"ge": option.low}
    high = {"lt": option.high} if option.high_open else {"le": option.high}
    return [Field(**low, **high)]


def _request_type(option: Option) -> Any:
    """The pydantic type of one option: bounded, and `true` refused where a number is meant."""
    bounded = _constraints(option)
    kind: Any
    if option.kind == "choice":
        kind = Literal.__getitem__(option.choices)
    elif option.kind == "bool":
        kind = StrictBool
    elif option.kind == "str":
        kind = Annotated.__class_getitem__((str, *bounded, STORABLE))
    elif option.kind == "bounds":
        shape = Annotated.__class_getitem__((float, *bounded, NOT_A_BOOLEAN))
        kind = Annotated[list[shape], Field(min_length=2, max_length=2)]
    else:  # int, float, steps (one N in a request: a sweep is several requests, a frontier's N are its budgets)
        number = float if option.kind == "float" else int
        kind = Annotated.__class_getitem__((number, *bounded, NOT_A_BOOLEAN))
    return kind | None if option.optional else kind


def _request_field(option: Option) -> tuple[Any, Any]:
    if option.kind == "steps":
        return _request_type(option), Field(..., description=option.help)
    default = list(option.default) if isinstance(option.default, tuple) else option.default
    return _request_type(option), Field(default, description=option.help)


class _TuneRequestBase(BaseModel):
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
    budgets: list[Annotated[int, Field(ge=1, le=L.MAX_STEPS), NOT_A_BOOLEAN]] | None = Field(
        None,
        min_length=1,
        max_length=L.MAX_BUDGETS,
        description="objective=frontier: mean model calls per record to compare at, e.g. [4, 8, 16] (each >= 1, "
        "at most gen_length); None: [steps]. n_trials is then the Beta search's trials at each budget.",
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
        if fields["objective"] == "frontier":
            fields["steps"] = sorted(self.budgets) if self.budgets else [fields["steps"]]
        elif self.budgets is not None:
            raise InvalidInput("budgets", "only a frontier job takes budgets")
        return fields


TuneRequest = create_model(
    "TuneRequest",
    __base__=_TuneRequestBase,
    __doc__=_TuneRequestBase.__doc__,
    **{option.name: _request_field(option) for option in OPTIONS if option.http},
)
"""POST /v1/tune: the base's ids, budgets and timeout, plus every option the table declares `http`."""


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


class ProgressOut(BaseModel):
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
    progress: ProgressOut
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
        """The tuning result's parts as result.json holds them (mdmtune.data.jsonsafe): an infinite energy is "inf"."""
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
