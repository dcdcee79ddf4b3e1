"""Does a quality job fit its checkpoint and eval set? Checked at POST time, so a bad job is a 422 naming the field,
not a job that fails minutes later in a worker.

The check is the library's own: the quality objective is built exactly as the worker will build it
(`mdmtune.tuning.api.build_objective`), which validates the metric against the records, gen_length, the mask
symbol and prompt + gen_length against the model's context. Only the cheap eval-set checks run before the model is
loaded. Loaded checkpoints are kept by sha256 (the worker's `ObjectiveCache`), so repeated jobs load once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mdmtune.db.models import Checkpoint, EvalSet
from mdmtune.errors import InvalidInput
from mdmtune.metrics import get_metric, resolve_metric
from mdmtune.tuning.spec import TuneSpec

if TYPE_CHECKING:
    from mdmtune.app.deps import Services


def check_against_artifacts(spec: TuneSpec, checkpoint: Checkpoint, eval_set: EvalSet, services: Services) -> TuneSpec:
    """Raise InvalidInput naming the request field that does not fit; return the spec with its metric filled in
    (the eval set's declared one when the request names none)."""
    from mdmtune.tuning.api import build_objective

    cache = services.objective_cache
    records = cache.eval_set(eval_set)
    spec = spec.replace(metric=resolve_metric(spec.metric, records).name)  # the job shows the metric it scores by
    if eval_set.kind == "completion" and spec.gen_length is None:
        raise InvalidInput("gen_length", "required for a completion eval set (tokens generated after the prompt)")
    build_objective(spec, checkpoint=cache.denoiser(checkpoint, spec.family), eval_set=records)
    return spec


def check_validation_set(spec: TuneSpec, eval_set: EvalSet, second: EvalSet, services: Services) -> None:
    """The second eval set of a quality job must be of the tuning set's kind and scorable by its metric; the rest
    (mask symbol, lengths) is checked by the worker before the search, naming validate_eval_set_id."""
    if second.kind != eval_set.kind:
        raise InvalidInput(
            "validate_eval_set_id", f"holds {second.kind} records, the tuning eval set {eval_set.kind} records"
        )
    records = services.objective_cache.eval_set(second)
    try:
        get_metric(spec.metric).check_records(records.records)
    except InvalidInput as error:
        raise InvalidInput("validate_eval_set_id", f"{spec.metric} cannot score it: {error.message}") from None
