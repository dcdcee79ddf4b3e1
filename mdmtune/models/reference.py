"""The project's own reference masked diffusion model: a small bidirectional pre-norm transformer.

Shaped like LLaDA's mask predictor, only tiny: no causal mask, no time conditioning (the model infers the noise level
from how many [MASK] tokens it sees, as LLaDA and MDLM's time-free variant do), learned absolute positions because
testbed sequences have a fixed length. About 0.5-2M parameters, so it trains on a CPU in minutes and lets the whole
tuning pipeline run end to end without a GPU. Must never import FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mdmtune.errors import InvalidInput


@dataclass(frozen=True)
class ReferenceConfig:
    """Everything needed to rebuild the network; stored in the native checkpoint's config.json."""

    vocab_size: int
    max_len: int
    mask_token_id: int
    pad_token_id: int
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 512
    dropout: float = 0.0
    position_groups: tuple[tuple[int, ...], ...] = ()
    """Optional structure of the positions, one tuple of max_len group indices per grouping (for a 9x9 grid: the
    row, the column and the box of each cell). Each grouping adds a learned embedding of a position's group, the
    way ViT factorizes 2-D positions; a task with a known layout then need not discover it from scratch."""
    group_attention: bool = False
    """With position_groups: each position attends only to positions that share a group with it in some grouping
    (on a Sudoku grid, its row, column and box: the cells its rules speak of). Each layer is then one round of
    passing messages between constrained cells, the inductive bias of recurrent relational networks."""

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_len", "d_model", "n_layers", "n_heads", "d_ff"):
            if getattr(self, name) < 1:
                raise InvalidInput(name, f"must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise InvalidInput("n_heads", f"must divide d_model={self.d_model}, got {self.n_heads}")
        for name in ("mask_token_id", "pad_token_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise InvalidInput(name, f"must lie in [0, {self.vocab_size}), got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidInput("dropout", f"must lie in [0, 1), got {self.dropout}")
        groups = tuple(tuple(int(g) for g in grouping) for grouping in self.position_groups)
        object.__setattr__(self, "position_groups", groups)  # JSON gives lists; keep the config hashable
        for grouping in groups:
            if len(grouping) != self.max_len or min(grouping) < 0:
                raise InvalidInput("position_groups", f"each grouping needs {self.max_len} indices >= 0")
        if self.group_attention and not groups:
            raise InvalidInput("group_attention", "needs position_groups to say which positions share a group")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceConfig:
        """Build from config.json's `model` object; unknown or missing keys are bad input naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidInput("config.json", f"unknown model keys {unknown}")
        try:
            return cls(**data)
        except TypeError as error:
            raise InvalidInput("config.json", f"model section incomplete: {error}") from None


class _Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: ReferenceConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.dropout = config.dropout
        self.norm1 = nn.LayerNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.d_ff), nn.GELU(), nn.Linear(config.d_ff, config.d_model)
        )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, length, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        dropout = self.dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=dropout)
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, length, width))
        return x + self.mlp(self.norm2(x))


class ReferenceMDM(nn.Module):
    """ids [B, L] (+ attention mask [B, L], 1 = real token) -> logits [B, L, V]; bidirectional attention."""

    def __init__(self, config: ReferenceConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = nn.Embedding(config.max_len, config.d_model)
        self.group_embeddings = nn.ModuleList(nn.Embedding(max(g) + 1, config.d_model) for g in config.position_groups)
        for index, grouping in enumerate(config.position_groups):
            self.register_buffer(f"group_index_{index}", torch.tensor(grouping), persistent=False)
        if config.group_attention:
            self.register_buffer("group_peers", _group_peers(config.position_groups), persistent=False)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size)
        self.apply(_init_weights)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        length = ids.shape[1]
        if length > self.config.max_len:
            raise InvalidInput("ids", f"length {length} is over the model's max_len {self.config.max_len}")
        positions = torch.arange(length, device=ids.device)
        x = self.token_embedding(ids) + self.position_embedding(positions)
        for index, embedding in enumerate(self.group_embeddings):
            x = x + embedding(getattr(self, f"group_index_{index}")[:length])
        key_mask = None
        if attention_mask is not None:
            key_mask = attention_mask.to(torch.bool)[:, None, None, :]
        if self.config.group_attention:
            peers = self.group_peers[:length, :length][None, None]
            key_mask = peers if key_mask is None else key_mask & peers
        for block in self.blocks:
            x = block(x, key_mask)
        return self.head(self.norm(x))

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _group_peers(position_groups: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """[L, L] bool: True where two positions share a group in at least one grouping (a position is its own peer)."""
    groups = torch.tensor(position_groups)  # [groupings, L]
    return (groups[:, :, None] == groups[:, None, :]).any(dim=0)


def _init_weights(module: nn.Module) -> None:
    """GPT-2 style small normal init: keeps a freshly built model's logits near uniform."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
