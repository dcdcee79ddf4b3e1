"""Energy search speed and accuracy: trials per second of `mdmtune tune --objective energy` (goal: 200 trials < 2 s).

Times create_study + run_search (+ finalize) for several weights, in memory (the library default, and the CLI's for
energy) and on a SQLite file (what a resumable job pays), and reports how far the best trial is from the
minimum found by a dense 400 x 400 log grid. JSON on stdout; nothing is asserted.

    python benchmarks/energy_search.py [--trials 200] [--steps 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import optuna

from mdmtune.core.energy import discrete_energy
from mdmtune.tuning import EnergyObjective, TuneSpec, create_study, finalize, run_search

WEIGHTS = ((1.0, 1.0), (0.8, 0.8), (1.0, 0.2), (2.0, 3.0))


def one_run(spec: TuneSpec, storage: str | None) -> tuple[float, optuna.Study]:
    start = time.perf_counter()
    study = create_study(spec, storage, "bench")
    objective = EnergyObjective(spec.steps, spec.weight_a, spec.weight_b)
    run_search(spec, study, objective)
    finalize(spec, study, objective)
    return time.perf_counter() - start, study


def grid_minimum(steps: int, weight: tuple[float, float], resolution: int = 400) -> tuple[float, float, float]:
    values = np.geomspace(0.05, 5.0, resolution)
    a, b = (m.ravel() for m in np.meshgrid(values, values, indexing="ij"))
    energies = np.asarray(discrete_energy(a, b, steps, *weight))
    best = int(np.argmin(energies))
    return float(a[best]), float(b[best]), float(energies[best])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for weight in WEIGHTS:
        spec = TuneSpec(
            objective="energy", steps=args.steps, weight_a=weight[0], weight_b=weight[1], n_trials=args.trials, seed=0
        )
        memory = [one_run(spec, None) for _ in range(args.repeats)]
        with tempfile.TemporaryDirectory() as folder:
            sqlite_s, _ = one_run(spec, f"sqlite:///{folder}/study.db")
        study = memory[-1][1]
        ga, gb, ge = grid_minimum(args.steps, weight)
        seconds = statistics.median(t for t, _ in memory)
        rows.append(
            {
                "weight": list(weight),
                "in_memory_seconds": round(seconds, 4),
                "trials_per_second": round(args.trials / seconds, 1),
                "sqlite_seconds": round(sqlite_s, 3),
                "best": {"a": study.best_params["a"], "b": study.best_params["b"], "energy": study.best_value},
                "grid_minimum": {"a": ga, "b": gb, "energy": ge},
                "energy_gap_relative": study.best_value / ge - 1,
                "log_distance_to_grid_argmin": max(
                    abs(math.log(study.best_params["a"] / ga)), abs(math.log(study.best_params["b"] / gb))
                ),
            }
        )
    worst = max(r["in_memory_seconds"] for r in rows)
    print(
        json.dumps(
            {
                "benchmark": "energy_search",
                "trials": args.trials,
                "steps": args.steps,
                "goal": f"{args.trials} trials < 2 s",
                "worst_in_memory_seconds": worst,
                "meets_goal": worst < 2.0,
                "runs": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
