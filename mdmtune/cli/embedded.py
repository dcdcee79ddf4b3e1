"""The embedded server: migrations, the FastAPI app under uvicorn, and N in-process worker threads, as one object.

`mdmtune serve` runs it in the foreground (uvicorn handles SIGTERM/SIGINT; the workers then finish their current batch
and release their leases). `mdmtune demo` and tests run it in a background thread on a free loopback port.
The HTTP layer is imported only here and only when a server starts, so the library never pulls in FastAPI.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

from mdmtune.errors import InternalError
from mdmtune.service.settings import Settings

log = logging.getLogger(__name__)


class EmbeddedServer:
    """API + workers on one database. `start()` returns once the port answers; `stop()` shuts both down."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from mdmtune.service import migrations
        from mdmtune.service.app.main import create_app

        self.settings = settings
        migrations.upgrade(settings.resolved_database_url)
        settings.resolved_artifact_dir.mkdir(parents=True, exist_ok=True)
        self.socket = socket.create_server((settings.host, settings.port))
        # Accepted connections inherit this; asyncio only sets TCP_NODELAY itself on sockets created with
        # proto=IPPROTO_TCP, and without it every response waits ~40 ms on delayed ACKs (measured).
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.stop_event = threading.Event()
        self.workers = [self._worker_thread(i) for i in range(settings.workers)]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.settings.host if ":" not in self.settings.host else f"[{self.settings.host}]"
        return f"http://{host}:{self.port}"

    def _worker_thread(self, index: int) -> threading.Thread:
        from mdmtune.service.workers import Worker

        name = f"{self.settings.worker_id or socket.gethostname()}:{os.getpid()}:w{index}"
        worker = Worker(self.settings, stop_event=self.stop_event, worker_id=name)
        return threading.Thread(target=worker.run_forever, name=f"worker-{index}", daemon=True)

    def _start_workers(self) -> None:
        for thread in self.workers:
            thread.start()

    def _stop_workers(self) -> None:
        self.stop_event.set()
        for thread in self.workers:
            thread.join()

    def serve_forever(self) -> None:
        """Foreground: until SIGTERM/SIGINT, then stop the workers cleanly and return (exit status 0).

        uvicorn swaps in its own handlers while serving and re-raises the signal afterwards to the handler that was
        there before; installing ours first makes that re-raise a no-op instead of killing the process mid-cleanup.
        """
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        self._start_workers()
        log.info("mdmtune serving on %s with %d worker(s)", self.url, len(self.workers))
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self._stop_workers()

    def _on_signal(self, *_args: object) -> None:
        self.stop_event.set()
        self.server.should_exit = True

    def start(self, timeout_s: float = 30.0) -> EmbeddedServer:
        """Background: serve in a thread; return when the server has started."""
        self._start_workers()
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise InternalError(f"the embedded server did not start on {self.url}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._stop_workers()
        self.socket.close()

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def run_server(settings: Settings) -> None:
    """`mdmtune serve`: the embedded server in the foreground."""
    EmbeddedServer(settings).serve_forever()
