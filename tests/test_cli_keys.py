"""`mdmtune keys create|revoke` as a process against a real Postgres database and the real server: a name too long
for the table exits 2 with one line naming it (Postgres raised a traceback), and a revoked key is refused (401)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from apiserver import database, running_server

from mdmtune.service.settings import Settings


def mdmtune(*args: str, url: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mdmtune.cli.main", *args, "--database-url", url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_key_name_too_long_exits_2_with_one_line_naming_it(tmp_path):
    with database("postgres", tmp_path) as url:
        done = mdmtune("keys", "create", "x" * 10_000, url=url)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "name" in lines[0] and "200" in lines[0], done.stderr
    assert done.stdout == ""


def test_a_revoked_key_is_refused_and_an_unknown_one_exits_2(tmp_path):
    with database("postgres", tmp_path) as url:
        created = mdmtune("keys", "create", "alice", "--json", url=url)
        assert created.returncode == 0, created.stderr
        key = json.loads(created.stdout)
        settings = Settings(data_dir=tmp_path, database_url=url, require_api_key=True, workers=0)
        with running_server(settings) as srv, srv.client(key["key"]) as client:
            assert client.get("/v1/tune/" + "0" * 32).status_code == 404  # the key works
            revoked = mdmtune("keys", "revoke", key["id"], "--json", url=url)
            assert revoked.returncode == 0, revoked.stderr
            assert json.loads(revoked.stdout) == {"id": key["id"], "name": "alice", "revoked": True}
            deadline = time.monotonic() + 15  # an API process trusts a verified key for 5 s (KeyCache)
            while (status := client.get("/v1/tune/" + "0" * 32).status_code) != 401 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert status == 401
        unknown = mdmtune("keys", "revoke", "f" * 32, url=url)
    assert unknown.returncode == 2
    lines = unknown.stderr.strip().splitlines()
    assert len(lines) == 1 and "key_id" in lines[0], unknown.stderr
