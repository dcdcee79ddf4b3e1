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
        "import mdmtune.app.main, mdmtune.workers.runner, mdmtune.workers.jobs\nfrom mdmtune.app.main import create_app"
    )
    assert "mdmtune.workers.runner" in loaded
    assert not [name for name in loaded if name.startswith("mdmtune.cli")]


def test_the_client_imports_no_service_code():
    loaded = _loaded_after("import mdmtune.client")
    assert "httpx" in loaded
    banned = ("mdmtune.app", "mdmtune.workers", "mdmtune.db", "fastapi", "sqlalchemy", "torch")
    assert not [name for name in loaded if name.startswith(banned)]
