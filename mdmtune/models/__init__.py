"""Denoisers: the one protocol the samplers talk to, and one adapter per checkpoint format."""

from mdmtune.models.base import Denoiser, TextCodec

__all__ = ["Denoiser", "TextCodec"]
