"""What every route gets injected: the app's services (settings, sessions, store) and the caller's identity.

One `Services` object per app, built by `create_app`, so nothing reads the environment or a global inside a route.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mdmtune.data.jsonsafe import unstorable_text
from mdmtune.service.app.auth import KeyCache, owner_from_cache, owner_from_database
from mdmtune.service.app.problems import Problem
from mdmtune.service.app.store import ArtifactStore
from mdmtune.service.settings import Settings


@dataclass
class Services:
    """Long-lived objects of one running app."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ArtifactStore
    in_flight: set[tuple[str, str]] = field(default_factory=set)
    """(owner, Idempotency-Key) pairs whose first POST is still being processed in this process (-> 409)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    keys: KeyCache = field(default_factory=KeyCache)

    @cached_property
    def optuna_storage(self):
        from mdmtune.service.db.session import optuna_storage

        return optuna_storage(self.settings.resolved_database_url)


async def get_services(request: Request) -> Services:
    """async (no I/O): a sync dependency would cost a threadpool round trip on every request."""
    return request.app.state.services


async def current_owner(request: Request, services: Services = Depends(get_services)) -> str:
    """The owner id the caller acts as (its API key's id, or the local owner when keys are not required).

    On the event loop when the answer is cached; only a key not seen for a few seconds goes to the database, in
    the threadpool. (Sessions are opened and closed inside functions, never held by a `yield` dependency: such a
    dependency's teardown needs a free threadpool thread to give its connection back, and under load every thread
    can be waiting for a connection, a deadlock until the pool times out.)
    """
    owner, token = owner_from_cache(request.headers.get("authorization"), services.settings, services.keys)
    if owner is not None:
        return owner
    return await run_in_threadpool(owner_from_database, token, services.sessions, services.keys)


PATH_FIELDS = {"job_id": "id"}
"""How a problem names a path parameter (the same name its 404 uses)."""


async def storable_url(request: Request) -> None:
    """Every route's first dependency: a path segment, a query parameter or a header that holds text a database
    cannot store (a NUL character, a lone surrogate) is a 422 naming it, before anything looks it up. Postgres
    refuses NUL in text columns and answered 500; the body's strings are checked by their schema (`schemas.Text`)."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and (reason := unstorable_text(value)):
            raise Problem(422, f"path segment {reason}", PATH_FIELDS.get(name, name))
    for name, value in request.query_params.multi_items():
        if reason := unstorable_text(name) or unstorable_text(value):
            raise Problem(422, f"query parameter {reason}", name)
    for name, value in request.headers.items():
        if reason := unstorable_text(value):
            raise Problem(422, f"header {reason}", name)
