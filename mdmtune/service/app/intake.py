"""Checks an upload must pass before it is stored: zip safety, checkpoint format (never pickle), eval-set records,
and that a server-side `uri` lies inside an operator-allowed root.

The checks themselves belong to the core (mdmtune.data.archive, mdmtune.models.loading, mdmtune.data.evalsets);
this module only applies them to a staging area and turns their errors into problems naming the upload field.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from mdmtune.data.evalsets import EvalSet, load_eval_set
from mdmtune.errors import InvalidInput
from mdmtune.service.app.problems import Problem
from mdmtune.service.app.store import Received, hash_path, safe_filename
from mdmtune.service.settings import Settings

__all__ = [
    "Received",
    "allowed_path",
    "checkpoint_format",
    "eval_set_facts",
    "hash_path",
    "parse_uploaded_eval_set",
    "unpack_checkpoint",
]


def _as_file_problem(error: InvalidInput, what: str) -> Problem:
    return Problem(422, f"{what}: {error.message}", "file")


def unpack_checkpoint(received: Received, filename: str | None, area: Path, settings: Settings) -> tuple[Path, Path]:
    """Lay the upload out as the folder `area/content`; return (content, the checkpoint inside it).

    A zipped folder is extracted with the traversal and size-bomb checks (mdmtune.data.archive) and its single top
    folder, if any, is the checkpoint; any other file (a TorchScript archive) keeps its sanitized name. Pickles,
    torch.save archives and unknown files are refused here, before anything is unpacked.
    """
    from mdmtune.data.archive import ZipLimits, is_zip, safe_extract, single_root
    from mdmtune.models.loading import detect_format
    from mdmtune.models.torchscript import classify_zip

    upload = area / safe_filename(filename, "checkpoint")
    received.path.rename(upload)
    content = area / "content"
    try:
        if is_zip(upload) and classify_zip(upload) == "folder":
            safe_extract(upload, content, limits=ZipLimits(max_total_bytes=settings.max_unpacked_bytes))
            return content, single_root(content)
        detect_format(upload)
    except InvalidInput as error:
        raise _as_file_problem(error, "checkpoint refused") from None
    content.mkdir()
    target = content / upload.name
    upload.rename(target)
    return content, target


def checkpoint_format(path: Path, settings: Settings) -> str:
    """native | hf | torchscript, after the integrity checks: every safetensors header parses and covers its file,
    an hf folder has safetensors weights (never only pickles), a native folder holds no pickle at all."""
    from mdmtune.models.hf import check_safetensors_only
    from mdmtune.models.loading import detect_format
    from mdmtune.models.native import refuse_pickles

    try:
        fmt = detect_format(path)
        check_safetensors_files(path)
        if fmt == "hf":
            check_safetensors_only(path)
        if fmt == "native" and path.is_dir():
            refuse_pickles(path)
    except InvalidInput as error:
        raise _as_file_problem(error, "checkpoint refused") from None
    return fmt


def checkpoint_meta(path: Path, fmt: str) -> dict:
    """What the checkpoint declares (mdmtune.models.metadata, JSON files only), as stored in its row; a config.json
    size past the documented bounds, or a declared text a database cannot store (a NUL character in a special
    token), is a 422 naming the upload and the key."""
    from mdmtune.data.jsonsafe import first_unstorable
    from mdmtune.models.metadata import read_checkpoint_info

    try:
        meta = read_checkpoint_info(path, fmt).to_json()
    except InvalidInput as error:
        raise _as_file_problem(error, "checkpoint refused") from None
    found = first_unstorable(meta)
    if found:
        where, reason = found
        raise Problem(422, f"checkpoint refused: its declared {where} {reason}", "file")
    return meta


def check_safetensors_files(path: Path) -> None:
    """Parse the header of every *.safetensors file (the safetensors library checks it covers the file exactly)."""
    from safetensors import SafetensorError, safe_open

    files = [path] if path.is_file() else sorted(path.rglob("*.safetensors"))
    for file in files:
        if file.suffix != ".safetensors":
            continue
        try:
            with safe_open(file, framework="np") as handle:
                handle.keys()
        except (SafetensorError, OSError) as error:
            name = file.name if path.is_file() else file.relative_to(path).as_posix()
            raise InvalidInput("checkpoint", f"{name} is not a valid safetensors file: {error}") from None


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
        return load_eval_set(path)  # a line at a time: the upload's bytes are never all in memory
    except InvalidInput as error:
        raise Problem(422, f"eval set refused: {error.message}", "file") from None


def eval_set_facts(eval_set: EvalSet) -> dict:
    """What a job submission checks of the set (mdmtune.tuning.evalset_facts), as stored in its row: computed
    here once, so that no submission parses the file again."""
    from mdmtune.tuning.evalset_facts import EvalSetFacts

    return dict(EvalSetFacts.of(eval_set).to_json())
