"""One entry point for every checkpoint a user can hand in: detect its format, then call that format's adapter.

Formats (README.md): "native" (the reference MDM: config.json with format mdmtune-native), "hf" (a
save_pretrained folder), "torchscript" (a torch.jit.save file, alone or in a folder with tokenizer.json). Each may
come as a folder or a .zip of it. Detection reads names and small JSON files only; it never unpickles, and pickles
(torch.save files, pytorch_model.bin) are refused here with a message naming the file. Must never import FastAPI or
SQLAlchemy.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path, PurePosixPath
from typing import Literal

import torch

from mdmtune.data.archive import is_zip
from mdmtune.errors import InvalidInput
from mdmtune.models.adapter import LoadedDenoiser
from mdmtune.models.hf import PICKLE_SUFFIXES, is_hf_folder, load_hf
from mdmtune.models.native import FORMAT_NAME, is_native_folder, load_native
from mdmtune.models.torchscript import (
    MODEL_SUFFIXES,
    check_torchscript_file,
    classify_zip,
    is_raw_pickle,
    is_torchscript_folder,
    load_torchscript,
)

Format = Literal["native", "hf", "torchscript"]
FORMATS: tuple[str, ...] = ("native", "hf", "torchscript")
_MAX_CONFIG_BYTES = 1 << 20


def detect_format(path: str | os.PathLike[str]) -> Format:
    """ "native", "hf" or "torchscript" for a folder, a .zip of a folder, or a bare TorchScript file."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput("checkpoint", f"{path} does not exist")
    if path.is_dir():
        return _detect_folder(path)
    if is_zip(path):
        kind = classify_zip(path)
        if kind == "folder":
            return _detect_zipped_folder(path)
        check_torchscript_file(path)  # refuses a torch.save archive, naming it
        return "torchscript"
    if path.suffix == ".safetensors":
        raise InvalidInput(
            "checkpoint", f"{path.name} alone has no config or tokenizer: hand in its folder (or a .zip of it)"
        )
    if is_raw_pickle(path):
        raise InvalidInput("checkpoint", f"{path.name} is a pickle file; mdmtune never unpickles")
    raise InvalidInput("checkpoint", f"{path.name} is not a checkpoint folder, zip archive or TorchScript file")


def _detect_folder(folder: Path) -> Format:
    if is_native_folder(folder):
        return "native"
    if is_hf_folder(folder):
        return "hf"
    if is_torchscript_folder(folder):
        return "torchscript"
    names = sorted(p.name for p in folder.iterdir())
    pickles = [p.name for p in sorted(folder.iterdir()) if p.suffix in PICKLE_SUFFIXES and _is_pickle(p)]
    if pickles:
        raise InvalidInput("checkpoint", f"{pickles[0]} is a pickle file; mdmtune never unpickles")
    raise InvalidInput(
        "checkpoint",
        f"folder {folder.name} is none of: native (config.json with format {FORMAT_NAME!r}), hf (config.json with "
        "model_type), torchscript (one .pt file and tokenizer.json); it holds " + (", ".join(names[:10]) or "nothing"),
    )


def _is_pickle(path: Path) -> bool:
    """A raw pickle or a torch.save zip archive (both would need unpickling)."""
    if not path.is_file():
        return False
    return is_raw_pickle(path) or (is_zip(path) and classify_zip(path) == "torch-pickle")


def _detect_zipped_folder(path: Path) -> Format:
    """Decide from the member names and config.json of a zipped folder, without extracting it."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [PurePosixPath(n) for n in archive.namelist() if not n.endswith("/")]
            root = _zip_root(members)
            config = _zip_config(archive, root)
    except zipfile.BadZipFile as error:
        raise InvalidInput("checkpoint", f"{path.name} is a corrupt zip archive: {error}") from None
    files = [m.name for m in members if m.parent == root]
    if isinstance(config, dict) and config.get("format") == FORMAT_NAME:
        return "native"
    if isinstance(config, dict) and ("model_type" in config or "auto_map" in config):
        return "hf"
    if "tokenizer.json" in files and sum(PurePosixPath(f).suffix in MODEL_SUFFIXES for f in files) == 1:
        return "torchscript"
    raise InvalidInput("checkpoint", f"{path.name} holds no native, hf or torchscript checkpoint")


def _zip_root(members: list[PurePosixPath]) -> PurePosixPath:
    """The folder inside the zip that holds the files (the zip may wrap one top-level folder)."""
    tops = {m.parts[0] for m in members if m.parts and m.parts[0] != "__MACOSX"}
    if len(tops) == 1 and all(len(m.parts) > 1 for m in members if m.parts and m.parts[0] != "__MACOSX"):
        return PurePosixPath(next(iter(tops)))
    return PurePosixPath(".")


def _zip_config(archive: zipfile.ZipFile, root: PurePosixPath) -> object:
    name = "config.json" if str(root) == "." else f"{root}/config.json"
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > _MAX_CONFIG_BYTES:
        raise InvalidInput("checkpoint", f"{name} is over {_MAX_CONFIG_BYTES} bytes")
    try:
        return json.loads(archive.read(info))
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput("checkpoint", f"{name} is not valid JSON: {error}") from None


def load_denoiser(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    mask_token_id: int | None = None,
    trust_remote_code: bool = False,
    shifted_logits: bool | None = None,
    pad_token_id: int | None = None,
    family: str = "auto",
) -> LoadedDenoiser:
    """Load any supported checkpoint as a Denoiser (mdmtune.models.base), on CUDA when present, else CPU.

    dtype None: bf16 on a CUDA device that supports it (TorchScript: float32), float32 on CPU. `mask_token_id` and
    `pad_token_id` override what the checkpoint says (native models accept only their own ids).
    `trust_remote_code`, `shifted_logits` (None: the family's default) and `family` (auto: detected; masked_lm,
    llada, dream, mdlm, see mdmtune.models.families) apply to hf checkpoints only.
    """
    if format not in ("auto", *FORMATS):
        raise InvalidInput("format", f"{format!r} is not one of auto, {', '.join(FORMATS)}")
    chosen = detect_format(path) if format == "auto" else format
    if shifted_logits and chosen != "hf":
        raise InvalidInput("shifted_logits", f"applies to hf checkpoints only, this one is {chosen}")
    if family != "auto" and chosen != "hf":
        raise InvalidInput("family", f"applies to hf checkpoints only, this one is {chosen}")
    if chosen == "native":
        if pad_token_id is not None:
            raise InvalidInput("pad_token_id", "a native checkpoint has its own pad id; do not override it")
        return load_native(path, device=device, dtype=dtype, mask_token_id=mask_token_id)
    if chosen == "hf":
        return load_hf(
            path,
            device=device,
            dtype=dtype,
            mask_token_id=mask_token_id,
            pad_token_id=pad_token_id,
            trust_remote_code=trust_remote_code,
            shifted_logits=shifted_logits,
            family=family,
        )
    return load_torchscript(path, device=device, dtype=dtype, mask_token_id=mask_token_id, pad_token_id=pad_token_id)
