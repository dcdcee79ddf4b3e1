"""The bad-input matrix over HTTP (real uvicorn on loopback, SQLite and Postgres): every refusal is a 4xx
application/problem+json that names the field, and leaves no file in the artifact store and no row in any table."""

from __future__ import annotations

import io
import json
import pickle

import httpx
import pytest
import torch
from apiartifacts import hf_folder, native_folder, zip_folder, zipped
from apiserver import Server, database, running_server

from mdmtune.service.settings import Settings

MAX_UPLOAD = 256 * 1024


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory) -> Server:
    folder = tmp_path_factory.mktemp(f"api-bad-{request.param}")
    with database(request.param, folder) as url:
        settings = Settings(
            data_dir=folder,
            database_url=url,
            require_api_key=True,
            max_upload_bytes=MAX_UPLOAD,
            max_unpacked_bytes=4 * MAX_UPLOAD,
            workers=0,
        )
        with running_server(settings) as srv:
            yield srv


@pytest.fixture(scope="module")
def client(server: Server) -> httpx.Client:
    with server.client(server.new_key()) as c:
        yield c


def assert_refused(server: Server, send, status: int, field: str) -> dict:
    """Send the request; check the problem document and that nothing was stored."""
    rows, files = server.row_counts(), server.stored_files()
    response = send()
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["field"] == field, problem
    assert problem["detail"]
    assert server.row_counts() == rows
    assert server.stored_files() == files
    return problem


def post_tune(client: httpx.Client, body: dict):
    return lambda: client.post("/v1/tune", json=body)


def upload(client: httpx.Client, path: str, name: str, data: bytes):
    return lambda: client.post(path, files={"file": (name, data)})


ENERGY = {"objective": "energy", "steps": 8}


def test_malformed_json_names_the_body(server, client):
    send = lambda: client.post("/v1/tune", content=b'{"steps": 8,', headers={"content-type": "application/json"})  # noqa: E731
    assert_refused(server, send, 422, "body")


def test_a_body_that_cannot_be_parsed_names_the_body(server, client):
    send = lambda: client.post("/v1/tune", content=b"\xff\xfe{", headers={"content-type": "application/json"})  # noqa: E731
    assert_refused(server, send, 400, "body")


def test_unknown_field_is_named(server, client):
    assert_refused(server, post_tune(client, {**ENERGY, "stpes": 8}), 422, "stpes")


@pytest.mark.parametrize(
    ("field", "bounds"),
    [("a_bounds", [0.0, 1.0]), ("a_bounds", [-1.0, 2.0]), ("b_bounds", [0.0, 3.0]), ("a_bounds", [2.0, 1.0])],
)
def test_bounds_at_or_below_zero_are_refused(server, client, field, bounds):
    problem = assert_refused(server, post_tune(client, {**ENERGY, field: bounds}), 422, problem_field(field, bounds))
    assert problem["detail"]


def problem_field(field: str, bounds: list[float]) -> str:
    """The end at fault is named (a_bounds[0]) when one end is out of range; the pair when they are misordered."""
    bad = [i for i, value in enumerate(bounds) if value <= 0]
    return f"{field}[{bad[0]}]" if bad else field


@pytest.mark.parametrize("steps", [0, -3, 33])
def test_steps_below_one_or_above_gen_length_are_refused(server, client, steps):
    assert_refused(server, post_tune(client, {**ENERGY, "steps": steps, "gen_length": 32}), 422, "steps")


def test_block_length_not_dividing_gen_length_is_refused(server, client):
    body = {**ENERGY, "steps": 8, "gen_length": 32, "block_length": 5}
    assert_refused(server, post_tune(client, body), 422, "block_length")


def test_steps_not_divisible_by_block_count_is_refused(server, client):
    body = {**ENERGY, "steps": 6, "gen_length": 32, "block_length": 8}
    assert_refused(server, post_tune(client, body), 422, "steps")


def test_unknown_metric_is_refused(server, client):
    body = {"steps": 8, "metric": "bleu-9000", "checkpoint_id": "x", "eval_set_id": "y", "gen_length": 8}
    assert_refused(server, post_tune(client, body), 422, "metric")


def test_quality_job_without_or_with_unknown_checkpoint_is_refused(server, client):
    assert_refused(server, post_tune(client, {"steps": 8, "gen_length": 8}), 422, "checkpoint_id")
    body = {"steps": 8, "gen_length": 8, "checkpoint_id": "0" * 32, "eval_set_id": "0" * 32}
    assert_refused(server, post_tune(client, body), 422, "checkpoint_id")


def test_eval_set_with_a_bad_line_names_the_line(server, client):
    data = b'{"id": 1, "prompt": "1+1=", "answer": "2"}\n{"id": 2, "prompt": 3\n'
    problem = assert_refused(server, upload(client, "/v1/eval-sets", "set.jsonl", data), 422, "file")
    assert "line 2" in problem["detail"]


def test_empty_eval_set_is_refused(server, client):
    assert_refused(server, upload(client, "/v1/eval-sets", "set.jsonl", b"\n\n"), 422, "file")


def test_corrupt_safetensors_is_refused(server, client, tmp_path):
    folder = native_folder(tmp_path / "model")
    weights = folder / "model.safetensors"
    good = weights.read_bytes()
    for broken in (good[:8] + b"\xff" * 16 + good[24:], good[: len(good) // 2]):  # bad header; truncated
        weights.write_bytes(broken)
        send = upload(client, "/v1/checkpoints", "model.zip", zip_folder(folder))
        problem = assert_refused(server, send, 422, "file")
        assert "model.safetensors" in problem["detail"]


def test_pickle_files_are_refused(server, client, tmp_path):
    plain = pickle.dumps({"w": [1.0, 2.0]})
    assert_refused(server, upload(client, "/v1/checkpoints", "model.pkl", plain), 422, "file")
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buffer)  # a zip holding data.pkl: unpickling it would run code
    assert_refused(server, upload(client, "/v1/checkpoints", "model.pt", buffer.getvalue()), 422, "file")
    folder = hf_folder(tmp_path / "bert")
    (folder / "model.safetensors").unlink()
    torch.save({"w": torch.zeros(4)}, folder / "pytorch_model.bin")  # weights only as a pickle
    problem = assert_refused(server, upload(client, "/v1/checkpoints", "bert.zip", zip_folder(folder)), 422, "file")
    assert "pytorch_model.bin" in problem["detail"]


def test_zip_with_parent_paths_is_refused(server, client):
    data = zipped({"model/config.json": b"{}", "../../evil.txt": b"owned"})
    assert_refused(server, upload(client, "/v1/checkpoints", "model.zip", data), 422, "file")


def test_zip_bomb_is_refused(server, client):
    data = zipped({"model/config.json": b"{}", "model/big.bin": b"\0" * (8 * MAX_UPLOAD)})
    assert len(data) < MAX_UPLOAD
    assert_refused(server, upload(client, "/v1/checkpoints", "model.zip", data), 422, "file")


@pytest.mark.parametrize("path", ["/v1/checkpoints", "/v1/eval-sets"])
@pytest.mark.parametrize("size", [MAX_UPLOAD + 1, 16 * MAX_UPLOAD])  # caught while streaming; by Content-Length
def test_oversize_upload_is_413(server, client, path, size):
    data = b"x" * size
    assert_refused(server, upload(client, path, "big.bin", data), 413, "file")


def test_upload_without_the_file_field_is_refused(server, client):
    send = lambda: client.post("/v1/eval-sets", files={"data": ("set.jsonl", b'{"id":1,"prompt":"a","answer":"b"}')})  # noqa: E731
    assert_refused(server, send, 422, "data")


def test_server_side_uri_outside_allowed_roots_is_refused(server, client):
    assert_refused(server, lambda: client.post("/v1/checkpoints", json={"uri": "/etc"}), 403, "uri")


@pytest.mark.parametrize("header", [None, "Bearer mdmt_wrong", "Basic dXNlcjpwYXNz", "Bearer"])
def test_missing_or_wrong_api_key_is_401(server, header):
    headers = {"Authorization": header} if header else {}
    with httpx.Client(base_url=server.base_url, headers=headers) as anonymous:
        for send in (
            post_tune(anonymous, ENERGY),
            upload(anonymous, "/v1/eval-sets", "set.jsonl", b'{"id":1,"prompt":"a","answer":"b"}\n'),
            lambda: anonymous.get("/v1/tune/" + "0" * 32),
        ):
            problem = assert_refused(server, send, 401, "Authorization")
            assert "Bearer" in json.dumps(problem) or problem["detail"]
