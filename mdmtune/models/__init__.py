"""Denoisers: the one protocol the samplers talk to, and one adapter per checkpoint format.

Public surface: `load_denoiser(path, ...)` (any format, detected), `detect_format(path)`, the protocols `Denoiser`
and `TextCodec`, the concrete `LoadedDenoiser` every adapter returns, and `save_native` for the trainer.
"""

from mdmtune.models.adapter import LoadedDenoiser
from mdmtune.models.base import Denoiser, TextCodec
from mdmtune.models.codec import CharCodec, HFTokenizerCodec, TokenizerCodec
from mdmtune.models.loading import FORMATS, detect_format, load_denoiser
from mdmtune.models.native import save_native

__all__ = [
    "FORMATS",
    "CharCodec",
    "Denoiser",
    "HFTokenizerCodec",
    "LoadedDenoiser",
    "TextCodec",
    "TokenizerCodec",
    "detect_format",
    "load_denoiser",
    "save_native",
]
