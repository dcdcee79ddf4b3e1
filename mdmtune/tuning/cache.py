"""Per-record scores already paid for, so that no (schedule, record, seed) is sampled twice.

The key is everything that decides a record's score: (checkpoint sha, eval set sha, schedule, N, sampler settings,
seed, replicates). For the count sampler the schedule enters only through its count plans, so the objective keys
it by those: two (a, b) with the same plans are one entry, and the second costs no model call. Rungs of the search
re-use the records of the rung before; the confirm split re-uses nothing of the search split but everything of
earlier confirmations (the baselines at every N of a sweep, a resumed job).
Held in memory; `ScoreCache(path)` also appends to a JSON Lines file and reads it back, so a rerun of the same job in
a new process costs no model call for what it already scored. Pure Python + numpy.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mdmtune.core.schedules import Schedule


def schedule_key(schedule: Schedule) -> str:
    """A Beta point by its exact (a, b) (repr round-trips floats); a named curve outside the family by its name."""
    if schedule.in_beta_family:
        return f"beta({float(schedule.a)!r},{float(schedule.b)!r})"
    return schedule.name


class ScoreCache:
    """(context, schedule) -> {record index: replicate scores}."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._scores: dict[tuple[str, str], dict[int, np.ndarray]] = {}
        self._lock = threading.Lock()
        self._path = None if path is None else Path(path)
        if self._path is not None and self._path.exists():
            self._load(self._path)

    def _load(self, path: Path) -> None:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                self._put(row["context"], row["schedule"], {int(k): np.asarray(v) for k, v in row["scores"].items()})
            except (ValueError, KeyError, TypeError):
                continue  # a half-written last line from a killed run: the scores are simply recomputed

    def _put(self, context: str, schedule: str, scores: dict[int, np.ndarray]) -> None:
        self._scores.setdefault((context, schedule), {}).update(scores)

    def missing(self, context: str, key: str, indices: Iterable[int]) -> list[int]:
        """The record indices not yet scored for (context, key); `key` names the schedule (`schedule_key`, or the
        count plan that is all a count sampler reads of a schedule)."""
        known = self._scores.get((context, key), {})
        return [int(i) for i in indices if int(i) not in known]

    def get(self, context: str, key: str, indices: Iterable[int]) -> np.ndarray:
        """Scores [len(indices), replicates]; every index must be present."""
        known = self._scores[(context, key)]
        return np.stack([known[int(i)] for i in indices])

    def put(self, context: str, key: str, indices: Iterable[int], scores: np.ndarray) -> None:
        rows = {int(i): np.asarray(s, dtype=np.float64) for i, s in zip(indices, scores, strict=True)}
        with self._lock:
            self._put(context, key, rows)
            if self._path is not None:
                line = {"context": context, "schedule": key, "scores": {str(k): v.tolist() for k, v in rows.items()}}
                with self._path.open("a") as handle:
                    handle.write(json.dumps(line) + "\n")

    def __len__(self) -> int:
        return sum(len(v) for v in self._scores.values())


def context_key(**parts: object) -> str:
    """A stable string of the non-schedule parts of the key (checkpoint sha, eval set sha, N, settings, seed...)."""
    return json.dumps(parts, sort_keys=True, default=str)


def path_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents, sorted): a checkpoint's identity."""
    root = Path(path)
    digest = hashlib.sha256()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(root) if file != root else file.name).encode())
        with file.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def denoiser_fingerprint(denoiser: object) -> str:
    """sha256 of a loaded model's parameters and buffers (names, dtypes, bytes); the object id when it has none."""
    module = getattr(denoiser, "module", None)
    if module is None:
        return f"object-{id(denoiser)}"
    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(str(tensor.dtype).encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
