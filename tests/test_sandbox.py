"""The sandbox against hostile programs: each one fails, and nothing of it is left running or written."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from mdmtune.errors import InvalidInput
from mdmtune.sandbox import UID_POOL, Limits, RunResult, _uid_base, run_program, run_programs

AS_ROOT = os.getuid() == 0
FAST = Limits(cpu_seconds=3, wall_seconds=5)


def _processes_of(uids: range) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid in uids:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _sandbox_uids() -> range:
    base = _uid_base()
    return range(base, base + UID_POOL)


def _sandbox_leftovers() -> list[str]:
    """Entries of the shared temporary directories that a sandboxed run made: its work folder or its uid's files."""
    uids = _sandbox_uids()
    found = []
    for top in ("/tmp", "/var/tmp", "/dev/shm"):
        for entry in Path(top).iterdir() if os.path.isdir(top) else ():
            try:
                if (entry.name.startswith("mdmtune-sandbox-") and entry.name != "mdmtune-sandbox-uids") or (
                    AS_ROOT and entry.lstat().st_uid in uids
                ):
                    found.append(str(entry))
            except OSError:
                continue
    return found


@pytest.fixture()
def leaves_nothing():
    """After the test: no process under a sandbox uid, nothing of a sandboxed run in the shared temporary dirs.

    (Other programs share /tmp with the tests, so the check looks for what a sandbox run would leave, by name and by
    owner, rather than for any change at all.)
    """
    yield
    if AS_ROOT:
        assert _processes_of(_sandbox_uids()) == []
    assert _sandbox_leftovers() == []


def test_a_correct_program_passes_and_reports_its_protections(leaves_nothing):
    result = run_program("print(sum(range(10)))")
    assert result.passed and result.output_tail == "45\n"
    assert result.protections["empty_environment"] and result.protections["cpu_limit"]
    if AS_ROOT:  # this machine runs the tests as root, where every protection is available
        expected = ("network_namespace", "private_tmp", "unprivileged_user", "no_new_processes")
        assert all(result.protections[name] for name in expected), result.protections


def test_a_failing_assert_fails():
    assert not run_program("assert 1 + 1 == 3").passed


def test_an_infinite_loop_is_stopped_by_the_cpu_limit(leaves_nothing):
    result = run_program("while True:\n    pass\n", Limits(cpu_seconds=1, wall_seconds=10))
    assert not result.passed


def test_a_sleeping_program_is_stopped_by_the_wall_clock(leaves_nothing):
    result = run_program("import time\ntime.sleep(60)\n", Limits(cpu_seconds=5, wall_seconds=1))
    assert result.timed_out and not result.passed


def test_a_fork_bomb_cannot_fork(leaves_nothing):
    source = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = run_program(source, Limits(cpu_seconds=2, wall_seconds=4))
    assert not result.passed


def test_a_fork_is_refused_outright():
    result = run_program("import os\ntry:\n    os.fork()\nexcept BlockingIOError:\n    raise SystemExit(3)\n")
    assert result.exit_code == 3


def test_a_memory_hog_hits_the_address_space_limit(leaves_nothing):
    result = run_program("blocks = [bytearray(1 << 28) for _ in range(64)]\n", Limits(memory_bytes=512 << 20))
    assert not result.passed and "MemoryError" in result.output_tail


def test_a_write_outside_its_directory_leaves_no_file(leaves_nothing, tmp_path):
    name = f"mdmtune-leak-{uuid.uuid4().hex}"
    targets = [Path(tempfile.gettempdir()) / name, Path("/dev/shm") / name, tmp_path / name, Path.cwd() / name]
    lines = [f"open({str(t)!r}, 'w').write('x')" for t in targets]
    source = "".join(f"try:\n    {line}\nexcept OSError:\n    pass\n" for line in lines) + "raise SystemExit(1)\n"
    result = run_program(source)
    assert not result.passed
    assert not any(t.exists() for t in targets)


def test_its_own_directory_is_new_empty_and_writable():
    source = "import os\nassert sorted(os.listdir('.')) == ['output.log', 'program.py']\nopen('x', 'w').write('1')\n"
    assert run_program(source).passed


def test_the_environment_is_empty(monkeypatch):
    monkeypatch.setenv("MDMTUNE_DATABASE_URL", "postgresql://secret@db/prod")
    # Python itself sets LC_CTYPE (PEP 538 locale coercion); nothing else may be there.
    source = "import os\nassert 'MDMTUNE_DATABASE_URL' not in os.environ\nassert set(os.environ) <= {'LC_CTYPE'}\n"
    assert run_program(source).passed
    leaked = run_program("import os\nassert 'postgresql' in str(os.environ)\n")
    assert not leaked.passed


@pytest.mark.skipif(not AS_ROOT, reason="a network namespace needs root here")
def test_a_socket_reaches_nothing(leaves_nothing):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    result = run_program(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'x')\n")
    thread.join()
    server.close()
    assert not result.passed and "Error" in result.output_tail
    assert accepted == []


@pytest.mark.skipif(not AS_ROOT, reason="signalling the parent is refused by the uid switch (root only)")
def test_killing_its_parent_is_refused(leaves_nothing):
    result = run_program("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(1, signal.SIGKILL)\n")
    assert not result.passed and "PermissionError" in result.output_tail


def test_a_huge_output_is_cut_by_the_file_size_limit(leaves_nothing):
    result = run_program("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", Limits(file_bytes=1 << 20))
    assert not result.passed
    assert len(result.output_tail) <= Limits().output_tail_bytes


def test_a_program_that_tries_to_leave_its_session_is_still_killed(leaves_nothing):
    source = "import os, time\ntry:\n    os.setsid()\nexcept OSError:\n    pass\ntime.sleep(60)\n"
    result = run_program(source, Limits(cpu_seconds=5, wall_seconds=1))
    assert result.timed_out and not result.passed


def test_many_programs_run_in_parallel_in_order(leaves_nothing):
    sources = [f"assert {i} % 3 != 0" for i in range(9)]
    results = run_programs(sources, workers=3)
    assert [r.passed for r in results] == [i % 3 != 0 for i in range(9)]
    assert all(isinstance(r, RunResult) for r in results)


def test_limits_are_bounded():
    with pytest.raises(InvalidInput) as caught:
        Limits(cpu_seconds=0)
    assert caught.value.field == "cpu_seconds"
    with pytest.raises(InvalidInput):
        Limits(memory_bytes=1 << 50)
