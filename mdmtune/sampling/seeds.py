"""Seeds and noise: every random number of a row is a pure function of (row seed, step, stream, slot, token).

The noise is counter-based (SplitMix64, Steele, Lea and Flood 2014: value i of the stream with key k is
mix(k + (i + 1) * golden), the generator that passes BigCrush) rather than drawn from a stateful generator:
- a row's draws depend only on its seed and its own schedule, never on its batch-mates or on what was drawn before,
  so a step that is skipped draws nothing and shifts nothing;
- two schedules sampled with the same row seed see the same number at the same (step, position slot, token):
  common random numbers, so paired differences between schedules have less variance;
- it is integer arithmetic, so the numbers are bit-identical on CPU and CUDA, and computed on the model's device,
  only for the positions that need them (no [positions x vocabulary] transfer per step, even for a 126k vocabulary).
Tensors hold the 64-bit words as int64 (two's complement wrap-around is the uint64 arithmetic SplitMix64 needs;
right shifts are made logical by masking). Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import numpy as np
import torch

from mdmtune.errors import InvalidInput

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MUL1 = 0xBF58476D1CE4E5B9
_MUL2 = 0x94D049BB133111EB

UNIFORM_STREAM, GUMBEL_STREAM = 0, 1
"""The two noise streams of a (row, step): one uniform per position slot, one Gumbel per (slot, token)."""


def _splitmix64(value: int) -> int:
    """One SplitMix64 output for the state `value` (Python ints, exact uint64 arithmetic)."""
    value = (value + _GOLDEN) & _MASK64
    value = ((value ^ (value >> 30)) * _MUL1) & _MASK64
    value = ((value ^ (value >> 27)) * _MUL2) & _MASK64
    return value ^ (value >> 31)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integer parts (order matters): the seed of a (record, replicate), the key of a (row, step)."""
    state = 0
    for part in parts:
        state = _splitmix64(state ^ (int(part) & _MASK64))
    return state >> 1


def check_seeds(seeds: object, rows: int) -> list[int]:
    """One integer seed in [0, 2**64) per row; InvalidInput("seeds") otherwise."""
    values = list(seeds) if isinstance(seeds, (list, tuple)) else np.asarray(seeds).reshape(-1).tolist()
    if len(values) != rows:
        raise InvalidInput("seeds", f"need one seed per row ({rows}), got {len(values)}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= _MASK64:
            raise InvalidInput("seeds", f"every seed must be an integer in [0, 2**64), got {value!r}")
    return [int(v) for v in values]


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _shift_right(words: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64-held uint64 words."""
    return (words >> bits) & ((1 << (64 - bits)) - 1)


def _mix(words: torch.Tensor) -> torch.Tensor:
    words = (words ^ _shift_right(words, 30)) * _signed(_MUL1)
    words = (words ^ _shift_right(words, 27)) * _signed(_MUL2)
    return words ^ _shift_right(words, 31)


def seed_words(row_seeds: list[int], device: torch.device) -> torch.Tensor:
    """The rows' seeds as int64-held uint64 words, once per sampling call."""
    return torch.tensor([_signed(seed) for seed in row_seeds], dtype=torch.int64, device=device)


def step_keys(words: torch.Tensor, step: int | torch.Tensor, stream: int) -> torch.Tensor:
    """int64 key per row of its (row, step, stream) noise stream: derive_seed(seed, step, stream), vectorized.

    step: one step for every row, or each row's own (an int64 tensor shaped as words: the adaptive decoders')."""
    state = torch.zeros_like(words)
    for part in (words, step, stream):
        state = _mix((state ^ part) + _signed(_GOLDEN))
    return _shift_right(state, 1)


def uniform_noise(keys: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    """float64 uniforms in [0, 1): value `counters` of the streams `keys` (broadcast together), 53 random bits each."""
    words = _mix(keys + (counters + 1) * _signed(_GOLDEN))
    return _shift_right(words, 11).double() * 2.0**-53


class LazyGumbel:
    """Gumbel noise [n, V] for n (key, slot) pairs, computed a slice of rows at a time when indexed.

    With a large vocabulary the full [n, V] block (and its int64 temporaries) would not fit at once; the token
    choice asks for it in the same row chunks it processes the logits in.
    """

    def __init__(self, keys: torch.Tensor, slots: torch.Tensor, vocab: int) -> None:
        self.keys, self.slots, self.vocab = keys, slots, vocab

    def __getitem__(self, rows: slice) -> torch.Tensor:
        slots = self.slots[rows]
        counters = slots[:, None] * self.vocab + torch.arange(self.vocab, device=slots.device)[None, :]
        return gumbel_noise(self.keys[rows, None], counters)


def gumbel_noise(keys: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise -log(-log u), float64 (u = 0 gives -inf: that token is never drawn)."""
    return -torch.log(-torch.log(uniform_noise(keys, counters)))
