"""JSON helpers of the core: plain JSON values from results, and a nesting limit for JSON read from users.

Why here and not in the CLI or the service: both write results (the CLI's `--json`, the service's job rows and
trial pages), and both must write infinities the same way (the string "inf", never a bare `Infinity` that strict
JSON parsers refuse). One function does the non-finite conversion; everything else calls it.
Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any

import numpy as np

MAX_JSON_DEPTH = 64
"""Deepest nesting accepted in JSON that users hand in (an eval record needs 2 or 3 levels; JSON parsers recurse)."""


def finite_or_text(value: float) -> float | str:
    """A finite float unchanged; +inf, -inf and nan as the strings "inf", "-inf", "nan"."""
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def to_jsonable(value: Any) -> Any:
    """Plain JSON types for dataclasses, numpy values and non-finite floats ("inf", "-inf", "nan")."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return finite_or_text(value)
    return value


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, `[]` is 1), counted without recursion; stops counting
    once past `limit` (returns limit + 1), so a hostile document costs no more than its size."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth) for child in children)
    return deepest


_SURROGATES = re.compile("[\ud800-\udfff]")


def unstorable_text(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None: a NUL character (U+0000), which Postgres refuses in every text
    and JSON column, or a lone surrogate (from a JSON escape such as \\ud800), which is not valid Unicode and cannot
    be written as UTF-8. Both are refused where users hand text in, so SQLite and Postgres behave alike."""
    if "\x00" in value:
        return "must not contain the NUL character (U+0000)"
    if _SURROGATES.search(value):
        return "must not contain a lone surrogate (U+D800..U+DFFF)"
    return None


def first_unstorable(value: Any, where: str = "") -> tuple[str, str] | None:
    """(path, reason) of the first string, key or value, in a parsed JSON value that `unstorable_text` refuses;
    None when there is none. Paths read like `special_tokens[2]` or `model.mask_token`."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            reason = unstorable_text(item)
            if reason:
                return path or "value", reason
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                inner = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and unstorable_text(key):
                    return inner, f"key {unstorable_text(key)}"
                stack.append((child, inner))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, f"{path}[{i}]") for i, child in reversed(list(enumerate(item))))
    return None


def from_jsonable(kind: Any, value: Any, namespace: dict[str, Any] | None = None) -> Any:
    """The inverse of to_jsonable for a type: nested dataclasses, lists, dicts, optionals, floats ("inf" included).

    Why: a result stored as JSON (a job's row, result.json) is read back as the dataclass it was, so readers use
    attributes, not string keys. `namespace` resolves type names that a module imports only for type checking.
    """
    if value is None:
        return None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        for option in options:
            if dataclasses.is_dataclass(option) and isinstance(value, dict):
                return from_jsonable(option, value, namespace)
        return from_jsonable(options[0], value, namespace) if options else value
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        hints = typing.get_type_hints(kind, localns=namespace)
        known = {f.name for f in dataclasses.fields(kind) if f.init}
        return kind(**{k: from_jsonable(hints[k], v, namespace) for k, v in value.items() if k in known})
    if origin is list:
        return [from_jsonable(args[0] if args else Any, v, namespace) for v in value]
    if origin is dict:
        return {k: from_jsonable(args[1] if args else Any, v, namespace) for k, v in value.items()}
    if kind is float:
        return float(value)
    return value
