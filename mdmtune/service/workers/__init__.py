"""The job loop: claim a job from the `jobs` table, hold its lease, run mdmtune.tuning on its study, write results.

- `queue`: claim (SKIP LOCKED / atomic UPDATE ... RETURNING), lease renewal, fenced writes.
- `runner`: `Worker` (one job at a time, heartbeat thread, SIGTERM-safe) and `run_worker(settings)`.
- `objectives`: a job's inputs for mdmtune.tuning.lifecycle (the loaded checkpoint and the parsed eval set, cached by
  sha256, so a worker loads each once).
- `sharing`: several workers on one job's study (trials tagged by worker; a gone worker's trials re-enqueued).
- `jobs`: the one place jobs are submitted, cancelled, listed and checked against their artifacts (the routes, the
  tests and the benchmarks all go through it; trials are read from Optuna's storage: there is no project table).
- `faults`: which database errors are passing ones, and retries with backoff.

Sharing: one job is run by one lease holder at a time; throughput inside a job comes from trial batches (several
trials sampled in one model batch), and across jobs from more workers. A job whose worker died is resumed by the
next worker on the same Optuna study. Never imports the HTTP layer.
"""

from mdmtune.service.workers.runner import Worker, run_worker

__all__ = ["Worker", "run_worker"]
