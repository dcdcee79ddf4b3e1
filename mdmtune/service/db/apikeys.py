"""API keys: create one (the secret is returned once), find the live key a secret belongs to, revoke one.

Secrets are `mdmt_` + 43 url-safe chars (256 random bits); only the sha256 is stored, so a leaked database does not
leak usable keys. Comparing hashes through an indexed unique column is constant-time enough: the attacker does not
control the stored side.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from mdmtune.data.jsonsafe import unstorable_text
from mdmtune.errors import InvalidInput
from mdmtune.service.db.models import ApiKey

KEY_PREFIX = "mdmt_"
MAX_NAME_LENGTH = ApiKey.__table__.c.name.type.length
"""A key's name is at most this long (the column's width: Postgres refused longer names with a traceback)."""


def hash_secret(secret: str) -> str:
    """sha256 hex of the secret as sent in `Authorization: Bearer <secret>`."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_api_key(session: Session, name: str) -> tuple[ApiKey, str]:
    """Insert a new key named `name` (not committed) and return the row and the secret to show once."""
    if not name.strip():
        raise InvalidInput("name", "must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput("name", f"must be at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    if reason := unstorable_text(name):
        raise InvalidInput("name", reason)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, key_hash=hash_secret(secret), prefix=secret[: len(KEY_PREFIX) + 4])
    session.add(row)
    session.flush()
    return row, secret


def find_api_key(session: Session, secret: str) -> ApiKey | None:
    """The live (not revoked) key with this secret, or None."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(secret)))
    return row if row is not None and not row.revoked else None


def revoke_api_key(session: Session, key_id: str) -> ApiKey:
    """Mark the key with this id revoked (not committed); the API refuses it from then on (within the few seconds
    an API process caches a verified key). InvalidInput naming `key_id` when there is no such key."""
    row = session.get(ApiKey, key_id) if key_id and not unstorable_text(key_id) else None
    if row is None:
        raise InvalidInput("key_id", f"no API key with id {key_id!r} (the id `mdmtune keys create` printed)")
    row.revoked = True
    session.flush()
    return row
