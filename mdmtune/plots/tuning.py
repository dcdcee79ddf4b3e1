"""Figures of a tuning run: the (a, b) landscape with the trials, the chosen schedule, and quality vs steps.

The landscape is the search as it happened: every trial at its (a, b) (pruned ones hollow), coloured by its value,
over the energy E_N itself (energy objective) or an interpolation of the complete trials (quality), with the
baselines and the chosen point marked. Drawn with the Agg canvas like every figure of the project.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.tri import Triangulation

from mdmtune.core.energy import discrete_energy
from mdmtune.core.schedules import NAMES, beta, named
from mdmtune.plots import style
from mdmtune.plots.core import save
from mdmtune.tuning.result import SweepResult, TuneResult
from mdmtune.tuning.spec import TuneSpec


def _title(result: TuneResult, what: str, extra: str | None = None) -> str:
    """What the figure shows, with N, the metric and the confirm records (energy: the weight)."""
    if result.objective == "energy" and result.weight is not None:
        weight = f"weight Beta({result.weight[0]:g}, {result.weight[1]:g})"
        return style.title(what, steps=result.steps, extra=", ".join(p for p in (weight, extra) if p))
    return style.title(what, steps=result.steps, metric=result.metric, records=result.confirm_records, extra=extra)


def plot_landscape(result: TuneResult, path: str | Path, bounds: tuple[tuple[float, float], ...] | None = None) -> Path:
    """Trials over (log a, log b), coloured by value; baselines and the best marked."""
    return save(landscape_figure(result, bounds), path)


def landscape_figure(result: TuneResult, bounds: tuple[tuple[float, float], ...] | None = None) -> Figure:
    """The figure of plot_landscape."""
    a_bounds, b_bounds = bounds or ((0.05, 5.0), (0.05, 5.0))
    figure = Figure(figsize=(8.2, 5.2), layout="constrained")
    ax = figure.add_subplot()
    energy = result.objective == "energy"
    cmap = colormaps["viridis_r" if energy else "viridis"]
    trials = [t for t in result.trials if t.a is not None and t.b is not None and t.value is not None]
    la = np.log10([t.a for t in trials])
    lb = np.log10([t.b for t in trials])
    values = np.array([t.value for t in trials], dtype=float)
    finite = np.isfinite(values)
    vmin, vmax = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 1.0)
    norm = LogNorm(vmin, vmax) if energy and vmin > 0 else Normalize(vmin, vmax)
    background = _background(ax, result, trials, (a_bounds, b_bounds), cmap, norm)
    complete = np.array([t.state == "COMPLETE" for t in trials], dtype=bool)
    if complete.any():
        points = ax.scatter(
            la[complete],
            lb[complete],
            c=values[complete],
            cmap=cmap,
            norm=norm,
            s=26,
            edgecolors="black",
            linewidths=0.4,
            label="trial",
        )
    if (~complete).any():
        ax.scatter(
            la[~complete],
            lb[~complete],
            c=values[~complete],
            cmap=cmap,
            norm=norm,
            marker="v",
            s=22,
            edgecolors="grey",
            linewidths=0.4,
            label="pruned (value on fewer records)",
        )
    for name, base in result.baselines.items():
        if base.a is not None and base.b is not None:
            look = style.style(name)
            ax.plot(
                np.log10(base.a),
                np.log10(base.b),
                look["marker"],
                color=look["color"],
                markersize=10,
                markeredgecolor="white",
                label=f"{name} ({base.a:g}, {base.b:g})",
            )
    ax.plot(
        np.log10(result.best.a),
        np.log10(result.best.b),
        "*",
        color=style.TUNED_COLOUR,
        markersize=18,
        markeredgecolor="black",
        label=f"best ({result.best.a:.3g}, {result.best.b:.3g})",
    )
    mappable = background if background is not None else (points if complete.any() else None)
    if mappable is not None:
        figure.colorbar(mappable, ax=ax, label="energy E_N" if energy else "mean score (search split)", pad=0.02)
    ax.set_xlim(np.log10(a_bounds[0]), np.log10(a_bounds[1]))
    ax.set_ylim(np.log10(b_bounds[0]), np.log10(b_bounds[1]))
    ax.set_xlabel("log10 a")
    ax.set_ylabel("log10 b")
    ax.set_title(_title(result, f"{result.objective} search", f"{len(trials)} trials"), fontsize=9)
    style.legend_outside(ax, fontsize=7)
    return figure


def _background(ax, result: TuneResult, trials, bounds, cmap, norm):
    """Energy: the exact E_N landscape. Quality: the trials' values interpolated (pruned ones at their last rung)."""
    if result.objective == "energy" and result.weight is not None:
        a_values, b_values = (np.geomspace(low, high, 121) for low, high in bounds)
        a, b = np.meshgrid(a_values, b_values)
        grid = np.asarray(discrete_energy(a.ravel(), b.ravel(), result.steps, *result.weight)).reshape(a.shape)
        return ax.pcolormesh(
            np.log10(a_values), np.log10(b_values), grid, cmap=cmap, norm=norm, shading="auto", alpha=0.85
        )
    done = [t for t in trials if np.isfinite(t.value)]
    if len(done) < 6:
        return None
    try:
        triangles = Triangulation(np.log10([t.a for t in done]), np.log10([t.b for t in done]))
        return ax.tricontourf(triangles, [t.value for t in done], levels=12, cmap=cmap, norm=norm, alpha=0.6)
    except (ValueError, RuntimeError):  # collinear points: no triangulation, the scatter alone says it
        return None


def plot_schedule(result: TuneResult, path: str | Path) -> Path:
    """alpha of the chosen schedule beside every baseline of the result's table (linear, cos2, and sine for
    quality), and its per-step counts K_k."""
    return save(schedule_figure(result), path)


def schedule_figure(result: TuneResult) -> Figure:
    """The figure of plot_schedule."""
    figure = Figure(figsize=(11.0, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    t = np.linspace(0, 1, 401)
    chosen = beta(result.best.a, result.best.b)
    names = [name for name in (result.baselines or ("linear", "cos2")) if name in NAMES]
    for name in names:
        look = style.style(name)
        left.plot(t, named(name).alpha(t), look["linestyle"], color=look["color"], label=name)
    left.plot(t, chosen.alpha(t), "-", color=style.TUNED_COLOUR, linewidth=2, label=f"best {chosen.name}")
    grid = np.arange(result.steps + 1) / result.steps
    left.plot(grid, chosen.alpha(grid), "o", color="black", markersize=4, label=f"N = {result.steps} grid")
    left.set_xlabel("t (0: all masked, 1: clean)")
    left.set_ylabel("alpha(t)")
    style.legend_outside(left)
    counts = _counts(result)
    if counts is not None:
        right.bar(np.arange(1, len(counts) + 1), counts, color=style.TUNED_COLOUR)
        right.set_title(f"tokens committed per step (M = {result.plan.masked})", fontsize=9)
        right.set_ylabel("tokens")
        right.yaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        increments = np.diff(chosen.alpha(grid))
        right.bar(np.arange(1, len(increments) + 1), increments, color=style.TUNED_COLOUR)
        right.set_title("alpha increment per step", fontsize=9)
    right.set_xlabel("step k")
    figure.suptitle(_title(result, f"chosen schedule {chosen.name}"), fontsize=10)
    return figure


def _counts(result: TuneResult) -> list[int] | None:
    if result.plan is None:
        return None
    if result.plan.counts is not None:
        return list(result.plan.counts)
    if result.plan.block_counts:
        return [c for block in result.plan.block_counts for c in block]
    return None


def plot_quality_vs_steps(sweep: SweepResult, path: str | Path) -> Path:
    """Tuned score (with its 95% CI) and the baselines' scores at every N of the sweep."""
    return save(quality_vs_steps_figure(sweep), path)


def quality_vs_steps_figure(sweep: SweepResult) -> Figure:
    """The figure of plot_quality_vs_steps."""
    figure = Figure(figsize=(7.6, 4.4), layout="constrained")
    ax = figure.add_subplot()
    steps = np.array([p.steps for p in sweep.points])
    tuned = np.array([p.tuned for p in sweep.points])
    colour = style.TUNED_COLOUR
    if all(p.tuned_ci for p in sweep.points):
        low = tuned - np.array([p.tuned_ci[0] for p in sweep.points])
        high = np.array([p.tuned_ci[1] for p in sweep.points]) - tuned
        ax.errorbar(steps, tuned, yerr=[low, high], fmt="o-", color=colour, capsize=3, label="tuned (95% CI)")
    else:
        ax.plot(steps, tuned, "o-", color=colour, label="tuned")
    for name in sorted({n for p in sweep.points for n in p.baselines}):
        look = style.style(name)
        values = [p.baselines.get(name, np.nan) for p in sweep.points]
        ax.plot(steps, values, marker=look["marker"], linestyle="--", color=look["color"], label=name, alpha=0.9)
    ax.set_xscale("log", base=2)
    ax.set_xticks(steps, [str(s) for s in steps])
    ax.set_xlabel("steps N")
    ax.set_ylabel("confirm-split score" if sweep.objective == "quality" else "energy E_N")
    first = sweep.results[0] if sweep.results else None
    heading = style.title(
        f"{sweep.objective} vs steps",
        steps=[int(s) for s in steps],
        metric=first.metric if first is not None else None,
        records=first.confirm_records if first is not None else None,
    )
    if sweep.tuned_steps is not None:
        heading += f"\ntuned at N = {sweep.tuned_steps} matches linear at N = {sweep.linear_steps}"
    ax.set_title(heading, fontsize=9)
    style.legend_outside(ax)
    return figure


def draw_result_figures(result: TuneResult | SweepResult, folder: str | Path, spec: TuneSpec) -> dict[str, str]:
    """Every figure of a run into `folder`; returns figure kind -> path."""
    folder = Path(folder)
    bounds = (tuple(spec.a_bounds), tuple(spec.b_bounds))
    out: dict[str, str] = {}
    results = result.results if isinstance(result, SweepResult) else [result]
    for one in results:
        suffix = f"_N{one.steps}" if isinstance(result, SweepResult) else ""
        out[f"landscape{suffix}"] = str(plot_landscape(one, folder / f"landscape{suffix}.png", bounds))
        out[f"schedule{suffix}"] = str(plot_schedule(one, folder / f"schedule{suffix}.png"))
    if isinstance(result, SweepResult):
        out["quality_vs_steps"] = str(plot_quality_vs_steps(result, folder / "quality_vs_steps.png"))
    return out
