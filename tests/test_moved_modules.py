"""Scripts written for 0.1 import the modules that moved in 0.2's layout by their old names, with a warning."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import mdmtune

PACKAGE_PARENT = Path(mdmtune.__file__).resolve().parents[1]


@pytest.mark.parametrize("old", sorted(mdmtune.MOVED))
def test_an_old_name_is_the_new_module_and_says_where_it_went(old):
    new = mdmtune.MOVED[old]
    assert not (PACKAGE_PARENT / (old.replace(".", "/") + ".py")).exists(), "a real module would shadow the alias"
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__spec__.name == new  # the module keeps its own spec


def test_a_0_1_script_runs_in_a_fresh_interpreter():
    script = (
        "import warnings\nwarnings.simplefilter('error')\n"
        "try:\n    from mdmtune.schedules import beta\nexcept DeprecationWarning as w:\n    print(w)\n"
        "warnings.simplefilter('ignore')\n"
        "from mdmtune.schedules import beta\nfrom mdmtune.plans import count_plan\n"
        "print(count_plan(beta(0.7, 0.7).on_grid(8), 45).tolist())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    warning, plan = done.stdout.splitlines()
    assert warning == "mdmtune.schedules moved to mdmtune.core.schedules; import it from there"
    from mdmtune.core.plans import count_plan
    from mdmtune.core.schedules import beta

    assert plan == str(count_plan(beta(0.7, 0.7).on_grid(8), 45).tolist())


def test_an_unknown_name_still_fails_to_import():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("mdmtune.no_such_module")
