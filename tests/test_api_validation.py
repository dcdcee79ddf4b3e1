"""`validate_eval_set_id` on a quality job over HTTP (real uvicorn, in-process worker, SQLite and Postgres): the best
and the baselines are re-scored on a second eval set when the search ends, shown by GET best beside the confirm
split with the per-group breakdown and the shift warnings; a second set that does not fit is refused at POST."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from apiserver import Server, database, running_server, wait_for_status

from mdmtune.core import schedules
from mdmtune.data.evalsets import load_eval_set
from mdmtune.models.loading import load_denoiser
from mdmtune.sampling import SamplerSettings
from mdmtune.service.settings import Settings
from mdmtune.tuning.evaluation import encode_records, evaluate

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "sudoku"
FINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory) -> Server:
    folder = tmp_path_factory.mktemp(f"api-validation-{request.param}")
    with database(request.param, folder) as url:
        settings = Settings(
            data_dir=folder, database_url=url, require_api_key=True, poll_seconds=0.05, device="cpu", workers=1
        )
        with running_server(settings, workers=1) as srv:
            yield srv


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, f"checkpoint/{file.name}")
    return buffer.getvalue()


def _head(path: Path, n: int) -> bytes:
    return "".join(path.read_text().splitlines(keepends=True)[:n]).encode()


@pytest.fixture(scope="module")
def uploaded(server: Server) -> dict[str, str]:
    """The shipped Sudoku checkpoint, 24 shipped puzzles, 20 pattern puzzles and a completion set, uploaded."""
    key = server.new_key()
    sets = {
        "tune": _head(EXAMPLES / "eval.jsonl", 24),
        "second": _head(EXAMPLES / "eval_pattern.jsonl", 20),
        "completion": b'{"id": 1, "prompt": "12", "answer": "3"}\n',
    }
    ids = {"key": key}
    with server.client(key) as client:
        response = client.post("/v1/checkpoints", files={"file": ("sudoku.zip", _zip(EXAMPLES / "checkpoint"))})
        assert response.status_code == 201, response.text
        ids["checkpoint"] = response.json()["id"]
        for name, data in sets.items():
            response = client.post("/v1/eval-sets", files={"file": (f"{name}.jsonl", data)})
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]
    return ids


def test_best_reports_the_second_set_beside_the_confirm_split(server, uploaded, tmp_path):
    body = {
        "checkpoint_id": uploaded["checkpoint"],
        "eval_set_id": uploaded["tune"],
        "validate_eval_set_id": uploaded["second"],
        "metric": "sudoku",
        "steps": 4,
        "n_trials": 3,
        "seed": 2,
    }
    with server.client(uploaded["key"]) as client:
        created = client.post("/v1/tune", json=body)
        assert created.status_code == 202, created.text
        assert created.json()["validate_eval_set_id"] == uploaded["second"]
        job = wait_for_status(client, created.json()["id"], FINAL, timeout=300)
        assert job["status"] == "succeeded", job["error"]
        best = client.get(f"/v1/tune/{job['id']}/best").json()
    validation = best["validation"]
    assert validation["records"] == 20 and set(validation["baselines"]) == {"linear", "cos2", "sine"}
    assert isinstance(best["warnings"], list) and "strata" in best["groups"]
    second = tmp_path / "second.jsonl"
    second.write_bytes(_head(EXAMPLES / "eval_pattern.jsonl", 20))
    denoiser = load_denoiser(EXAMPLES / "checkpoint", device="cpu")
    encoded = encode_records(denoiser, load_eval_set(second))
    tuned = schedules.beta(best["a"], best["b"])
    settings = SamplerSettings("count", "low_confidence", 0.0)
    direct = evaluate(denoiser, encoded, [tuned, schedules.named("linear")], 4, settings, "sudoku", seed=2)
    scores = direct.scores[:, :, 0]
    assert validation["best"]["score"] == pytest.approx(scores[0].mean())
    assert validation["baselines"]["linear"]["score"] == pytest.approx(scores[1].mean())
    assert validation["baselines"]["linear"]["diff"] == pytest.approx(float(np.mean(scores[0] - scores[1])))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"validate_eval_set_id": "completion"}, "validate_eval_set_id"),
        ({"validate_eval_set_id": "no-such-set"}, "validate_eval_set_id"),
    ],
)
def test_a_second_set_that_does_not_fit_is_refused_at_post(server, uploaded, changes, field):
    body = {"checkpoint_id": uploaded["checkpoint"], "eval_set_id": uploaded["tune"], "metric": "sudoku", "steps": 4}
    body["validate_eval_set_id"] = uploaded.get(changes["validate_eval_set_id"], changes["validate_eval_set_id"])
    before = server.row_counts()
    with server.client(uploaded["key"]) as client:
        response = client.post("/v1/tune", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert server.row_counts() == before


def test_an_energy_job_with_a_second_set_is_refused(server, uploaded):
    body = {"objective": "energy", "steps": 8, "validate_eval_set_id": uploaded["second"]}
    with server.client(uploaded["key"]) as client:
        response = client.post("/v1/tune", json=body)
    assert response.status_code == 422 and response.json()["field"] == "validate_eval_set_id"
