"""Every tuning, loading and sampling option, declared once: name, type, default, bounds or choices, help, CLI flag,
the frozen part it belongs to, and where it shows (the HTTP request, which CLI commands).

Why one table: the job spec (`TuneSpec` and its parts), the HTTP request model and the typer options are all derived
from it (mdmtune.options.parts, mdmtune.service.app.schemas, mdmtune.cli.model_options), so a name, a bound or a help
text cannot drift between the library, the API and the command line. Adding an option is one `Option(...)` here.

The parts:
- "reading": how the checkpoint is read and its records encoded and batched (mdmtune.options.parts.ModelReading);
- "sampling": how one sampling call runs (`SamplerSettings`);
- "search": what the Optuna search looks for and how (`Search`);
- "scoring": how outputs are scored and the candidates compared (`Scoring`: metric, records, confirm split, bootstrap);
- "cli": command-line only, in no part (trust_remote_code).
Torch-free: an API node and `mdmtune --help` read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mdmtune.options import limits as L
from mdmtune.options.names import (
    CONFIDENCE_DTYPES,
    DECODERS,
    DEFAULT_BOUNDS,
    DEFAULT_TRIALS,
    FAMILIES,
    MAX_CFG_SCALE,
    MAX_DECODER_STEPS,
    MAX_ENTROPY_BOUND,
    OBJECTIVES,
    REMASKINGS,
    SAMPLERS,
    SEARCH_ALGORITHMS,
)

Part = Literal["reading", "sampling", "search", "scoring", "cli"]
Kind = Literal["int", "float", "bool", "str", "choice", "bounds", "steps"]

MODEL_COMMANDS = ("sample", "compare", "tune", "frontier")
"""The commands that load a checkpoint and sample it: each takes every reading option."""
SCHEDULE_COMMANDS = ("sample", "compare", "tune")
"""The commands that sample with a sampler and remasking of the user's choice (frontier uses the defaults)."""
DECODER_COMMANDS = ("sample", "tune")
SEARCH_COMMANDS = ("tune", "frontier")
REMOTE = "remote"
"""`mdmtune remote submit` and `remote tune`: the options named there; any other goes through --set name=value."""


@dataclass(frozen=True)
class Option:
    """One option. `low`/`high` bound a number (a string's length for kind "str"); `low_open`/`high_open` make an
    end exclusive. `optional`: None is allowed (and means "not given"). `check`: a rule the kind cannot say."""

    name: str
    part: Part
    kind: Kind
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False
    flag: str | None = None
    """CLI flag(s); None: --name-with-dashes."""
    commands: tuple[str, ...] = ()
    """The CLI commands that take it."""
    http: bool = True
    """Part of the HTTP request (POST /v1/tune)."""
    in_spec: bool = True
    """Part of `TuneSpec` (max_steps is a sampling option only `mdmtune sample` takes)."""
    check: Callable[[object], None] | None = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


def _check_metric(name: object) -> None:
    """The metric must be registered (mdmtune.metrics owns the list; imported only when a name is given)."""
    from mdmtune.errors import InvalidInput

    if name is None:
        return  # resolved against the eval set when it is loaded (mdmtune.metrics.resolve_metric)
    if not isinstance(name, str):
        raise InvalidInput("metric", f"must be a metric name, got {name!r}")
    from mdmtune.metrics import get_metric

    try:
        get_metric(name)
    except InvalidInput as error:
        raise InvalidInput("metric", error.message) from None


_READING = (
    Option("gen_length", "reading", "int", None, "Completion records: tokens generated after the prompt (>= steps); "
           "infill records ignore it.", low=1, high=L.MAX_GEN_LENGTH, optional=True,
           commands=(*MODEL_COMMANDS, REMOTE)),
    Option("mask_symbol", "reading", "str", None, "Infill mask symbol; none: the tokenizer's own mask token text.",
           low=1, high=L.MAX_MASK_SYMBOL_CHARS, optional=True, commands=MODEL_COMMANDS),
    Option("batch_size", "reading", "int", 64, "Rows per model call (the denoiser's batch; adapts down on "
           "out-of-memory where supported).", low=1, high=L.MAX_BATCH_SIZE, commands=MODEL_COMMANDS, http=False),
    Option("add_special_tokens", "reading", "bool", True, "Encode records as the tokenizer's own __call__ does by "
           "default, its special tokens included ([CLS] ... [SEP] for BERT, BOS for LLaDA); off: the texts' tokens "
           "alone.", flag="--add-special-tokens/--no-add-special-tokens", commands=MODEL_COMMANDS),
    Option("chat_template", "reading", "bool", False, "Wrap each completion prompt as one user turn of the tokenizer's "
           "chat template (records with `messages` always use it).", commands=MODEL_COMMANDS),
    Option("family", "reading", "choice", "auto", "hf checkpoints: the model family (auto: detected from config.json "
           "and the tokenizer).", choices=("auto", *FAMILIES), commands=MODEL_COMMANDS),
)  # fmt: skip

_SAMPLING = (  # in SamplerSettings' positional order
    Option("sampler", "sampling", "choice", "count", "count (LLaDA: K_k tokens per step) or ancestral (MDLM).",
           choices=SAMPLERS, commands=SCHEDULE_COMMANDS),
    Option("remasking", "sampling", "choice", "low_confidence", "Which positions the count sampler commits at each "
           "step.", choices=REMASKINGS, commands=SCHEDULE_COMMANDS),
    Option("temperature", "sampling", "float", 0.0, "Sampling temperature (0: greedy, the argmax token).",
           low=0, high=L.MAX_TEMPERATURE, commands=MODEL_COMMANDS),
    Option("block_length", "sampling", "int", None, "Semi-autoregressive block length; must divide gen_length, and "
           "the block count must divide steps. None: one block of gen_length.", low=1, high=L.MAX_GEN_LENGTH,
           optional=True, commands=MODEL_COMMANDS),
    Option("cfg_scale", "sampling", "float", 0.0, "LLaDA's classifier-free guidance scale (0: off); the unconditional "
           "pass masks the prompt.", low=0, high=MAX_CFG_SCALE, commands=MODEL_COMMANDS),
    Option("confidence_dtype", "sampling", "choice", "model", "Precision of the remasking softmax: the model's dtype "
           "(as LLaDA's current generate) or float64 (as before June 2025).", choices=CONFIDENCE_DTYPES,
           commands=MODEL_COMMANDS),
    Option("decoder", "sampling", "choice", "schedule", "schedule (the Beta plan), or an adaptive decoder: threshold "
           "(Fast-dLLM, with threshold), entropy (EB-sampler, with entropy_bound), hybrid (diffusers' "
           "BlockRefinementScheduler: the plan as a floor plus every position above threshold). A tune job scores it "
           "beside the baselines, the rival the tuned schedule must beat.", choices=DECODERS,
           commands=DECODER_COMMANDS),
    Option("threshold", "sampling", "float", None, "Threshold decoder: commit positions at least this confident; "
           "hybrid: above it (tau in [0, 1]).", low=0, high=1, optional=True, commands=DECODER_COMMANDS),
    Option("entropy_bound", "sampling", "float", None, "Entropy decoder: commit the lowest-entropy positions while "
           "sum - max <= this (gamma, nats).", low=0, high=MAX_ENTROPY_BOUND, optional=True,
           commands=DECODER_COMMANDS),
    Option("max_steps", "sampling", "int", None, "Threshold and entropy decoders: cap on model calls per record.",
           low=1, high=MAX_DECODER_STEPS, optional=True, commands=("sample",), http=False, in_spec=False),
)  # fmt: skip

_SEARCH = (
    Option("objective", "search", "choice", "quality", "quality (score on the eval set), energy (model-free, "
           "docs/math.md), or frontier (quality per model call at each budget).", choices=OBJECTIVES,
           commands=("tune", REMOTE)),
    Option("steps", "search", "steps", 8, "N, the number of sampling steps the schedule is tuned for (several: a "
           "steps sweep). A quality job's N is at most gen_length (completion) or the eval set's largest masked "
           "count (infill).", low=1, high=L.MAX_STEPS),
    Option("weight_a", "search", "float", 1.0, "Energy objective: the weight Beta's a_w (gamma_w = I_t(a_w, b_w)).",
           low=0, low_open=True, high=L.MAX_SHAPE, commands=("tune",)),
    Option("weight_b", "search", "float", 1.0, "Energy objective: the weight Beta's b_w.",
           low=0, low_open=True, high=L.MAX_SHAPE, commands=("tune",)),
    Option("n_trials", "search", "int", None, f"Finished trials to run, the linear and cos2 baselines included; "
           f"none: {DEFAULT_TRIALS['quality']} (quality), {DEFAULT_TRIALS['energy']} (energy), "
           f"{DEFAULT_TRIALS['frontier']} (frontier, at each budget).", low=1, high=L.MAX_TRIALS, optional=True,
           flag="--trials", commands=(*SEARCH_COMMANDS, REMOTE)),
    Option("a_bounds", "search", "bounds", DEFAULT_BOUNDS, "Log-uniform search range of a: low,high.",
           low=0, low_open=True, high=L.MAX_SHAPE, commands=SEARCH_COMMANDS),
    Option("b_bounds", "search", "bounds", DEFAULT_BOUNDS, "Log-uniform search range of b: low,high.",
           low=0, low_open=True, high=L.MAX_SHAPE, commands=SEARCH_COMMANDS),
    Option("search_algorithm", "search", "choice", "tpe", "Optuna sampler.", choices=SEARCH_ALGORITHMS,
           commands=("tune",)),
    Option("seed", "search", "int", 0, "Seeds the search, the search/confirm split, every record's draws (the same "
           "in sample, compare and tune) and the bootstrap.", low=0, high=L.MAX_SEED,
           commands=(*MODEL_COMMANDS, REMOTE)),
    Option("trials_per_batch", "search", "int", 8, "Trials asked at once and sampled in one batch.",
           low=1, high=L.MAX_TRIALS_PER_BATCH, commands=("tune",), http=False),
)  # fmt: skip

_SCORING = (
    Option("metric", "scoring", "str", None, "Scorer name from the metric registry (exact_match, numeric_match, regex, "
           "sudoku, gsm8k, gsm8k_strict, math, bbh, pass_at_1, ...); required unless the eval set declares one.",
           optional=True, commands=(*MODEL_COMMANDS, "score", REMOTE), check=_check_metric),
    Option("subset_size", "scoring", "int", None, "Records of the search split used at the last rung (none: all).",
           low=2, high=L.MAX_SUBSET_SIZE, optional=True, commands=SEARCH_COMMANDS),
    Option("replicates", "scoring", "int", 1, "Samples per record (own seed each, shared by every schedule: common "
           "random numbers).", low=1, high=L.MAX_REPLICATES, commands=("compare", *SEARCH_COMMANDS)),
    Option("confirm_fraction", "scoring", "float", 0.3, "Share of the eval set held out to re-score the top "
           "candidates (the reported numbers come from it).", low=0, high=1, low_open=True, high_open=True,
           commands=SEARCH_COMMANDS, http=False),
    Option("top_k", "scoring", "int", 5, "Candidates (best search values) re-scored on the confirm split.",
           low=1, high=L.MAX_TOP_K, http=False),
    Option("reduction_factor", "scoring", "int", 3, "Successive halving: each rung has this many times the records "
           "of the one before and keeps about 1/this.", low=2, high=L.MAX_REDUCTION_FACTOR, http=False),
    Option("min_rung_records", "scoring", "int", 8, "The first rung's record count is at least this.",
           low=1, high=L.MAX_SUBSET_SIZE, http=False),
    Option("bootstrap_resamples", "scoring", "int", 10_000, "Bootstrap resamples of the paired differences.",
           low=100, high=L.MAX_BOOTSTRAP_RESAMPLES, http=False),
)  # fmt: skip

_CLI = (
    Option("trust_remote_code", "cli", "bool", False, "hf: allow the checkpoint's own model code.",
           commands=MODEL_COMMANDS, http=False, in_spec=False),
)  # fmt: skip

OPTIONS: tuple[Option, ...] = (*_SEARCH, *_READING, *_SAMPLING, *_SCORING, *_CLI)
BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}


def options_of(part: Part) -> tuple[Option, ...]:
    return tuple(option for option in OPTIONS if option.part == part)


def spec_options() -> tuple[Option, ...]:
    """The options a `TuneSpec` holds (its flat names: `to_dict`, `from_mapping`)."""
    return tuple(option for option in OPTIONS if option.in_spec)


def command_options(command: str) -> tuple[Option, ...]:
    return tuple(option for option in OPTIONS if command in option.commands)
