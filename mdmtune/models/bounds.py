"""Bounds on the sizes a checkpoint's config.json declares, checked at upload and when a checkpoint is loaded.

Why: the sizes decide how much memory a loader allocates before it reads a single weight (an embedding of
vocab_size x hidden_size, position tables of max_position_embeddings), so a config.json declaring a vocabulary of
10^12 tokens made a worker try to allocate it. Each bound is far above every real masked diffusion model and masked
LM (LLaDA 8B: vocabulary 126,464, hidden 4,096, 32 layers, MLP 12,288, 4,096 positions; Dream 7B: vocabulary
152,064, 131,072 positions; ModernBERT-large: vocabulary 50,368, 8,192 positions), so only nonsense is refused.
The keys are looked for at any depth of the file (`text_config.vocab_size` too), under every name the families use.
Never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterable

from mdmtune.errors import InvalidInput

CONFIG_BOUNDS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("vocabulary size", 2**22, ("vocab_size", "n_vocab", "embedding_size", "padded_vocab_size")),
    (
        "maximum length",
        2**20,
        (
            "max_position_embeddings",
            "n_positions",
            "max_sequence_length",
            "seq_length",
            "max_len",
            "max_length",
            "n_ctx",
        ),
    ),
    ("hidden size", 2**16, ("hidden_size", "d_model", "n_embd")),
    ("layer count", 1024, ("num_hidden_layers", "n_layers", "n_layer", "num_layers")),
    ("intermediate size", 2**20, ("intermediate_size", "d_ff", "n_inner", "mlp_hidden_size", "ffn_dim")),
    ("attention heads", 2**12, ("num_attention_heads", "n_heads", "n_head", "num_key_value_heads")),
)
"""(what, largest accepted value, the config.json keys that declare it). README.md "Checkpoints" lists them."""

_BOUND_OF = {key: (what, bound) for what, bound, keys in CONFIG_BOUNDS for key in keys}
_MAX_DEPTH = 8


def check_config_sizes(config: object, file: str = "config.json") -> None:
    """InvalidInput naming the file and the key when a declared size is not a positive integer or is past its bound.

    A missing key or `null` is fine (the loader's own default applies)."""
    stack: list[tuple[object, str, int]] = [(config, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if not isinstance(item, dict) or depth > _MAX_DEPTH:
            continue
        for key, value in item.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(value, dict):
                stack.append((value, name, depth + 1))
            elif key in _BOUND_OF and value is not None:
                what, bound = _BOUND_OF[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise InvalidInput(name, f"{file}: {name} ({what}) must be a positive integer, got {value!r}")
                if value > bound:
                    raise InvalidInput(name, f"{file}: {name} ({what}) is {value}, over the largest accepted {bound:,}")


def check_in_vocabulary(ids: Iterable[tuple[str, int]], vocab_size: int) -> None:
    """InvalidInput naming the field of the first (field, id) outside [0, vocab_size): the sampler would index the
    logits with it, so a wrong id from a config or the caller is refused at load time instead."""
    for field, value in ids:
        if not 0 <= value < vocab_size:
            raise InvalidInput(field, f"{value} is outside the model's vocabulary [0, {vocab_size})")
