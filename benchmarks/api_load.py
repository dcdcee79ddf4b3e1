"""API load: many concurrent pollers on GET /v1/tune/{id} while a worker is busy; latency and throughput as JSON.

What it measures: `mdmtune serve` (uvicorn + create_app + one in-process worker thread) in a separate process on
loopback, on SQLite and on Postgres. The worker runs a long energy job whose progress it writes
after every trial batch, so readers and the writer contend as they do in use. The pollers (threads in this
process, one httpx keep-alive connection each) poll that job for `--duration` seconds, each waiting `--interval`
seconds between requests (0: back to back, the saturation figure). Reported: requests, requests per second,
p50/p90/p99/max latency in ms, errors (non-200 or transport failures), and the trials the worker finished meanwhile.

    python benchmarks/api_load.py                      # both databases, 100 pollers, 30 s each
    python benchmarks/api_load.py --database sqlite --duration 10 --interval 0   # saturation

Needs Postgres on 127.0.0.1:5432 (trust auth, database `test`) for the Postgres run; a fresh database is created
and dropped. Prints one JSON document on stdout; progress goes to stderr. No assertions: this measures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MDMTUNE = [sys.executable, "-m", "mdmtune.cli.main"]
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
LONG_JOB = {"objective": "energy", "steps": 16, "n_trials": 10_000_000, "weight_a": 2.0, "weight_b": 0.5}


def log(message: str) -> None:
    sys.stderr.write(f"[api_load] {message}\n")
    sys.stderr.flush()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_database(kind: str, folder: Path) -> str:
    from mdmtune.service.migrations import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{folder / 'mdmtune.db'}"
    else:
        import psycopg

        name = f"mdmtune_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    upgrade(url)
    return url


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def new_key(url: str) -> str:
    from mdmtune.service.db import make_engine, make_session_factory
    from mdmtune.service.db.apikeys import create_api_key

    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        _, secret = create_api_key(session, "api-load")
        session.commit()
    engine.dispose()
    return secret


def server_env(url: str, folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "MDMTUNE_DATA_DIR": str(folder),
        "MDMTUNE_DATABASE_URL": url,
        "MDMTUNE_REQUIRE_API_KEY": "true",
        "MDMTUNE_POLL_SECONDS": "0.2",
    }


def start_server(url: str, folder: Path, port: int, worker_mode: str) -> subprocess.Popen:
    """`mdmtune serve` itself: with its in-process worker, or as an API-only node (--workers 0)."""
    workers = "1" if worker_mode == "inprocess" else "0"
    command = [*MDMTUNE, "serve", "--port", str(port), "--data-dir", str(folder), "--database-url", url]
    process = subprocess.Popen([*command, "--workers", workers], env=server_env(url, folder), cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not become ready in 60 s")


def wait_running(client: httpx.Client, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/tune/{job_id}").json()
        if job["status"] == "running" and job["progress"]["trials_done"] > 0:
            return job
        time.sleep(0.1)
    raise RuntimeError(f"job {job_id} did not start running: {job}")


def poll(base_url: str, key: str, job_id: str, pollers: int, duration: float, interval: float, seed: int = 0) -> dict:
    """`pollers` threads, each with its own keep-alive connection, polling until `duration` has passed.

    Threads with the sync client, not asyncio: on this stack httpx's async client served 100 concurrent connections
    at a fraction of the rate the threaded sync client reaches (measured against a trivial endpoint), so it would
    have measured the load generator instead of the server. Each poller starts at its own seeded offset within
    the first interval, as independent clients do.
    """
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}"}
    start_line = threading.Barrier(pollers + 1)
    end = [0.0]

    offsets = np.random.default_rng(seed).uniform(0.0, interval, size=pollers) if interval else np.zeros(pollers)

    def one_poller(offset: float) -> None:
        mine: list[float] = []
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            start_line.wait()
            time.sleep(offset)  # pollers started at one instant would poll in lockstep bursts of `pollers`
            while time.perf_counter() < end[0]:
                began = time.perf_counter()
                kind = None
                try:
                    response = client.get(f"/v1/tune/{job_id}")
                    if response.status_code != 200:
                        kind = str(response.status_code)
                except httpx.HTTPError as error:
                    kind = type(error).__name__
                mine.append(time.perf_counter() - began)
                if kind is not None:
                    with lock:
                        errors[kind] = errors.get(kind, 0) + 1
                if interval:
                    time.sleep(interval)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=one_poller, args=(float(o),), daemon=True) for o in offsets]
    for thread in threads:
        thread.start()
    end[0] = time.perf_counter() + duration
    began = time.perf_counter()
    start_line.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000.0
    return {
        "requests": len(latencies),
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }


def run_one(kind: str, args: argparse.Namespace) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"mdmtune-bench-{kind}-"))
    url = make_database(kind, folder)
    port = free_port()
    processes = [start_server(url, folder, port, args.worker_mode)]
    if args.worker_mode == "process":
        worker = [*MDMTUNE, "worker", "--database-url", url, "--data-dir", str(folder)]
        processes.append(subprocess.Popen(worker, env=server_env(url, folder), cwd=ROOT))
    try:
        key = new_key(url)
        base_url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            job_id = client.post("/v1/tune", json=LONG_JOB).raise_for_status().json()["id"]
            before = (
                wait_running(client, job_id) if args.worker_mode != "none" else client.get(f"/v1/tune/{job_id}").json()
            )
            log(f"{kind}: worker busy on job {job_id}; {args.pollers} pollers for {args.duration} s")
            figures = poll(base_url, key, job_id, args.pollers, args.duration, args.interval)
            after = client.get(f"/v1/tune/{job_id}").json()
            client.post(f"/v1/tune/{job_id}/cancel")
        figures["worker_trials_during"] = after["progress"]["trials_done"] - before["progress"]["trials_done"]
        figures["worker_status_after"] = after["status"]
        return {"database": kind, "worker_mode": args.worker_mode, **figures}
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of polling per database")
    parser.add_argument("--pollers", type=int, default=100)
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds each poller waits between requests (default 1: a client polling its job; 0: saturation)",
    )
    parser.add_argument(
        "--worker-mode",
        choices=["inprocess", "process", "none"],
        default="inprocess",
        help="inprocess: the worker thread inside the API process (mdmtune serve); process: a separate worker "
        "process; none: no worker (the job stays queued; the API alone, for comparison)",
    )
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    results = [run_one(kind, args) for kind in kinds]
    document = {
        "benchmark": "api_load",
        "pollers": args.pollers,
        "duration_s": args.duration,
        "interval_s": args.interval,
        "cpu_count": os.cpu_count(),
        "results": results,
    }
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
