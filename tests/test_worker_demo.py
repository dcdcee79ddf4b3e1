"""`mdmtune demo` end to end on a tiny real checkpoint: server up on loopback, uploads over HTTP, a quality job at 8
steps, the best schedule against the baselines, the figures on disk, and the server stopped afterwards."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlparse

import pytest
import torch

from mdmtune.cli.main import main
from mdmtune.data.evalsets import write_eval_set
from mdmtune.models.native import save_native
from mdmtune.models.reference import ReferenceConfig, ReferenceMDM
from mdmtune.testbeds import get_testbed
from mdmtune.training.loop import codec_for


@pytest.fixture
def example_dir(tmp_path):
    """An example folder shaped like examples/sudoku: eval.jsonl (real Sudoku records) + a native checkpoint."""
    testbed = get_testbed("sudoku")
    codec = codec_for(testbed)
    config = ReferenceConfig(
        vocab_size=codec.vocab_size,
        max_len=81,
        mask_token_id=codec.mask_token_id,
        pad_token_id=codec.eot_token_id,
        d_model=16,
        n_layers=1,
        n_heads=2,
        d_ff=32,
    )
    torch.manual_seed(0)
    folder = tmp_path / "example"
    save_native(ReferenceMDM(config).eval(), codec, folder / "checkpoint")
    write_eval_set(testbed.eval_records(8, 123), folder / "eval.jsonl")
    return folder


@pytest.mark.slow
def test_demo_tunes_the_example_over_http_and_stops_the_server(example_dir, tmp_path, capsys):
    data_dir = tmp_path / "data"
    argv = ["demo", "--example-dir", str(example_dir), "--data-dir", str(data_dir), "--trials", "3", "--json"]
    with pytest.raises(SystemExit) as done:
        main(argv)
    captured = capsys.readouterr()
    assert done.value.code == 0, captured.err
    report = json.loads(captured.out)
    best = report["best"]
    assert best["steps"] == 8 and best["objective"] == "quality"
    assert set(best["baselines"]) >= {"linear", "cos2"}
    assert best["quality"]["ci"] is not None
    for path in report["figures"].values():
        assert path.endswith(".png") and (data_dir / "figures").is_dir()
        with open(path, "rb") as figure:
            assert figure.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "trials   3/3" in captured.err  # progress was shown
    port = urlparse(captured.err.split("server on ")[1].split(";")[0]).port
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # the server was stopped


def test_demo_refuses_an_unknown_example_naming_the_field(capsys):
    with pytest.raises(SystemExit) as done:
        main(["demo", "--example", "chess"])
    assert done.value.code == 2
    error = capsys.readouterr().err
    assert "example" in error and "sudoku" in error and "arithmetic" in error
