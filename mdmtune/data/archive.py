"""Safe zip extraction for user-supplied archives (zipped checkpoints), used by the loaders and the HTTP service.

Why not `ZipFile.extractall`: an uploaded archive is untrusted. Python's extractall sanitizes names silently (a
`../x` member lands somewhere the uploader did not mean) and has no size limits, so a zip bomb can fill the disk.
Here every member is checked before a single byte is written, and an archive that is anything but a plain tree of
regular files is refused with an InvalidInput that names the bad member:
absolute paths, drive letters and `..` components, symlinks and other special files, encrypted members, duplicate
names, too many members, a total uncompressed size over the limit, and members whose compression ratio is suspicious.
The declared sizes are also enforced while copying (a lying header cannot write more than it declared).

Extraction is atomic: members go to a temporary folder beside the destination, which is renamed into place only when
everything succeeded, so a reader never sees a half-extracted checkpoint. Must never import FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mdmtune.errors import InvalidInput

_COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class ZipLimits:
    """What an archive may contain. The defaults suit checkpoints of a few GB; the service passes its settings."""

    max_members: int = 10_000
    max_total_bytes: int = 8 * 1024**3
    max_ratio: float = 200.0
    """Largest uncompressed/compressed ratio of one member, and of the whole archive (a zip bomb reaches thousands;
    many members just under `ratio_min_bytes` each are caught by the whole archive's ratio)."""
    ratio_min_bytes: int = 1 << 20
    """Members (and archives) smaller than this are not ratio-checked (small text files compress well and harm no
    one)."""


def is_zip(path: str | os.PathLike[str]) -> bool:
    """True when `path` is a regular file that starts like a zip archive."""
    path = Path(path)
    return path.is_file() and zipfile.is_zipfile(path)


def _member_path(name: str) -> PurePosixPath:
    """The member's relative path, or InvalidInput when it could escape the destination."""
    if "\\" in name or "\x00" in name:
        raise InvalidInput("archive", f"member {name!r} has a backslash or NUL in its name")
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise InvalidInput("archive", f"member {name!r} has an absolute path")
    if ".." in path.parts:
        raise InvalidInput("archive", f"member {name!r} points outside the archive ('..')")
    if not path.parts or path.parts == (".",):
        raise InvalidInput("archive", f"member {name!r} has an empty name")
    return path


def _check_member(info: zipfile.ZipInfo, limits: ZipLimits) -> None:
    """Refuse one member that is not a plain file or folder, is encrypted, or compresses suspiciously well."""
    kind_bits = stat.S_IFMT(info.external_attr >> 16)  # 0 when the writer recorded permissions only
    if kind_bits not in (0, stat.S_IFREG, stat.S_IFDIR):
        kind = "a symlink" if kind_bits == stat.S_IFLNK else "not a regular file"
        raise InvalidInput("archive", f"member {info.filename!r} is {kind}")
    if info.flag_bits & 0x1:
        raise InvalidInput("archive", f"member {info.filename!r} is encrypted")
    if info.file_size >= limits.ratio_min_bytes:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise InvalidInput(
                "archive",
                f"member {info.filename!r} has compression ratio {ratio:.0f} (limit {limits.max_ratio:.0f}): "
                "refused as a possible zip bomb",
            )


def check_archive(archive: zipfile.ZipFile, limits: ZipLimits = ZipLimits()) -> list[zipfile.ZipInfo]:
    """Validate every member against `limits` before anything is written; returns the members in order."""
    members = archive.infolist()
    if len(members) > limits.max_members:
        raise InvalidInput("archive", f"has {len(members)} members (limit {limits.max_members})")
    seen: set[PurePosixPath] = set()
    total = packed = 0
    for info in members:
        path = _member_path(info.filename)
        if path in seen:
            raise InvalidInput("archive", f"member {info.filename!r} appears twice")
        seen.add(path)
        _check_member(info, limits)
        total += info.file_size
        packed += info.compress_size
        if total > limits.max_total_bytes:
            raise InvalidInput(
                "archive",
                f"unpacks to more than {limits.max_total_bytes} bytes (reached at member {info.filename!r})",
            )
    ratio = total / max(packed, 1)
    if total >= limits.ratio_min_bytes and ratio > limits.max_ratio:
        raise InvalidInput(
            "archive",
            f"unpacks {packed} compressed bytes to {total} (ratio {ratio:.0f}, limit {limits.max_ratio:.0f}): "
            "refused as a possible zip bomb",
        )
    return members


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """Copy one member, writing no more than its declared size (a header that lies is caught here)."""
    written = 0
    with archive.open(info) as source, open(target, "wb") as sink:
        while chunk := source.read(_COPY_CHUNK):
            written += len(chunk)
            if written > info.file_size:
                raise InvalidInput("archive", f"member {info.filename!r} is larger than its header declares")
            sink.write(chunk)


def safe_extract(
    archive_path: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    limits: ZipLimits = ZipLimits(),
    exist_ok: bool = False,
) -> Path:
    """Extract `archive_path` into the new folder `destination`, atomically; returns `destination`.

    With exist_ok=True an existing destination is taken to be a finished extraction of the same archive (the
    content-addressed artifact store's case: two workers extracting one upload) and returned untouched.
    """
    archive_path, destination = Path(archive_path), Path(destination)
    if destination.exists():
        if exist_ok:
            return destination
        raise FileExistsError(f"{destination} already exists")
    if not is_zip(archive_path):
        raise InvalidInput("archive", f"{archive_path.name} is not a zip archive")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        _extract_into(archive_path, staging, limits)
        try:
            os.rename(staging, destination)
        except OSError:
            if exist_ok and destination.exists():
                return destination
            raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return destination


def _extract_into(archive_path: Path, staging: Path, limits: ZipLimits) -> None:
    """Check then write every member below `staging`."""
    try:
        with zipfile.ZipFile(archive_path) as archive:
            for info in check_archive(archive, limits):
                target = staging.joinpath(*_member_path(info.filename).parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                _copy_member(archive, info, target)
    except zipfile.BadZipFile as error:
        raise InvalidInput("archive", f"{archive_path.name} is a corrupt zip archive: {error}") from None


def single_root(folder: str | os.PathLike[str]) -> Path:
    """The folder that holds the files: `folder` itself, or, when a zip wrapped a whole folder, the first folder
    down a chain of only subfolders (`zip -r ck.zip examples/sudoku/checkpoint` nests it three deep)."""
    folder = Path(folder)
    while True:
        entries = [entry for entry in folder.iterdir() if entry.name not in {"__MACOSX", ".DS_Store"}]
        if len(entries) != 1 or not entries[0].is_dir() or entries[0].is_symlink():
            return folder
        folder = entries[0]
