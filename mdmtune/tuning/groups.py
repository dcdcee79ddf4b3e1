"""Per-group results: does a schedule's win hold in every part of the data, or only on average?

A tuned schedule can win overall and still lose on some kind of record (one task of a mix, the hardest puzzles,
the longest prompts). So every comparison is also broken down by strata of the records:
- `group`: the record's own `group` field (a task name, a difficulty, a source), when any record carries one;
- `masked` (infill): how many tokens the record generates;
- `prompt_length` (completion): the prompt's length in tokens.
Numeric strata are cut into at most `MAX_BINS` contiguous ranges of about equal record counts; a `group` field with
more than `MAX_GROUPS` distinct values keeps the most frequent ones and lumps the rest into "(other)" (every group
costs a bootstrap per compared pair); a stratum with a single group says nothing beyond the overall result and is
left out.

In each group: every schedule's mean score and, for each compared pair, the paired difference with its paired
bootstrap 95% interval (mdmtune.tuning.stats, the tuner's own statistics). A group where a schedule loses to its
reference "significantly" is named in `losses`; with many groups some 95% intervals exclude 0 by chance alone, so
that judgement uses a Bonferroni-corrected level (1 - 0.05 / the number of judged comparisons), and groups with
fewer than `MIN_JUDGED_RECORDS` records are reported but not judged. Pure numpy: no torch, web or database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mdmtune.tuning.stats import paired

if TYPE_CHECKING:
    from mdmtune.tuning.evaluation import EncodedSet

MAX_BINS = 4
MAX_GROUPS = 50
OTHER = "(other)"
MIN_JUDGED_RECORDS = 10
FAMILY_ALPHA = 0.05
NO_GROUP = "(none)"


@dataclass
class GroupDiff:
    """schedule - reference in one group, paired over its records."""

    schedule: str
    reference: str
    diff: float
    diff_ci: list[float]
    """Paired bootstrap 95% interval."""


@dataclass
class GroupResult:
    label: str
    records: int
    scores: dict[str, float]
    """Schedule name -> mean score on this group's records."""
    diffs: list[GroupDiff] = field(default_factory=list)


@dataclass
class GroupLoss:
    """A group where `schedule` scores significantly below `reference` (at the corrected level)."""

    stratum: str
    group: str
    records: int
    schedule: str
    reference: str
    diff: float
    diff_ci: list[float]
    """The interval at the corrected level `confidence`; its upper end is below 0."""
    confidence: float


@dataclass
class GroupBreakdown:
    strata: dict[str, list[GroupResult]] = field(default_factory=dict)
    """Stratum name (group, masked, prompt_length) -> its groups, in order."""
    losses: list[GroupLoss] = field(default_factory=list)
    loss_confidence: float | None = None
    """The corrected confidence level at which losses were judged (None: nothing was judged)."""


def bin_labels(values: Sequence[int] | np.ndarray, max_bins: int = MAX_BINS) -> list[str]:
    """A label per value: the value itself when there are few distinct ones, else its range "lo-hi" among at most
    `max_bins` contiguous ranges of about equal record counts (each distinct value lands in one range)."""
    array = np.asarray(values, dtype=np.int64)
    distinct, counts = np.unique(array, return_counts=True)
    if len(distinct) <= max_bins:
        return [str(int(v)) for v in array]
    middles = (np.cumsum(counts) - counts / 2) / array.size
    bins = np.minimum((middles * max_bins).astype(int), max_bins - 1)
    labels = {}
    for b in np.unique(bins):
        members = distinct[bins == b]
        low, high = int(members.min()), int(members.max())
        for v in members:
            labels[int(v)] = str(low) if low == high else f"{low}-{high}"
    return [labels[int(v)] for v in array]


def record_strata(encoded: EncodedSet, indices: Sequence[int] | np.ndarray) -> dict[str, list[str]]:
    """Stratum name -> a label per record of `indices`, for an `mdmtune.tuning.evaluation.EncodedSet`.

    Strata with one label only are left out. `group` values are written as text (a number 3 and "3" are one group).
    """
    positions = np.asarray(indices, dtype=np.int64)
    records = [encoded.records[int(i)] for i in positions]
    strata: dict[str, list[str]] = {}
    if any("group" in r.extra for r in records):
        strata["group"] = _capped([_group_label(r.extra.get("group")) for r in records])
    if encoded.gen_length is None:
        strata["masked"] = bin_labels(np.asarray(encoded.masked)[positions])
    else:
        wrapping = len(encoded.template.prefix) + len(encoded.template.suffix)  # special tokens are not the prompt
        prompt = np.asarray(encoded.lengths)[positions] - int(encoded.gen_length) - wrapping
        strata["prompt_length"] = bin_labels(prompt)
    return {name: labels for name, labels in strata.items() if len(set(labels)) > 1}


def _capped(labels: list[str], limit: int = MAX_GROUPS) -> list[str]:
    """At most `limit` labels: the most frequent limit - 1 (ties by name), the others as OTHER."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    if len(counts) <= limit:
        return labels
    kept = set(sorted(counts, key=lambda label: (-counts[label], label))[: limit - 1])
    return [label if label in kept else OTHER for label in labels]


def _group_label(value: object) -> str:
    if value is None:
        return NO_GROUP
    return value if isinstance(value, str) else str(value)


def breakdown(
    scores: np.ndarray,
    names: Sequence[str],
    pairs: Sequence[tuple[int, int]],
    strata: Mapping[str, Sequence[str]],
    *,
    resamples: int = 10_000,
    seed: int = 0,
) -> GroupBreakdown:
    """Per-group scores of every schedule (rows of `scores` [S, R], named by `names`) and, for each (schedule,
    reference) pair of row indices, the paired difference per group; losses judged at the corrected level."""
    result = GroupBreakdown()
    judged: list[tuple[str, GroupResult, GroupDiff, np.ndarray, np.ndarray]] = []
    for stratum, labels in strata.items():
        label_array = np.asarray(labels)
        groups = []
        for label in _ordered(labels):
            members = np.flatnonzero(label_array == label)
            part = scores[:, members]
            group = GroupResult(
                label=label, records=len(members), scores={n: float(part[i].mean()) for i, n in enumerate(names)}
            )
            for s, r in pairs:
                pair = paired(part[s], part[r], resamples=resamples, seed=seed)
                group.diffs.append(GroupDiff(names[s], names[r], pair.diff, pair.diff_ci.as_list()))
                if len(members) >= MIN_JUDGED_RECORDS:
                    judged.append((stratum, group, group.diffs[-1], part[s], part[r]))
            groups.append(group)
        result.strata[stratum] = groups
    if judged:
        confidence = 1 - FAMILY_ALPHA / len(judged)
        result.loss_confidence = confidence
        for stratum, group, diff, first, second in judged:
            if diff.diff < 0:  # only a loss can be significant: the corrected bootstrap only where it may be one
                result.losses += _loss(stratum, group, diff, first, second, confidence, resamples, seed)
    return result


def _loss(
    stratum: str,
    group: GroupResult,
    diff: GroupDiff,
    first: np.ndarray,
    second: np.ndarray,
    confidence: float,
    resamples: int,
    seed: int,
) -> list[GroupLoss]:
    """The group as a loss when `first` - `second` stays below 0 at the corrected level."""
    pair = paired(first, second, resamples=resamples, seed=seed, confidence=confidence)
    if pair.diff_ci.high >= 0:
        return []
    where = (stratum, group.label, group.records, diff.schedule, diff.reference)
    return [GroupLoss(*where, pair.diff, pair.diff_ci.as_list(), confidence)]


def _ordered(labels: Sequence[str]) -> list[str]:
    """Numeric labels ("40-42", "45") by their first number, others alphabetically, the no-group label last."""

    def key(label: str) -> tuple[int, float, str]:
        head = label.split("-")[0] if not label.startswith("-") else label
        try:
            return (0, float(head), label)
        except ValueError:
            return (1 if label not in (NO_GROUP, OTHER) else 2, 0.0, label)

    return sorted(set(labels), key=key)
