"""Entry point of the `mdmtune` command.

Each command lives in its own module with a `register(app)` function; this module only assembles them and turns
every error into the contract's shape: bad input exits 2 with one line on stderr, an internal failure exits 1.
"""

from __future__ import annotations

import sys

import click
import typer

from mdmtune.cli.output import fail
from mdmtune.errors import InvalidInput, MdmtuneError

try:  # typer >= 0.20 carries its own copy of click and raises that copy's exceptions, not click's
    from typer._click.exceptions import UsageError as _TyperUsageError
except ImportError:  # older typer uses click itself
    _TyperUsageError = click.UsageError
USAGE_ERRORS = (click.UsageError, _TyperUsageError)
EXITS = (click.exceptions.Exit, typer.Exit)
ABORTS = (click.exceptions.Abort, typer.Abort)

app = typer.Typer(
    name="mdmtune",
    help="Tune the mask schedule of a masked diffusion model after training.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


_registered = False


def _register_commands() -> None:
    """Import each command module once; the order here is the order in `--help`."""
    global _registered
    if _registered:
        return
    from mdmtune.cli import (
        compare,
        core,
        evalset,
        export,
        frontier,
        remote,
        sample,
        sandbox,
        score,
        service,
        toy,
        train,
        tune,
    )

    for module in (core, toy, sample, score, compare, tune, frontier, export, evalset, service, remote, train, sandbox):
        module.register(app)
    _registered = True


def main(argv: list[str] | None = None) -> None:
    """Run the command line; never print a traceback for bad input."""
    _register_commands()
    try:
        app(args=argv, standalone_mode=False)
    except EXITS as done:
        raise SystemExit(done.exit_code) from None
    except ABORTS:
        fail("aborted", code=130)
    except USAGE_ERRORS as error:
        fail(error.format_message().replace("\n", " "))
    except InvalidInput as error:
        fail(str(error))
    except MdmtuneError as error:
        fail(str(error), code=1)
    except OSError as error:
        fail(str(error).replace("\n", " "))
    sys.exit(0)


if __name__ == "__main__":
    main()
