"""The shipped examples (examples/*): what `mdmtune demo` and the README's commands rely on.

Each example the demo offers has its eval set and a trained checkpoint that loads, that records the `mdmtune train`
command that retrains it, and that does its task: sampled with the linear schedule at 8 steps, it scores above what
an untrained model of the same shape scores on the same records (measured here, not written down).
"""

from __future__ import annotations

import json
import shlex

import pytest
import torch

from mdmtune.cli.demo import EXAMPLES, example_files, examples_dir
from mdmtune.core.schedules import named
from mdmtune.data.evalsets import load_eval_set
from mdmtune.metrics import get_metric
from mdmtune.models.loading import load_denoiser
from mdmtune.models.native import save_native
from mdmtune.models.reference import ReferenceMDM
from mdmtune.sampling import SamplerSettings
from mdmtune.testbeds import TESTBED_NAMES
from mdmtune.tuning.evaluation import encode_records, evaluate

RECORDS = 48


def _linear_score(denoiser, records, example) -> float:
    encoded = encode_records(denoiser, records, gen_length=example.gen_length)
    result = evaluate(denoiser, encoded, [named("linear")], 8, SamplerSettings(), get_metric(example.metric))
    return float(result.mean_scores()[0])


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_demo_example_ships_an_eval_set_and_a_checkpoint_naming_its_retrain_command(name):
    assert name in TESTBED_NAMES
    checkpoint, eval_set = example_files(examples_dir(name))
    records = load_eval_set(eval_set)
    get_metric(EXAMPLES[name].metric).check_records(records.records)
    training = json.loads((checkpoint / "config.json").read_text())["training"]
    words = shlex.split(training["command"])
    assert words[:4] == ["mdmtune", "train", "--testbed", name]
    assert words[words.index("--out") + 1] == f"examples/{name}/checkpoint"
    assert (checkpoint / "model.safetensors").stat().st_size < 8 * 2**20  # a few MB at most


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_shipped_checkpoint_beats_an_untrained_one_of_its_shape(name, tmp_path):
    torch.set_num_threads(1)
    checkpoint, eval_set = example_files(examples_dir(name))
    records = load_eval_set(eval_set).records[:RECORDS]
    trained = load_denoiser(checkpoint, device="cpu")
    torch.manual_seed(0)
    save_native(ReferenceMDM(trained.module.config).eval(), trained.codec, tmp_path / "untrained")
    untrained = load_denoiser(tmp_path / "untrained", device="cpu")
    assert _linear_score(trained, records, EXAMPLES[name]) > _linear_score(untrained, records, EXAMPLES[name])
