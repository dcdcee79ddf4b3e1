"""The one interface every tuning objective has: score a batch of (a, b) points, report what it cost.

`run_search` asks several trials at once and hands their (a, b) to `Objective.evaluate` in one call, so an objective
can evaluate a whole batch together (one model batch for many schedules; one vectorized energy call). An objective
that evaluates in stages (growing record subsets) calls `report(index, step, value)` after each stage; a True answer
means "stop spending on this one" (successive-halving pruning decided by the study, so that several workers share the
decision). `should_stop()`, when given, may be polled inside a long evaluation (between model batches); an
objective that sees it say True raises `EvaluationStopped`, and run_search returns as if stopped between batches
(the interrupted trials are told FAIL and their (a, b) re-enqueued, so a resumed job evaluates them).
Pure Python; no web, no database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from mdmtune.errors import MdmtuneError


class EvaluationStopped(MdmtuneError):
    """Raised by an objective when should_stop() said stop in the middle of a batch."""


ReportHook = Callable[[int, int, float], bool]
"""report(index in the batch, step (records seen so far), intermediate value) -> True to prune that trial."""
Points = Sequence[tuple[float, float]]
"""The (a, b) of each trial of a batch, in order."""
StopCheck = Callable[[], bool]
"""should_stop() -> True to stop (polled between batches, and between model batches inside one)."""


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

    def evaluate(
        self, params: Points, report: ReportHook | None = None, should_stop: StopCheck | None = None
    ) -> BatchValues:
        """Values for each (a, b), in order."""
        ...
