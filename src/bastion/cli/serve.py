"""``bastion serve``, ``bastion keys …`` and ``bastion review …``: the guarded server and the
two things people do around it — hand out API keys, and label what it queued for review.

The CLI loads the data the detectors calibrate on (the server itself never loads datasets)
and writes it to a temporary ``.npz`` that every server worker reads.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from bastion.config import BastionConfig, DataConfig, ServeConfig, load_config
from bastion.config.store import RegistryConfig
from bastion.errors import ConfigError, RegistryError
from bastion.registry import Registry

__all__ = ["register"]


def _settings(config: Path | None) -> BastionConfig | None:
    return load_config(config) if config is not None else None


def _registry(config: Path | None) -> Registry:
    settings = _settings(config)
    return Registry.open(settings.registry if settings else None)


def _calibration_file(data: DataConfig, folder: Path) -> Path:
    from bastion.data import load_dataset
    from bastion.serve.model import CalibrationData

    dataset = load_dataset(data)
    calibration = CalibrationData(
        x_train=dataset.train.x, y_train=dataset.train.y, x_val=dataset.val.x
    )
    return calibration.save(folder / "calibration.npz")


def register(app: typer.Typer) -> None:
    _register_serve(app)
    _register_keys(app)
    _register_review(app)


def _register_serve(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_command(
        model: str | None = typer.Option(
            None, "--model", help="registry version: NAME, NAME:VERSION or NAME@STAGE"
        ),
        model_dir: Path | None = typer.Option(
            None, "--model-dir", help="a model artifact folder (no registry version needed)"
        ),
        config: Path | None = typer.Option(
            None, "--config", help="Bastion YAML: its serve, data and registry sections"
        ),
        data: str | None = typer.Option(
            None,
            "--data",
            help="dataset the detectors calibrate on (digits, mnist, npz, csv); default: "
            "the config's data section, else the registry version's",
        ),
        data_path: Path | None = typer.Option(None, "--data-path", help="file for --data"),
        host: str | None = typer.Option(None, help="listen address (default from config)"),
        port: int | None = typer.Option(None, help="port (default from config)"),
        workers: int | None = typer.Option(None, help="uvicorn worker processes"),
    ) -> None:
        """Serve a model behind the configured defence layers (FastAPI on uvicorn)."""
        from bastion.serve.run import ServeSpec, run

        if (model is None) == (model_dir is None):
            raise ConfigError("give exactly one of --model or --model-dir")
        settings = _settings(config)
        serve = settings.serve if settings else ServeConfig()
        overrides = {k: v for k, v in (("host", host), ("port", port), ("workers", workers)) if v}
        if overrides:
            serve = ServeConfig.model_validate({**serve.model_dump(), **overrides})
        data_config: DataConfig | None = None
        if data is not None:
            data_config = DataConfig(name=data, path=data_path)
        elif settings is not None:
            data_config = settings.data
        elif model is not None:
            registry = Registry.open()
            try:
                snapshot = registry.models.get(model).config.get("data")
            finally:
                registry.close()
            if isinstance(snapshot, dict):
                data_config = DataConfig.model_validate(snapshot)
        with tempfile.TemporaryDirectory(prefix="bastion-serve-") as folder:
            calibration = str(_calibration_file(data_config, Path(folder))) if data_config else None
            spec = ServeSpec(
                model_ref=model,
                model_dir=str(model_dir) if model_dir else None,
                serve=serve,
                registry=settings.registry if settings else RegistryConfig(),
                calibration_path=calibration,
            )
            typer.echo(
                f"serving {model or model_dir} on http://{serve.host}:{serve.port} "
                f"({serve.workers} worker(s))",
                err=True,
            )
            run(spec)


def _register_keys(app: typer.Typer) -> None:
    group = typer.Typer(help="API keys of the guarded server.", no_args_is_help=True)

    @group.command("create")
    def create(
        name: str = typer.Argument(..., help="who or what uses the key"),
        config: Path | None = typer.Option(None, "--config", help="registry location"),
    ) -> None:
        """Create a key; the secret is printed once and never stored."""
        from bastion.registry.keys import ApiKeyStore

        with _registry(config) as registry:
            created = ApiKeyStore(registry.database).create(name)
        typer.echo(f"key id {created.key.key_id} for {created.key.name!r}", err=True)
        typer.echo(created.token)

    @group.command("list")
    def list_keys(
        as_json: bool = typer.Option(False, "--json"),
        config: Path | None = typer.Option(None, "--config", help="registry location"),
    ) -> None:
        """List keys (ids, names, dates; never secrets)."""
        from bastion.registry.keys import ApiKeyStore

        with _registry(config) as registry:
            keys = ApiKeyStore(registry.database).list()
        if as_json:
            rows = [
                {
                    "key_id": k.key_id,
                    "name": k.name,
                    "created_at": k.created_at.isoformat(),
                    "created_by": k.created_by,
                    "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                }
                for k in keys
            ]
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table(title="API keys")
        for col in ("key id", "name", "created", "by", "status"):
            table.add_column(col)
        for k in keys:
            status = "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}"
            table.add_row(k.key_id, k.name, f"{k.created_at:%Y-%m-%d %H:%M}", k.created_by, status)
        Console().print(table)

    @group.command("revoke")
    def revoke(
        key_id: str = typer.Argument(..., help="the key id shown by `bastion keys list`"),
        config: Path | None = typer.Option(None, "--config", help="registry location"),
    ) -> None:
        """Revoke a key (running servers stop accepting it within seconds)."""
        from bastion.registry.keys import ApiKeyStore

        with _registry(config) as registry:
            key = ApiKeyStore(registry.database).revoke(key_id)
        typer.echo(f"revoked {key.key_id} ({key.name})")

    app.add_typer(group, name="keys")


def _summary(item: Any) -> dict[str, Any]:
    outputs = item.outputs if isinstance(item.outputs, dict) else {}
    return {
        "request_id": item.request_id,
        "model": item.model,
        "status": item.status.value,
        "predicted": outputs.get("label"),
        "confidence": outputs.get("confidence"),
        "reasons": list(item.reasons),
        "label": item.label,
        "created_at": item.created_at.isoformat(),
    }


def _register_review(app: typer.Typer) -> None:
    group = typer.Typer(help="The human review queue.", no_args_is_help=True)

    @group.command("list")
    def list_items(
        status: str | None = typer.Option(None, help="pending or labelled"),
        limit: int | None = typer.Option(None, min=1),
        as_json: bool = typer.Option(False, "--json"),
        config: Path | None = typer.Option(None, "--config", help="registry location"),
    ) -> None:
        """Queued inputs, oldest first."""
        with _registry(config) as registry:
            items = registry.review.list(status=status, limit=limit)
        rows = [_summary(i) for i in items]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table(title=f"review queue ({len(rows)} items)")
        for col in ("request id", "status", "predicted", "confidence", "reasons", "label"):
            table.add_column(col)
        for r in rows:
            conf = "" if r["confidence"] is None else f"{r['confidence']:.3f}"
            table.add_row(
                r["request_id"],
                r["status"],
                str(r["predicted"]),
                conf,
                ", ".join(r["reasons"]),
                r["label"] or "",
            )
        Console().print(table)

    @group.command("show")
    def show(
        request_id: str = typer.Argument(...),
        config: Path | None = typer.Option(None, "--config", help="registry location"),
    ) -> None:
        """One item in full (input, outputs, scores) as JSON."""
        with _registry(config) as registry:
            item = registry.review.get(request_id)
        typer.echo(json.dumps(item.to_dict(), indent=2))

    @group.command("label")
    def label(
        request_id: str = typer.Argument(...),
        value: str = typer.Argument(..., help="the true class name"),
        config: Path | None = typer.Option(None, "--config", help="registry location"),
    ) -> None:
        """Label an item (audited; relabelling is allowed and audited too)."""
        with _registry(config) as registry:
            item = registry.review.get(request_id)
            classes = item.outputs.get("classes") if isinstance(item.outputs, dict) else None
            if classes and value not in classes:
                raise RegistryError(f"label {value!r} is not one of the model's classes {classes}")
            item = registry.review.label(request_id, value)
        typer.echo(f"labelled {item.request_id} as {item.label!r} by {item.labelled_by}")

    @group.command("export")
    def export(
        out: Path = typer.Argument(..., help="the .npz file to write"),
        config: Path | None = typer.Option(None, "--config", help="registry location"),
    ) -> None:
        """Write labelled items as an .npz dataset (``data: {name: npz, path: OUT}``)."""
        from bastion.serve.review import export_dataset

        with _registry(config) as registry:
            items = registry.review.list(status="labelled")
        count = export_dataset(items, out)
        typer.echo(f"wrote {count} labelled inputs to {out}")

    app.add_typer(group, name="review")
