"""The service commands as a user runs them: `mdmtune db ...`, `mdmtune keys create`, `mdmtune serve` (a real process
with its in-process worker on the embedded default, driven over HTTP, stopped by SIGTERM).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from mdmtune.cli.main import main
from mdmtune.service import migrations
from mdmtune.service.db.session import make_engine

REPO = Path(__file__).resolve().parents[1]
WAIT_LIMIT_S = 120


def _mdmtune(capsys, *args: str) -> tuple[int, str, str]:
    """Run the real command line in this process (as the console script does); (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        main(list(args))
    except SystemExit as done:
        code = done.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_db_upgrade_downgrade_current_commands(sqlite_url, capsys, monkeypatch):
    code, out, err = _mdmtune(capsys, "db", "upgrade", "--database-url", sqlite_url, "--json")
    assert code == 0, err
    assert json.loads(out)["revision"] == migrations.head_revision()
    _code, out, _err = _mdmtune(capsys, "db", "downgrade", "base", "--database-url", sqlite_url, "--json")
    assert json.loads(out)["revision"] is None
    monkeypatch.setenv("MDMTUNE_DATABASE_URL", sqlite_url)
    _code, out, _err = _mdmtune(capsys, "db", "current", "--json")
    assert json.loads(out) == {"database_url": sqlite_url, "revision": None, "head": migrations.head_revision()}


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(migrated_sqlite_url, capsys):
    code, out, err = _mdmtune(capsys, "keys", "create", "alice", "--database-url", migrated_sqlite_url, "--json")
    assert code == 0, err
    key = json.loads(out)["key"]
    engine = make_engine(migrated_sqlite_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, key_hash, prefix, revoked FROM api_keys")).all()
    engine.dispose()
    assert rows == [("alice", hashlib.sha256(key.encode()).hexdigest(), key[:9], False)]
    database_bytes = Path(migrated_sqlite_url.removeprefix("sqlite:///")).read_bytes()
    assert key.encode() not in database_bytes


def test_keys_create_on_a_database_not_upgraded_says_what_to_run(sqlite_url, capsys):
    code, _out, err = _mdmtune(capsys, "keys", "create", "bob", "--database-url", sqlite_url)
    assert code == 2 and "run `mdmtune db upgrade`" in err and len(err.strip().splitlines()) == 1


def test_keys_create_refuses_an_empty_name(migrated_sqlite_url, capsys):
    code, _out, err = _mdmtune(capsys, "keys", "create", " ", "--database-url", migrated_sqlite_url)
    assert code == 2 and err.startswith("mdmtune: error: name")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT_LIMIT_S
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.TransportError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def test_serve_embedded_default_runs_a_job_and_stops_on_sigterm(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDMTUNE_")}
    env["PYTHONPATH"] = str(REPO)
    data_dir = tmp_path / "data"
    log = (tmp_path / "serve.log").open("wb")
    cmd = [sys.executable, "-m", "mdmtune.cli.main", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, "the server to be ready")
        assert (data_dir / "mdmtune.db").exists()  # the embedded default: SQLite under the data dir, migrated
        job = httpx.post(f"{base}/v1/tune", json={"objective": "energy", "steps": 6, "n_trials": 10}).json()
        done = _wait_for(
            lambda: (j := httpx.get(f"{base}/v1/tune/{job['id']}").json())["status"] == "succeeded" and j,
            "the in-process worker to finish the job",
        )
        assert done["progress"]["trials_done"] == 10
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT_LIMIT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
