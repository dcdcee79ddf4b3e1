"""Idempotency-Key on POST /v1/tune (IETF httpapi draft): a retried POST returns the job the first one made.

- same key, same body -> the first job (no second job);
- same key, different body -> 422 naming the Idempotency-Key header;
- same key while the first request is still being processed -> 409.
The database's unique (owner, key) constraint is what makes this hold across API processes; the in-flight set only
turns the "still processing" window of this process into a clear 409 instead of a wait.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mdmtune.data.jsonsafe import unstorable_text
from mdmtune.service.app.deps import Services
from mdmtune.service.app.problems import Problem
from mdmtune.service.db.models import Job

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def body_hash(body: dict[str, Any]) -> str:
    """sha256 of the request as parsed (key order and white space do not matter, values do)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise Problem(422, f"must be 1..{MAX_KEY_LENGTH} characters", HEADER)
    if reason := unstorable_text(key):
        raise Problem(422, reason, HEADER)
    return key


@contextmanager
def first_request(services: Services, owner: str, key: str | None) -> Iterator[None]:
    """Mark (owner, key) as being processed; 409 if it already is."""
    if key is None:
        yield
        return
    token = (owner, key)
    with services.lock:
        if token in services.in_flight:
            raise Problem(409, "a request with this Idempotency-Key is still being processed; retry later", HEADER)
        services.in_flight.add(token)
    try:
        yield
    finally:
        with services.lock:
            services.in_flight.discard(token)


def earlier_job(session: Session, owner: str, key: str | None, digest: str) -> Job | None:
    """The job an earlier request with this key made, or None; 422 if that request had another body."""
    if key is None:
        return None
    job = session.scalars(select(Job).where(Job.owner_key_id == owner, Job.idempotency_key == key)).first()
    if job is not None and job.request_hash != digest:
        raise Problem(422, "this Idempotency-Key was used with a different request body", HEADER)
    return job
