"""The options that say how a checkpoint is read, its records encoded and sampled, shared by the model commands.

Why one place: `sample` is how a user checks by hand what `tune` will search over, so both must read a model the same
way, and both print what was detected (format, family, mask and end ids, shift, template) so a wrong guess is seen.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

ADD_SPECIAL_TOKENS_OPTION = typer.Option(
    True,
    "--add-special-tokens/--no-add-special-tokens",
    help="Encode records as the tokenizer's __call__ does by default ([CLS] ... [SEP], BOS, ...); off: texts alone.",
)
CHAT_TEMPLATE_OPTION = typer.Option(
    False, "--chat-template", help="Wrap each prompt as one user turn of the tokenizer's chat template."
)
CFG_SCALE_OPTION = typer.Option(0.0, "--cfg-scale", help="LLaDA's classifier-free guidance scale, 0 to 100 (0: off).")
CONFIDENCE_DTYPE_OPTION = typer.Option(
    "model", "--confidence-dtype", help="Remasking softmax precision: model (LLaDA today) | float64 (LLaDA < 2025-06)."
)
SAMPLER_OPTION = typer.Option("count", "--sampler", help="count | ancestral.")
REMASKING_OPTION = typer.Option("low_confidence", "--remasking", help="low_confidence | random | margin | entropy.")
TEMPERATURE_OPTION = typer.Option(0.0, "--temperature", help="Sampling temperature (0: argmax).")
GEN_LENGTH_OPTION = typer.Option(None, "--gen-length", help="Completion: tokens generated after the prompt.")
BLOCK_LENGTH_OPTION = typer.Option(None, "--block-length", help="Semi-autoregressive block length.")
MASK_SYMBOL_OPTION = typer.Option(None, "--mask-symbol", help="Infill mask symbol (default: the tokenizer's).")
BATCH_SIZE_OPTION = typer.Option(64, "--batch-size", help="Rows per model call.")
TRUST_REMOTE_CODE_OPTION = typer.Option(False, "--trust-remote-code", help="hf: allow custom model code.")
FAMILY_OPTION = typer.Option(
    "auto", "--family", help="hf checkpoints: auto (detected) | masked_lm | llada | dream | mdlm."
)


def load_for_cli(checkpoint: Any, family: str, trust_remote_code: bool) -> Any:
    """load_denoiser with the family override (refused by name for a non-hf checkpoint).

    What was detected is printed only once the records are encoded too (print_model_line): bad input must still
    end in exactly one line on stderr."""
    from mdmtune.models.loading import load_denoiser

    return load_denoiser(checkpoint, trust_remote_code=trust_remote_code, family=family)


def print_model_line(facts: dict[str, Any]) -> None:
    """One stderr line with what was detected (stdout stays the command's own output)."""
    parts = [
        f"format {facts.get('format')}",
        f"family {facts.get('family')}",
        f"mask id {facts.get('mask_token_id')}",
        f"end ids {facts.get('end_token_ids')}",
        f"shifted logits {'yes' if facts.get('shifted_logits') else 'no'}",
    ]
    if "template" in facts:
        template = facts["template"]
        state = "on" if facts.get("add_special_tokens") else "off"
        parts.append(f"special tokens {state}: {template['prefix']} ... {template['suffix']}")
    sys.stderr.write("checkpoint: " + ", ".join(parts) + "\n")
    sys.stderr.flush()
