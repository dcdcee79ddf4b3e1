"""`Client`: a small Python client of a running mdmtune server (what `mdmtune remote` uses; import it in scripts).

    from mdmtune.service.client import Client
    with Client("http://gpu-box:8000", api_key="...") as remote:
        checkpoint = remote.upload_checkpoint("examples/sudoku/checkpoint")   # a folder is zipped on the way
        eval_set = remote.upload_eval_set("examples/sudoku/eval.jsonl")
        job = remote.submit(checkpoint_id=checkpoint["id"], eval_set_id=eval_set["id"], steps=8, metric="sudoku")
        job = remote.follow(job["id"], on_update=print)                        # until it ends
        best = remote.best(job["id"])

A 4xx answer is raised as InvalidInput naming the field the server named (the CLI exits 2 on it); a 5xx or an
unreachable server as MdmtuneError. Speaks only HTTP: imports neither the service nor a model.
"""

from __future__ import annotations

import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from mdmtune.errors import InvalidInput, MdmtuneError

FINAL_STATUSES = ("succeeded", "failed", "cancelled")
PAGE = 1000


class Client:
    """One server, one API key; a context manager (closes its connections)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 600.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise MdmtuneError(f"cannot reach {self.base_url}: {error}") from None
        if response.status_code >= 500:
            raise MdmtuneError(f"{method} {path}: server error {response.status_code}: {response.text[:300]}")
        if response.status_code >= 400:
            problem = _problem(response)
            raise InvalidInput(problem.get("field") or "request", problem.get("detail") or response.text[:300])
        return response.json()

    # Uploads.

    def upload_checkpoint(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Upload a checkpoint file, or a folder (zipped into a temporary file first, streamed from there)."""
        path = Path(path)
        if not path.exists():
            raise InvalidInput("checkpoint", f"{path} does not exist")
        if path.is_file():
            return self._upload("/v1/checkpoints", path, path.name)
        with tempfile.TemporaryDirectory(prefix="mdmtune-upload-") as folder:
            archive = zip_folder(path, Path(folder) / f"{path.name}.zip")
            return self._upload("/v1/checkpoints", archive, archive.name)

    def upload_eval_set(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        path = Path(path)
        if not path.is_file():
            raise InvalidInput("eval_set", f"{path} is not a file")
        return self._upload("/v1/eval-sets", path, path.name)

    def _upload(self, route: str, path: Path, name: str) -> dict[str, Any]:
        with open(path, "rb") as handle:
            return self._call("POST", route, files={"file": (name, handle, "application/octet-stream")})

    # Jobs.

    def submit(self, idempotency_key: str | None = None, **request: Any) -> dict[str, Any]:
        """POST /v1/tune with the request's fields (None values left out: the server's defaults apply)."""
        body = {k: v for k, v in request.items() if v is not None}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", "/v1/tune", json=body, headers=headers)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/tune/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/tune/{job_id}/cancel")

    def best(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/tune/{job_id}/best")

    def trials(self, job_id: str) -> list[dict[str, Any]]:
        """Every trial, all pages."""
        items: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = self._call("GET", f"/v1/tune/{job_id}/trials", params={"limit": PAGE, "offset": offset})
            items += page["items"]
            offset = page["next_offset"]
        return items

    def follow(
        self,
        job_id: str,
        on_update: Callable[[dict[str, Any]], None] | None = None,
        poll_s: float = 1.0,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Poll the job until it ends (or timeout_s passes); on_update sees every document that changed."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        last = None
        while True:
            job = self.job(job_id)
            p = job["progress"]
            state = (job["status"], job.get("phase"), p["trials_done"], p["nfe"], (job.get("best") or {}).get("value"))
            if state != last and on_update is not None:
                on_update(job)
            last = state
            if job["status"] in FINAL_STATUSES or (deadline is not None and time.monotonic() > deadline):
                return job
            time.sleep(poll_s)


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def zip_folder(folder: Path, target: Path) -> Path:
    """The folder's files under their relative paths (the folder's own name is not needed: the server looks inside
    any single top folder)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                archive.write(path, path.relative_to(folder).as_posix())
    return target


def draw_figures(best: dict[str, Any], trials: list[dict[str, Any]], out: Path) -> dict[str, str]:
    """Two figures from what the server returned: alpha(t) of the tuned schedule beside every baseline of the
    table (linear, cos2, sine), and the (a, b) plane with every trial, each baseline and the tuned point marked.
    Styled as every figure of a run (mdmtune.plots.style): a fixed colour per name, N, metric and records in the
    title, the legend outside the axes."""
    from mdmtune.plots.core import save

    out.mkdir(parents=True, exist_ok=True)
    schedule_path = save(schedule_figure(best), out / "schedule.png")
    trials_path = save(trials_figure(best, trials), out / "trials.png")
    return {"schedule": str(schedule_path), "trials": str(trials_path)}


def _baseline_names(best: dict[str, Any]) -> list[str]:
    from mdmtune.core import schedules

    return [name for name in (list(best.get("baselines") or {}) or ["linear", "cos2"]) if name in schedules.NAMES]


def _title(best: dict[str, Any], what: str, extra: str | None = None) -> str:
    """N, and the metric and confirm records of the stored result when the server sent it."""
    from mdmtune.plots import style

    result = best.get("result") or {}
    metric, records = result.get("metric"), result.get("confirm_records")
    return style.title(what, steps=best["steps"], metric=metric, records=records, extra=extra)


def schedule_figure(best: dict[str, Any]) -> Any:
    """alpha(t) of the tuned schedule and of each baseline (a matplotlib Figure)."""
    import numpy as np
    from matplotlib.figure import Figure

    from mdmtune.core import schedules
    from mdmtune.plots import style

    t = np.linspace(0.0, 1.0, 201)
    figure = Figure(figsize=(7.2, 4.2), layout="constrained")
    ax = figure.add_subplot()
    for name in _baseline_names(best):
        look = style.style(name)
        ax.plot(t, schedules.named(name).alpha(t), look["linestyle"], color=look["color"], label=name)
    tuned = f"tuned ({best['a']:.3g}, {best['b']:.3g})"
    ax.plot(t, schedules.beta_alpha(t, best["a"], best["b"]), color=style.TUNED_COLOUR, lw=2, label=tuned)
    ax.set_xlabel("t (0 = all masked)")
    ax.set_ylabel("alpha(t): share unmasked")
    ax.set_title(_title(best, "tuned schedule"), fontsize=9)
    style.legend_outside(ax)
    return figure


def trials_figure(best: dict[str, Any], trials: list[dict[str, Any]]) -> Any:
    """Every trial over (a, b) coloured by its search score, the baselines and the tuned point (a Figure)."""
    from matplotlib.figure import Figure

    from mdmtune.plots import style

    baselines = best.get("baselines") or {}
    done = [tr for tr in trials if tr["a"] is not None and isinstance(tr["value"], (int, float))]
    figure = Figure(figsize=(7.6, 4.6), layout="constrained")
    ax = figure.add_subplot()
    points = ax.scatter([tr["a"] for tr in done], [tr["b"] for tr in done], c=[tr["value"] for tr in done], s=22)
    for name in _baseline_names(best):
        base = baselines.get(name) or {}
        if base.get("a") is not None and base.get("b") is not None:
            look = style.style(name)
            ax.plot([base["a"]], [base["b"]], look["marker"], color=look["color"], mec="white", ms=10, label=name)
    tuned = f"tuned ({best['a']:.3g}, {best['b']:.3g})"
    ax.plot([best["a"]], [best["b"]], "*", color=style.TUNED_COLOUR, mec="black", markersize=16, label=tuned)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("a")
    ax.set_ylabel("b")
    ax.set_title(_title(best, "trials over (a, b)", f"{len(done)} trials"), fontsize=9)
    if done:
        figure.colorbar(points, ax=ax, label="search score", pad=0.02)
    style.legend_outside(ax)
    return figure
