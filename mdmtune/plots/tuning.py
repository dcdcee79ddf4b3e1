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
from matplotlib.tri import Triangulation

from mdmtune.energy import discrete_energy
from mdmtune.plots.core import save
from mdmtune.schedules import beta, named
from mdmtune.tuning.result import SweepResult, TuneResult
from mdmtune.tuning.spec import TuneSpec

BASELINE_MARKERS = {"linear": ("s", "#1f78b4"), "cos2": ("D", "#33a02c")}


def plot_landscape(result: TuneResult, path: str | Path, bounds: tuple[tuple[float, float], ...] | None = None) -> Path:
    """Trials over (log a, log b), coloured by value; baselines and the best marked."""
    a_bounds, b_bounds = bounds or ((0.05, 5.0), (0.05, 5.0))
    figure = Figure(figsize=(6.4, 5.2))
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
    for name, (marker, colour) in BASELINE_MARKERS.items():
        base = result.baselines.get(name)
        if base is not None and base.a is not None:
            ax.plot(
                np.log10(base.a),
                np.log10(base.b),
                marker,
                color=colour,
                markersize=10,
                markeredgecolor="white",
                label=name,
            )
    ax.plot(
        np.log10(result.best.a),
        np.log10(result.best.b),
        "*",
        color="#e31a1c",
        markersize=18,
        markeredgecolor="black",
        label=f"best ({result.best.a:.3g}, {result.best.b:.3g})",
    )
    mappable = background if background is not None else (points if complete.any() else None)
    if mappable is not None:
        figure.colorbar(mappable, ax=ax, label="energy E_N" if energy else "mean score (search split)")
    ax.set_xlim(np.log10(a_bounds[0]), np.log10(a_bounds[1]))
    ax.set_ylim(np.log10(b_bounds[0]), np.log10(b_bounds[1]))
    ax.set_xlabel("log10 a")
    ax.set_ylabel("log10 b")
    ax.set_title(f"{result.objective} search, N = {result.steps}, {len(trials)} trials")
    ax.legend(loc="lower left", fontsize=7, framealpha=0.8)
    return save(figure, path)


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
    figure = Figure(figsize=(9.6, 3.8))
    left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    t = np.linspace(0, 1, 401)
    chosen = beta(result.best.a, result.best.b)
    references = [named(name) for name in (result.baselines or ("linear", "cos2"))]
    for schedule, style in (*zip(references, (":", "--", "-."), strict=False), (chosen, "-")):
        left.plot(t, schedule.alpha(t), style, label=schedule.name)
    grid = np.arange(result.steps + 1) / result.steps
    left.plot(grid, chosen.alpha(grid), "o", color="black", markersize=4, label=f"N = {result.steps} grid")
    left.set_xlabel("t (0: all masked, 1: clean)")
    left.set_ylabel("alpha(t)")
    left.legend(fontsize=8)
    counts = _counts(result)
    if counts is not None:
        right.bar(np.arange(1, len(counts) + 1), counts, color="#6a3d9a")
        right.set_title(f"tokens committed per step (M = {result.plan.masked})", fontsize=9)
    else:
        increments = np.diff(chosen.alpha(grid))
        right.bar(np.arange(1, len(increments) + 1), increments, color="#6a3d9a")
        right.set_title("alpha increment per step", fontsize=9)
    right.set_xlabel("step k")
    figure.suptitle(f"chosen schedule {chosen.name}")
    figure.tight_layout()
    return save(figure, path)


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
    figure = Figure(figsize=(6.0, 4.2))
    ax = figure.add_subplot()
    steps = np.array([p.steps for p in sweep.points])
    tuned = np.array([p.tuned for p in sweep.points])
    if all(p.tuned_ci for p in sweep.points):
        low = tuned - np.array([p.tuned_ci[0] for p in sweep.points])
        high = np.array([p.tuned_ci[1] for p in sweep.points]) - tuned
        ax.errorbar(steps, tuned, yerr=[low, high], fmt="o-", color="#e31a1c", capsize=3, label="tuned (95% CI)")
    else:
        ax.plot(steps, tuned, "o-", color="#e31a1c", label="tuned")
    for name in sorted({n for p in sweep.points for n in p.baselines}):
        ax.plot(steps, [p.baselines.get(name, np.nan) for p in sweep.points], "s--", label=name, alpha=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(steps, [str(s) for s in steps])
    ax.set_xlabel("steps N")
    ax.set_ylabel("confirm-split score" if sweep.objective == "quality" else "energy E_N")
    if sweep.tuned_steps is not None:
        ax.set_title(f"tuned at N = {sweep.tuned_steps} matches linear at N = {sweep.linear_steps}", fontsize=9)
    ax.legend(fontsize=8)
    return save(figure, path)


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
