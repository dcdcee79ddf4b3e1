"""`mdmtune sandbox check`: what protects the workers from the code pass_at_1 runs, measured, not assumed.

It tries bubblewrap with a probe program and prints the mode in force (strong, weak because the operator allowed it,
or refused: pass_at_1 jobs would fail) and each protection. Exit 0 when pass_at_1 can run, 1 when it would be
refused. The operator's choice comes from `--allow-weak` or MDMTUNE_ALLOW_WEAK_SANDBOX, as for the worker.
"""

from __future__ import annotations

import typer
from rich.console import Console

from mdmtune.cli.core import JSON_OPTION
from mdmtune.cli.output import emit_json

sandbox_app = typer.Typer(help="The code sandbox of pass_at_1.", no_args_is_help=True)


@sandbox_app.command("check")
def check_command(
    allow_weak: bool | None = typer.Option(
        None,
        "--allow-weak/--no-allow-weak",
        help="Accept the weak sandbox where bubblewrap cannot start (default: MDMTUNE_ALLOW_WEAK_SANDBOX).",
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Print the sandbox mode in force and each protection; exit 1 when pass_at_1 jobs would be refused."""
    from mdmtune.sandbox import sandbox_report

    report = sandbox_report(allow_weak)
    if json_output:
        emit_json(report)
    else:
        _print(report)
    if report["mode"] == "refused":
        raise SystemExit(1)


def _print(report: dict[str, object]) -> None:
    console = Console()
    says = {
        "strong": "strong: bubblewrap namespaces, read-only runtime, private disk, limits",
        "weak": "WEAK (allowed by the operator): own process, limits and verdicts, but no namespaces",
        "refused": "REFUSED: pass_at_1 jobs fail on this machine until bubblewrap runs or the weak sandbox is allowed",
    }
    console.print(f"sandbox: {says[str(report['mode'])]}")
    console.print(f"bwrap: {report['bwrap'] or 'not found'}; running as root: {report['running_as_root']}")
    if report["strong_problem"]:
        console.print(f"why not strong: {report['strong_problem']}")
    protections = report.get("protections")
    if isinstance(protections, dict):
        for name, on in protections.items():
            console.print(f"  {'yes' if on else 'NO ':3} {name.replace('_', ' ')}")


def register(app: typer.Typer) -> None:
    """Add `sandbox check` to the `mdmtune` command."""
    app.add_typer(sandbox_app, name="sandbox")
