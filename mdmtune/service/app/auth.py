"""API-key authentication: `Authorization: Bearer <key>`, checked against the stored sha256 of each key.

Keys are required unless the operator switched them off or the embedded server only listens on loopback
(`Settings.api_key_required`); then everything belongs to the local owner. Keys are created with
`mdmtune keys create` (mdmtune.service.db.apikeys), which shows the secret once and stores only its hash.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from mdmtune.service.app.problems import Problem
from mdmtune.service.db.apikeys import find_api_key, hash_secret
from mdmtune.service.db.models import LOCAL_OWNER
from mdmtune.service.settings import Settings

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="mdmtune"'}


def bearer_token(header: str | None) -> str:
    """The key from an Authorization header; 401 naming the header when it is missing or not Bearer."""
    if not header:
        raise Problem(401, "missing API key: send 'Authorization: Bearer <key>'", "Authorization", _CHALLENGE)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "the Authorization header must be 'Bearer <key>'", "Authorization", _CHALLENGE)
    return token.strip()


class KeyCache:
    """Recently verified keys (by the secret's sha256) -> owner, for `ttl_seconds`.

    A poller sends the same key every second; looking it up every time doubled the database work of a GET. The
    price: a revoked key keeps working for at most `ttl_seconds` on each API process. Unknown keys are never cached.
    """

    def __init__(self, ttl_seconds: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> str | None:
        with self._lock:
            entry = self._entries.get(digest)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, digest: str, owner: str) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[digest] = (owner, time.monotonic() + self.ttl_seconds)


def owner_from_cache(header: str | None, settings: Settings, cache: KeyCache) -> tuple[str | None, str]:
    """(owner, token): the owner when known without the database (keys off, or a recently verified key)."""
    if not settings.api_key_required:
        return LOCAL_OWNER, ""
    token = bearer_token(header)
    return cache.get(hash_secret(token)), token


def owner_from_database(token: str, sessions: sessionmaker[Session], cache: KeyCache) -> str:
    """Look the key up (blocking: call it off the event loop); 401 for an unknown or revoked key."""
    with sessions() as session:
        key = find_api_key(session, token)
    if key is None:
        raise Problem(401, "unknown or revoked API key", "Authorization", _CHALLENGE)
    cache.put(hash_secret(token), key.id)
    return key.id
