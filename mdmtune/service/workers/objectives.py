"""What a job runs on (mdmtune.tuning.lifecycle.JobInputs): its checkpoint and eval sets, loaded once per sha256.

Loading a checkpoint is the slow part of a quality job, so a worker keeps the last few loaded models by the sha256
of their bytes (`Settings.model_cache_size`): several jobs on one checkpoint load it once; eval sets are parsed once
per worker likewise. The objectives themselves are built by the library's lifecycle (`prepare`), as `mdmtune tune`
builds them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from mdmtune.errors import InvalidInput
from mdmtune.service.db.models import Checkpoint, EvalSetRow, Job
from mdmtune.service.settings import Settings

if TYPE_CHECKING:
    from mdmtune.data.evalsets import EvalSet
    from mdmtune.models.base import Denoiser
    from mdmtune.tuning.cache import ScoreCache
    from mdmtune.tuning.lifecycle import JobInputs
    from mdmtune.tuning.spec import TuneSpec


class ObjectiveCache:
    """The inputs of jobs; keeps loaded denoisers by checkpoint sha256 and eval sets by sha256 (LRU)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._models: OrderedDict[tuple[str, str, str], Denoiser] = OrderedDict()
        self._eval_sets: OrderedDict[str, EvalSet] = OrderedDict()
        self._lock = threading.Lock()

    def inputs(self, spec: TuneSpec, job: Job, sessions: sessionmaker[Session], *, helper: bool = False) -> JobInputs:
        """What the job runs on (lifecycle.JobInputs): its loaded checkpoint and eval sets, and for a quality job's
        lease holder the job's score file. A helper gets neither the score file (only the lease holder appends to
        it) nor the second eval set (it only searches)."""
        from mdmtune.tuning.lifecycle import JobInputs

        if spec.objective == "energy":
            return JobInputs()
        checkpoint, eval_set = self.rows(job, sessions)
        keeps_scores = spec.objective == "quality" and not helper
        return JobInputs(
            checkpoint=self.denoiser(checkpoint, spec.family),
            eval_set=self.eval_set(eval_set),
            validate_eval_set=None if helper else self.validation_set(job, sessions),
            cache=self.score_cache(job) if keeps_scores else None,
            checkpoint_sha=checkpoint.sha256,
        )

    def validation_set(self, job: Job, sessions: sessionmaker[Session]) -> EvalSet | None:
        """The job's second eval set (loaded), or None when it has none."""
        if not job.validate_eval_set_id:
            return None
        with sessions() as session:
            row = session.get(EvalSetRow, job.validate_eval_set_id)
        if row is None:
            raise InvalidInput("validate_eval_set_id", f"eval set {job.validate_eval_set_id!r} is gone")
        return self.eval_set(row)

    def score_cache(self, job: Job) -> ScoreCache:
        """Per-record scores of this job in a JSON Lines file beside the artifacts: a worker that resumes the job
        (after a crash, on another machine sharing the artifact folder) pays no model call for what was scored.
        One file per job: only the lease holder writes it."""
        from mdmtune.tuning.cache import ScoreCache

        folder = self.settings.resolved_artifact_dir / "score-cache"
        folder.mkdir(parents=True, exist_ok=True)
        return ScoreCache(folder / f"{job.id}.jsonl")

    def rows(self, job: Job, sessions: sessionmaker[Session]) -> tuple[Checkpoint, EvalSetRow]:
        """The job's checkpoint and eval set rows; InvalidInput naming the one that is gone."""
        with sessions() as session:
            checkpoint = session.get(Checkpoint, job.checkpoint_id) if job.checkpoint_id else None
            eval_set = session.get(EvalSetRow, job.eval_set_id) if job.eval_set_id else None
        if checkpoint is None:
            raise InvalidInput("checkpoint_id", f"checkpoint {job.checkpoint_id!r} is gone")
        if eval_set is None:
            raise InvalidInput("eval_set_id", f"eval set {job.eval_set_id!r} is gone")
        return checkpoint, eval_set

    def artifact_path(self, stored: str) -> Path:
        """Stored paths are relative to the artifact dir (absolute ones: operator-allowed server-side uris)."""
        path = Path(stored)
        return path if path.is_absolute() else self.settings.resolved_artifact_dir / path

    def denoiser(self, row: Checkpoint, family: str = "auto") -> Denoiser:
        from mdmtune.models.loading import load_denoiser

        key = (row.sha256, row.format, family)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        device = None if self.settings.device == "auto" else self.settings.device
        model = load_denoiser(
            self.artifact_path(row.path),
            format=row.format,
            device=device,
            trust_remote_code=self.settings.trust_remote_code,
            family=family,
        )
        with self._lock:
            self._models[key] = model
            while len(self._models) > self.settings.model_cache_size:
                self._models.popitem(last=False)
        return model

    def eval_set(self, row: EvalSetRow) -> EvalSet:
        """The row's records, parsed once per worker (by sha256)."""
        from mdmtune.data.evalsets import load_eval_set

        with self._lock:
            if row.sha256 in self._eval_sets:
                self._eval_sets.move_to_end(row.sha256)
                return self._eval_sets[row.sha256]
        loaded = load_eval_set(self.artifact_path(row.path))
        with self._lock:
            self._eval_sets[row.sha256] = loaded
            while len(self._eval_sets) > 8:
                self._eval_sets.popitem(last=False)
        return loaded
