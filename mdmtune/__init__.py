"""mdmtune: tune the mask schedule of a masked diffusion model after training.

The core (`core`: schedules, plans, energy, toy; `data`, `metrics`, `options`, `sampling`, `models`, `tuning`) is pure
computation: it never imports FastAPI or SQLAlchemy, so it runs from a notebook with no server. The service lives in
`mdmtune.service.app`, `mdmtune.service.db` and `mdmtune.service.workers`, which use the core and never the other way
round.

Modules that lived at the package root before 0.2 still import under their old names, with a DeprecationWarning
naming the new one, so scripts written for 0.1 keep running while they are updated.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

__version__ = "0.2.0"

MOVED = {
    "mdmtune.schedules": "mdmtune.core.schedules",
    "mdmtune.plans": "mdmtune.core.plans",
    "mdmtune.energy": "mdmtune.core.energy",
    "mdmtune.toy": "mdmtune.core.toy",
    "mdmtune.evalsets": "mdmtune.data.evalsets",
    "mdmtune.evalset_convert": "mdmtune.data.convert",
    "mdmtune.outputs": "mdmtune.data.outputs",
    "mdmtune.archive": "mdmtune.data.archive",
    "mdmtune.jsonsafe": "mdmtune.data.jsonsafe",
    "mdmtune.display": "mdmtune.data.display",
    "mdmtune.evaluation": "mdmtune.tuning.evaluation",
    "mdmtune.client": "mdmtune.service.client",
    "mdmtune.option_names": "mdmtune.options.names",
    "mdmtune.code_metric": "mdmtune.metrics.code",
    "mdmtune.task_metrics": "mdmtune.metrics.tasks",
    "mdmtune.tuning.limits": "mdmtune.options.limits",
}
"""Old module name -> where it lives now (0.2's layout: one package a layer)."""


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an import of an old name with the module at its new name (the same module object, so state and
    identity are shared), after a DeprecationWarning. The import system stamps the old name's spec on the module;
    exec_module puts the module's own spec back."""

    def __init__(self) -> None:
        self._own_specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        self._own_specs[new] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run (the module at the new name is already loaded): give it back its own spec."""
        module.__spec__ = self._own_specs[module.__name__]


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
