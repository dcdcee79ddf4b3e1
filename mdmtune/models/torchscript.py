"""TorchScript checkpoints: a `torch.jit.save` file whose forward maps token ids [B, L] (int64) to logits [B, L, V].

A TorchScript file holds no tokenizer and no mask id, so the checkpoint is a folder (or a .zip of it):

    model.pt        the torch.jit.save file (any one file ending .pt, .pth, .ts, .jit or .torchscript)
    tokenizer.json  a `tokenizers` tokenizer
    config.json     optional: {"mask_token_id": int, "pad_token_id": int, "eos_token_id": int or [int]}

A bare .pt file is accepted too: the tokenizer.json (and config.json, if any) are then read from the same folder.
mask_token_id and pad_token_id passed by the caller win over config.json; with neither, loading fails with a message
saying which to pass. The forward is called as `module(ids)`: the attention mask is not passed (the contract's
forward takes ids only). Weights stay float32 unless the caller asks for another dtype, since a scripted graph may
hard-code float32 constants.

Never unpickled: a `torch.save` file is also a zip with a data.pkl inside, but only TorchScript archives carry a
`code/` folder; anything else (a torch.save zip, a legacy raw pickle) is refused before torch sees it. Must never
import FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from mdmtune.data.archive import is_zip, safe_extract, single_root
from mdmtune.errors import InvalidInput
from mdmtune.models.adapter import LoadedDenoiser
from mdmtune.models.bounds import check_config_sizes, check_in_vocabulary
from mdmtune.models.codec import TokenizerCodec, load_tokenizer_file
from mdmtune.models.device import resolve_device, resolve_dtype
from mdmtune.models.families import listed_ids
from mdmtune.models.json_files import read_json

MODEL_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript")
PICKLE_PROTOCOL_BYTE = 0x80


def classify_zip(path: Path) -> str:
    """ "torchscript", "torch-pickle" (a torch.save archive) or "folder" (a zipped checkpoint folder)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        return "folder"
    roots = {name.split("/", 1)[0] for name in names}
    if len(roots) != 1 or not any(name.endswith("/data.pkl") for name in names):
        return "folder"
    if any("/code/" in name or name.endswith("/constants.pkl") for name in names):
        return "torchscript"
    return "torch-pickle"


def is_raw_pickle(path: Path) -> bool:
    """True for a legacy torch.save / pickle file: it starts with the PROTO opcode and a protocol number 2-5."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    return len(head) == 2 and head[0] == PICKLE_PROTOCOL_BYTE and 2 <= head[1] <= 5


def check_torchscript_file(path: Path) -> None:
    """Refuse anything that is not a TorchScript archive, naming the file; never opens it with torch."""
    if not path.is_file():
        raise InvalidInput("checkpoint", f"{path.name} is missing")
    if is_zip(path):
        kind = classify_zip(path)
        if kind == "torchscript":
            return
        if kind == "torch-pickle":
            raise InvalidInput(
                "checkpoint",
                f"{path.name} is a torch.save pickle, not TorchScript; mdmtune never unpickles. "
                "Save it with torch.jit.save(torch.jit.script(model) or torch.jit.trace(model, ids), path)",
            )
    if is_raw_pickle(path):
        raise InvalidInput("checkpoint", f"{path.name} is a pickle file; mdmtune never unpickles")
    raise InvalidInput("checkpoint", f"{path.name} is not a TorchScript file")


def find_model_file(folder: Path) -> Path:
    """The one TorchScript file of a folder; InvalidInput when there is none or several."""
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in MODEL_SUFFIXES)
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise InvalidInput(
            "checkpoint", f"expected exactly one TorchScript file ({'/'.join(MODEL_SUFFIXES)}), found {found}"
        )
    return candidates[0]


def is_torchscript_folder(folder: Path) -> bool:
    """True when `folder` holds exactly one TorchScript-suffixed file and a tokenizer.json."""
    return (folder / "tokenizer.json").is_file() and sum(
        1 for p in folder.iterdir() if p.is_file() and p.suffix in MODEL_SUFFIXES
    ) == 1


def load_torchscript(
    path: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    mask_token_id: int | None = None,
    pad_token_id: int | None = None,
) -> LoadedDenoiser:
    """A Denoiser from a TorchScript folder, a .zip of one, or a bare TorchScript file (see the module docstring)."""
    path = Path(path)
    options = dict(device=device, dtype=dtype, mask_token_id=mask_token_id, pad_token_id=pad_token_id)
    if path.is_dir():
        return _load(find_model_file(path), path, **options)
    if is_zip(path) and classify_zip(path) == "folder":
        with tempfile.TemporaryDirectory(prefix="mdmtune-ts-") as scratch:
            folder = single_root(safe_extract(path, Path(scratch) / "checkpoint"))
            return _load(find_model_file(folder), folder, **options)
    return _load(path, path.parent, **options)


def _read_ids(folder: Path) -> dict[str, Any]:
    """config.json ({} when absent): the mask, pad and eos ids a TorchScript file cannot hold."""
    config = read_json(folder, "config.json", required=False)
    check_config_sizes(config)
    return config if isinstance(config, dict) else {}


def _pick_id(field: str, explicit: int | None, config: dict[str, Any]) -> int:
    value = explicit if explicit is not None else config.get(field)
    if not isinstance(value, int):
        raise InvalidInput(field, f"a TorchScript checkpoint needs {field}: pass it, or put it in config.json")
    return value


def _load(
    model_file: Path,
    folder: Path,
    *,
    device: str | torch.device | None,
    dtype: str | torch.dtype | None,
    mask_token_id: int | None,
    pad_token_id: int | None,
) -> LoadedDenoiser:
    check_torchscript_file(model_file)
    tokenizer = load_tokenizer_file(folder / "tokenizer.json")
    config = _read_ids(folder)
    mask = _pick_id("mask_token_id", mask_token_id, config)
    pad = _pick_id("pad_token_id", pad_token_id, config)
    target = resolve_device(device)
    module = _jit_load(model_file, target).to(resolve_dtype(dtype or "float32", target)).eval()
    vocab_size = _probe_vocab_size(module, model_file, mask, target)
    check_in_vocabulary((("mask_token_id", mask), ("pad_token_id", pad)), vocab_size)
    parameter = next(iter(module.parameters()), None)
    return LoadedDenoiser(
        forward=lambda ids, attention_mask: module(ids),
        mask_token_id=mask,
        pad_token_id=pad,
        vocab_size=vocab_size,
        device=target,
        dtype=parameter.dtype if parameter is not None else torch.float32,
        codec=TokenizerCodec(tokenizer, mask),
        format="torchscript",
        max_length=config.get("max_length") if isinstance(config.get("max_length"), int) else None,
        module=module,
        end_token_ids=_end_ids(config, pad),
        family="torchscript",
    )


def _jit_load(model_file: Path, target: torch.device) -> torch.jit.ScriptModule:
    """The TorchScript module (after check_torchscript_file: an archive with code, never a pickle)."""
    try:
        return torch.jit.load(str(model_file), map_location=target)
    except RuntimeError as error:
        message = str(error).splitlines()[0]
        raise InvalidInput("checkpoint", f"{model_file.name} could not be loaded as TorchScript: {message}") from None


def _end_ids(config: dict[str, Any], pad: int) -> tuple[int, ...]:
    """config.json's eos_token_id (an id or a list); without one, the pad id ends a completion as before."""
    return listed_ids(config.get("eos_token_id")) or (pad,)


def _probe_vocab_size(module: torch.jit.ScriptModule, model_file: Path, mask: int, device: torch.device) -> int:
    """Run the forward once on [[mask]] and read V off the output; checks the [B, L] -> [B, L, V] contract."""
    try:
        with torch.inference_mode():
            output = module(torch.tensor([[mask, mask]], dtype=torch.long, device=device))
    except Exception as error:  # TorchScript surfaces any error inside the graph as torch.jit.Error
        message = str(error).splitlines()[0]
        raise InvalidInput("checkpoint", f"{model_file.name}: forward on token ids failed: {message}") from None
    if not isinstance(output, torch.Tensor) or output.dim() != 3 or tuple(output.shape[:2]) != (1, 2):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise InvalidInput(
            "checkpoint", f"{model_file.name}: forward must map ids [B, L] to logits [B, L, V], gave {shape}"
        )
    return int(output.shape[-1])
