"""Eval-set facts: computed once from the records, they refuse a job exactly as reading the records does, and a
submission reads them instead of the file (a row stored before facts were kept gets them on its first submission)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from mdmtune.data.evalsets import parse_eval_set
from mdmtune.errors import InvalidInput
from mdmtune.metrics import METRIC_NAMES, resolve_metric
from mdmtune.service.db import make_engine, make_session_factory, optuna_storage
from mdmtune.service.db.models import EvalSetRow
from mdmtune.service.workers.jobs import submit_job
from mdmtune.tuning.evalset_facts import FACTS_VERSION, EvalSetFacts, MaskCount
from mdmtune.tuning.spec import TuneSpec

COMPLETION = parse_eval_set(
    b'{"id": 1, "prompt": "1+1=", "answer": "2"}\n'
    b'{"id": 2, "prompt": "2+2=", "answer": "four"}\n'
    b'{"id": 3, "prompt": "3+3=", "answer": ""}\n'
)
INFILL = parse_eval_set(
    b'{"masked": "1+1=_", "answer": "1+1=2", "metric": "exact_match"}\n'
    b'{"masked": "[MASK]+2=__", "answer": "20+2=22", "metric": "exact_match"}\n'
)


def test_facts_hold_the_declared_metric_and_every_symbols_counts():
    facts = EvalSetFacts.of(INFILL)
    assert (facts.kind, facts.record_count, facts.declared_metric) == ("infill", 2, "exact_match")
    assert facts.mask_counts["_"] == MaskCount(largest=2, first_without=None)
    assert facts.mask_counts["[MASK]"] == MaskCount(largest=1, first_without=1)
    assert facts.mask_counts["+"] == MaskCount(largest=1, first_without=None)
    assert "?" not in facts.mask_counts  # counted only when a job asks for it
    assert facts.with_mask_symbol("?", INFILL).mask_counts["?"] == MaskCount(largest=0, first_without=1)
    assert EvalSetFacts.of(COMPLETION).mask_counts == {}


@pytest.mark.parametrize("eval_set", [COMPLETION, INFILL], ids=["completion", "infill"])
def test_facts_survive_json_and_know_every_metric(eval_set):
    facts = EvalSetFacts.of(eval_set)
    assert set(facts.metrics) == set(METRIC_NAMES)  # math-verify is installed: no metric depends on this machine
    assert EvalSetFacts.from_json(facts.kind, facts.record_count, facts.to_json()) == facts


@pytest.mark.parametrize("name", [None, "no_such_metric", *METRIC_NAMES])
@pytest.mark.parametrize("eval_set", [COMPLETION, INFILL], ids=["completion", "infill"])
def test_facts_resolve_a_metric_exactly_as_the_records_do(eval_set, name):
    facts = EvalSetFacts.of(eval_set)

    def unread():
        raise AssertionError("the records were read")

    try:
        expected = resolve_metric(name, eval_set).name
    except InvalidInput as error:
        with pytest.raises(InvalidInput) as got:
            facts.resolve_metric(name, unread)
        assert (got.value.field, got.value.message) == (error.field, error.message)
    else:
        assert facts.resolve_metric(name, unread) == expected


@pytest.fixture
def rows(db_url, tmp_path):
    """A native checkpoint and an infill eval set stored the old way: a row without facts."""
    from apiartifacts import stored_infill_rows

    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    ids = stored_infill_rows(sessions, tmp_path)
    yield sessions, optuna_storage(db_url), ids, tmp_path
    engine.dispose()


def _submit(rows, **changes):
    sessions, storage, (checkpoint_id, eval_set_id), root = rows
    spec = TuneSpec(objective="quality", steps=1, n_trials=2, metric="exact_match", mask_symbol="_").replace(**changes)
    with sessions() as session:
        return submit_job(
            session, storage, spec, checkpoint_id=checkpoint_id, eval_set_id=eval_set_id, artifact_dir=root
        )


def _stored_facts(rows) -> dict | None:
    sessions, _storage, (_checkpoint_id, eval_set_id), _root = rows
    with sessions() as session:
        return session.scalar(select(EvalSetRow.facts).where(EvalSetRow.id == eval_set_id))


def test_an_old_rows_facts_are_computed_at_its_first_submission_and_then_read_instead_of_the_file(rows):
    assert _stored_facts(rows) is None
    _submit(rows)
    facts = _stored_facts(rows)
    assert facts is not None and facts["mask_counts"]["_"] == [1, None]
    (rows[3] / "evals" / "set.jsonl").unlink()  # from now on a submission that reads the file fails
    job = _submit(rows, seed=1)
    assert job.request["metric"] == "exact_match"
    with pytest.raises(InvalidInput, match="more than the eval set's largest masked count, 1"):
        _submit(rows, steps=2)


def test_a_mask_symbol_the_facts_do_not_count_is_counted_once_and_stored(rows):
    _submit(rows)
    assert "X" not in _stored_facts(rows)["mask_counts"]
    with pytest.raises(InvalidInput, match="line 1: no mask symbol 'X'"):
        _submit(rows, mask_symbol="X")
    assert _stored_facts(rows)["mask_counts"]["X"] == [0, 1]


def test_facts_of_another_version_are_computed_again_once(rows):
    """Facts computed by a version whose checks differed (here: a wrong count, marked version 0) are not trusted."""
    sessions, _storage, (_checkpoint_id, eval_set_id), _root = rows
    _submit(rows)
    stale = dict(_stored_facts(rows), version=FACTS_VERSION - 1)
    stale["mask_counts"] = {"_": [9, None]}
    with sessions() as session:
        session.execute(update(EvalSetRow).where(EvalSetRow.id == eval_set_id).values(facts=stale))
        session.commit()
    with pytest.raises(InvalidInput, match="more than the eval set's largest masked count, 1"):
        _submit(rows, steps=2)  # the stale facts would have allowed 9
    facts = _stored_facts(rows)
    assert facts["version"] == FACTS_VERSION and facts["mask_counts"]["_"] == [1, None]
