"""Worker throughput: many small energy jobs on N `mdmtune worker` processes, and one large job shared by N workers.

What it measures, on Postgres (a fresh database, dropped afterwards) or SQLite:
- queue: `--jobs` energy jobs of `--trials` trials each, submitted at once to N already-started worker processes;
  wall time from submission to the last success, jobs/s and trials/s, and how the jobs spread over the workers;
- shared: one energy job of `--shared-trials` trials on N workers (the first claims it, the others join as
  helpers); wall time, trials/s, and the trials each worker finished.
Energy trials cost almost no compute, so these figures are the service's own overhead per trial and per job
(claims, leases, Optuna's storage, progress writes), the floor under any quality job.

    python benchmarks/worker_throughput.py                         # Postgres, N = 1 and 2
    python benchmarks/worker_throughput.py --database sqlite --workers 1,2,4

Prints one JSON document on stdout; progress goes to stderr. No assertions: this measures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def fresh_database(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}"
    import psycopg

    name = f"mdmtune_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_database(url: str) -> None:
    if url.startswith("sqlite"):
        return
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def start_workers(url: str, n: int, folder: Path) -> list[subprocess.Popen]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MDMTUNE_POLL_SECONDS="0.1", MDMTUNE_LEASE_SECONDS="30")
    procs = []
    for i in range(n):
        out = (folder / f"worker-{i}.log").open("wb")
        cmd = [sys.executable, "-m", "mdmtune.cli.main", "worker", "--database-url", url, "--worker-id", f"w{i}"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
    return procs


def wait_until_idle_workers_listen(seconds: float) -> None:
    """Worker processes import torch and the CLI first; give them time before the clock starts."""
    time.sleep(seconds)


def run_queue(url: str, n_workers: int, jobs: int, trials: int, folder: Path, warmup_s: float) -> dict:
    from sqlalchemy import select

    from mdmtune.service.db import Job, make_engine, make_session_factory, optuna_storage
    from mdmtune.service.migrations import upgrade
    from mdmtune.service.workers.jobs import submit_job
    from mdmtune.tuning.spec import TuneSpec

    upgrade(url)
    engine = make_engine(url)
    sessions, storage = make_session_factory(engine), optuna_storage(url)
    procs = start_workers(url, n_workers, folder)
    try:
        wait_until_idle_workers_listen(warmup_s)
        spec = TuneSpec(
            objective="energy", steps=8, n_trials=trials, trials_per_batch=trials, search_algorithm="random"
        )
        start = time.perf_counter()
        with sessions() as session:
            ids = [submit_job(session, storage, spec.replace(seed=i)).id for i in range(jobs)]
        while True:
            with sessions() as session:
                rows = session.scalars(select(Job).where(Job.id.in_(ids))).all()
            if all(row.status in ("succeeded", "failed") for row in rows):
                break
            time.sleep(0.05)
        wall = time.perf_counter() - start
        return {
            "workers": n_workers,
            "jobs": jobs,
            "trials_per_job": trials,
            "wall_s": round(wall, 3),
            "jobs_per_s": round(jobs / wall, 2),
            "trials_per_s": round(jobs * trials / wall, 1),
            "succeeded": sum(row.status == "succeeded" for row in rows),
            "jobs_by_worker": dict(Counter(row.worker_id for row in rows)),
            "max_attempt": max(row.attempt for row in rows),
        }
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
        engine.dispose()


def run_shared(url: str, n_workers: int, trials: int, folder: Path, warmup_s: float) -> dict:
    import optuna
    from optuna.trial import TrialState

    from mdmtune.service.db import make_engine, make_session_factory, optuna_storage
    from mdmtune.service.migrations import upgrade
    from mdmtune.service.workers import queue
    from mdmtune.service.workers.jobs import submit_job
    from mdmtune.service.workers.sharing import WORKER_ATTR
    from mdmtune.tuning.spec import TuneSpec

    upgrade(url)
    engine = make_engine(url)
    sessions, storage = make_session_factory(engine), optuna_storage(url)
    procs = start_workers(url, n_workers, folder)
    try:
        wait_until_idle_workers_listen(warmup_s)
        spec = TuneSpec(objective="energy", steps=8, n_trials=trials, trials_per_batch=4, search_algorithm="tpe")
        start = time.perf_counter()
        with sessions() as session:
            job = submit_job(session, storage, spec)
        while queue.load_job(sessions, job.id).status not in ("succeeded", "failed"):
            time.sleep(0.05)
        wall = time.perf_counter() - start
        done = optuna.load_study(study_name=job.study_name, storage=storage).get_trials(states=(TrialState.COMPLETE,))
        by_worker = Counter((t.user_attrs.get(WORKER_ATTR) or {}).get("name") for t in done)
        return {
            "workers": n_workers,
            "trials": trials,
            "wall_s": round(wall, 3),
            "trials_per_s": round(trials / wall, 1),
            "trials_by_worker": dict(by_worker),
        }
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--workers", default="1,2", help="Comma-separated worker counts.")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--shared-trials", type=int, default=120)
    parser.add_argument("--warmup", type=float, default=10.0, help="Seconds for the workers to start.")
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    counts = [int(n) for n in args.workers.split(",")]
    report: dict = {"database": args.database, "cpus": os.cpu_count(), "queue": [], "shared": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in counts:
            for kind, runner in (("queue", run_queue), ("shared", run_shared)):
                url = fresh_database(args.database, folder)
                try:
                    log(f"{kind}: {n} worker(s)")
                    if kind == "queue":
                        report[kind].append(runner(url, n, args.jobs, args.trials, folder, args.warmup))
                    else:
                        report[kind].append(runner(url, n, args.shared_trials, folder, args.warmup))
                finally:
                    drop_database(url)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
