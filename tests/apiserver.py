"""A real mdmtune API server on a free loopback port, for the test_api_* files (no TestClient, no mocks).

`running_server(settings)` starts uvicorn in a thread on a socket bound to 127.0.0.1:0 (so no port race), with the
in-process workers `mdmtune serve` would start, and stops both on exit. Helpers create API keys in the real
database and list what the artifact store and the tables hold, for the "nothing stored" checks.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import func, select, text

from mdmtune.service.app.main import create_app
from mdmtune.service.db import make_engine, make_session_factory
from mdmtune.service.db.apikeys import create_api_key
from mdmtune.service.db.models import Checkpoint, EvalSetRow, Job
from mdmtune.service.settings import Settings

START_TIMEOUT_S = 30.0
TABLES = (Checkpoint, EvalSetRow, Job)


@dataclass
class Server:
    base_url: str
    settings: Settings

    def client(self, key: str | None = None, timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def new_key(self, name: str = "test") -> str:
        """A fresh API key written to the real database (what `mdmtune keys create` does)."""
        engine = make_engine(self.settings.resolved_database_url)
        try:
            with make_session_factory(engine)() as session:
                _, secret = create_api_key(session, name)
                session.commit()
        finally:
            engine.dispose()
        return secret

    def row_counts(self) -> dict[str, int]:
        """Rows in the service's own tables."""
        engine = make_engine(self.settings.resolved_database_url)
        try:
            with make_session_factory(engine)() as session:
                counts = {m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in TABLES}
                counts["optuna studies"] = session.scalar(text("SELECT count(*) FROM studies"))
                return counts
        finally:
            engine.dispose()

    def stored_files(self) -> list[str]:
        """Every file and folder under the artifact store (staging included), relative to it."""
        root = Path(self.settings.resolved_artifact_dir)
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.name not in ("blobs", "staging"))


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A migrated database of `kind` ("sqlite" in `folder`, or a fresh Postgres database), dropped afterwards."""
    from mdmtune.service.migrations import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{folder / 'mdmtune.db'}"
        upgrade(url)
        yield url
        return
    from conftest import _postgres_available, create_pg_database, drop_pg_database

    reason = _postgres_available()
    if reason:
        import pytest

        pytest.skip(reason)
    url = create_pg_database()
    try:
        upgrade(url)
        yield url
    finally:
        drop_pg_database(url)


def _start_workers(settings: Settings, count: int) -> tuple[threading.Event, list[threading.Thread]]:
    from mdmtune.service.workers import run_worker

    stop = threading.Event()
    threads = []
    for n in range(count):
        worker_settings = settings.model_copy(update={"worker_id": f"test-worker-{n}"})
        thread = threading.Thread(target=run_worker, args=(worker_settings,), kwargs={"stop_event": stop}, daemon=True)
        thread.start()
        threads.append(thread)
    return stop, threads


@contextmanager
def running_server(settings: Settings, workers: int = 0) -> Iterator[Server]:
    """uvicorn serving create_app(settings) on 127.0.0.1:<free port>, plus `workers` in-process workers."""
    sock = socket.socket(
        socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )  # proto set: asyncio then sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    stop, worker_threads = _start_workers(settings, workers) if workers else (None, [])
    try:
        yield Server(base_url=f"http://127.0.0.1:{port}", settings=settings)
    finally:
        if stop is not None:
            stop.set()
        for worker in worker_threads:
            worker.join(timeout=30)
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def wait_for_status(client: httpx.Client, job_id: str, statuses: set[str], timeout: float = 120.0) -> dict:
    """Poll GET /v1/tune/{id} until the status is one of `statuses`; the last document."""
    deadline = time.monotonic() + timeout
    while True:
        doc = client.get(f"/v1/tune/{job_id}").raise_for_status().json()
        if doc["status"] in statuses or time.monotonic() > deadline:
            return doc
        time.sleep(0.1)
