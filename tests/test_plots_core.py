"""Fig. 2 and Fig. 3 are drawn, deterministically, and Fig. 2's landscape has its minimum on the weight point."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mdmtune.plots.core import energy_grid, plot_energy_landscape, plot_schedules

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("weight", [(1.0, 1.0), (2.0, 2.0), (0.8, 0.3)])
def test_landscape_grid_minimum_is_the_grid_point_nearest_the_weight(weight):
    a_values, b_values, energy = energy_grid(weight, resolution=81)
    row, column = np.unravel_index(np.argmin(np.where(np.isfinite(energy), energy, np.inf)), energy.shape)
    assert column == np.argmin(np.abs(np.log(a_values / weight[0])))
    assert row == np.argmin(np.abs(np.log(b_values / weight[1])))


def test_figures_are_pngs_and_the_same_bytes_each_time(tmp_path):
    digests = []
    for attempt in range(2):
        landscape = plot_energy_landscape(tmp_path / f"fig2_{attempt}.png", steps=8, resolution=41)
        schedules = plot_schedules(tmp_path / f"fig3_{attempt}.png")
        for path in (landscape, schedules):
            assert path.read_bytes().startswith(PNG_SIGNATURE)
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in (landscape, schedules)])
    assert digests[0] == digests[1]
