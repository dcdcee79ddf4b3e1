"""`mdmtune export`: a tuned schedule in the form another sampler reads (docs/export.md).

    mdmtune export runs/n8/result.json --format json|llada|diffusers [--out PATH]

json: a self-describing document (a, b, steps, the count plan of every block, gen_length, block_length).
llada: a Python module with a drop-in get_num_transfer_tokens(mask_index, steps) for LLaDA's generate.py.
diffusers: the scheduler_config.json of mdmtune.export.diffusers_scheduler.BetaBlockRefinementScheduler (--out is
a folder, as diffusers' save_config takes one). Without --out the text goes to stdout. Thin: parse, call
mdmtune.export, write.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from mdmtune.errors import InvalidInput

FORMATS = ("json", "llada", "diffusers")


def export_command(
    result: Path = typer.Argument(
        ..., help="A tune result.json (or its folder), a sweep or frontier result, or an export."
    ),
    format: str = typer.Option("json", "--format", help="json | llada | diffusers."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="File to write (json, llada); folder for scheduler_config.json (diffusers). Default: stdout.",
    ),
    steps: int | None = typer.Option(None, "--steps", help="A steps sweep: which N to export."),
    budget: int | None = typer.Option(None, "--budget", help="A frontier result: which budget's tuned schedule."),
    gen_length: int | None = typer.Option(
        None, "--gen-length", help="Generated tokens (replaces the result's; needed where it has none)."
    ),
    block_length: int | None = typer.Option(None, "--block-length", help="Semi-autoregressive block length."),
    threshold: float = typer.Option(
        1.0, "--threshold", help="diffusers: the scheduler's confidence threshold (1.0: exactly the planned counts)."
    ),
) -> None:
    """Write the tuned schedule for LLaDA's generate.py, a diffusers scheduler, or as a plain JSON document."""
    from mdmtune.export import diffusers_config, load_tuned, module_text

    if format not in FORMATS:
        raise InvalidInput("format", f"must be one of {', '.join(FORMATS)}, got {format!r}")
    if not result.exists():
        raise InvalidInput("result", f"{result} does not exist")
    tuned = load_tuned(result, steps=steps, budget=budget, gen_length=gen_length, block_length=block_length)
    if format == "json":
        if tuned.gen_length is None:
            raise InvalidInput("gen_length", "the result records no generation length; give --gen-length")
        text = json.dumps(tuned.to_document(), indent=1) + "\n"
    elif format == "llada":
        text = module_text(tuned, origin=result.name if result.is_file() else f"{result.name}/result.json")
    else:
        text = json.dumps(diffusers_config(tuned, threshold=threshold), indent=2, sort_keys=True) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    target = out / "scheduler_config.json" if format == "diffusers" else out
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    sys.stderr.write(f"wrote {target} ({tuned.name}, steps {tuned.steps}, gen_length {tuned.gen_length}, "
                     f"block_length {tuned.block_length or tuned.gen_length})\n")  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add `export` to the `mdmtune` command."""
    app.command("export")(export_command)
