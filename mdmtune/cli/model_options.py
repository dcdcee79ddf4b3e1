"""The commands' options, made from the option table (mdmtune.options.table), and how the model commands load a
checkpoint and say what they detected.

Why one place: `sample` is how a user checks by hand what `tune` will search over, so both must read a model the same
way, and both print what was detected (format, family, mask and end ids, shift, template) so a wrong guess is seen.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mdmtune.errors import InvalidInput
from mdmtune.options.table import BY_NAME, Option, command_options

if TYPE_CHECKING:
    from mdmtune.data.evalsets import EvalSet
    from mdmtune.models.base import Denoiser
    from mdmtune.tuning.evaluation import EncodedSet

Options = dict[str, Any]
"""The table's options of one command, by name, as the command received them (bounds parsed to tuples)."""
Command = Callable[..., None]
Decorator = Callable[[Command], Command]


def with_options(command: str, defaults: Mapping[str, object] | None = None, unset: bool = False) -> Decorator:
    """Add every option the table gives `command` (mdmtune.options.table) to the decorated command's typer signature;
    the command receives them as one `options` dict. `defaults` overrides a default for this command; `unset` makes
    every default None (the remote commands: the server fills them in).

    Why: a flag, its type, default and help are then written once, in the table, for every command that takes it."""
    declared = command_options(command)
    defaults = defaults or {}

    def wrap(function: Command) -> Command:
        signature = inspect.signature(function, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "options"]
        added = [_parameter(o, None if unset else defaults.get(o.name, o.default), unset) for o in declared]

        @functools.wraps(function)
        def run(**values: object) -> None:
            options = {o.name: _parsed(o, values.pop(o.name)) for o in declared}
            function(**values, options=options)

        vars(run)["__signature__"] = signature.replace(parameters=[*own, *added])  # what typer reads
        return run

    return wrap


def _parameter(option: Option, default: object, unset: bool) -> inspect.Parameter:
    """One typer option from its declaration: flag, type, default and help."""
    kinds: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str, "choice": str, "bounds": str}
    kind: Any = kinds[option.kind]
    if option.optional or option.kind == "bounds" or unset:
        kind = kind | None
    help_text = option.help + (f" ({' | '.join(option.choices)})" if option.choices else "")
    if option.kind == "bounds":
        default = None  # the text "low,high"; None: the table's default
    info = typer.Option(default, option.cli_flag, help=help_text)
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=kind)


def _parsed(option: Option, value: object) -> object:
    """Bounds come as the text "low,high" (None: the table's default); every other value as typer parsed it."""
    if option.kind != "bounds":
        return value
    return option.default if value is None else parse_bounds(str(value), option.name)


def parse_bounds(text: str, field: str) -> tuple[float, float]:
    """ "0.05,5" -> (0.05, 5.0)."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise InvalidInput(field, f"must be two numbers 'low,high', got {text!r}") from None
    return (low, high)


def part_values(options: Options, part: str) -> dict[str, Any]:
    """The options of one part (mdmtune.options.parts), to build it: `SamplerSettings(**part_values(o, "sampling"))`."""
    return {name: value for name, value in options.items() if BY_NAME[name].part == part}


def check_reading(options: Options) -> None:
    """How the checkpoint is read, by the declarations (gen_length, batch_size, mask_symbol, family, ...): sample and
    compare build no TuneSpec that would check them, and must refuse what tune and the service refuse."""
    from mdmtune.options import ModelReading

    ModelReading(**part_values(options, "reading"))


def spec_values(options: Options) -> dict[str, Any]:
    """The options a TuneSpec takes (not trust_remote_code, not max_steps)."""
    return {name: value for name, value in options.items() if BY_NAME[name].in_spec}


def load_for_cli(checkpoint: Path, family: str, trust_remote_code: bool) -> Denoiser:
    """load_denoiser with the family override (refused by name for a non-hf checkpoint).

    What was detected is printed only once the records are encoded too (print_model_line): bad input must still
    end in exactly one line on stderr."""
    from mdmtune.models.loading import load_denoiser

    return load_denoiser(checkpoint, trust_remote_code=trust_remote_code, family=family)


def encode_for_cli(denoiser: Denoiser, records: EvalSet, options: Options) -> EncodedSet:
    """encode_records with the command's reading options (gen_length, mask symbol, template)."""
    from mdmtune.tuning.evaluation import encode_records

    return encode_records(
        denoiser,
        records,
        gen_length=options["gen_length"],
        mask_symbol=options["mask_symbol"],
        add_special_tokens=options["add_special_tokens"],
        chat_template=options["chat_template"],
    )


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
