"""The process sandbox for model-written code: `run_program(source)` and `run_programs(sources)`.

Model output is untrusted code, so it never runs in mdmtune's own process. Each program gets:
- its own process, started through a small launcher (mdmtune/_sandbox_child.py) that confines itself and then
  execs `python -I program.py`, in its own session (process group);
- a new, empty temporary directory as its working directory, deleted afterwards;
- an empty environment (no database URL, no keys, no tokens) and no stdin;
- CPU-time (RLIMIT_CPU), address-space (RLIMIT_AS), file-size (RLIMIT_FSIZE, which also bounds its output, written
  to a file) and process-count (RLIMIT_NPROC = 1: no fork, no thread) limits, and a wall-clock limit;
- when mdmtune runs as root (containers): a fresh network namespace with no interface up (no network at all),
  private empty /tmp, /var/tmp and /dev/shm (tmpfs, gone with the program), and an unprivileged uid of its own
  (one per concurrent program, taken from a pool under a file lock, so RLIMIT_NPROC binds and no two programs share a
  user); the program then cannot signal mdmtune, read its files (mode 0600 and up) or write outside world-writable
  places, which are private to it;
- at the end its whole process group is killed, then any process still running under its uid, and files it left
  under the shared temporary directories are removed.
`RunResult.protections` says which of these were in force for that run (a protection the kernel refused is
reported false, never claimed). Programs run in parallel up to the CPU count. Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mdmtune.errors import InternalError, InvalidInput

_LAUNCHER = Path(__file__).with_name("_sandbox_child.py")
UID_POOL = 256
"""Distinct sandbox uids (as root): at most this many programs run at once on one machine."""
SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")


@dataclass(frozen=True)
class Limits:
    """What one program may use. `uid_base`: first uid of the pool (None: chosen from the uid map)."""

    cpu_seconds: int = 10
    wall_seconds: float = 10.0
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    output_tail_bytes: int = 4096
    uid_base: int | None = None

    def __post_init__(self) -> None:
        bounds = {
            "cpu_seconds": (1, 3600),
            "wall_seconds": (0.1, 3600),
            "memory_bytes": (64 << 20, 1 << 40),
            "file_bytes": (1 << 16, 1 << 34),
            "output_tail_bytes": (0, 1 << 20),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise InvalidInput(name, f"must be a number in [{low}, {high}], got {value!r}")


@dataclass(frozen=True)
class RunResult:
    """How one program ended: exit code (negative: killed by that signal), whether the wall clock ran out."""

    exit_code: int
    timed_out: bool
    output_tail: str
    protections: dict[str, bool] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """The program ran to the end and exited 0."""
        return self.exit_code == 0 and not self.timed_out


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
    lock_dir = Path(tempfile.gettempdir()) / "mdmtune-sandbox-uids"
    lock_dir.mkdir(mode=0o700, exist_ok=True)
    for uid in range(base, base + UID_POOL):
        handle = open(lock_dir / str(uid), "a")  # noqa: SIM115 (held open while the uid is in use)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            _kill_uid(uid)  # a leftover of a crashed run would make RLIMIT_NPROC refuse this one
            yield uid
        finally:
            handle.close()
        return
    raise InternalError(f"all {UID_POOL} sandbox uids from {base} are in use")


def _kill_uid(uid: int) -> None:
    """SIGKILL every process running under `uid` (a program that left its process group)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if entry.stat().st_uid == uid:
                os.kill(int(entry.name), signal.SIGKILL)


def _remove_owned(uid: int) -> None:
    """Delete what `uid` left at the top of the shared temporary directories (where /tmp was not private)."""
    for top in SHARED_TMP:
        with contextlib.suppress(OSError):
            for entry in Path(top).iterdir():
                with contextlib.suppress(OSError):
                    if entry.lstat().st_uid == uid:
                        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def _tail(path: Path, size: int) -> str:
    with contextlib.suppress(OSError), path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read(size).decode("utf-8", "replace")
    return ""


def run_program(source: str, limits: Limits | None = None) -> RunResult:
    """Run one Python program under the sandbox and report how it ended; raise InternalError if it could not start."""
    limits = limits or Limits()
    with _sandbox_uid(limits) as uid:
        work = Path(tempfile.mkdtemp(prefix="mdmtune-sandbox-"))
        try:
            return _run_in(work, source, uid, limits)
        finally:
            if uid >= 0:
                _kill_uid(uid)
                _remove_owned(uid)
            shutil.rmtree(work, ignore_errors=True)


def _run_in(work: Path, source: str, uid: int, limits: Limits) -> RunResult:
    program = work / "program.py"
    program.write_text(source, encoding="utf-8")
    output = work / "output.log"
    output.touch()
    if uid >= 0:
        for path in (work, program, output):
            os.chown(path, uid, uid)
        program.chmod(0o400)
    read_end, write_end = os.pipe()
    args = [sys.executable, "-I", "-S", str(_LAUNCHER), str(write_end), str(uid)]
    args += [str(limits.cpu_seconds), str(limits.memory_bytes), str(limits.file_bytes), _interpreter()]
    args.append(os.path.realpath(sys.base_prefix))
    with output.open("ab") as sink:
        process = subprocess.Popen(
            args,
            cwd=work,
            env={},
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as report_pipe:
        report = report_pipe.read()
    timed_out = False
    try:
        process.wait(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    exit_code = process.wait()
    tail = _tail(output, limits.output_tail_bytes)
    lines = [json.loads(line) for line in report.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines or "exec_failed" in lines[-1]:
        reason = lines[-1]["exec_failed"] if lines else tail[-500:]
        raise InternalError(f"the sandbox could not start the program (exit {exit_code}): {reason}")
    return RunResult(exit_code, timed_out, tail, _protections(lines[0], uid))


def _interpreter() -> str:
    """The base Python (not a virtual environment's link, which an unprivileged user may not be allowed to reach)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _protections(report: dict[str, object], uid: int) -> dict[str, bool]:
    found = {name: bool(value) for name, value in report.items() if name not in ("uid", "interpreter_reachable")}
    found.update(own_temp_dir=True, empty_environment=True, wall_limit=True, process_group_killed=True)
    found["unprivileged_user"] = found.get("unprivileged_user", False) and report.get("uid") == uid
    return found


def run_programs(sources: Sequence[str], limits: Limits | None = None, workers: int | None = None) -> list[RunResult]:
    """Run many programs, up to `workers` (default: the CPU count) at once; results in the order given."""
    if not sources:
        return []
    count = min(len(sources), workers or os.cpu_count() or 1, UID_POOL)
    if count == 1:
        return [run_program(source, limits) for source in sources]
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="mdmtune-sandbox") as pool:
        return list(pool.map(lambda source: run_program(source, limits), sources))
