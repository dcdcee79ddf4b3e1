"""docker-compose.yml and the Dockerfile name what the code reads (no Docker engine runs here, so this is what can be
checked): the services, their commands (real `mdmtune` commands), and every MDMTUNE_* variable (a Settings field whose
value Settings accepts). PyYAML comes with the test extra.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import typer
import yaml

from mdmtune.service.settings import Settings

REPO = Path(__file__).resolve().parents[1]
PREFIX = "MDMTUNE_"


_VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:[:?-][^}]*)?\}")


def _example_env() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))


@pytest.fixture(scope="module")
def compose_text() -> str:
    return (REPO / "docker-compose.yml").read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict:
    """The compose file with ${VARIABLES} filled in from .env.example, as `docker compose` fills them from .env."""
    values = _example_env()
    return yaml.safe_load(_VARIABLE.sub(lambda m: values[m.group(1)], compose_text))


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_secrets_come_from_an_uncommitted_env_file(compose_text):
    used = set(_VARIABLE.findall(compose_text))
    assert "POSTGRES_PASSWORD" in used and used <= set(_example_env())
    assert "mdmtune:mdmtune@" not in compose_text and "POSTGRES_PASSWORD: mdmtune" not in compose_text
    for ignore in (".gitignore", ".dockerignore"):
        assert ".env" in (REPO / ignore).read_text().split(), ignore


def test_every_service_that_runs_the_image_can_build_it(compose):
    for name, service in compose["services"].items():
        if str(service.get("image", "")).startswith("mdmtune"):
            assert "build" in service, f"{name} names the mdmtune image but cannot build it"


def _cli():
    from mdmtune.cli.main import _register_commands, app

    _register_commands()
    return typer.main.get_command(app)


def _assert_real_command(argv: list[str]) -> None:
    """`mdmtune <sub> [<sub>...] [options]` resolves to a registered command and its options exist."""
    assert argv[0] == "mdmtune", argv
    group, args = _cli(), argv[1:]
    command = group
    while hasattr(command, "commands") and args and not args[0].startswith("-"):
        assert args[0] in command.commands, f"no command {args[0]!r} in {argv}"
        command, args = command.commands[args[0]], args[1:]
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for arg in args:
        if arg.startswith("--"):
            assert arg in options, f"{argv}: {arg} is not an option of {command.name}"


def test_compose_has_postgres_migrate_api_and_gpu_worker(compose):
    services = compose["services"]
    assert set(services) >= {"postgres", "migrate", "api", "worker"}
    postgres = services["postgres"]
    assert "healthcheck" in postgres
    assert any(str(v).endswith("/var/lib/postgresql/data") for v in postgres["volumes"])
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert services["worker"]["build"]["args"]["TORCH_INDEX"] == "https://pypi.org/simple"  # the CUDA build


def test_migrations_run_before_api_and_workers_start(compose):
    services = compose["services"]
    assert services["migrate"]["command"][:3] == ["mdmtune", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_api_and_worker_share_the_artifact_volume_where_settings_point(compose):
    services = compose["services"]
    mounts = []
    for name in ("api", "worker"):
        artifact_dir = _env(services[name])["MDMTUNE_ARTIFACT_DIR"]
        volume = next(v for v in services[name]["volumes"] if v.split(":")[1] == artifact_dir)
        mounts.append(volume)
    assert mounts[0] == mounts[1] and mounts[0].split(":")[0] in compose["volumes"]


def test_every_mdmtune_variable_is_a_settings_field_with_a_valid_value(compose, monkeypatch):
    seen = 0
    for name, service in compose["services"].items():
        env = {k: v for k, v in _env(service).items() if k.startswith(PREFIX)}
        for key in env:
            assert key[len(PREFIX) :].lower() in Settings.model_fields, f"{name}: {key} is read by nothing"
        for key in list(os.environ):
            if key.startswith(PREFIX):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings()  # raises if a value does not parse
        if "MDMTUNE_DATABASE_URL" in env:
            assert settings.resolved_database_url.startswith("postgresql+psycopg://")
            assert not settings.is_embedded
        seen += len(env)
    assert seen > 0


def test_api_requires_keys_and_listens_on_all_interfaces(compose, monkeypatch):
    for key, value in _env(compose["services"]["api"]).items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.api_key_required and settings.host == "0.0.0.0"


def test_compose_commands_are_real_mdmtune_commands(compose):
    for service in compose["services"].values():
        command = service.get("command")
        if command:
            _assert_real_command(command if isinstance(command, list) else shlex.split(command))


def test_dockerfile_env_and_command_match_the_code():
    text = (REPO / "Dockerfile").read_text()
    for key in re.findall(r"\b(MDMTUNE_[A-Z_]+)=", text):
        assert key[len(PREFIX) :].lower() in Settings.model_fields, key
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd is not None
    _assert_real_command(yaml.safe_load(cmd.group(1)))
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in text
    pinned = re.search(r"^ARG TORCH_VERSION=(\S+)$", text, re.M).group(1)
    assert f"pip install -q torch=={pinned} &&" in (REPO / ".ci" / "run").read_text()  # the version CI tests


def test_readme_installs_the_cpu_build_and_tests_as_ci_does():
    """The quick start takes torch from PyTorch's CPU index (a plain `pip install torch` is the CUDA build on Linux);
    the README's test command is what .ci/run runs once torch is installed."""
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    demo = next(block for block in blocks if block.endswith("mdmtune demo"))
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu && pip install -e . &&" in demo
    ci_line = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if "python -m pytest" in line]
    assert len(ci_line) == 1
    ci_steps = [step.strip().replace(" -q", "") for step in ci_line[0].split("&&")]
    assert ci_steps[0].startswith("pip install torch==")  # the pinned CPU wheel, from no other index
    tests = next(block for block in blocks if block.endswith("python -m pytest"))
    assert [step.strip() for step in tests.split("&&")][1:] == ci_steps[1:]


def test_containers_without_the_api_do_not_run_the_images_http_healthcheck(compose):
    for name in ("migrate", "worker"):
        assert compose["services"][name]["healthcheck"] == {"disable": True}
    assert "healthcheck" not in compose["services"]["api"]  # the image's /healthz check applies
