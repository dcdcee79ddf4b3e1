"""The frozen parts of a job, made from the option table: `ModelReading`, `SamplerSettings`, `Search`, `Scoring`.

Each is a frozen dataclass whose fields are the table's options of that part, in table order, and which checks
itself when made (every field by its declaration, then the part's own rules), so nothing downstream meets a value
outside its bounds. `TuneSpec` (mdmtune.tuning.spec) nests one of each.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

from mdmtune.errors import InvalidInput
from mdmtune.options.checks import check_value
from mdmtune.options.table import Option, Part, options_of

P = TypeVar("P", bound="OptionPart")


class OptionPart:
    """What every part shares: checked on construction; `unchecked` for values that are kept but never used."""

    PART: ClassVar[Part]
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise InvalidInput naming the first bad field."""
        for option in options_of(self.PART):
            check_value(option, getattr(self, option.name))
        self.rules()

    def rules(self) -> None:
        """Checks across this part's fields (none by default)."""

    @classmethod
    def unchecked(cls: type[P], **values: Any) -> P:
        """The part as given, not checked: an energy job keeps the quality parts only to store them (as it always
        did, unchecked). Unknown names are a TypeError, as for the constructor."""
        part = object.__new__(cls)
        for field in cls.__dataclass_fields__.values():
            object.__setattr__(part, field.name, values.pop(field.name, field.default))
        if values:
            raise TypeError(f"{cls.__name__} has no option {sorted(values)[0]!r}")
        return part

    def values(self) -> dict[str, Any]:
        """name -> value, in table order."""
        return {option.name: getattr(self, option.name) for option in options_of(self.PART)}


def _annotation(option: Option) -> object:
    kinds: dict[str, object] = {"int": int, "float": float, "bool": bool, "str": str, "choice": str}
    kinds |= {"bounds": tuple[float, float], "steps": int | tuple[int, ...]}
    kind = kinds[option.kind]
    return kind | None if option.optional else kind


def make_part(name: str, part: Part, doc: str, base: type[OptionPart] = OptionPart) -> type[OptionPart]:
    """A frozen dataclass with one field per option of `part` (defaults from the table)."""
    fields = [(o.name, _annotation(o), dataclasses.field(default=o.default)) for o in options_of(part)]
    cls = dataclasses.make_dataclass(name, fields, bases=(base,), frozen=True, namespace={"PART": part, "__doc__": doc})
    cls.__module__ = __name__
    return cls


class _SamplerRules(OptionPart):
    sampler: str
    remasking: str
    decoder: str
    threshold: float | None
    entropy_bound: float | None
    max_steps: int | None

    def rules(self) -> None:
        _check_decoder(self)


def _check_decoder(settings: _SamplerRules) -> None:
    """The adaptive decoders' fields: each decoder needs its own parameter and refuses the other's."""
    decoder = settings.decoder
    wanted = {"threshold": "threshold", "entropy": "entropy_bound", "hybrid": "threshold"}.get(decoder)
    for name in ("threshold", "entropy_bound"):
        value = getattr(settings, name)
        if value is None and name == wanted:
            raise InvalidInput(name, f"the {decoder} decoder needs {name}")
        if value is not None and name != wanted:
            takers = "threshold and hybrid decoders take" if name == "threshold" else "entropy decoder takes"
            raise InvalidInput(name, f"only the {takers} it")
    if settings.max_steps is not None and decoder in ("schedule", "hybrid"):
        raise InvalidInput("max_steps", f"only threshold and entropy take it (the {decoder} has its schedule's steps)")
    if decoder != "schedule":
        if settings.sampler != "count":
            raise InvalidInput("sampler", f"the {decoder} decoder commits by model confidence: use sampler count")
        if settings.remasking != "low_confidence":
            raise InvalidInput("remasking", f"the {decoder} decoder ranks by its own rule: leave low_confidence")


ModelReading = make_part(
    "ModelReading",
    "reading",
    "How the checkpoint is read and its records encoded and batched: gen_length, mask_symbol, batch_size, "
    "add_special_tokens, chat_template, family.",
)

SamplerSettings = make_part(
    "SamplerSettings",
    "sampling",
    """How to sample; the schedule itself comes per row (alphas), not from here.

    - sampler "count" (LLaDA / MaskGIT): step k commits exactly K_k tokens of the row's count plan, chosen by
      `remasking`: low_confidence (softmax probability of the untempered logits at the chosen token, as LLaDA),
      random (a uniform draw), margin (top-1 minus top-2 probability), entropy (negative entropy of the position's
      predictive distribution). The highest scores are committed.
    - sampler "ancestral" (MDLM): every still-masked token unmasks independently with the plan's probability;
      `remasking` is ignored.
    - temperature: 0 takes the argmax token; T > 0 draws from softmax(logits / T) by float64 Gumbel-max.
    - block_length: semi-autoregressive blocks over the completion region (None: one block). Infill has no blocks.
    - cfg_scale: LLaDA's classifier-free guidance (0 = off). Each model call then also runs every row with its given
      tokens (prompt, template tokens, infill context) masked, and uses un + (cfg_scale + 1) * (cond - un); the
      call holds twice the rows and still counts as one NFE. Mixed in float32 (LLaDA mixes in the model's dtype).
    - confidence_dtype: the precision of the softmax behind the remasking score. "model" (default) takes it in the
      model's dtype, as LLaDA's current generate() does (bf16 on GPU: ties between close positions are common);
      "float64" as LLaDA's generate() did before June 2025. Token choice is float64 either way.
    - decoder: "schedule" (the plan from the per-row alphas, as above) or an adaptive decoder that decides at each
      model call how many tokens to commit (sampling/adaptive.py): "threshold" (Fast-dLLM: every masked position
      whose confidence is at least `threshold`, and at least the most confident one) or "entropy" (EB-sampler: the
      lowest-entropy positions while their entropy sum minus the largest stays within `entropy_bound`, in nats).
      `max_steps` caps the model calls per row (split evenly over blocks; the capped step commits what is left).
      "hybrid" (diffusers' BlockRefinementScheduler): the schedule's count plan is a floor; step k commits
      max(K_k, number of positions whose confidence is strictly above `threshold`), the most confident ones, and a
      block that empties early spends no call on its remaining steps (sampling/loop.py, `_hybrid_step`).
    Fields and bounds: mdmtune.options.table (the "sampling" options, in this positional order).
    """,
    base=_SamplerRules,
)

Search = make_part(
    "Search",
    "search",
    "What the Optuna search looks for and how: objective, steps, the energy weight, trials, the (a, b) box, the "
    "algorithm, the seed and the batch of trials asked at once.",
)

Scoring = make_part(
    "Scoring",
    "scoring",
    "How outputs are scored and candidates compared: the metric, the records per rung (successive halving), "
    "replicates, the confirm split, the top candidates re-scored there and the bootstrap.",
)

PARTS: dict[str, type[OptionPart]] = {"reading": ModelReading, "sampling": SamplerSettings, "search": Search}
PARTS["scoring"] = Scoring
