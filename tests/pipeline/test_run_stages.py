"""The main job end to end on a tiny pipeline: every stage recorded, outputs registered,
unchanged inputs reused from the stage cache, changed inputs recomputed downstream only."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bastion import models
from bastion.config import BastionConfig, parse_config
from bastion.pipeline import run_pipeline
from bastion.registry import Registry, RunStatus, Stage

CACHED = (
    "baseline",
    "evaluate_baseline",
    "adversarial_training",
    "calibrate",
    "evaluate_candidate",
    "report",
)


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


@pytest.mark.slow
def test_run_then_rerun_then_change_the_recipe(
    raw: dict[str, Any], config: BastionConfig, registry: Registry
) -> None:
    # -- first run: every stage runs, is recorded, and the outputs are registered
    first = run_pipeline(
        config, registry=registry, console=_quiet(), progress=False, promote_production=True
    )

    assert [s.status for s in first.stages] == [RunStatus.SUCCEEDED] * 9
    assert registry.runs.get(first.run_id).status is RunStatus.SUCCEEDED
    recorded = {s.name: s.status for s in registry.runs.stages(first.run_id)}
    assert recorded == {s.name: RunStatus.SUCCEEDED for s in first.stages}
    baseline, candidate = registry.models.list("tiny")
    assert (baseline.version, candidate.version) == (1, 2)
    assert candidate.parent == baseline.ref
    assert first.candidate == candidate.ref
    assert first.passed, first.outputs["gate"]["decision"]["checks"]
    assert candidate.stage is Stage.PRODUCTION  # asked for; the policy alone says staging
    # the fitted temperature travels with the registered artifact
    extra = models.read_spec(candidate.artifact_path).extra
    assert extra["temperature"] == first.outputs["calibrate"]["temperature"]
    assert extra["temperature"] > 0
    gate = registry.gates.latest(candidate.ref)
    assert gate.verdict.value == "pass"
    assert gate.reasons  # every check's reason is stored
    report = json.loads(Path(first.outputs["report"]["json"]).read_text())
    assert report["model"] == "tiny"
    assert report["version"] == 2
    assert first.report.is_file()

    # -- unchanged rerun: nothing expensive runs again, nothing new is registered
    second = run_pipeline(config, registry=registry, console=_quiet(), progress=False)
    assert second.run_id != first.run_id
    recorded = {s.name: s.status for s in registry.runs.stages(second.run_id)}
    for name in CACHED:
        assert second.status(name) is RunStatus.REUSED, name
        assert recorded[name] is RunStatus.REUSED, name
    assert second.candidate == first.candidate
    assert [v.ref for v in registry.models.list("tiny")] == ["tiny:1", "tiny:2"]
    assert len(registry.evaluations.list("tiny:1")) == 1
    assert len(registry.evaluations.list("tiny:2")) == 1
    assert len(registry.gates.list("tiny:2")) == 1

    # -- changed recipe: the baseline and its evaluation are reused, the rest recomputed
    changed = parse_config(copy.deepcopy(raw), overrides={"recipe.epochs": 3})
    third = run_pipeline(changed, registry=registry, console=_quiet(), progress=False)
    assert third.status("baseline") is RunStatus.REUSED
    assert third.status("evaluate_baseline") is RunStatus.REUSED
    assert third.status("adversarial_training") is RunStatus.SUCCEEDED
    assert third.status("evaluate_candidate") is RunStatus.SUCCEEDED
    versions = registry.models.list("tiny")
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[2].parent == "tiny:1"  # the same baseline, registered once
    assert versions[2].stage is Stage.STAGING
    # gated and reported against the version in production
    decision = third.outputs["gate"]["decision"]
    assert third.outputs["gate"]["production"] == "tiny:2"
    assert any(c["name"] == "max_clean_drop" for c in decision["checks"])
    report = json.loads(Path(third.outputs["report"]["json"]).read_text())
    assert report["production"]["model"] == "tiny:2"
    assert registry.audit.verify().ok
