"""Run a Python snippet of the tests as an unprivileged user, the way a non-root worker (the Dockerfile's) runs.

The tests run as root; the non-root deployment is a worker whose uid owns nothing but its own processes. `run_as`
creates the user if needed and starts `python -c CODE` under it through util-linux: `unshare --mount` gives the
snippet a private view in which the closed directories above the interpreter, the virtual environment and the
checkout (/root is 0700 on this machine, `mktemp -d` makes 0700 folders) are replaced by a searchable tmpfs with
just those paths bound back, then `setpriv` drops every privilege. What the snippet prints on stdout comes back.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

USER = "mdmtune-nonroot"
REPO = Path(__file__).resolve().parents[1]


def available() -> bool:
    """Root, with the tools to become someone else (useradd, unshare, setpriv)."""
    return os.getuid() == 0 and all(shutil.which(tool) for tool in ("useradd", "unshare", "setpriv"))


def user_ids() -> tuple[int, int]:
    """The unprivileged user's uid and gid (created on first use)."""
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
        entry = pwd.getpwnam(USER)
    return entry.pw_uid, entry.pw_gid


def _closed_ancestor(path: str) -> str | None:
    parts = path.strip("/").split("/")
    for depth in range(1, len(parts) + 1):
        ancestor = "/" + "/".join(parts[:depth])
        if not os.stat(ancestor).st_mode & 0o001:
            return ancestor
    return None


def _mount_script(paths: list[str], stage: str) -> str:
    """Shell lines that make each of `paths` reachable for others inside the private mount namespace."""
    lines = []
    closed = sorted({a for a in map(_closed_ancestor, paths) if a is not None})
    for index, ancestor in enumerate(closed):
        staged = f"{stage}/{index}"
        lines += [f"mkdir -p {staged}", f"mount --rbind {shlex.quote(ancestor)} {staged}"]
        lines.append(f"mount -t tmpfs -o mode=0755 tmpfs {shlex.quote(ancestor)}")
        for path in paths:
            if path == ancestor:
                lines += _entries_bound_back(staged, path)
            elif path.startswith(ancestor + "/"):
                inner = f"{staged}/{os.path.relpath(path, ancestor)}"
                lines += [f"mkdir -p {shlex.quote(path)}", f"mount --rbind {shlex.quote(inner)} {shlex.quote(path)}"]
    return "\n".join(lines)


def _entries_bound_back(staged: str, path: str) -> list[str]:
    """A closed directory that is itself one of the paths (a checkout cloned into `mktemp -d`, mode 0700): a bind
    mount would keep its mode, so each of its entries is bound back into the searchable tmpfs instead."""
    lines = []
    for name in sorted(os.listdir(path)):
        source, target = shlex.quote(f"{staged}/{name}"), shlex.quote(f"{path}/{name}")
        make = f"mkdir -p {target}" if os.path.isdir(f"{path}/{name}") else f"touch {target}"
        lines += [make, f"mount --rbind {source} {target}"]
    return lines


def run_as(code: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`python -c code` as the unprivileged user; stdout and stderr as text."""
    uid, gid = user_ids()
    paths = sorted({sys.prefix, os.path.realpath(sys.base_prefix), str(REPO)})
    with tempfile.TemporaryDirectory(prefix="mdmtune-unpriv-stage-") as stage:
        script = "set -e\n" + _mount_script(paths, stage) + "\n"
        script += f'exec setpriv --reuid={uid} --regid={gid} --clear-groups --inh-caps=-all -- "$@"'
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
        command += [sys.executable, "-c", code]
        base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent", "PYTHONPATH": str(REPO)}
        return subprocess.run(
            command, env={**base_env, **(env or {})}, capture_output=True, text=True, timeout=timeout, cwd="/"
        )
