"""One adaptive decoder (threshold, entropy, or hybrid on a fixed floor plan) measured over its parameter: per value
and record, the score and the model calls, each sampled once. The frontier sweeps the decoders with it (the hybrid
once per budget, on that budget's tuned plan); a tune job's rival decoder is scored with it on the confirm split.
Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mdmtune.core.schedules import Schedule
from mdmtune.options.names import RIVAL_FIELDS
from mdmtune.tuning.quality_objective import QualityObjective, _stop_hook, sampling_fields

if TYPE_CHECKING:
    from mdmtune.sampling import SamplerSettings


@dataclass
class Measured:
    """Per-record scores (replicates averaged) and calls of one adaptive parameter on some records."""

    scores: np.ndarray
    calls: np.ndarray


class AdaptiveSweep:
    """Evaluations of one adaptive decoder: per parameter value, per record (score, calls), never sampled twice."""

    def __init__(
        self,
        objective: QualityObjective,
        decoder: str,
        should_stop: Callable[[], bool] | None,
        floor: tuple[Schedule, int] | None = None,
    ) -> None:
        """floor: the hybrid decoder's (schedule, steps), its count plan; the others take none."""
        if (decoder == "hybrid") != (floor is not None):
            raise ValueError("the hybrid decoder, and only it, needs its floor (schedule, steps)")
        self.objective, self.decoder, self.should_stop = objective, decoder, should_stop
        self.floor = floor
        self.known: dict[float, dict[int, tuple[float, float]]] = {}
        self.nfe = 0
        self.row_nfe = 0

    def settings(self, value: float) -> SamplerSettings:
        from mdmtune.sampling import SamplerSettings

        parameter = {"entropy_bound": value} if self.decoder == "entropy" else {"threshold": value}
        # the job's settings but its schedules' sampler and ranking: an adaptive decoder commits by confidence
        shared = sampling_fields(self.objective.spec, leave_out=(*RIVAL_FIELDS, "sampler", "remasking"))
        return SamplerSettings(**shared, decoder=self.decoder, **parameter)

    def measure(self, values: list[float], indices: np.ndarray) -> None:
        """Sample what is missing of every value on `indices`; values missing the same records share one evaluation
        (one row per value and record, so many values share each model batch)."""
        groups: dict[tuple[int, ...], list[float]] = {}
        for value in sorted({float(v) for v in values}):
            seen = self.known.setdefault(value, {})
            missing = tuple(int(i) for i in indices if int(i) not in seen)
            if missing:
                groups.setdefault(missing, []).append(value)
        for missing, todo in groups.items():
            self._evaluate(todo, np.array(missing))

    def _evaluate(self, values: list[float], indices: np.ndarray) -> None:
        from mdmtune.tuning.evaluation import evaluate_decoder

        objective, spec = self.objective, self.objective.spec
        result = evaluate_decoder(
            objective.denoiser,
            objective.encoded,
            values,
            self.settings(values[0]),
            objective.metric_obj,
            record_indices=indices,
            replicates=spec.replicates,
            seed=spec.seed,
            batch_size=spec.batch_size,
            on_batch=None if self.should_stop is None else _stop_hook(self.should_stop),
            schedule=None if self.floor is None else self.floor[0],
            steps=None if self.floor is None else self.floor[1],
        )
        self.nfe += int(result.nfe)
        self.row_nfe += int(result.row_nfe.sum())
        for row, value in enumerate(values):
            scores, calls = result.scores[row].mean(axis=1), result.row_nfe[row].mean(axis=1)
            for i, record in enumerate(indices):
                self.known[value][int(record)] = (float(scores[i]), float(calls[i]))

    def on(self, value: float, indices: np.ndarray) -> Measured:
        rows = [self.known[float(value)][int(i)] for i in indices]
        return Measured(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]))

    def table(self, indices: np.ndarray) -> list[tuple[float, float, float]]:
        """(parameter, mean calls, mean score) of every value measured on all of `indices`, fewest calls first."""
        rows = []
        for value, seen in self.known.items():
            if all(int(i) in seen for i in indices):
                measured = self.on(value, indices)
                rows.append((value, float(measured.calls.mean()), float(measured.scores.mean())))
        return sorted(rows, key=lambda r: (r[1], self._care(r[0])))

    def _care(self, value: float) -> float:
        """Larger for the value that commits less per call (a higher tau, a lower gamma)."""
        return -value if self.decoder == "entropy" else value

    def choose(self, budget: int, indices: np.ndarray) -> float | None:
        """The best mean score among the values whose mean calls per record are within the budget."""
        feasible = [row for row in self.table(indices) if row[1] <= budget + 1e-9]
        if not feasible:
            return None
        return max(feasible, key=lambda r: (r[2], -r[1]))[0]

    def bracket(self, budget: int, indices: np.ndarray) -> tuple[float | None, float | None]:
        """(the most careful value within the budget, the least careful one more careful than it and over it)."""
        table = self.table(indices)
        inside = [r[0] for r in table if r[1] <= budget + 1e-9]
        low = max(inside, key=self._care, default=None)
        over = [r[0] for r in table if r[1] > budget + 1e-9 and low is not None and self._care(r[0]) > self._care(low)]
        return low, min(over, key=self._care, default=None)

    def bracket_midpoint(self, budget: int, indices: np.ndarray) -> float | None:
        """Bisection between the bracket's ends (arithmetic for tau, geometric for gamma); None when it is closed."""
        low, high = self.bracket(budget, indices)
        if low is None or high is None or abs(high - low) <= 1e-4 * max(abs(low), abs(high)):
            return None
        if self.decoder != "entropy":
            return (low + high) / 2
        return math.sqrt(low * high) if high > 0 else low / 10
