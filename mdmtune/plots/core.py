"""The paper's Fig. 2 (energy landscape over (a, b)) and Fig. 3 (alpha and gamma of the named and Beta schedules)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from mdmtune.core.energy import MINIMUM, continuous_energy, discrete_energy
from mdmtune.core.schedules import Schedule, beta, named

DPI = 110
LANDSCAPE_WEIGHTS: tuple[tuple[float, float], ...] = ((1.0, 1.0), (2.0, 2.0), (0.8, 0.3))
SCHEDULE_POINTS: tuple[tuple[float, float], ...] = ((1.0, 0.2), (0.9, 0.3), (0.8, 0.8), (2.0, 2.0))
"""Published task-winning Beta points (code / math; GSM8K) and a symmetric slow-start-slow-end one (docs/math.md)."""
ARGMIN_STYLE = {"markersize": 15, "markerfacecolor": "none", "markeredgecolor": "white", "markeredgewidth": 2.0}
INFINITE_COLOUR = "#d9d9d9"
WEIGHT_STYLE = {"markersize": 11, "color": "#e31a1c", "markeredgecolor": "black", "markeredgewidth": 0.6}


def save(figure: Figure, path: str | Path) -> Path:
    """PNG without a software/version stamp, so that the same figure gives the same bytes."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(target, dpi=DPI, metadata={"Software": None})
    return target


def energy_grid(
    weight: tuple[float, float],
    bounds: tuple[float, float] = (0.05, 5.0),
    resolution: int = 161,
    steps: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a values, b values, E[b_index, a_index]) on a log-spaced grid: continuous energy, or E_N with `steps`."""
    values = np.geomspace(bounds[0], bounds[1], resolution)
    a, b = np.meshgrid(values, values)
    if steps is None:
        energy = continuous_energy(a.ravel(), b.ravel(), *weight)
    else:
        energy = discrete_energy(a.ravel(), b.ravel(), steps, *weight)
    return values, values, np.asarray(energy).reshape(a.shape)


def plot_energy_landscape(
    path: str | Path,
    weights: Sequence[tuple[float, float]] = LANDSCAPE_WEIGHTS,
    steps: int | None = None,
    bounds: tuple[float, float] = (0.05, 5.0),
    resolution: int = 161,
) -> Path:
    """Fig. 2: log-scale energy of alpha_{a,b} over (a, b), one panel per weight, minima marked.

    The grid argmin (circle) should sit on the weight point (star), where the energy is pi^2: the energy search's
    target. Grey is +inf (the continuous energy diverges where 2a <= a_w or 2b <= b_w). With `steps`, a second row
    shows the N-step energy E_N that the tuner minimizes: finite everywhere, with its minimum near the same point.
    """
    rows = [None] if steps is None else [None, steps]
    figure = Figure(figsize=(4.0 * len(weights) + 1.0, 3.9 * len(rows) + 0.4), layout="constrained")
    grid = figure.subplots(len(rows), len(weights), sharex=True, sharey=True, squeeze=False)
    norm = LogNorm(vmin=MINIMUM * (0.8 if steps else 1.0), vmax=100 * MINIMUM, clip=False)
    cmap = colormaps["viridis"].with_extremes(bad=INFINITE_COLOUR, over="#fde725")
    for axes, row_steps in zip(grid, rows, strict=True):
        for ax, weight in zip(axes, weights, strict=True):
            mesh = _landscape_panel(ax, weight, row_steps, bounds, resolution, norm, cmap)
        name = r"$E(\alpha_{a,b};\gamma_w)$" if row_steps is None else f"$E_N$, N = {row_steps}"
        axes[0].set_ylabel(f"b\n{name}")
        figure.colorbar(mesh, ax=list(axes), extend="max", label=rf"{name}, log scale")
    for ax in grid[-1]:
        ax.set_xlabel("a")
    grid[0, -1].legend(
        handles=[
            Line2D([], [], marker="o", linestyle="", label="grid argmin", **{**ARGMIN_STYLE, "markeredgecolor": "k"}),
            Line2D([], [], marker="*", linestyle="", label=r"weight $(a_w, b_w)$", **WEIGHT_STYLE),
            Patch(color=INFINITE_COLOUR, label=r"$E = \infty$ ($2a \leq a_w$ or $2b \leq b_w$)"),
        ],
        loc="lower right",
        fontsize=8,
        framealpha=0.9,
    )
    figure.suptitle(
        rf"Energy of $\alpha_{{a,b}}$ under three weights $\gamma_w = I_t(a_w, b_w)$: "
        rf"the minimum $\pi^2 = {MINIMUM:.3f}$ sits at $(a, b) = (a_w, b_w)$"
    )
    return save(figure, path)


def _landscape_panel(ax, weight, steps, bounds, resolution, norm, cmap):
    """One weight's landscape with contours at 1.05, 1.25, 2, 5 and 20 x pi^2 and both minima marked."""
    a_values, b_values, energy = energy_grid(weight, bounds, resolution, steps)
    finite = np.isfinite(energy)
    mesh = ax.pcolormesh(a_values, b_values, np.ma.masked_invalid(energy), norm=norm, cmap=cmap, shading="nearest")
    levels = MINIMUM * np.array([1.05, 1.25, 2.0, 5.0, 20.0])
    ax.contour(a_values, b_values, np.where(finite, energy, np.nan), levels=levels, colors="white", linewidths=0.6)
    row, column = np.unravel_index(np.argmin(np.where(finite, energy, np.inf)), energy.shape)
    ax.plot(a_values[column], b_values[row], "o", **ARGMIN_STYLE)
    ax.plot(*weight, "*", **WEIGHT_STYLE)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(
        f"weight Beta({weight[0]:g}, {weight[1]:g}): grid min {energy[row, column]:.3f}\n"
        f"at (a, b) = ({a_values[column]:.2f}, {b_values[row]:.2f})",
        fontsize=9,
    )
    return mesh


def _schedule_curves() -> list[tuple[Schedule, str, dict]]:
    """What Fig. 3 draws: the named schedules in black/grey, the Beta points in colour."""
    curves: list[tuple[Schedule, str, dict]] = [
        (named("linear"), "linear = Beta(0.5, 0.5)", {"color": "black", "linestyle": "-"}),
        (named("cos2"), "cos2 = Beta(1, 1)", {"color": "black", "linestyle": "--"}),
        (named("sine"), "sine (not in the family)", {"color": "grey", "linestyle": ":"}),
    ]
    colours = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a")
    for (a, b), colour in zip(SCHEDULE_POINTS, colours, strict=True):
        curves.append((beta(a, b), f"Beta({a:g}, {b:g})", {"color": colour, "linestyle": "-"}))
    return curves


def plot_schedules(path: str | Path) -> Path:
    """Fig. 3: alpha(t) (probability a token is unmasked by t) and gamma(t) (the weight it is optimal for)."""
    t = np.linspace(0.0, 1.0, 401)
    figure = Figure(figsize=(10.0, 4.2), layout="constrained")
    alpha_ax, gamma_ax = figure.subplots(1, 2)
    for schedule, label, style in _schedule_curves():
        alpha_ax.plot(t, schedule.alpha(t), label=label, linewidth=1.6, **style)
        gamma_ax.plot(t, schedule.gamma(t), label=label, linewidth=1.6, **style)
    alpha_ax.set_title(r"mask schedule $\alpha(t) = \sin^2(\frac{\pi}{2}\gamma(t))$")
    gamma_ax.set_title(r"interpolation schedule $\gamma(t) = I_t(a, b)$")
    for ax, name in ((alpha_ax, r"$\alpha(t)$: P(token unmasked by t)"), (gamma_ax, r"$\gamma(t)$")):
        ax.set_xlabel("t  (0 = all [MASK], 1 = clean)")
        ax.set_ylabel(name)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    gamma_ax.legend(loc="upper left", fontsize=8)
    return save(figure, path)
