"""The frontier figure: confirm-split quality against mean model calls per record, one line per policy.

Each policy's points across the budgets are joined (with their Wilson intervals), the adaptive decoders' search-split
sweeps are drawn faintly behind (every threshold or bound tried), and the front (the points no other point beats on
both axes) is ringed and joined by a step line. Drawn with the Agg canvas like every figure of the project.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mdmtune.plots import style
from mdmtune.plots.core import save
from mdmtune.tuning.frontier import FrontierResult, pareto_front

POLICIES = ("tuned", "linear", "cos2", "threshold", "entropy", "hybrid")


def plot_frontier(result: FrontierResult, path: str | Path) -> Path:
    """Quality vs mean NFE per record; a line per policy, the front marked."""
    return save(frontier_figure(result), path)


def frontier_figure(result: FrontierResult) -> Figure:
    """The figure of plot_frontier."""
    figure = Figure(figsize=(8.4, 4.8), layout="constrained")
    ax = figure.add_subplot()
    for sweep_decoder in ("threshold", "entropy"):
        rows = sorted((s.nfe_per_record, s.score) for s in result.sweeps if s.decoder == sweep_decoder)
        if rows:
            x, y = np.array(rows).T
            ax.plot(x, y, ":", color=style.colour(sweep_decoder), alpha=0.35, linewidth=1)
    everything = []
    names = [*POLICIES, *sorted({p.name for b in result.frontier for p in b.points} - set(POLICIES))]
    for name in names:
        look = style.style(name)
        marker, colour = look["marker"], look["color"]
        points = [p for b in result.frontier for p in b.points if p.name == name]
        if not points:
            continue
        everything += points
        x = np.array([p.nfe_per_record for p in points])
        y = np.array([p.score for p in points])
        low = y - np.array([p.ci[0] for p in points])
        high = np.array([p.ci[1] for p in points]) - y
        ax.errorbar(x, y, yerr=[low, high], fmt=f"{marker}-", color=colour, capsize=2, label=name, alpha=0.9)
    front = pareto_front(everything)
    if front:
        fx = [p.nfe_per_record for p in front]
        fy = [p.score for p in front]
        ax.step(fx, fy, where="post", color="black", linewidth=0.8, alpha=0.6)
        ax.plot(fx, fy, "o", markersize=13, markerfacecolor="none", markeredgecolor="black", label="front")
    for budget in result.budgets:
        ax.axvline(budget, color="#999999", linewidth=0.6, linestyle="--")
    ax.set_xscale("log", base=2)
    ax.set_xticks(result.budgets, [str(b) for b in result.budgets])
    ax.set_xlabel("mean model calls per record (dashed: the budgets)")
    ax.set_ylabel(f"confirm-split score ({result.metric})")
    ax.set_title(
        style.title(
            "quality per model call",
            steps=list(result.budgets),
            metric=result.metric,
            records=result.confirm_records,
            extra="95% Wilson intervals",
        ),
        fontsize=9,
    )
    style.legend_outside(ax)
    return figure
