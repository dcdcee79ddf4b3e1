"""TuneSpec: documented defaults, validation naming the bad field, and a JSON round trip (what a job stores)."""

from __future__ import annotations

import json

import pytest

from mdmtune.errors import InvalidInput
from mdmtune.tuning import TuneSpec


def test_defaults_are_the_documented_ones():
    spec = TuneSpec()
    assert spec.objective == "quality" and spec.trials == 60
    assert TuneSpec(objective="energy").trials == 200
    assert spec.a_bounds == spec.b_bounds == (0.05, 5.0)
    assert spec.search_algorithm == "tpe" and spec.trials_per_batch == 8
    assert (spec.weight_a, spec.weight_b) == (1.0, 1.0)
    assert spec.direction == "maximize" and TuneSpec(objective="energy").direction == "minimize"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"objective": "speed"}, "objective"),
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"steps": (4, 4)}, "steps"),
        ({"steps": 16, "gen_length": 8}, "steps"),
        ({"steps": 8, "gen_length": 32, "block_length": 5}, "block_length"),
        ({"steps": 6, "gen_length": 32, "block_length": 8}, "steps"),
        ({"block_length": 8}, "block_length"),
        ({"a_bounds": (0.0, 5.0)}, "a_bounds"),
        ({"b_bounds": (2.0, 1.0)}, "b_bounds"),
        ({"a_bounds": (1.0,)}, "a_bounds"),
        ({"weight_b": float("inf")}, "weight_b"),
        ({"n_trials": 0}, "n_trials"),
        ({"trials_per_batch": 0}, "trials_per_batch"),
        ({"search_algorithm": "bayes"}, "search_algorithm"),
        ({"seed": -1}, "seed"),
        ({"metric": "bleu"}, "metric"),
        ({"sampler": "greedy"}, "sampler"),
        ({"remasking": "top"}, "remasking"),
        ({"temperature": -0.5}, "temperature"),
        ({"replicates": 0}, "replicates"),
        ({"confirm_fraction": 1.0}, "confirm_fraction"),
        ({"subset_size": 1}, "subset_size"),
        ({"mask_symbol": ""}, "mask_symbol"),
    ],
)
def test_validate_names_the_bad_field(changes, field):
    with pytest.raises(InvalidInput) as error:
        TuneSpec(**changes)
    assert error.value.field == field


def test_energy_jobs_skip_the_quality_checks():
    TuneSpec(objective="energy", metric="bleu", confirm_fraction=2.0)


def test_json_round_trip_keeps_every_field():
    spec = TuneSpec(objective="energy", steps=(4, 8), a_bounds=(0.1, 2.0), weight_a=0.8, n_trials=None, seed=3)
    stored = json.loads(json.dumps(spec.to_dict()))
    back = TuneSpec.from_mapping(stored)
    assert back == spec.replace(n_trials=200)
    assert back.steps_list == (4, 8) and back.for_steps(8).steps == 8


def test_unknown_request_keys_are_refused_by_name():
    with pytest.raises(InvalidInput) as error:
        TuneSpec.from_mapping({"steps": 8, "n_trails": 10})
    assert error.value.field == "n_trails"


def test_a_frontier_jobs_budgets_are_its_steps_in_ascending_order():
    spec = TuneSpec(objective="frontier", steps=(16, 4, 8), metric="sudoku")
    assert spec.budgets == (4, 8, 16)
    assert TuneSpec(objective="frontier", steps=8, metric="sudoku").budgets == (8,)


def test_the_jobs_remasking_does_not_bind_its_rival_decoder():
    """The schedules are sampled with the job's sampler and remasking; the rival always commits by confidence."""
    spec = TuneSpec(metric="sudoku", steps=4, remasking="random", decoder="threshold", threshold=0.9)
    assert (spec.remasking, spec.decoder) == ("random", "threshold")
    assert (
        TuneSpec(metric="sudoku", steps=4, sampler="ancestral", decoder="hybrid", threshold=0.9).sampler == "ancestral"
    )
    with pytest.raises(InvalidInput) as error:
        TuneSpec(metric="sudoku", steps=4, remasking="random", decoder="threshold")
    assert error.value.field == "threshold"
    with pytest.raises(InvalidInput) as error:
        TuneSpec(metric="sudoku", steps=4, remasking="top", decoder="threshold", threshold=0.9)
    assert error.value.field == "remasking"
