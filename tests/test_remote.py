"""`mdmtune remote` and the `Client` class against a real server on loopback (uvicorn + one in-process worker,
keys required): a checkpoint folder to a tuned schedule with the remote commands alone; a nested `zip -r`
archive; a refused request exits 2 naming the field; cancel over the client."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest
from apiartifacts import native_folder
from apiserver import Server, database, running_server
from test_cli_tune import run_cli

from mdmtune.data.evalsets import write_eval_set
from mdmtune.service.client import Client
from mdmtune.service.settings import Settings


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    folder = tmp_path_factory.mktemp("remote")
    with database("sqlite", folder) as url:
        settings = Settings(
            data_dir=folder, database_url=url, require_api_key=True, poll_seconds=0.05, device="cpu", workers=1
        )
        with running_server(settings, workers=1) as srv:
            yield srv


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    """A real native checkpoint folder and an infill eval set on disk, as a user has them."""
    root = tmp_path_factory.mktemp("user")
    checkpoint = native_folder(root / "checkpoint", max_len=16)
    records = [{"id": i, "masked": f"{i}+{i}=__", "answer": f"{i}+{i}={2 * i:02d}"} for i in range(10, 40)]
    write_eval_set(records, root / "eval.jsonl")
    return checkpoint, root / "eval.jsonl"


def test_a_checkpoint_folder_to_a_tuned_schedule_with_remote_commands_alone(server, files, tmp_path, capsys):
    checkpoint, eval_set = files
    key = server.new_key("newcomer")
    args = ["remote", "tune", "--server", server.base_url, "--api-key", key, "--checkpoint", str(checkpoint)]
    args += ["--eval-set", str(eval_set), "--steps", "2", "--metric", "exact_match", "--trials", "6"]
    args += ["--set", "subset_size=8", "--out", str(tmp_path / "figs"), "--json"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    document = json.loads(out)
    best = document["best"]
    with Client(server.base_url, key) as remote:
        job = remote.job(document["job_id"])
        trials = remote.trials(document["job_id"])
    assert job["status"] == "succeeded" and job["phase"] == "finished" and job["progress"]["trials_done"] == 6
    assert {"linear", "cos2", "sine"} <= set(best["baselines"]) and 0 <= best["quality"]["score"] <= 1
    assert sum(t["state"] in ("COMPLETE", "PRUNED") for t in trials) == 6
    for path in document["figures"].values():
        assert Path(path).read_bytes().startswith(b"\x89PNG")
    assert "trials 6/6" in err  # the progress lines (stderr is not a terminal here)


def test_the_steps_one_by_one_and_a_nested_zip(server, files, tmp_path, capsys):
    checkpoint, eval_set = files
    key = server.new_key("steps")
    nested = tmp_path / "ck.zip"  # what `zip -r ck.zip some/where/checkpoint` makes
    with zipfile.ZipFile(nested, "w") as archive:
        for file in sorted(checkpoint.iterdir()):
            archive.write(file, f"some/where/checkpoint/{file.name}")
    common = ["--server", server.base_url, "--api-key", key]
    code, ck_id, err = run_cli(["remote", "upload-checkpoint", str(nested), *common], capsys)
    assert code == 0, err
    code, es_id, err = run_cli(["remote", "upload-eval-set", str(eval_set), *common], capsys)
    assert code == 0, err
    submit = ["remote", "submit", "--checkpoint-id", ck_id.strip(), "--eval-set-id", es_id.strip(), "--steps", "2"]
    code, job_id, err = run_cli([*submit, "--metric", "exact_match", "--trials", "4", *common], capsys)
    assert code == 0, err
    code, out, err = run_cli(["remote", "follow", job_id.strip(), *common], capsys)
    assert code == 0 and out.strip() == "succeeded", (out, err)
    code, out, err = run_cli(["remote", "best", job_id.strip(), *common, "--json"], capsys)
    assert code == 0 and json.loads(out)["best"]["steps"] == 2


def test_a_refused_request_exits_2_naming_the_field(server, capsys):
    key = server.new_key("typo")
    args = ["remote", "submit", "--objective", "energy", "--steps", "3000000000", "--server", server.base_url]
    code, out, err = run_cli([*args, "--api-key", key], capsys)
    assert code == 2 and out == "" and err.startswith("mdmtune: error: steps: "), err


def test_the_client_cancels_a_running_job(server):
    with Client(server.base_url, server.new_key("cancel")) as remote:
        job = remote.submit(objective="energy", steps=4, n_trials=10_000, search_algorithm="random")
        started = time.monotonic()
        while remote.job(job["id"])["progress"]["trials_done"] == 0 and time.monotonic() - started < 60:
            time.sleep(0.05)
        assert remote.job(job["id"])["phase"] == "searching"
        remote.cancel(job["id"])
        done = remote.follow(job["id"], poll_s=0.05, timeout_s=60)
    assert done["status"] == "cancelled" and done["phase"] == "finished"
    assert done["progress"]["trials_done"] < 10_000
