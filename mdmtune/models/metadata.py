"""What a checkpoint declares about itself, read from its small JSON files only (never the weights).

Why: the service checks a job against its checkpoint when the job is submitted (mask token, maximum length,
vocabulary size), and an API node must not load an 8B model for that. This module reads config.json,
tokenizer.json, tokenizer_config.json, special_tokens_map.json and generation_config.json once, at upload, and the
service stores the answer beside the checkpoint. What cannot be read here (how a prompt tokenizes, custom model
code) is checked by the worker that loads the model, and fails the job with an error naming the field.
Never imports FastAPI or SQLAlchemy; never imports torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mdmtune.models.bounds import check_config_sizes
from mdmtune.models.families import detect_family, end_token_ids, int_or_none, listed_ids, mask_token_candidates

_MAX_JSON_BYTES = 64 << 20
"""tokenizer.json of a 150k-token vocabulary is ~10 MB; anything far larger is not a tokenizer."""
_LENGTH_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "max_len")


@dataclass(frozen=True)
class CheckpointInfo:
    """The checkpoint's declared conventions; None where its files do not say."""

    format: str
    vocab_size: int | None = None
    mask_token_id: int | None = None
    mask_token: str | None = None
    max_length: int | None = None
    special_tokens: list[str] = field(default_factory=list)
    end_ids: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckpointInfo:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def _json(path: Path) -> dict[str, Any]:
    """The file's JSON object, or {} when it is missing, too large or not an object."""
    try:
        if not path.is_file() or path.stat().st_size > _MAX_JSON_BYTES:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _token_text(value: object) -> str | None:
    """A special token as tokenizer_config writes it: a string, or {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _tokenizer_tables(folder: Path) -> tuple[dict[str, int], list[str], int | None]:
    """(token text -> id over the whole vocabulary and the added tokens, special token texts, vocabulary size)."""
    data = _json(folder / "tokenizer.json")
    tokens = [t for t in data.get("added_tokens", []) if isinstance(t, dict) and isinstance(t.get("content"), str)]
    added = {t["content"]: t["id"] for t in tokens if int_or_none(t.get("id")) is not None}
    special = [t["content"] for t in tokens if t.get("special")]
    vocab = (data.get("model") or {}).get("vocab")
    if isinstance(vocab, list):  # Unigram: [[piece, score], ...], ids by position
        vocab = {entry[0]: i for i, entry in enumerate(vocab) if isinstance(entry, list) and entry}
    table = {k: v for k, v in (vocab or {}).items() if int_or_none(v) is not None} if isinstance(vocab, dict) else {}
    table.update(added)
    size = max(table.values(), default=-1) + 1 if table else None
    return table, special, size


class _DeclaredTokenizer:
    """What mdmtune.models.families reads from a tokenizer (mask and eos ids, length), taken from its JSON files, so
    that upload applies the loader's own rules without loading the tokenizer."""

    def __init__(self, table: dict[str, int], size: int | None, mask: str | None, eos: str | None) -> None:
        self.mask_token_id = table.get(mask) if mask else None
        self.eos_token_id = table.get(eos) if eos else None
        self._size = size or 0

    def __len__(self) -> int:
        return self._size


def _native(folder: Path) -> CheckpointInfo:
    config = _json(folder / "config.json")
    model, tokenizer = config.get("model") or {}, config.get("tokenizer") or {}
    _, special, _ = _tokenizer_tables(folder)
    return CheckpointInfo(
        format="native",
        vocab_size=int_or_none(model.get("vocab_size")),
        mask_token_id=int_or_none(model.get("mask_token_id")),
        mask_token=_token_text(tokenizer.get("mask_token")),
        max_length=int_or_none(model.get("max_len")),
        special_tokens=special,
        end_ids=list(listed_ids(model.get("pad_token_id"))),
    )


def _hf(folder: Path) -> CheckpointInfo:
    """The hf loader's own rules (mdmtune.models.families: family, mask id, end ids) on the declared tables."""
    config = _json(folder / "config.json")
    tok_config = _json(folder / "tokenizer_config.json")
    special_map = _json(folder / "special_tokens_map.json")
    generation = _json(folder / "generation_config.json")
    table, special, tok_size = _tokenizer_tables(folder)

    def named(key: str) -> str | None:
        return _token_text(tok_config.get(key)) or _token_text(special_map.get(key))

    tokenizer = _DeclaredTokenizer(table, tok_size, named("mask_token"), named("eos_token"))
    family = detect_family(config, tokenizer)
    mask_id = next((m for m in mask_token_candidates(family, tokenizer, config, generation) if m is not None), None)
    lengths = [int_or_none(config.get(key)) for key in _LENGTH_KEYS]
    model_max = int_or_none(tok_config.get("model_max_length"))
    length = next((n for n in lengths if n), None) or (model_max if model_max and model_max < 10**7 else None)
    texts = [_token_text(v) for v in special_map.values()]
    return CheckpointInfo(
        format="hf",
        vocab_size=int_or_none(config.get("vocab_size")) or tok_size,
        mask_token_id=mask_id,
        mask_token=_text_of(table, mask_id),
        max_length=length,
        special_tokens=sorted({*special, *(t for t in texts if t)}),
        end_ids=list(end_token_ids(tokenizer, config, generation)),
    )


def _torchscript(path: Path) -> CheckpointInfo:
    """As the TorchScript loader reads it: ids and max_length from config.json, texts from tokenizer.json."""
    folder = path if path.is_dir() else path.parent
    config = _json(folder / "config.json")
    table, special, size = _tokenizer_tables(folder)
    mask_id = int_or_none(config.get("mask_token_id"))
    pad = int_or_none(config.get("pad_token_id"))
    return CheckpointInfo(
        format="torchscript",
        vocab_size=size,
        mask_token_id=mask_id,
        mask_token=_text_of(table, mask_id),
        max_length=int_or_none(config.get("max_length")),
        special_tokens=special,
        end_ids=list(listed_ids(config.get("eos_token_id")) or ([] if pad is None else [pad])),
    )


def _text_of(table: dict[str, int], token_id: int | None) -> str | None:
    """The token text of an id (None for an id past the tokenizer, as MDLM's appended mask)."""
    return next((text for text, i in table.items() if i == token_id), None) if token_id is not None else None


def read_checkpoint_info(path: str | Path, format: str) -> CheckpointInfo:
    """The declared conventions of the checkpoint at `path` (a folder, or a TorchScript file) of `format`; InvalidInput
    when config.json declares a size past mdmtune.models.bounds."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    check_config_sizes(_json(folder / "config.json"))
    if format == "native":
        return _native(path)
    if format == "hf":
        return _hf(path)
    return _torchscript(path)
