"""The service's settings: one object, read once from MDMTUNE_* environment variables, passed down explicitly.

Why one object: the API, the workers and the CLI must agree on the database, the artifact folder and the lease timing;
reading the environment deep inside the code would let them drift apart. Build it once (`Settings()` reads the
environment; keyword arguments override it) and hand it to `create_app(settings)`, `run_worker(settings)`, ...

The embedded default needs no settings at all: a SQLite file and an artifact folder under `data_dir`.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path("mdmtune-data")


class Settings(BaseSettings):
    """Everything an operator may set. Environment names are the field names upper-cased with prefix MDMTUNE_."""

    model_config = SettingsConfigDict(env_prefix="MDMTUNE_", extra="ignore")

    # Where things live.
    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Folder for the embedded SQLite file and artifacts.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL (postgresql://..., sqlite:///...). Default: SQLite file data_dir/mdmtune.db.",
    )
    artifact_dir: Path | None = Field(None, description="Artifact store folder. Default: data_dir/artifacts.")

    # HTTP.
    host: str = Field("127.0.0.1", description="Address the API binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port the API listens on (0: a free port).")
    require_api_key: bool | None = Field(
        None,
        description="Require `Authorization: Bearer <key>`. Default (None): required unless bound to loopback "
        "on the embedded SQLite database.",
    )
    max_upload_bytes: int = Field(2 * 1024**3, gt=0, description="Largest accepted upload (413 above).")
    max_unpacked_bytes: int = Field(8 * 1024**3, gt=0, description="Largest total size a zip may unpack to.")
    allowed_uri_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="Server-side folders a checkpoint `uri` may point into (none by default)."
    )
    trust_remote_code: bool = Field(False, description="Allow Hugging Face custom model code (operator only).")

    # Workers.
    workers: int = Field(1, ge=0, description="In-process worker threads of `mdmtune serve` (0: API-only node).")
    worker_id: str | None = Field(None, description="Name of this worker in the jobs table. Default: host:pid:n.")
    lease_seconds: float = Field(60.0, gt=0, description="A job whose lease is not renewed for this long is reclaimed.")
    heartbeat_seconds: float | None = Field(None, gt=0, description="Lease renewal period. Default: lease_seconds/4.")
    poll_seconds: float = Field(1.0, gt=0, description="How often an idle worker looks for a job.")
    max_helpers_per_job: int = Field(
        4, ge=0, description="An idle worker may help with a running job that has fewer helpers (0: never share)."
    )
    help_min_free_trials: int = Field(8, ge=1, description="Only jobs with at least this many trials left get help.")
    max_attempts: int = Field(
        10, ge=1, description="A job claimed more often than this (its workers keep dying on it) fails instead."
    )
    job_timeout_seconds: float = Field(6 * 3600.0, gt=0, description="A job running longer than this fails.")
    device: str = Field("auto", description="Torch device for quality jobs: auto (CUDA if present), cpu, cuda, cuda:N.")
    model_cache_size: int = Field(2, ge=1, description="Loaded checkpoints kept in memory per worker (by sha256).")
    allow_weak_sandbox: bool = Field(
        False,
        description="Run pass_at_1 programs in the weak sandbox (no namespaces) where bubblewrap cannot start. Off: "
        "such a worker fails pass_at_1 jobs with the reason. Check with `mdmtune sandbox check`.",
    )

    @field_validator("allowed_uri_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        """Accept `MDMTUNE_ALLOWED_URI_ROOTS=/a:/b` (like PATH) as well as a JSON list."""
        if isinstance(value, str):
            return json.loads(value) if value.lstrip().startswith("[") else [p for p in value.split(":") if p]
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL to use: the setting, or the embedded SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mdmtune.db').resolve()}"

    @property
    def resolved_artifact_dir(self) -> Path:
        """The artifact folder: the setting, or data_dir/artifacts."""
        return self.artifact_dir if self.artifact_dir is not None else self.data_dir / "artifacts"

    @property
    def resolved_heartbeat_seconds(self) -> float:
        """Renew the lease several times per lease period so one slow write does not lose it."""
        return self.heartbeat_seconds if self.heartbeat_seconds is not None else self.lease_seconds / 4

    @property
    def is_embedded(self) -> bool:
        """True on the SQLite database (the single-machine mode)."""
        return self.resolved_database_url.startswith("sqlite")

    @property
    def api_key_required(self) -> bool:
        """Keys are required unless explicitly switched off, or the embedded server only listens on loopback."""
        if self.require_api_key is not None:
            return self.require_api_key
        return not (self.is_embedded and is_loopback(self.host))


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and names that resolve only to them (e.g. localhost)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)
