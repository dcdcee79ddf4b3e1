"""Training the reference MDM on a built-in testbed with the standard masked-diffusion loss.

The loss is LLaDA's / MDLM's for the linear schedule (docs/math.md: alpha(t) = t, so a target token is still masked with
probability p = 1 - alpha(t), uniform in [eps, 1]): per sequence draw p ~ U(eps, 1), mask each target token
independently with probability p, and take the cross-entropy on the masked positions weighted 1/p, averaged over
all target positions of the batch. Context positions (a completion's prompt) are never masked, so the model learns
p(target | context) exactly as the samplers use it. The 1/p weight makes this an upper bound on the negative
log-likelihood (the ELBO), so the model is a proper MDM whatever schedule it is later sampled with.

An infill testbed whose records never mask more than a share of the target may declare it (`max_mask_rate`, e.g.
Sudoku's 50 blanks of 81): p is then drawn from U(eps, max_mask_rate), so no step is spent on noise levels the
samplers never start from. The loss stays the ELBO's integrand restricted to that range.

Reproducible from one seed: the weights' initialisation (torch.manual_seed), the data stream (numpy Generator handed
to `testbed.training_pair`) and the masks (a CPU torch.Generator, so a GPU run draws the same masks) all derive from
it. Must never import FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from mdmtune.errors import InvalidInput
from mdmtune.models.codec import CharCodec
from mdmtune.models.device import resolve_device
from mdmtune.models.native import save_native
from mdmtune.models.reference import ReferenceConfig, ReferenceMDM
from mdmtune.training.config import TrainConfig

__all__ = ["TrainConfig", "TrainResult", "mdm_loss", "noise_levels", "train_reference", "write_checkpoint"]


class TrainingTestbed(Protocol):
    """What the trainer needs from a testbed (mdmtune.testbeds.Testbed satisfies it)."""

    name: str
    alphabet: str
    context_length: int
    target_length: int
    pad_char: str
    # Optional: `position_groups` (see ReferenceConfig), e.g. the rows, columns and boxes of a grid; and
    # `group_attention` (see ReferenceConfig); and `max_mask_rate` (default 1), the largest share of target
    # positions the testbed's records ever mask.

    def training_pair(self, rng: np.random.Generator) -> tuple[str, str]: ...


@dataclass
class TrainResult:
    """The trained model (eval mode, float32, on CPU), its codec, and the loss of every step."""

    model: ReferenceMDM
    codec: CharCodec
    testbed: str
    config: TrainConfig
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    max_mask_rate: float = 1.0

    @property
    def n_parameters(self) -> int:
        return self.model.n_parameters()

    def loss_summary(self, window: int = 50) -> tuple[float, float]:
        """(mean loss of the first `window` steps, of the last `window` steps): the honest "did it learn" figure."""
        window = max(1, min(window, len(self.losses) // 2))
        return float(np.mean(self.losses[:window])), float(np.mean(self.losses[-window:]))


def codec_for(testbed: TrainingTestbed) -> CharCodec:
    """The character codec of a testbed: its alphabet, `_` as mask, its pad_char as the end-of-text token."""
    return CharCodec.for_alphabet(testbed.alphabet, eot_text=testbed.pad_char)


def model_config_for(testbed: TrainingTestbed, codec: CharCodec, config: TrainConfig) -> ReferenceConfig:
    """The network a testbed trains: sized by `config`, its vocabulary and length by the testbed and its codec."""
    return ReferenceConfig(
        vocab_size=codec.vocab_size,
        max_len=testbed.context_length + testbed.target_length,
        mask_token_id=codec.mask_token_id,
        pad_token_id=codec.eot_token_id,
        position_groups=tuple(getattr(testbed, "position_groups", ())),
        group_attention=bool(getattr(testbed, "group_attention", False)),
        **config.model_size(),
    )


def encode_batch(testbed: TrainingTestbed, codec: CharCodec, rng: np.random.Generator, size: int) -> torch.Tensor:
    """`size` training sequences (context then target) as ids [size, context_length + target_length]."""
    rows = []
    for _ in range(size):
        context, target = testbed.training_pair(rng)
        if len(context) != testbed.context_length or len(target) != testbed.target_length:
            raise InvalidInput(
                "testbed",
                f"{testbed.name} gave a pair of lengths ({len(context)}, {len(target)}), expected "
                f"({testbed.context_length}, {testbed.target_length})",
            )
        rows.append(codec.encode(context + target))
    return torch.tensor(rows, dtype=torch.long)


def noise_levels(batch: int, generator: torch.Generator, eps: float = 1e-3, max_rate: float = 1.0) -> torch.Tensor:
    """One mask probability per row, [batch], each marginally uniform on [eps, max_rate].

    Low-discrepancy (MDLM's antithetic sampling): one uniform shift of an even grid, so every batch spans all noise
    levels, with less variance than independent draws and no bias.
    """
    if not eps < max_rate <= 1:
        raise InvalidInput("max_mask_rate", f"must lie in ({eps}, 1], got {max_rate}")
    u = (torch.rand(1, generator=generator) + torch.arange(batch) / batch) % 1.0
    return eps + (max_rate - eps) * u


def mdm_loss(
    model: torch.nn.Module,
    ids: torch.Tensor,
    context_length: int,
    mask_token_id: int,
    generator: torch.Generator,
    eps: float = 1e-3,
    max_rate: float = 1.0,
) -> torch.Tensor:
    """LLaDA/MDLM loss: mask target tokens with prob p ~ U(eps, max_rate) per row; CE on masked positions weighted 1/p.

    Normalised by the number of target positions (B * L_target), as LLaDA's pre-training loss, so with max_rate 1 it
    is an upper bound on the per-token negative log-likelihood. Randomness comes from the CPU `generator` only.
    """
    batch, length = ids.shape
    target_length = length - context_length
    p = noise_levels(batch, generator, eps, max_rate).unsqueeze(1)
    masked = torch.rand(batch, target_length, generator=generator) < p
    masked = torch.cat([torch.zeros(batch, context_length, dtype=torch.bool), masked], dim=1).to(ids.device)
    p = p.to(ids.device)
    noisy = torch.where(masked, torch.full_like(ids, mask_token_id), ids)
    logits = model(noisy)
    token_loss = F.cross_entropy(logits.transpose(1, 2), ids, reduction="none")
    weighted = torch.where(masked, token_loss / p, torch.zeros_like(token_loss))
    return weighted.sum() / (batch * target_length)


def _lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up (warmup_steps, at most a tenth of the run), then cosine decay to 10% of the peak rate."""
    warmup = min(config.warmup_steps, config.steps // 10)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_reference(
    testbed: TrainingTestbed,
    config: TrainConfig = TrainConfig(),
    *,
    device: str | torch.device | None = "cpu",
    progress: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train a fresh reference MDM on `testbed`; `progress(step, loss)` is called after every step.

    Same seed, same device and thread count: bit-identical weights. Default device CPU, because the shipped models
    are meant to be retrained anywhere; pass "auto" to use CUDA when present.
    """
    target = resolve_device(device)
    codec = codec_for(testbed)
    torch.manual_seed(config.seed)
    model = ReferenceMDM(model_config_for(testbed, codec, config)).to(target)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, config))
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    max_rate = float(getattr(testbed, "max_mask_rate", 1.0))
    result = TrainResult(model=model, codec=codec, testbed=testbed.name, config=config, max_mask_rate=max_rate)
    started = time.perf_counter()
    model.train()
    for step in range(config.steps):
        ids = encode_batch(testbed, codec, rng, config.batch_size).to(target)
        loss = mdm_loss(model, ids, testbed.context_length, codec.mask_token_id, generator, config.eps, max_rate)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        result.losses.append(float(loss.detach()))
        if progress is not None:
            progress(step, result.losses[-1])
    result.seconds = time.perf_counter() - started
    result.model = model.to("cpu").eval()
    return result


def write_checkpoint(
    result: TrainResult, out: str | Path, *, dtype: torch.dtype = torch.float16, command: str | None = None
) -> Path:
    """Save `result` as a native checkpoint (fp16 weights by default: half the size, loaded back as float32)."""
    first, last = result.loss_summary()
    training: dict[str, Any] = {
        "testbed": result.testbed,
        "max_mask_rate": result.max_mask_rate,
        **asdict(result.config),
        "n_parameters": result.n_parameters,
        "loss_first": first,
        "loss_last": last,
        "seconds": round(result.seconds, 1),
        "torch": torch.__version__,
        "weights_dtype": str(dtype).removeprefix("torch."),
    }
    if command:
        training["command"] = command
    return save_native(result.model, result.codec, out, dtype=dtype, training=training)
