"""The tuning objective of a job: energy (no model) or quality (checkpoint + eval set, loaded once per sha256).

Loading a checkpoint is the slow part of a quality job, so a worker keeps the last few loaded models by the sha256
of their bytes (`Settings.model_cache_size`): several jobs on one checkpoint load it once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from mdmtune.db.models import Job
from mdmtune.errors import InvalidInput
from mdmtune.settings import Settings


class ObjectiveCache:
    """Builds objectives for jobs; keeps loaded denoisers by checkpoint sha256 (LRU)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._models: OrderedDict[str, Any] = OrderedDict()

    def get(self, spec: Any, job: Job) -> Any:
        if spec.objective == "energy":
            return self._energy(spec)
        return self._quality(spec, job)

    def _energy(self, spec: Any) -> Any:
        from mdmtune.tuning.energy_objective import EnergyObjective

        if len(spec.steps_list) != 1:
            raise InvalidInput("steps", "a service job tunes one step count")
        return EnergyObjective(steps=spec.steps_list[0], weight_a=spec.weight_a, weight_b=spec.weight_b)

    def _quality(self, spec: Any, job: Job) -> Any:
        raise InvalidInput("objective", "quality jobs need the quality objective, not wired yet")
