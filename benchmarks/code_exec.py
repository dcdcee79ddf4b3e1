"""Code-execution speed of the sandbox: programs per second, and the cost of the sandbox per program.

Runs N small HumanEval-style programs (a function, its check, `check(entry_point)`) through
mdmtune.sandbox.run_programs with the default parallelism (the CPU count), then the same programs one at a time,
and compares the one-at-a-time time with a bare `python -c pass` and a bare `python program.py` (no sandbox) of
the same interpreter: the difference is what the sandbox adds per program (its launcher, namespaces, mounts, temp
dir, uid switch and clean-up). JSON on stdout; nothing is asserted.

    python benchmarks/code_exec.py [--programs 40] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mdmtune.sandbox import _interpreter, run_program, run_programs

PROGRAM = '''def add(a, b):
    """Sum."""
    return a + b + {i} - {i}


def check(candidate):
    assert candidate(2, 3) == 5
    assert candidate(-1, 1) == 0


check(add)
'''


def timed(command: list[str], cwd: str) -> float:
    """Seconds of one bare subprocess run (empty environment, like the sandbox's)."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env={}, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=40)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    sources = [PROGRAM.format(i=i) for i in range(args.programs)]
    python = _interpreter()

    start = time.perf_counter()
    results = run_programs(sources, workers=args.workers)
    parallel = time.perf_counter() - start
    assert all(r.passed for r in results), [r.output_tail for r in results if not r.passed][:1]

    # One at a time, interleaved with the bare runs, so that load from elsewhere hits all three alike.
    sandboxed, bare_pass, bare_program = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "program.py").write_text(sources[0])
        for source in sources[: max(5, args.programs // 2)]:
            bare_pass.append(timed([python, "-c", "pass"], folder))
            begin = time.perf_counter()
            run_program(source)
            sandboxed.append(time.perf_counter() - begin)
            bare_program.append(timed([python, "-I", "program.py"], folder))
    sandboxed_s, pass_s, program_s = (statistics.median(v) for v in (sandboxed, bare_pass, bare_program))

    print(
        json.dumps(
            {
                "programs": args.programs,
                "workers": args.workers or os.cpu_count(),
                "cpu_count": os.cpu_count(),
                "programs_per_second": round(args.programs / parallel, 2),
                "sandboxed_seconds_per_program": round(sandboxed_s, 4),
                "bare_python_c_pass_seconds": round(pass_s, 4),
                "bare_program_seconds": round(program_s, 4),
                "overhead_per_program_seconds": round(sandboxed_s - pass_s, 4),
                "overhead_vs_bare_program_seconds": round(sandboxed_s - program_s, 4),
                "sandboxed_over_bare_pass": round(sandboxed_s / pass_s, 2),
                "protections": results[0].protections,
            }
        )
    )


if __name__ == "__main__":
    main()
