"""The robustness evaluation: a per-sample worst case over the whole threat model.

A sample counts as robust only if it is classified correctly and survives *every* attack of
the suite, so the headline number is the minimum over attacks per sample, not per attack
(AutoAttack's rule). Attacks run cheapest first (``Attack.cost()``). With
``standalone=False`` each attack sees only the samples still standing, so an expensive
attack like Square is spent on the few points the cheap ones could not break; with
``standalone=True`` (the default) every attack also runs on every clean-correct sample, which
costs more but gives each attack's own accuracy. Both give the same worst case.

The clean pass is run once and its outputs reused for clean accuracy, calibration, the
probability check and the starting point of the worst case; each attack receives only the
indices it must attack, gathered into batches of ``batch_size``. The sanity checks of
:mod:`bastion.evaluate.checks` run on a small probe batch and, for ``black_box_stronger``,
on the per-sample outcomes (in lazy mode the comparable gradient attacks that came after a
gradient-free one are re-run on just the samples it broke, so the check means the same in
both modes).

All randomness (the model's own, if any, and every attack's default seed) is derived from
``config.seed`` inside a forked RNG, so a run is reproducible and the caller's global RNG
state is left as it was.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import Tensor, nn

from bastion import __version__ as bastion_version
from bastion import attacks
from bastion.attacks import ImageAttack, Model
from bastion.config import Channel, EvaluationConfig, ThreatModel
from bastion.data import Dataset, Split
from bastion.errors import BastionError, EvaluationError
from bastion.evaluate import checks
from bastion.evaluate.checks import EvaluationWarning, Flag
from bastion.evaluate.latency import measure_latency
from bastion.evaluate.metrics import per_class_accuracy, reliability_from_logits
from bastion.evaluate.record import (
    SCHEMA_VERSION,
    AttackResult,
    ClassResult,
    EvaluationRecord,
)
from bastion.evaluate.suite import SuiteEntry, build_entries, order_by_cost

__all__ = ["PROBE_SIZE", "evaluate"]

#: samples used by the gradient and randomness checks
PROBE_SIZE = 128

Advance = Callable[[int], None]


@dataclass(frozen=True, kw_only=True)
class _Target:
    split: Split
    dataset: str | None
    fingerprint: str | None
    classes: tuple[str, ...] | None
    channel: Channel


@dataclass(frozen=True, kw_only=True)
class _Outcome:
    entry: SuiteEntry
    attacked: Tensor  # bool (N,): samples this attack ran on
    broken: Tensor  # bool (N,): samples it fooled
    seconds: float


@dataclass(frozen=True, kw_only=True)
class _SuiteRun:
    outcomes: list[_Outcome]
    results: list[AttackResult]
    standing: Tensor  # bool (N,): clean-correct and unbroken by every attack
    worst_logits: Tensor  # outputs on each sample's worst-case input


def evaluate(
    model: Model,
    data: Dataset | Split,
    threat_model: ThreatModel,
    config: EvaluationConfig | None = None,
    *,
    progress: bool = False,
    source: str | None = None,
) -> EvaluationRecord:
    """Evaluate ``model`` against ``threat_model`` on ``data`` (a dataset's test split, or a
    split) and return the record. ``source`` names the threat model's file in config errors.

    Raises :class:`~bastion.errors.ConfigError` for an attack the suite cannot build and
    :class:`~bastion.errors.EvaluationError` when the data or model cannot be evaluated.
    Every sanity flag raised is warned as :class:`EvaluationWarning` and kept in the record.
    """
    config = config if config is not None else EvaluationConfig()
    target = _resolve(data)
    if target.channel is not Channel.IMAGE:
        raise EvaluationError(
            f"evaluation of the {target.channel.value} channel is not supported; "
            "only image data can be evaluated"
        )
    entries = order_by_cost(
        build_entries(threat_model, target.channel, source=source, seed=config.seed)
    )
    split = target.split
    if config.max_samples is not None and config.max_samples < len(split):
        split = split.subset(slice(0, config.max_samples))
    x, y = split.tensors()
    ids = np.asarray(split.ids, dtype=np.int64)
    _check_inputs(x, y)
    device = _device_of(model)
    started = datetime.now(UTC)
    t_start = time.perf_counter()
    flags: list[Flag] = []
    with _eval_mode(model), torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(config.seed)
        clean_logits, clean_seconds = _predict(model, x, config.batch_size, device)
        classes = _classes(target.classes, clean_logits, y)

        t_checks = time.perf_counter()
        flags += _model_checks(model, x, y, clean_logits, device)
        checks_seconds = time.perf_counter() - t_checks

        correct = clean_logits.argmax(dim=1) == y
        run = _run_suite(model, entries, x, y, ids, correct, clean_logits, config, device, progress)

        t_checks = time.perf_counter()
        flags += _black_box_checks(
            model, run.outcomes, x, y, ids, config.batch_size, device, len(classes)
        )
        if not entries:
            flags.append(checks.empty_suite(target.channel.value))
        checks_seconds += time.perf_counter() - t_checks

        latency = measure_latency(
            model,
            x,
            samples=config.latency_samples,
            batched_seconds=clean_seconds,
            batched_count=len(y),
            batch_size=config.batch_size,
            device=device,
        )

    robust = run.standing.numpy()
    correct_np = correct.numpy()
    counts = np.bincount(y.numpy(), minlength=len(classes))
    clean_per_class = per_class_accuracy(correct_np, y.numpy(), len(classes))
    robust_per_class = per_class_accuracy(robust, y.numpy(), len(classes))
    record = EvaluationRecord(
        schema_version=SCHEMA_VERSION,
        started_at=started.isoformat(timespec="milliseconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        seconds=time.perf_counter() - t_start,
        bastion_version=bastion_version,
        torch_version=str(torch.__version__),
        torch_threads=torch.get_num_threads(),
        attack_library_version=attacks.LIBRARY_VERSION,
        attack_manifest_digest=attacks.manifest_digest(),
        threat_model=threat_model.name,
        threat_model_fingerprint=threat_model.fingerprint(),
        channel=target.channel,
        dataset=target.dataset,
        dataset_fingerprint=target.fingerprint,
        config=config,
        n_samples=len(y),
        classes=classes,
        clean_accuracy=float(correct_np.mean()),
        worst_case_accuracy=float(robust.mean()),
        attacks=tuple(run.results),
        calibration_clean=reliability_from_logits(clean_logits, y, config.ece_bins),
        calibration_adversarial=reliability_from_logits(run.worst_logits, y, config.ece_bins),
        per_class=tuple(
            ClassResult(label=label, count=int(c), clean_accuracy=ca, robust_accuracy=ra)
            for label, c, ca, ra in zip(
                classes, counts, clean_per_class, robust_per_class, strict=True
            )
        ),
        latency=latency,
        flags=tuple(flags),
        checks_seconds=checks_seconds,
        sample_ids=tuple(ids.tolist()),
        robust_mask=tuple(robust.tolist()),
    )
    for flag in flags:
        warnings.warn(EvaluationWarning(flag), stacklevel=2)
    return record


def _run_suite(
    model: Model,
    entries: list[SuiteEntry],
    x: Tensor,
    y: Tensor,
    ids: np.ndarray,
    correct: Tensor,
    clean_logits: Tensor,
    config: EvaluationConfig,
    device: torch.device,
    progress: bool,
) -> _SuiteRun:
    """Run the attacks in order; each on the clean-correct samples (standalone) or on those
    still standing (lazy)."""
    standing = correct.clone()
    broken_any = torch.zeros_like(correct)
    worst_logits = clean_logits.clone()
    outcomes: list[_Outcome] = []
    results: list[AttackResult] = []
    width = clean_logits.shape[1]
    with _progress_bar(progress) as start_task:
        for entry in entries:
            idx = (correct if config.standalone else standing).nonzero().squeeze(1)
            advance = start_task(entry.label, int(idx.numel()))
            t0 = time.perf_counter()
            adv_logits = _attack_points(
                model, entry, x, y, idx, config.batch_size, device, advance, width
            )
            seconds = time.perf_counter() - t0
            fooled = adv_logits.argmax(dim=1) != y[idx]
            # a sample's worst-case input: its first successful adversarial example, else the
            # last attacked version
            fresh = ~broken_any[idx]
            worst_logits[idx[fresh]] = adv_logits[fresh]
            broken = torch.zeros_like(correct)
            broken[idx[fooled]] = True
            attacked = torch.zeros_like(correct)
            attacked[idx] = True
            broken_any |= broken
            standing &= ~broken
            outcome = _Outcome(entry=entry, attacked=attacked, broken=broken, seconds=seconds)
            outcomes.append(outcome)
            results.append(_result(outcome, correct, standing, ids, config.standalone))
    return _SuiteRun(
        outcomes=outcomes, results=results, standing=standing, worst_logits=worst_logits
    )


# -- inputs ---------------------------------------------------------------------------------


def _resolve(data: Dataset | Split) -> _Target:
    if isinstance(data, Dataset):
        return _Target(
            split=data.test,
            dataset=data.name,
            fingerprint=data.fingerprint,
            classes=tuple(data.classes),
            channel=Channel(data.modality),
        )
    if isinstance(data, Split):
        return _Target(
            split=data, dataset=None, fingerprint=None, classes=None, channel=Channel.IMAGE
        )
    raise EvaluationError(
        f"data must be a bastion.data.Dataset or Split; got {type(data).__name__}"
    )


def _check_inputs(x: Tensor, y: Tensor) -> None:
    if x.shape[0] == 0:
        raise EvaluationError("there are no samples to evaluate (the split is empty)")
    if x.dim() < 2:
        raise EvaluationError(f"inputs must be a batch (N, ...); got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise EvaluationError("the inputs contain NaN or inf")
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        raise EvaluationError(
            f"image inputs must be in [0, 1]; got values in [{low}, {high}] "
            "(scale the data; put normalisation inside the model)"
        )
    if int(y.min()) < 0:
        raise EvaluationError(f"labels must be non-negative class indices; got {int(y.min())}")


def _classes(declared: tuple[str, ...] | None, logits: Tensor, y: Tensor) -> tuple[str, ...]:
    width = int(logits.shape[1])
    if declared is not None and len(declared) != width:
        raise EvaluationError(
            f"the model outputs {width} classes but the dataset has {len(declared)} "
            f"({', '.join(declared[:10])}{', ...' if len(declared) > 10 else ''})"
        )
    if int(y.max()) >= width:
        raise EvaluationError(
            f"label {int(y.max())} is out of range for a model with {width} outputs"
        )
    return declared if declared is not None else tuple(str(i) for i in range(width))


# -- model plumbing -------------------------------------------------------------------------


def _device_of(model: Model) -> torch.device:
    if isinstance(model, nn.Module):
        for tensor in (*model.parameters(), *model.buffers()):
            return tensor.device
    return torch.device("cpu")


def _rng_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


@contextmanager
def _eval_mode(model: Model) -> Iterator[None]:
    module = model if isinstance(model, nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    try:
        yield
    finally:
        if module is not None:
            module.train(was_training)


def _predict(
    model: Model, x: Tensor, batch_size: int, device: torch.device
) -> tuple[Tensor, float]:
    """Outputs on every row of ``x`` (float32, CPU) and the wall time of the pass."""
    parts = []
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            parts.append(_outputs(model, x[i : i + batch_size].to(device)))
    seconds = time.perf_counter() - start
    return torch.cat(parts), seconds


def _outputs(model: Model, xb: Tensor) -> Tensor:
    try:
        out = model(xb)
    except BastionError:
        raise
    except Exception as exc:
        raise EvaluationError(f"the model failed on a batch of inputs: {exc}") from exc
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != xb.shape[0]:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise EvaluationError(
            f"the model must map a batch of {xb.shape[0]} inputs to outputs (N, classes); "
            f"got {shape}"
        )
    if out.shape[1] < 2:
        raise EvaluationError(f"the model must output at least 2 classes; got {out.shape[1]}")
    if not torch.isfinite(out).all():
        raise EvaluationError("the model produced NaN or inf outputs")
    return out.detach().float().cpu()


def _attack_points(
    model: Model,
    entry: SuiteEntry,
    x: Tensor,
    y: Tensor,
    idx: Tensor,
    batch_size: int,
    device: torch.device,
    advance: Advance,
    width: int,
) -> Tensor:
    """Outputs of ``model`` on ``entry``'s adversarial examples of the rows ``idx``."""
    attack = entry.attack
    if not isinstance(attack, ImageAttack):
        raise EvaluationError(f"attack {entry.label!r} is not an image attack")
    parts = []
    for start in range(0, idx.numel(), batch_size):
        chunk = idx[start : start + batch_size]
        xb, yb = x[chunk].to(device), y[chunk].to(device)
        try:
            x_adv = attack(model, xb, yb)
        except BastionError:
            raise
        except Exception as exc:
            raise EvaluationError(
                f"attack {entry.label!r} failed on the model: {type(exc).__name__}: {exc}"
            ) from exc
        with torch.no_grad():
            parts.append(_outputs(model, x_adv))
        advance(int(chunk.numel()))
    if not parts:
        return torch.empty((0, width))
    return torch.cat(parts)


# -- results and checks ---------------------------------------------------------------------


def _result(
    outcome: _Outcome, correct: Tensor, standing: Tensor, ids: np.ndarray, standalone: bool
) -> AttackResult:
    n = correct.numel()
    entry, broken = outcome.entry, outcome.broken
    attack = entry.attack
    return AttackResult(
        label=entry.label,
        name=attack.name,
        version=attack.version,
        params=attack.get_params(),
        norm=attack.norm,
        budget=attack.budget,
        uses_gradients=attack.uses_gradients,
        cost=float(attack.cost()),
        attacked=int(outcome.attacked.sum()),
        success_count=int(broken.sum()),
        robust_accuracy=float((correct & ~broken).sum()) / n if standalone else None,
        cumulative_accuracy=float(standing.sum()) / n,
        seconds=outcome.seconds,
        broken_ids=tuple(ids[broken.numpy()].tolist()),
    )


def _model_checks(
    model: Model, x: Tensor, y: Tensor, clean_logits: Tensor, device: torch.device
) -> list[Flag]:
    flags: list[Flag] = []
    probability = checks.check_probability_outputs(clean_logits)
    if probability is not None:
        flags.append(probability)
    probe_x = x[:PROBE_SIZE].to(device)
    probe_y = y[:PROBE_SIZE].to(device)
    gradient_flags, outputs = checks.check_gradients(model, probe_x, probe_y)
    flags += gradient_flags
    randomized = checks.check_randomized(model, probe_x, outputs)
    if randomized is not None:
        flags.append(randomized)
    return flags


def _black_box_checks(
    model: Model,
    outcomes: list[_Outcome],
    x: Tensor,
    y: Tensor,
    ids: np.ndarray,
    batch_size: int,
    device: torch.device,
    width: int,
) -> list[Flag]:
    """``black_box_stronger``: points a gradient-free attack broke that every comparable
    gradient attack failed on. Gradient attacks that never saw such points (lazy mode, they
    ran later) are run on just those points first."""
    flags: list[Flag] = []
    for black in outcomes:
        whites = [
            w for w in outcomes if checks.comparable_white_box(black.entry.attack, w.entry.attack)
        ]
        if not whites:
            continue
        survivors = black.broken.clone()
        for white in whites:
            survivors &= ~white.broken
        for white in whites:
            unseen = survivors & ~white.attacked
            if not unseen.any():
                continue
            idx = unseen.nonzero().squeeze(1)
            logits = _attack_points(
                model, white.entry, x, y, idx, batch_size, device, _ignore, width
            )
            survivors[idx[logits.argmax(dim=1) != y[idx]]] = False
        flag = checks.black_box_stronger(
            black.entry.label,
            [w.entry.label for w in whites],
            ids[survivors.numpy()].tolist(),
            len(ids),
        )
        if flag is not None:
            flags.append(flag)
    return flags


def _ignore(_n: int) -> None:
    return None


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[str, int], Advance]]:
    """Yields ``start(label, total) -> advance(n)``: one Rich task per attack when enabled."""
    if not enabled:
        yield lambda _label, _total: lambda _n: None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )

    def start(label: str, total: int) -> Advance:
        task = bar.add_task(label, total=total)
        return lambda n: bar.advance(task, n)

    with bar:
        yield start
