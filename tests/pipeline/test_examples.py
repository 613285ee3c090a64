"""The shipped examples stay valid: every pipeline file loads and builds its attack suite, the
MNIST data path can be moved on the command line, and the CI workflow gates what it runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bastion.config import load_config
from bastion.evaluate import build_suite

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["digits.yaml", "mnist.yaml"])
def test_pipeline_examples_load_and_build(name: str) -> None:
    config = load_config(EXAMPLES / name)
    suite = build_suite(config.threat_model, source=str(EXAMPLES / name))
    assert {"fgsm", "pgd", "apgd_ce", "square"} <= {a.name for a in suite}
    assert config.recipe is not None
    assert config.recipe.method.value == "pgd_at"
    assert config.gate.min_robust_accuracy is not None


def test_mnist_data_path_is_overridable() -> None:
    config = load_config(EXAMPLES / "mnist.yaml")
    assert config.data.path == Path("../shared/data/mnist")
    moved = load_config(EXAMPLES / "mnist.yaml", overrides={"data.path": "/data/mnist"})
    assert moved.data.path == Path("/data/mnist")


def test_ci_workflow_runs_then_gates() -> None:
    workflow = yaml.safe_load((EXAMPLES / "ci-workflow.yml").read_text())
    steps = workflow["jobs"]["gate"]["steps"]
    commands = [step.get("run", "") for step in steps]
    run_at = next(i for i, c in enumerate(commands) if c.startswith("bastion run"))
    gate_at = next(i for i, c in enumerate(commands) if c.startswith("bastion gate"))
    assert run_at < gate_at
    assert "torch==2.13.0" in "\n".join(commands)  # CPU torch before the package
