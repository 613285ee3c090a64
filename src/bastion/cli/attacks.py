"""``bastion attacks list``: the attack library's manifest as a table or JSON."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The perturbation library.", no_args_is_help=True)

    @group.command("list")
    def list_attacks(
        as_json: bool = typer.Option(False, "--json", help="print the manifest as JSON"),
        modality: str | None = typer.Option(None, help="only image, text or tabular"),
    ) -> None:
        """List every registered attack: name, version, modality, norm and parameters."""
        # Imported here, not at the top: ``bastion owners list`` must not pay for torch.
        from bastion import attacks

        manifest = attacks.manifest()
        rows = [a for a in manifest["attacks"] if modality is None or a["modality"] == modality]
        if as_json:
            typer.echo(json.dumps({**manifest, "attacks": rows}, indent=2))
            return
        table = Table(title=f"Bastion attack library {manifest['library_version']}")
        for col in ("name", "version", "modality", "norm", "parameters"):
            table.add_column(col)
        for a in rows:
            params = ", ".join(f"{k}={v['default']}" for k, v in a["params"].items())
            table.add_row(a["name"], a["version"], a["modality"], a["norm"], params)
        Console().print(table)

    app.add_typer(group, name="attacks")
