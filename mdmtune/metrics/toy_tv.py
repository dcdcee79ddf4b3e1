"""The toy_tv metric: a set-level score, 1 - the total variation between the outputs and the exact toy's target.

The toy itself (its targets, sequences and exact distances) is mdmtune.core.toy; this module only reads a set of decoded
outputs as an empirical distribution. Pure Python and numpy: never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from mdmtune.core import toy
from mdmtune.data.evalsets import EvalRecord, where
from mdmtune.errors import InvalidInput


def check_toy(record: EvalRecord) -> None:
    if record.answer.strip() not in toy.TARGETS:
        raise InvalidInput(
            "answer",
            f"{where(record)}: toy_tv needs the toy target's name as the answer "
            f"({', '.join(toy.TARGETS)}), got {record.answer!r}",
        )


def toy_tv(outputs: Sequence[str], records: Sequence[EvalRecord]) -> float:
    """1 - TV between the empirical distribution of the outputs and the exact toy's target.

    Every record names the target in its answer ("extremes" or "two-or-three"), the same for all. An output that is
    not one of the 32 sequences (after stripping white space) is mass the target never has, so it counts fully
    toward the distance.
    """
    for record in records:
        check_toy(record)
    targets = sorted({record.answer.strip() for record in records})
    if len(targets) != 1:
        raise InvalidInput("answer", f"toy_tv needs one target for the whole set, got {', '.join(targets)}")
    counts = Counter(output.strip() for output in outputs)
    empirical = np.array([counts[sequence] for sequence in toy.SEQUENCES], dtype=np.float64) / len(outputs)
    tv_on_sequences = float(toy.metric_arrays(targets[0], empirical)[0])
    return 1.0 - (tv_on_sequences + 0.5 * (1.0 - empirical.sum()))
