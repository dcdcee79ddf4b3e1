"""Hostile programs: each one passes only if its attack works, so a sandbox that holds scores every one 0.

Two families, named for what they try:
- scoring tricks: a program that is wrong (it ends in a failing assert, or never reaches its end) and tries to be
  counted as a pass anyway (an early exit, a hook, a forged verdict);
- escapes: a program that tries to reach what it must not (the database's socket, the service's files, other
  processes, the network, the host's disk and IPC) and passes only if it did.
`Target` holds the test's own bait: a listening TCP port, an abstract Unix socket, a data file and directory.
"""

from __future__ import annotations

from dataclasses import dataclass

WRONG = "\nassert 1 + 1 == 3, 'the wrong answer'\n"

SCORING_TRICKS: dict[str, str] = {
    "sys_exit_0": "import sys\nsys.exit(0)" + WRONG,
    "exit_builtin": "exit()" + WRONG,
    "quit_builtin": "quit(0)" + WRONG,
    "raise_system_exit": "raise SystemExit(0)" + WRONG,
    "os_exit_0": "import os\nos._exit(0)" + WRONG,
    "atexit_os_exit": "import atexit, os\natexit.register(os._exit, 0)" + WRONG,
    "excepthook_swallows": "import sys\nsys.excepthook = lambda *args: None" + WRONG,
    "keyboard_interrupt": "raise KeyboardInterrupt" + WRONG,
    "kill_self": "import os\nos.kill(os.getpid(), 9)" + WRONG,
    "alarm_handler": "import signal\nsignal.signal(signal.SIGALRM, lambda *a: None)" + WRONG,
    "exec_new_python": "import os, sys\nos.execv(sys.executable, [sys.executable, '-c', 'pass'])" + WRONG,
    "forge_verdict_on_every_fd": (
        "import os\nfor fd in range(0, 1024):\n    for text in (b'passed\\n', b'x passed\\n'):\n"
        "        try:\n            os.write(fd, text)\n        except OSError:\n            pass\n" + WRONG
    ),
    "read_secret_from_frames": (
        "import sys, os\nframe = sys._getframe(1)\nframe.f_locals['report']('passed')\nos._exit(0)\n"
    ),
    "read_secret_from_traceback": (
        "import os\ntry:\n    1 / 0\nexcept ZeroDivisionError as error:\n    frame = error.__traceback__.tb_frame\n"
        "frame.f_back.f_locals['report']('passed')\nos._exit(0)\n"
    ),
    "read_secret_from_gc": (
        "import gc, os\nfor obj in gc.get_objects():\n    if callable(obj) and getattr(obj, '__name__', '') == "
        "'report':\n        obj('passed')\n        os._exit(0)\n" + WRONG
    ),
    "settrace": "import sys\nsys.settrace(lambda *a: None)" + WRONG,
    "ctypes_exit": "import ctypes\nctypes.CDLL(None)._exit(0)" + WRONG,
    "syntax_error": "def broken(:\n    pass\n",
    "infinite_loop": "while True:\n    pass\n",
    "sleep_forever": "import time\ntime.sleep(3600)\n",
    # bytes(n) takes zeroed pages from calloc without touching them: the address-space limit is what stops it, and
    # it spends no CPU on the way (a bytearray writes every page, ~1 s of CPU, which met the CPU limit first on CI)
    "memory_hog": "blocks = [bytes(1 << 28) for _ in range(64)]\n",
    "output_flood": "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
}


@dataclass(frozen=True)
class Target:
    """The bait a test sets out: what an escaped program would reach."""

    tcp_port: int
    abstract_name: str
    data_file: str
    data_dir: str


def escapes(target: Target) -> dict[str, str]:
    """Programs that pass only if they reach something outside the sandbox."""
    return {
        "postgres_unix_socket": (
            "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('/var/run/postgresql/.s.PGSQL.5432')\n"
        ),
        "postgres_tcp": "import socket\nsocket.create_connection(('127.0.0.1', 5432), timeout=2)\n",
        "loopback_tcp": f"import socket\nsocket.create_connection(('127.0.0.1', {target.tcp_port}), timeout=2)\n",
        "abstract_socket": (
            f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('\\0{target.abstract_name}')\n"
        ),
        "read_service_data": f"assert open({target.data_file!r}).read()\n",
        "list_service_dir": f"import os\nassert os.listdir({target.data_dir!r})\n",
        "write_service_dir": f"open({target.data_dir + '/planted'!r}, 'w').write('x')\n",
        "read_shadow": "assert open('/etc/shadow').read()\n",
        "read_passwd": "assert open('/etc/passwd').read()\n",
        "proc_cmdlines": (
            "import os\nseen = [open(f'/proc/{p}/cmdline').read() for p in os.listdir('/proc') if p.isdigit()]\n"
            "assert len(seen) > 2\n"
        ),
        "parent_environ": "import os\nassert 'MDMTUNE' in open(f'/proc/{os.getppid()}/environ').read()\n",
        "own_environment": "import os\nassert any('MDMTUNE' in k or 'SECRET' in v for k, v in os.environ.items())\n",
        "sysv_shared_memory": (
            "import ctypes\nlibc = ctypes.CDLL(None)\nassert libc.shmget(0, 1 << 30, 0o1000 | 0o600) >= 0\n"
        ),
        "posix_message_queue": "open('/dev/mqueue/mdmtune-probe', 'w')\n",
        "multiprocessing_shared_memory": (
            "from multiprocessing import shared_memory\nshared_memory.SharedMemory('mdmtune-probe', create=True, "
            "size=1 << 30).buf[:] = b'x' * (1 << 30)\n"
        ),
        "run_lock_file": "open('/run/lock/mdmtune-probe', 'w').write('x')\n",
        "fill_tmp": "open('/tmp/mdmtune-probe', 'wb').write(b'x' * (600 << 20))\n",
        "fill_dev_shm": "open('/dev/shm/mdmtune-probe', 'wb').write(b'x' * (600 << 20))\n",
        "fill_dev": "open('/dev/mdmtune-probe', 'wb').write(b'x')\n",
        "write_root": "open('/mdmtune-probe', 'w').write('x')\n",
        "write_runtime": "import os\nopen(os.__file__ + '.planted', 'w').write('x')\n",
        "fork": "import os\nif os.fork() == 0:\n    import time\n    time.sleep(60)\n",
        "thread": "import threading\nthreading.Thread(target=lambda: None).start()\n",
        # kill(-1) is judged by the bait's sibling process (run_attacks): the program itself always fails
        "kill_everyone": "import os\ntry:\n    os.kill(-1, 9)\nexcept OSError:\n    pass" + WRONG,
        "kill_parent": (
            "import os, time\nparent = os.getppid()\nos.kill(parent, 9)\ntime.sleep(1)\ntry:\n"
            "    os.kill(parent, 0)\nexcept ProcessLookupError:\n    pass\nelse:\n    raise AssertionError('alive')\n"
        ),
        "leave_session": "import os, time\nos.setsid()\ntime.sleep(3600)\n",
        "many_files": "files = [open('/sandbox/f%d' % i, 'w') for i in range(5000)]\n",
        "fifo_and_symlink_as_output": (
            "import os\nos.mkfifo('output.log')\nos.symlink('/etc/shadow', 'stdout.log')\nprint('root:')\n" + WRONG
        ),
        "ptrace_parent": "import ctypes, os\nassert ctypes.CDLL(None).ptrace(16, os.getppid(), 0, 0) == 0\n",
        "hostname": "import socket\nassert socket.gethostname() != 'sandbox'\n",
    }


def run_attacks(cpu_seconds: int = 2, wall_seconds: float = 12.0) -> dict[str, object]:
    """Set out the bait, run every hostile program through mdmtune.sandbox, and report what each reached.

    The caller stands for the worker; a sibling process of the same user stands for the API (kill(-1) would reach
    it without a pid namespace). Returns the verdicts, the protections, and what the bait saw. The wall limit is
    six times the CPU limit so that the endless loop meets its CPU limit first even on a loaded machine (on 2
    busy cores a 2 s CPU limit under a 4 s wall limit sometimes read "timed out").
    """
    import contextlib
    import os
    import socket
    import subprocess
    import sys
    import tempfile

    from mdmtune.sandbox import Limits, run_programs

    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    server = socket.create_server(("127.0.0.1", 0))
    abstract = socket.socket(socket.AF_UNIX)
    abstract_name = f"mdmtune-bait-{os.getpid()}"
    abstract.bind("\0" + abstract_name)
    abstract.listen()
    with tempfile.TemporaryDirectory(prefix="mdmtune-bait-") as data_dir:
        data_file = os.path.join(data_dir, "service.sqlite3")
        with open(data_file, "w") as handle:
            handle.write("tenant secrets")
        os.chmod(data_file, 0o644)
        os.chmod(data_dir, 0o755)
        target = Target(server.getsockname()[1], abstract_name, data_file, data_dir)
        programs = {**SCORING_TRICKS, **escapes(target)}
        results = run_programs(list(programs.values()), Limits(cpu_seconds=cpu_seconds, wall_seconds=wall_seconds))
        planted = sorted(os.listdir(data_dir))
    accepted = []
    for listener in (server, abstract):
        listener.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            accepted.append(str(listener.accept()[1]))
        listener.close()
    alive = sibling.poll() is None
    sibling.kill()
    sibling.wait()
    return {
        "verdicts": {name: result.verdict for name, result in zip(programs, results, strict=True)},
        "tails": {name: result.output_tail for name, result in zip(programs, results, strict=True)},
        "protections": results[0].protections,
        "sibling_alive": alive,
        "accepted": accepted,
        "data_dir_after": planted,
    }
