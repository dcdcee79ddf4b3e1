"""What a tuning job asks for: `TuneSpec`, one frozen object shared by the library, the CLI and the service.

A spec nests four frozen parts made from the option table (mdmtune.options): `search` (objective, steps, trials,
the (a, b) box, seed, ...), `reading` (how the checkpoint is read and its records encoded), `sampling`
(`SamplerSettings`) and `scoring` (metric, confirm split, bootstrap, ...). It is checked when it is made, raising
`InvalidInput` naming the field (the service maps it to a 422, the CLI to exit 2); an energy job checks only its
search and steps, as it never reads the other parts. Only checks that need no model or eval set live here; the ones
that do (mask token present, prompt + gen_length fits the model) happen where those are loaded.

Flat names still work everywhere: `TuneSpec(steps=8, metric="sudoku", temperature=0.0)`, `spec.temperature`,
`spec.replace(seed=1)`, and `to_dict()`/`from_mapping()` keep the flat JSON a job stores. Pure Python: no torch,
no web, no database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mdmtune.core.plans import check_blocks
from mdmtune.errors import InvalidInput
from mdmtune.options import BY_NAME, ModelReading, SamplerSettings, Scoring, Search, spec_options
from mdmtune.options.checks import check_value
from mdmtune.options.names import DEFAULT_BOUNDS, DEFAULT_TRIALS, OBJECTIVES, SEARCH_ALGORITHMS
from mdmtune.options.table import options_of

__all__ = ["DEFAULT_BOUNDS", "DEFAULT_TRIALS", "OBJECTIVES", "SEARCH_ALGORITHMS", "TuneSpec"]

_PART_OF = {option.name: option.part for option in spec_options()}
_PART_TYPES = {"search": Search, "reading": ModelReading, "sampling": SamplerSettings, "scoring": Scoring}
MODEL_OBJECTIVES = ("quality", "frontier")
"""The objectives that sample a model: they check every part (an energy job only its search)."""


@dataclass(frozen=True, init=False)
class TuneSpec:
    """One tuning job. Defaults are the documented ones (mdmtune.options.table); `n_trials=None` means 60
    (quality), 200 (energy) or 40 (frontier). Every option reads flat (`spec.seed`) or by part (`spec.search.seed`)."""

    search: Search
    reading: ModelReading
    sampling: SamplerSettings
    scoring: Scoring

    def __init__(
        self,
        *,
        search: Search | None = None,
        reading: ModelReading | None = None,
        sampling: SamplerSettings | None = None,
        scoring: Scoring | None = None,
        **options: Any,
    ) -> None:
        given = {"search": search, "reading": reading, "sampling": sampling, "scoring": scoring}
        for name in options:
            if name not in _PART_OF:
                raise TypeError(f"TuneSpec got an unexpected option {name!r}")
        for part, cls in _PART_TYPES.items():
            values = given[part].values() if given[part] is not None else {}
            values |= {name: value for name, value in options.items() if _PART_OF[name] == part}
            object.__setattr__(self, part, cls.unchecked(**values))
        self._check()

    def __getattr__(self, name: str) -> Any:
        """Flat reads (`spec.temperature`): the option's part answers. Only called for names not found otherwise."""
        part = _PART_OF.get(name)
        if part is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(object.__getattribute__(self, part), name)

    def _check(self) -> None:
        self.search.check()
        self._check_lengths()
        if self.objective in MODEL_OBJECTIVES:
            self._check_decoder()
            self._check_sampling()
            for part in (self.reading, self.scoring):
                part.check()

    def _check_lengths(self) -> None:
        """steps against gen_length and block_length (every objective: the energy job's plan uses them too)."""
        check_value(BY_NAME["gen_length"], self.gen_length)
        if self.gen_length is not None:
            for n in self.steps_list:
                if n > self.gen_length:
                    raise InvalidInput("steps", f"{n} is more than gen_length {self.gen_length} tokens")
                if self.block_length is not None:
                    check_blocks(self.gen_length, self.block_length, n)
        elif self.block_length is not None:
            raise InvalidInput("block_length", "needs gen_length")

    def _check_sampling(self) -> None:
        """Every sampling field by its declaration, then the decoder's rules for the rival as it is sampled.

        In a quality job `sampler` and `remasking` are how the schedules are sampled, while `decoder` (with its
        `threshold` or `entropy_bound`) names the rival scored beside them, which always commits by model confidence
        (count sampler, its own ranking: mdmtune.tuning.adaptive_sweep). So the job's sampler and remasking do not
        bind the rival, and `remasking="random"` with a threshold rival is a valid job."""
        for option in options_of("sampling"):
            check_value(option, getattr(self.sampling, option.name))
        rival = self.sampling.values() | {"sampler": "count", "remasking": "low_confidence"}
        SamplerSettings.unchecked(**rival).rules()

    def _check_decoder(self) -> None:
        """What a job may ask of the decoder, before the sampler's own rules (SamplerSettings) run."""
        if self.decoder == "schedule" and self.threshold is None and self.entropy_bound is None:
            return
        if self.objective == "frontier":
            raise InvalidInput("decoder", "a frontier job tunes the adaptive decoders itself; leave decoder unset")
        if self.decoder == "schedule":
            field = "threshold" if self.threshold is not None else "entropy_bound"
            raise InvalidInput(field, "needs decoder threshold or hybrid (threshold) or entropy (entropy_bound)")

    @property
    def trials(self) -> int:
        """n_trials with the objective's default filled in."""
        return self.n_trials if self.n_trials is not None else DEFAULT_TRIALS.get(self.objective, 60)

    @property
    def steps_list(self) -> tuple[int, ...]:
        steps = self.search.steps
        return tuple(steps) if isinstance(steps, (tuple, list)) else (steps,)

    @property
    def budgets(self) -> tuple[int, ...]:
        """A frontier job's budgets (mean model calls per record), ascending. They travel in `steps` (the request's
        `budgets`, the CLI's `--budgets`) because the schedule competing at budget B runs N = B steps."""
        return tuple(sorted(self.steps_list))

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "minimize" if self.objective == "energy" else "maximize"

    def for_steps(self, steps: int) -> TuneSpec:
        """The same job at one N (a steps sweep runs one of these per N)."""
        return self.replace(steps=steps)

    def replace(self, **changes: Any) -> TuneSpec:
        """A copy with some options (flat names) or parts changed, checked again."""
        return dataclasses.replace(self, **changes)

    def validate(self) -> TuneSpec:
        """Nothing left to do: a spec is checked when it is made. Kept (returning self) so that library code written
        for earlier versions, which chained `TuneSpec(...).validate()`, keeps working."""
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able flat fields (tuples as lists), `n_trials` filled in."""
        out = {option.name: getattr(self, option.name) for option in spec_options()}
        out["n_trials"] = self.trials
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TuneSpec:
        """Build from a request/JSON mapping; unknown keys are refused by name, lists become tuples."""
        unknown = sorted(set(values) - set(_PART_OF))
        if unknown:
            raise InvalidInput(unknown[0], f"unknown tuning option; allowed: {', '.join(sorted(_PART_OF))}")
        cleaned = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if v is not None}
        return cls(**cleaned)
