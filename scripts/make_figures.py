"""Redraw every committed figure into docs/figures: `python scripts/make_figures.py [OUTPUT_DIR]`.

Each figure is one line of FIGURES (file name, drawing function taking the output path); add a figure by adding a line.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def figures() -> list[tuple[str, object]]:
    """(file name, draw(path)) for every committed figure, in the paper's numbering."""
    from functools import partial

    from mdmtune.plots.core import plot_energy_landscape, plot_schedules
    from mdmtune.plots.toy import plot_toy_tv

    return [
        ("fig2_energy_landscape.png", partial(plot_energy_landscape, steps=16)),
        ("fig3_schedules.png", plot_schedules),
        ("fig4_toy_tv.png", partial(plot_toy_tv, steps=3)),
    ]


def main(argv: list[str]) -> None:
    out_dir = Path(argv[0]) if argv else ROOT / "docs" / "figures"
    for file_name, draw in figures():
        path = draw(out_dir / file_name)
        print(path, file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
