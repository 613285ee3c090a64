"""``bastion models list|show``, ``bastion promote`` and ``bastion rollback``.

Thin on purpose: each command opens the registry, makes one call and prints the result.
Stage changes are audited by the registry itself; a reason is required for each.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from bastion.config import RegistryConfig, load_config
from bastion.errors import NotFoundError
from bastion.registry import Registry, Stage, parse_ref

__all__ = ["as_json", "open_registry", "register"]

DB_HELP = "registry database URL (default: BASTION_DATABASE_URL, then .bastion/registry.db)"
CONFIG_HELP = "take the registry location from this pipeline file's 'registry' section"


def open_registry(db: str | None, config: Path | None) -> Registry:
    """The registry named by ``--db``, else by ``--config``'s section, else the default."""
    settings: RegistryConfig | None = load_config(config).registry if config else None
    return Registry.open(settings, url=db)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        ref = getattr(value, "ref", None)
        if isinstance(ref, str):
            data["ref"] = ref
        return data
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def as_json(value: Any) -> str:
    """Registry records (dataclasses, enums, dates) as indented JSON."""
    return json.dumps(_plain(value), indent=2, sort_keys=True)


def register(app: typer.Typer) -> None:
    models = typer.Typer(help="Registered model versions and their lineage.", no_args_is_help=True)

    @models.command("list")
    def list_models(
        name: str | None = typer.Argument(None, help="only versions of this model"),
        as_json_: bool = typer.Option(False, "--json", help="print JSON"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """List model versions with their stage, parent and provenance."""
        with open_registry(db, config) as registry:
            versions = registry.models.list(name)
        if as_json_:
            typer.echo(as_json(versions))
            return
        table = Table(title="Model versions")
        for column in ("version", "stage", "parent", "sha256", "code", "created"):
            table.add_column(column)
        for v in versions:
            table.add_row(
                v.ref,
                v.stage.value,
                v.parent or "",
                v.artifact_sha256[:12],
                v.code_version,
                f"{v.created_at:%Y-%m-%d %H:%M} {v.created_by}",
            )
        Console().print(table)

    @models.command("show")
    def show_model(
        ref: str = typer.Argument(..., help="NAME:VERSION, NAME@STAGE or NAME (latest)"),
        as_json_: bool = typer.Option(False, "--json", help="print JSON"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """Show one version: lineage, artifact, latest evaluation and stage history."""
        with open_registry(db, config) as registry:
            version = registry.models.get(ref)
            try:
                evaluation: Any = registry.evaluations.latest(version.ref)
            except NotFoundError:
                evaluation = None
            history = [h for h in registry.models.history(version.name) if h.model == version.ref]
        if as_json_:
            typer.echo(as_json({"version": version, "evaluation": evaluation, "history": history}))
            return
        console = Console()
        console.print(f"[bold]{version.ref}[/]  stage: {version.stage.value}")
        lines = {
            "parent": version.parent or "-",
            "artifact": f"{version.artifact_path} (sha256 {version.artifact_sha256})",
            "dataset": version.dataset_fingerprint or "-",
            "attack library": version.attack_library_version or "-",
            "code": version.code_version,
            "created": f"{version.created_at:%Y-%m-%d %H:%M:%S} by {version.created_by}",
        }
        if evaluation is not None:
            figures = ", ".join(f"{k}={v}" for k, v in sorted(evaluation.measured.items()))
            flags = ", ".join(evaluation.sanity_flags) or "none"
            lines["evaluation"] = f"#{evaluation.id} measured: {figures or '-'}; flags: {flags}"
            if evaluation.claimed:
                claimed = ", ".join(f"{k}={v}" for k, v in sorted(evaluation.claimed.items()))
                lines["claimed (not measured)"] = claimed
        for key, text in lines.items():
            console.print(f"  {key}: {text}", markup=False, highlight=False)
        for h in history:
            console.print(
                f"  {h.at:%Y-%m-%d %H:%M} {h.from_stage.value} -> {h.to_stage.value} "
                f"({h.kind.value}) by {h.actor}: {h.reason}",
                markup=False,
                highlight=False,
            )

    app.add_typer(models, name="models")

    @app.command("promote")
    def promote(
        ref: str = typer.Argument(..., help="NAME:VERSION to promote"),
        stage: str = typer.Option(..., "--stage", help="staging, production or archived"),
        reason: str = typer.Option(..., "--reason", help="why (kept in the stage history)"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """Move a version to a stage; a new production version archives the old one."""
        with open_registry(db, config) as registry:
            previous = registry.models.production(parse_ref(ref).name)
            version = registry.models.promote(ref, stage, reason=reason)
        typer.echo(f"{version.ref} is now in {version.stage.value}")
        if version.stage is Stage.PRODUCTION and previous and previous.ref != version.ref:
            typer.echo(f"{previous.ref} archived")

    @app.command("rollback")
    def rollback(
        name: str = typer.Argument(..., help="model name"),
        reason: str = typer.Option(..., "--reason", help="why (kept in the stage history)"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """Put the previous production version back (from the stage history)."""
        with open_registry(db, config) as registry:
            current = registry.models.production(name)
            restored = registry.models.rollback(name, reason=reason)
        was = f" (was {current.ref}, now archived)" if current else ""
        typer.echo(f"rolled back {name}: {restored.ref} is in production{was}")
