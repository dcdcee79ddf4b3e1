"""`mdmtune train`: train the reference MDM on a built-in testbed and write a native checkpoint.

Thin: parse, call mdmtune.training.loop, print. Progress (a tqdm bar with the running loss) goes to stderr; stdout
carries only the summary (one JSON document with --json).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from tqdm import tqdm

from mdmtune.cli.output import emit_json
from mdmtune.errors import InvalidInput
from mdmtune.testbeds import TESTBED_NAMES, get_testbed
from mdmtune.training.config import TrainConfig

if TYPE_CHECKING:
    from mdmtune.training.loop import TrainResult

_DEFAULTS = TrainConfig()
_WEIGHT_DTYPES = ("float16", "float32")


def train_command(
    testbed: str = typer.Option(..., "--testbed", help=f"Built-in testbed: {' | '.join(TESTBED_NAMES)}."),
    out: Path = typer.Option(..., "--out", help="Folder for the native checkpoint (created; files overwritten)."),
    steps: int = typer.Option(_DEFAULTS.steps, "--steps", help="Optimizer steps."),
    seed: int = typer.Option(_DEFAULTS.seed, "--seed", help="Seeds weights, data and masks: same seed, same model."),
    batch_size: int = typer.Option(_DEFAULTS.batch_size, "--batch-size", help="Sequences per step."),
    lr: float = typer.Option(_DEFAULTS.lr, "--lr", help="Peak AdamW learning rate (warm-up, then cosine to 10%)."),
    warmup_steps: int = typer.Option(_DEFAULTS.warmup_steps, "--warmup-steps", help="Linear warm-up steps."),
    d_model: int = typer.Option(_DEFAULTS.d_model, "--d-model", help="Transformer width."),
    n_layers: int = typer.Option(_DEFAULTS.n_layers, "--n-layers", help="Transformer blocks."),
    n_heads: int = typer.Option(_DEFAULTS.n_heads, "--n-heads", help="Attention heads (divides --d-model)."),
    d_ff: int = typer.Option(_DEFAULTS.d_ff, "--d-ff", help="Hidden width of each block's MLP."),
    weights_dtype: str = typer.Option("float16", "--weights-dtype", help="Stored weights: float16 | float32."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto (CUDA when present)."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's choice)."),
    json_output: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Train the reference MDM on a testbed (MDM loss); writes config.json, model.safetensors, tokenizer.json."""
    if weights_dtype not in _WEIGHT_DTYPES:
        raise InvalidInput("weights_dtype", f"{weights_dtype!r} is not one of {', '.join(_WEIGHT_DTYPES)}")
    import torch  # here, not at the top: other commands should not pay torch's import time

    from mdmtune.training.loop import train_reference, write_checkpoint

    if threads is not None:
        if threads < 1:
            raise InvalidInput("threads", f"must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    bed = get_testbed(testbed)
    config = TrainConfig(
        steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup_steps, seed=seed,
        d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_ff=d_ff,
    )  # fmt: skip
    with tqdm(total=steps, desc=f"train {testbed}", file=sys.stderr, disable=None) as bar:

        def progress(step: int, loss: float) -> None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss:.3f}")

        result = train_reference(bed, config, device=device, progress=progress)
    command = retrain_command(testbed, out, config, weights_dtype)
    path = write_checkpoint(result, out, dtype=getattr(torch, weights_dtype), command=command)
    report = _report(result, path)
    if json_output:
        emit_json(report)
    else:
        typer.echo(
            f"wrote {path} ({report['n_parameters']} parameters, {steps} steps in {report['seconds']:.0f} s, "
            f"loss {report['loss_first']:.3f} -> {report['loss_last']:.3f})"
        )


def retrain_command(testbed: str, out: Path, config: TrainConfig, weights_dtype: str) -> str:
    """The command line that reproduces this run (stored in config.json's `training`)."""
    words = ["mdmtune", "train", "--testbed", testbed, "--out", str(out)]
    for name in ("steps", "seed", "batch_size", "lr", "warmup_steps", "d_model", "n_layers", "n_heads", "d_ff"):
        words += ["--" + name.replace("_", "-"), str(getattr(config, name))]
    return shlex.join([*words, "--weights-dtype", weights_dtype])


def _report(result: TrainResult, path: Path) -> dict[str, Any]:
    first, last = result.loss_summary()
    return {
        "out": str(path),
        "testbed": result.testbed,
        "steps": result.config.steps,
        "seed": result.config.seed,
        "n_parameters": result.n_parameters,
        "loss_first": first,
        "loss_last": last,
        "seconds": result.seconds,
        "files": sorted(p.name for p in path.iterdir()),
    }


def register(app: typer.Typer) -> None:
    """Add `train` to the `mdmtune` command."""
    app.command("train")(train_command)
