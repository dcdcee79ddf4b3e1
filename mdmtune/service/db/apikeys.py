"""API keys: create one (the secret is returned once), find the live key a secret belongs to.

Secrets are `mdmt_` + 43 url-safe chars (256 random bits); only the sha256 is stored, so a leaked database does not
leak usable keys. Comparing hashes through an indexed unique column is constant-time enough: the attacker does not
control the stored side.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from mdmtune.service.db.models import ApiKey

KEY_PREFIX = "mdmt_"


def hash_secret(secret: str) -> str:
    """sha256 hex of the secret as sent in `Authorization: Bearer <secret>`."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_api_key(session: Session, name: str) -> tuple[ApiKey, str]:
    """Insert a new key named `name` (not committed) and return the row and the secret to show once."""
    if not name.strip():
        from mdmtune.errors import InvalidInput

        raise InvalidInput("name", "must not be empty")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, key_hash=hash_secret(secret), prefix=secret[: len(KEY_PREFIX) + 4])
    session.add(row)
    session.flush()
    return row, secret


def find_api_key(session: Session, secret: str) -> ApiKey | None:
    """The live (not revoked) key with this secret, or None."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(secret)))
    return row if row is not None and not row.revoked else None
