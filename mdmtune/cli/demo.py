"""`mdmtune demo`: the newcomer's main job, end to end over HTTP on the embedded default.

Starts the embedded server (SQLite + artifact folder in a temp data dir, one in-process worker) on a free loopback
port, uploads the shipped example checkpoint and eval set exactly as a user would (multipart POSTs), submits a
quality job at 8 steps, shows its progress, prints the tuned schedule against the baselines with the figure paths,
and stops the server. Everything it talks to is the real service; nothing here tunes by itself.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer

from mdmtune.cli.output import emit_json
from mdmtune.data import display
from mdmtune.errors import InternalError, InvalidInput
from mdmtune.service.client import Client, draw_figures
from mdmtune.service.settings import Settings

DEMO_STEPS = 8
DEMO_TRIALS = 24
"""Sized for a 2-core CPU: on the shipped Sudoku example the whole demo took 29 s there (see README)."""
DEMO_SUBSET = 64
POLL_S = 1.0


@dataclass(frozen=True)
class Example:
    """How to tune one shipped example: its metric, and for completion sets the tokens to generate."""

    metric: str
    gen_length: int | None = None


EXAMPLES = {"sudoku": Example(metric="sudoku"), "arithmetic": Example(metric="exact_match", gen_length=24)}
DEFAULT_EXAMPLE = "sudoku"


def example_settings(name: str) -> Example:
    if name not in EXAMPLES:
        raise InvalidInput("example", f"unknown example {name!r}; one of {', '.join(EXAMPLES)}")
    return EXAMPLES[name]


def examples_dir(name: str = DEFAULT_EXAMPLE) -> Path:
    """A shipped example: beside the package in a clone (editable install), else in the current folder."""
    example_settings(name)
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (base / "examples" / name).is_dir():
            return base / "examples" / name
    raise InvalidInput("example", f"examples/{name} not found; run `mdmtune demo` from the mdmtune clone")


def example_files(folder: Path) -> tuple[Path, Path]:
    """(checkpoint folder or file, eval set) of the example."""
    eval_set = folder / "eval.jsonl"
    candidates = sorted(
        p for p in folder.iterdir() if (p.is_dir() and (p / "config.json").exists()) or p.suffix == ".zip"
    )
    if not eval_set.exists() or not candidates:
        raise InvalidInput("examples", f"{folder} needs eval.jsonl and a checkpoint folder (or .zip)")
    return candidates[0], eval_set


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _show(job: dict[str, Any]) -> None:
    _say(_progress_line(job["status"], job["progress"], job.get("best") or {}, job.get("phase")))


def _progress_line(status: str, p: dict[str, Any], best: dict[str, Any], phase: str | None = None) -> str:
    line = f"  {phase or status:10s} trials {p['trials_done']:3d}/{p['n_trials']}  NFE {p['nfe']}"
    if best.get("value") is not None:
        line += f"  best so far {best['value']:.3f} at a={best['a']:.3f} b={best['b']:.3f}"
    if p.get("elapsed_seconds") is not None:
        line += f"  elapsed {p['elapsed_seconds']:.0f}s"
    if p.get("eta_seconds") is not None and status == "running":
        line += f"  eta {p['eta_seconds']:.0f}s"
    return line


def report(best: dict[str, Any], figures: dict[str, str]) -> None:
    """The tuned schedule against the baselines, as a newcomer reads it."""
    quality = best.get("quality") or {}
    ci = quality.get("ci")
    ci_text = f" (95% CI {display.interval(ci)})" if ci else ""
    a, b = display.parameter(best["a"]), display.parameter(best["b"])
    print(f"Tuned schedule at {best['steps']} steps: Beta a={a}, b={b}")
    print(f"  {best['alpha_formula']}")
    score = quality.get("score", best.get("value"))
    score_text = display.score(score) if isinstance(score, (int, float)) else str(score)
    print(f"  quality {score_text}{ci_text}")
    for name, base in (best.get("baselines") or {}).items():
        diff_ci = base.get("diff_ci")
        diff = f"  tuned - {name} = {display.diff(base['diff'])}" if base.get("diff") is not None else ""
        diff += f" (95% CI {display.interval(diff_ci, signed=True)})" if diff_ci else ""
        print(f"  baseline {name:7s} quality {display.score(base['score'])}{diff}")
    plan = best.get("plan") or []
    if plan:
        print(f"  count plan (tokens unmasked per step): {[row['counts'] for row in plan]}")
    for kind, path in figures.items():
        print(f"  figure {kind}: {path}")


def run_demo(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Keep the demo's data here (default: a temp folder)."
    ),
    trials: int | None = typer.Option(
        None, "--trials", min=2, help="Trials of the quality search (default: sized for CPU)."
    ),
    example: str = typer.Option(DEFAULT_EXAMPLE, "--example", help="Shipped example: sudoku | arithmetic."),
    example_dir: Path | None = typer.Option(
        None, "--example-dir", help="Another folder like examples/sudoku: eval.jsonl and a checkpoint (or .zip)."
    ),
    metric: str | None = typer.Option(None, "--metric", help="Metric for the eval set (default: the example's)."),
    gen_length: int | None = typer.Option(
        None, "--gen-length", min=1, help="Completion eval sets: tokens to generate (default: the example's)."
    ),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Start the embedded server, upload the example checkpoint and eval set, tune a schedule at 8 steps, report.

    The server is stopped whatever happens; metric and gen_length default to the example's own."""
    import optuna

    from mdmtune.cli.embedded import EmbeddedServer

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    defaults = example_settings(example)
    checkpoint, eval_set = example_files(example_dir if example_dir is not None else examples_dir(example))
    metric = metric or defaults.metric
    gen_length = gen_length if gen_length is not None else defaults.gen_length
    folder = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="mdmtune-demo-"))
    settings = Settings(
        data_dir=folder,
        database_url=f"sqlite:///{(folder / 'mdmtune.db').resolve()}",
        artifact_dir=folder / "artifacts",
        host="127.0.0.1",
        port=0,
        workers=1,
        require_api_key=False,
    )
    _say(f"mdmtune demo: data in {folder}")
    server = EmbeddedServer(settings).start()
    job_id = None
    try:
        with Client(server.url, timeout=120) as remote:
            _say(f"server on {server.url}; uploading {checkpoint.name} and {eval_set.name}")
            ckpt, evals = remote.upload_checkpoint(checkpoint), remote.upload_eval_set(eval_set)
            request = {
                "checkpoint_id": ckpt["id"],
                "eval_set_id": evals["id"],
                "steps": DEMO_STEPS,
                "n_trials": trials or DEMO_TRIALS,
                "subset_size": DEMO_SUBSET,
                "metric": metric,
                "seed": 0,
            }
            if gen_length is not None:  # completion eval sets: tokens generated after the prompt
                request["gen_length"] = gen_length
            job = remote.submit(**request)
            job_id = job["id"]
            _say(f"job {job_id}: tuning the mask schedule at {DEMO_STEPS} steps ({request['n_trials']} trials)")
            job = remote.follow(job_id, on_update=_show, poll_s=POLL_S)
            if job["status"] != "succeeded":
                raise InternalError(f"the demo job {job['status']}: {job.get('error')}")
            best = remote.best(job_id)
            figures = draw_figures(best, remote.trials(job_id), folder / "figures")
        if json_out:
            emit_json({"job_id": job_id, "best": best, "figures": figures, "data_dir": str(folder)})
        else:
            report(best, figures)
    except KeyboardInterrupt:
        if job_id is not None:
            httpx.post(f"{server.url}/v1/tune/{job_id}/cancel", timeout=10)
        raise
    finally:
        server.stop()
