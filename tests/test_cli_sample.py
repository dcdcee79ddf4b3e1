"""`mdmtune sample` keeps README.md's contract: records (id, output, score), mean_score, nfe; bad input exits 2."""

from __future__ import annotations

import json

import pytest
import torch
from _model_builders import save_tiny_bert, tiny_reference

from mdmtune.cli.main import main
from mdmtune.core.schedules import beta
from mdmtune.data.evalsets import load_eval_set
from mdmtune.models.loading import load_denoiser
from mdmtune.models.native import save_native
from mdmtune.sampling import SamplerSettings
from mdmtune.tuning.evaluation import encode_records, evaluate

COMPLETION = [
    {"id": "a", "prompt": "12+34=", "answer": "46"},
    {"id": 7, "prompt": "5+5=", "answer": "10", "source": "kept and ignored"},
    {"id": "c", "prompt": "100+1=", "answer": "101"},
]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("sample")
    model, codec = tiny_reference(seed=3, max_len=32)
    save_native(model, codec, folder / "native")
    (folder / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in COMPLETION))
    return folder


def test_sample_json_reports_every_record_the_mean_score_and_nfe(capsys, files):
    args = ["sample", "--checkpoint", str(files / "native"), "--eval-set", str(files / "eval.jsonl")]
    args += [
        "--metric",
        "exact_match",
        "--steps",
        "4",
        "--a",
        "1",
        "--b",
        "0.2",
        "--gen-length",
        "8",
        "--block-length",
        "4",
    ]
    args += ["--sampler", "count", "--remasking", "random", "--temperature", "0.5", "--seed", "9", "--json"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    report = json.loads(out)
    assert [r["id"] for r in report["records"]] == ["a", 7, "c"]
    denoiser = load_denoiser(files / "native", device="cpu")
    encoded = encode_records(denoiser, load_eval_set(files / "eval.jsonl"), gen_length=8)
    settings = SamplerSettings("count", "random", 0.5, block_length=4)
    direct = evaluate(denoiser, encoded, [beta(1, 0.2)], 4, settings, "exact_match", seed=9)
    assert [r["output"] for r in report["records"]] == [o[0] for o in direct.outputs[0]]
    assert [r["score"] for r in report["records"]] == direct.scores[0, :, 0].tolist()
    assert report["mean_score"] == pytest.approx(sum(r["score"] for r in report["records"]) / 3)
    assert report["nfe"] == direct.nfe > 0
    assert report["schedule"] == {"name": "beta(1,0.2)", "a": 1.0, "b": 0.2}


def test_sample_infills_a_hugging_face_checkpoint_and_prints_a_table(capsys, tmp_path):
    save_tiny_bert(tmp_path / "bert")
    data = {"id": "s1", "masked": "the [MASK] sat on the [MASK]", "answer": "the cat sat on the mat"}
    (tmp_path / "infill.jsonl").write_text(json.dumps(data) + "\n")
    args = ["sample", "--checkpoint", str(tmp_path / "bert"), "--eval-set", str(tmp_path / "infill.jsonl")]
    code, out, err = run_cli(
        capsys, *args, "--steps", "2", "--name", "cos2", "--sampler", "ancestral", "--metric", "exact_match"
    )
    assert code == 0, err
    assert "s1" in out and "mean score" in out and "nfe" in out


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (["--name", "linear"], "gen_length"),
        (["--name", "linear", "--a", "1", "--b", "1", "--gen-length", "8"], "either --name or --a/--b"),
        (["--name", "linear", "--gen-length", "8", "--sampler", "greedy"], "sampler"),
        (["--name", "linear", "--gen-length", "8", "--block-length", "3"], "block_length"),
        (["--name", "linear", "--gen-length", "8", "--block-length", "2", "--steps", "6"], "steps"),
        (["--name", "linear", "--gen-length", "8", "--metric", "bleu"], "unknown metric"),
        (["--name", "linear", "--gen-length", "8", "--metric", "pass_at_1"], "metric: pass_at_1 cannot score"),
        (["--name", "linear", "--gen-length", "40"], "over the model's maximum"),
        (["--name", "linear", "--gen-length", "8", "--batch-size", "0"], "batch_size"),
        (["--name", "linear", "--gen-length", "8", "--seed", "-1"], "seed"),
        (["--name", "linear", "--gen-length", "8", "--mask-symbol", "x" * 300], "mask_symbol"),
        (["--name", "linear", "--gen-length", "8", "--steps", "0"], "steps"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, files, extra, reason):
    args = ["sample", "--checkpoint", str(files / "native"), "--eval-set", str(files / "eval.jsonl")]
    if "--metric" not in extra:
        args += ["--metric", "exact_match"]
    if "--steps" not in extra:
        args += ["--steps", "4"]
    code, out, err = run_cli(capsys, *args, *extra, "--json")
    assert code == 2
    assert out == ""
    assert reason in err and err.count("\n") == 1


def test_a_missing_checkpoint_exits_2(capsys, files, tmp_path):
    args = ["sample", "--checkpoint", str(tmp_path / "nothing"), "--eval-set", str(files / "eval.jsonl")]
    code, _, err = run_cli(capsys, *args, "--steps", "4", "--name", "linear", "--gen-length", "8")
    assert code == 2 and err.startswith("mdmtune: error:")


def test_no_metric_is_refused_naming_metric_unless_the_set_declares_one(capsys, files, tmp_path):
    base = ["sample", "--checkpoint", str(files / "native"), "--steps", "4", "--name", "linear", "--gen-length", "8"]
    code, out, err = run_cli(capsys, *base, "--eval-set", str(files / "eval.jsonl"), "--json")
    assert code == 2 and out == "" and err.startswith("mdmtune: error: metric: required")
    declared = tmp_path / "declared.jsonl"
    declared.write_text("".join(json.dumps({**r, "metric": "numeric_match"}) + "\n" for r in COMPLETION))
    code, out, err = run_cli(capsys, *base, "--eval-set", str(declared), "--json")
    assert code == 0, err
    assert json.loads(out)["metric"] == "numeric_match"
