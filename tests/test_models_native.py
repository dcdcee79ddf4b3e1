"""Native checkpoints: save_native then load_denoiser gives the same logits, as a folder and as a zip."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from _model_builders import tiny_reference

from mdmtune.errors import InvalidInput
from mdmtune.models.base import Denoiser
from mdmtune.models.loading import detect_format, load_denoiser
from mdmtune.models.native import save_native
from mdmtune.models.reference import ReferenceConfig, ReferenceMDM


def _ids(codec) -> torch.Tensor:
    return torch.tensor([codec.encode("12+34=46~~"), codec.encode("_9+_=1__~~")])


def test_native_round_trip_gives_equal_logits(tmp_path: Path) -> None:
    model, codec = tiny_reference()
    save_native(model, codec, tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    assert detect_format(tmp_path / "ckpt") == "native"
    denoiser = load_denoiser(tmp_path / "ckpt", device="cpu")
    assert isinstance(denoiser, Denoiser)
    ids = _ids(codec)
    with torch.no_grad():
        expected = model(ids)
    logits = denoiser.logits(ids)
    assert logits.shape == (2, 10, codec.vocab_size)
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    assert (denoiser.mask_token_id, denoiser.pad_token_id) == (codec.mask_token_id, codec.eot_token_id)
    assert denoiser.codec.mask_token == "_" and denoiser.codec.decode(ids[0].tolist()) == "12+34=46"
    assert denoiser.max_length == model.config.max_len


def test_native_fp16_weights_load_back_as_float32_close_to_the_original(tmp_path: Path) -> None:
    model, codec = tiny_reference()
    save_native(model, codec, tmp_path / "ckpt", dtype=torch.float16)
    denoiser = load_denoiser(tmp_path / "ckpt", device="cpu")
    assert denoiser.dtype == torch.float32
    with torch.no_grad():
        expected = model(_ids(codec))
    torch.testing.assert_close(denoiser.logits(_ids(codec)), expected, rtol=0, atol=1e-2)


@pytest.mark.parametrize("wrapped", [True, False], ids=["zip-of-folder", "zip-of-files"])
def test_native_zip_loads_like_its_folder(tmp_path: Path, wrapped: bool) -> None:
    model, codec = tiny_reference()
    folder = save_native(model, codec, tmp_path / "ckpt")
    archive = tmp_path / "ckpt.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        for path in folder.iterdir():
            handle.write(path, f"ckpt/{path.name}" if wrapped else path.name)
    assert detect_format(archive) == "native"
    from_zip = load_denoiser(archive, device="cpu").logits(_ids(codec))
    torch.testing.assert_close(from_zip, load_denoiser(folder, device="cpu").logits(_ids(codec)), rtol=0, atol=0)


def test_corrupt_safetensors_is_refused_naming_the_file(tmp_path: Path) -> None:
    model, codec = tiny_reference()
    folder = save_native(model, codec, tmp_path / "ckpt")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # truncated
    with pytest.raises(InvalidInput, match=r"model\.safetensors is not a valid safetensors file"):
        load_denoiser(folder)
    weights.write_bytes(b"\x00" * 64)  # garbage header
    with pytest.raises(InvalidInput, match=r"model\.safetensors"):
        load_denoiser(folder)


@pytest.mark.parametrize("missing", ["model.safetensors", "tokenizer.json"])
def test_missing_file_is_refused_naming_it(tmp_path: Path, missing: str) -> None:
    model, codec = tiny_reference()
    folder = save_native(model, codec, tmp_path / "ckpt")
    (folder / missing).unlink()
    with pytest.raises(InvalidInput, match=f"{missing.replace('.', '[.]')} is missing"):
        load_denoiser(folder)


def test_weights_that_do_not_match_the_config_are_refused(tmp_path: Path) -> None:
    small, codec = tiny_reference()
    folder = save_native(small, codec, tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    config["model"]["d_model"] = 32
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInput, match=r"model\.safetensors does not match config\.json"):
        load_denoiser(folder)


def test_native_mask_token_id_cannot_be_overridden_to_another_id(tmp_path: Path) -> None:
    model, codec = tiny_reference()
    folder = save_native(model, codec, tmp_path / "ckpt")
    assert load_denoiser(folder, mask_token_id=codec.mask_token_id).mask_token_id == codec.mask_token_id
    with pytest.raises(InvalidInput, match="mask_token_id"):
        load_denoiser(folder, mask_token_id=5)


def test_ids_longer_than_max_len_are_refused(tmp_path: Path) -> None:
    model, codec = tiny_reference(max_len=8)
    denoiser = load_denoiser(save_native(model, codec, tmp_path / "ckpt"))
    with pytest.raises(InvalidInput, match="over the model's maximum 8"):
        denoiser.logits(torch.zeros(1, 9, dtype=torch.long))


def test_position_groups_survive_the_round_trip_and_change_the_logits(tmp_path: Path) -> None:
    plain, codec = tiny_reference(max_len=4)
    rows_cols = ((0, 0, 1, 1), (0, 1, 0, 1))  # a 2x2 grid
    config = ReferenceConfig(**{**plain.config.to_dict(), "position_groups": rows_cols})
    torch.manual_seed(0)
    model = ReferenceMDM(config).eval()
    with torch.no_grad():
        model.group_embeddings[0].weight.normal_()  # make the grouping matter visibly
    folder = save_native(model, codec, tmp_path / "grid")
    assert json.loads((folder / "config.json").read_text())["model"]["position_groups"] == [[0, 0, 1, 1], [0, 1, 0, 1]]
    denoiser = load_denoiser(folder)
    ids = torch.tensor([codec.encode("1_2_")])
    with torch.no_grad():
        expected = model(ids)
    torch.testing.assert_close(denoiser.logits(ids), expected, rtol=0, atol=0)
    assert denoiser.module.config.position_groups == rows_cols
    with torch.no_grad():
        for embedding in model.group_embeddings:
            embedding.weight.zero_()
        assert not torch.allclose(expected, model(ids))


def test_position_groups_of_the_wrong_length_are_refused() -> None:
    plain, _ = tiny_reference(max_len=4)
    with pytest.raises(InvalidInput, match="position_groups"):
        ReferenceConfig(**{**plain.config.to_dict(), "position_groups": ((0, 1, 2),)})


def test_group_attention_sees_peers_only_and_survives_the_round_trip(tmp_path: Path) -> None:
    """One layer on a 3x3 grid: a cell's logits move when a cell of its row or column changes, never otherwise."""
    plain, codec = tiny_reference(max_len=9)
    rows_cols = (tuple(i // 3 for i in range(9)), tuple(i % 3 for i in range(9)))
    settings = {**plain.config.to_dict(), "n_layers": 1, "position_groups": rows_cols, "group_attention": True}
    torch.manual_seed(0)
    model = ReferenceMDM(ReferenceConfig(**settings)).eval()
    folder = save_native(model, codec, tmp_path / "peers")
    assert json.loads((folder / "config.json").read_text())["model"]["group_attention"] is True
    denoiser = load_denoiser(folder)
    base = torch.tensor([codec.encode("123456789")])
    changed = torch.tensor([codec.encode("123456780")])  # cell 8: row 2, column 2
    moved = (denoiser.logits(base) - denoiser.logits(changed)).abs().amax(dim=-1)[0]
    peers_of_8 = {2, 5, 6, 7, 8}
    assert all((moved[i] > 0) == (i in peers_of_8) for i in range(9)), moved
    with pytest.raises(InvalidInput, match="group_attention"):
        ReferenceConfig(**{**plain.config.to_dict(), "group_attention": True})
