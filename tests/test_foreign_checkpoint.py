"""A masked LM trained elsewhere samples in mdmtune exactly as its own transformers loop samples it.

The checkpoint is examples/bert_arithmetic/checkpoint: a BertForMaskedLM with a standard BertTokenizerFast (whose
template wraps every text in [CLS] ... [SEP]), trained with transformers alone on two-digit additions
(scripts/train_bert_mdm.py) and written by save_pretrained; its eval set is examples/bert_arithmetic/eval.jsonl.
The reference is scripts/hf_reference_loop.py, a loop written directly against transformers (the tokenizer's own
__call__, model(input_ids).logits, LLaDA's low-confidence top-k commits, tokenizer.decode). At temperature 0 both
must give the same tokens and the same outputs and scores, record for record, for linear and two Beta schedules,
infill and completion, with and without blocks.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mdmtune.cli.main import main
from mdmtune.core.schedules import alpha_grids, beta, named
from mdmtune.data.evalsets import EvalRecord, parse_eval_set
from mdmtune.metrics import get_metric
from mdmtune.models.loading import load_denoiser
from mdmtune.sampling import SamplerSettings, sample
from mdmtune.tuning.evaluation import encode_records, evaluate

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "examples" / "bert_arithmetic" / "checkpoint"
EVAL_SET = ROOT / "examples" / "bert_arithmetic" / "eval.jsonl"
GEN_LENGTH = 16
RECORDS = 16
SCHEDULES = {"linear": (None, None), "beta(0.7,0.7)": (0.7, 0.7), "beta(1,0.2)": (1.0, 0.2)}


def _reference_module():
    spec = importlib.util.spec_from_file_location("hf_reference_loop", ROOT / "scripts" / "hf_reference_loop.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["hf_reference_loop"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference():
    return _reference_module()


@pytest.fixture(scope="module")
def denoiser():
    return load_denoiser(CHECKPOINT, device="cpu")


def completion_records() -> list[dict]:
    lines = EVAL_SET.read_text().splitlines()[:RECORDS]
    return [json.loads(line) for line in lines]


def infill_records() -> list[dict]:
    """The answer region as [MASK]s after the prompt, its first digit given in every other record."""
    out = []
    for i, record in enumerate(completion_records()):
        given = record["answer"][0] if i % 2 else ""
        blanks = GEN_LENGTH - len(given)
        out.append({"id": record["id"], "masked": record["prompt"] + given + "[MASK]" * blanks, "answer": "-"})
    return out


def _schedule(name: str):
    a, b = SCHEDULES[name]
    return named("linear") if a is None else beta(a, b)


def _ours(denoiser, records: list[dict], steps: int, schedule, block_length: int | None) -> torch.Tensor:
    data = "\n".join(json.dumps(r) for r in records).encode()
    eval_set = parse_eval_set(data)
    kind = eval_set.kind
    encoded = encode_records(denoiser, eval_set, gen_length=GEN_LENGTH if kind == "completion" else None)
    settings = SamplerSettings(block_length=block_length)
    alphas = alpha_grids([schedule] * len(records), steps)
    out = sample(denoiser, encoded.ids, alphas, settings, list(range(len(records))), encoded.gen_region)
    return out.ids


CASES = [
    # (kind, steps, block_length)
    ("completion", 8, None),
    ("completion", 8, 4),  # four blocks of 4, two steps each
    ("completion", 4, None),
    ("infill", 8, None),
]


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize(("kind", "steps", "block_length"), CASES)
def test_same_tokens_as_the_models_own_transformers_loop(reference, denoiser, schedule, kind, steps, block_length):
    records = completion_records() if kind == "completion" else infill_records()
    a, b = SCHEDULES[schedule]
    theirs = reference.run(CHECKPOINT, records, steps, GEN_LENGTH, block_length, a, b)
    ours = _ours(denoiser, records, steps, _schedule(schedule), block_length)
    assert ours.tolist() == theirs["ids"]
    if kind == "completion":
        assert theirs["mean_score"] > 0, "the shipped model must solve some of these, or equality shows little"


def test_sample_command_scores_record_for_record_what_the_loop_scores(reference, capsys):
    records = completion_records()
    theirs = reference.run(CHECKPOINT, records, 8, GEN_LENGTH, None, 0.7, 0.7)
    with pytest.raises(SystemExit) as done:
        main(
            [
                "sample",
                "--checkpoint",
                str(CHECKPOINT),
                "--eval-set",
                str(EVAL_SET),
                "--steps",
                "8",
                "--a",
                "0.7",
                "--b",
                "0.7",
                "--gen-length",
                str(GEN_LENGTH),
                "--metric",
                "exact_match",
                "--json",
            ]
        )
    captured = capsys.readouterr()
    assert done.value.code == 0, captured.err
    ours = json.loads(captured.out)
    assert ours["model"]["family"] == "masked_lm"
    assert ours["model"]["template"]["prefix"] and ours["model"]["template"]["suffix"]  # [CLS] ... [SEP]
    assert "family masked_lm" in captured.err
    for mine, its in zip(ours["records"][:RECORDS], theirs["records"], strict=True):
        assert (mine["output"], mine["score"]) == (its["output"], its["score"])


def test_without_the_template_the_model_is_read_wrongly_and_results_say_so(denoiser):
    """The failure this project once shipped: special tokens dropped. Off must be a visible choice, not a default."""
    records = [
        EvalRecord(id=r["id"], kind="completion", prompt=r["prompt"], masked=None, answer=r["answer"], line=i + 1)
        for i, r in enumerate(completion_records())
    ]
    scorer = get_metric("exact_match")
    on = encode_records(denoiser, records, gen_length=GEN_LENGTH)
    off = encode_records(denoiser, records, gen_length=GEN_LENGTH, add_special_tokens=False)
    assert on.add_special_tokens and not off.add_special_tokens
    assert off.ids.shape[1] == on.ids.shape[1] - 2
    settings = SamplerSettings()
    scores = [float(np.mean(evaluate(denoiser, e, [named("linear")], 8, settings, scorer).scores)) for e in (on, off)]
    assert scores[0] > scores[1]


def test_an_http_job_on_the_zipped_folder_gives_the_librarys_result(tmp_path):
    """The same spec through the service (upload the zipped save_pretrained folder, POST, poll) and the library."""
    from apiartifacts import zip_folder
    from apiserver import database, running_server, wait_for_status

    from mdmtune.service.settings import Settings
    from mdmtune.tuning import TuneSpec, tune

    lines = EVAL_SET.read_text().splitlines()[:40]
    data = ("\n".join(lines) + "\n").encode()
    fields = {"metric": "exact_match", "steps": 4, "gen_length": GEN_LENGTH, "n_trials": 6, "seed": 3}
    library = tune(TuneSpec(**fields), checkpoint=CHECKPOINT, eval_set=parse_eval_set(data))
    with database("sqlite", tmp_path) as url:
        settings = Settings(data_dir=tmp_path, database_url=url, poll_seconds=0.05, device="cpu", workers=1)
        with running_server(settings, workers=1) as server, server.client(server.new_key()) as client:
            checkpoint = client.post("/v1/checkpoints", files={"file": ("bert.zip", zip_folder(CHECKPOINT))})
            assert checkpoint.status_code == 201, checkpoint.text
            assert checkpoint.json()["format"] == "hf"
            eval_set = client.post("/v1/eval-sets", files={"file": ("eval.jsonl", data)})
            body = {"checkpoint_id": checkpoint.json()["id"], "eval_set_id": eval_set.json()["id"], **fields}
            created = client.post("/v1/tune", json=body)
            assert created.status_code == 202, created.text
            job = wait_for_status(client, created.json()["id"], {"succeeded", "failed", "cancelled"}, timeout=600)
            assert job["status"] == "succeeded", job["error"]
            best = client.get(f"/v1/tune/{job['id']}/best").json()
    assert (best["a"], best["b"]) == (library.best.a, library.best.b)
    assert best["quality"]["score"] == library.best.score
    assert best["model"]["template"] == library.model["template"] and best["model"]["family"] == "masked_lm"
