"""``bastion run PIPELINE.yaml``: the main job, end to end.

Thin: it loads the config (with ``--set`` overrides and ``--data-path``), calls
:func:`bastion.pipeline.run_pipeline` and prints where the report is. Exit 0 when the run
finished (whatever the gate said; ``bastion gate`` is the command whose exit status is the
verdict), 1 on any Bastion error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
import yaml

from bastion.config import load_config
from bastion.errors import ConfigError

__all__ = ["parse_overrides", "register"]


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["train.epochs=3", "data.path=x"]`` -> ``{"train.epochs": 3, "data.path": "x"}``.

    Values are read as YAML scalars, so numbers, booleans and ``null`` keep their type.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. train.epochs=3); got {pair!r}")
        try:
            out[key] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: value {text!r} is not valid YAML") from exc
    return out


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_command(
        pipeline: Path = typer.Argument(..., help="pipeline YAML file"),
        overrides: list[str] = typer.Option(
            [], "--set", help="override a config value: KEY=VALUE (dotted key); repeatable"
        ),
        data_path: Path | None = typer.Option(
            None, "--data-path", help="read the dataset from here (overrides data.path)"
        ),
        production: bool = typer.Option(
            False, "--promote-production", help="promote to production if the gate passes"
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bars"),
        summary: Path | None = typer.Option(
            None, "--summary", help="also write run id, candidate, verdict and report as JSON"
        ),
    ) -> None:
        """Train, attack, harden, calibrate, gate, register and report — resumably."""
        # Imported here, not at the top: ``bastion owners list`` must not pay for torch.
        from bastion.pipeline import run_pipeline

        values = parse_overrides(overrides)
        if data_path is not None:
            values["data.path"] = str(data_path)
        config = load_config(pipeline, overrides=values)
        result = run_pipeline(config, progress=progress, promote_production=production)
        if summary is not None:
            summary.write_text(
                json.dumps(
                    {
                        "run_id": result.run_id,
                        "candidate": result.candidate,
                        "verdict": "pass" if result.passed else "fail",
                        "stage": result.outputs["register"]["stage"],
                        "report": str(result.report),
                        "stages": {s.name: s.status.value for s in result.stages},
                    },
                    indent=2,
                )
            )
        typer.echo(f"report: {result.report}")
