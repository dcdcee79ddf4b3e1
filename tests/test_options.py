"""The option table (mdmtune.options) is the one declaration of every tuning, loading and sampling option: each
declared option reaches the job spec, the HTTP request schema and the --help of every command that takes it, with
the table's default and bounds; the frozen parts check themselves on construction; flat and nested specs agree."""

from __future__ import annotations

import json

import pytest

from mdmtune.cli.main import main
from mdmtune.errors import InvalidInput
from mdmtune.options import OPTIONS, PARTS, SamplerSettings, Scoring, Search, spec_options
from mdmtune.options.table import Option
from mdmtune.service.app.schemas import TuneRequest
from mdmtune.tuning import TuneSpec

STORED_KEYS = {
    "objective", "steps", "weight_a", "weight_b", "n_trials", "a_bounds", "b_bounds", "search_algorithm", "seed",
    "trials_per_batch", "gen_length", "block_length", "sampler", "remasking", "temperature", "metric", "subset_size",
    "replicates", "confirm_fraction", "mask_symbol", "top_k", "reduction_factor", "min_rung_records",
    "bootstrap_resamples", "decoder", "threshold", "entropy_bound", "batch_size", "add_special_tokens",
    "chat_template", "cfg_scale", "confidence_dtype", "family",
}  # fmt: skip
"""The flat keys of `TuneSpec.to_dict()`, the JSON a job stores: stored jobs are read back with from_mapping."""

COMMANDS = {"remote": ["remote", "submit"]}
"""The table names `mdmtune remote submit` and `remote tune` as one command; --help is checked on submit."""


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main([*COMMANDS.get(command, [command]), "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_every_spec_option_reaches_the_spec_flat_and_by_part_with_its_default():
    spec = TuneSpec()
    stored = spec.to_dict()
    assert set(stored) == STORED_KEYS == {option.name for option in spec_options()}
    for option in spec_options():
        by_part = getattr(getattr(spec, option.part), option.name)
        assert getattr(spec, option.name) == by_part
        if option.name != "n_trials":  # stored filled in: 60 for a quality job
            assert by_part == option.default, option.name
            assert stored[option.name] == (list(by_part) if isinstance(by_part, tuple) else by_part)


def test_every_http_option_is_a_request_field_with_the_tables_default_and_bounds():
    schema = TuneRequest.model_json_schema()["properties"]
    for option in OPTIONS:
        assert (option.name in schema) == option.http, option.name
        if not option.http:
            continue
        field = schema[option.name]
        assert field["description"] == option.help
        if option.kind != "steps":
            default = list(option.default) if isinstance(option.default, tuple) else option.default
            assert field["default"] == default, option.name
        if option.kind in ("int", "float", "steps"):
            number = next(f for f in [field, *field.get("anyOf", [])] if f.get("type") in ("integer", "number"))
            assert number["maximum"] == option.high, option.name
            low = "exclusiveMinimum" if option.low_open else "minimum"
            assert number[low] == option.low, option.name
        if option.kind == "choice":
            assert field["enum"] == list(option.choices), option.name


@pytest.mark.parametrize("command", sorted({c for option in OPTIONS for c in option.commands}))
def test_every_command_shows_each_of_its_options_in_help(command, capsys):
    text = _help(command, capsys)
    for option in OPTIONS:
        if command in option.commands:
            assert option.cli_flag.split("/")[0] in text, (command, option.name)


def _too_far(option: Option):
    """A value just outside the option's declaration."""
    if option.kind in ("int", "steps"):
        return int(option.high) + 1 if option.high is not None else "8"
    if option.kind == "float":
        return option.high + 1 if not option.high_open else option.high
    if option.kind == "bounds":
        return (option.default[0], option.high * 2)
    if option.kind == "bool":
        return "yes"
    if option.kind == "choice":
        return "nonsense"
    return "x" * (int(option.high) + 1) if option.high is not None else "no such metric"


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.part != "cli"], ids=lambda o: o.name)
def test_each_part_refuses_a_value_outside_the_declaration_by_name(option):
    with pytest.raises(InvalidInput) as error:
        PARTS[option.part](**{option.name: _too_far(option)})
    assert error.value.field == option.name
    if option.in_spec:  # and the spec, which nests the part (a quality job checks every part)
        with pytest.raises(InvalidInput) as error:
            TuneSpec(**{"objective": "quality", option.name: _too_far(option)})
        assert error.value.field == option.name


def test_flat_and_nested_specs_are_the_same_job():
    flat = TuneSpec(steps=4, temperature=0.5, metric="sudoku", seed=3, gen_length=16)
    nested = TuneSpec(
        search=Search(steps=4, seed=3),
        sampling=SamplerSettings(temperature=0.5),
        scoring=Scoring(metric="sudoku"),
        gen_length=16,
    )
    assert flat == nested and hash(flat) == hash(nested)
    assert flat.sampling.temperature == flat.temperature == 0.5 and flat.search.seed == 3
    assert flat.replace(seed=4).search == Search(steps=4, seed=4)
    assert TuneSpec.from_mapping(json.loads(json.dumps(flat.to_dict()))) == flat.replace(n_trials=60)


def test_a_spec_is_checked_when_made_and_when_replaced():
    spec = TuneSpec(steps=8, gen_length=16)
    with pytest.raises(InvalidInput) as error:
        spec.replace(steps=32)
    assert error.value.field == "steps"
    with pytest.raises(InvalidInput) as error:
        TuneSpec(sampling=SamplerSettings(), threshold=0.9)
    assert error.value.field == "threshold"
    with pytest.raises(TypeError):
        TuneSpec(temprature=0.5)


def test_an_energy_job_keeps_its_unused_quality_options_unchecked_as_before():
    spec = TuneSpec(objective="energy", confirm_fraction=2.0, sampler="greedy")
    assert spec.confirm_fraction == 2.0 and spec.to_dict()["sampler"] == "greedy"
    with pytest.raises(InvalidInput) as error:
        spec.replace(objective="quality")
    assert error.value.field == "sampler"


def test_every_sampling_option_but_the_rivals_reaches_the_schedules_sampler_and_the_score_cache_key():
    """A new sampling option must change the score cache's key, or cached scores of other settings are reused."""
    from mdmtune.options.names import RIVAL_FIELDS
    from mdmtune.options.table import options_of
    from mdmtune.tuning import TuneSpec
    from mdmtune.tuning.quality_objective import sampling_fields

    spec = TuneSpec(metric="sudoku", steps=4, temperature=1, decoder="threshold", threshold=0.5)
    fields = sampling_fields(spec, leave_out=RIVAL_FIELDS)
    assert set(fields) == {o.name for o in options_of("sampling")} - set(RIVAL_FIELDS)
    assert fields["temperature"] == 1.0 and isinstance(fields["temperature"], float)
