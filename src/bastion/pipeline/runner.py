"""Running the main job: stages in order, each cached by the hash of its inputs, each recorded.

One run holds an exclusive lock on its pipeline name inside the Bastion home (an OS file
lock, released by the kernel even when the process is killed), so a run it finds still
marked ``running`` in the registry is known to be dead: it was interrupted. If that run had
the same configuration, this run *resumes* it (same run id, its stages restarted or reused);
otherwise it is closed as failed and a new run starts. Together with the stage cache (a
stage's result is committed only when it is complete) and idempotent registry writes, this
means a run killed anywhere leaves nothing half-written and the next run finishes the job.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from bastion.config import BastionConfig
from bastion.errors import BastionError, RegistryError
from bastion.pipeline.cache import StageCache, content_hash
from bastion.pipeline.stages import Stage, StageContext, stages_for
from bastion.registry import Registry
from bastion.registry.records import RunStatus

__all__ = ["PipelineResult", "StageOutcome", "bastion_home", "open_registry", "run_pipeline"]


@dataclass(frozen=True)
class StageOutcome:
    name: str
    status: RunStatus
    seconds: float
    output: dict[str, Any] | None


@dataclass(frozen=True)
class PipelineResult:
    """What a finished run produced."""

    run_id: str
    resumed: bool
    stages: tuple[StageOutcome, ...]
    outputs: dict[str, dict[str, Any]]

    @property
    def candidate(self) -> str:
        return str(self.outputs["register"]["candidate"])

    @property
    def passed(self) -> bool:
        return bool(self.outputs["gate"]["decision"]["verdict"] == "pass")

    @property
    def report(self) -> Path:
        return Path(self.outputs["report"]["html"])

    def status(self, stage: str) -> RunStatus:
        for outcome in self.stages:
            if outcome.name == stage:
                return outcome.status
        raise KeyError(stage)


def bastion_home(config: BastionConfig) -> Path:
    """The folder holding the default registry, artifacts, stage cache and reports."""
    return Path(config.registry.home)


def open_registry(config: BastionConfig) -> Registry:
    """The registry the config names (``registry.url``, ``BASTION_DATABASE_URL``, or SQLite
    inside the Bastion home)."""
    return Registry.open(config.registry)


@contextmanager
def _exclusive(home: Path, name: str) -> Iterator[None]:
    locks = home / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    path = locks / f"{name}.lock"
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BastionError(
                f"another `bastion run` of pipeline {name!r} is running in {home} "
                f"(lock {path}); wait for it to finish"
            ) from exc
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def _start_run(registry: Registry, name: str, config_hash: str) -> tuple[str, bool]:
    """(run id, resumed): resume this config's interrupted run, close any other."""
    resumed_id: str | None = None
    for run in registry.runs.list(name):
        if run.status is not RunStatus.RUNNING:
            continue
        if run.config_hash == config_hash and resumed_id is None:
            resumed_id = run.run_id
        else:
            registry.runs.finish(run.run_id, RunStatus.FAILED)
    if resumed_id is not None:
        registry.runs.resume(resumed_id)
        return resumed_id, True
    return registry.runs.start(name, config_hash=config_hash).run_id, False


def _summary(output: Mapping[str, Any] | None) -> str:
    if not output:
        return ""
    return str(output.get("summary", ""))


def run_pipeline(
    config: BastionConfig,
    *,
    registry: Registry | None = None,
    console: Console | None = None,
    progress: bool = True,
    promote_production: bool = False,
) -> PipelineResult:
    """Run the main job described by ``config`` (see the module docstring)."""
    console = console or Console()
    home = bastion_home(config)
    home.mkdir(parents=True, exist_ok=True)
    own_registry = registry is None
    registry = registry or open_registry(config)
    try:
        with _exclusive(home, config.name):
            return _run(config, registry, home, console, progress, promote_production)
    finally:
        if own_registry:
            registry.close()


def _run(
    config: BastionConfig,
    registry: Registry,
    home: Path,
    console: Console,
    progress: bool,
    promote_production: bool,
) -> PipelineResult:
    config_hash = content_hash(config.model_dump(mode="json"))
    run_id, resumed = _start_run(registry, config.name, config_hash)
    verb = "Resuming interrupted" if resumed else "Starting"
    console.rule(f"[bold]{verb} run {run_id[:12]} of pipeline {config.name!r}")
    cache = StageCache(home / "cache")
    ctx = StageContext(
        config=config,
        registry=registry,
        home=home,
        console=console,
        progress=progress,
        promote_production=promote_production,
    )
    outcomes: list[StageOutcome] = []
    try:
        stages = stages_for(ctx)
        applicable = [s for s in stages if s.applies(ctx)]
        for stage in stages:
            if not stage.applies(ctx):
                registry.runs.start_stage(run_id, stage.name, input_hash="-")
                registry.runs.finish_stage(run_id, stage.name, status=RunStatus.SKIPPED)
                outcomes.append(StageOutcome(stage.name, RunStatus.SKIPPED, 0.0, None))
                console.print(f"[dim]- {stage.title}: skipped (no recipe)[/dim]")
                continue
            number = applicable.index(stage) + 1
            outcomes.append(
                _run_stage(stage, ctx, cache, registry, run_id, console, number, len(applicable))
            )
    except BaseException as exc:
        # KeyboardInterrupt included: the run is over; SIGKILL never gets here, and the next
        # run resumes it instead.
        registry.runs.finish(run_id, RunStatus.FAILED)
        if isinstance(exc, BastionError | KeyboardInterrupt):
            raise
        raise BastionError(f"pipeline {config.name!r} failed: {exc}") from exc
    registry.runs.finish(run_id, RunStatus.SUCCEEDED)
    result = PipelineResult(run_id, resumed, tuple(outcomes), dict(ctx.outputs))
    verdict = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
    console.rule("[bold]Done")
    console.print(
        f"Candidate {result.candidate}: gate {verdict}; stage {ctx.outputs['register']['stage']}."
    )
    console.print(f"Report: {result.report}")
    return result


def _run_stage(
    stage: Stage,
    ctx: StageContext,
    cache: StageCache,
    registry: Registry,
    run_id: str,
    console: Console,
    number: int,
    total: int,
) -> StageOutcome:
    inputs = stage.inputs(ctx)
    entry = cache.entry(stage.name, inputs)
    label = f"[{number}/{total}] {stage.title}"
    started = time.perf_counter()
    cached = entry.result() if stage.cacheable else None
    registry.runs.start_stage(run_id, stage.name, input_hash=entry.key)
    if cached is not None and _still_there(cached):
        ctx.outputs[stage.name] = cached
        registry.runs.finish_stage(run_id, stage.name, status=RunStatus.REUSED, output=cached)
        console.print(f"[cyan]↺ {label}[/cyan]: reused — {_summary(cached)}")
        return StageOutcome(stage.name, RunStatus.REUSED, time.perf_counter() - started, cached)
    console.print(f"[bold]▶ {label}[/bold]")
    try:
        entry.work.mkdir(parents=True, exist_ok=True)
        if stage.cacheable:
            output = stage.run(ctx, entry.work)
            entry.commit(output)
        else:
            with console.status(f"{stage.title}…"):
                output = stage.run(ctx, entry.work)
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        # the original error matters more than a failure to record it
        with contextlib.suppress(RegistryError):
            registry.runs.finish_stage(
                run_id, stage.name, status=RunStatus.FAILED, error=message[:2000]
            )
        console.print(f"[red]✗ {label}: {message}[/red]")
        raise
    seconds = time.perf_counter() - started
    ctx.outputs[stage.name] = output
    registry.runs.finish_stage(run_id, stage.name, status=RunStatus.SUCCEEDED, output=output)
    console.print(f"[green]✓ {label}[/green] ({seconds:.1f} s) — {_summary(output)}")
    return StageOutcome(stage.name, RunStatus.SUCCEEDED, seconds, output)


def _still_there(output: Mapping[str, Any]) -> bool:
    """A cached result is only usable while the files it points at exist."""
    for key in ("artifact", "record", "html"):
        value = output.get(key)
        if value is not None and not Path(value).exists():
            return False
    return True
