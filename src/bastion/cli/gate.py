"""``bastion gate --candidate NAME:VERSION``: the CI gate.

Prints the verdict and every reason, records the decision in the registry, and exits 0 when
the candidate passes, 1 when it fails, 2 when it cannot be gated (unknown version, no
evaluation, bad policy file, registry error) — so a CI job can tell "worse" from "broken".
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from bastion.config import load_config
from bastion.errors import BastionError
from bastion.registry import Registry

__all__ = ["EXIT_ERROR", "EXIT_FAIL", "EXIT_PASS", "register"]

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def register(app: typer.Typer) -> None:
    @app.command("gate")
    def gate_command(
        candidate: str = typer.Option(..., "--candidate", help="NAME:VERSION to gate"),
        config: Path | None = typer.Option(
            None,
            "--config",
            help="take the gate policy and registry location from this file "
            "(default: the policy the version was produced with)",
        ),
    ) -> None:
        """Gate a registered version against its policy and the production version."""
        # Imported here, not at the top: ``bastion owners list`` must not pay for torch.
        from bastion.pipeline import gate_version

        console = Console()
        try:
            settings = load_config(config) if config is not None else None
            registry = Registry.open(settings.registry if settings else None)
            try:
                decision, row = gate_version(
                    registry, candidate, settings.gate if settings else None
                )
            finally:
                registry.close()
        except BastionError as exc:
            typer.echo(f"{type(exc).__name__}: {exc}", err=True)
            # SystemExit, not typer.Exit: the exit status must survive non-standalone mode
            sys.exit(EXIT_ERROR)
        colour = "green" if decision.passed else "red"
        against = (decision.production is not None and row.baseline) or "no production version"
        console.print(
            f"[bold {colour}]{decision.verdict.value.upper()}[/] {candidate} "
            f"(against {against}; decision #{row.id})"
        )
        for reason in decision.reasons:
            console.print(f"  {reason}", markup=False, highlight=False)
        sys.exit(EXIT_PASS if decision.passed else EXIT_FAIL)
