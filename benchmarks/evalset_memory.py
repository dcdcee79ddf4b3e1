"""Memory of parsing an eval set: the peak Python allocation (tracemalloc) of `load_eval_set` on a generated JSON
Lines file, against the file's size (goal: under 3x for records the size of a benchmark question). JSON on stdout.

Each measurement runs in a fresh subprocess, so nothing allocated before counts. Two record shapes:
- `question`: {"id", "prompt", "answer", "group"} with a two-sentence word problem as the
  prompt, shorter than most GSM8K questions (~270 bytes a line);
- `short`: {"prompt": "12+34=", "answer": "46"} (~35 bytes a line), where a Python object and two strings a record
  (about 200 bytes whatever the text) dominate, so the ratio is higher.

    python benchmarks/evalset_memory.py [--mb 150] [--shape question|short|both]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_MEASURE = """
import json, resource, sys, time, tracemalloc
from mdmtune.data.evalsets import load_eval_set
path = sys.argv[1]
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
started = time.perf_counter()
eval_set = load_eval_set(path)
seconds = time.perf_counter() - started
held, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"records": len(eval_set), "peak_bytes": peak, "held_bytes": held, "seconds": round(seconds, 1),
                  "max_rss_growth_bytes": (rss_after - rss_before) * 1024}))
"""


def write_records(path: Path, size_bytes: int, shape: str) -> int:
    """Write records of `shape` to `path` until it holds `size_bytes`; the file's size."""
    written, n = 0, 0
    with open(path, "w", encoding="utf-8") as handle:
        while written < size_bytes:
            a, b = n % 9973, (n * 7) % 10007
            if shape == "short":
                record = {"prompt": f"{a}+{b}=", "answer": str(a + b)}
            else:
                record = {
                    "id": f"q-{n:07d}",
                    "prompt": f"Question: A shop had {a} apples in the morning. In the afternoon a farmer brought "
                    f"{b} more, packed in crates of twelve, and nobody bought any. How many apples does the shop "
                    "have at the end of the day?\nAnswer:",
                    "answer": str(a + b),
                    "group": ("easy", "medium", "hard")[n % 3],
                }
            line = json.dumps(record) + "\n"
            handle.write(line)
            written += len(line.encode())
            n += 1
    return path.stat().st_size


def measure(path: Path) -> dict:
    """Parse `path` in a fresh interpreter under tracemalloc; its figures and the ratio to the file size."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, check=True, env=env
    ).stdout
    figures = json.loads(out)
    size = path.stat().st_size
    return {"file_bytes": size, **figures, "peak_ratio": round(figures["peak_bytes"] / size, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=150.0, help="file size in MB (10^6 bytes)")
    parser.add_argument("--shape", choices=("question", "short", "both"), default="question")
    args = parser.parse_args()
    shapes = ("question", "short") if args.shape == "both" else (args.shape,)
    results = {}
    with tempfile.TemporaryDirectory(prefix="mdmtune-evalset-memory-") as scratch:
        for shape in shapes:
            path = Path(scratch) / f"{shape}.jsonl"
            write_records(path, int(args.mb * 1e6), shape)
            results[shape] = measure(path)
            path.unlink()
    print(json.dumps({"goal": "peak_ratio < 3 (question-sized records)", **results}, indent=2))


if __name__ == "__main__":
    main()
