"""Does a quality job fit its checkpoint and eval set? Checked at POST time, so a bad job is a 422, not a failed run.

What is checked: the metric can score every record (e.g. numeric answers for numeric_match), completion records
have a gen_length, and the checkpoint's own limits (mask token present, prompt + gen_length within its context)
through the model library's cheap inspection (config and tokenizer only, no weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mdmtune.db.models import Checkpoint, EvalSet
from mdmtune.errors import InvalidInput
from mdmtune.evalsets import load_eval_set
from mdmtune.metrics import get_metric
from mdmtune.tuning.spec import TuneSpec

if TYPE_CHECKING:
    from mdmtune.app.deps import Services


def artifact_path(services: Services, stored: str) -> Path:
    """A row's path: relative ones live under the artifact folder, absolute ones are operator-allowed uris."""
    path = Path(stored)
    return path if path.is_absolute() else services.store.root / path


def check_against_artifacts(spec: TuneSpec, checkpoint: Checkpoint, eval_set: EvalSet, services: Services) -> TuneSpec:
    """Raise InvalidInput naming the request field that does not fit; return the spec unchanged."""
    records = load_eval_set(artifact_path(services, eval_set.path)).records
    try:
        get_metric(spec.metric).check_records(records)
    except InvalidInput as error:
        raise InvalidInput("metric", f"{spec.metric} cannot score this eval set: {error.message}") from None
    if eval_set.kind == "completion" and spec.gen_length is None:
        raise InvalidInput("gen_length", "required for a completion eval set (tokens generated after the prompt)")
    _check_model_limits(spec, checkpoint, records, services)
    return spec


def _check_model_limits(spec: TuneSpec, checkpoint: Checkpoint, records: tuple, services: Services) -> None:
    from mdmtune.models.loading import check_job_fits

    check_job_fits(
        artifact_path(services, checkpoint.path),
        spec,
        records,
        trust_remote_code=services.settings.trust_remote_code,
    )
