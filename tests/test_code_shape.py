"""scripts/code_shape.py counts what the redesign's before/after table reports."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "code_shape.py"


def _load():
    spec = importlib.util.spec_from_file_location("code_shape", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shape_counts_lines_any_functions_and_root_modules():
    code_shape = _load()
    files = {
        "mdmtune/__init__.py": '"""doc"""\n',
        "mdmtune/loose.py": "from typing import Any\n\n\ndef f(x: Any) -> Any:\n    # note\n    return x\n",
        "mdmtune/pkg/inner.py": (
            "class C:\n    def m(self):\n        def g():\n            return 1\n\n        return g()\n"
        ),
    }
    shape = code_shape.shape(files, most=2)
    assert shape["files"] == 3
    assert shape["lines"] == 1 + 6 + 6
    assert shape["code_lines"] == 1 + 3 + 5
    assert shape["any"] == 2
    assert shape["functions"] == 3
    assert shape["longest_functions"] == [
        {"name": "mdmtune.pkg.inner:C.m", "lines": 5},
        {"name": "mdmtune.loose:f", "lines": 3},
    ]
    assert shape["root_modules"] == ["loose.py"]


def test_shape_reads_a_commit_without_checking_it_out():
    code_shape = _load()
    files = code_shape.sources_at("HEAD", SCRIPT.parents[1])
    assert "mdmtune/__init__.py" in files and all(path.endswith(".py") for path in files)
