"""Search efficiency (issue 3, section 6): model calls for the tuner to come within one standard error of the best
point of the paper's grid (a, b in {0.1, ..., 1.0}, 100 schedules), against the grid's own cost. Goal: <= 1/4.

Both sides run in this process on the same model, eval set, N, sampler settings and seeds:
- grid: every grid schedule scored on every record, in batches of `--batch-size` rows (schedules fastest, as the
  tuner batches); its best mean score g* and SE = sqrt(g* (1 - g*) / R).
- tuner: `mdmtune.tuning` as shipped (TPE, baselines first, batches of 8, rungs with successive halving, a confirm
  split held out). After each batch its current best trial (best search-split value) is scored on all R records
  (a measurement, not charged to the tuner, through its own cache); the tuner's cost is the NFEs its search had
  spent when that score first reached g* - SE.
Costs are reported both as model calls (`nfe`: one per batch call) and per row (`row_nfe`: what each sampled row
would cost alone), because batching changes the first and not the second. JSON on stdout.

    python benchmarks/search_efficiency.py --checkpoint examples/sudoku/<checkpoint> \
        --eval-set examples/sudoku/eval.jsonl [--steps 8] [--trials 60] [--records 200] [--device cuda]
    python benchmarks/search_efficiency.py --toy two-or-three [--steps 3] [--records 300]

`--toy TARGET` swaps the model for the exact toy posterior (mdmtune.tuning.toy_denoiser; count sampler, random
remasking, temperature 1, regex metric "in the support"): seconds instead of minutes on a CPU, and a landscape whose
truth (the toy's exact support mass) is known; the JSON then also carries the exact value of each side's pick.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import optuna
import torch

from mdmtune.core.schedules import beta
from mdmtune.core.toy import run_toy
from mdmtune.data.evalsets import EvalSet, load_eval_set
from mdmtune.models.loading import load_denoiser
from mdmtune.sampling import SamplerSettings
from mdmtune.tuning import TuneSpec, create_study, run_search
from mdmtune.tuning.evaluation import encode_records, evaluate
from mdmtune.tuning.quality_objective import QualityObjective
from mdmtune.tuning.search import FINISHED
from mdmtune.tuning.toy_denoiser import ToyPosterior, toy_eval_set

GRID = [round(0.1 * i, 1) for i in range(1, 11)]


def find_checkpoint(testbed: str) -> Path | None:
    """The shipped checkpoint of a testbed: the folder under examples/<testbed> holding a config.json."""
    root = Path(__file__).resolve().parents[1] / "examples" / testbed
    found = sorted(p.parent for p in root.rglob("config.json"))
    return found[0] if found else None


def score_all(denoiser, encoded, schedules, spec: TuneSpec, indices) -> tuple[np.ndarray, int, int]:
    """Mean score of each schedule on `indices`, and the NFEs (calls, rows) it cost."""
    settings = SamplerSettings(spec.sampler, spec.remasking, float(spec.temperature), spec.block_length)
    result = evaluate(
        denoiser,
        encoded,
        schedules,
        spec.steps,
        settings,
        spec.metric,
        record_indices=indices,
        replicates=spec.replicates,
        seed=spec.seed,
        batch_size=spec.batch_size,
    )
    return result.scores.mean(axis=(1, 2)), int(result.nfe), int(result.row_nfe.sum())


def run_grid(denoiser, encoded, spec: TuneSpec, indices, identity) -> dict:
    """The paper's grid, every point sampled (as the paper does); `distinct_*` says what sampling each distinct
    count plan once (as the tuner's cache does) would have cost in rows."""
    start = time.perf_counter()
    points = [(a, b) for a in GRID for b in GRID]
    schedules = [beta(a, b) for a, b in points]
    settings = SamplerSettings(spec.sampler, spec.remasking, float(spec.temperature), spec.block_length)
    result = evaluate(
        denoiser,
        encoded,
        schedules,
        spec.steps,
        settings,
        spec.metric,
        record_indices=indices,
        replicates=spec.replicates,
        seed=spec.seed,
        batch_size=spec.batch_size,
    )
    scores, nfe, row_nfe = result.scores.mean(axis=(1, 2)), int(result.nfe), int(result.row_nfe.sum())
    first_of: dict[str, int] = {}
    for i, schedule in enumerate(schedules):
        first_of.setdefault(identity(schedule), i)
    best = int(np.argmax(scores))
    g = float(scores[best])
    return {
        "schedules": len(points),
        "best": {"a": points[best][0], "b": points[best][1], "score": g},
        "se": math.sqrt(max(g * (1 - g), 1e-12) / len(indices)),
        "nfe": nfe,
        "row_nfe": row_nfe,
        "distinct_plans": len(first_of),
        "distinct_row_nfe": int(sum(result.row_nfe[i].sum() for i in first_of.values())),
        "seconds": round(time.perf_counter() - start, 2),
        "scores": {f"{a},{b}": float(s) for (a, b), s in zip(points, scores, strict=True)},
    }


def run_tuner(denoiser, encoded, eval_set: EvalSet, spec: TuneSpec, indices, target: float) -> dict:
    start = time.perf_counter()
    objective = QualityObjective.build(spec, checkpoint=denoiser, eval_set=eval_set, checkpoint_sha="benchmark")
    study = create_study(spec, None, "efficiency")
    measured: dict[tuple[float, float], float] = {}
    trace = []

    def progress(p) -> None:
        if p.best_params is None:
            return
        key = (p.best_params["a"], p.best_params["b"])
        if key not in measured:
            measured[key] = float(score_all(denoiser, encoded, [beta(*key)], spec, indices)[0][0])
        trace.append(
            {
                "trials": p.trials_done,
                "nfe": objective.nfe_spent,
                "row_nfe": objective.row_nfe_spent,
                "best": list(key),
                "search_value": p.best_value,
                "full_score": measured[key],
            }
        )

    run_search(spec, study, objective, progress=progress)
    reached = next((t for t in trace if t["full_score"] >= target), None)
    pruned = sum(t.state.name == "PRUNED" for t in study.get_trials(states=FINISHED))
    return {
        "trials": spec.trials,
        "pruned": pruned,
        "rungs": objective.rungs,
        "nfe_total": objective.nfe_spent,
        "row_nfe_total": objective.row_nfe_spent,
        "reached_at": reached,
        "final_best": trace[-1] if trace else None,
        "seconds": round(time.perf_counter() - start, 2),
        "trace": trace,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the shipped Sudoku checkpoint under examples/")
    parser.add_argument("--eval-set", default=str(Path(__file__).resolve().parents[1] / "examples/sudoku/eval.jsonl"))
    parser.add_argument("--metric", default="sudoku")
    parser.add_argument("--toy", default=None, help="extremes | two-or-three: the exact toy posterior as the model")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--records", type=int, default=None, help="use the first R records (default all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    checkpoint, denoiser, eval_set, spec = setup(args)
    encoded = encode_records(denoiser, eval_set, mask_symbol=spec.mask_symbol)
    indices = np.arange(len(eval_set))
    probe = QualityObjective.build(spec, checkpoint=denoiser, eval_set=eval_set, checkpoint_sha="benchmark")
    grid = run_grid(denoiser, encoded, spec, indices, probe.schedule_identity)
    target = grid["best"]["score"] - grid["se"]
    tuner = run_tuner(denoiser, encoded, eval_set, spec, indices, target)
    reached = tuner["reached_at"]
    report = {
        "benchmark": "search_efficiency",
        "checkpoint": str(checkpoint),
        "eval_set": "toy" if args.toy else args.eval_set,
        "records": len(eval_set),
        "steps": spec.steps,
        "device": str(denoiser.device),
        "target": target,
        "grid": grid,
        "tuner": tuner,
        "nfe_ratio": None if reached is None else reached["nfe"] / grid["nfe"],
        "row_nfe_ratio": None if reached is None else reached["row_nfe"] / grid["row_nfe"],
        "row_nfe_ratio_to_distinct_plans": None if reached is None else reached["row_nfe"] / grid["distinct_row_nfe"],
        "goal": "nfe_ratio <= 0.25",
    }
    if args.toy is not None:
        report["exact_support_mass"] = exact_values(args.toy, spec.steps, grid, tuner)
    print(json.dumps(report, indent=1))


def setup(args: argparse.Namespace) -> tuple[str, object, EvalSet, TuneSpec]:
    """The model, eval set and spec: the toy posterior, or a checkpoint (default: the shipped Sudoku one)."""
    if args.toy is not None:
        spec = TuneSpec(
            steps=args.steps,
            metric="regex",
            sampler="count",
            remasking="random",
            temperature=1.0,
            n_trials=args.trials,
            seed=args.seed,
            batch_size=args.batch_size,
        )
        return f"toy:{args.toy}", ToyPosterior(args.toy), toy_eval_set(args.toy, args.records or 300), spec
    checkpoint = args.checkpoint or find_checkpoint("sudoku")
    if checkpoint is None:
        sys.exit("no checkpoint: pass --checkpoint (the shipped Sudoku checkpoint was not found under examples/)")
    eval_set = load_eval_set(args.eval_set)
    if args.records is not None:
        eval_set = EvalSet(eval_set.records[: args.records], eval_set.kind, eval_set.sha256)
    spec = TuneSpec(
        steps=args.steps, metric=args.metric, n_trials=args.trials, seed=args.seed, batch_size=args.batch_size
    )
    return str(checkpoint), load_denoiser(checkpoint, device=args.device), eval_set, spec


def exact_values(target: str, steps: int, grid: dict, tuner: dict) -> dict:
    """The toy's exact support mass of each side's pick (what the noisy scores estimate)."""
    final = tuner["final_best"]["best"] if tuner["final_best"] else None
    return {
        "grid_best": run_toy(target, grid["best"]["a"], grid["best"]["b"], steps, "count").support_mass,
        "tuner_best": None if final is None else run_toy(target, *final, steps, "count").support_mass,
        "linear": run_toy(target, 0.5, 0.5, steps, "count").support_mass,
        "best_of_grid_exact": max(run_toy(target, a, b, steps, "count").support_mass for a in GRID for b in GRID),
    }


if __name__ == "__main__":
    main()
