"""Hugging Face checkpoints: masked LMs and MDMs loaded with the transformers Auto classes.

- A standard masked LM (e.g. BertForMaskedLM written by save_pretrained) loads with AutoModelForMaskedLM.
- Custom-code MDMs (LLaDA, Dream: config.json has an `auto_map`) load with the class the auto_map names
  (AutoModelForMaskedLM if listed, else AutoModel), and only when the caller passes trust_remote_code=True: running a
  stranger's Python is the operator's decision (README.md), so the default is a clear InvalidInput.
- Weights must be safetensors. A folder with only pytorch_model.bin (a pickle) is refused before transformers sees
  it, and transformers is called with use_safetensors=True, so nothing is ever unpickled.
- The model family is detected from config.json and the tokenizer (mdmtune.models.families), or given by the caller:
  it decides where the mask id comes from and whether logits are shifted.
- `shifted_logits` is for models whose logits at position i predict token i+1 (Dream, adapted from an
  autoregressive LM): they are shifted back by one (position 0 keeps its own row, as Dream's generate does), so that
  logits[:, i] predict token i like every other Denoiser. None: the family's default (on for Dream).
- mask_token_id: the caller's override, else the family's sources (mdmtune.models.families).
  end_token_ids (where a completion is cut): every id of generation_config.json's `eos_token_id` (a list for LLaDA:
  end-of-text and end-of-turn) and the tokenizer's eos; config.json's eos_token_id when there is no generation
  config. pad_token_id (left padding of shorter records only): the override, else the tokenizer's pad, then eos
  token, then config.json's pad/eos ids.
- Left padding shifts absolute positions, so when an attention mask is passed and the model's forward takes
  `position_ids`, each row's positions count from its first real token (as transformers' generate does): a padded
  record then sees exactly the positions it has alone.

transformers is imported lazily: it is an optional dependency (the `hf` extra). Must never import FastAPI or
SQLAlchemy.
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open

from mdmtune.data.archive import is_zip, safe_extract, single_root
from mdmtune.errors import InvalidInput
from mdmtune.models.adapter import LoadedDenoiser
from mdmtune.models.bounds import check_config_sizes, check_in_vocabulary
from mdmtune.models.codec import HFTokenizerCodec
from mdmtune.models.device import resolve_device, resolve_dtype
from mdmtune.models.families import FAMILIES, detect_family, end_token_ids, mask_token_candidates
from mdmtune.models.json_files import read_json

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def is_hf_folder(folder: Path) -> bool:
    """True when `folder` looks like a save_pretrained folder (a config.json with a model_type or auto_map)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(config, dict) and ("model_type" in config or "auto_map" in config)


def load_hf(
    path: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    mask_token_id: int | None = None,
    pad_token_id: int | None = None,
    trust_remote_code: bool = False,
    shifted_logits: bool | None = None,
    family: str = "auto",
) -> LoadedDenoiser:
    """A Denoiser from a save_pretrained folder or a .zip of one (extracted safely to a temporary folder)."""
    path = Path(path)
    if family != "auto" and family not in FAMILIES:
        raise InvalidInput("family", f"{family!r} is not one of auto, {', '.join(FAMILIES)}")
    options = _Options(device, dtype, mask_token_id, pad_token_id, trust_remote_code, shifted_logits, family)
    if is_zip(path):
        with tempfile.TemporaryDirectory(prefix="mdmtune-hf-") as scratch:
            return _load_folder(single_root(safe_extract(path, Path(scratch) / "checkpoint")), options)
    if not path.is_dir():
        raise InvalidInput("checkpoint", f"{path} is neither a folder nor a zip archive")
    return _load_folder(path, options)


@dataclass(frozen=True)
class _Options:
    """load_hf's keyword arguments, carried whole to the folder loader (the same whether the folder was zipped)."""

    device: str | torch.device | None
    dtype: str | torch.dtype | None
    mask_token_id: int | None
    pad_token_id: int | None
    trust_remote_code: bool
    shifted_logits: bool | None
    family: str


def _read_config(folder: Path) -> dict[str, Any]:
    config = read_json(folder, "config.json", required=True)
    if not isinstance(config, dict):
        raise InvalidInput("checkpoint", "config.json is not a JSON object")
    check_config_sizes(config)
    return config


def check_safetensors_only(folder: Path) -> None:
    """Refuse a folder whose weights exist only as pickles (pytorch_model.bin, ...); they are never unpickled."""
    weights = sorted(folder.glob("*.safetensors"))
    for path in weights:
        check_safetensors_header(path)
    if weights:
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise InvalidInput(
            "checkpoint",
            f"{pickles[0]} is a pickle file and mdmtune never unpickles; save the model with safetensors "
            "(save_pretrained(..., safe_serialization=True)) and hand that in",
        )
    raise InvalidInput("checkpoint", "no *.safetensors weights file in the checkpoint folder")


def check_safetensors_header(path: Path) -> None:
    """Open the file's header (cheap: no tensor is read) so a corrupt file is named here, not deep in transformers."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError, ValueError) as error:
        raise InvalidInput("checkpoint", f"{path.name} is not a valid safetensors file: {error}") from None


def _auto_class(config: dict[str, Any], trust_remote_code: bool) -> Any:
    """AutoModelForMaskedLM, or for custom code the Auto class its auto_map names (refused unless trusted)."""
    import transformers

    auto_map = config.get("auto_map") or {}
    if auto_map and not trust_remote_code:
        raise InvalidInput(
            "trust_remote_code",
            f"this checkpoint runs its own model code ({', '.join(sorted(auto_map.values()))}); it loads only "
            "with trust_remote_code switched on by the operator",
        )
    if auto_map and "AutoModelForMaskedLM" not in auto_map:
        return transformers.AutoModel
    return transformers.AutoModelForMaskedLM


def _resolve_mask(
    family: str,
    tokenizer: PreTrainedTokenizerBase,
    config: dict[str, Any],
    generation: dict[str, Any],
    mask_token_id: int | None,
) -> int:
    if mask_token_id is not None:
        return int(mask_token_id)
    for candidate in mask_token_candidates(family, tokenizer, config, generation):
        if candidate is not None:
            return int(candidate)
    raise InvalidInput("mask_token_id", "neither the tokenizer nor config.json names a mask token; pass mask_token_id")


def _resolve_pad(tokenizer: PreTrainedTokenizerBase, config: dict[str, Any], pad_token_id: int | None) -> int:
    pad = pad_token_id
    for candidate in (
        tokenizer.pad_token_id,
        tokenizer.eos_token_id,
        config.get("pad_token_id"),
        config.get("eos_token_id"),
    ):
        if pad is None and isinstance(candidate, int):
            pad = candidate
    if pad is None:
        raise InvalidInput("pad_token_id", "neither the tokenizer nor config.json names a pad or eos token; pass one")
    return int(pad)


def _read_generation_config(folder: Path) -> dict[str, Any]:
    """generation_config.json as a dict ({} when absent); a broken one is named rather than ignored."""
    data = read_json(folder, "generation_config.json", required=False)
    return data if isinstance(data, dict) else {}


def _load_folder(folder: Path, options: _Options) -> LoadedDenoiser:
    config = _read_config(folder)
    generation = _read_generation_config(folder)
    trusted = options.trust_remote_code
    auto_class = _auto_class(config, trusted)
    check_safetensors_only(folder)
    tokenizer = _load_tokenizer(folder, trusted)
    family = detect_family(config, tokenizer) if options.family == "auto" else options.family
    shifted = family == "dream" if options.shifted_logits is None else bool(options.shifted_logits)
    target = resolve_device(options.device)
    model = _load_model(auto_class, folder, resolve_dtype(options.dtype, target), trusted).to(target).eval()
    vocab_size = _vocab_size(model)
    mask = _resolve_mask(family, tokenizer, config, generation, options.mask_token_id)
    pad = _resolve_pad(tokenizer, config, options.pad_token_id)
    ends = end_token_ids(tokenizer, config, generation)
    check_in_vocabulary(
        (("mask_token_id", mask), ("pad_token_id", pad), *(("end_token_ids", e) for e in ends)), vocab_size
    )
    return LoadedDenoiser(
        forward=_forward_fn(model, shifted),
        mask_token_id=mask,
        pad_token_id=pad,
        vocab_size=vocab_size,
        device=target,
        dtype=next(model.parameters()).dtype,
        codec=HFTokenizerCodec(tokenizer, mask),
        format="hf",
        max_length=_max_length(model.config),
        module=model,
        end_token_ids=ends,
        family=family,
        shifted_logits=shifted,
    )


def _load_tokenizer(folder: Path, trust_remote_code: bool) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InvalidInput("checkpoint", f"no usable tokenizer files in the checkpoint folder: {error}") from None


def _load_model(auto_class: Any, folder: Path, dtype: torch.dtype, trust_remote_code: bool) -> torch.nn.Module:
    try:
        return auto_class.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=True, dtype=dtype, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InvalidInput("checkpoint", f"transformers could not load the model: {message}") from None


def _vocab_size(model: torch.nn.Module) -> int:
    """The logits' last dimension: the output embedding's rows, else config.vocab_size."""
    embeddings = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if embeddings is not None and getattr(embeddings, "weight", None) is not None:
        return int(embeddings.weight.shape[0])
    return int(model.config.vocab_size)


def _max_length(config: PretrainedConfig) -> int | None:
    for name in ("max_position_embeddings", "max_sequence_length", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _takes_position_ids(model: torch.nn.Module) -> bool:
    try:
        return "position_ids" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _forward_fn(model: torch.nn.Module, shifted: bool):
    """ids, mask -> logits [B, L, V] with Dream-style shifted logits moved back when asked."""
    positions = _takes_position_ids(model)

    def forward(ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        kwargs: dict[str, torch.Tensor] = {}
        if attention_mask is not None:
            kwargs["attention_mask"] = attention_mask
            if positions:
                kwargs["position_ids"] = (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)
        output = model(input_ids=ids, **kwargs)
        logits = output.logits if hasattr(output, "logits") else output[0]
        if shifted:
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        return logits

    return forward
