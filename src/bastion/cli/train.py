"""``bastion train --config FILE``: train the config's model (adversarially when it has a
recipe) into a run folder; ``--resume`` continues a killed run, ``--nproc N`` runs it on N
processes through ``torchrun``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]


def _pct(value: object) -> str:
    return "-" if not isinstance(value, int | float) else f"{100 * value:.1f}%"


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        config: Path = typer.Option(..., "--config", "-c", help="the Bastion YAML file"),
        out: Path | None = typer.Option(
            None, "--out", help="run folder (default: OUTPUT_DIR/NAME/train)"
        ),
        resume: bool = typer.Option(False, "--resume", help="continue the run in the folder"),
        nproc: int = typer.Option(1, "--nproc", min=1, help="processes (DDP through torchrun)"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bars"),
    ) -> None:
        """Train a model from a config: clean without a recipe, adversarially with one.

        Writes checkpoints every epoch, metrics.jsonl and the model artifact (OUT/model),
        which `bastion evaluate --model OUT/model` reads.
        """
        # Imported here, not at the top: ``bastion owners list`` must not pay for torch.
        from bastion.train import launch, train_from_file

        if nproc > 1:
            arguments = ["--config", str(config)]
            arguments += ["--out", str(out)] if out is not None else []
            arguments += ["--resume"] if resume else []
            arguments += [] if progress else ["--no-progress"]
            status = launch(nproc, arguments)
            if status:
                raise typer.Exit(status)
            return
        console = Console()
        try:
            result = train_from_file(config, out_dir=out, resume=resume, progress=progress)
        except KeyboardInterrupt:
            typer.echo("Interrupted: progress saved; continue with --resume.", err=True)
            raise typer.Exit(130) from None
        final = result.final
        table = Table(title=f"Trained {result.plan.mode.value} in {result.wall_time_s:.1f}s")
        for column in ("epochs", "loss", "clean (train)", "adv (train)", "val clean", "val PGD"):
            table.add_column(column, justify="right")
        table.add_row(
            str(final.get("epoch", "-")),
            f"{final.get('loss', float('nan')):.4f}",
            _pct(final.get("clean_acc")),
            _pct(final.get("adv_acc")),
            _pct(final.get("val_clean_acc")),
            _pct(final.get("val_pgd_acc")),
        )
        console.print(table)
        for event in result.events:
            console.print(f"[yellow]{event['event']} at epoch {event['epoch']}: {event['reason']}")
        console.print(f"model artifact: {result.artifact}")
        console.print(f"metrics: {result.out_dir / 'metrics.jsonl'}")
