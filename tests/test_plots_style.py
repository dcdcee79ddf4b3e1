"""Every figure of a run has one style (mdmtune.plots.style): a name keeps its colour whatever order the baselines
come in, titles say N, the metric and the record counts, and legends sit outside the axes, hiding no point.

Read back from the matplotlib Figure objects that the plot functions draw into (the same ones they save).
"""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex

from mdmtune.data.jsonsafe import to_jsonable
from mdmtune.plots import style
from mdmtune.plots.frontier import frontier_figure
from mdmtune.plots.tuning import landscape_figure, quality_vs_steps_figure, schedule_figure
from mdmtune.service.client import schedule_figure as client_schedule_figure
from mdmtune.service.client import trials_figure
from mdmtune.tuning.frontier import BudgetResult, FrontierPoint, FrontierResult
from mdmtune.tuning.result import (
    BaselineScore,
    BestSchedule,
    CountPlan,
    SweepPoint,
    SweepResult,
    TrialRecord,
    TuneResult,
)

STEPS = 8
METRIC = "sudoku"
CONFIRM = 30


def result(order: tuple[str, ...]) -> TuneResult:
    """A quality result whose baselines come in `order`."""
    known = {
        "linear": BaselineScore(a=0.5, b=0.5, score=0.4, diff=0.2, diff_ci=[0.05, 0.35], ci=[0.25, 0.57]),
        "cos2": BaselineScore(a=1.0, b=1.0, score=0.5, diff=0.1, diff_ci=[-0.05, 0.25], ci=[0.33, 0.67]),
        "sine": BaselineScore(a=None, b=None, score=0.45, diff=0.15, diff_ci=[0.0, 0.3], ci=[0.29, 0.62]),
    }
    trials = [
        TrialRecord(number=n, a=a, b=b, value=v, state="COMPLETE")
        for n, (a, b, v) in enumerate([(0.5, 0.5, 0.4), (1.0, 1.0, 0.5), (0.3, 0.8, 0.6), (2.0, 0.4, 0.3)])
    ]
    return TuneResult(
        objective="quality", steps=STEPS, best=BestSchedule(a=0.3, b=0.8, score=0.6, ci=[0.42, 0.75], name="b"),
        baselines={name: known[name] for name in order}, trials=trials, nfe=10, wall_time_s=1.0, n_trials=4,
        plan=CountPlan(masked=45, counts=[3, 6, 7, 7, 7, 6, 6, 3]), metric=METRIC, confirm_records=CONFIRM,
    )  # fmt: skip


def colours_by_label(figure) -> dict[str, str]:
    """label (its first word) -> colour of every labelled line of every axes (plot() and errorbar())."""
    found = {}
    for ax in figure.axes:
        for line in ax.get_lines():
            label = line.get_label()
            if not label.startswith("_"):
                found[label.split(" ")[0]] = to_hex(line.get_color())
        for container in ax.containers:  # errorbar(): the label is the container's, the colour its data line's
            label = container.get_label()
            if label and not label.startswith("_") and getattr(container, "lines", None):
                found[label.split(" ")[0]] = to_hex(container.lines[0].get_color())
    return found


def all_titles(figure) -> str:
    parts = [ax.get_title() for ax in figure.axes]
    if figure._suptitle is not None:
        parts.append(figure._suptitle.get_text())
    return " | ".join(parts)


def assert_legend_outside(figure) -> None:
    """A figure legend, drawn clear of every axes that holds data."""
    FigureCanvasAgg(figure).draw()
    assert figure.legends and all(ax.get_legend() is None for ax in figure.axes)
    legend = figure.legends[0].get_window_extent()
    for ax in figure.axes:
        if ax.get_label() != "<colorbar>":
            box = ax.get_window_extent()
            assert legend.x0 >= box.x1 or legend.y0 >= box.y1, "the legend overlaps the axes"


FORWARD, BACKWARD = ("linear", "cos2", "sine"), ("sine", "cos2", "linear")


@pytest.mark.parametrize("draw", [schedule_figure, landscape_figure])
def test_a_baseline_keeps_its_colour_whatever_the_order(draw):
    first, second = colours_by_label(draw(result(FORWARD))), colours_by_label(draw(result(BACKWARD)))
    shared = {"linear", "cos2"} | ({"sine"} if draw is schedule_figure else set())
    assert shared <= set(first) and shared <= set(second)
    for name in shared:
        assert first[name] == second[name] == style.colour(name)
    assert len({first[name] for name in shared}) == len(shared)  # and the names differ from each other


def test_the_servers_figures_use_the_same_colours_as_the_cli():
    for order in (FORWARD, BACKWARD):
        best = {"a": 0.3, "b": 0.8, "steps": STEPS, "baselines": to_jsonable(result(order).baselines)}
        best["result"] = {"metric": METRIC, "confirm_records": CONFIRM}
        trials = [{"a": t.a, "b": t.b, "value": t.value} for t in result(order).trials]
        for figure in (client_schedule_figure(best), trials_figure(best, trials)):
            colours = colours_by_label(figure)
            for name in ("linear", "cos2"):
                assert colours[name] == colours_by_label(schedule_figure(result(FORWARD)))[name]
            assert colours["tuned"] == style.colour("tuned") == style.colour("best")
            assert f"N = {STEPS}" in all_titles(figure) and f"metric {METRIC}" in all_titles(figure)
            assert f"{CONFIRM} confirm records" in all_titles(figure)
            assert_legend_outside(figure)


@pytest.mark.parametrize("draw", [schedule_figure, landscape_figure])
def test_titles_say_n_the_metric_and_the_records_and_legends_are_outside(draw):
    one = result(FORWARD)
    figure = draw(one)
    titles = all_titles(figure)
    assert f"N = {one.steps}" in titles and f"metric {one.metric}" in titles
    assert f"{one.confirm_records} confirm records" in titles
    assert_legend_outside(figure)


def test_the_sweep_and_frontier_figures_have_the_same_style():
    results = [result(FORWARD), result(BACKWARD)]
    results[1].steps = 16
    points = [SweepPoint(steps=r.steps, tuned=r.best.score, tuned_ci=r.best.ci, baselines={
        name: base.score for name, base in r.baselines.items()}) for r in results]  # fmt: skip
    sweep = SweepResult(objective="quality", steps=[8, 16], results=results, points=points, linear_steps=16,
                        tuned_steps=8, step_savings=0.5, nfe=20, wall_time_s=2.0)  # fmt: skip
    figure = quality_vs_steps_figure(sweep)
    assert "N = 8, 16" in all_titles(figure) and f"metric {METRIC}" in all_titles(figure)
    assert colours_by_label(figure)["linear"] == style.colour("linear")
    assert_legend_outside(figure)

    def point(name, decoder, nfe, score):
        return FrontierPoint(
            name=name, decoder=decoder, nfe_per_record=nfe, score=score, ci=[score - 0.1, score + 0.1],
            diff_vs_linear=0.0, diff_vs_linear_ci=[-0.1, 0.1], within_budget=True, steps=4, a=0.5, b=0.5,
        )  # fmt: skip

    points = [point("linear", "schedule", 4.0, 0.5), point("tuned", "schedule", 4.0, 0.6)]
    points.append(point("threshold", "threshold", 3.5, 0.55))
    frontier = FrontierResult(
        metric=METRIC, budgets=[4], frontier=[BudgetResult(budget=4, points=points, winner=points[1])],
        sweeps=[], confirm_records=CONFIRM, search_records=60, confirm_ids=[], nfe=1, row_nfe=1, nfe_by_part={},
        row_nfe_by_part={}, wall_time_s=1.0, seed=0,
    )  # fmt: skip
    figure = frontier_figure(frontier)
    colours = colours_by_label(figure)
    assert all(colours[name] == style.colour(name) for name in ("linear", "tuned", "threshold"))
    assert "N = 4" in all_titles(figure) and f"metric {METRIC}" in all_titles(figure)
    assert f"{CONFIRM} confirm records" in all_titles(figure)
    assert_legend_outside(figure)


def test_an_unknown_name_gets_the_same_colour_every_time():
    assert style.style("my-schedule") == style.style("my-schedule")
    assert style.colour("best") == style.colour("tuned")
