"""The artifact store: a local folder of content-addressed artifacts, written so that a broken upload leaves nothing.

Layout under `root`:
- `staging/<random>/`: one private area per upload; bytes land here while they are hashed; removed on exit, whatever
  happened (client gone, validation failed, size limit hit).
- `blobs/<sha256>/`: a committed artifact, always a folder (one uploaded file keeps its sanitized name inside it; a
  zipped folder is stored extracted). It appears by one atomic rename from staging, so readers never see half of it.
The same bytes uploaded twice share one folder: the sha256 of what the client sent is the address.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mdmtune.service.app.problems import Problem

CHUNK = 1 << 20
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Received:
    """One uploaded file sitting in a staging area, hashed."""

    path: Path
    sha256: str
    size: int


def safe_filename(name: str | None, default: str = "upload") -> str:
    """The client's file name reduced to one harmless path component (no folders, no dot-files)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _SAFE_NAME.sub("_", base).lstrip(".")
    return base[:128] or default


class ArtifactStore:
    """Content-addressed folders under `root`, filled only through staging areas."""

    def __init__(self, root: Path, max_upload_bytes: int) -> None:
        self.root = Path(root)
        self.max_upload_bytes = int(max_upload_bytes)
        self.blobs = self.root / "blobs"
        self.staging_root = self.root / "staging"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.staging_root.mkdir(parents=True, exist_ok=True)

    def sweep_staging(self, older_than_s: float) -> list[str]:
        """Remove staging areas nothing was written to for `older_than_s` (an API process killed mid-upload leaves
        its area behind; a live upload keeps writing, so its newest file stays young). Returns the removed names."""
        import time

        cutoff = time.time() - older_than_s
        removed = []
        for area in self.staging_root.iterdir():
            try:
                newest = max([area.lstat().st_mtime, *(p.lstat().st_mtime for p in area.rglob("*"))])
            except OSError:
                continue  # removed meanwhile by its own request
            if newest < cutoff:
                if area.is_dir() and not area.is_symlink():
                    shutil.rmtree(area, ignore_errors=True)
                else:
                    area.unlink(missing_ok=True)
                removed.append(area.name)
        return removed

    def path_for(self, sha256: str) -> Path:
        """Where a committed artifact lives (it may not exist)."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.blobs / sha256

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private folder for one upload; deleted on exit, so only what was committed out of it survives."""
        area = self.staging_root / uuid.uuid4().hex
        area.mkdir(parents=True)
        try:
            yield area
        finally:
            shutil.rmtree(area, ignore_errors=True)

    async def receive(self, chunks: AsyncIterable[bytes], target: Path, field: str = "file") -> Received:
        """Write `chunks` to `target` (inside a staging area), hashing as it goes; 413 past the size limit."""
        digest = hashlib.sha256()
        size = 0
        with open(target, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_upload_bytes:
                    raise Problem(413, f"upload larger than the limit of {self.max_upload_bytes} bytes", field)
                digest.update(chunk)
                out.write(chunk)
        return Received(path=target, sha256=digest.hexdigest(), size=size)

    def commit(self, folder: Path, sha256: str) -> Path:
        """Move a fully validated staging folder to its address in one rename; an existing copy wins."""
        final = self.path_for(sha256)
        if final.exists():
            return final
        try:
            os.replace(folder, final)
        except OSError:
            if not final.exists():  # a concurrent commit of the same bytes is fine; anything else is not
                raise
        return final

    def remove(self, sha256: str) -> None:
        """Delete a committed artifact (used when its database row could not be written)."""
        shutil.rmtree(self.path_for(sha256), ignore_errors=True)


def hash_path(path: Path) -> tuple[str, int]:
    """sha256 and total size of a server-side file, or of a folder (over sorted relative names and file hashes)."""
    if path.is_file():
        return _hash_file(path)
    manifest = hashlib.sha256()
    total = 0
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        file_hash, size = _hash_file(item)
        total += size
        manifest.update(f"{item.relative_to(path).as_posix()}\0{file_hash}\n".encode())
    return manifest.hexdigest(), total


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
