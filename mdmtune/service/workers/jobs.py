"""Jobs: the one module that submits, cancels and lists them, and checks a quality job against its artifacts.

Used alike by the HTTP routes, the workers' tests, the benchmarks and the demo (through the HTTP API), so a job made
any way is made the same way: validated (the `TuneSpec` checks itself when made, then the artifacts' stored
metadata), its Optuna study created with the baselines enqueued once, then its queued row committed.

The checks read what was stored at upload (the checkpoint's declared conventions, `checkpoints.meta`; the eval
set's facts, `eval_sets.facts`) and never load a model or parse an eval set (but once for a row stored before
facts were kept): an API node with no worker must stay light. What only a loaded model can
tell (how a prompt tokenizes, custom model code) is checked by the worker, and fails the job naming the field.

Trials live only in Optuna's tables (no project `trials` table, see mdmtune.service.db.models): Optuna is the single
source of truth, and optuna-dashboard shows the same rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import optuna
from optuna.trial import TrialState
from sqlalchemy import update
from sqlalchemy.orm import Session

from mdmtune.data.jsonsafe import to_jsonable
from mdmtune.errors import InvalidInput
from mdmtune.service.db.models import LOCAL_OWNER, Checkpoint, EvalSetRow, Job, JobStatus, new_id, utcnow
from mdmtune.tuning.spec import TuneSpec

if TYPE_CHECKING:
    from mdmtune.data.evalsets import EvalSet
    from mdmtune.models.metadata import CheckpointInfo
    from mdmtune.tuning.evalset_facts import EvalSetFacts

Row = TypeVar("Row", Checkpoint, EvalSetRow)

MODEL_OBJECTIVES = ("quality", "frontier")
"""Objectives that sample a checkpoint on an eval set (energy needs neither)."""


class JobConflict(Exception):
    """The job is in a state that does not allow the action (cancelling a finished job)."""


def list_trials(storage: optuna.storages.BaseStorage, study_name: str) -> list[dict[str, Any]]:
    """Every trial that ran or runs (not WAITING ones), by number: number, state, a, b, value, user_attrs.

    An unknown study (not created yet, or deleted) has no trials. Non-finite values are written "inf"/"-inf"/"nan".
    """
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return []
    rows = []
    for trial in storage.get_all_trials(study_id, deepcopy=False):
        if trial.state == TrialState.WAITING:
            continue
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "a": trial.params.get("a"),
                "b": trial.params.get("b"),
                "value": to_jsonable(trial.value),
                "user_attrs": to_jsonable(dict(trial.user_attrs)),
            }
        )
    return sorted(rows, key=lambda row: row["number"])


def owned_row(session: Session, model: type[Row], item_id: str | None, owner: str, field: str) -> Row:
    """The caller's checkpoint or eval set row; InvalidInput naming `field` when missing or another owner's."""
    if item_id is None:
        raise InvalidInput(field, "required for objective=quality")
    row = session.get(model, item_id)
    if row is None or row.owner_key_id != owner:
        raise InvalidInput(field, f"no such {field.removesuffix('_id').replace('_', ' ')}: {item_id!r}")
    return row


def checkpoint_info(row: Checkpoint, artifact_dir: Path) -> CheckpointInfo:
    """The checkpoint's stored declarations (read from its files now for a row stored before they were kept)."""
    from mdmtune.models.metadata import CheckpointInfo, read_checkpoint_info

    if row.meta:
        return CheckpointInfo.from_json(row.meta)
    return read_checkpoint_info(_artifact_path(row.path, artifact_dir), row.format)


def _artifact_path(stored: str, artifact_dir: Path) -> Path:
    path = Path(stored)
    return path if path.is_absolute() else Path(artifact_dir) / path


def check_against_artifacts(
    spec: TuneSpec, info: CheckpointInfo, facts: EvalSetFacts, records: Callable[[], EvalSet]
) -> TuneSpec:
    """Does a quality job fit its checkpoint (its declared conventions) and eval set? InvalidInput naming the field.

    Checks the metric against the records, gen_length against the model's maximum length, and steps against what
    a record generates: gen_length tokens (completion) or its mask symbols (infill); more steps than that would
    commit nothing at most of them and only cost time. Reads the eval set's facts (an infill set's must count the
    job's mask symbol: `_Artifacts.facts`); `records()` only for a metric whose check is not a fact.
    """
    spec = spec.replace(metric=facts.resolve_metric(spec.metric, records))  # the job shows the metric it scores by
    steps = max(spec.steps_list)
    if facts.kind == "completion":
        if spec.gen_length is None:
            raise InvalidInput("gen_length", "required for a completion eval set (tokens generated after the prompt)")
        if info.max_length is not None and spec.gen_length >= info.max_length:
            raise InvalidInput(
                "gen_length", f"{spec.gen_length} leaves no room for a prompt in the model's {info.max_length} tokens"
            )
        return spec
    symbol = mask_symbol(spec, info)
    if symbol is None:
        raise InvalidInput("mask_symbol", "the checkpoint names no mask token text: give the infill mask symbol")
    masks = facts.mask_counts[symbol]
    if masks.first_without is not None:
        raise InvalidInput("eval_set", f"line {masks.first_without}: no mask symbol {symbol!r} in the masked text")
    largest = masks.largest
    if steps > largest and spec.objective == "quality":
        raise InvalidInput("steps", f"{steps} is more than the eval set's largest masked count, {largest}")
    if info.max_length is not None and largest > info.max_length:
        raise InvalidInput("eval_set_id", f"a record has {largest} masks, more than the model's {info.max_length}")
    return spec


def mask_symbol(spec: TuneSpec, info: CheckpointInfo) -> str | None:
    """The text that marks a blank in an infill record: the job's, else the checkpoint's mask token (if it names
    one)."""
    return spec.mask_symbol if spec.mask_symbol is not None else info.mask_token


def submit_job(
    session: Session,
    storage: optuna.storages.BaseStorage,
    spec: TuneSpec,
    *,
    owner_key_id: str = LOCAL_OWNER,
    checkpoint_id: str | None = None,
    eval_set_id: str | None = None,
    validate_eval_set_id: str | None = None,
    artifact_dir: Path | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    timeout_seconds: float | None = None,
) -> Job:
    """Validate the job, create its Optuna study (baselines enqueued once, here) and its queued row; commit.

    A quality job's checkpoint and eval set must be `owner_key_id`'s; they are checked against the spec with
    `check_against_artifacts`, on what their upload stored (an eval set's facts, read from its file under
    `artifact_dir` only for a row stored before facts were kept). The study is created first and in its own
    transactions: on SQLite, holding the row's write transaction open while Optuna writes through its own connection
    would wait on ourselves. If the row cannot be committed (say, an Idempotency-Key race lost on the unique
    constraint), the study is deleted again and the IntegrityError raised.
    """
    from mdmtune.options.limits import MAX_TIMEOUT_SECONDS
    from mdmtune.tuning.search import create_study

    if len(spec.steps_list) != 1 and spec.objective != "frontier":
        raise InvalidInput("steps", "a service job tunes one step count; submit one job per step count")
    if timeout_seconds is not None and not 0 < timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise InvalidInput("timeout_seconds", f"must be > 0 and at most {MAX_TIMEOUT_SECONDS:g} (a week)")
    if spec.objective in MODEL_OBJECTIVES:
        artifacts = _Artifacts(session, owner_key_id, artifact_dir)
        spec = artifacts.check(spec, checkpoint_id, eval_set_id, validate_eval_set_id)
    else:
        _refuse_artifacts(
            checkpoint_id=checkpoint_id, eval_set_id=eval_set_id, validate_eval_set_id=validate_eval_set_id
        )
    job_id = new_id()
    study_name = f"mdmtune-job-{job_id}"
    if spec.objective != "frontier":  # a frontier job runs one in-memory search per budget, in its worker
        create_study(spec, storage, study_name)
    job = Job(
        id=job_id,
        owner_key_id=owner_key_id,
        status=JobStatus.queued.value,
        objective=spec.objective,
        request=spec.to_dict(),
        checkpoint_id=checkpoint_id,
        eval_set_id=eval_set_id,
        validate_eval_set_id=validate_eval_set_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        study_name=study_name,
        n_trials=spec.trials * len(spec.steps_list),  # a frontier job runs one search per budget (spec.budgets)
        timeout_seconds=timeout_seconds,
    )
    return _commit(session, storage, job)


def _refuse_artifacts(**named: str | None) -> None:
    """An energy job names no checkpoint or eval set: InvalidInput naming the first one given."""
    for field, value in named.items():
        if value is not None:
            raise InvalidInput(field, "an energy job uses no checkpoint or eval set")


def _commit(session: Session, storage: optuna.storages.BaseStorage, job: Job) -> Job:
    """Commit the job's row; if that fails, delete its study again (nothing half-made is left) and raise."""
    study_name = job.study_name  # read before the commit: a rollback may expire the row's attributes
    session.add(job)
    try:
        session.commit()
    except BaseException:
        session.rollback()
        with contextlib.suppress(Exception):
            optuna.delete_study(study_name=study_name, storage=storage)
        raise
    return job


class _Artifacts:
    """The caller's checkpoint and eval sets of a job, read from what upload stored (never a model, and an eval
    set's file only for what its stored facts do not hold)."""

    def __init__(self, session: Session, owner: str, artifact_dir: Path | None) -> None:
        if artifact_dir is None:
            raise ValueError("artifact_dir is needed to check a job against its artifacts")
        self.session, self.owner, self.artifact_dir = session, owner, Path(artifact_dir)
        self._parsed: dict[str, EvalSet] = {}

    def records(self, row: EvalSetRow) -> EvalSet:
        """The row's records, parsed from its file at most once per submission."""
        from mdmtune.data.evalsets import load_eval_set

        if row.id not in self._parsed:
            self._parsed[row.id] = load_eval_set(_artifact_path(row.path, self.artifact_dir))
        return self._parsed[row.id]

    def facts(self, row: EvalSetRow, symbol: str | None = None) -> EvalSetFacts:
        """The row's stored facts, counting `symbol`. A row stored before facts were kept (or by a version that
        computed them differently), or one whose facts do not count `symbol`, is read from its file once and its
        facts stored, so the next submission reads none."""
        from mdmtune.tuning.evalset_facts import EvalSetFacts

        facts = EvalSetFacts.stored(row.kind, row.record_count, row.facts)
        wanted = symbol if row.kind == "infill" else None
        if facts is not None and (wanted is None or wanted in facts.mask_counts):
            return facts
        records = self.records(row)
        facts = facts or EvalSetFacts.of(records)
        if wanted is not None and wanted not in facts.mask_counts:
            facts = facts.with_mask_symbol(wanted, records)
        self.session.execute(update(EvalSetRow).where(EvalSetRow.id == row.id).values(facts=facts.to_json()))
        self.session.commit()
        return facts

    def check(
        self, spec: TuneSpec, checkpoint_id: str | None, eval_set_id: str | None, validate_eval_set_id: str | None
    ) -> TuneSpec:
        """The spec with its metric resolved (the eval set's declared one when none is named), or InvalidInput."""
        checkpoint = owned_row(self.session, Checkpoint, checkpoint_id, self.owner, "checkpoint_id")
        eval_set = owned_row(self.session, EvalSetRow, eval_set_id, self.owner, "eval_set_id")
        second = None
        if validate_eval_set_id is not None:
            if spec.objective != "quality":
                raise InvalidInput("validate_eval_set_id", "only a quality job re-scores on a second eval set")
            second = owned_row(self.session, EvalSetRow, validate_eval_set_id, self.owner, "validate_eval_set_id")
        self.session.commit()  # end the read transaction: an old row's facts may take a moment to compute
        info = checkpoint_info(checkpoint, self.artifact_dir)
        facts = self.facts(eval_set, mask_symbol(spec, info))
        spec = check_against_artifacts(spec, info, facts, lambda: self.records(eval_set))
        if second is not None:
            check_validation_set(spec, eval_set, second, self.facts(second), lambda: self.records(second))
        return spec


def check_validation_set(
    spec: TuneSpec, eval_set: EvalSetRow, second: EvalSetRow, facts: EvalSetFacts, records: Callable[[], EvalSet]
) -> None:
    """The second eval set of a quality job must be of the tuning set's kind and scorable by its metric; the rest
    (mask symbol, lengths) is checked by the worker before the search, naming validate_eval_set_id."""
    if second.kind != eval_set.kind:
        raise InvalidInput(
            "validate_eval_set_id", f"holds {second.kind} records, the tuning eval set {eval_set.kind} records"
        )
    problem = facts.metric_problem(spec.metric, records)
    if problem is not None:
        raise InvalidInput("validate_eval_set_id", f"{spec.metric} cannot score it: {problem.message}")


def cancel_job(session: Session, job: Job) -> Job:
    """A queued job is cancelled at once; a running one at its worker's next model batch; a finished one raises
    JobConflict. Returns the refreshed row."""
    if job.status in (JobStatus.succeeded.value, JobStatus.failed.value):
        raise JobConflict(f"job already {job.status}")
    now = utcnow()
    session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.queued.value)
        .values(status=JobStatus.cancelled.value, cancel_requested=True, finished_at=now, updated_at=now)
    )
    session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.running.value)
        .values(cancel_requested=True, updated_at=now)
    )
    session.commit()
    session.refresh(job)
    return job
