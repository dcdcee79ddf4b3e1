"""Format detection and the errors of load_denoiser: every refusal names the file or the option."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch
from _model_builders import PickleTripwire, tiny_reference

from mdmtune.errors import InvalidInput
from mdmtune.models.json_files import read_json
from mdmtune.models.loading import detect_format, load_denoiser
from mdmtune.models.native import save_native


def test_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_denoiser(tmp_path / "nowhere")


def test_bare_safetensors_file_is_refused_with_advice(tmp_path: Path) -> None:
    model, codec = tiny_reference()
    folder = save_native(model, codec, tmp_path / "ckpt")
    with pytest.raises(InvalidInput, match=r"model\.safetensors alone has no config or tokenizer"):
        detect_format(folder / "model.safetensors")


def test_folder_with_only_a_pickle_names_the_pickle(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    marker = tmp_path / "unpickled"
    torch.save(PickleTripwire(marker), tmp_path / "ckpt" / "weights.pt")
    with pytest.raises(InvalidInput, match=r"weights\.pt is a pickle file"):
        load_denoiser(tmp_path / "ckpt")
    assert not marker.exists()


def test_unknown_folder_lists_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInput, match=r"holds notes\.txt"):
        detect_format(tmp_path / "ckpt")


def test_zip_of_something_else_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("readme.md", "nothing here")
    with pytest.raises(InvalidInput, match=r"x\.zip holds no native, hf or torchscript checkpoint"):
        detect_format(archive)


def test_text_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.txt"
    path.write_text("not a model")
    with pytest.raises(InvalidInput, match=r"model\.txt is not a checkpoint"):
        load_denoiser(path)


def test_unknown_format_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="format") as caught:
        load_denoiser(tmp_path, format="onnx")
    assert caught.value.field == "format"


def test_hf_only_options_are_refused_for_native(tmp_path: Path) -> None:
    model, codec = tiny_reference()
    folder = save_native(model, codec, tmp_path / "ckpt")
    with pytest.raises(InvalidInput, match="shifted_logits"):
        load_denoiser(folder, shifted_logits=True)
    with pytest.raises(InvalidInput, match="pad_token_id"):
        load_denoiser(folder, pad_token_id=3)


def test_forcing_the_wrong_format_is_refused_not_misread(tmp_path: Path) -> None:
    model, codec = tiny_reference()
    folder = save_native(model, codec, tmp_path / "ckpt")
    with pytest.raises(InvalidInput, match="TorchScript"):
        load_denoiser(folder, format="torchscript")


def test_every_loader_reads_a_folders_json_files_alike(tmp_path: Path):
    assert read_json(tmp_path, "generation_config.json", required=False) is None
    with pytest.raises(InvalidInput, match=r"config\.json is missing") as missing:
        read_json(tmp_path, "config.json", required=True)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InvalidInput, match=r"config\.json is not valid JSON") as broken:
        read_json(tmp_path, "config.json", required=False)
    assert missing.value.field == broken.value.field == "checkpoint"
    (tmp_path / "config.json").write_text('{"mask_token_id": 3}')
    assert read_json(tmp_path, "config.json", required=True) == {"mask_token_id": 3}
