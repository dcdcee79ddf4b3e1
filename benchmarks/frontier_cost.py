"""Cost of the frontier job (issue: the quality-per-NFE frontier): every budget and every decoder together against the
paper's 10 x 10 grid of (a, b) in {0.1, ..., 1.0} at a single N, on the same records. Goal: frontier < one grid.

- frontier: `mdmtune.tuning.frontier.run_frontier` as shipped (a Beta search per budget with batches and successive
  halving, the shared score cache, the adaptive decoders' ladders on a first rung and bisection), its model calls
  (`nfe`, one per batch call) and per-row calls (`row_nfe`, what every sampled row would cost alone).
- grid: every grid schedule on every record at N, batched as the tuner batches (schedules fastest, `--batch-size`
  rows). Its cost follows from the count plans by the sampler's own rule (a row takes part in a call exactly when its
  plan commits at that step; a call is made when any row of the batch commits), so it is computed at every budget N
  without sampling; `--run-grid N` also samples the grid at that N and reports the measured calls beside the computed
  ones (they must agree).
JSON on stdout, nothing asserted about time.

    python benchmarks/frontier_cost.py [--testbed sudoku] [--budgets 4,8] [--records 80] [--trials 16] [--run-grid 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import optuna
import torch

from mdmtune.core.schedules import alpha_grids, beta
from mdmtune.data.evalsets import EvalSet, load_eval_set
from mdmtune.models.loading import load_denoiser
from mdmtune.sampling import SamplerSettings
from mdmtune.sampling.layout import build_layout, step_counts
from mdmtune.tuning.evaluation import encode_records, evaluate
from mdmtune.tuning.frontier import run_frontier
from mdmtune.tuning.spec import TuneSpec

GRID = [round(0.1 * i, 1) for i in range(1, 11)]
TESTBEDS = {"sudoku": ("sudoku", None), "arithmetic": ("exact_match", 24)}


def grid_schedules() -> list:
    return [beta(a, b) for a in GRID for b in GRID]


def grid_cost(denoiser, encoded, steps: int, spec: TuneSpec) -> dict:
    """Calls and per-row calls of the grid at N = steps, from the count plans, batched as evaluate() batches."""
    schedules = grid_schedules()
    alphas = alpha_grids(schedules, steps)
    rows = [(r, s) for r in range(len(encoded)) for s in range(len(schedules))]  # schedules fastest
    calls = row_calls = 0
    for start in range(0, len(rows), spec.batch_size):
        batch = np.array(rows[start : start + spec.batch_size])
        ids = encoded.ids[batch[:, 0]]
        layout = build_layout(ids, denoiser.mask_token_id, encoded.gen_region, spec.block_length, steps)
        commits = step_counts(alphas[batch[:, 1]], layout) > 0
        calls += int(commits.any(axis=0).sum())
        row_calls += int(commits.sum())
    return {"steps": steps, "schedules": len(schedules), "nfe": calls, "row_nfe": row_calls}


def measured_grid(denoiser, encoded, steps: int, spec: TuneSpec) -> dict:
    settings = SamplerSettings(block_length=spec.block_length)
    started = time.perf_counter()
    result = evaluate(
        denoiser, encoded, grid_schedules(), steps, settings, spec.metric, seed=spec.seed, batch_size=spec.batch_size
    )
    best = float(result.mean_scores().max())
    return {
        "steps": steps,
        "nfe": int(result.nfe),
        "row_nfe": int(result.row_nfe.sum()),
        "best_score": best,
        "wall_time_s": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--testbed", choices=sorted(TESTBEDS), default="sudoku")
    parser.add_argument("--budgets", default="4,8")
    parser.add_argument("--records", type=int, default=80, help="The first R records of the eval set.")
    parser.add_argument("--trials", type=int, default=16, help="Beta search trials per budget.")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-grid", type=int, default=None, metavar="N", help="Also sample the grid at this N.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metric, gen_length = TESTBEDS[args.testbed]
    root = Path(__file__).resolve().parents[1] / "examples" / args.testbed
    denoiser = load_denoiser(root / "checkpoint")
    full = load_eval_set(root / "eval.jsonl")
    records = EvalSet(records=full.records[: args.records], kind=full.kind, sha256=f"{full.sha256}:{args.records}")
    budgets = tuple(sorted(int(b) for b in args.budgets.split(",")))
    spec = TuneSpec(
        objective="frontier",
        steps=budgets,
        n_trials=args.trials,
        metric=metric,
        gen_length=gen_length,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    started = time.perf_counter()
    result = run_frontier(spec, checkpoint=denoiser, eval_set=records, checkpoint_sha=f"{args.testbed}-shipped")
    frontier_s = time.perf_counter() - started
    encoded = encode_records(denoiser, records, gen_length=gen_length)
    grids = [grid_cost(denoiser, encoded, n, spec) for n in budgets]
    smallest = grids[0]
    report = {
        "testbed": args.testbed,
        "records": len(records.records),
        "budgets": list(budgets),
        "trials_per_budget": args.trials,
        "batch_size": args.batch_size,
        "frontier": {
            "nfe": result.nfe,
            "row_nfe": result.row_nfe,
            "nfe_by_part": result.nfe_by_part,
            "row_nfe_by_part": result.row_nfe_by_part,
            "wall_time_s": frontier_s,
            "winners": {str(b.budget): [b.winner.name, round(b.winner.score, 4)] for b in result.frontier},
        },
        "grid_computed": grids,
        "frontier_over_grid_at_smallest_budget": {
            "steps": smallest["steps"],
            "nfe": result.nfe / smallest["nfe"],
            "row_nfe": result.row_nfe / smallest["row_nfe"],
        },
        "cheaper_than_one_grid_at_every_budget": all(
            result.nfe < g["nfe"] and result.row_nfe < g["row_nfe"] for g in grids
        ),
    }
    if args.run_grid is not None:
        measured = measured_grid(denoiser, encoded, args.run_grid, spec)
        computed = grid_cost(denoiser, encoded, args.run_grid, spec)
        measured["computed_agrees"] = measured["nfe"] == computed["nfe"] and measured["row_nfe"] == computed["row_nfe"]
        report["grid_measured"] = measured
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
