"""Denoisers: the one protocol the samplers talk to, and one adapter per checkpoint format.

Public surface: `load_denoiser(path, ...)` (any format, detected), `detect_format(path)`, the protocols `Denoiser`
and `TextCodec`, the concrete `LoadedDenoiser` every adapter returns, and `save_native` for the trainer. The names
resolve on first use, so that a torch-free submodule (`mdmtune.models.metadata`, read by API nodes at upload) can be
imported without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "LoadedDenoiser": "mdmtune.models.adapter",
    "Denoiser": "mdmtune.models.base",
    "TextCodec": "mdmtune.models.base",
    "CharCodec": "mdmtune.models.codec",
    "HFTokenizerCodec": "mdmtune.models.codec",
    "TokenizerCodec": "mdmtune.models.codec",
    "FORMATS": "mdmtune.models.loading",
    "detect_format": "mdmtune.models.loading",
    "load_denoiser": "mdmtune.models.loading",
    "save_native": "mdmtune.models.native",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'mdmtune.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
