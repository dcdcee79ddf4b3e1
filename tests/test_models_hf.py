"""Hugging Face checkpoints written by transformers' save_pretrained in the test, loaded through load_denoiser."""

from __future__ import annotations

import json
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
from _model_builders import PickleTripwire, save_tiny_bert, word_tokenizer

from mdmtune.errors import InvalidInput
from mdmtune.models.base import Denoiser
from mdmtune.models.loading import detect_format, load_denoiser

pytest.importorskip("transformers")


def _ids(tokenizer) -> torch.Tensor:
    rows = [tokenizer.encode(text, add_special_tokens=False) for text in ("the cat [MASK] on", "a dog ran [MASK]")]
    return torch.tensor(rows)


def test_tiny_bert_loads_and_gives_the_models_own_logits(tmp_path: Path) -> None:
    model, tokenizer = save_tiny_bert(tmp_path / "bert")
    assert detect_format(tmp_path / "bert") == "hf"
    denoiser = load_denoiser(tmp_path / "bert", device="cpu")
    assert isinstance(denoiser, Denoiser)
    ids = _ids(tokenizer)
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    logits = denoiser.logits(ids)
    assert logits.shape == (2, 4, len(tokenizer)) and logits.dtype == torch.float32
    torch.testing.assert_close(logits, expected)
    assert denoiser.mask_token_id == tokenizer.mask_token_id
    assert denoiser.pad_token_id == tokenizer.pad_token_id
    assert denoiser.codec.mask_token == "[MASK]"
    assert denoiser.codec.encode("the [MASK]") == [tokenizer.convert_tokens_to_ids("the"), tokenizer.mask_token_id]
    assert denoiser.codec.decode(ids[0].tolist()) == "the cat on"
    assert denoiser.max_length == 32


def test_attention_mask_is_passed_to_the_model(tmp_path: Path) -> None:
    model, tokenizer = save_tiny_bert(tmp_path / "bert")
    denoiser = load_denoiser(tmp_path / "bert", device="cpu")
    ids = _ids(tokenizer)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    torch.testing.assert_close(denoiser.logits(ids, mask)[real], expected[real])


def test_a_left_padded_row_gets_the_logits_it_has_alone(tmp_path: Path) -> None:
    """BERT's positions are absolute: a left-padded row must count its positions from its first real token."""
    model, tokenizer = save_tiny_bert(tmp_path / "bert")
    denoiser = load_denoiser(tmp_path / "bert", device="cpu")
    alone = torch.tensor([tokenizer.encode("the cat [MASK]", add_special_tokens=False)])
    padded = torch.cat([torch.full((1, 2), tokenizer.pad_token_id), alone], dim=1)
    mask = torch.tensor([[0, 0, 1, 1, 1]])
    with torch.no_grad():
        expected = model(input_ids=alone).logits
    torch.testing.assert_close(denoiser.logits(padded, mask)[:, 2:], expected)


def test_shifted_logits_are_moved_back_one_position(tmp_path: Path) -> None:
    """Dream's convention: the model's row i predicts token i+1; after the shift row i predicts token i."""
    model, tokenizer = save_tiny_bert(tmp_path / "bert")
    shifted = load_denoiser(tmp_path / "bert", shifted_logits=True)
    ids = _ids(tokenizer)
    with torch.no_grad():
        raw = model(input_ids=ids).logits
    out = shifted.logits(ids)
    assert out.shape == raw.shape
    torch.testing.assert_close(out[:, 1:], raw[:, :-1])
    torch.testing.assert_close(out[:, 0], raw[:, 0])


def test_mask_token_id_override_wins_over_the_tokenizer(tmp_path: Path) -> None:
    _, tokenizer = save_tiny_bert(tmp_path / "bert")
    denoiser = load_denoiser(tmp_path / "bert", mask_token_id=6)
    assert denoiser.mask_token_id == 6
    assert denoiser.codec.mask_token == tokenizer.convert_ids_to_tokens(6)
    with pytest.raises(InvalidInput, match="mask_token_id"):
        load_denoiser(tmp_path / "bert", mask_token_id=10_000)


def test_zipped_hf_folder_loads(tmp_path: Path) -> None:
    model, tokenizer = save_tiny_bert(tmp_path / "bert")
    archive = tmp_path / "bert.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in (tmp_path / "bert").iterdir():
            handle.write(path, f"bert/{path.name}")
    assert detect_format(archive) == "hf"
    with torch.no_grad():
        expected = model(input_ids=_ids(tokenizer)).logits
    torch.testing.assert_close(load_denoiser(archive).logits(_ids(tokenizer)), expected)


def test_pytorch_model_bin_alone_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    save_tiny_bert(tmp_path / "bert")
    (tmp_path / "bert" / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    torch.save({"weights": PickleTripwire(marker)}, tmp_path / "bert" / "pytorch_model.bin")
    with pytest.raises(InvalidInput, match=r"pytorch_model\.bin is a pickle file"):
        load_denoiser(tmp_path / "bert")
    assert not marker.exists()


def test_corrupt_hf_safetensors_is_refused_naming_the_file(tmp_path: Path) -> None:
    save_tiny_bert(tmp_path / "bert")
    weights = tmp_path / "bert" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-50])
    with pytest.raises(InvalidInput, match=r"model\.safetensors is not a valid safetensors file"):
        load_denoiser(tmp_path / "bert")


MODELING = textwrap.dedent(
    '''
    """A tiny custom-code MDM, shaped like LLaDA's: AutoModel via auto_map, mask id only in config.json."""
    import torch
    from transformers import PretrainedConfig, PreTrainedModel
    from transformers.modeling_outputs import MaskedLMOutput


    class TinyMdmConfig(PretrainedConfig):
        model_type = "tinymdm"

        def __init__(self, vocab_size=16, hidden_size=8, mask_token_id=15, **kwargs):
            self.vocab_size = vocab_size
            self.hidden_size = hidden_size
            self.mask_token_id = mask_token_id
            super().__init__(**kwargs)


    class TinyMdm(PreTrainedModel):
        config_class = TinyMdmConfig

        def __init__(self, config):
            super().__init__(config)
            self.embed = torch.nn.Embedding(config.vocab_size, config.hidden_size)
            self.mix = torch.nn.Linear(config.hidden_size, config.hidden_size)
            self.out = torch.nn.Linear(config.hidden_size, config.vocab_size)
            self.post_init()

        def forward(self, input_ids, attention_mask=None, **kwargs):
            h = self.embed(input_ids)
            h = h + self.mix(h.mean(dim=1, keepdim=True))
            return MaskedLMOutput(logits=self.out(h))
    '''
)


def _save_custom_code_model(folder: Path):
    """Writes modeling_tinymdm.py, imports it, and saves a model whose config.json has an auto_map."""
    import importlib.util

    folder.mkdir()
    (folder / "modeling_tinymdm.py").write_text(MODELING)
    spec = importlib.util.spec_from_file_location("modeling_tinymdm", folder / "modeling_tinymdm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tokenizer = word_tokenizer(with_mask=False)
    tokenizer.add_tokens(["<|mdm_mask|>"], special_tokens=True)  # in the vocabulary, but not the tokenizer's mask
    mask_id = tokenizer.convert_tokens_to_ids("<|mdm_mask|>")
    config = module.TinyMdmConfig(vocab_size=len(tokenizer), mask_token_id=mask_id)
    config.auto_map = {"AutoConfig": "modeling_tinymdm.TinyMdmConfig", "AutoModel": "modeling_tinymdm.TinyMdm"}
    torch.manual_seed(0)
    model = module.TinyMdm(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return model, tokenizer


def test_custom_code_is_refused_without_trust_remote_code(tmp_path: Path) -> None:
    _save_custom_code_model(tmp_path / "custom")
    assert detect_format(tmp_path / "custom") == "hf"
    with pytest.raises(InvalidInput, match="trust_remote_code") as caught:
        load_denoiser(tmp_path / "custom")
    assert caught.value.field == "trust_remote_code"


def test_custom_code_loads_with_trust_remote_code_and_takes_mask_id_from_config(tmp_path: Path) -> None:
    model, tokenizer = _save_custom_code_model(tmp_path / "custom")
    denoiser = load_denoiser(tmp_path / "custom", trust_remote_code=True)
    assert tokenizer.mask_token_id is None
    config = json.loads((tmp_path / "custom" / "config.json").read_text())
    assert denoiser.mask_token_id == config["mask_token_id"] == tokenizer.convert_tokens_to_ids("<|mdm_mask|>")
    assert denoiser.codec.mask_token == "<|mdm_mask|>"
    assert denoiser.codec.encode("the <|mdm_mask|>")[-1] == denoiser.mask_token_id
    ids = torch.tensor([[5, 6, denoiser.mask_token_id]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    torch.testing.assert_close(denoiser.logits(ids), expected)
    assert denoiser.logits(ids).shape == (1, 3, len(tokenizer))


def test_folder_without_config_is_not_taken_for_hf(tmp_path: Path) -> None:
    save_tiny_bert(tmp_path / "bert")
    (tmp_path / "bert" / "config.json").unlink()
    with pytest.raises(InvalidInput, match="checkpoint"):
        load_denoiser(tmp_path / "bert")
    with pytest.raises(InvalidInput, match=r"config\.json is missing"):
        load_denoiser(tmp_path / "bert", format="hf")
