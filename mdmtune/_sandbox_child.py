"""The sandbox's launcher: runs as its own short-lived process, confines itself, then becomes the program.

Started by mdmtune.sandbox as `python -I -S _sandbox_child.py REPORT_FD UID CPU AS FSIZE PYTHON PREFIX` in the program's
new temporary directory, with an empty environment and its own session (process group). It confines itself in the
order the kernel requires (namespaces and mounts while it still has the privilege, limits, then the unprivileged
user last), writes what it managed as one JSON line to REPORT_FD (closed on exec; a second line if the exec failed), and
`execve`s the program: nothing of mdmtune runs
inside the confined process. A separate file, not a `preexec_fn`, because a forked copy of a multi-threaded server
must not run Python code before exec. Imports only the standard library.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_NOSUID = 0x2
MS_NODEV = 0x4
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def _namespaces(libc: ctypes.CDLL, fsize: int) -> dict[str, bool]:
    """A fresh network namespace (no interface up: no network at all) and private temporary directories."""
    done = {"network_namespace": libc.unshare(CLONE_NEWNET) == 0, "private_tmp": False}
    work = os.getcwd()
    if libc.unshare(CLONE_NEWNS) == 0 and libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0:
        options = f"size={max(fsize, 1 << 20)},mode=1777".encode()
        mounted = [
            libc.mount(b"tmpfs", d.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options) == 0
            for d in PRIVATE_DIRS
            if os.path.isdir(d)
        ]
        done["private_tmp"] = bool(mounted) and all(mounted)
        # The program's own directory lives under the shared /tmp: bind it back at its path (the working directory
        # still reaches the original through /proc/self/cwd).
        os.makedirs(work, mode=0o700, exist_ok=True)
        if libc.mount(b"/proc/self/cwd", work.encode(), None, MS_BIND, None) != 0:
            done["private_tmp"] = False
        os.chdir(work)
    return done


MS_BIND = 0x1000
MS_RDONLY = 0x1
MS_REMOUNT = 0x20
STAGING = "/tmp/.mdmtune-python"


def _closed_ancestor(path: str) -> str | None:
    """The topmost directory above `path` that others may not search (e.g. /root, mode 0700), or None."""
    parts = path.strip("/").split("/")
    for depth in range(1, len(parts)):
        ancestor = "/" + "/".join(parts[:depth])
        if not os.stat(ancestor).st_mode & 0o001:
            return ancestor
    return None


def _reach_interpreter(libc: ctypes.CDLL, prefix: str) -> bool:
    """Inside the private mount namespace, make the interpreter's install reachable for the unprivileged user.

    The interpreter may live under a closed home (/root/.pyenv); its files are world-readable but the path is not.
    A tmpfs replaces the closed directory (hiding the rest of it from the program) and the install is bound back at
    its own path, read-only, so the interpreter finds its library and its standard modules where it expects them.
    """
    closed = _closed_ancestor(prefix)
    if closed is None:
        return True
    os.makedirs(STAGING, mode=0o755)
    if libc.mount(prefix.encode(), STAGING.encode(), None, MS_BIND | MS_REC, None) != 0:
        return False
    if libc.mount(b"tmpfs", closed.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=755,size=1m") != 0:
        return False
    os.makedirs(prefix, mode=0o755, exist_ok=True)
    bound = libc.mount(STAGING.encode(), prefix.encode(), None, MS_BIND | MS_REC, None) == 0
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
    return bound and libc.mount(b"none", prefix.encode(), None, flags, None) == 0


def _limits(cpu: int, address_space: int, fsize: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))


def _drop_privileges(uid: int) -> bool:
    if uid < 0 or os.getuid() != 0:
        return False
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    return os.getuid() == uid and os.geteuid() == uid


def main(argv: list[str]) -> None:
    report_fd, uid, cpu, address_space, fsize = (int(v) for v in argv[1:6])
    python, prefix = argv[6], argv[7]
    libc = ctypes.CDLL(None, use_errno=True)
    report: dict[str, object] = {"network_namespace": False, "private_tmp": False}
    if os.getuid() == 0:
        report.update(_namespaces(libc, fsize))
        if report["private_tmp"]:
            report["interpreter_reachable"] = _reach_interpreter(libc, prefix)
    _limits(cpu, address_space, fsize)
    report["cpu_limit"] = report["address_space_limit"] = report["file_size_limit"] = True
    report["unprivileged_user"] = _drop_privileges(uid)
    report["no_new_processes"] = report["unprivileged_user"] or os.getuid() != 0
    report["uid"] = os.getuid()
    os.write(report_fd, (json.dumps(report) + "\n").encode())
    os.set_inheritable(report_fd, False)  # closes on exec: the parent reads EOF once the program runs
    try:
        os.execve(python, [python, "-I", "program.py"], {})
    except OSError as error:
        os.write(report_fd, (json.dumps({"exec_failed": f"{python}: {error}"}) + "\n").encode())
        os._exit(127)


if __name__ == "__main__":
    main(sys.argv)
