"""Testbed "arithmetic": multi-digit addition shaped like LLaDA's code and math outputs.

The prompt has a fixed width ("347+589=": operands zero-padded), and the model writes `gen_length` = 24 tokens:
the sum without leading zeros (1-4 digits), then end-of-text padding. Most of the output is easy padding, the
situation in which the paper found back-loaded schedules win; the testbed exists to measure whether that holds.
Operands have 1-3 digits, not the 3-7 that would give the issue's 3-8 digit answers: a CPU-sized reference MDM
learns 3-digit addition in a few minutes, while 7-digit addition stayed at 0% exact match after as long.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mdmtune.testbeds.base import Testbed, check_count

_MIN_DIGITS = 1
_MAX_DIGITS = 3
_GEN_LENGTH = 24


def random_operand(rng: np.random.Generator, min_digits: int, max_digits: int) -> int:
    """A number whose digit count is uniform in [min_digits, max_digits], uniform among numbers of that count."""
    digits = int(rng.integers(min_digits, max_digits + 1))
    low = 10 ** (digits - 1) if digits > 1 else 0
    return int(rng.integers(low, 10**digits))


@dataclass(frozen=True)
class ArithmeticTestbed(Testbed):
    """Addition of two operands with min_digits..max_digits digits each; exact_match on the sum."""

    name: str = "arithmetic"
    alphabet: str = "0123456789+="
    context_length: int = 2 * _MAX_DIGITS + 2
    target_length: int = _GEN_LENGTH
    metric: str = "exact_match"
    kind: str = "completion"
    gen_length: int | None = _GEN_LENGTH
    min_digits: int = _MIN_DIGITS
    max_digits: int = _MAX_DIGITS

    def problem(self, rng: np.random.Generator) -> tuple[str, str]:
        """(prompt, answer): "347+589=", "936"."""
        a = random_operand(rng, self.min_digits, self.max_digits)
        b = random_operand(rng, self.min_digits, self.max_digits)
        return f"{a:0{self.max_digits}d}+{b:0{self.max_digits}d}=", str(a + b)

    def training_pair(self, rng: np.random.Generator) -> tuple[str, str]:
        """(prompt, answer followed by pad_char up to target_length)."""
        prompt, answer = self.problem(rng)
        return prompt, answer.ljust(self.target_length, self.pad_char)

    def eval_records(self, n: int, seed: int) -> list[dict]:
        """Completion records {"id", "prompt", "answer"} from `seed`."""
        rng = np.random.default_rng(seed)
        records = []
        for i in range(check_count(n)):
            prompt, answer = self.problem(rng)
            records.append({"id": f"arithmetic-{seed}-{i:04d}", "prompt": prompt, "answer": answer})
        return records
