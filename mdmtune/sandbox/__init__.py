"""The process sandbox for model-written code: `run_program(source)` and `run_programs(sources)`.

Every program is hostile: a model's completion and an eval set's `test` field are both code a key holder chose. A
program never runs in mdmtune's process. The strong sandbox is bubblewrap (`bwrap`, the tool Flatpak confines apps
with), chosen because it sets up every namespace the job needs in one audited setuid-free binary, both for a root
worker (plain privileges) and for an unprivileged one (through a user namespace), and dies with its parent. Inside it
the program sees:
- a read-only Python runtime (the system's /usr and /lib, and the interpreter's install) and nothing else of the
  host: no service data, no /var/run sockets, no /proc, no /etc, no home;
- its own empty working directory /sandbox (also /tmp), a tmpfs of `disk_bytes`, and a tmpfs /dev/shm of the same
  size; everything else read-only;
- its own pid, ipc, uts, network (no interface up) and mount namespaces, and, when the worker is not root, its own
  user namespace (as uid 65534, further user namespaces disabled); as root, a pool uid of its own (one per concurrent
  program, so the process limit binds and no two programs share a user);
- an empty environment, no stdin, and the limits of `Limits` (CPU time, address space, file size, open files, one
  process: no fork, no thread), a wall clock, and an output cap (its output comes back through a pipe: the parent
  never opens a path the program can touch).
The harness (mdmtune/sandbox/_harness.py) runs the program and writes the verdict: see its docstring. The verdict
is one of `VERDICTS` (an exception's name follows "failed: ", the limit's name "killed by limit: ").

When bwrap is missing or cannot start (a container without the capability or seccomp profile it needs), the weak
sandbox (own process, empty environment, temporary directory, the same limits and harness, and as root the pool
uid) runs the program only where the operator allowed it: `allow_weak=True` or MDMTUNE_ALLOW_WEAK_SANDBOX=1.
Otherwise `SandboxUnavailable` says why. `sandbox_report()` tells what is in force. Never imports FastAPI or
SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mdmtune.errors import InternalError, InvalidInput

_HARNESS = Path(__file__).with_name("_harness.py")
UID_POOL = 256
"""Distinct sandbox uids (as root): at most this many programs run at once on one machine."""
ALLOW_WEAK_ENV = "MDMTUNE_ALLOW_WEAK_SANDBOX"
VERDICTS = ("passed", "failed", "timed out", "syntax error", "exited early", "killed by limit")
SANDBOX_DIR = "/sandbox"
_HARNESS_INSIDE = "/.mdmtune-harness.py"
_RUNTIME_TOPS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin")


class SandboxUnavailable(InternalError):
    """The strong sandbox cannot start here and the weak one was not allowed."""


@dataclass(frozen=True)
class Limits:
    """What one program may use. `file_bytes` caps each file and the output; `disk_bytes` the working directory."""

    cpu_seconds: int = 10
    wall_seconds: float = 10.0
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    disk_bytes: int = 64 << 20
    open_files: int = 64
    output_tail_bytes: int = 4096
    uid_base: int | None = None

    def __post_init__(self) -> None:
        bounds = {
            "cpu_seconds": (1, 3600),
            "wall_seconds": (0.1, 3600),
            "memory_bytes": (64 << 20, 1 << 40),
            "file_bytes": (1 << 16, 1 << 34),
            "disk_bytes": (1 << 20, 1 << 34),
            "open_files": (16, 4096),
            "output_tail_bytes": (0, 1 << 20),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise InvalidInput(name, f"must be a number in [{low}, {high}], got {value!r}")


@dataclass(frozen=True)
class RunResult:
    """How one program ended: the verdict, the exit code (negative: killed by that signal), its output's tail."""

    verdict: str
    exit_code: int
    timed_out: bool
    output_tail: str
    protections: dict[str, bool] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """The program's last statement ran and returned normally, within the limits."""
        return self.verdict == "passed"


# the sandbox's mode --------------------------------------------------------------------------------------------


def weak_allowed(allow_weak: bool | None = None) -> bool:
    """The operator's choice: the argument when given, else MDMTUNE_ALLOW_WEAK_SANDBOX (1/true/yes)."""
    if allow_weak is not None:
        return allow_weak
    return os.environ.get(ALLOW_WEAK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@functools.lru_cache(maxsize=1)
def strong_sandbox_problem() -> str | None:
    """Why bubblewrap cannot confine a program on this machine (None: it can). A success is remembered for the
    process; a failure is forgotten by `require_sandbox`, so a passing fault (a probe that timed out on a loaded
    machine) does not refuse code jobs until a restart."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        result = _run(_secret(), "pass", Limits(cpu_seconds=5, wall_seconds=20), strong=True)
    except (OSError, InternalError) as error:
        return f"bubblewrap could not start: {error}"
    if not result.passed:
        return f"bubblewrap could not start: {result.verdict}: {result.output_tail.strip()[-300:]}"
    return None


def require_sandbox(allow_weak: bool | None = None) -> bool:
    """True for the strong sandbox, False for an allowed weak one; SandboxUnavailable when neither may run."""
    problem = strong_sandbox_problem()
    if problem is None:
        return True
    strong_sandbox_problem.cache_clear()
    if weak_allowed(allow_weak):
        return False
    raise SandboxUnavailable(
        f"pass_at_1 runs untrusted code and needs the bubblewrap sandbox, which cannot run here: {problem}. Install "
        f"bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and allow it user namespaces or, as root, "
        f"CAP_SYS_ADMIN (see docs/evalsets.md), or accept the weak sandbox with {ALLOW_WEAK_ENV}=1"
    )


def sandbox_report(allow_weak: bool | None = None) -> dict[str, object]:
    """What `mdmtune sandbox check` prints: the mode in force and each protection, measured by running a probe."""
    problem = strong_sandbox_problem()
    allowed = weak_allowed(allow_weak)
    mode = "strong" if problem is None else ("weak" if allowed else "refused")
    report: dict[str, object] = {
        "mode": mode,
        "bwrap": shutil.which("bwrap"),
        "strong_problem": problem,
        "weak_allowed": allowed,
        "running_as_root": os.getuid() == 0,
        "pass_at_1_jobs": "accepted" if mode != "refused" else "refused",
    }
    if mode != "refused":
        probe = run_program("pass", Limits(cpu_seconds=5, wall_seconds=20), allow_weak=allowed)
        report["probe_verdict"] = probe.verdict
        report["protections"] = probe.protections
    return report


# running programs ----------------------------------------------------------------------------------------------


def run_program(source: str, limits: Limits | None = None, *, allow_weak: bool | None = None) -> RunResult:
    """Run one Python program in the sandbox and report how it ended (see the module docstring)."""
    strong = require_sandbox(allow_weak)
    return _run(_secret(), source, limits or Limits(), strong=strong)


def run_programs(
    sources: Sequence[str],
    limits: Limits | None = None,
    workers: int | None = None,
    *,
    allow_weak: bool | None = None,
) -> list[RunResult]:
    """Run many programs, up to `workers` (default: the CPU count) at once; results in the order given."""
    if not sources:
        return []
    strong = require_sandbox(allow_weak)
    limits = limits or Limits()
    count = min(len(sources), workers or os.cpu_count() or 1, UID_POOL)
    if count == 1:
        return [_run(_secret(), source, limits, strong=strong) for source in sources]
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="mdmtune-sandbox") as pool:
        return list(pool.map(lambda source: _run(_secret(), source, limits, strong=strong), sources))


def _secret() -> bytes:
    return secrets.token_hex(16).encode()


def _run(secret: bytes, source: str, limits: Limits, *, strong: bool) -> RunResult:
    with _sandbox_uid(limits) as uid, contextlib.ExitStack() as cleanup:
        payload = os.memfd_create("mdmtune-program", 0)  # an fd, not a path: nothing on disk to swap or follow
        cleanup.callback(os.close, payload)
        os.write(payload, secret + b"\n" + source.encode("utf-8", "surrogatepass"))
        os.lseek(payload, 0, os.SEEK_SET)
        verdict_read, verdict_write = os.pipe()
        cleanup.callback(os.close, verdict_read)
        info_read, info_write = os.pipe()  # bwrap reports the pid of the namespace's init here
        cleanup.callback(os.close, info_read)
        harness_args = [str(payload), str(verdict_write), str(uid), str(limits.cpu_seconds)]
        harness_args += [str(limits.memory_bytes), str(limits.file_bytes), str(limits.open_files)]
        python = _interpreter()
        if strong:
            argv = [*_bwrap_argv(limits, info_write), python, "-I", "-S", _HARNESS_INSIDE, *harness_args]
            cwd = "/"
        else:
            cwd = tempfile.mkdtemp(prefix="mdmtune-sandbox-")
            cleanup.callback(shutil.rmtree, cwd, ignore_errors=True)
            if uid >= 0:
                os.chown(cwd, uid, uid)
            argv = [python, "-I", "-S", str(_HARNESS), *harness_args]
        try:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env={},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(payload, verdict_write, info_write),
                start_new_session=True,
            )
        finally:
            os.close(verdict_write)
            os.close(info_write)
        outcome = _watch(process, limits, info_read)
        if uid >= 0:
            _kill_uid(uid)
        lines = _read_verdicts(verdict_read)
    verdict = _verdict(secret, lines, outcome)
    return RunResult(verdict, outcome.exit_code, outcome.timed_out, outcome.tail, _protections(strong, uid))


@dataclass(frozen=True)
class _Outcome:
    exit_code: int
    timed_out: bool
    output_over: bool
    tail: str


def _watch(process: subprocess.Popen[bytes], limits: Limits, info: int) -> _Outcome:
    """Drain the output (keeping its tail) until the program ends, overruns the wall clock or the output cap; then
    end everything it started before returning."""
    assert process.stdout is not None
    deadline = time.monotonic() + limits.wall_seconds
    tail, total, timed_out, over = b"", 0, False, False
    stream = process.stdout.fileno()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([stream], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(stream, 1 << 16)
        if not chunk:  # the output closed: the program may still run, up to the wall clock
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(deadline - time.monotonic(), 0))
            timed_out = process.poll() is None
            break
        total += len(chunk)
        tail = (tail + chunk)[-max(limits.output_tail_bytes, 1) :]
        if total > limits.file_bytes:
            over = True
            break
    _end(process, info)
    exit_code = process.wait()
    process.stdout.close()
    text = tail[-limits.output_tail_bytes :].decode("utf-8", "replace") if limits.output_tail_bytes else ""
    return _Outcome(exit_code, timed_out, over, text)


def _end(process: subprocess.Popen[bytes], info: int) -> None:
    """SIGKILL the namespace's init while bwrap still waits for it (so its pid cannot be anyone else's): the kernel
    then kills every process of the pid namespace, and bwrap reaps it and exits. Then bwrap's process group, in case."""
    init = _init_pid(info) if process.poll() is None else None
    if init is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(init, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)  # bwrap reaps its init and exits: no zombie left for the host's init
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _init_pid(info: int) -> int | None:
    """bwrap's --info-fd report: {"child-pid": N, ...} (None in the weak mode, or when bwrap did not get that far)."""
    os.set_blocking(info, False)
    with contextlib.suppress(BlockingIOError, OSError, ValueError):
        report = json.loads(os.read(info, 1 << 16) or b"{}")
        pid = report.get("child-pid")
        return pid if isinstance(pid, int) and pid > 1 else None
    return None


def _read_verdicts(fd: int) -> list[bytes]:
    """What reached the verdict pipe (at most 64 KiB: a pipe holds no more while nobody reads it)."""
    os.set_blocking(fd, False)
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 1 << 16):
            data += chunk
    return data.splitlines()


def _verdict(secret: bytes, lines: list[bytes], outcome: _Outcome) -> str:
    """The harness's verdict (the line carrying the secret), else what the exit status says. A program stopped for
    its output fails for that, whatever it wrote as it was being stopped (a broken pipe, say)."""
    for line in lines:
        head, _space, verdict = line.partition(b" ")
        if secrets.compare_digest(head, secret):
            text = verdict.decode("ascii", "replace")
            return "killed by limit: output" if outcome.output_over and text != "passed" else text
    if outcome.timed_out:
        return "timed out"
    if outcome.output_over:
        return "killed by limit: output"
    if outcome.exit_code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):  # bwrap exits 128 + the program's signal
        return "killed by limit: cpu"
    return "exited early"


# bubblewrap ----------------------------------------------------------------------------------------------------


def _bwrap_argv(limits: Limits, info_fd: int) -> list[str]:
    """The bubblewrap command line: namespaces, the read-only runtime, the private tmpfs directories."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
    argv = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    argv += ["--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox", "--info-fd", str(info_fd)]
    if os.getuid() == 0:  # the harness switches to the pool uid, which needs these two (dropped with the switch)
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534"]
    for top in _RUNTIME_TOPS:
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    prefix = os.path.realpath(sys.base_prefix)
    if not any(prefix == top or prefix.startswith(top + "/") for top in _RUNTIME_TOPS):
        parts = prefix.strip("/").split("/")
        for depth in range(1, len(parts)):  # searchable parents, whatever the host's (/root is 0700)
            argv += ["--perms", "0755", "--dir", "/" + "/".join(parts[:depth])]
        argv += ["--ro-bind", prefix, prefix]
    argv += ["--ro-bind", str(_HARNESS), _HARNESS_INSIDE]
    size = str(limits.disk_bytes)
    argv += ["--dev", "/dev", "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]
    argv += ["--perms", "1777", "--size", size, "--tmpfs", SANDBOX_DIR, "--symlink", SANDBOX_DIR, "/tmp"]
    argv += ["--symlink", SANDBOX_DIR, "/var/tmp", "--remount-ro", "/", "--chdir", SANDBOX_DIR, "--"]
    return argv


def _interpreter() -> str:
    """The base Python (not a virtual environment's link, which the sandbox does not show)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _protections(strong: bool, uid: int) -> dict[str, bool]:
    """What was in force for a run (the harness refuses to run the program when a limit could not be set)."""
    limits = ("cpu_limit", "memory_limit", "file_size_limit", "open_files_limit", "no_new_processes", "wall_limit")
    found = dict.fromkeys(("empty_environment", "output_cap", "verdict_guard", *limits), True)
    namespaces = ("mount_namespace", "pid_namespace", "ipc_namespace", "network_namespace", "uts_namespace")
    found.update(dict.fromkeys((*namespaces, "read_only_runtime", "private_disk", "dies_with_parent"), strong))
    found["user_namespace"] = strong and uid < 0
    found["unprivileged_user"] = uid >= 0 or os.getuid() != 0
    return found


# the uid pool (root) -------------------------------------------------------------------------------------------


def _uid_base() -> int:
    """A uid range no account uses: high up when the uid map is the whole range (the host), else below nobody."""
    try:
        first = Path("/proc/self/uid_map").read_text().split()
        if int(first[2]) >= 1 << 31:
            return 1_600_000_000
    except (OSError, IndexError, ValueError):
        pass
    return 60_000 - UID_POOL


@contextlib.contextmanager
def _sandbox_uid(limits: Limits) -> Iterator[int]:
    """A uid of the pool that no other program of this machine holds now (-1 when not root: nothing to switch to)."""
    if os.getuid() != 0:
        yield -1
        return
    base = limits.uid_base if limits.uid_base is not None else _uid_base()
    lock_dir = _lock_dir()
    for uid in range(base, base + UID_POOL):
        handle = os.open(lock_dir / str(uid), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            continue
        try:
            _kill_uid(uid)  # a leftover of a crashed run would make the process limit refuse this one
            yield uid
        finally:
            os.close(handle)
        return
    raise InternalError(f"all {UID_POOL} sandbox uids from {base} are in use")


def _lock_dir() -> Path:
    """The folder of the uid locks: made by root, 0700, a real folder (a link planted there by anyone is refused)."""
    folder = Path(tempfile.gettempdir()) / "mdmtune-sandbox-uids"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o077:
        raise InternalError(f"{folder} is not a folder that only root can write: remove it")
    return folder


def _kill_uid(uid: int) -> None:
    """SIGKILL every process running under `uid` (one that escaped its process group)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if entry.stat().st_uid == uid:
                os.kill(int(entry.name), signal.SIGKILL)
