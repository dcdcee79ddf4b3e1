"""The small JSON files of a checkpoint folder (config.json, generation_config.json), read alike by every loader.

A broken file is named here, at load time, rather than surfacing as a KeyError deep in a loader. Never imports torch,
FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import json
from pathlib import Path

from mdmtune.errors import InvalidInput


def read_json(folder: Path, name: str, *, required: bool) -> object:
    """The parsed content of folder/name; None when the file is absent and not required.

    InvalidInput(field="checkpoint") naming the file when a required one is missing or any one is not valid JSON."""
    path = folder / name
    if not path.is_file():
        if required:
            raise InvalidInput("checkpoint", f"{name} is missing")
        return None
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput("checkpoint", f"{name} is not valid JSON: {error}") from None
