"""The shared loop: artifacts and metrics, refusing to clobber a run, Ctrl-C saving an exact
position that resumes bit for bit, a non-finite loss stopping cleanly, MLflow logging."""

from __future__ import annotations

import json
import signal
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from bastion import models
from bastion.config import RecipeConfig, TrainConfig
from bastion.data import Dataset
from bastion.errors import TrainingError
from bastion.train import StepEvent, fit, weights_digest
from bastion.train import checkpoint as ckpt

from .helpers import TINY_ARGS, state_equal, tiny_model

TRAIN = TrainConfig(epochs=3, batch_size=64, lr=3e-3, seed=0)


def test_clean_fit_writes_artifact_metrics_and_checkpoints(
    digits_small: Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = fit(
        tiny_model(),
        digits_small,
        TRAIN,
        out_dir=out,
        progress=False,
        architecture="small_cnn",
        arguments=TINY_ARGS,
    )
    assert result.artifact == out / "model"
    loaded = models.load(result.artifact)
    assert state_equal(loaded, result.model)
    assert weights_digest(loaded) == result.weights_sha256
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert lines[-1]["loss"] < lines[0]["loss"]
    assert 0.0 <= lines[-1]["val_clean_acc"] <= 1.0
    assert lines == result.history
    summary = json.loads((out / "train.json").read_text())
    assert summary["weights_sha256"] == result.weights_sha256
    assert summary["plan"]["mode"] == "clean"
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["epoch-0002.pt", "epoch-0003.pt"]
    spec = models.read_spec(result.artifact)
    assert spec.extra["training"]["method"] == "clean"
    assert spec.extra["training"]["data_fingerprint"] == digits_small.fingerprint


def test_an_existing_run_is_not_overwritten_and_resume_needs_one(
    digits_small: Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match="no readable checkpoint"):
        fit(tiny_model(), digits_small, TRAIN, out_dir=out, resume=True, progress=False)
    one = TrainConfig(epochs=1, batch_size=64)
    fit(tiny_model(), digits_small, one, out_dir=out, progress=False)
    with pytest.raises(TrainingError, match="already holds a training run"):
        fit(tiny_model(), digits_small, one, out_dir=out, progress=False)
    other = TrainConfig(epochs=2, batch_size=64)
    with pytest.raises(TrainingError, match="different recipe or training configuration"):
        fit(tiny_model(), digits_small, other, out_dir=out, resume=True, progress=False)


RECIPES = {
    # every piece of state a checkpoint must carry: optimiser momentum, a one-cycle
    # schedule, the EMA, AWP, a ramp of eps and of the adversarial share, gradient clipping
    "pgd_at+awp+ema": RecipeConfig(
        method="pgd_at",
        eps=0.2,
        optimizer="sgd",
        lr=0.05,
        lr_schedule={"kind": "one_cycle", "warmup_epochs": 1},
        exposure={"epochs": 2, "eps_start": 0.05, "adv_fraction_start": 0.5},
        attack={"steps": 2},
        awp={"gamma": 0.01},
        ema={"decay": 0.9},
        grad_clip=5.0,
    ),
    # TRADES with a per-sample worst case over two perturbation types
    "trades+max-mix": RecipeConfig(
        method="trades",
        eps=0.2,
        beta=3.0,
        perturbations={
            "strategy": "max",
            "attacks": [{"name": "pgd", "params": {"steps": 2}}, {"name": "fgsm"}],
        },
    ),
}


@pytest.mark.parametrize("name", list(RECIPES))
def test_ctrl_c_saves_and_resume_matches_an_uninterrupted_run(
    name: str, digits_small: Dataset, tmp_path: Path
) -> None:
    recipe = RECIPES[name]
    reference = fit(
        tiny_model(), digits_small, TRAIN, recipe, out_dir=tmp_path / "ref", progress=False
    )

    def press_ctrl_c(event: StepEvent) -> None:
        if (event.epoch, event.step) == (1, 2):
            signal.raise_signal(signal.SIGINT)

    out = tmp_path / "run"
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        fit(
            tiny_model(),
            digits_small,
            TRAIN,
            recipe,
            out_dir=out,
            progress=False,
            on_step=press_ctrl_c,
        )
    assert signal.getsignal(signal.SIGINT) is handler  # the caller's handler is back
    saved = ckpt.load_checkpoint(out / "checkpoints" / ckpt.INTERRUPTED)
    assert (saved["epoch"], saved["step"]) == (1, 2)
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    # a differently initialised model: everything must come from the checkpoint
    resumed = fit(
        tiny_model(seed=123), digits_small, TRAIN, recipe, out_dir=out, resume=True, progress=False
    )
    assert resumed.weights_sha256 == reference.weights_sha256
    assert state_equal(resumed.model, reference.model)
    assert resumed.history == [
        {**r, "time_s": s["time_s"]}
        for r, s in zip(reference.history, resumed.history, strict=True)
    ]


class _NanAfter(nn.Module):
    """Returns NaN logits from the ``after``-th training-mode forward on."""

    def __init__(self, inner: nn.Module, after: int) -> None:
        super().__init__()
        self.inner = inner
        self.after = after
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.inner(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.after:
                return out * float("nan")
        return out


def test_non_finite_loss_raises_and_keeps_the_last_good_checkpoint(
    digits_small: Dataset, tmp_path: Path
) -> None:
    model = _NanAfter(tiny_model(), after=7)  # 4 batches per epoch: epoch 2, batch 3
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as caught:
        fit(model, digits_small, TRAIN, out_dir=out, progress=False)
    message = str(caught.value)
    assert "non-finite training loss (nan) at epoch 2, batch 3 of 4" in message
    assert "epoch-0001.pt" in message
    assert "was not applied" in message
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["epoch-0000.pt", "epoch-0001.pt"]
    state = ckpt.load_checkpoint(out / "checkpoints" / "epoch-0001.pt")
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    assert not (out / "model").exists()


class _FakeMlflow(types.ModuleType):
    """Records the calls the tracker makes, like the real client would receive them."""

    def __init__(self) -> None:
        super().__init__("mlflow")
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            if name == "start_run":
                return types.SimpleNamespace(info=types.SimpleNamespace(run_id="run-1"))
            return None

        return record

    def named(self, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(a, k) for n, a, k in self.calls if n == name]


def test_mlflow_gets_params_metrics_and_the_artifact(
    digits_small: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeMlflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    recipe = RecipeConfig(
        method="fgsm_rs", eps=0.1, epochs=2, tracking={"uri": "file:///tmp/x", "experiment": "e"}
    )
    out = tmp_path / "run"
    fit(
        tiny_model(),
        digits_small,
        TRAIN,
        recipe,
        out_dir=out,
        progress=False,
        architecture="small_cnn",
        arguments=TINY_ARGS,
    )
    assert fake.named("set_tracking_uri") == [(("file:///tmp/x",), {})]
    assert fake.named("set_experiment") == [(("e",), {})]
    ((params,), _), *_ = fake.named("log_params")
    assert params["mode"] == "fgsm_rs"
    assert params["eps"] == "0.1"
    steps = [k["step"] for _, k in fake.named("log_metrics")]
    assert steps == [1, 2]
    (metrics,), _ = fake.named("log_metrics")[0]
    assert {"loss", "adv_acc", "val_pgd_acc"} <= set(metrics)
    logged = [Path(a[0]).name for a, _ in fake.named("log_artifacts")]
    assert logged == ["model"]
    assert fake.named("end_run") == [((), {"status": "FINISHED"})]


def test_mlflow_can_be_switched_off(
    digits_small: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeMlflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    recipe = RecipeConfig(method="fgsm_rs", eps=0.1, epochs=1, tracking={"mlflow": False})
    fit(tiny_model(), digits_small, TRAIN, recipe, out_dir=tmp_path / "r", progress=False)
    assert fake.calls == []
