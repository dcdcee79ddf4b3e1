"""One look for every figure of a run (mdmtune tune, frontier, demo and remote): a fixed colour and marker per
schedule or decoder name, titles that say N, the metric and the record counts, and legends outside the axes.

A name keeps its colour in every figure, whatever order the baselines come in: the colour is looked up by name,
never taken from matplotlib's cycle. A name not listed here gets a colour from a fixed palette chosen by a CRC of
the name, so it too is the same in every run (Python's own hash() is salted per process).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes

TUNED_COLOUR = "#e31a1c"
STYLES: dict[str, dict[str, Any]] = {
    "tuned": {"color": TUNED_COLOUR, "marker": "*", "linestyle": "-"},
    "linear": {"color": "#1f78b4", "marker": "s", "linestyle": ":"},
    "cos2": {"color": "#33a02c", "marker": "D", "linestyle": "--"},
    "cosine": {"color": "#b15928", "marker": "P", "linestyle": "--"},
    "sine": {"color": "#6a3d9a", "marker": "^", "linestyle": "-."},
    "threshold": {"color": "#ff7f00", "marker": "v", "linestyle": "-"},
    "entropy": {"color": "#a6761d", "marker": "X", "linestyle": "-"},
    "hybrid": {"color": "#fb9a99", "marker": "o", "linestyle": "-"},
}
"""The fixed styles; "best" is the same as "tuned" (ALIASES)."""
ALIASES = {"best": "tuned", "cos^2": "cos2"}
FALLBACK_COLOURS = ("#17becf", "#e377c2", "#7f7f7f", "#bcbd22", "#8c564b", "#1b9e77")
FALLBACK_MARKERS = ("o", "h", "p", "8", "<", ">")
LEGEND_OUTSIDE = {"loc": "outside right upper", "fontsize": 8}


def style(name: str) -> dict[str, Any]:
    """{"color", "marker", "linestyle"} of a schedule or decoder name; the same for a name in every figure."""
    key = ALIASES.get(name, name)
    if key in STYLES:
        return dict(STYLES[key])
    index = zlib.crc32(key.encode("utf-8"))
    return {
        "color": FALLBACK_COLOURS[index % len(FALLBACK_COLOURS)],
        "marker": FALLBACK_MARKERS[(index // len(FALLBACK_COLOURS)) % len(FALLBACK_MARKERS)],
        "linestyle": "-",
    }


def colour(name: str) -> str:
    return style(name)["color"]


def title(
    what: str,
    *,
    steps: int | Sequence[int] | None = None,
    metric: str | None = None,
    records: int | None = None,
    records_label: str = "confirm records",
    extra: str | None = None,
) -> str:
    """'what: N = 8, metric sudoku, 30 confirm records' (the parts that are known, in that order)."""
    parts = []
    if steps is not None:
        parts.append(f"N = {steps}" if isinstance(steps, int) else "N = " + ", ".join(str(s) for s in steps))
    if metric:
        parts.append(f"metric {metric}")
    if records:
        parts.append(f"{records} {records_label}")
    if extra:
        parts.append(extra)
    return f"{what}: {', '.join(parts)}" if parts else what


def legend_outside(ax: Axes, **options: Any) -> Any:
    """The legend of `ax` to the right of the whole figure (past any colour bar), so it hides no point.

    A figure legend placed "outside" (matplotlib >= 3.7), which the figure's constrained layout makes room for; the
    figure must be made with layout="constrained"."""
    handles, labels = ax.get_legend_handles_labels()
    return ax.get_figure().legend(handles, labels, **{**LEGEND_OUTSIDE, **options})
