"""The native checkpoint: the reference MDM as a folder (or a .zip of it) of three plain files.

    config.json        {"format": "mdmtune-native", "format_version": 1, "model": ReferenceConfig fields,
                        "tokenizer": {"mask_token": "_", "eot_token": ...}, "training": {...} (informational)}
    model.safetensors  the weights (float32, or float16 for shipping; always loaded as float32 on CPU)
    tokenizer.json     the character tokenizer (the `tokenizers` library's own format)

Nothing here is pickled, so a native checkpoint from a stranger is safe to load. Must never import FastAPI or
SQLAlchemy.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mdmtune.data.archive import is_zip, safe_extract, single_root
from mdmtune.errors import InvalidInput
from mdmtune.models.adapter import LoadedDenoiser
from mdmtune.models.bounds import check_config_sizes
from mdmtune.models.codec import CharCodec
from mdmtune.models.device import resolve_device, resolve_dtype
from mdmtune.models.json_files import read_json
from mdmtune.models.reference import ReferenceConfig, ReferenceMDM

FORMAT_NAME = "mdmtune-native"
FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE = "config.json", "model.safetensors", "tokenizer.json"


def save_native(
    model: ReferenceMDM,
    codec: CharCodec,
    path: str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.float32,
    training: dict[str, Any] | None = None,
) -> Path:
    """Write `model` and `codec` as a native checkpoint folder at `path` (created; files overwritten); returns it."""
    if codec.mask_token_id != model.config.mask_token_id or codec.eot_token_id != model.config.pad_token_id:
        raise InvalidInput("codec", "its mask/end-of-text ids differ from the model config's mask/pad ids")
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise InvalidInput("dtype", f"must be float32, float16 or bfloat16, got {dtype}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu", dtype).contiguous() for name, t in model.state_dict().items()}
    save_file(tensors, str(path / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
    codec.save(path / TOKENIZER_FILE)
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "tokenizer": {"mask_token": codec.mask_token, "eot_token": codec.eot_token},
        "training": training or {},
    }
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return path


def is_native_folder(folder: Path) -> bool:
    """True when `folder` has a config.json that declares the native format."""
    config = folder / CONFIG_FILE
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("format") == FORMAT_NAME
    except (ValueError, UnicodeDecodeError, AttributeError):
        return False


def refuse_pickles(folder: Path) -> None:
    """InvalidInput naming the first pickle in a native folder: a file named like one (.bin, .pt, .pth, .ckpt, .pkl,
    .pickle) or one that is one whatever its name (the pickle PROTO opcode, a torch.save zip). A native checkpoint
    is config.json, model.safetensors and tokenizer.json; a pickle beside them is never read, and is refused as it
    is for every other kind of checkpoint, so that nobody takes the folder for a safe source of its pickles."""
    from mdmtune.models.hf import PICKLE_SUFFIXES
    from mdmtune.models.torchscript import classify_zip, is_raw_pickle

    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        named = path.suffix.lower() in PICKLE_SUFFIXES
        if named or is_raw_pickle(path) or (is_zip(path) and classify_zip(path) != "folder"):
            name = path.relative_to(folder).as_posix()
            raise InvalidInput(
                "checkpoint",
                f"{name} is a pickle file and mdmtune never unpickles; a native checkpoint holds {CONFIG_FILE}, "
                f"{WEIGHTS_FILE} and {TOKENIZER_FILE} only",
            )


def read_config(folder: Path) -> dict[str, Any]:
    """config.json as a dict; InvalidInput naming the file when it is missing, not JSON, or not native."""
    config = read_json(folder, CONFIG_FILE, required=True)
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise InvalidInput("checkpoint", f"{CONFIG_FILE} does not declare format {FORMAT_NAME!r}")
    if config.get("format_version") != FORMAT_VERSION:
        raise InvalidInput("checkpoint", f"{CONFIG_FILE} has format_version {config.get('format_version')!r}")
    check_config_sizes(config, CONFIG_FILE)
    return config


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file; InvalidInput naming the file when it is missing or corrupt."""
    if not path.is_file():
        raise InvalidInput("checkpoint", f"{path.name} is missing")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise InvalidInput("checkpoint", f"{path.name} is not a valid safetensors file: {error}") from None


def load_reference(folder: Path) -> tuple[ReferenceMDM, CharCodec, dict[str, Any]]:
    """The float32 CPU model, its codec and the whole config.json of a native checkpoint folder."""
    refuse_pickles(folder)
    config = read_config(folder)
    model_config = ReferenceConfig.from_dict(config.get("model") or {})
    token_names = config.get("tokenizer") or {}
    codec = CharCodec.from_file(folder / TOKENIZER_FILE, eot_token=token_names.get("eot_token"))
    if (codec.mask_token_id, codec.eot_token_id) != (model_config.mask_token_id, model_config.pad_token_id):
        raise InvalidInput("checkpoint", f"{TOKENIZER_FILE} disagrees with {CONFIG_FILE} on the mask or pad id")
    if codec.vocab_size != model_config.vocab_size:
        raise InvalidInput(
            "checkpoint", f"{TOKENIZER_FILE} has {codec.vocab_size} tokens, config says {model_config.vocab_size}"
        )
    model = ReferenceMDM(model_config)
    tensors = {name: t.float() for name, t in load_weights(folder / WEIGHTS_FILE).items()}
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise InvalidInput("checkpoint", f"{WEIGHTS_FILE} does not match {CONFIG_FILE}: {error}") from None
    return model.eval(), codec, config


def load_native(
    path: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    mask_token_id: int | None = None,
) -> LoadedDenoiser:
    """A Denoiser from a native folder or a .zip of one (extracted safely to a temporary folder, then removed)."""
    path = Path(path)
    if is_zip(path):
        with tempfile.TemporaryDirectory(prefix="mdmtune-native-") as scratch:
            folder = single_root(safe_extract(path, Path(scratch) / "checkpoint"))
            return _denoiser(folder, device, dtype, mask_token_id)
    if not path.is_dir():
        raise InvalidInput("checkpoint", f"{path} is neither a folder nor a zip archive")
    return _denoiser(path, device, dtype, mask_token_id)


def _denoiser(
    folder: Path, device: str | torch.device | None, dtype: str | torch.dtype | None, mask_token_id: int | None
) -> LoadedDenoiser:
    model, codec, _ = load_reference(folder)
    if mask_token_id is not None and mask_token_id != model.config.mask_token_id:
        raise InvalidInput("mask_token_id", f"the native model was trained with mask id {model.config.mask_token_id}")
    target = resolve_device(device)
    model = model.to(target, resolve_dtype(dtype, target))
    return LoadedDenoiser(
        forward=model,
        mask_token_id=model.config.mask_token_id,
        pad_token_id=model.config.pad_token_id,
        vocab_size=model.config.vocab_size,
        device=target,
        dtype=next(model.parameters()).dtype,
        codec=codec,
        format="native",
        max_length=model.config.max_len,
        module=model,
        end_token_ids=(model.config.pad_token_id,),
    )
