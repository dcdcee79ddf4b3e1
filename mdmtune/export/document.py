"""A tuned schedule as something other software can run: `TunedSchedule`, read from a result and written as JSON.

Why a separate type: a tune result (result.json) answers "which schedule wins", with trials, intervals and groups;
a sampler elsewhere (LLaDA's generate.py, a diffusers scheduler, lm-eval) needs only the schedule, the step count
and the lengths it was tuned at, and must produce the same count plan mdmtune used. `TunedSchedule` is that: the
(a, b) of the Beta family (or a named schedule), N, gen_length and block_length, with the count plans computed by
mdmtune.core.plans (the same function the tuner and `mdmtune sample` call).

Readable sources (`load_tuned`): a tune result.json (`mdmtune tune --out`), a steps sweep's result (pick one N
with `steps`), a frontier result (pick one budget: the tuned Beta point there), or this module's own JSON document
(`to_document`). Pure numpy: no torch, no web.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from typing import Any

from mdmtune.core.plans import block_count_plans, check_blocks, count_plan
from mdmtune.core.schedules import NAMES, Schedule, beta, named
from mdmtune.errors import InvalidInput

DOCUMENT_FORMAT = "mdmtune.schedule"
DOCUMENT_VERSION = 1


@dataclass(frozen=True)
class TunedSchedule:
    """One schedule at N steps over gen_length generated tokens in blocks of block_length (LLaDA's layout).

    steps is N over the whole generation, as in `mdmtune tune --steps` and LLaDA's generate(steps=...): each of the
    gen_length / block_length blocks gets steps / n_blocks of them, and a count plan over its own masked tokens.
    """

    name: str
    a: float | None
    b: float | None
    steps: int
    gen_length: int | None = None
    block_length: int | None = None
    source: dict[str, Any] | None = None
    """Where it came from: the result's kind, objective, metric and score (informative only)."""

    def __post_init__(self) -> None:
        self.schedule()  # validates a, b or the name
        if self.gen_length is not None:
            check_blocks(self.gen_length, self.block_length or self.gen_length, self.steps)
        elif self.block_length is not None:
            raise InvalidInput("gen_length", "a block_length needs the gen_length it divides")

    def schedule(self) -> Schedule:
        """The mdmtune Schedule: the Beta point (a, b), or a named one (sine) outside the family."""
        if self.a is not None and self.b is not None:
            return beta(self.a, self.b)
        if self.name not in NAMES:
            raise InvalidInput("schedule", f"needs a and b, or a name in {', '.join(NAMES)}; got {self.name!r}")
        return named(self.name)

    @property
    def n_blocks(self) -> int:
        if self.gen_length is None:
            return 1
        return self.gen_length // (self.block_length or self.gen_length)

    @property
    def steps_per_block(self) -> int:
        """The `steps` LLaDA's generate() hands its get_num_transfer_tokens; a diffusers scheduler's steps per block."""
        return self.steps // self.n_blocks

    def counts(self, masked: int, steps: int | None = None) -> list[int]:
        """K_k for one block with `masked` masked tokens over `steps` steps (default: steps_per_block)."""
        steps = self.steps_per_block if steps is None else steps
        return [int(k) for k in count_plan(self.schedule().on_grid(steps), masked)]

    def block_plans(self) -> list[list[int]]:
        """The plan of every block of a fully masked generation (block_length masked tokens each)."""
        if self.gen_length is None:
            raise InvalidInput("gen_length", "the plan needs the generation length (give --gen-length)")
        block = self.block_length or self.gen_length
        plans = block_count_plans(self.schedule(), self.steps, [block] * self.n_blocks)
        return [[int(k) for k in plan] for plan in plans]

    def with_lengths(self, gen_length: int | None, block_length: int | None) -> TunedSchedule:
        """The same schedule and N at other lengths (given ones replace the result's)."""
        if gen_length is None and block_length is None:
            return self
        gen = gen_length if gen_length is not None else self.gen_length
        block = block_length if block_length is not None else (self.block_length if gen_length is None else None)
        return replace(self, gen_length=gen, block_length=block)

    def to_document(self) -> dict[str, Any]:
        """The self-describing JSON document of `mdmtune export --format json`."""
        document: dict[str, Any] = {
            "format": DOCUMENT_FORMAT,
            "version": DOCUMENT_VERSION,
            "schedule": {
                "name": self.name,
                "a": self.a,
                "b": self.b,
                "family": "beta" if self.a is not None else "named",
                "alpha": "sin^2(pi/2 * I_t(a, b)), I_t the regularized incomplete Beta function; t = 0 all masked",
            },
            "steps": self.steps,
            "gen_length": self.gen_length,
            "block_length": self.block_length or self.gen_length,
            "n_blocks": self.n_blocks,
            "steps_per_block": self.steps_per_block,
            "alpha_per_block": [float(x) for x in self.schedule().on_grid(self.steps_per_block)],
            "plan": None,
            "plan_rule": (
                "each block's count plan is the largest-remainder apportionment of its masked tokens over the "
                "increments of alpha on the grid k / steps_per_block, ties to the earlier step (mdmtune.core.plans)"
            ),
            "source": self.source,
        }
        if self.gen_length is not None:
            document["plan"] = {
                "masked_per_block": self.block_length or self.gen_length,
                "block_counts": self.block_plans(),
            }
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> TunedSchedule:
        """Read `to_document`'s output back (its plan is recomputed, and checked against the one written)."""
        if document.get("format") != DOCUMENT_FORMAT:
            raise InvalidInput("result", f"not an {DOCUMENT_FORMAT} document")
        if document.get("version") != DOCUMENT_VERSION:
            raise InvalidInput("result", f"document version {document.get('version')!r}; this mdmtune reads 1")
        spec = document.get("schedule") or {}
        gen = document.get("gen_length")
        block = document.get("block_length")
        tuned = cls(
            name=str(spec.get("name", "")),
            a=_number(spec.get("a"), "a"),
            b=_number(spec.get("b"), "b"),
            steps=_integer(document.get("steps"), "steps"),
            gen_length=None if gen is None else _integer(gen, "gen_length"),
            block_length=None if block is None or block == gen else _integer(block, "block_length"),
            source=document.get("source"),
        )
        written = (document.get("plan") or {}).get("block_counts")
        if written is not None and written != tuned.block_plans():
            raise InvalidInput("plan", "the document's plan is not the one its schedule gives (edited by hand?)")
        return tuned


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(field, f"must be a finite number, got {value!r}")
    return float(value)


def _integer(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(field, f"must be an integer >= 1, got {value!r}")
    return value


def _from_tune(data: dict[str, Any], kind: str) -> TunedSchedule:
    """A TuneResult's best schedule; the lengths come from its count plan (block_counts: one plan per block)."""
    best = data.get("best") or {}
    plan = data.get("plan") or {}
    gen_length = block_length = None
    if plan.get("block_counts"):
        blocks = plan["block_counts"]
        block_length = int(sum(blocks[0]))
        gen_length = block_length * len(blocks)
    elif plan.get("masked"):
        gen_length = int(plan["masked"])
    name = best.get("name") or ""
    return TunedSchedule(
        name=name,
        a=_number(best.get("a"), "a"),
        b=_number(best.get("b"), "b"),
        steps=_integer(data.get("steps"), "steps"),
        gen_length=gen_length,
        block_length=block_length if block_length != gen_length else None,
        source={
            "kind": kind,
            "objective": data.get("objective"),
            "metric": data.get("metric"),
            "score": best.get("score"),
            "ci": best.get("ci"),
        },
    )


def _from_sweep(data: dict[str, Any], steps: int | None) -> TunedSchedule:
    results = data.get("results") or []
    available = [r.get("steps") for r in results]
    if steps is None:
        if len(results) == 1:
            return _from_tune(results[0], "sweep")
        raise InvalidInput("steps", f"the result is a steps sweep over {available}; pick one with --steps")
    for result in results:
        if result.get("steps") == steps:
            return _from_tune(result, "sweep")
    raise InvalidInput("steps", f"the sweep has no N = {steps}; it has {available}")


def _from_frontier(data: dict[str, Any], budget: int | None) -> TunedSchedule:
    budgets = [b.get("budget") for b in data.get("frontier") or []]
    if budget is None:
        raise InvalidInput("budget", f"the result is a frontier over budgets {budgets}; pick one with --budget")
    for entry in data.get("frontier") or []:
        if entry.get("budget") != budget:
            continue
        for point in entry.get("points") or []:
            if point.get("name") == "tuned" and point.get("a") is not None:
                return TunedSchedule(
                    name=f"beta({point['a']:g},{point['b']:g})",
                    a=float(point["a"]),
                    b=float(point["b"]),
                    steps=_integer(point.get("steps"), "steps"),
                    source={
                        "kind": "frontier",
                        "budget": budget,
                        "metric": data.get("metric"),
                        "score": point["score"],
                    },
                )
        raise InvalidInput("budget", f"budget {budget} has no tuned Beta schedule in this frontier")
    raise InvalidInput("budget", f"the frontier has no budget {budget}; it has {budgets}")


def tuned_from_json(data: Any, steps: int | None = None, budget: int | None = None) -> TunedSchedule:
    """The schedule a result document describes (tune, sweep, frontier or an exported document)."""
    if not isinstance(data, dict):
        raise InvalidInput("result", "must be a JSON object (a tune, sweep or frontier result, or an export)")
    if data.get("format") == DOCUMENT_FORMAT:
        tuned = TunedSchedule.from_document(data)
    elif "frontier" in data and "budgets" in data:
        tuned = _from_frontier(data, budget)
    elif "results" in data and "points" in data:
        tuned = _from_sweep(data, steps)
    elif "best" in data and "steps" in data:
        tuned = _from_tune(data, "tune")
    else:
        raise InvalidInput("result", "not a tune, sweep or frontier result.json, nor an mdmtune export document")
    if steps is not None and tuned.steps != steps:
        raise InvalidInput("steps", f"the schedule was tuned at N = {tuned.steps}, not {steps}")
    return tuned


def load_tuned(
    path: str | os.PathLike[str],
    steps: int | None = None,
    budget: int | None = None,
    gen_length: int | None = None,
    block_length: int | None = None,
) -> TunedSchedule:
    """Read a result file (or a folder holding result.json); lengths given here replace the result's."""
    location = os.fspath(path)
    if os.path.isdir(location):
        location = os.path.join(location, "result.json")
    try:
        with open(location, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise InvalidInput("result", f"{location} is not JSON: {error.msg} (line {error.lineno})") from None
    return tuned_from_json(data, steps, budget).with_lengths(gen_length, block_length)
