"""Sampler overhead: wall time of mdmtune.sampling.sample / wall time of the bare model calls it made (goal <= 1.05).

The bare side replays exactly the model inputs the sampler produced (same shapes, same count, recorded in an
untimed run), so the ratio isolates what the sampler adds: plans, gathers, float64 softmax and Gumbel noise, top-k,
writes. The two sides are timed alternately, `--repeats` times, and the medians compared. JSON on stdout.

    python benchmarks/sampler_overhead.py [--testbed sudoku] [--batch 64] [--steps 8] [--device cuda]
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

import numpy as np
from _reference_model import add_model_arguments, describe, load_model_and_records, synchronize

from mdmtune.core.schedules import alpha_grids, beta, named
from mdmtune.sampling import SamplerSettings, sample

NOTE = (
    "ratio: median sampler wall time / median wall time of replaying its model calls (timed alternately); "
    "ratio_same_run: sampler wall time / time spent inside its own model calls, in the same run (immune to the "
    "machine's load drifting between runs); ratio_cpu_time: the same as ratio in process CPU time"
)

MODES = {
    "count/low_confidence/T0": SamplerSettings("count", "low_confidence", 0.0),
    "count/random/T1": SamplerSettings("count", "random", 1.0),
    "count/margin/T0.7": SamplerSettings("count", "margin", 0.7),
    "ancestral/T1": SamplerSettings("ancestral", temperature=1.0),
}


class _Recorder:
    """Delegates to the denoiser and keeps each call's input (for the bare replay)."""

    def __init__(self, inner) -> None:
        self.__dict__.update({k: getattr(inner, k) for k in ("mask_token_id", "pad_token_id", "vocab_size", "device")})
        self.inner, self.calls = inner, []

    def logits(self, ids, attention_mask=None):
        self.calls.append((ids.clone(), None if attention_mask is None else attention_mask.clone()))
        return self.inner.logits(ids, attention_mask)


class _Timer:
    """Delegates to the denoiser and adds up the wall time spent inside its model calls (synchronized on CUDA)."""

    def __init__(self, inner) -> None:
        self.__dict__.update({k: getattr(inner, k) for k in ("mask_token_id", "pad_token_id", "vocab_size", "device")})
        self.inner, self.seconds = inner, 0.0

    def logits(self, ids, attention_mask=None):
        start = time.perf_counter()
        out = self.inner.logits(ids, attention_mask)
        synchronize(self.inner)
        self.seconds += time.perf_counter() - start
        return out


def _time(function) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): on a shared machine the CPU time is the steadier of the two."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(denoiser, encoded, settings: SamplerSettings, steps: int, batch: int, repeats: int) -> dict:
    schedules = [named("linear"), named("cos2"), beta(1.0, 0.2), beta(0.7, 0.7)] * (batch // 4 + 1)
    alphas = alpha_grids(schedules[:batch], steps)
    ids, mask, region = encoded.ids[:batch], None, encoded.gen_region
    if encoded.attention_mask is not None:
        mask = encoded.attention_mask[:batch]
    seeds = list(range(batch))

    def sampler(model=denoiser):
        sample(model, ids, alphas, settings, seeds, region, mask)
        synchronize(denoiser)

    recorder = _Recorder(denoiser)
    sampler(recorder)
    calls = recorder.calls

    def bare():
        for call_ids, call_mask in calls:
            denoiser.logits(call_ids, call_mask)
        synchronize(denoiser)

    sampler()
    bare()  # warm-up of both paths
    sampled, replayed, same_run = [], [], []
    for _ in range(repeats):
        sampled.append(_time(sampler))
        replayed.append(_time(bare))
        timer = _Timer(denoiser)
        total = _time(lambda timer=timer: sampler(timer))[0]
        same_run.append(total / timer.seconds)
    wall_s, wall_b = [t[0] for t in sampled], [t[0] for t in replayed]
    cpu_s, cpu_b = [t[1] for t in sampled], [t[1] for t in replayed]
    return {
        "nfe": len(calls),
        "rows_per_call": float(np.mean([c[0].shape[0] for c in calls])),
        "sampler_wall_s": statistics.median(wall_s),
        "bare_forward_wall_s": statistics.median(wall_b),
        "ratio": statistics.median(wall_s) / statistics.median(wall_b),
        "ratio_same_run": statistics.median(same_run),
        "ratio_cpu_time": statistics.median(cpu_s) / statistics.median(cpu_b),
        "ratio_per_repeat": [s / r for s, r in zip(wall_s, wall_b, strict=True)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ", ".join(MODES))
    args = parser.parse_args()
    denoiser, encoded = load_model_and_records(args, args.batch)
    results = {
        name: measure(denoiser, encoded, MODES[name], args.steps, args.batch, args.repeats)
        for name in args.modes.split(",")
    }
    report = {
        "benchmark": "sampler_overhead",
        "goal": "ratio <= 1.05",
        "note": NOTE,
        "testbed": args.testbed,
        "batch": args.batch,
        "steps": args.steps,
        "length": int(encoded.ids.shape[1]),
        **describe(denoiser),
        "modes": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
