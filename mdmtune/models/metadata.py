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

_MAX_JSON_BYTES = 64 << 20
"""tokenizer.json of a 150k-token vocabulary is ~10 MB; anything far larger is not a tokenizer."""
_LENGTH_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "max_len")
_MASK_NAMES = ("[MASK]", "<mask>", "<|mdm_mask|>")


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


def _token_text(value: Any) -> str | None:
    """A special token as tokenizer_config writes it: a string, or {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ids(value: Any) -> list[int]:
    values = value if isinstance(value, list) else [value]
    return sorted({v for v in values if _int(v) is not None})


def _tokenizer_tables(folder: Path) -> tuple[dict[str, int], list[str], int | None]:
    """(token text -> id for the added tokens, special token texts, vocabulary size) from tokenizer.json."""
    data = _json(folder / "tokenizer.json")
    tokens = [t for t in data.get("added_tokens", []) if isinstance(t, dict) and isinstance(t.get("content"), str)]
    added = {t["content"]: t["id"] for t in tokens if _int(t.get("id")) is not None}
    special = [t["content"] for t in tokens if t.get("special")]
    vocab = (data.get("model") or {}).get("vocab")
    if isinstance(vocab, dict):
        added = {**{k: v for k, v in vocab.items() if k in _MASK_NAMES and _int(v) is not None}, **added}
    size = None
    if isinstance(vocab, (dict, list)) and vocab:
        ids = list(vocab.values()) if isinstance(vocab, dict) else range(len(vocab))
        size = max([*[i for i in ids if isinstance(i, int)], *added.values()], default=-1) + 1
    return added, special, size


def _native(folder: Path) -> CheckpointInfo:
    config = _json(folder / "config.json")
    model, tokenizer = config.get("model") or {}, config.get("tokenizer") or {}
    _, special, _ = _tokenizer_tables(folder)
    return CheckpointInfo(
        format="native",
        vocab_size=_int(model.get("vocab_size")),
        mask_token_id=_int(model.get("mask_token_id")),
        mask_token=_token_text(tokenizer.get("mask_token")),
        max_length=_int(model.get("max_len")),
        special_tokens=special,
        end_ids=_ids(model.get("pad_token_id")),
    )


def _hf(folder: Path) -> CheckpointInfo:
    config = _json(folder / "config.json")
    tok_config = _json(folder / "tokenizer_config.json")
    special_map = _json(folder / "special_tokens_map.json")
    generation = _json(folder / "generation_config.json")
    added, special, tok_size = _tokenizer_tables(folder)
    mask = _token_text(tok_config.get("mask_token")) or _token_text(special_map.get("mask_token"))
    if mask is None:
        mask = next((name for name in _MASK_NAMES if name in added), None)
    mask_id = added.get(mask) if mask is not None else None  # the tokenizer's, as the hf loader prefers
    if mask_id is None:
        mask_id = _int(config.get("mask_token_id"))
    lengths = [_int(config.get(key)) for key in _LENGTH_KEYS]
    model_max = _int(tok_config.get("model_max_length"))
    length = next((n for n in lengths if n), None) or (model_max if model_max and model_max < 10**7 else None)
    named = [_token_text(v) for v in special_map.values()]
    return CheckpointInfo(
        format="hf",
        vocab_size=_int(config.get("vocab_size")) or tok_size,
        mask_token_id=mask_id,
        mask_token=mask,
        max_length=length,
        special_tokens=sorted({*special, *(n for n in named if n)}),
        end_ids=_ids(generation.get("eos_token_id", config.get("eos_token_id"))),
    )


def _torchscript(path: Path) -> CheckpointInfo:
    folder = path if path.is_dir() else path.parent
    added, special, size = _tokenizer_tables(folder) if path.is_dir() else ({}, [], None)
    mask = next((name for name in _MASK_NAMES if name in added), None)
    return CheckpointInfo(
        format="torchscript",
        vocab_size=size,
        mask_token_id=added.get(mask) if mask else None,
        mask_token=mask,
        special_tokens=special,
    )


def read_checkpoint_info(path: str | Path, format: str) -> CheckpointInfo:
    """The declared conventions of the checkpoint at `path` (a folder, or a TorchScript file) of `format`."""
    path = Path(path)
    if format == "native":
        return _native(path)
    if format == "hf":
        return _hf(path)
    return _torchscript(path)
