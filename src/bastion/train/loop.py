"""The one training loop every method shares: clean training, PGD-AT, TRADES, MART and fast
FGSM-RS differ only in their perturbation (:mod:`~bastion.train.perturb`) and their loss
(:mod:`~bastion.train.objectives`); schedules, weight averaging, AWP, checkpoints, the
overfitting guard, distributed data parallelism, progress and tracking are written once here.

Determinism is a design rule, not a test accident: the batch order comes from the sampler
seeded by ``(seed, epoch)``, each batch's attack seed from ``(seed, epoch, step, rank)``,
every schedule from the fractional epoch, and the global generators are saved in every
checkpoint. A resumed run therefore retraces the uninterrupted one exactly (bit for bit on a
CPU with a fixed thread count).

Faults: SIGINT/SIGTERM (Ctrl-C) stop at the next batch boundary, save the exact position
and re-raise :class:`KeyboardInterrupt`; a non-finite loss raises
:class:`~bastion.errors.TrainingError` before the bad update is applied, leaving the last
good checkpoint as it was; a run killed outright resumes from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim import SGD, Adam, Optimizer
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DistributedSampler, TensorDataset

from bastion import attacks, models
from bastion.config.model import TrainConfig
from bastion.config.recipe import RecipeConfig
from bastion.config.threat import ThreatModel
from bastion.data import Dataset
from bastion.errors import ConfigError, TrainingError
from bastion.train import checkpoint as ckpt
from bastion.train import distributed as dd
from bastion.train.awp import WeightPerturbation
from bastion.train.guard import Check, GuardState, assess, run_check
from bastion.train.objectives import Objective
from bastion.train.perturb import FALLBACK_LEVELS, Perturber
from bastion.train.plan import Mode, Plan, resolve_plan
from bastion.train.progress import ProgressView
from bastion.train.schedules import Ramp, lr_lambda
from bastion.train.tracking import MlflowTracker, write_metrics

__all__ = ["StepEvent", "TrainResult", "fit", "weights_digest"]

log = logging.getLogger("bastion.train")

MODEL_DIR = "model"
SUMMARY_FILE = "train.json"


@dataclass(frozen=True)
class StepEvent:
    """Passed to ``on_step`` after each completed optimiser step."""

    epoch: int  # 0-based epoch being trained
    step: int  # batches of this epoch done, 1-based
    steps: int  # batches per epoch
    loss: float


@dataclass
class TrainResult:
    """What a finished run produced. ``model`` is in eval mode (the weight average when the
    recipe asks for EMA); ``artifact`` is the saved model folder (``None`` when
    ``fit`` was not told the architecture, or on ranks other than 0)."""

    model: nn.Module
    plan: Plan
    history: list[dict[str, Any]]
    out_dir: Path
    artifact: Path | None
    wall_time_s: float
    weights_sha256: str
    rank_digests: list[str]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        """The last kept epoch's metrics."""
        kept = [r for r in self.history if not r.get("rolled_back")]
        return kept[-1] if kept else {}


def weights_digest(model: nn.Module) -> str:
    """sha256 over the state dict (names, dtypes, shapes and bytes), in key order."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def fit(
    model: nn.Module,
    dataset: Dataset,
    train_config: TrainConfig,
    recipe: RecipeConfig | None = None,
    threat_model: ThreatModel | None = None,
    *,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    architecture: str | None = None,
    arguments: Mapping[str, Any] | None = None,
    on_step: Callable[[StepEvent], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset.train``: cleanly when ``recipe`` is ``None``, otherwise
    adversarially as the recipe says, against ``threat_model``'s L∞ budget.

    Every epoch writes a checkpoint into ``out_dir/checkpoints`` and a line into
    ``out_dir/metrics.jsonl``. At the end the model artifact goes to ``out_dir/model``
    (when ``architecture`` is given; ``arguments`` are its builder arguments) and a summary
    to ``out_dir/train.json``. ``resume=True`` continues from the newest checkpoint in
    ``out_dir``; without it, a folder that already holds a run is refused.

    Under ``torchrun`` (an initialised process group) the model is wrapped in
    DistributedDataParallel, ``batch_size`` is the global batch, and only rank 0 writes.
    """
    plan = resolve_plan(train_config, recipe, threat_model)
    trainer = _Trainer(
        model,
        dataset,
        plan,
        out_dir=Path(out_dir),
        progress=progress,
        architecture=architecture,
        arguments=dict(arguments or {}),
        on_step=on_step,
        on_epoch=on_epoch,
    )
    return trainer.run(resume=resume)


@dataclass
class _Meters:
    """Running sums of one epoch on one rank."""

    loss: float = 0.0
    n: int = 0
    clean_correct: int = 0
    clean_n: int = 0
    adv_correct: int = 0
    adv_n: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)

    def tensor(self) -> Tensor:
        values = [self.loss, self.n, self.clean_correct, self.clean_n, self.adv_correct, self.adv_n]
        return torch.tensor(values, dtype=torch.float64)

    @staticmethod
    def ratio(a: float, b: float) -> float | None:
        return a / b if b else None


class _Stop:
    """Turns the first SIGINT/SIGTERM into a flag read at the next batch boundary; a second
    one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        name = signal.Signals(signum).name
        log.warning("stopping after this batch (%s); press Ctrl-C again to abort", name)

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def _batch_seed(seed: int, epoch: int, step: int, rank: int) -> int:
    words = np.random.SeedSequence([seed, epoch, step, rank]).generate_state(1)
    return int(words[0]) & 0x7FFFFFFF


class _Trainer:
    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        plan: Plan,
        *,
        out_dir: Path,
        progress: bool,
        architecture: str | None,
        arguments: dict[str, Any],
        on_step: Callable[[StepEvent], None] | None,
        on_epoch: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.plan = plan
        self.dataset = dataset
        self.out_dir = out_dir
        self.architecture = architecture
        self.arguments = arguments
        self.on_step = on_step
        self.on_epoch = on_epoch
        self.ctx = dd.current()
        self.raw = model
        params = list(model.parameters())
        if not params:
            raise TrainingError("the model has no parameters to train")
        self.device = params[0].device
        self._load_data()
        world = self.ctx.world_size
        if plan.batch_size % world:
            raise ConfigError(
                f"batch size {plan.batch_size} is not divisible by the {world} processes",
                path="recipe.batch_size" if plan.adversarial else "train.batch_size",
            )
        self.local_batch = plan.batch_size // world
        self.sampler: DistributedSampler[Any] = DistributedSampler(
            TensorDataset(self.y_train),
            num_replicas=world,
            rank=self.ctx.rank,
            shuffle=True,
            seed=plan.seed,
            drop_last=False,
        )
        self.steps = max(1, math.ceil(self.sampler.num_samples / self.local_batch))
        self.optimizer = self._optimizer()
        self.scheduler = LambdaLR(self.optimizer, lr_lambda(plan.schedule, plan.epochs, self.steps))
        self.ema: AveragedModel | None = None
        if plan.ema_decay is not None:
            average = get_ema_multi_avg_fn(plan.ema_decay)  # type: ignore[no-untyped-call]
            self.ema = AveragedModel(model, multi_avg_fn=average, use_buffers=True)
        self.net: nn.Module = model
        if self.ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(model, device_ids=device_ids)
        self.objective = Objective(plan.mode, plan.beta)
        self.perturber = Perturber(plan) if plan.adversarial else None
        self.ramp = Ramp(plan.exposure, plan.eps) if plan.eps is not None else None
        self.awp = WeightPerturbation(model, self.objective, plan.awp.gamma) if plan.awp else None
        self.guard = GuardState()
        self.history: list[dict[str, Any]] = []
        self.epoch = 0
        self.step = 0
        self.meters = _Meters()
        self.elapsed = 0.0
        self.mlflow_run: str | None = None
        self.stop = _Stop()
        self.tracker = MlflowTracker(plan.tracking, active=self.ctx.is_main)
        self.view = ProgressView(
            enabled=progress and self.ctx.is_main,
            epochs=plan.epochs,
            steps=self.steps,
            label=plan.mode.value,
        )

    # ------------------------------------------------------------------ set-up
    def _load_data(self) -> None:
        ds, plan = self.dataset, self.plan
        if plan.adversarial and str(ds.modality) != "image":
            raise ConfigError(
                f"adversarial recipes train image models; dataset {ds.name!r} is {ds.modality}",
                path="recipe",
            )
        x, y = ds.train.tensors()
        if len(y) == 0:
            raise TrainingError(f"dataset {ds.name!r} has an empty training split")
        if len(ds.val) > 0:
            xv, yv = ds.val.tensors()
        else:  # hold the check batch out of the training data
            hold = min(plan.check.samples, max(1, len(y) // 10))
            log.warning(
                "dataset %r has no validation split; holding out %d training rows", ds.name, hold
            )
            x, y, xv, yv = x[:-hold], y[:-hold], x[-hold:], y[-hold:]
            if len(y) == 0:
                raise TrainingError(
                    f"dataset {ds.name!r} has {hold} training row(s) and no validation split: "
                    "nothing is left to train on after holding out the check batch"
                )
        n = min(plan.check.samples, len(yv))
        self.x_train, self.y_train = x, y
        self.x_check, self.y_check = xv[:n].to(self.device), yv[:n].to(self.device)

    def _optimizer(self) -> Optimizer:
        plan = self.plan
        params = [p for p in self.raw.parameters() if p.requires_grad]
        if plan.optimizer == "sgd":
            return SGD(
                params,
                lr=plan.lr,
                momentum=plan.momentum,
                nesterov=plan.nesterov and plan.momentum > 0,
                weight_decay=plan.weight_decay,
            )
        return Adam(params, lr=plan.lr, weight_decay=plan.weight_decay)

    # ------------------------------------------------------------------ state
    def _state(self, *, rng: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "fingerprint": self.plan.fingerprint(),
            "data_fingerprint": self.dataset.fingerprint,
            "epoch": self.epoch,
            "step": self.step,
            "world_size": self.ctx.world_size,
            "model": self.raw.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "level": self.perturber.level if self.perturber is not None else 0,
            "guard": self.guard.to_dict(),
            "history": self.history,
            "meters": dd.all_gather_object(self.meters.as_dict()) if self.step else None,
            "rng": rng,
            "elapsed": self.elapsed,
            "mlflow_run": self.mlflow_run,
        }

    def _save(self, path: Path) -> None:
        """Every rank contributes its generators; rank 0 writes."""
        rng = dd.all_gather_object(ckpt.rng_state())
        state = self._state(rng=rng)
        if self.ctx.is_main:
            ckpt.save_checkpoint(path, state)

    def _restore(self, state: dict[str, Any], *, position: bool = True) -> None:
        """Load a checkpoint's training state; with ``position=False`` (a rollback) the
        history and the guard's memory are kept rather than rewound."""
        self.raw.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        rngs = state["rng"]
        rank = self.ctx.rank if len(rngs) == self.ctx.world_size else 0
        ckpt.set_rng_state(rngs[rank])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        if not position:
            return
        if self.perturber is not None:
            self.perturber.level = int(state["level"])
        self.guard = GuardState.from_dict(state["guard"])
        self.history = list(state["history"])
        meters = state["meters"]
        self.meters = _Meters(**meters[rank]) if meters else _Meters()
        self.elapsed = float(state["elapsed"])
        self.mlflow_run = state["mlflow_run"]

    def _prepare(self, resume: bool) -> None:
        existing = ckpt.list_checkpoints(self.out_dir)
        if resume:
            found = ckpt.find_latest(self.out_dir)
            if found is None:
                raise TrainingError(
                    f"--resume: no readable checkpoint in {ckpt.checkpoint_dir(self.out_dir)}"
                )
            path, state = found
            if state["fingerprint"] != self.plan.fingerprint():
                raise TrainingError(
                    f"cannot resume from {path}: it was written by a different recipe or "
                    "training configuration (epochs, schedule, method, budget, seed ...); "
                    "train into a new folder instead"
                )
            if state["data_fingerprint"] != self.dataset.fingerprint:
                raise TrainingError(
                    f"cannot resume from {path}: it was trained on different data "
                    f"(fingerprint {state['data_fingerprint'][:12]}…, now "
                    f"{self.dataset.fingerprint[:12]}…)"
                )
            if int(state["world_size"]) != self.ctx.world_size:
                log.warning(
                    "resuming a %s-process run on %s processes: the batch order changes",
                    state["world_size"],
                    self.ctx.world_size,
                )
            self._restore(state)
            log.info("resumed from %s (epoch %d, batch %d)", path, self.epoch, self.step)
            self.view.note(f"resumed from {path} at epoch {self.epoch}, batch {self.step}")
            return
        if existing:
            raise TrainingError(
                f"{self.out_dir} already holds a training run ({existing[-1].name}); pass "
                "--resume to continue it, or choose another output folder"
            )
        dd.barrier()  # nobody may see rank 0's first checkpoint as "existing"
        self._save(ckpt.epoch_path(self.out_dir, 0))

    # ------------------------------------------------------------------ run
    def run(self, *, resume: bool) -> TrainResult:
        tracker = self.tracker
        with self.stop, self.view:
            self._prepare(resume)
            tracker.start(self.out_dir.name, self.plan.describe(), run_id=self.mlflow_run)
            self.mlflow_run = tracker.run_id
            status = "FAILED"
            try:
                self._train()
                result = self._finish()
                status = "FINISHED"
                return result
            except KeyboardInterrupt:
                status = "KILLED"
                raise
            finally:
                if status != "FINISHED":
                    tracker.finish([], status=status)

    def _train(self) -> None:
        plan = self.plan
        while self.epoch < plan.epochs:
            started = time.perf_counter()
            self._train_epoch()
            record = self._end_epoch(time.perf_counter() - started)
            if record is None:
                continue  # rolled back: the epoch is trained again
            if self.epoch < plan.epochs and self._stop_requested():
                raise KeyboardInterrupt

    def _train_epoch(self) -> None:
        epoch = self.epoch
        self.sampler.set_epoch(epoch)
        order = torch.tensor(list(iter(self.sampler)), dtype=torch.int64)
        batches = torch.split(order, self.local_batch)
        self.view.start_epoch(epoch, self.step)
        self.raw.train()
        while self.step < self.steps:
            loss = self._train_step(epoch, self.step, batches[self.step])
            self.step += 1
            if self.on_step is not None:
                self.on_step(StepEvent(epoch, self.step, self.steps, loss))
            if self._stop_requested():
                self._interrupt()

    def _stop_requested(self) -> bool:
        flag = torch.tensor([1.0 if self.stop.requested else 0.0])
        return bool(dd.all_reduce_max(flag).item() > 0)

    def _interrupt(self) -> None:
        if self.ctx.distributed:
            log.warning("interrupted; resume continues from the last epoch checkpoint")
        else:
            path = ckpt.checkpoint_dir(self.out_dir) / ckpt.INTERRUPTED
            self._save(path)
            self.view.note(f"interrupted: saved {path} (epoch {self.epoch + 1}, batch {self.step})")
        raise KeyboardInterrupt

    def _train_step(self, epoch: int, step: int, index: Tensor) -> float:
        plan = self.plan
        x = self.x_train[index].to(self.device)
        y = self.y_train[index].to(self.device)
        t = epoch + step / self.steps
        k = 0
        x_adv = x
        meters = self.meters
        if self.perturber is not None and self.ramp is not None:
            eps = self.ramp.eps(t)
            k = round(self.ramp.adv_fraction(t) * x.shape[0])
            seed = _batch_seed(plan.seed, epoch, step, self.ctx.rank)
            if k:
                attacked = self.perturber(self.raw, x[:k], y[:k], eps=eps, seed=seed)
                x_adv = torch.cat([attacked, x[k:]])
            if plan.clean_metrics and plan.mode in (Mode.PGD_AT, Mode.FGSM_RS):
                self.raw.eval()
                with torch.no_grad():
                    meters.clean_correct += int((self.raw(x).argmax(1) == y).sum())
                meters.clean_n += x.shape[0]
        self.raw.train()
        awp_on = self.awp is not None and plan.awp is not None and epoch >= plan.awp.warmup_epochs
        diffs = self.awp.perturb(x, x_adv, y, k) if awp_on and self.awp is not None else None
        out = self.objective(self.net, x, x_adv, y, k)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()  # type: ignore[no-untyped-call]
        loss = float(out.loss.detach())
        bad = torch.tensor([0.0 if math.isfinite(loss) else 1.0])
        if bool(dd.all_reduce_max(bad).item() > 0):
            if diffs is not None and self.awp is not None:
                self.awp.restore(diffs)
            self._non_finite(loss, epoch, step)
        if plan.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.raw.parameters(), plan.grad_clip)
        self.optimizer.step()
        if diffs is not None and self.awp is not None:
            self.awp.restore(diffs)
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.raw)
        n = x.shape[0]
        meters.loss += loss * n
        meters.n += n
        if out.clean_logits is not None:
            meters.clean_correct += int((out.clean_logits.argmax(1) == y).sum())
            meters.clean_n += n
        if out.adv_logits is not None and k:
            meters.adv_correct += int((out.adv_logits.argmax(1) == y[:k]).sum())
            meters.adv_n += k
        self.view.advance(
            meters.loss / meters.n,
            _Meters.ratio(meters.clean_correct, meters.clean_n),
            _Meters.ratio(meters.adv_correct, meters.adv_n),
        )
        return loss

    def _non_finite(self, loss: float, epoch: int, step: int) -> None:
        last = ckpt.epoch_path(self.out_dir, epoch)
        where = f"the last good checkpoint, {last}, is kept" if last.exists() else "no checkpoint"
        lr = self.scheduler.get_last_lr()[0]
        value = "on another rank" if math.isfinite(loss) else str(loss)
        raise TrainingError(
            f"non-finite training loss ({value}) at epoch {epoch + 1}, batch {step + 1} of "
            f"{self.steps} (method {self.plan.mode.value}, learning rate {lr:.3g}); this update "
            f"was not applied and {where}. Lower the learning rate or set recipe.grad_clip."
        )

    # ------------------------------------------------------------------ epoch end
    def _check(self) -> Check:
        plan = self.plan
        attack = None
        if plan.mode is Mode.FGSM_RS and self.perturber is not None and plan.eps is not None:
            attack = self.perturber.method_attack(plan.eps, plan.seed)
        check = run_check(
            self.raw,
            self.x_check,
            self.y_check,
            eps=plan.eps,
            steps=plan.check.steps,
            seed=plan.seed,
            training_attack=attack,
        )
        result: Check = dd.broadcast_object(check)  # one decision for every rank
        return result

    def _end_epoch(self, seconds: float) -> dict[str, Any] | None:
        plan = self.plan
        totals = dd.all_reduce_sum(self.meters.tensor()).tolist()
        loss, n, clean_c, clean_n, adv_c, adv_n = totals
        check = self._check()
        t = float(self.epoch + 1)
        self.elapsed += seconds
        record: dict[str, Any] = {
            "epoch": self.epoch + 1,
            "loss": loss / n if n else float("nan"),
            "clean_acc": _Meters.ratio(clean_c, clean_n),
            "adv_acc": _Meters.ratio(adv_c, adv_n),
            **check.as_record(),
            "lr": self.scheduler.get_last_lr()[0],
            "eps": self.ramp.eps(t - 1e-9) if self.ramp is not None else None,
            "adv_fraction": self.ramp.adv_fraction(t - 1e-9) if self.ramp is not None else None,
            "time_s": seconds,
            "samples": int(n),
        }
        if self.perturber is not None and plan.mode is Mode.FGSM_RS:
            record["attack"] = self.perturber.describe_level()
        if plan.awp is not None:
            record["awp"] = self.epoch >= plan.awp.warmup_epochs
        reason = assess(plan.guard, self.guard, check) if plan.guard is not None else None
        if reason is not None:
            record["rolled_back"] = True
            self.history.append(record)
            self.view.end_epoch(record)
            self._rollback(reason)
            return None
        if check.pgd is not None:
            self.guard.best_pgd = max(check.pgd, self.guard.best_pgd or 0.0)
        self.history.append(record)
        self.epoch += 1
        self.step = 0
        self.meters = _Meters()
        self._save(ckpt.epoch_path(self.out_dir, self.epoch))
        if self.ctx.is_main:
            ckpt.prune(self.out_dir, plan.keep_checkpoints)
            write_metrics(self.out_dir, self.history)
            self.tracker.log_epoch(record, step=self.epoch)
        self.view.end_epoch(record)
        if self.on_epoch is not None:
            self.on_epoch(record)
        return record

    def _rollback(self, reason: str) -> None:
        plan = self.plan
        perturber = self.perturber
        if perturber is None or plan.guard is None:  # pragma: no cover - guard implies both
            raise TrainingError(reason)
        failed_epoch = self.epoch + 1
        if self.guard.rollbacks >= plan.guard.max_rollbacks or perturber.level >= FALLBACK_LEVELS:
            raise TrainingError(
                f"catastrophic overfitting at epoch {failed_epoch}: {reason}; it persists after "
                f"{self.guard.rollbacks} rollback(s) (training attack: "
                f"{perturber.describe_level()}). Use method pgd_at or a smaller step."
            )
        path = ckpt.epoch_path(self.out_dir, self.epoch)
        state = dd.broadcast_object(ckpt.load_checkpoint(path) if self.ctx.is_main else None)
        before = perturber.describe_level()
        self._restore(state, position=False)
        self.meters = _Meters()
        perturber.level += 1
        self.guard.rollbacks += 1
        event = {
            "event": "rollback",
            "epoch": failed_epoch,
            "reason": reason,
            "restored": path.name,
            "from": before,
            "to": perturber.describe_level(),
        }
        self.guard.events.append(event)
        message = (
            f"catastrophic overfitting at epoch {failed_epoch}: {reason}. Rolled back to "
            f"{path.name}; training attack now {event['to']} (was {before})"
        )
        log.warning(message)
        self.view.note(f"[yellow]{message}[/yellow]")

    # ------------------------------------------------------------------ finish
    def _final_model(self) -> nn.Module:
        model = self.ema.module if self.ema is not None else self.raw
        model.eval()
        return model

    def _finish(self) -> TrainResult:
        model = self._final_model()
        digest = weights_digest(model)
        digests = [str(d) for d in dd.all_gather_object(digest)]
        if len(set(digests)) != 1:
            raise TrainingError(f"ranks ended with different weights: {digests}")
        artifact: Path | None = None
        history = self.history
        if self.ctx.is_main:
            write_metrics(self.out_dir, history)
            if self.architecture is not None:
                artifact = self._save_artifact(model, self.architecture)
            summary = {
                "plan": self.plan.describe(),
                "epochs": self.plan.epochs,
                "final": next((r for r in reversed(history) if not r.get("rolled_back")), {}),
                "wall_time_s": self.elapsed,
                "weights_sha256": digest,
                "rank_digests": digests,
                "world_size": self.ctx.world_size,
                "events": self.guard.events,
                "artifact": str(artifact) if artifact is not None else None,
                "attack_library_version": attacks.LIBRARY_VERSION,
            }
            ckpt.atomic_write_bytes(
                self.out_dir / SUMMARY_FILE, json.dumps(summary, indent=2, default=str).encode()
            )
            artifacts = [p for p in (artifact, self.out_dir / "metrics.jsonl") if p is not None]
            self.tracker.finish(artifacts)
        dd.barrier()
        return TrainResult(
            model=model,
            plan=self.plan,
            history=list(history),
            out_dir=self.out_dir,
            artifact=artifact,
            wall_time_s=self.elapsed,
            weights_sha256=digest,
            rank_digests=digests,
            events=list(self.guard.events),
        )

    def _save_artifact(self, model: nn.Module, architecture: str) -> Path:
        ds, plan = self.dataset, self.plan
        final: dict[str, Any] = next(
            (r for r in reversed(self.history) if not r.get("rolled_back")), {}
        )
        extra = {
            "training": {
                "method": plan.mode.value,
                "eps": plan.eps,
                "epochs": plan.epochs,
                "plan_fingerprint": plan.fingerprint(),
                "data_fingerprint": ds.fingerprint,
                "dataset": ds.name,
                "attack_library_version": attacks.LIBRARY_VERSION,
                "final": final,
                "events": self.guard.events,
            }
        }
        return models.save(
            model,
            self.out_dir / MODEL_DIR,
            architecture=architecture,
            arguments=self.arguments,
            input_shape=tuple(ds.input_shape),
            classes=list(ds.classes),
            input_scaling=dict(ds.input_scaling),
            extra=extra,
        )
