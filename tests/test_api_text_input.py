"""Text and types a database or a loader cannot take, over HTTP (real uvicorn on loopback, SQLite and Postgres): a NUL
character in any string of a request (body field, path segment, query parameter, upload file name, a checkpoint's
declared tokens, an eval set's records) is a 422 naming it with nothing stored, where Postgres answered 500; a JSON
boolean where a number belongs is a 422 naming the field; a native checkpoint folder holding a pickle, and a
config.json declaring absurd sizes, are refused at upload naming the file and the key."""

from __future__ import annotations

import json
import pickle
import socket

import httpx
import pytest
import torch
from apiartifacts import hf_folder, native_folder, zip_folder
from apiserver import Server, database, running_server
from test_api_bad_input import assert_refused

from mdmtune.service.settings import Settings

ENERGY = {"objective": "energy", "steps": 8}
NUL = "a\u0000b"
QUALITY = {"steps": 8, "gen_length": 8, "metric": "exact_match", "checkpoint_id": "c" * 32, "eval_set_id": "e" * 32}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory) -> Server:
    folder = tmp_path_factory.mktemp(f"api-text-{request.param}")
    root = folder / "operator-models"
    native_folder(root / "model")
    with database(request.param, folder) as url:
        settings = Settings(
            data_dir=folder, database_url=url, require_api_key=True, workers=0, allowed_uri_roots=[root]
        )
        with running_server(settings) as srv:
            yield srv


@pytest.fixture
def client(server: Server) -> httpx.Client:
    """A fresh connection per test: a 500 would close the shared one and hide the next test's answer."""
    with server.client(server.new_key()) as c:
        yield c


BODY_FIELDS = [
    (ENERGY, "metric"),
    (ENERGY, "mask_symbol"),
    (QUALITY, "checkpoint_id"),
    (QUALITY, "eval_set_id"),
    (QUALITY, "validate_eval_set_id"),
    (QUALITY, "metric"),
    ({**ENERGY, "objective": "frontier"}, "metric"),
]


@pytest.mark.parametrize(
    ("body", "field"), BODY_FIELDS, ids=[f"{b.get('objective', 'quality')}-{f}" for b, f in BODY_FIELDS]
)
def test_a_nul_in_a_tune_field_is_a_422_naming_it(server, client, body, field):
    problem = assert_refused(server, lambda: client.post("/v1/tune", json={**body, field: NUL}), 422, field)
    assert "NUL" in problem["detail"]


@pytest.mark.parametrize("route", ["", "/best", "/frontier", "/trials"])
def test_a_nul_in_a_job_id_is_a_422_naming_it(server, client, route):
    assert_refused(server, lambda: client.get(f"/v1/tune/a%00b{route}"), 422, "id")


def test_a_nul_in_the_job_id_of_a_cancel_is_a_422(server, client):
    assert_refused(server, lambda: client.post("/v1/tune/a%00b/cancel"), 422, "id")


@pytest.mark.parametrize("query", ["limit=10&offset=a%00", "filter=a%00b"])
def test_a_nul_in_a_query_parameter_is_a_422_naming_it(server, client, query):
    name = query.rsplit("&", 1)[-1].split("=")[0]
    assert_refused(server, lambda: client.get(f"/v1/tune/{'0' * 32}/trials?{query}"), 422, name)


def test_a_nul_in_a_server_side_uri_is_a_422(server, client):
    root = server.settings.allowed_uri_roots[0]
    send = lambda: client.post("/v1/checkpoints", json={"uri": f"{root}/model\u0000"})  # noqa: E731
    assert_refused(server, send, 422, "uri")


def raw_upload(server: Server, key: str, path: str, filename: bytes, data: bytes) -> bytes:
    """A multipart upload whose file name carries bytes as they are (httpx would percent-encode a NUL)."""
    host, port = server.base_url.removeprefix("http://").split(":")
    boundary = b"nulboundary"
    body = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--" + boundary + b"--\r\n"
    )
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary.decode()}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


class Raw:
    """An http response read off a socket, shaped like what assert_refused reads."""

    def __init__(self, answer: bytes) -> None:
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status_code = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        self.text = body.decode()

    def json(self) -> dict:
        return json.loads(self.text)


@pytest.mark.parametrize("path", ["/v1/checkpoints", "/v1/eval-sets"])
def test_a_nul_in_an_upload_file_name_is_a_422(server, client, tmp_path, path):
    key = client.headers["Authorization"].removeprefix("Bearer ")
    data = zip_folder(native_folder(tmp_path / "m")) if "checkpoints" in path else b'{"prompt": "a", "answer": "b"}\n'
    problem = assert_refused(server, lambda: Raw(raw_upload(server, key, path, b"a\x00b.bin", data)), 422, "file")
    assert "NUL" in problem["detail"]


def test_a_nul_in_an_eval_record_is_a_422_naming_the_line(server, client):
    data = b'{"prompt": "1+1=", "answer": "2"}\n{"prompt": "2+2=", "answer": "4", "group": "a\\u0000b"}\n'
    send = lambda: client.post("/v1/eval-sets", files={"file": ("set.jsonl", data)})  # noqa: E731
    problem = assert_refused(server, send, 422, "file")
    assert "line 2" in problem["detail"] and "group" in problem["detail"] and "NUL" in problem["detail"]


def test_a_nul_in_a_declared_token_is_a_422_naming_it(server, client, tmp_path):
    folder = native_folder(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["tokenizer"]["mask_token"] = "_\u0000"
    (folder / "config.json").write_text(json.dumps(config))
    send = lambda: client.post("/v1/checkpoints", files={"file": ("m.zip", zip_folder(folder))})  # noqa: E731
    problem = assert_refused(server, send, 422, "file")
    assert "mask_token" in problem["detail"]


def test_a_nul_idempotency_key_never_reaches_the_database(server, client):
    """The HTTP parser itself refuses a raw NUL in a header (400); an escaped one is plain text and works."""
    host, port = server.base_url.removeprefix("http://").split(":")
    body = json.dumps(ENERGY).encode()
    key = client.headers["Authorization"]
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /v1/tune HTTP/1.1\r\nHost: x\r\nAuthorization: " + key.encode() + b"\r\nIdempotency-Key: a\x00b\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")


INTEGER_FIELDS = ["steps", "gen_length", "block_length", "n_trials", "subset_size", "replicates", "seed"]
NUMBER_FIELDS = ["temperature", "weight_a", "weight_b", "cfg_scale", "threshold", "entropy_bound", "timeout_seconds"]


@pytest.mark.parametrize("field", INTEGER_FIELDS + NUMBER_FIELDS)
def test_a_boolean_where_a_number_belongs_is_a_422_naming_it(server, client, field):
    problem = assert_refused(server, lambda: client.post("/v1/tune", json={**ENERGY, field: True}), 422, field)
    assert "boolean" in problem["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"objective": "frontier", "budgets": [4, True]}, "budgets[1]"),
        ({"a_bounds": [True, 2.0]}, "a_bounds[0]"),
        ({"add_special_tokens": 1}, "add_special_tokens"),
        ({"chat_template": "yes"}, "chat_template"),
    ],
)
def test_booleans_and_numbers_are_not_taken_for_each_other(server, client, change, field):
    assert_refused(server, lambda: client.post("/v1/tune", json={**ENERGY, **change}), 422, field)


def test_an_integral_float_is_still_an_integer(server, client):
    response = client.post("/v1/tune", json={**ENERGY, "steps": 8.0, "n_trials": 4})
    assert response.status_code == 202, response.text
    assert response.json()["request"]["steps"] == 8


def pickled(kind: str) -> bytes:
    if kind == "raw":
        return pickle.dumps({"w": [1.0]})
    buffer = __import__("io").BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "kind"), [("pytorch_model.bin", "torch"), ("extra.pkl", "raw"), ("notes.txt", "raw"), ("w.ckpt", "torch")]
)
def test_a_pickle_inside_a_native_folder_is_refused_naming_it(server, client, tmp_path, name, kind):
    folder = native_folder(tmp_path / "m")
    (folder / name).write_bytes(pickled(kind))
    send = lambda: client.post("/v1/checkpoints", files={"file": ("m.zip", zip_folder(folder))})  # noqa: E731
    problem = assert_refused(server, send, 422, "file")
    assert name in problem["detail"] and "pickle" in problem["detail"]


@pytest.mark.parametrize(
    ("maker", "key", "value"),
    [
        ("native", "model.vocab_size", 2**22 + 1),
        ("native", "model.max_len", 2**20 + 1),
        ("native", "model.d_model", 65537),
        ("native", "model.n_layers", 10**6),
        ("native", "model.d_ff", 10**9),
        ("hf", "vocab_size", 10**12),
        ("hf", "max_position_embeddings", 2**31),
        ("hf", "hidden_size", 2**20),
        ("hf", "num_hidden_layers", 5000),
        ("hf", "intermediate_size", 2**24),
        ("hf", "text_config.vocab_size", 2**30),
        ("hf", "vocab_size", -5),
    ],
)
def test_absurd_config_sizes_are_refused_at_upload_naming_the_key(server, client, tmp_path, maker, key, value):
    folder = (native_folder if maker == "native" else hf_folder)(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    *parents, last = key.split(".")
    target = config
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value
    (folder / "config.json").write_text(json.dumps(config))
    send = lambda: client.post("/v1/checkpoints", files={"file": ("m.zip", zip_folder(folder))})  # noqa: E731
    problem = assert_refused(server, send, 422, "file")
    assert key in problem["detail"] and "config.json" in problem["detail"]


def test_real_model_sizes_pass_the_bounds():
    """LLaDA 8B's and Dream 7B's config.json sizes (as published) are far inside every bound."""
    from mdmtune.models.bounds import check_config_sizes

    llada = {"vocab_size": 126464, "embedding_size": 126464, "d_model": 4096, "n_layers": 32, "n_heads": 32}
    llada |= {"mlp_hidden_size": 12288, "max_sequence_length": 4096}
    dream = {"vocab_size": 152064, "hidden_size": 3584, "num_hidden_layers": 28, "intermediate_size": 18944}
    dream |= {"max_position_embeddings": 131072, "num_attention_heads": 28, "num_key_value_heads": 4}
    modernbert = {"vocab_size": 50368, "hidden_size": 1024, "num_hidden_layers": 28, "max_position_embeddings": 8192}
    for config in (llada, dream, modernbert):
        check_config_sizes(config)
