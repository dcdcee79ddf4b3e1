"""Which database errors are passing ones, and how a worker waits before trying again.

A dropped connection, a Postgres restart, a serialization failure or a deadlock, a locked SQLite file: none of them
says anything about the job, so a worker that meets one (in its own queries or inside Optuna's storage, which wraps
them in StorageInternalError) retries with backoff, and failing that gives the job back to the queue with its
finished trials. Only errors about the job itself (bad input, a model that does not load) fail it.
"""

from __future__ import annotations

import logging
import random
import sqlite3
from collections.abc import Callable
from typing import TypeVar

import optuna
from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)
T = TypeVar("T")

_SQLSTATE_TRANSIENT = ("08", "40", "53", "57P01", "57P02", "57P03")
"""Postgres error classes: connection exceptions, transaction rollbacks (serialization failure, deadlock),
insufficient resources, and the admin/crash shutdown codes (pg_terminate_backend is 57P01)."""


def _sqlstate(error: BaseException) -> str | None:
    return getattr(error, "sqlstate", None) or getattr(getattr(error, "orig", None), "sqlstate", None)


def _one_is_transient(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    state = _sqlstate(error)
    if state and state.startswith(_SQLSTATE_TRANSIENT):
        return True
    if isinstance(error, (sa_exc.OperationalError, sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return True  # OperationalError: the server went away, refused, or (SQLite) is locked
    if isinstance(error, sqlite3.OperationalError):
        return "locked" in str(error) or "busy" in str(error)
    module = type(error).__module__
    return module.startswith("psycopg") and type(error).__name__ in ("OperationalError", "InterfaceError")


def is_transient(error: BaseException) -> bool:
    """True when `error`, or an error it was raised from, is a passing database fault (see the module doc)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _one_is_transient(current):
            return True
        if isinstance(current, optuna.exceptions.StorageInternalError) and current.__cause__ is None:
            return False
        current = current.__cause__ or current.__context__
    return False


def backoff_delays(first: float = 0.2, cap: float = 10.0, factor: float = 2.0) -> Callable[[int], float]:
    """Delay before retry n (0-based): exponential with full jitter, so workers that failed together spread out."""

    def delay(attempt: int) -> float:
        return random.uniform(0, min(cap, first * factor**attempt))

    return delay


def retry_transient(
    action: Callable[[], T],
    *,
    what: str,
    give_up_after_s: float,
) -> T:
    """Run `action`, retrying it with backoff while it fails with a transient error, for up to `give_up_after_s`;
    then (or on any other error) the error is raised."""
    import time

    delay = backoff_delays()
    deadline = time.monotonic() + give_up_after_s
    attempt = 0
    while True:
        try:
            return action()
        except Exception as error:
            if not is_transient(error) or time.monotonic() >= deadline:
                raise
            wait = min(delay(attempt), max(0.0, deadline - time.monotonic()))
            log.warning("%s: transient database error, retrying in %.1f s: %s", what, wait, error)
            attempt += 1
            time.sleep(wait)
