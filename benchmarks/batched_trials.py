"""Batched trials: schedules evaluated per second with 8 schedules in one model batch vs one schedule at a time.

This is the tuner's batching (several trials asked at once, sampled in one `mdmtune.tuning.evaluation.evaluate` call).
Both sides evaluate the same 8 schedules on the same records with the same seeds (so the same outputs: checked),
timed alternately `--repeats` times; the medians are compared. Goal: >= 1.5x on CPU (>= 3x on a GPU). JSON out.

    python benchmarks/batched_trials.py [--testbed sudoku] [--records 8] [--steps 8] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _reference_model import add_model_arguments, describe, load_model_and_records, synchronize

from mdmtune.core.schedules import beta, named
from mdmtune.sampling import SamplerSettings
from mdmtune.tuning.evaluation import evaluate

SCHEDULES = [named("linear"), named("cos2"), beta(1.0, 0.2), beta(0.9, 0.3), beta(0.8, 0.8), beta(0.3, 0.9)]
SCHEDULES += [beta(2.0, 1.0), beta(0.6, 1.5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--records", type=int, default=8, help="records per trial (the tuner's first rung: 8)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sampler", default="count")
    parser.add_argument("--remasking", default="low_confidence")
    parser.add_argument("--temperature", type=float, default=0.0)
    args = parser.parse_args()
    denoiser, encoded = load_model_and_records(args, args.records)
    settings = SamplerSettings(args.sampler, args.remasking, args.temperature)

    def run(schedules):
        result = evaluate(
            denoiser, encoded, schedules, args.steps, settings, "exact_match", seed=1, batch_size=args.batch_size
        )
        synchronize(denoiser)
        return result

    def together():
        return [run(SCHEDULES)]

    def one_by_one():
        return [run([schedule]) for schedule in SCHEDULES]

    batched, single = together(), one_by_one()  # warm-up, and the outputs to compare
    same = all(batched[0].outputs[i] == single[i].outputs[0] for i in range(len(SCHEDULES)))
    times = {"together": [], "one_by_one": []}
    for _ in range(args.repeats):
        for name, function in (("together", together), ("one_by_one", one_by_one)):
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    together_s, single_s = statistics.median(times["together"]), statistics.median(times["one_by_one"])
    report = {
        "benchmark": "batched_trials",
        "goal": "speedup >= 1.5 on CPU (>= 3 on a GPU)",
        "testbed": args.testbed,
        "schedules": len(SCHEDULES),
        "records": args.records,
        "steps": args.steps,
        "sampler": [settings.sampler, settings.remasking, settings.temperature],
        **describe(denoiser),
        "same_outputs": same,
        "nfe_together": batched[0].nfe,
        "nfe_one_by_one": sum(r.nfe for r in single),
        "together_s": together_s,
        "one_by_one_s": single_s,
        "schedules_per_s_together": len(SCHEDULES) / together_s,
        "schedules_per_s_one_by_one": len(SCHEDULES) / single_s,
        "speedup": single_s / together_s,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
