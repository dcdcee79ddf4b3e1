"""`mdmtune remote ...`: a running server, from the command line (thin over `mdmtune.service.client.Client`).

    mdmtune remote tune --server http://gpu-box:8000 --checkpoint examples/sudoku/checkpoint \\
        --eval-set examples/sudoku/eval.jsonl --metric sudoku --steps 8 --out runs/remote
uploads both (a folder is zipped on the way), submits, follows the job with a progress bar (phase, trials, NFEs,
best so far, eta), then prints the tuned schedule against the baselines and draws its figures. The steps are also
separate commands: upload-checkpoint, upload-eval-set, submit, follow, best, cancel. The server and key come from
--server/--api-key or MDMTUNE_SERVER/MDMTUNE_API_KEY.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from mdmtune.cli.model_options import Options, with_options
from mdmtune.cli.output import emit_json
from mdmtune.data import display
from mdmtune.service.client import Client, draw_figures

remote_app = typer.Typer(help="Use a running mdmtune server: upload, submit, follow, best.", no_args_is_help=True)

SERVER = typer.Option("http://127.0.0.1:8000", "--server", envvar="MDMTUNE_SERVER", help="The server's base URL.")
API_KEY = typer.Option(None, "--api-key", envvar="MDMTUNE_API_KEY", help="Bearer key (mdmtune keys create).")
JSON = typer.Option(False, "--json", help="One JSON document on stdout.")


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def status_line(job: dict[str, Any]) -> str:
    """phase, trials, NFEs, best so far, eta: what a person watching a job wants to see."""
    p = job["progress"]
    return f"{job.get('phase', job['status']):10s} trials {p['trials_done']}/{p['n_trials']}  {_details(job)}"


def _details(job: dict[str, Any]) -> str:
    """NFEs, best so far and eta: the part of the status line after the trial count."""
    p, best = job["progress"], job.get("best") or {}
    line = f"NFE {p['nfe']}"
    if best.get("value") is not None:
        line += f"  best {best['value']:.4g} at a={best['a']:.3g} b={best['b']:.3g}"
    if p.get("eta_seconds") is not None and job["status"] == "running":
        line += f"  eta {p['eta_seconds']:.0f}s"
    return line


@contextmanager
def progress_display():
    """A rich bar on a terminal, plain lines otherwise (a log file); yields the on_update callback of follow."""
    if not sys.stderr.isatty():
        yield lambda job: _say(status_line(job))
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task("queued", total=None, info="")

        def update(job: dict[str, Any]) -> None:
            p = job["progress"]
            info = _details(job)
            phase = job.get("phase", job["status"])
            bar.update(task, description=phase, completed=p["trials_done"], total=p["n_trials"], info=info)

        yield update


def _show_best(best: dict[str, Any], figures: dict[str, str]) -> None:
    quality = best.get("quality") or {}
    score = quality.get("score", best.get("value"))
    ci = quality.get("ci")
    a, b = display.parameter(best["a"]), display.parameter(best["b"])
    print(f"tuned schedule at {best['steps']} steps: Beta a={a}, b={b}")
    print(f"  {best['alpha_formula']}")
    print(f"  score {_number(score)}" + (f"  95% CI {display.interval(ci)}" if ci else ""))
    for name, base in (best.get("baselines") or {}).items():
        diff_ci = base.get("diff_ci")
        text = f"  baseline {name:7s} score {_number(base.get('score'))}"
        if base.get("diff") is not None:
            text += f"  tuned - {name} = {display.diff(base['diff'])}"
        if diff_ci:
            text += f" (95% CI {display.interval(diff_ci, signed=True)})"
        print(text)
    for row in best.get("plan") or []:
        print(f"  block {row['block']}: {row['counts']}")
    for kind, path in figures.items():
        print(f"  figure {kind}: {path}")


def _number(value: Any) -> str:
    """A score (3 decimals) or, when it is no number (an energy job's "inf"), the text the server sent."""
    return display.score(value) if isinstance(value, (int, float)) else str(value)


def _fetch_best(remote: Client, job_id: str, out: Path | None) -> tuple[dict[str, Any], dict[str, str]]:
    best = remote.best(job_id)
    figures = draw_figures(best, remote.trials(job_id), out) if out is not None else {}
    return best, figures


@remote_app.command("upload-checkpoint")
def upload_checkpoint(path: Path, server: str = SERVER, api_key: str = API_KEY, json_out: bool = JSON) -> None:
    """Upload a checkpoint folder (zipped on the way) or file; prints its id."""
    with Client(server, api_key) as remote:
        created = remote.upload_checkpoint(path)
    emit_json(created) if json_out else print(created["id"])


@remote_app.command("upload-eval-set")
def upload_eval_set(path: Path, server: str = SERVER, api_key: str = API_KEY, json_out: bool = JSON) -> None:
    """Upload a JSON Lines eval set; prints its id."""
    with Client(server, api_key) as remote:
        created = remote.upload_eval_set(path)
    emit_json(created) if json_out else print(created["id"])


def _request(options: dict[str, Any], extra: list[str]) -> dict[str, Any]:
    """The job request: the named options, plus any other request field as --set name=value (JSON value)."""
    import json

    from mdmtune.errors import InvalidInput

    request = {k: v for k, v in options.items() if v is not None}
    for item in extra:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidInput("set", f"expected name=value, got {item!r}")
        try:
            request[name] = json.loads(value)
        except ValueError:
            request[name] = value
    return request


STEPS = typer.Option(..., "--steps", help="N, the number of sampling steps the schedule is tuned for.")
SET = typer.Option([], "--set", help="Any other request field: name=value (JSON values).")


@remote_app.command("submit")
@with_options("remote", unset=True)
def submit(
    checkpoint_id: str = typer.Option(None, "--checkpoint-id"),
    eval_set_id: str = typer.Option(None, "--eval-set-id"),
    steps: int = STEPS,
    set_: list[str] = SET,
    server: str = SERVER,
    api_key: str = API_KEY,
    json_out: bool = JSON,
    *,
    options: Options,
) -> None:
    """Submit a tuning job of uploaded artifacts; prints the job id."""
    options = {"checkpoint_id": checkpoint_id, "eval_set_id": eval_set_id, "steps": steps, **options}
    with Client(server, api_key) as remote:
        job = remote.submit(**_request(options, set_))
    emit_json(job) if json_out else print(job["id"])


@remote_app.command("follow")
def follow(job_id: str, server: str = SERVER, api_key: str = API_KEY, json_out: bool = JSON) -> None:
    """Show a job's progress until it ends (exit 1 unless it succeeded)."""
    with Client(server, api_key) as remote, progress_display() as update:
        job = remote.follow(job_id, on_update=update)
    emit_json(job) if json_out else print(f"{job['status']}" + (f": {job['error']}" if job.get("error") else ""))
    if job["status"] != "succeeded":
        raise typer.Exit(1)


@remote_app.command("best")
def best_command(
    job_id: str,
    out: Path = typer.Option(None, "--out", help="Folder for the figures (none drawn without it)."),
    server: str = SERVER,
    api_key: str = API_KEY,
    json_out: bool = JSON,
) -> None:
    """The best schedule of a finished job, its baselines and plan; figures with --out."""
    with Client(server, api_key) as remote:
        best, figures = _fetch_best(remote, job_id, out)
    emit_json({"best": best, "figures": figures}) if json_out else _show_best(best, figures)


@remote_app.command("cancel")
def cancel(job_id: str, server: str = SERVER, api_key: str = API_KEY) -> None:
    """Cancel a job (a running one stops within one model batch)."""
    with Client(server, api_key) as remote:
        print(remote.cancel(job_id)["status"])


@remote_app.command("tune")
@with_options("remote", unset=True)
def tune(
    checkpoint: Path = typer.Option(None, "--checkpoint", help="Checkpoint folder or file (quality)."),
    eval_set: Path = typer.Option(None, "--eval-set", help="JSON Lines eval set (quality)."),
    steps: int = STEPS,
    set_: list[str] = SET,
    out: Path = typer.Option(None, "--out", help="Folder for the figures."),
    server: str = SERVER,
    api_key: str = API_KEY,
    json_out: bool = JSON,
    *,
    options: Options,
) -> None:
    """Upload, submit, follow and fetch the best schedule, in one command."""
    with Client(server, api_key) as remote:
        options = {"steps": steps, **options}
        if checkpoint is not None:
            options["checkpoint_id"] = remote.upload_checkpoint(checkpoint)["id"]
        if eval_set is not None:
            options["eval_set_id"] = remote.upload_eval_set(eval_set)["id"]
        job = remote.submit(**_request(options, set_))
        _say(f"job {job['id']} on {remote.base_url}")
        try:
            with progress_display() as update:
                job = remote.follow(job["id"], on_update=update)
        except KeyboardInterrupt:
            remote.cancel(job["id"])
            raise
        if job["status"] != "succeeded":
            _say(f"job {job['status']}: {job.get('error')}")
            raise typer.Exit(1)
        best, figures = _fetch_best(remote, job["id"], out)
    emit_json({"job_id": job["id"], "best": best, "figures": figures}) if json_out else _show_best(best, figures)


def register(app: typer.Typer) -> None:
    app.add_typer(remote_app, name="remote")
