"""The one interface every tuning objective has: score a batch of (a, b) points, report what it cost.

`run_search` asks several trials at once and hands their (a, b) to `Objective.evaluate` in one call, so an objective
can evaluate a whole batch together (one model batch for many schedules; one vectorized energy call). An objective
that evaluates in stages (growing record subsets) calls `report(index, step, value)` after each stage; a True answer
means "stop spending on this one" (successive-halving pruning decided by the study, so that several workers share the
decision). Pure Python; no web, no database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

ReportHook = Callable[[int, int, float], bool]
"""report(index in the batch, step (records seen so far), intermediate value) -> True to prune that trial."""


@dataclass(frozen=True)
class BatchValues:
    """What one batch of trials came to: a value per trial (the last rung's value for a pruned one) and its cost."""

    values: list[float]
    pruned: list[bool]
    nfe: int
    """Model forward passes actually run for this batch (0 for the model-free energy objective, and for cache hits)."""


class Objective(Protocol):
    direction: Literal["minimize", "maximize"]

    @property
    def pruner(self) -> object | None:
        """An optuna pruner for staged objectives, None for one-shot ones."""
        ...

    def evaluate(self, params: Sequence[tuple[float, float]], report: ReportHook | None = None) -> BatchValues:
        """Values for each (a, b), in order."""
        ...
