"""The tuned schedule in LLaDA's generate(): the drop-in get_num_transfer_tokens gives mdmtune's plan and tokens.

The plans are checked against mdmtune.core.plans row by row (library function and the module `mdmtune export --format
llada` writes, with and without mdmtune importable). The tokens are checked on the shipped BERT checkpoint
(examples/bert_arithmetic) at temperature 0: LLaDA's generate() loop with its get_num_transfer_tokens replaced by
ours against mdmtune's sampler. CI has no network, so the loop is the project's transcription of LLaDA's generate()
(tests/test_llada_compat.py: per block, get_num_transfer_tokens(block mask index, steps per block), top-k commits of
the softmax confidence), whose module-level count function is replaced exactly as a user replaces LLaDA's. With
MDMTUNE_LLADA_GENERATE=/path/to/LLaDA/generate.py (a clone of ML-GSAI/LLaDA) the same comparison also runs on
LLaDA's own file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
import torch

from mdmtune.cli.main import main
from mdmtune.core.plans import count_plan
from mdmtune.core.schedules import alpha_grids, beta, named
from mdmtune.export import TunedSchedule, get_num_transfer_tokens, module_text, transfer_tokens_fn
from mdmtune.sampling import SamplerSettings, sample

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "examples" / "bert_arithmetic" / "checkpoint"
EVAL_SET = ROOT / "examples" / "bert_arithmetic" / "eval.jsonl"
RECORDS = 48
GEN_LENGTH = 16
SCHEDULES = [(0.35, 0.78), (1.0, 0.2), (0.7, 0.7), (3.0, 0.5)]
CASES = [(8, 16), (4, 16), (8, 4), (16, 8), (6, 8)]
"""(steps, block_length) over gen_length 16."""


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def llada_loop():
    return _load("_llada_loop_for_export", ROOT / "tests" / "test_llada_compat.py")


@pytest.fixture(scope="module")
def bert():
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(CHECKPOINT))
    model = AutoModelForMaskedLM.from_pretrained(str(CHECKPOINT)).eval()
    records = [json.loads(line) for line in EVAL_SET.read_text().splitlines()[:RECORDS]]
    prompt = torch.tensor([tokenizer(r["prompt"])["input_ids"][:-1] for r in records])  # [CLS] prompt: LLaDA's layout
    return model, tokenizer, prompt


@pytest.fixture(scope="module")
def denoiser():
    from mdmtune.models.loading import load_denoiser

    return load_denoiser(CHECKPOINT, device="cpu")


def _exported(tmp_path: Path, tuned: TunedSchedule, name: str = "tuned_schedule"):
    path = tmp_path / f"{name}.py"
    path.write_text(module_text(tuned, origin="test"))
    return _load(name, path)


def _ours(denoiser, prompt: torch.Tensor, a: float, b: float, steps: int, block_length: int) -> torch.Tensor:
    rows, length = prompt.shape
    ids = torch.cat([prompt, torch.full((rows, GEN_LENGTH), denoiser.mask_token_id)], dim=1)
    settings = SamplerSettings(block_length=block_length)
    out = sample(
        denoiser, ids, alpha_grids([beta(a, b)] * rows, steps), settings, list(range(rows)), (length, GEN_LENGTH)
    )
    return out.ids


# plans -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), SCHEDULES)
def test_drop_in_returns_the_plan_of_each_rows_own_masked_count(a, b):
    generator = torch.Generator().manual_seed(7)
    mask_index = torch.rand((12, 32), generator=generator) < torch.linspace(0, 1, 12)[:, None]
    mask_index[0] = False  # a row with nothing left to commit
    for steps in (1, 3, 8, 32):
        counts = get_num_transfer_tokens(mask_index, steps, a=a, b=b)
        assert counts.dtype == torch.int64 and counts.shape == (12, steps)
        for row in range(12):
            expected = count_plan(beta(a, b).on_grid(steps), int(mask_index[row].sum()))
            assert counts[row].tolist() == expected.tolist()
        assert counts.sum(dim=1).tolist() == mask_index.sum(dim=1).tolist()


def test_linear_drop_in_is_llada_own_function(llada_loop):
    mask_index = torch.rand((9, 20), generator=torch.Generator().manual_seed(3)) < 0.6
    for steps in (1, 4, 7, 20):
        ours = transfer_tokens_fn(name="linear")(mask_index, steps)
        assert torch.equal(ours, llada_loop.llada_num_transfer_tokens(mask_index, steps))


def test_exported_module_carries_the_plans_and_needs_mdmtune_only_off_its_table(tmp_path, monkeypatch):
    tuned = TunedSchedule("beta(0.35,0.78)", 0.35, 0.78, steps=8, gen_length=16, block_length=8)
    module = _exported(tmp_path, tuned)
    assert (module.A, module.B, module.STEPS, module.STEPS_PER_BLOCK, module.BLOCK_LENGTH) == (0.35, 0.78, 8, 4, 8)
    assert module.PLANS[8] == tuned.block_plans()[0]
    mask_index = torch.zeros((9, 8), dtype=torch.bool)
    for row in range(9):
        mask_index[row, :row] = True
    for steps in (4, 5):  # 4: the table; 5: computed by mdmtune
        assert torch.equal(
            module.get_num_transfer_tokens(mask_index, steps),
            get_num_transfer_tokens(mask_index, steps, a=0.35, b=0.78),
        )
    monkeypatch.setitem(sys.modules, "mdmtune.export.llada", None)  # as where mdmtune is not installed
    assert module.get_num_transfer_tokens(mask_index, 4).sum().item() == 36
    with pytest.raises(ValueError, match="needs mdmtune installed"):
        module.get_num_transfer_tokens(mask_index, 5)


def test_named_schedule_outside_the_family_exports_too(tmp_path):
    tuned = TunedSchedule("sine", None, None, steps=6, gen_length=12)
    module = _exported(tmp_path, tuned, "sine_schedule")
    assert module.NAME == "sine" and module.PLANS[12] == count_plan(named("sine").on_grid(6), 12).tolist()


# tokens on the shipped BERT checkpoint -----------------------------------------------------------------------------


@pytest.mark.parametrize(("steps", "block_length"), CASES)
@pytest.mark.parametrize(("a", "b"), SCHEDULES[:2])
def test_llada_generate_with_the_drop_in_gives_mdmtunes_tokens(
    llada_loop, bert, denoiser, tmp_path, monkeypatch, a, b, steps, block_length
):
    model, tokenizer, prompt = bert
    assert tokenizer.mask_token_id == llada_loop.MASK_ID == denoiser.mask_token_id
    tuned = TunedSchedule(f"beta({a:g},{b:g})", a, b, steps, GEN_LENGTH, block_length)
    ours = _ours(denoiser, prompt, a, b, steps, block_length)
    for drop_in in (transfer_tokens_fn(a=a, b=b), _exported(tmp_path, tuned).get_num_transfer_tokens):
        monkeypatch.setattr(llada_loop, "llada_num_transfer_tokens", drop_in)
        theirs, _ = llada_loop.llada_generate(
            model, prompt, steps, GEN_LENGTH, block_length, softmax_dtype=torch.float32
        )
        assert torch.equal(ours, theirs), f"{int((ours != theirs).any(dim=1).sum())} of {RECORDS} sequences differ"


@pytest.mark.skipif(
    not os.environ.get("MDMTUNE_LLADA_GENERATE"), reason="set MDMTUNE_LLADA_GENERATE to LLaDA's generate.py"
)
@pytest.mark.parametrize(("steps", "block_length"), CASES)
@pytest.mark.parametrize(("a", "b"), SCHEDULES)
def test_llada_own_generate_py_with_the_drop_in_gives_mdmtunes_tokens(
    bert, denoiser, monkeypatch, a, b, steps, block_length
):
    generate = _load("_llada_generate", Path(os.environ["MDMTUNE_LLADA_GENERATE"]))
    model, tokenizer, prompt = bert
    monkeypatch.setattr(generate, "get_num_transfer_tokens", transfer_tokens_fn(a=a, b=b))
    theirs = generate.generate(
        model, prompt, steps=steps, gen_length=GEN_LENGTH, block_length=block_length, temperature=0.0,
        mask_id=tokenizer.mask_token_id,
    )  # fmt: skip
    assert torch.equal(_ours(denoiser, prompt, a, b, steps, block_length), theirs)


def test_export_command_writes_the_module(tmp_path, capsys):
    document = TunedSchedule("beta(0.35,0.78)", 0.35, 0.78, 8, 16, 4).to_document()
    source = tmp_path / "schedule.json"
    source.write_text(json.dumps(document))
    with pytest.raises(SystemExit) as done:
        main(["export", str(source), "--format", "llada", "--out", str(tmp_path / "tuned.py")])
    assert done.value.code == 0, capsys.readouterr().err
    module = _load("tuned_from_cli", tmp_path / "tuned.py")
    assert module.PLANS[4] == document["plan"]["block_counts"][0]
    assert (module.GEN_LENGTH, module.BLOCK_LENGTH, module.STEPS) == (16, 4, 8)
