"""``bastion report NAME:VERSION``: write a version's robustness report (Markdown + HTML)."""

from __future__ import annotations

from pathlib import Path

import typer

from bastion.config import load_config
from bastion.registry import Registry

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_command(
        ref: str = typer.Argument(..., help="NAME:VERSION (or NAME@STAGE)"),
        config: Path | None = typer.Option(
            None, "--config", help="registry location (default: .bastion or BASTION_DATABASE_URL)"
        ),
        out: Path | None = typer.Option(
            None, "--out", help="folder for the report (default: .bastion/reports/NAME-VERSION)"
        ),
        data_path: Path | None = typer.Option(
            None, "--data-path", help="read the test data from here instead of the snapshot's"
        ),
    ) -> None:
        """Render the report of a registered version from its stored evaluation."""
        # Imported here, not at the top: ``bastion owners list`` must not pay for torch.
        from bastion.pipeline import write_version_report

        settings = load_config(config) if config is not None else None
        home = Path(settings.registry.home) if settings else Path(".bastion")
        with Registry.open(settings.registry if settings else None) as registry:
            paths = write_version_report(registry, ref, home, data_path=data_path, out_dir=out)
        typer.echo(f"markdown: {paths['markdown']}")
        typer.echo(f"html: {paths['html']}")
