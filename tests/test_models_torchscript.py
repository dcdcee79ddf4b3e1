"""TorchScript checkpoints written by torch.jit.save in the test; torch.save pickles refused and never unpickled."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from _model_builders import PickleTripwire, tiny_reference

from mdmtune.errors import InvalidInput
from mdmtune.models.base import Denoiser
from mdmtune.models.loading import detect_format, load_denoiser

# TorchScript is deprecated upstream in favour of torch.export, but it is the format users hand in (README.md).
# Tracing the reference model's Python length check is expected (the traced graph is used at one length here).
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]


def _ids(codec) -> torch.Tensor:
    return torch.tensor([codec.encode("12+34=46~~"), codec.encode("_9+_=1__~~")])


def _save_torchscript(folder: Path, ids_config: dict | None = None):
    """model.pt (traced reference MDM) + tokenizer.json (+ config.json with the ids)."""
    model, codec = tiny_reference()
    folder.mkdir()
    traced = torch.jit.trace(model, (_ids(codec),))
    torch.jit.save(traced, str(folder / "model.pt"))
    codec.save(folder / "tokenizer.json")
    if ids_config is not None:
        (folder / "config.json").write_text(json.dumps(ids_config))
    return model, codec


def test_torchscript_folder_round_trip_gives_equal_logits(tmp_path: Path) -> None:
    model, codec = _save_torchscript(tmp_path / "ts", {"mask_token_id": 0, "pad_token_id": 1})
    assert detect_format(tmp_path / "ts") == "torchscript"
    denoiser = load_denoiser(tmp_path / "ts", device="cpu")
    assert isinstance(denoiser, Denoiser)
    ids = _ids(codec)
    with torch.no_grad():
        expected = model(ids)
    logits = denoiser.logits(ids)
    assert logits.shape == (2, 10, codec.vocab_size) and denoiser.vocab_size == codec.vocab_size
    torch.testing.assert_close(logits, expected)
    assert denoiser.codec.mask_token == "_"
    assert denoiser.codec.decode(ids[0].tolist()) == "12+34=46"


def test_zipped_torchscript_folder_loads(tmp_path: Path) -> None:
    model, codec = _save_torchscript(tmp_path / "ts", {"mask_token_id": 0, "pad_token_id": 1})
    archive = tmp_path / "ts.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in (tmp_path / "ts").iterdir():
            handle.write(path, path.name)
    assert detect_format(archive) == "torchscript"
    with torch.no_grad():
        expected = model(_ids(codec))
    torch.testing.assert_close(load_denoiser(archive).logits(_ids(codec)), expected)


def test_bare_torchscript_file_needs_explicit_ids_and_a_tokenizer_beside_it(tmp_path: Path) -> None:
    model, codec = _save_torchscript(tmp_path / "ts")
    bare = tmp_path / "ts" / "model.pt"
    assert detect_format(bare) == "torchscript"
    with pytest.raises(InvalidInput, match="needs mask_token_id") as caught:
        load_denoiser(bare)
    assert caught.value.field == "mask_token_id"
    denoiser = load_denoiser(bare, mask_token_id=0, pad_token_id=1)
    with torch.no_grad():
        torch.testing.assert_close(denoiser.logits(_ids(codec)), model(_ids(codec)))
    (tmp_path / "ts" / "tokenizer.json").unlink()
    with pytest.raises(InvalidInput, match=r"tokenizer\.json is missing"):
        load_denoiser(bare, mask_token_id=0, pad_token_id=1)


def test_mask_token_id_override_wins_over_config(tmp_path: Path) -> None:
    _, codec = _save_torchscript(tmp_path / "ts", {"mask_token_id": 0, "pad_token_id": 1})
    denoiser = load_denoiser(tmp_path / "ts", mask_token_id=3)
    assert denoiser.mask_token_id == 3 and denoiser.codec.mask_token == codec.tokenizer.id_to_token(3)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip-serialization", "legacy-pickle"])
def test_torch_save_file_is_refused_and_never_unpickled(tmp_path: Path, zip_format: bool) -> None:
    _save_torchscript(tmp_path / "ts", {"mask_token_id": 0, "pad_token_id": 1})
    marker = tmp_path / "unpickled"
    payload = {"state": PickleTripwire(marker)}
    torch.save(payload, tmp_path / "ts" / "model.pt", _use_new_zipfile_serialization=zip_format)
    with pytest.raises(InvalidInput, match=r"model\.pt is a (torch\.save )?pickle"):
        load_denoiser(tmp_path / "ts")
    with pytest.raises(InvalidInput, match=r"model\.pt is a (torch\.save )?pickle"):
        detect_format(tmp_path / "ts" / "model.pt")
    assert not marker.exists()


def test_forward_that_does_not_return_logits_is_refused(tmp_path: Path) -> None:
    class Flat(torch.nn.Module):
        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return ids.float().sum(dim=1)

    _save_torchscript(tmp_path / "ts", {"mask_token_id": 0, "pad_token_id": 1})
    torch.jit.save(torch.jit.script(Flat()), str(tmp_path / "ts" / "model.pt"))
    with pytest.raises(InvalidInput, match=r"forward must map ids \[B, L\] to logits \[B, L, V\]"):
        load_denoiser(tmp_path / "ts")


def test_an_id_outside_the_vocabulary_is_refused_naming_its_field(tmp_path: Path) -> None:
    _model, codec = _save_torchscript(tmp_path / "ts", {"mask_token_id": 0, "pad_token_id": 1})
    with pytest.raises(InvalidInput, match=r"outside the model's vocabulary \[0, ") as refused:
        load_denoiser(tmp_path / "ts", device="cpu", pad_token_id=codec.vocab_size)
    assert refused.value.field == "pad_token_id"
