"""API-key authentication: `Authorization: Bearer <key>`, checked against the stored sha256 of each key.

Keys are required unless the operator switched them off or the embedded server only listens on loopback
(`Settings.api_key_required`); then everything belongs to the local owner. Keys are created with
`mdmtune keys create` (mdmtune.db.apikeys), which shows the secret once and stores only its hash.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from mdmtune.app.problems import Problem
from mdmtune.db.apikeys import find_api_key
from mdmtune.db.models import LOCAL_OWNER
from mdmtune.settings import Settings

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="mdmtune"'}


def bearer_token(header: str | None) -> str:
    """The key from an Authorization header; 401 naming the header when it is missing or not Bearer."""
    if not header:
        raise Problem(401, "missing API key: send 'Authorization: Bearer <key>'", "Authorization", _CHALLENGE)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "the Authorization header must be 'Bearer <key>'", "Authorization", _CHALLENGE)
    return token.strip()


def authenticate(header: str | None, settings: Settings, session: Session) -> str:
    """The owner id for this request: the key's id, or LOCAL_OWNER when keys are not required."""
    if not settings.api_key_required:
        return LOCAL_OWNER
    token = bearer_token(header)
    key = find_api_key(session, token)
    if key is None:
        raise Problem(401, "unknown or revoked API key", "Authorization", _CHALLENGE)
    return key.id
