"""The one exception family of mdmtune.

Callers (the CLI, the HTTP service) map `InvalidInput` to "your request is wrong" (exit 2, HTTP 4xx) and every other
`MdmtuneError` to "we failed" (exit 1, HTTP 5xx). Messages name the field and the allowed values, because the person
reading them usually cannot see the code.
"""

from __future__ import annotations


class MdmtuneError(Exception):
    """Base class of every error mdmtune raises on purpose."""


class InvalidInput(MdmtuneError, ValueError):
    """The caller handed in something outside the allowed range; `field` names what."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class InternalError(MdmtuneError, RuntimeError):
    """Something that should not happen happened; the input was fine."""
