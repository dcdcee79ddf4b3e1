"""Real checkpoints and archives for the API tests, written by the real libraries (mdmtune's native writer,
transformers save_pretrained, torch.jit.save, zipfile); small enough to build in well under a second."""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import torch

ALPHABET = "0123456789+= "


def native_folder(path: Path, seed: int = 0, max_len: int = 64) -> Path:
    """A tiny, untrained reference MDM saved by save_native (config.json, model.safetensors, tokenizer.json)."""
    from mdmtune.models.codec import CharCodec
    from mdmtune.models.native import save_native
    from mdmtune.models.reference import ReferenceConfig, ReferenceMDM

    torch.manual_seed(seed)
    codec = CharCodec.for_alphabet(ALPHABET)
    config = ReferenceConfig(
        vocab_size=codec.vocab_size,
        max_len=max_len,
        mask_token_id=codec.mask_token_id,
        pad_token_id=codec.eot_token_id,
        d_model=16,
        n_layers=1,
        n_heads=2,
        d_ff=32,
    )
    return save_native(ReferenceMDM(config), codec, path)


def hf_folder(path: Path) -> Path:
    """A tiny BertForMaskedLM written by transformers' save_pretrained (config.json + model.safetensors)."""
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=32,
    )
    BertForMaskedLM(config).save_pretrained(path)
    return path


def torchscript_file(path: Path) -> Path:
    """A torch.jit.save archive whose forward maps ids [B, L] to logits [B, L, V]."""

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(16, 16)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.embed(ids)

    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; users still hand such files in
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(Tiny()), str(path))
    return path


def zip_folder(folder: Path, root: str | None = None) -> bytes:
    """The folder as zip bytes, under `root/` (default: the folder's name), as `zip -r` of a folder makes it."""
    buffer = io.BytesIO()
    prefix = folder.name if root is None else root
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, f"{prefix}/{file.relative_to(folder).as_posix()}")
    return buffer.getvalue()


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def stored_infill_rows(sessions, root: Path, records: list[dict] | None = None, name: str = "set") -> tuple[str, str]:
    """A tiny real native checkpoint and an infill eval set (8 sums by default) under `root`, with their database
    rows (no facts: the way rows were stored before facts were kept). Returns (checkpoint_id, eval_set_id)."""
    from mdmtune.data.evalsets import write_eval_set
    from mdmtune.service.db.models import Checkpoint, EvalSetRow

    native_folder(root / "ckpt", max_len=16)
    if records is None:
        records = [{"id": i, "masked": f"{i}+1=_", "answer": f"{i}+1={i + 1}"} for i in range(1, 9)]
    written = write_eval_set(records, root / "evals" / f"{name}.jsonl")
    with sessions() as session:
        checkpoint = Checkpoint(sha256="c" * 64, format="native", size=1, path="ckpt")
        path = f"evals/{name}.jsonl"
        eval_set = EvalSetRow(sha256=written.sha256, record_count=len(records), kind="infill", path=path)
        session.add_all([checkpoint, eval_set])
        session.commit()
        return checkpoint.id, eval_set.id
