"""How every command reports: one JSON document on stdout with --json, rich text otherwise, errors as one line.

Kept in one place so that every command writes infinities, numpy scalars and arrays the same way
(INTERFACES.md: infinite values are the string "inf").
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from typing import Any, NoReturn

import numpy as np


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
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def emit_json(document: Any) -> None:
    """Write one JSON document on stdout and nothing else."""
    sys.stdout.write(json.dumps(to_jsonable(document)) + "\n")
    sys.stdout.flush()


def fail(reason: str, code: int = 2) -> NoReturn:
    """Exit with `code` after one line on stderr (INTERFACES.md: bad input is exit 2 and a one-line reason)."""
    sys.stderr.write(f"mdmtune: error: {reason}\n")
    raise SystemExit(code)
