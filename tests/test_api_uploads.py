"""Uploads over HTTP (real uvicorn on loopback, SQLite and Postgres): checkpoints in every accepted shape, eval sets,
and server-side `uri` checkpoints, stored content-addressed and atomically."""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path

import httpx
import pytest
from apiartifacts import hf_folder, native_folder, torchscript_file, zip_folder
from apiserver import Server, database, running_server

from mdmtune.data.evalsets import dumps_eval_set
from mdmtune.service.settings import Settings


@pytest.fixture(scope="module")
def allowed_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("operator-models")
    native_folder(root / "native-model")
    return root


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory, allowed_root) -> Server:
    folder = tmp_path_factory.mktemp(f"api-uploads-{request.param}")
    with database(request.param, folder) as url:
        settings = Settings(
            data_dir=folder, database_url=url, require_api_key=True, allowed_uri_roots=[allowed_root], workers=0
        )
        with running_server(settings) as srv:
            yield srv


@pytest.fixture(scope="module")
def client(server: Server) -> httpx.Client:
    with server.client(server.new_key()) as c:
        yield c


def stored(server: Server, document: dict) -> Path:
    return Path(server.settings.resolved_artifact_dir) / "blobs" / document["sha256"]


@pytest.mark.parametrize("maker", ["native", "hf"])
def test_zipped_checkpoint_folder_is_stored_under_its_sha256(server, client, tmp_path, maker):
    folder = (native_folder if maker == "native" else hf_folder)(tmp_path / "model")
    data = zip_folder(folder)
    response = client.post("/v1/checkpoints", files={"file": ("model.zip", data)})
    assert response.status_code == 201, response.text
    document = response.json()
    assert document["format"] == maker
    assert document["sha256"] == hashlib.sha256(data).hexdigest()
    assert document["size"] == len(data)
    unpacked = stored(server, document) / "model"
    for file in folder.iterdir():
        assert (unpacked / file.name).read_bytes() == file.read_bytes()
    assert not any((Path(server.settings.resolved_artifact_dir) / "staging").iterdir())


def test_torchscript_file_is_accepted(server, client, tmp_path):
    data = torchscript_file(tmp_path / "model.pt").read_bytes()
    document = client.post("/v1/checkpoints", files={"file": ("model.pt", data)}).json()
    assert document["format"] == "torchscript"
    assert (stored(server, document) / "model.pt").read_bytes() == data


def test_same_bytes_twice_share_one_stored_copy(server, client, tmp_path):
    data = zip_folder(native_folder(tmp_path / "twice", seed=7))
    first = client.post("/v1/checkpoints", files={"file": ("a.zip", data)}).json()
    second = client.post("/v1/checkpoints", files={"file": ("b.zip", data)}).json()
    assert first["id"] != second["id"]
    assert first["sha256"] == second["sha256"]
    assert second["filename"] == "b.zip"
    assert sorted(p.name for p in stored(server, first).iterdir()) == ["twice"]


def test_server_side_uri_under_an_allowed_root_is_registered_in_place(server, client, allowed_root):
    response = client.post("/v1/checkpoints", json={"uri": f"file://{allowed_root / 'native-model'}"})
    assert response.status_code == 201, response.text
    document = response.json()
    assert document["format"] == "native"
    files = sorted((allowed_root / "native-model").iterdir())
    assert document["size"] == sum(f.stat().st_size for f in files)
    assert not stored(server, document).exists()  # referenced where it is, not copied


def test_uri_escaping_the_allowed_root_is_refused(server, client, allowed_root):
    response = client.post("/v1/checkpoints", json={"uri": str(allowed_root / "native-model" / ".." / "..")})
    assert response.status_code == 403 and response.json()["field"] == "uri"
    missing = client.post("/v1/checkpoints", json={"uri": str(allowed_root / "nothing-here")})
    assert missing.status_code == 422 and missing.json()["field"] == "uri"
    unknown = client.post("/v1/checkpoints", json={"uri": str(allowed_root), "format": "hf"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "format"


def test_eval_set_upload_counts_records_and_keeps_the_bytes(server, client):
    records = [{"id": i, "prompt": f"{i}+{i}=", "answer": str(2 * i), "source": "test"} for i in range(5)]
    data = dumps_eval_set(records)
    response = client.post("/v1/eval-sets", files={"file": ("sums.jsonl", data)})
    assert response.status_code == 201, response.text
    document = response.json()
    assert document["record_count"] == 5
    assert document["kind"] == "completion"
    assert document["sha256"] == hashlib.sha256(data).hexdigest()
    assert (stored(server, document) / "eval_set.jsonl").read_bytes() == data


def test_infill_eval_set_is_recognised(server, client):
    data = dumps_eval_set([{"id": "a", "masked": "1+1=_", "answer": "1+1=2"}])
    assert client.post("/v1/eval-sets", files={"file": ("infill.jsonl", data)}).json()["kind"] == "infill"


def wait_until(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_upload_cut_off_midway_leaves_nothing(server, client):
    """The client goes away after part of the file: no stored artifact, no row, an empty staging folder."""
    rows, files = server.row_counts(), server.stored_files()
    host, port = server.base_url.removeprefix("http://").split(":")
    boundary = "cutoffboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    key = client.headers["Authorization"]
    request = (
        f"POST /v1/eval-sets HTTP/1.1\r\nHost: {host}\r\nAuthorization: {key}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(head) + 1_000_000}\r\n\r\n"
    ).encode()
    staging = Path(server.settings.resolved_artifact_dir) / "staging"
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request + head + b'{"id": 1, "prompt": "1+1=", "answer": "2"}\n' * 2000)
        assert wait_until(lambda: any(staging.iterdir())), "the upload never reached the staging folder"
    assert wait_until(lambda: not any(staging.iterdir())), "the cut-off upload was left in staging"
    assert server.row_counts() == rows
    assert server.stored_files() == files


def test_a_zip_of_a_nested_folder_path_is_accepted(server, client, tmp_path):
    """What `zip -r ck.zip examples/sudoku/checkpoint` makes: the files three folders down."""
    folder = native_folder(tmp_path / "checkpoint", seed=3)
    response = client.post(
        "/v1/checkpoints", files={"file": ("ck.zip", zip_folder(folder, root="examples/sudoku/checkpoint"))}
    )
    assert response.status_code == 201, response.text
    assert response.json()["format"] == "native" and response.json()["meta"]["mask_token"] is not None


def test_staging_left_by_a_killed_api_is_swept_at_startup(tmp_path):
    """An area older than the lease goes; one still being written to (a live upload on another node) stays."""
    import os
    import time

    from mdmtune.service.app.main import create_app

    settings = Settings(data_dir=tmp_path, lease_seconds=60, workers=0)
    staging = settings.resolved_artifact_dir / "staging"
    old, live = staging / "killed-upload", staging / "live-upload"
    for area in (old, live):
        area.mkdir(parents=True)
        (area / "incoming").write_bytes(b"x" * 1000)
    long_ago = time.time() - 3600
    for path in (old, old / "incoming", live):
        os.utime(path, (long_ago, long_ago))
    create_app(settings)
    assert not old.exists() and (live / "incoming").exists()


def test_an_eval_sets_facts_are_stored_at_upload_and_a_submission_reads_no_file(server, client, tmp_path):
    """Upload computes what submission checks (the metric fits, the mask symbol's counts); with the stored file gone,
    a job is still accepted, and still refused where the facts say so."""
    checkpoint = client.post("/v1/checkpoints", files={"file": ("m.zip", zip_folder(native_folder(tmp_path / "m")))})
    assert checkpoint.status_code == 201, checkpoint.text
    records = [{"id": f"facts-{i}", "masked": f"{i}+{i}=__", "answer": f"{i}+{i}={2 * i:02d}"} for i in range(6)]
    uploaded = client.post("/v1/eval-sets", files={"file": ("facts.jsonl", dumps_eval_set(records))})
    assert uploaded.status_code == 201, uploaded.text
    (stored(server, uploaded.json()) / "eval_set.jsonl").unlink()
    body = {
        "checkpoint_id": checkpoint.json()["id"],
        "eval_set_id": uploaded.json()["id"],
        "metric": "exact_match",
        "mask_symbol": "_",
        "steps": 2,
        "n_trials": 2,
    }
    accepted = client.post("/v1/tune", json=body)
    assert accepted.status_code == 202, accepted.text
    too_many = client.post("/v1/tune", json={**body, "steps": 3})
    assert too_many.status_code == 422 and "largest masked count, 2" in too_many.text, too_many.text
    unscorable = client.post("/v1/tune", json={**body, "metric": "sudoku"})
    assert unscorable.status_code == 422 and "sudoku cannot score" in unscorable.text, unscorable.text
