"""The ``bastion`` command: thin — it parses, calls one function, prints.

Each command group lives in its own module with a ``register(app)`` function. Every
:class:`~bastion.errors.BastionError` is printed as ``Type: message`` with exit status 1;
nothing below the CLI prints tracebacks at the user for their mistakes.
"""

from __future__ import annotations

import sys

import typer

from bastion.cli import attacks as _attacks
from bastion.cli import evaluate as _evaluate
from bastion.cli import gate as _gate
from bastion.cli import governance as _governance
from bastion.cli import models as _models
from bastion.cli import report as _report
from bastion.cli import run as _run
from bastion.cli import serve as _serve
from bastion.cli import train as _train
from bastion.errors import BastionError

__all__ = ["app", "main"]

app = typer.Typer(
    name="bastion",
    help="Make machine-learning models hard to fool, and keep them that way.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (_attacks, _evaluate, _run, _gate, _report, _serve, _train, _models, _governance):
    _module.register(app)


def main() -> None:
    """Entry point: run the app, translating Bastion's errors into one line and exit 1."""
    try:
        code = app(standalone_mode=False)
    except BastionError as exc:
        typer.echo(f"{type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors come through here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
