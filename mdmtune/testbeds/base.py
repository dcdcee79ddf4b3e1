"""The interface every testbed offers the trainer and the eval-set maker.

A testbed is a frozen description (alphabet, lengths, metric) plus two generators: `training_pair` draws one
(context, target) pair from a caller's numpy Generator, so the trainer owns the stream of random numbers and a run is
reproducible from its seed; `eval_records` makes JSONL-ready records from its own seed, so eval sets can be drawn from
seeds the trainer never uses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from mdmtune.errors import InvalidInput

MASK_CHAR = "_"
"""The infill mask symbol in eval records; the native character tokenizer's mask token text. Never in an alphabet."""

PAD_CHAR = "~"
"""Stands for end-of-text padding in training targets; the native tokenizer maps it to its end-of-text token.
Never in an alphabet and never in an eval record."""


@dataclass(frozen=True)
class Testbed(ABC):
    """A task the reference MDM is trained on and tuned for.

    `alphabet` holds every character that can appear in contexts, targets (other than `pad_char`), prompts, masked
    texts (other than `mask_char`) and answers; a character tokenizer built from
    `[mask, pad/end-of-text] + list(alphabet)` covers the testbed. The trainer concatenates context and target
    (`context_length + target_length` tokens), masks target positions only, and maps `pad_char` to end-of-text.
    """

    name: str
    alphabet: str
    context_length: int
    target_length: int
    metric: str
    kind: str
    """"completion" (a prompt, then `gen_length` generated tokens) or "infill" (mask symbols inside given text)."""
    gen_length: int | None
    """Tokens generated after the prompt for completion testbeds (== target_length); None for infill."""
    pad_char: str = PAD_CHAR
    mask_char: str = MASK_CHAR
    position_groups: tuple[tuple[int, ...], ...] = ()
    """Optional structure of the target positions a model may embed (one learned vector per group id): each entry
    gives a group id to every target position, e.g. Sudoku's (row, column, box) of each of the 81 cells. Empty when
    plain positions say all there is. A model that ignores it is still correct, it only learns the structure slower."""

    @abstractmethod
    def training_pair(self, rng: np.random.Generator) -> tuple[str, str]:
        """One (context, target) training pair, exactly `context_length` and `target_length` characters long."""

    @abstractmethod
    def eval_records(self, n: int, seed: int) -> list[dict]:
        """`n` JSONL-ready eval records drawn from `seed` alone (ids unique, answers correct)."""


def check_count(n: int) -> int:
    """The record count of an eval set must be a whole number >= 1."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidInput("n", f"must be an integer >= 1, got {n!r}")
    return int(n)
