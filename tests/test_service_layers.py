"""Which layer imports which, checked in a fresh interpreter: the service (app, workers) never imports the CLI, and
the remote client imports neither the service nor a database or web framework (a user's laptop needs only httpx)."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(imports: str) -> set[str]:
    code = f"import sys\n{imports}\nprint('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(done.stdout.split())


def test_the_service_never_imports_the_cli():
    loaded = _loaded_after(
        "import mdmtune.service.app.main, mdmtune.service.workers.runner, mdmtune.service.workers.jobs\n"
        "from mdmtune.service.app.main import create_app"
    )
    assert "mdmtune.service.workers.runner" in loaded
    assert not [name for name in loaded if name.startswith("mdmtune.cli")]


def test_the_client_imports_no_service_code():
    loaded = _loaded_after("import mdmtune.service.client")
    assert "httpx" in loaded
    banned = ("mdmtune.service.app", "mdmtune.service.workers", "mdmtune.service.db", "fastapi", "sqlalchemy", "torch")
    assert not [name for name in loaded if name.startswith(banned)]


def test_an_api_node_imports_no_torch():
    """An API node checks jobs against stored metadata and never loads a model, so it need not import torch."""
    loaded = _loaded_after("from mdmtune.service.app.main import create_app\nimport mdmtune.service.workers.jobs")
    assert "mdmtune.models.metadata" in loaded or "mdmtune.service.app.routes.artifacts" in loaded
    assert "torch" not in loaded


def test_the_core_never_imports_the_service():
    """A notebook user runs the whole quality search with no web framework or database library loaded."""
    loaded = _loaded_after(
        "import mdmtune.core.schedules, mdmtune.core.plans, mdmtune.core.energy, mdmtune.core.toy\n"
        "import mdmtune.data.evalsets, mdmtune.metrics\n"
        "import mdmtune.tuning.evaluation, mdmtune.sampling, mdmtune.models.loading, mdmtune.tuning.api\n"
        "import mdmtune.tuning.quality_objective, mdmtune.tuning.frontier, mdmtune.tuning.compare"
    )
    assert "mdmtune.tuning.quality_objective" in loaded
    banned = ("mdmtune.service", "mdmtune.cli", "fastapi", "sqlalchemy", "uvicorn")
    assert not [name for name in loaded if name.startswith(banned)]
