"""The reference-MDM trainer: the loss, reproducibility from the seed, and `mdmtune train` end to end."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from mdmtune.cli.main import main
from mdmtune.errors import InvalidInput
from mdmtune.models.loading import load_denoiser
from mdmtune.testbeds import Testbed, get_testbed
from mdmtune.training.loop import (
    TrainConfig,
    codec_for,
    encode_batch,
    mdm_loss,
    model_config_for,
    noise_levels,
    train_reference,
)

TINY = dict(d_model=32, n_layers=2, n_heads=2, d_ff=64)


@dataclass(frozen=True)
class ReverseTestbed(Testbed):
    """Tiny task for the trainer tests: the target is the context reversed, then end-of-text padding."""

    name: str = "reverse"
    alphabet: str = "abcd"
    context_length: int = 4
    target_length: int = 6
    metric: str = "exact_match"
    kind: str = "completion"
    gen_length: int | None = 6

    def training_pair(self, rng: np.random.Generator) -> tuple[str, str]:
        context = "".join(rng.choice(list(self.alphabet), size=self.context_length))
        return context, context[::-1].ljust(self.target_length, self.pad_char)

    def eval_records(self, n: int, seed: int) -> list[dict]:
        rng = np.random.default_rng(seed)
        pairs = [self.training_pair(rng) for _ in range(n)]
        return [{"id": str(i), "prompt": c, "answer": t.rstrip("~")} for i, (c, t) in enumerate(pairs)]


class RecordingConstantModel(torch.nn.Module):
    """Logits that ignore the input (one learned row per position); remembers the noisy ids it was given."""

    def __init__(self, length: int, vocab: int) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(length, vocab, generator=torch.Generator().manual_seed(0)))
        self.seen: list[torch.Tensor] = []

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.seen.append(ids.clone())
        return self.table.expand(ids.shape[0], -1, -1)


def test_context_positions_are_never_masked_and_targets_are() -> None:
    bed = ReverseTestbed()
    codec = codec_for(bed)
    ids = encode_batch(bed, codec, np.random.default_rng(0), 256)
    model = RecordingConstantModel(10, codec.vocab_size)
    mdm_loss(model, ids, bed.context_length, codec.mask_token_id, torch.Generator().manual_seed(0))
    noisy = model.seen[0]
    assert torch.equal(noisy[:, :4], ids[:, :4])
    masked = noisy[:, 4:] == codec.mask_token_id
    assert masked.any() and not masked.all()
    assert torch.equal(noisy[:, 4:][~masked], ids[:, 4:][~masked])


def test_weighted_loss_is_unbiased_for_the_per_token_cross_entropy() -> None:
    """With logits that ignore the input, E[sum masked CE / p] / L equals the mean cross-entropy of the targets.

    The reference value is computed directly (cross-entropy on every target position, no masking); the MDM loss is
    averaged over 200 independent mask draws. Its standard error here is about 0.01 (variance ln(1/eps)/L per row).
    """
    bed = ReverseTestbed()
    codec = codec_for(bed)
    ids = encode_batch(bed, codec, np.random.default_rng(1), 64)
    model = RecordingConstantModel(10, codec.vocab_size)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        draws = [float(mdm_loss(model, ids, 4, codec.mask_token_id, generator)) for _ in range(200)]
        logits = model(ids)[:, 4:]
        direct = float(torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 4:]))
    assert np.mean(draws) == pytest.approx(direct, abs=0.06)


@pytest.mark.parametrize("max_rate", [1.0, 0.65, 0.2])
def test_noise_levels_cover_their_range_evenly(max_rate: float) -> None:
    """One shifted even grid: sorted, the levels step by (max_rate - eps) / batch, all inside [eps, max_rate]."""
    eps, batch = 1e-3, 64
    p = noise_levels(batch, torch.Generator().manual_seed(3), eps, max_rate).double()
    assert float(p.min()) >= eps and float(p.max()) <= max_rate
    gaps = torch.diff(torch.sort(p).values)
    assert torch.allclose(gaps, torch.full_like(gaps, (max_rate - eps) / batch), atol=1e-6)
    with pytest.raises(InvalidInput, match="max_mask_rate"):
        noise_levels(batch, torch.Generator(), eps, 1.5)


def test_a_testbed_max_mask_rate_bounds_the_masked_share() -> None:
    """ReverseTestbed with max_mask_rate 0.2: over 256 rows of 6 targets, at most about 20% are ever masked."""

    @dataclass(frozen=True)
    class LightlyMasked(ReverseTestbed):
        max_mask_rate: float = 0.2

    bed = LightlyMasked()
    codec = codec_for(bed)
    ids = encode_batch(bed, codec, np.random.default_rng(0), 256)
    model = RecordingConstantModel(10, codec.vocab_size)
    mdm_loss(model, ids, 4, codec.mask_token_id, torch.Generator().manual_seed(0), max_rate=bed.max_mask_rate)
    share = float((model.seen[0][:, 4:] == codec.mask_token_id).double().mean())
    assert 0.05 < share < 0.15  # mean p is about 0.1; the unrestricted draw would give about 0.5
    result = train_reference(bed, TrainConfig(steps=1, batch_size=4, warmup_steps=0, seed=0, **TINY))
    assert result.max_mask_rate == 0.2


def _held_out_loss(model: torch.nn.Module, codec) -> float:
    ids = encode_batch(ReverseTestbed(), codec, np.random.default_rng(999), 256)
    with torch.no_grad():
        return float(mdm_loss(model.eval(), ids, 4, codec.mask_token_id, torch.Generator().manual_seed(999)))


def test_training_lowers_the_held_out_loss() -> None:
    torch.set_num_threads(1)
    config = TrainConfig(steps=40, batch_size=32, lr=3e-3, warmup_steps=5, seed=0, **TINY)
    untrained = train_reference(ReverseTestbed(), TrainConfig(steps=1, lr=1e-12, seed=0, **TINY))
    trained = train_reference(ReverseTestbed(), config)
    before, after = _held_out_loss(untrained.model, untrained.codec), _held_out_loss(trained.model, trained.codec)
    assert after < 0.8 * before
    assert len(trained.losses) == 40


def test_same_seed_gives_identical_weights_and_another_seed_does_not() -> None:
    torch.set_num_threads(1)
    config = TrainConfig(steps=12, batch_size=8, warmup_steps=2, seed=7, **TINY)
    first = train_reference(ReverseTestbed(), config).model.state_dict()
    again = train_reference(ReverseTestbed(), config).model.state_dict()
    other = train_reference(ReverseTestbed(), TrainConfig(**{**config.__dict__, "seed": 8})).model.state_dict()
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


def test_the_train_config_sizes_the_network_and_the_testbed_shapes_it() -> None:
    testbed = ReverseTestbed()
    codec = codec_for(testbed)
    model = model_config_for(testbed, codec, TrainConfig(**TINY))
    assert TrainConfig(**TINY).model_size() == TINY
    assert (model.d_model, model.n_layers, model.n_heads, model.d_ff) == (32, 2, 2, 64)
    assert (model.vocab_size, model.max_len, model.mask_token_id) == (codec.vocab_size, 10, codec.mask_token_id)


def test_bad_train_config_names_the_field() -> None:
    with pytest.raises(InvalidInput, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(InvalidInput, match="lr"):
        TrainConfig(lr=float("nan"))


def test_train_command_writes_a_loadable_fp16_native_checkpoint(tmp_path: Path, capsys) -> None:
    out = tmp_path / "arith"
    size = ["--d-model", "16", "--n-layers", "1", "--n-heads", "2", "--d-ff", "32"]
    argv = ["train", "--testbed", "arithmetic", "--out", str(out), "--steps", "3", "--batch-size", "4", *size]
    argv += ["--seed", "5", "--json"]
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == ["config.json", "model.safetensors", "tokenizer.json"] and report["steps"] == 3
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["weights_dtype"] == "float16" and "--seed 5" in config["training"]["command"]
    denoiser = load_denoiser(out, device="cpu")
    assert denoiser.dtype == torch.float32
    bed = get_testbed("arithmetic")
    context, _ = bed.training_pair(np.random.default_rng(0))
    ids = torch.tensor([denoiser.codec.encode(context + "_" * bed.target_length)])
    assert denoiser.max_length == bed.context_length + bed.target_length
    assert denoiser.logits(ids).shape == (1, bed.context_length + bed.target_length, denoiser.vocab_size)
    assert denoiser.codec.decode(denoiser.codec.encode("1235~~~")) == "1235"


def test_train_command_refuses_an_unknown_testbed(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["train", "--testbed", "chess", "--out", str(tmp_path / "x")])
    assert done.value.code == 2
    assert "testbed" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
