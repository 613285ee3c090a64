"""The live view of a training run: a Rich progress bar per epoch with the running loss and
clean/adversarial accuracy, and one summary line per finished epoch. Only rank 0 shows it;
with ``enabled=False`` (tests, non-interactive jobs) every method does nothing."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["ProgressView"]


def _pct(value: Any) -> str:
    return "  -  " if value is None else f"{100 * float(value):5.1f}%"


class ProgressView:
    """``with ProgressView(...) as view: view.start_epoch(...); view.advance(...)``."""

    def __init__(self, *, enabled: bool, epochs: int, steps: int, label: str) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self.steps = steps
        self.label = label
        self.console = Console(stderr=True)
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressView:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    "loss {task.fields[loss]}  clean {task.fields[clean]}  adv {task.fields[adv]}"
                ),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def start_epoch(self, epoch: int, done: int) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(
            f"{self.label} epoch {epoch + 1}/{self.epochs}",
            total=self.steps,
            completed=done,
            loss="  -  ",
            clean=_pct(None),
            adv=_pct(None),
        )

    def advance(self, loss: float, clean: float | None, adv: float | None) -> None:
        if self._progress is None or self._task is None:
            return
        self._progress.update(
            self._task, advance=1, loss=f"{loss:.4f}", clean=_pct(clean), adv=_pct(adv)
        )

    def end_epoch(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        parts = [f"epoch {record['epoch']}/{self.epochs}", f"loss {record['loss']:.4f}"]
        for key, name in (
            ("clean_acc", "clean"),
            ("adv_acc", "adv"),
            ("val_clean_acc", "val clean"),
            ("val_pgd_acc", "val PGD"),
        ):
            if record.get(key) is not None:
                parts.append(f"{name} {_pct(record[key]).strip()}")
        parts.append(f"{record['time_s']:.1f}s")
        if record.get("rolled_back"):
            parts.append("[red]collapsed: rolled back[/red]")
        self.console.print("  ".join(parts))

    def note(self, message: str) -> None:
        if self.enabled:
            self.console.print(message)
