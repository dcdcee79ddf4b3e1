"""The reference MDM, the character codec, and the device helpers (out-of-memory halving)."""

from __future__ import annotations

import pytest
import torch
from _model_builders import ALPHABET, tiny_reference
from tokenizers import Tokenizer

from mdmtune.errors import InvalidInput
from mdmtune.models.adapter import LoadedDenoiser
from mdmtune.models.base import Denoiser, TextCodec
from mdmtune.models.codec import CharCodec, build_char_tokenizer
from mdmtune.models.device import ChunkedForward, resolve_device, resolve_dtype
from mdmtune.models.reference import ReferenceConfig


def test_char_codec_maps_one_character_to_one_token_and_drops_specials_on_decode() -> None:
    codec = CharCodec.for_alphabet(ALPHABET, eot_text="~")
    ids = codec.encode("12+_3=~~")
    assert len(ids) == 8
    assert ids[3] == codec.mask_token_id and ids[6:] == [codec.eot_token_id] * 2
    assert codec.decode(ids) == "12+3="
    assert isinstance(codec, TextCodec) and codec.mask_token == "_"


def test_char_tokenizer_vocabulary_does_not_depend_on_alphabet_order() -> None:
    forward = build_char_tokenizer("abc", "~").get_vocab()
    backward = build_char_tokenizer("cba~_", "~").get_vocab()
    assert forward == backward
    assert [forward[t] for t in ("_", "~", "<unk>")] == [0, 1, 2]


def test_char_codec_refuses_a_character_outside_the_alphabet() -> None:
    codec = CharCodec.for_alphabet(ALPHABET, eot_text="~")
    with pytest.raises(InvalidInput, match="'x' is not in the model's alphabet"):
        codec.encode("12x")


def test_char_codec_survives_tokenizer_json_round_trip(tmp_path) -> None:
    codec = CharCodec.for_alphabet(ALPHABET + " ", eot_text="~")
    codec.save(tmp_path / "tokenizer.json")
    loaded = CharCodec.from_file(tmp_path / "tokenizer.json", eot_token="~")
    text = "1 2+_=~"
    assert loaded.encode(text) == codec.encode(text)
    assert Tokenizer.from_file(str(tmp_path / "tokenizer.json")).get_vocab() == codec.tokenizer.get_vocab()


def test_reference_logits_have_shape_batch_length_vocab_and_attention_is_bidirectional() -> None:
    model, codec = tiny_reference()
    ids = torch.tensor([codec.encode("12+34=46~"), codec.encode("99+1=100~")])
    logits = model(ids)
    assert logits.shape == (2, 9, codec.vocab_size)
    changed = ids.clone()
    changed[:, -1] = codec.mask_token_id  # a change at the last position must move the first position's logits
    assert not torch.allclose(model(changed)[:, 0], logits[:, 0])


def test_reference_attention_mask_hides_padded_keys() -> None:
    model, codec = tiny_reference()
    ids = torch.tensor([codec.encode("12+34=46")])
    padded = torch.cat([ids, torch.full((1, 3), codec.eot_token_id)], dim=1)
    mask = torch.cat([torch.ones(1, 8), torch.zeros(1, 3)], dim=1)
    torch.testing.assert_close(model(padded, mask)[:, :8], model(ids))


def test_reference_config_rejects_heads_that_do_not_divide_width() -> None:
    with pytest.raises(InvalidInput, match="n_heads"):
        ReferenceConfig(vocab_size=10, max_len=8, mask_token_id=0, pad_token_id=1, d_model=10, n_heads=3)


def test_cpu_is_chosen_without_cuda_and_float32_is_its_dtype() -> None:
    device = resolve_device(None)
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype(None, torch.device("cpu")) == torch.float32
    with pytest.raises(InvalidInput, match="dtype"):
        resolve_dtype("float8", torch.device("cpu"))


class OutOfMemoryAboveRows(torch.nn.Module):
    """A real module that raises a real torch.cuda.OutOfMemoryError when handed more than `limit` rows.

    On this CPU-only machine no allocation can run out of GPU memory, so the module raises the genuine exception
    class (an instance of torch.cuda.OutOfMemoryError, exactly what CUDA raises) at the size where a GPU would fail.
    """

    def __init__(self, limit: int, vocab: int = 7) -> None:
        super().__init__()
        self.limit = limit
        self.embedding = torch.nn.Embedding(vocab, vocab)
        self.batch_sizes: list[int] = []

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        self.batch_sizes.append(ids.shape[0])
        if ids.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory: {ids.shape[0]} rows")
        return self.embedding(ids)


def test_out_of_memory_halves_the_chunk_and_still_returns_every_row() -> None:
    module = OutOfMemoryAboveRows(limit=5)
    ids = torch.randint(0, 7, (20, 4), generator=torch.Generator().manual_seed(0))
    chunked = ChunkedForward(module, max_batch=64)
    with torch.no_grad():
        logits = chunked(ids)
        torch.testing.assert_close(logits, module.embedding(ids))
    assert module.batch_sizes[:3] == [20, 10, 5]  # halved until it fit
    assert chunked.chunk == 5
    module.batch_sizes.clear()
    with torch.no_grad():
        chunked(ids)
    assert module.batch_sizes == [5, 5, 5, 5]  # the working chunk is remembered


def test_out_of_memory_on_a_single_row_is_raised() -> None:
    module = OutOfMemoryAboveRows(limit=0)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        ChunkedForward(module, max_batch=8)(torch.zeros(4, 3, dtype=torch.long))
    assert module.batch_sizes == [4, 2, 1]


def test_loaded_denoiser_chunks_on_out_of_memory_and_returns_float32() -> None:
    module = OutOfMemoryAboveRows(limit=3)
    codec = CharCodec.for_alphabet("abcd", eot_text="~")
    denoiser = LoadedDenoiser(
        forward=module, mask_token_id=0, pad_token_id=1, vocab_size=7, device=torch.device("cpu"),
        dtype=torch.float32, codec=codec, format="test", max_batch=8,
    )  # fmt: skip
    assert isinstance(denoiser, Denoiser)
    ids = torch.randint(0, 7, (8, 5), generator=torch.Generator().manual_seed(1))
    logits = denoiser.logits(ids)
    assert logits.shape == (8, 5, 7) and logits.dtype == torch.float32
    assert max(module.batch_sizes[-3:]) <= 3
    with pytest.raises(InvalidInput, match="token ids must lie in"):
        denoiser.logits(torch.full((1, 2), 7))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a CPU-only machine gives")
def test_asking_for_cuda_without_cuda_names_the_device_option() -> None:
    with pytest.raises(InvalidInput, match="CUDA is not available") as caught:
        resolve_device("cuda")
    assert caught.value.field == "device"
