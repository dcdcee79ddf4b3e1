"""A frontier job over HTTP (real uvicorn, in-process worker, SQLite): it returns the document `mdmtune frontier
--json` prints for the same checkpoint, eval set and settings; budgets are a frontier-only field."""

from __future__ import annotations

import json

import pytest
from apiartifacts import native_folder, zip_folder
from apiserver import Server, database, running_server, wait_for_status

from mdmtune.cli.main import main
from mdmtune.data.evalsets import dumps_eval_set
from mdmtune.service.settings import Settings

FINAL = {"succeeded", "failed", "cancelled"}
RECORDS = [{"id": i, "prompt": f"{i}+{i}=", "answer": str(2 * i)} for i in range(12)]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    folder = tmp_path_factory.mktemp("api-frontier")
    with database("sqlite", folder) as url:
        settings = Settings(
            data_dir=folder, database_url=url, require_api_key=True, poll_seconds=0.05, device="cpu", workers=1
        )
        with running_server(settings, workers=1) as srv:
            yield srv


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frontier-files")
    checkpoint = native_folder(folder / "tiny", max_len=32)
    (folder / "eval.jsonl").write_bytes(dumps_eval_set(RECORDS))
    return checkpoint, folder / "eval.jsonl"


def test_a_frontier_job_returns_the_same_json_as_the_command(server, files, tmp_path, capsys):
    checkpoint, eval_set = files
    key = server.new_key()
    with server.client(key) as client:
        uploaded = client.post("/v1/checkpoints", files={"file": ("tiny.zip", zip_folder(checkpoint))})
        records = client.post("/v1/eval-sets", files={"file": ("set.jsonl", eval_set.read_bytes())})
        assert uploaded.status_code == 201 and records.status_code == 201
        body = {
            "checkpoint_id": uploaded.json()["id"],
            "eval_set_id": records.json()["id"],
            "objective": "frontier",
            "metric": "exact_match",
            "steps": 4,
            "budgets": [4, 2],
            "gen_length": 4,
            "n_trials": 3,
            "seed": 2,
        }
        created = client.post("/v1/tune", json=body)
        assert created.status_code == 202, created.text
        job = wait_for_status(client, created.json()["id"], FINAL, timeout=300)
        assert job["status"] == "succeeded", job["error"]
        served = client.get(f"/v1/tune/{job['id']}/frontier")
        best = client.get(f"/v1/tune/{job['id']}/best")
    assert served.status_code == 200, served.text
    assert best.status_code == 409 and "/frontier" in best.json()["detail"]
    assert job["progress"]["trials_done"] == job["progress"]["n_trials"] == 6
    args = ["frontier", "--checkpoint", str(checkpoint), "--eval-set", str(eval_set), "--budgets", "2,4"]
    args += ["--gen-length", "4", "--trials", "3", "--seed", "2", "--out", str(tmp_path / "out"), "--json"]
    args += ["--metric", "exact_match"]
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 0
    local = json.loads(capsys.readouterr().out)
    document = served.json()
    assert document["frontier"] == local["frontier"]
    assert document["nfe"] == local["nfe"] == job["progress"]["nfe"]
    assert [b["budget"] for b in document["frontier"]] == [2, 4]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"budgets": [2, 4]}, "budgets"),  # a quality job takes no budgets
        ({"objective": "frontier", "budgets": [2, 8]}, "steps"),  # 8 calls for 4 generated tokens: more than needed
        ({"objective": "frontier", "budgets": []}, "budgets"),
    ],
)
def test_budgets_are_checked_by_name(server, files, change, field):
    checkpoint, eval_set = files
    key = server.new_key()
    with server.client(key) as client:
        uploaded = client.post("/v1/checkpoints", files={"file": ("tiny.zip", zip_folder(checkpoint))})
        records = client.post("/v1/eval-sets", files={"file": ("set.jsonl", eval_set.read_bytes())})
        body = {"checkpoint_id": uploaded.json()["id"], "eval_set_id": records.json()["id"], "steps": 4}
        body["metric"] = "exact_match"
        response = client.post("/v1/tune", json={**body, "gen_length": 4, **change})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field, response.json()


def test_a_quality_job_scores_its_adaptive_decoder_beside_the_baselines(server, files):
    """decoder threshold on a quality job: the tuned schedule is paired with the decoder on the confirm split, and
    the decoder's score is what evaluate_decoder (mdmtune sample's path) gives on the confirm records."""
    from mdmtune.data.evalsets import load_eval_set
    from mdmtune.models.loading import load_denoiser
    from mdmtune.sampling import SamplerSettings
    from mdmtune.tuning.evaluation import encode_records, evaluate_decoder
    from mdmtune.tuning.quality_objective import split_records

    checkpoint, eval_set = files
    key = server.new_key()
    with server.client(key) as client:
        uploaded = client.post("/v1/checkpoints", files={"file": ("tiny.zip", zip_folder(checkpoint))})
        records = client.post("/v1/eval-sets", files={"file": ("set.jsonl", eval_set.read_bytes())})
        body = {"checkpoint_id": uploaded.json()["id"], "eval_set_id": records.json()["id"], "steps": 4}
        body["metric"] = "exact_match"
        body |= {"gen_length": 4, "n_trials": 3, "seed": 2, "decoder": "threshold", "threshold": 0.05}
        created = client.post("/v1/tune", json=body)
        assert created.status_code == 202, created.text
        job = wait_for_status(client, created.json()["id"], FINAL, timeout=300)
        assert job["status"] == "succeeded", job["error"]
        best = client.get(f"/v1/tune/{job['id']}/best").json()
    rival = best["baselines"]["threshold"]
    denoiser = load_denoiser(checkpoint, device="cpu")
    encoded = encode_records(denoiser, load_eval_set(eval_set), gen_length=4)
    confirm = split_records(len(RECORDS), 0.3, 2)[1]
    settings = SamplerSettings(decoder="threshold", threshold=0.05)
    expected = evaluate_decoder(denoiser, encoded, [0.05], settings, "exact_match", record_indices=confirm, seed=2)
    assert rival["score"] == pytest.approx(float(expected.scores.mean()))
    assert rival["nfe_per_record"] == pytest.approx(float(expected.row_nfe.mean()))
    assert rival["a"] is None and len(rival["diff_ci"]) == 2
    assert rival["diff"] == pytest.approx(best["quality"]["score"] - rival["score"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"threshold": 0.9}, "threshold"),  # no decoder named
        ({"decoder": "threshold"}, "threshold"),  # no threshold given
        ({"decoder": "entropy", "entropy_bound": 5000}, "entropy_bound"),
        ({"objective": "frontier", "decoder": "threshold", "threshold": 0.9}, "decoder"),
    ],
)
def test_decoder_settings_are_checked_by_name(server, files, change, field):
    checkpoint, eval_set = files
    key = server.new_key()
    with server.client(key) as client:
        uploaded = client.post("/v1/checkpoints", files={"file": ("tiny.zip", zip_folder(checkpoint))})
        records = client.post("/v1/eval-sets", files={"file": ("set.jsonl", eval_set.read_bytes())})
        body = {"checkpoint_id": uploaded.json()["id"], "eval_set_id": records.json()["id"], "steps": 4}
        body["metric"] = "exact_match"
        response = client.post("/v1/tune", json={**body, "gen_length": 4, **change})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field, response.json()
