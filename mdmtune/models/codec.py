"""Text codecs: the character tokenizer of the reference MDM, and wrappers that make tokenizers speak TextCodec.

The reference model reads one character per token, so a testbed's text maps to ids one to one and an infill mask
symbol is exactly one token. The tokenizer is a real `tokenizers` WordLevel tokenizer saved as tokenizer.json, so
any tool that reads the Hugging Face format (and `PreTrainedTokenizerFast`) opens it too. Special tokens:
the mask `_` (README.md), the end-of-text token, whose text is the testbed's padding character (so a target
written as "42~~~~" encodes its padding directly as end-of-text), and `<unk>`. Decoding joins characters without
spaces and leaves the special tokens out. Must never import FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

from mdmtune.errors import InvalidInput

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

MASK_TEXT = "_"
UNK_TEXT = "<unk>"
DEFAULT_EOT_TEXT = "<eot>"


def build_char_tokenizer(alphabet: str, eot_text: str = DEFAULT_EOT_TEXT) -> Tokenizer:
    """A one-character-per-token tokenizer over `alphabet`: ids 0 mask `_`, 1 end-of-text `eot_text`, 2 `<unk>`.

    The remaining ids are the alphabet's other characters in sorted order (so the vocabulary does not depend on the
    order the caller listed them in). `_` and `eot_text` in the alphabet are the special tokens, not extra characters.
    """
    if not eot_text or eot_text in (MASK_TEXT, UNK_TEXT):
        raise InvalidInput("eot_text", f"must be a non-empty text other than {MASK_TEXT!r} and {UNK_TEXT!r}")
    characters = sorted(set(alphabet) - {MASK_TEXT, eot_text})
    if not characters:
        raise InvalidInput("alphabet", "has no character besides the special tokens")
    vocab = {MASK_TEXT: 0, eot_text: 1, UNK_TEXT: 2}
    for character in characters:
        vocab[character] = len(vocab)
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=UNK_TEXT))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in (MASK_TEXT, eot_text, UNK_TEXT)]
    )
    tokenizer.decoder = decoders.Fuse()
    return tokenizer


class CharCodec:
    """TextCodec over a `tokenizers.Tokenizer` built by `build_char_tokenizer` (or loaded from its tokenizer.json).

    Unknown characters are refused rather than silently turned into `<unk>`: an eval set with a character the model
    never saw is a mistake the user should hear about.
    """

    def __init__(self, tokenizer: Tokenizer, mask_token: str = MASK_TEXT, eot_token: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.mask_token = mask_token
        self.mask_token_id = _required_id(tokenizer, mask_token, "mask_token")
        if eot_token is None:
            eot_token = tokenizer.id_to_token(1)
        self.eot_token = eot_token
        self.eot_token_id = _required_id(tokenizer, eot_token, "eot_token")
        self.unk_token_id = tokenizer.token_to_id(UNK_TEXT)
        self.vocab_size = tokenizer.get_vocab_size()

    @classmethod
    def for_alphabet(cls, alphabet: str, eot_text: str = DEFAULT_EOT_TEXT) -> CharCodec:
        """A fresh codec over `alphabet` (the trainer's way in)."""
        return cls(build_char_tokenizer(alphabet, eot_text), eot_token=eot_text)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], eot_token: str | None = None) -> CharCodec:
        """Load tokenizer.json; InvalidInput naming the file when it is not a tokenizer."""
        return cls(load_tokenizer_file(path), eot_token=eot_token)

    def encode(self, text: str) -> list[int]:
        return self._checked(text, add_special_tokens=False)

    def encode_default(self, text: str) -> list[int]:
        return self._checked(text, add_special_tokens=True)

    def _checked(self, text: str, add_special_tokens: bool) -> list[int]:
        encoding = self.tokenizer.encode(text, add_special_tokens=add_special_tokens)
        if self.unk_token_id is not None and self.unk_token_id in encoding.ids:
            start, stop = encoding.offsets[encoding.ids.index(self.unk_token_id)]
            raise InvalidInput("text", f"character {text[start:stop]!r} is not in the model's alphabet")
        return encoding.ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write tokenizer.json (the native Hugging Face tokenizers format)."""
        self.tokenizer.save(str(path))


class TokenizerCodec:
    """TextCodec over any `tokenizers.Tokenizer` (a TorchScript checkpoint's tokenizer.json), unknowns allowed."""

    def __init__(self, tokenizer: Tokenizer, mask_token_id: int) -> None:
        self.tokenizer = tokenizer
        mask_token = tokenizer.id_to_token(mask_token_id)
        if mask_token is None:
            raise InvalidInput("mask_token_id", f"{mask_token_id} is not in the tokenizer's vocabulary")
        self.mask_token = mask_token

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_default(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)


class HFTokenizerCodec:
    """TextCodec over a transformers tokenizer (PreTrainedTokenizerBase); the mask text is the tokenizer's own.

    `encode_default` is the tokenizer's `__call__` with its defaults, so BOS/CLS/SEP/EOS come exactly as the
    tokenizer's post-processor adds them (mdmtune.models.template places the generated region inside them).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, mask_token_id: int) -> None:
        self.tokenizer = tokenizer
        mask_token = tokenizer.mask_token if tokenizer.mask_token_id == mask_token_id else None
        if mask_token is None and mask_token_id < len(tokenizer):
            mask_token = tokenizer.convert_ids_to_tokens(mask_token_id)
        # "" when the mask id lies past the tokenizer (MDLM appends it): completions work, infill texts cannot name it
        self.mask_token = "" if mask_token is None else str(mask_token)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def encode_default(self, text: str) -> list[int]:
        return list(self.tokenizer(text)["input_ids"])

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The prompt text of a chat, as LLaDA-Instruct and Dream-Instruct are evaluated: the tokenizer's chat
        template with the generation prompt appended, not yet tokenized (the text is then encoded like any prompt)."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise InvalidInput("chat_template", "the checkpoint's tokenizer has no chat template")
        try:
            return str(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        except Exception as error:  # jinja2 raises its own errors for templates that reject a chat
            raise InvalidInput("messages", f"the tokenizer's chat template refused the chat: {error}") from None


def load_tokenizer_file(path: str | os.PathLike[str]) -> Tokenizer:
    """Tokenizer.from_file with an InvalidInput that names the file instead of a Rust panic message."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput("checkpoint", f"{path.name} is missing")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises plain Exception for malformed JSON
        raise InvalidInput("checkpoint", f"{path.name} is not a valid tokenizer file: {error}") from None


def _required_id(tokenizer: Tokenizer, token: str, field: str) -> int:
    token_id = tokenizer.token_to_id(token)
    if token_id is None:
        raise InvalidInput(field, f"{token!r} is not in the tokenizer's vocabulary")
    return token_id
