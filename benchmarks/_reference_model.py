"""Shared setup of the sampler benchmarks: a testbed-shaped reference MDM (or a given checkpoint) and its eval records.

Random weights are enough to time sampling (the work per step does not depend on what the model learned); a
trained checkpoint can be passed instead. The model is saved natively and loaded through mdmtune.models.loading, so
the timed path is the real one (bf16 on a CUDA device that supports it).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from mdmtune.models.adapter import LoadedDenoiser
from mdmtune.models.loading import load_denoiser
from mdmtune.models.native import save_native
from mdmtune.models.reference import ReferenceMDM
from mdmtune.testbeds import get_testbed
from mdmtune.training.loop import TrainConfig, codec_for, model_config_for
from mdmtune.tuning.evaluation import EncodedSet, encode_records


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--testbed", default="sudoku", help="sudoku | arithmetic: the shapes (and records) used")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint instead of a random reference MDM")
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda when present)")
    parser.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: the loader's)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)


def load_model_and_records(args: argparse.Namespace, records: int) -> tuple[LoadedDenoiser, EncodedSet]:
    """The denoiser and `records` encoded eval records of the testbed."""
    torch.set_num_threads(args.threads)
    testbed = get_testbed(args.testbed)
    if args.checkpoint is None:
        codec = codec_for(testbed)
        torch.manual_seed(args.seed)
        model = ReferenceMDM(model_config_for(testbed, codec, TrainConfig())).eval()
        with tempfile.TemporaryDirectory() as folder:
            save_native(model, codec, Path(folder) / "model")
            denoiser = load_denoiser(Path(folder) / "model", device=args.device, dtype=args.dtype)
    else:
        denoiser = load_denoiser(args.checkpoint, device=args.device, dtype=args.dtype)
    from mdmtune.data.evalsets import EvalRecord

    rows = testbed.eval_records(records, seed=args.seed + 1)
    items = [
        EvalRecord(id=r["id"], kind=testbed.kind, prompt=r.get("prompt"), masked=r.get("masked"), answer=r["answer"])
        for r in rows
    ]
    return denoiser, encode_records(denoiser, items, gen_length=testbed.gen_length)


def synchronize(denoiser: LoadedDenoiser) -> None:
    if torch.device(denoiser.device).type == "cuda":
        torch.cuda.synchronize()


def describe(denoiser: LoadedDenoiser) -> dict:
    return {
        "device": str(denoiser.device),
        "dtype": str(denoiser.dtype).replace("torch.", ""),
        "gpu": torch.cuda.get_device_name() if torch.device(denoiser.device).type == "cuda" else None,
        "threads": torch.get_num_threads(),
    }
