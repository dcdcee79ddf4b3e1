"""Checks an upload must pass before it is stored: zip safety, checkpoint format (never pickle), eval-set records,
and that a server-side `uri` lies inside an operator-allowed root.

The checks themselves belong to the core (mdmtune.archive, mdmtune.models.loading, mdmtune.evalsets); this module
only applies them to a staging area and turns their errors into problems naming the upload field.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from mdmtune.app.problems import Problem
from mdmtune.app.store import Received, hash_path, safe_filename
from mdmtune.errors import InvalidInput
from mdmtune.evalsets import EvalSet, parse_eval_set
from mdmtune.settings import Settings

__all__ = ["Received", "allowed_path", "checkpoint_format", "hash_path", "parse_uploaded_eval_set", "unpack_checkpoint"]


def _as_file_problem(error: InvalidInput, what: str) -> Problem:
    return Problem(422, f"{what}: {error.field}: {error.message}", "file")


def unpack_checkpoint(received: Received, filename: str | None, area: Path, settings: Settings) -> tuple[Path, Path]:
    """Lay the upload out as a folder `area/content`; return (content, the checkpoint path inside it).

    A zip is extracted (with the traversal and size-bomb checks) and, when it holds one top folder, that folder is
    the checkpoint; any other file is kept under its sanitized name.
    """
    from mdmtune.archive import safe_extract

    content = area / "content"
    if zipfile.is_zipfile(received.path):
        try:
            safe_extract(received.path, content, max_unpacked_bytes=settings.max_unpacked_bytes)
        except InvalidInput as error:
            raise _as_file_problem(error, "zip refused") from None
        entries = [p for p in content.iterdir() if not p.name.startswith("__MACOSX")]
        target = entries[0] if len(entries) == 1 and entries[0].is_dir() else content
        return content, target
    content.mkdir()
    target = content / safe_filename(filename, "checkpoint")
    received.path.rename(target)
    return content, target


def checkpoint_format(path: Path, settings: Settings) -> str:
    """native | hf | torchscript, after the format's own integrity checks; pickle and corrupt files are refused."""
    from mdmtune.models.loading import detect_format

    try:
        return detect_format(path, trust_remote_code=settings.trust_remote_code)
    except InvalidInput as error:
        raise _as_file_problem(error, "checkpoint refused") from None


def locate(final: Path, relative: Path) -> Path:
    """The checkpoint inside a committed folder; the same bytes stored earlier may carry another file name."""
    candidate = final / relative
    if candidate.exists():
        return candidate
    children = list(final.iterdir())
    return children[0] if len(children) == 1 else final


def allowed_path(uri: str, settings: Settings) -> Path:
    """The resolved local path of a `uri`, which must exist inside one of the operator's allowed roots."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise Problem(422, f"only local paths or file:// URIs, not {parsed.scheme!r}", "uri")
    raw = unquote(parsed.path) if parsed.scheme == "file" else uri
    if not raw:
        raise Problem(422, "empty path", "uri")
    roots = [Path(r).resolve() for r in settings.allowed_uri_roots]
    if not roots:
        raise Problem(403, "server-side checkpoints are switched off (no allowed_uri_roots configured)", "uri")
    path = Path(raw).expanduser().resolve()
    if not any(path.is_relative_to(root) for root in roots):
        raise Problem(403, "path is outside the server's allowed roots", "uri")
    if not path.exists():
        raise Problem(422, "no such file or folder on the server", "uri")
    return path


def parse_uploaded_eval_set(path: Path) -> EvalSet:
    """The validated eval set; a bad line or an empty set is a 422 naming the upload and the line."""
    try:
        return parse_eval_set(path.read_bytes())
    except InvalidInput as error:
        raise Problem(422, f"eval set refused: {error.message}", "file") from None
