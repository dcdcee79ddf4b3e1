"""Kept so `from mdmtune.tuning import limits` still works: the bounds live in mdmtune.options.limits."""

from mdmtune.options.limits import *  # noqa: F403
