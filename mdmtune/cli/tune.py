"""`mdmtune tune`: a whole tuning job in this process, no server (README.md).

Two forms: `--objective energy --steps N [--weight-a --weight-b]` (model-free) and the quality form
`--checkpoint PATH --eval-set PATH --steps N|4,8,16 ...`. Thin: parses into a TuneSpec, calls mdmtune.tuning,
draws the figures, prints a table (or one JSON document with --json). Progress goes to stderr.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mdmtune.cli.model_options import Options, parse_bounds, spec_values, with_options
from mdmtune.cli.output import emit_json, table_console, to_jsonable
from mdmtune.data import display
from mdmtune.errors import InvalidInput
from mdmtune.tuning.result import SweepResult, TuneResult
from mdmtune.tuning.spec import TuneSpec

__all__ = ["parse_bounds", "parse_steps", "register", "tune_command"]


def parse_steps(text: str) -> int | tuple[int, ...]:
    """ "8" -> 8, "4,8,16" -> (4, 8, 16)."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InvalidInput("steps", f"must be an integer or a comma-separated list of integers, got {text!r}") from None
    if not values:
        raise InvalidInput("steps", "give at least one step count")
    return values[0] if len(values) == 1 else values


@contextmanager
def progress_bar(total_trials: int, enabled: bool):
    """A rich progress bar on stderr (one plain line per batch when stderr is not a terminal, e.g. a log file);
    yields the callback run_search calls after each batch."""
    if not enabled:
        yield None
        return
    if not sys.stderr.isatty():
        yield _log_line
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("trials", total=total_trials, info="")

        def update(progress: Any, steps: int | None = None) -> None:
            best = "" if progress.best_value is None else f"best {progress.best_value:.4g}"
            label = f"N={steps} " if steps is not None else ""
            info = f"{label}{best}  nfe {progress.nfe}"
            bar.update(task, completed=progress.trials_done, total=progress.n_trials, info=info)

        yield update


@with_options("tune")
def tune_command(
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Checkpoint folder/file (quality)."),
    eval_set: Path | None = typer.Option(None, "--eval-set", help="JSONL eval set (quality)."),
    validate_eval_set: Path | None = typer.Option(
        None, "--validate-eval-set", help="A second JSONL set: the best and the baselines re-scored on it at the end."
    ),
    steps: str = typer.Option(..., "--steps", help="N, or a comma-separated sweep such as 4,8,16."),
    storage: str | None = typer.Option(None, "--storage", help="Optuna storage URL (default: SQLite under --out)."),
    out: Path | None = typer.Option(None, "--out", help="Folder for result.json, figures and the study."),
    no_figures: bool = typer.Option(False, "--no-figures", help="Skip the figures."),
    json_output: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    *,
    options: Options,
) -> None:
    """Tune (a, b) for N steps: the energy objective (model-free) or quality on an eval set."""
    spec = TuneSpec(steps=parse_steps(steps), **spec_values(options))
    trust_remote_code = options["trust_remote_code"]
    _check_inputs(spec, checkpoint, eval_set)
    if validate_eval_set is not None and spec.objective != "quality":
        raise InvalidInput("validate_eval_set", "only a quality job has a second eval set to check")
    _quiet_optuna()
    folder = _out_folder(spec, out)
    if storage is None and folder is not None and spec.objective == "quality":
        storage = f"sqlite:///{folder / 'study.db'}"  # a long job can be resumed; the energy search is cheap
    result = _run(
        spec, checkpoint, eval_set, storage, trust_remote_code, show_progress=True, validate=validate_eval_set
    )
    _print_templates(result)
    if folder is not None and not no_figures:
        result.figures.update(_draw(result, folder, spec))
    if folder is not None:
        (folder / "result.json").write_text(json.dumps(to_jsonable(result), indent=1) + "\n")
    if json_output:
        emit_json(result)
    else:
        _print(result, folder)


def _print_templates(result: TuneResult | SweepResult) -> None:
    """How the checkpoint was read and the records wrapped (on stderr: stdout is the result)."""
    from mdmtune.cli.model_options import print_model_line

    results = result.results if isinstance(result, SweepResult) else [result]
    model = results[0].model if results else None
    if model is not None:
        print_model_line(model)


def _check_inputs(spec: TuneSpec, checkpoint: Path | None, eval_set: Path | None) -> None:
    if spec.objective == "energy":
        if checkpoint is not None or eval_set is not None:
            field = "checkpoint" if checkpoint is not None else "eval_set"
            raise InvalidInput(field, "the energy objective uses no checkpoint or eval set")
        return
    if checkpoint is None:
        raise InvalidInput("checkpoint", "give --checkpoint PATH (or --objective energy)")
    if eval_set is None:
        raise InvalidInput("eval_set", "give --eval-set PATH")


def _quiet_optuna() -> None:
    """Optuna logs every trial at INFO on stderr; the progress bar says it better."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _out_folder(spec: TuneSpec, out: Path | None) -> Path | None:
    """The energy search writes nothing unless asked; a quality job keeps its study and figures under runs/."""
    if out is None and spec.objective == "energy":
        return None
    if out is None:
        from mdmtune.tuning.api import default_study_name

        out = Path("runs") / default_study_name(spec)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _run(
    spec: TuneSpec,
    checkpoint: Path | None,
    eval_set: Path | None,
    storage: str | None,
    trust_remote_code: bool,
    show_progress: bool,
    validate: Path | None = None,
) -> TuneResult | SweepResult:
    from mdmtune.tuning.api import tune, tune_sweep

    model: Any = None
    if checkpoint is not None:
        from mdmtune.cli.model_options import load_for_cli

        model = load_for_cli(checkpoint, spec.family, trust_remote_code)
    total = spec.trials * len(spec.steps_list)
    with progress_bar(total, show_progress) as update:
        if len(spec.steps_list) == 1:
            return tune(
                spec, checkpoint=model, eval_set=eval_set, storage=storage, progress=update, validate_eval_set=validate
            )
        done: dict[int, int] = {}

        def sweep_update(steps: int, progress: Any) -> None:
            done[steps] = progress.trials_done
            if update is not None:
                update(_Summed(progress, sum(done.values()), total), steps)

        return tune_sweep(
            spec,
            checkpoint=model,
            eval_set=eval_set,
            storage=storage,
            progress=sweep_update,
            validate_eval_set=validate,
        )


def _log_line(progress: Any, steps: int | None = None) -> None:
    best = "" if progress.best_value is None else f" best {progress.best_value:.4g}"
    label = f"N={steps} " if steps is not None else ""
    sys.stderr.write(f"{label}trials {progress.trials_done}/{progress.n_trials}{best} nfe {progress.nfe}\n")
    sys.stderr.flush()


class _Summed:
    """A sweep's progress: trials over every N together."""

    def __init__(self, progress: Any, done: int, total: int) -> None:
        self.trials_done, self.n_trials = done, total
        self.best_value, self.nfe = progress.best_value, progress.nfe


def _draw(result: TuneResult | SweepResult, folder: Path, spec: TuneSpec) -> dict[str, str]:
    from mdmtune.plots.tuning import draw_result_figures

    return draw_result_figures(result, folder, spec)


def _diff(value: float | None, ci: list[float] | None) -> str:
    return f"{display.diff(value)} {display.interval(ci, signed=True)}".rstrip()


def _print(result: TuneResult | SweepResult, folder: Path | None) -> None:
    console = table_console()
    if isinstance(result, SweepResult):
        for one in result.results:
            _print_one(console, one)
        _print_sweep(console, result)
        figures = result.figures
    else:
        _print_one(console, result)
        figures = result.figures
    for kind, path in figures.items():
        console.print(f"figure {kind}: {path}")
    if folder is not None:
        console.print(f"result: {folder / 'result.json'}")


def _print_one(console: Console, result: TuneResult) -> None:
    energy = result.objective == "energy"
    title = f"mdmtune tune: {result.objective}, N = {result.steps}"
    if energy:
        title += f", weight ({result.weight[0]:g}, {result.weight[1]:g})"
    columns = ["schedule", "a", "b", "energy E_N"] if energy else ["schedule", "a", "b", "confirm score", "95% CI"]
    if not energy:
        columns.append("best - this [95% CI]")
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    value = display.energy if energy else display.score
    best = result.best
    cells = ["best", display.parameter(best.a), display.parameter(best.b), value(best.score)]
    table.add_row(*(cells if energy else [*cells, display.interval(best.ci), ""]))
    for name, base in result.baselines.items():
        cells = [name, display.parameter(base.a), display.parameter(base.b), value(base.score)]
        if not energy:
            cells += [display.interval(base.ci), _diff(base.diff, base.diff_ci)]
        table.add_row(*cells)
    console.print(table)
    if result.plan is not None:
        for line in result.plan.lines():
            console.print(line, highlight=False, soft_wrap=True)
    else:
        console.print("per-step plan: none (the energy objective needs --gen-length for one)", soft_wrap=True)
    spent = f"trials {len(result.trials)}, NFEs {result.nfe}"
    if not energy:
        spent += f" (search {result.nfe_search}, confirm {result.nfe_confirm})"
        spent += f"; records: search {result.search_records}, confirm {result.confirm_records}"
    console.print(f"{spent}; wall time {result.wall_time_s:.1f} s")
    if not energy:
        _print_shift(console, result)


def _print_shift(console: Console, result: TuneResult) -> None:
    """The second set's table, the confirm split's groups, then the warnings in plain words."""
    from mdmtune.cli.compare import print_groups

    validation = result.validation
    if validation is not None:
        table = Table(title=f"second eval set: {validation.records} records (sha256 {validation.eval_set_sha256[:12]})")
        for column in ("schedule", "score", "95% CI", "best - this [95% CI]"):
            table.add_column(column)
        table.add_row("best", display.score(validation.best.score), display.interval(validation.best.ci), "")
        for name, base in validation.baselines.items():
            table.add_row(name, display.score(base.score), display.interval(base.ci), _diff(base.diff, base.diff_ci))
        console.print(table)
    if result.groups is not None:
        print_groups(console, to_jsonable(result.groups.strata), "confirm split; best - this", "reference")
    for warning in result.warnings:
        console.print(f"[bold yellow]warning:[/bold yellow] {warning}")


def _print_sweep(console: Console, sweep: SweepResult) -> None:
    table = Table(title="quality vs steps")
    names = sorted({name for p in sweep.points for name in p.baselines})
    for column in ("N", "tuned", "95% CI", *names):
        table.add_column(column)
    for p in sweep.points:
        value = display.score if sweep.objective == "quality" else display.energy
        table.add_row(
            str(p.steps), value(p.tuned), display.interval(p.tuned_ci), *(value(p.baselines.get(n)) for n in names)
        )
    console.print(table)
    if sweep.tuned_steps is None:
        console.print(f"the tuned schedule does not match linear at N = {sweep.linear_steps} at any smaller N tried")
    else:
        console.print(
            f"step savings: tuned at N = {sweep.tuned_steps} matches linear at N = {sweep.linear_steps} "
            f"({100 * sweep.step_savings:.0f}% fewer steps)"
        )


def register(app: typer.Typer) -> None:
    """Add `tune` to the `mdmtune` command."""
    app.command("tune")(tune_command)
