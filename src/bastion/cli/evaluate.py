"""``bastion evaluate``: a saved model against the threat model of a config file.

Thin on purpose: it loads the config, the model artifact and the dataset, calls
:func:`bastion.evaluate.evaluate`, shows the record as a table and writes it as JSON. The
sanity flags are shown in the table rather than as Python warnings.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from bastion.config import load_config

if TYPE_CHECKING:
    from bastion.evaluate import EvaluationRecord

__all__ = ["register", "render"]

DEFAULT_NAME = "evaluation.json"


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_command(
        model: Path = typer.Option(
            ..., "--model", help="model artifact folder", file_okay=False, dir_okay=True
        ),
        config: Path = typer.Option(..., "--config", help="Bastion YAML file"),
        out: Path | None = typer.Option(
            None, "--out", help=f"where to write the JSON record (default: MODEL/{DEFAULT_NAME})"
        ),
        max_samples: int | None = typer.Option(
            None, "--max-samples", min=1, help="evaluate only the first N test samples"
        ),
    ) -> None:
        """Attack a model with the config's threat model and report its worst-case accuracy."""
        # Imported here, not at the top: ``bastion owners list`` must not pay for torch.
        from bastion import models
        from bastion.data import load_dataset
        from bastion.evaluate import EvaluationWarning, evaluate

        settings = load_config(config)
        evaluation = settings.evaluation
        if max_samples is not None:
            evaluation = evaluation.model_copy(update={"max_samples": max_samples})
        network = models.load(model)
        dataset = load_dataset(settings.data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EvaluationWarning)
            record = evaluate(
                network,
                dataset,
                settings.threat_model,
                evaluation,
                progress=True,
                source=settings.source,
            )
        path = record.save(out if out is not None else model / DEFAULT_NAME)
        render(record, Console(), title=f"{model.name} on {dataset.name}")
        typer.echo(f"wrote {path}")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def render(record: EvaluationRecord, console: Console, *, title: str) -> None:
    """Print the record's headline numbers as Rich tables."""
    table = Table(
        title=f"{title}: threat model {record.threat_model!r}, {record.n_samples} samples",
    )
    for column in ("", "norm", "budget", "accuracy", "cumulative", "broken", "seconds"):
        table.add_column(column, justify="left" if column in ("", "norm") else "right")
    table.add_row("clean", "", "", _pct(record.clean_accuracy), "", "", "")
    for attack in record.attacks:
        budget = "" if attack.budget is None else f"{attack.budget:g}"
        table.add_row(
            attack.label,
            attack.norm.value,
            budget,
            _pct(attack.robust_accuracy),
            _pct(attack.cumulative_accuracy),
            f"{attack.success_count}/{attack.attacked}",
            f"{attack.seconds:.2f}",
        )
    table.add_row(
        "[bold]worst case[/bold]", "", "", f"[bold]{_pct(record.worst_case_accuracy)}[/bold]"
    )
    console.print(table)

    summary = Table(show_header=False, box=None)
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row(
        "ECE clean / adversarial", f"{record.ece_clean:.4f} / {record.ece_adversarial:.4f}"
    )
    latency = record.latency
    summary.add_row(
        "latency per sample",
        f"p50 {latency.p50_ms:.3f} ms, p95 {latency.p95_ms:.3f} ms (single); "
        f"{latency.batched_ms_per_sample:.4f} ms batched ({latency.batch_size})",
    )
    summary.add_row("attack library", record.attack_library_version)
    summary.add_row("threads", str(record.torch_threads))
    if record.flags:
        for flag in record.flags:
            summary.add_row("[red]flag[/red]", f"[red]{flag.code.value}[/red]: {flag.message}")
    else:
        summary.add_row("flags", "[green]none[/green]")
    console.print(summary)
