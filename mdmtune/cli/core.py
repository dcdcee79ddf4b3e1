"""`mdmtune schedule` and `mdmtune energy`: the core maths on the command line (README.md).

Thin: parse, call mdmtune.core.schedules / plans / energy, print. Bad input raises InvalidInput, which cli/main.py turns
into exit 2 and one line on stderr.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from mdmtune.cli.output import emit_json
from mdmtune.core.energy import MINIMUM, schedule_discrete_energy, schedule_energy
from mdmtune.core.plans import block_count_plans, check_blocks, count_plan
from mdmtune.core.schedules import NAMES, Schedule, beta, named, step_grid
from mdmtune.errors import InvalidInput

A_OPTION = typer.Option(None, "--a", help="Beta shape a (> 0); gamma = I_t(a, b), alpha = sin^2(pi/2 gamma).")
B_OPTION = typer.Option(None, "--b", help="Beta shape b (> 0).")
NAME_OPTION = typer.Option(None, "--name", help=f"A named schedule instead of --a/--b: {' | '.join(NAMES)}.")
JSON_OPTION = typer.Option(False, "--json", help="One JSON document on stdout (infinite values as the string 'inf').")


def pick_schedule(a: float | None, b: float | None, name: str | None) -> Schedule:
    """Exactly one of --name or the pair --a/--b names the schedule."""
    if name is not None:
        if a is not None or b is not None:
            raise InvalidInput("name", "give either --name or --a/--b, not both")
        return named(name)
    if a is None or b is None:
        missing = "a" if a is None else "b"
        raise InvalidInput(missing, f"give --a and --b, or --name {'|'.join(NAMES)}")
    return beta(a, b)


def schedule_report(
    schedule: Schedule,
    steps: int,
    masked: int | None = None,
    block_length: int | None = None,
    gen_length: int | None = None,
) -> dict[str, Any]:
    """The schedule on the N-step grid and, when asked, its count plan (whole, or block by block)."""
    grid = step_grid(steps)
    report: dict[str, Any] = {
        "name": schedule.name,
        "a": schedule.a,
        "b": schedule.b,
        "steps": steps,
        "t": grid,
        "gamma": schedule.gamma(grid),
        "alpha": schedule.alpha(grid),
    }
    if (block_length is None) != (gen_length is None):
        raise InvalidInput("block_length", "give --block-length and --gen-length together")
    if block_length is not None and gen_length is not None:
        report.update(_block_plan(schedule, steps, masked, block_length, gen_length))
    elif masked is not None:
        report["masked"] = masked
        report["counts"] = count_plan(report["alpha"], masked)
    return report


def _block_plan(schedule: Schedule, steps: int, masked: int | None, block_length: int, gen_length: int) -> dict:
    """LLaDA's semi-autoregressive split; `masked` is per block and defaults to the whole block (plain completion)."""
    n_blocks = check_blocks(gen_length, block_length, steps)
    per_block = block_length if masked is None else masked
    if isinstance(per_block, int) and not 0 <= per_block <= block_length:
        raise InvalidInput("masked", f"with blocks it is the masked count per block, 0..{block_length}, got {masked}")
    plans = block_count_plans(schedule, steps, [per_block] * n_blocks)
    return {
        "gen_length": gen_length,
        "block_length": block_length,
        "n_blocks": n_blocks,
        "steps_per_block": steps // n_blocks,
        "masked": per_block,
        "block_counts": plans,
        "counts": np.concatenate(plans),
    }


def energy_report(schedule: Schedule, weight_a: float, weight_b: float, steps: int | None) -> dict[str, Any]:
    """Continuous energy (inf where it diverges) and, with steps, the N-step chord energy; pi^2 is the floor."""
    report: dict[str, Any] = {
        "name": schedule.name,
        "a": schedule.a,
        "b": schedule.b,
        "weight_a": weight_a,
        "weight_b": weight_b,
        "continuous": schedule_energy(schedule, weight_a, weight_b),
        "minimum": MINIMUM,
    }
    if steps is not None:
        report["steps"] = steps
        report["discrete"] = schedule_discrete_energy(schedule, steps, weight_a, weight_b)
    return report


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.6g}"


def _print_schedule(report: dict[str, Any]) -> None:
    console = Console()
    table = Table(title=f"schedule {report['name']}, {report['steps']} steps")
    for column in ("k", "t_k", "gamma", "alpha"):
        table.add_column(column, justify="right")
    counts = report.get("counts")
    if counts is not None:
        table.add_column("K_k (unmasked at step k)", justify="right")
    for k, (t, gamma, alpha) in enumerate(zip(report["t"], report["gamma"], report["alpha"], strict=True)):
        row = [str(k), f"{t:.4f}", f"{gamma:.6f}", f"{alpha:.6f}"]
        if counts is not None:
            row.append(str(counts[k]) if k < len(counts) else "")
        table.add_row(*row)
    console.print(table)
    if "block_counts" in report:
        console.print(
            f"{report['n_blocks']} blocks of {report['block_length']} tokens, {report['steps_per_block']} steps and "
            f"{report['masked']} masked each; K_k above is the blocks' plans one after another."
        )


def _print_energy(report: dict[str, Any]) -> None:
    table = Table(
        title=f"energy of {report['name']} under the weight Beta({report['weight_a']:g}, {report['weight_b']:g})"
    )
    table.add_column("quantity")
    table.add_column("value", justify="right")
    continuous = report["continuous"]
    note = " (the integral diverges)" if math.isinf(continuous) else f" ({continuous / MINIMUM:.4f} x pi^2)"
    table.add_row("continuous E", _number(continuous) + note)
    if "discrete" in report:
        table.add_row(f"discrete E_N, N = {report['steps']}", _number(report["discrete"]))
    table.add_row("minimum over all schedules (pi^2)", _number(MINIMUM))
    Console().print(table)


def schedule_command(
    a: float | None = A_OPTION,
    b: float | None = B_OPTION,
    steps: int = typer.Option(..., "--steps", help="Number of sampling steps N (>= 1); grid t_k = k / N."),
    masked: int | None = typer.Option(
        None,
        "--masked",
        help="Masked positions M: adds the count plan K_k (Hamilton apportionment). With blocks it is the masked "
        "count of each block, and defaults to --block-length (every position of a block masked).",
    ),
    block_length: int | None = typer.Option(
        None, "--block-length", help="Semi-autoregressive block length B (with --gen-length; B divides L)."
    ),
    gen_length: int | None = typer.Option(
        None, "--gen-length", help="Generation length L; the L / B blocks share the steps evenly (must divide N)."
    ),
    name: str | None = NAME_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """The grid t_k, gamma and alpha, and with --masked (or blocks) the count plan K_k."""
    report = schedule_report(pick_schedule(a, b, name), steps, masked, block_length, gen_length)
    if json_output:
        emit_json(report)
    else:
        _print_schedule(report)


def energy_command(
    a: float | None = A_OPTION,
    b: float | None = B_OPTION,
    weight_a: float = typer.Option(1.0, "--weight-a", help="Weight Beta shape a_w (> 0); default uniform (1, 1)."),
    weight_b: float = typer.Option(1.0, "--weight-b", help="Weight Beta shape b_w (> 0)."),
    steps: int | None = typer.Option(None, "--steps", help="Also report the N-step discrete (chord) energy."),
    name: str | None = NAME_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Continuous energy E (inf where it diverges) and, with --steps, the discrete E_N; pi^2 is the minimum."""
    report = energy_report(pick_schedule(a, b, name), weight_a, weight_b, steps)
    if json_output:
        emit_json(report)
    else:
        _print_energy(report)


def register(app: typer.Typer) -> None:
    """Add `schedule` and `energy` to the `mdmtune` command."""
    app.command("schedule")(schedule_command)
    app.command("energy")(energy_command)
