"""The main job end to end on a tiny pipeline: every stage recorded, outputs registered,
unchanged inputs reused from the stage cache, changed inputs recomputed downstream only."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from bastion import models
from bastion.config import BastionConfig, parse_config
from bastion.pipeline import run_pipeline
from bastion.registry import Registry, RunStatus, Stage

TRAINED = (
    "baseline",
    "evaluate_baseline",
    "adversarial_training",
    "calibrate",
    "evaluate_candidate",
)


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def test_first_run_records_registers_and_reports(config: BastionConfig, registry: Registry) -> None:
    result = run_pipeline(config, registry=registry, console=_quiet(), progress=False)

    assert [s.status for s in result.stages] == [RunStatus.SUCCEEDED] * 9
    run = registry.runs.get(result.run_id)
    assert run.status is RunStatus.SUCCEEDED
    recorded = {s.name: s.status for s in registry.runs.stages(result.run_id)}
    assert recorded == {s.name: RunStatus.SUCCEEDED for s in result.stages}

    baseline, candidate = registry.models.list("tiny")
    assert (baseline.version, candidate.version) == (1, 2)
    assert candidate.parent == baseline.ref
    assert result.candidate == candidate.ref
    assert candidate.stage is Stage.STAGING  # the lenient policy passes; promote_to staging
    assert result.passed
    # the fitted temperature travels with the registered artifact
    extra = models.read_spec(candidate.artifact_path).extra
    assert extra["temperature"] == result.outputs["calibrate"]["temperature"] > 0
    assert len(registry.evaluations.list(candidate.ref)) == 1
    assert len(registry.evaluations.list(baseline.ref)) == 1
    gate = registry.gates.latest(candidate.ref)
    assert gate.verdict.value == "pass"
    assert gate.reasons  # every check's reason is stored
    report = json.loads(Path(result.outputs["report"]["json"]).read_text())
    assert report["model"] == "tiny"
    assert report["version"] == 2
    assert result.report.is_file()
    assert registry.audit.verify().ok


def test_unchanged_rerun_reuses_every_expensive_stage(
    config: BastionConfig, registry: Registry
) -> None:
    first = run_pipeline(config, registry=registry, console=_quiet(), progress=False)
    second = run_pipeline(config, registry=registry, console=_quiet(), progress=False)

    assert second.run_id != first.run_id
    for name in TRAINED:
        assert second.status(name) is RunStatus.REUSED, name
    recorded = {s.name: s.status for s in registry.runs.stages(second.run_id)}
    assert all(recorded[name] is RunStatus.REUSED for name in TRAINED)
    assert second.candidate == first.candidate
    # nothing new in the registry: same versions, one evaluation each, one gate decision
    assert [v.ref for v in registry.models.list("tiny")] == ["tiny:1", "tiny:2"]
    assert len(registry.evaluations.list("tiny:2")) == 1
    assert len(registry.gates.list("tiny:2")) == 1


def test_changed_recipe_retrains_only_downstream(
    raw: dict[str, Any], config: BastionConfig, registry: Registry
) -> None:
    run_pipeline(config, registry=registry, console=_quiet(), progress=False)
    changed = parse_config(copy.deepcopy(raw), overrides={"recipe.epochs": 3})
    result = run_pipeline(changed, registry=registry, console=_quiet(), progress=False)

    assert result.status("baseline") is RunStatus.REUSED
    assert result.status("evaluate_baseline") is RunStatus.REUSED
    assert result.status("adversarial_training") is RunStatus.SUCCEEDED
    assert result.status("evaluate_candidate") is RunStatus.SUCCEEDED
    versions = registry.models.list("tiny")
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[2].parent == "tiny:1"  # the same baseline, registered once


def test_without_recipe_the_baseline_is_the_candidate(
    raw: dict[str, Any], registry: Registry
) -> None:
    del raw["recipe"]
    result = run_pipeline(parse_config(raw), registry=registry, console=_quiet(), progress=False)
    assert result.status("adversarial_training") is RunStatus.SKIPPED
    (only,) = registry.models.list("tiny")
    assert only.parent is None
    assert models.read_spec(only.artifact_path).extra["temperature"] > 0
