"""Tiny real checkpoints for the model tests, written by the real libraries (tokenizers, transformers, torch).

Shared by tests/test_models_*.py; each builder writes into a folder the test owns (tmp_path).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mdmtune.models.codec import CharCodec
from mdmtune.models.reference import ReferenceConfig, ReferenceMDM

ALPHABET = "0123456789+="
WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "it"]
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_reference(seed: int = 0, max_len: int = 16) -> tuple[ReferenceMDM, CharCodec]:
    """A randomly initialised reference MDM (about 5k parameters) and its character codec."""
    codec = CharCodec.for_alphabet(ALPHABET, eot_text="~")
    config = ReferenceConfig(
        vocab_size=codec.vocab_size,
        max_len=max_len,
        mask_token_id=codec.mask_token_id,
        pad_token_id=codec.eot_token_id,
        d_model=16,
        n_layers=2,
        n_heads=2,
        d_ff=32,
    )
    torch.manual_seed(seed)
    return ReferenceMDM(config).eval(), codec


def word_tokenizer(with_mask: bool = True):
    """A real WordLevel tokenizer over WORDS wrapped in PreTrainedTokenizerFast (BERT-style special tokens)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = BERT_SPECIALS if with_mask else [t for t in BERT_SPECIALS if t != "[MASK]"]
    vocab = {token: i for i, token in enumerate(specials + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    named = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
    if with_mask:
        named["mask_token"] = "[MASK]"
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **named)


def save_tiny_bert(folder: Path, seed: int = 0):
    """A tiny BertForMaskedLM and its tokenizer saved with save_pretrained(safe_serialization=True)."""
    from transformers import BertConfig, BertForMaskedLM

    tokenizer = word_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = BertForMaskedLM(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return model, tokenizer


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data))


class PickleTripwire:
    """Unpickling this object creates `marker`: a test asserts the file never appears (nothing was unpickled)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))
