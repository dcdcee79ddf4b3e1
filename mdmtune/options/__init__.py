"""The option model: every tuning, loading and sampling option declared once (table.py), checked by kind
(checks.py), and grouped into frozen parts (parts.py) that `TuneSpec` nests. Torch-free and web-free."""

from mdmtune.options.parts import PARTS, ModelReading, OptionPart, SamplerSettings, Scoring, Search
from mdmtune.options.table import BY_NAME, OPTIONS, Option, command_options, options_of, spec_options

__all__ = [
    "BY_NAME",
    "OPTIONS",
    "PARTS",
    "ModelReading",
    "Option",
    "OptionPart",
    "SamplerSettings",
    "Scoring",
    "Search",
    "command_options",
    "options_of",
    "spec_options",
]
