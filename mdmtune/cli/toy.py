"""`mdmtune toy`: the exact toy's generated distribution and its tv, kl, support_mass (README.md).

Thin: parse, call mdmtune.core.toy, print. Bad input raises InvalidInput, which cli/main.py turns into exit 2 and
one line on stderr.
"""

from __future__ import annotations

import math

import typer
from rich.console import Console
from rich.table import Table

from mdmtune.cli.core import A_OPTION, B_OPTION, JSON_OPTION, NAME_OPTION, pick_schedule
from mdmtune.cli.output import emit_json
from mdmtune.core.toy import SAMPLERS, TARGETS, ToyResult, run_toy_schedule, target_distribution


def _print_toy(result: ToyResult) -> None:
    console = Console()
    target = target_distribution(result.target)
    table = Table(title=f"{result.target}: {result.schedule}, {result.steps} steps, {result.sampler}")
    for column in ("sequence", "target", "generated"):
        table.add_column(column, justify="right")
    for sequence, probability in result.distribution.items():
        table.add_row(sequence, f"{target[sequence]:.4f}", f"{probability:.6f}")
    console.print(table)
    kl = "inf" if math.isinf(result.kl) else f"{result.kl:.6g}"
    console.print(f"tv {result.tv:.6g}   KL(target || generated) {kl}   support mass {result.support_mass:.6g}")


def toy_command(
    target: str = typer.Option(..., "--target", help=f"Target distribution: {' | '.join(TARGETS)}."),
    a: float | None = A_OPTION,
    b: float | None = B_OPTION,
    steps: int = typer.Option(..., "--steps", help="Number of sampling steps N (>= 1)."),
    sampler: str = typer.Option(
        "ancestral",
        "--sampler",
        help=f"{' | '.join(SAMPLERS)}: each masked token unmasks independently (the exact reverse process), or the "
        "count plan K_k with uniformly random positions.",
    ),
    name: str | None = NAME_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """The exact generated distribution of the 5-token toy (dynamic programming, no sampling) and its distance to
    the target: tv, KL(target || generated), mass on the target's support."""
    result = run_toy_schedule(target, pick_schedule(a, b, name), steps, sampler)
    if json_output:
        emit_json(result)
    else:
        _print_toy(result)


def register(app: typer.Typer) -> None:
    """Add `toy` to the `mdmtune` command."""
    app.command("toy")(toy_command)
