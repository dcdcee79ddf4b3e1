"""The model-free objective: minimize the N-step discrete energy E_N(alpha_{a,b}; gamma_w) (docs/math.md).

Its minimizer sits at (a, b) ~= w (the paper's Fig. 2), which makes it the check that the search machinery lands on
a known optimum, and a way to pick a schedule from a weight alone. A batch is one vectorized energy call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mdmtune.core.energy import discrete_energy
from mdmtune.tuning.objective import BatchValues, Points, ReportHook, StopCheck


@dataclass
class EnergyObjective:
    """E_N for weight (weight_a, weight_b) at `steps` steps; lower is better."""

    steps: int
    weight_a: float = 1.0
    weight_b: float = 1.0
    direction: Literal["minimize", "maximize"] = "minimize"

    @property
    def pruner(self) -> None:
        return None

    def energies(self, params: Points) -> np.ndarray:
        """E_N for each (a, b), one vectorized call."""
        if not params:
            return np.empty(0)
        a = np.array([p[0] for p in params], dtype=np.float64)
        b = np.array([p[1] for p in params], dtype=np.float64)
        return np.asarray(discrete_energy(a, b, self.steps, weight_a=self.weight_a, weight_b=self.weight_b))

    def evaluate(
        self, params: Points, report: ReportHook | None = None, should_stop: StopCheck | None = None
    ) -> BatchValues:
        """One vectorized call: too quick to interrupt, so should_stop is left to run_search."""
        values = [float(v) for v in self.energies(params)]
        return BatchValues(values=values, pruned=[False] * len(values), nfe=0)
