"""The paper's Fig. 4: the exact toy's total variation over (a, b) at few steps, for both targets and both samplers.

What it shows: the best schedule depends on the target (extremes wants to reveal one token first and may rush the
rest; two-or-three tolerates several at once), and at 3 steps the best Beta point beats linear and cos2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mdmtune.core.schedules import NAMED_AB, named
from mdmtune.core.toy import SAMPLERS, TARGETS, run_toy_schedule, tv_grid
from mdmtune.plots.core import ARGMIN_STYLE, save

NAMED_STYLE = {
    "linear": {"marker": "s", "markersize": 9, "color": "#e31a1c", "markeredgecolor": "black"},
    "cos2": {"marker": "^", "markersize": 10, "color": "#ff7f00", "markeredgecolor": "black"},
}
TIE = 1e-12
"""TVs this close count as equal: the count plan is integer, so whole regions of (a, b) share the best plan."""


def plot_toy_tv(
    path: str | Path,
    steps: int = 3,
    bounds: tuple[float, float] = (0.05, 5.0),
    resolution: int = 81,
) -> Path:
    """Fig. 4: TV(target, generated) of alpha_{a,b} on a log-spaced grid; one row per sampler, one column per target.

    The circle is the grid's best point; for the count sampler, whose plan is integer, whole regions tie: the white
    outline encloses them and the circle sits at the tied point nearest their centre. Thin white lines (ancestral)
    are 1.05, 1.25, 1.5 and 2 times the best TV. The square and triangle are linear (0.5, 0.5) and cos2 (1, 1).
    """
    values = np.geomspace(bounds[0], bounds[1], resolution)
    figure = Figure(figsize=(10.0, 8.6), layout="constrained")
    grid = figure.subplots(len(SAMPLERS), len(TARGETS), sharex=True, sharey=True, squeeze=False)
    norm = Normalize(vmin=0.0, vmax=1.0)
    for axes, sampler in zip(grid, SAMPLERS, strict=True):
        for ax, target in zip(axes, TARGETS, strict=True):
            mesh = _panel(ax, target, sampler, steps, values, norm)
        axes[0].set_ylabel(f"b\n{sampler} sampler")
    figure.colorbar(mesh, ax=list(grid.ravel()), label="total variation to the target", shrink=0.8)
    for ax in grid[-1]:
        ax.set_xlabel("a")
    grid[0, -1].legend(
        handles=[
            Line2D([], [], linestyle="", marker="o", label="grid best", **{**ARGMIN_STYLE, "markeredgecolor": "k"}),
            *(Line2D([], [], linestyle="", label=f"{n} {NAMED_AB[n]}", **s) for n, s in NAMED_STYLE.items()),
        ],
        loc="lower right",
        fontsize=8,
        framealpha=0.9,
    )
    figure.suptitle(
        f"Exact toy (5 tokens over {{a, b}}), {steps} steps: TV of the generated distribution for "
        r"$\alpha_{a,b} = \sin^2(\frac{\pi}{2} I_t(a, b))$"
    )
    return save(figure, path)


def _panel(ax, target: str, sampler: str, steps: int, values: np.ndarray, norm: Normalize):
    """One (sampler, target) landscape with the best point and the named schedules marked."""
    tv = tv_grid(target, values, values, steps, sampler)
    mesh = ax.pcolormesh(values, values, tv, norm=norm, cmap=colormaps["viridis"], shading="nearest")
    best = tv <= tv.min() + TIE
    if best.sum() > 1:
        ax.contour(values, values, best.astype(float), levels=[0.5], colors="white", linewidths=1.2)
    else:
        levels = tv.min() * np.array([1.05, 1.25, 1.5, 2.0])
        ax.contour(values, values, tv, levels=levels[levels < 1.0], colors="white", linewidths=0.5, alpha=0.7)
    row, column = _representative(best)
    ax.plot(values[column], values[row], "o", **ARGMIN_STYLE)
    named_tv = {}
    for name, style in NAMED_STYLE.items():
        ax.plot(*NAMED_AB[name], linestyle="", **style)
        named_tv[name] = run_toy_schedule(target, named(name), steps, sampler).tv
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(
        f"{target}: best TV {tv[row, column]:.3f} at ({values[column]:.2f}, {values[row]:.2f})"
        f"{f', +{best.sum() - 1} ties' if best.sum() > 1 else ''}\n"
        f"linear {named_tv['linear']:.3f}, cos2 {named_tv['cos2']:.3f}",
        fontsize=9,
    )
    return mesh


def _representative(best: np.ndarray) -> tuple[int, int]:
    """The (row, column) to mark: the best point, or among ties the one nearest their centre (log scale)."""
    rows, columns = np.nonzero(best)
    nearest = np.argmin((rows - rows.mean()) ** 2 + (columns - columns.mean()) ** 2)
    return int(rows[nearest]), int(columns[nearest])
