"""Every number a job request carries is bounded, over HTTP (real uvicorn on loopback, SQLite and Postgres) and on
the command line: each value that once made a worker grow without limit, fail at every claim or answer 500 is now a
422 naming the field with nothing stored (no job row, no orphan Optuna study); the bounds show in the OpenAPI
schema; and the largest accepted seed runs to the end with a helper worker deriving its own seed from it."""

from __future__ import annotations

import httpx
import pytest
from apiserver import Server, database, running_server, wait_for_status
from test_api_bad_input import assert_refused
from test_cli_tune import run_cli

from mdmtune.options import limits
from mdmtune.service.settings import Settings

ENERGY = {"objective": "energy", "steps": 8}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory) -> Server:
    folder = tmp_path_factory.mktemp(f"api-limits-{request.param}")
    with database(request.param, folder) as url:
        settings = Settings(data_dir=folder, database_url=url, require_api_key=True, workers=0)
        with running_server(settings) as srv:
            yield srv


@pytest.fixture(scope="module")
def client(server: Server) -> httpx.Client:
    with server.client(server.new_key()) as c:
        yield c


BREAKS = [
    ({"steps": 1_000_000_000, "gen_length": 81}, "steps"),  # grew a worker to 7.6 GB
    ({"objective": "energy", "steps": 3_000_000_000}, "steps"),  # 4.3 GB in 5 s
    ({"n_trials": 10_000_000}, "n_trials"),
    ({"n_trials": 3_000_000_000}, "n_trials"),  # a 500 and an orphan study on Postgres
    ({"seed": 2**32}, "seed"),  # a 500
    ({"seed": 4_294_967_295}, "seed"),  # accepted, then every helper failed and rejoined in a loop
    ({"timeout_seconds": 1e308}, "timeout_seconds"),  # an OverflowError at every claim
    ({"timeout_seconds": limits.MAX_TIMEOUT_SECONDS + 1}, "timeout_seconds"),
    ({"replicates": 1_000_000}, "replicates"),
    ({"subset_size": 10**12}, "subset_size"),
    ({"gen_length": 10**9}, "gen_length"),
    ({"block_length": 10**9}, "block_length"),
    ({"temperature": 1e300}, "temperature"),
    ({"weight_a": 1e300}, "weight_a"),
    ({"a_bounds": [0.1, 1e300]}, "a_bounds[1]"),
    ({"b_bounds": [0.1, 0.5, 1.0]}, "b_bounds"),
    ({"mask_symbol": "x" * 1000}, "mask_symbol"),
]


@pytest.mark.parametrize(("change", "field"), BREAKS, ids=[f"{f}={list(c.values())[-1]}" for c, f in BREAKS])
def test_an_out_of_range_number_is_a_422_naming_it_with_nothing_stored(server, client, change, field):
    assert_refused(server, lambda: client.post("/v1/tune", json={**ENERGY, **change}), 422, field)


def test_every_number_of_a_job_request_has_a_minimum_and_a_maximum_in_the_openapi_schema(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["TuneRequest"]["properties"]
    numeric = set()
    for name, prop in schema.items():
        for option in [prop, *prop.get("anyOf", []), prop.get("items", {})]:
            if option.get("type") in ("integer", "number"):
                numeric.add(name)
                assert "maximum" in option, (name, option)
                assert "minimum" in option or "exclusiveMinimum" in option, (name, option)
    documented = {"steps", "gen_length", "block_length", "temperature", "weight_a", "weight_b", "n_trials"}
    documented |= {"a_bounds", "b_bounds", "subset_size", "replicates", "seed", "timeout_seconds"}
    assert numeric >= documented, documented - numeric


def test_an_eval_line_nested_100000_deep_is_a_422_naming_the_line(server, client):
    deep = b'{"id": 2, "prompt": "1+1=", "answer": "2", "meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    data = b'{"id": 1, "prompt": "1+1=", "answer": "2"}\n' + deep
    send = lambda: client.post("/v1/eval-sets", files={"file": ("deep.jsonl", data)})  # noqa: E731
    problem = assert_refused(server, send, 422, "file")
    assert "line 2" in problem["detail"] and "64" in problem["detail"]


@pytest.mark.parametrize(
    "args",
    [
        ["--steps", "3000000000"],
        ["--steps", "8", "--trials", "3000000000"],
        ["--steps", "8", "--seed", "4294967295"],
    ],
)
def test_the_command_line_has_the_same_bounds(capsys, args):
    code, out, err = run_cli(["tune", "--objective", "energy", *args, "--json"], capsys)
    field = {"--steps": "steps", "--trials": "n_trials", "--seed": "seed"}[args[-2]]
    assert code == 2 and out == "" and f"{field}: must be an integer between" in err, err


def test_the_largest_seed_runs_to_the_end_with_a_helper_deriving_its_own(tmp_path):
    with database("postgres", tmp_path) as url:
        settings = Settings(
            data_dir=tmp_path, database_url=url, require_api_key=True, poll_seconds=0.05, help_min_free_trials=2
        )
        with running_server(settings, workers=2) as srv, srv.client(srv.new_key()) as client:
            body = {**ENERGY, "seed": limits.MAX_SEED, "n_trials": 120}
            created = client.post("/v1/tune", json=body)
            assert created.status_code == 202, created.text
            job = wait_for_status(client, created.json()["id"], {"succeeded", "failed", "cancelled"}, timeout=120)
            trials = client.get(f"/v1/tune/{job['id']}/trials", params={"limit": 1000}).json()["items"]
    assert job["status"] == "succeeded", job["error"]
    workers = {t["user_attrs"].get("mdmtune_worker", {}).get("name") for t in trials}
    assert len(workers - {None}) == 2, workers  # both workers asked trials: the helper's seed was valid too


def test_the_openapi_schema_declares_the_bearer_key_on_every_v1_route_and_documents_400(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        **schema["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            secured = operation.get("security") == [{"bearerAuth": []}]
            assert secured == path.startswith("/v1/"), (path, operation.get("security"))
            if path.startswith("/v1/") and operation.get("requestBody"):
                assert "400" in operation["responses"], path
