"""Bastion's adversarial trainers against ART's Madry-PGD trainer: same model, data, epochs.

Why this exists: the training engine claims that its best recipe reaches at least the
robust accuracy of ART's ``AdversarialTrainerMadryPGD`` in at most half of its wall time.
That claim is only worth something measured side by side, so this script trains, on the
8000 MNIST training rows of ``bastion.data``'s ``mnist`` loader (seed 0; 2000 test rows),
one small_cnn per contender from the same initial weights, with the same optimiser (Adam,
constant learning rate), batch size, number of epochs and L∞ budget (ε = 0.3):

* Bastion PGD-AT (Madry et al. 2018), PGD-``steps``, step 2.5·ε/steps, random start;
* Bastion TRADES (Zhang et al. 2019), β = 6, the same inner steps;
* Bastion fast FGSM-RS (Wong et al. 2020), step 1.25·ε, with the overfitting guard;
* Bastion PGD-AT with AWP (Wu et al. 2020), γ = 5e-3, switched on after the first 40 % of
  the epochs (from the first epoch it kept small_cnn at chance on MNIST at ε = 0.3);
* the cheap recipes: Bastion PGD-AT and TRADES with phased exposure (ε ramps from 0 over
  the first 40 % of epochs) and fewer steps (``--fast-steps``, default 3);
* ART 1.20.1 ``AdversarialTrainerMadryPGD`` with ``clip_values=(0, 1)``, ``eps=0.3``,
  ``eps_step=2.5·ε/steps``, ``max_iter=steps``, one random start (ART's default scale is
  0-255; this sets the [0, 1] scale explicitly).

Each trained model is measured on the same 2000 test points: clean accuracy, PGD-50
robust accuracy (Bastion's PGD, random start, step 2.5·ε/50), and Bastion's worst-case
suite robust accuracy (``bastion.evaluate.evaluate``: FGSM, PGD-20, APGD-CE, APGD-T and
Square, each only on the points still standing). Bastion holds 256 of the 8000 training
rows out for its per-epoch PGD check (the guard's held-out batch), so it trains on 7744
rows while ART trains on all 8000.

Wall time is the whole training call (for Bastion that includes its per-epoch checks and
checkpoints). Contenders run in round-robin order, ``--repeats`` times, so load on a shared
machine hits all of them alike; the table shows medians and the ratio to ART's median.

Usage (ART comes from the ``bench`` extra, ``make bench-deps``)::

    python bench/training.py --threads 1 --suite-samples 1000   # the recorded full run
    python bench/training.py --quick --threads 1                 # smoke run, a few minutes

On a machine whose cores are shared, ``--threads 1`` avoids oversubscription, which slows
every contender several-fold. The full run takes hours on two shared CPU cores.

Writes ``bench/results/training.json`` (``--out``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bastion import __version__, attacks, models
from bastion.config import DataConfig, EvaluationConfig, RecipeConfig, ThreatModel, TrainConfig
from bastion.data import Dataset, load_dataset
from bastion.train import fit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EPS = 0.3
SEED = 0


@dataclass
class Settings:
    epochs: int
    steps: int
    fast_steps: int
    batch_size: int
    lr: float
    suite_samples: int | None
    quick: bool


@dataclass
class Outcome:
    name: str
    seconds: list[float] = field(default_factory=list)
    clean: float = float("nan")
    pgd50: float = float("nan")
    suite: float | None = None
    notes: str = ""


def shared_data() -> Path:
    return Path(os.environ.get("BASTION_SHARED_DATA", REPO.parent / "shared" / "data"))


def load(quick: bool) -> Dataset:
    """MNIST's 10k test file split 8000 train / 2000 test under seed 0 (no validation)."""
    data = load_dataset(
        DataConfig(name="mnist", path=shared_data() / "mnist", seed=SEED, val_fraction=0.0)
    )
    if quick:
        data = dataclasses.replace(
            data, train=data.train.subset(slice(0, 1000)), test=data.test.subset(slice(0, 200))
        )
    return data


def fresh_model(data: Dataset) -> nn.Module:
    torch.manual_seed(SEED)
    return models.build("small_cnn", input_shape=data.input_shape, num_classes=10)


# --- contenders ---------------------------------------------------------------------------


def bastion(recipe: dict[str, Any]) -> Callable[[nn.Module, Dataset, Settings], str]:
    def run(model: nn.Module, data: Dataset, s: Settings) -> str:
        train = TrainConfig(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, seed=SEED)
        config = RecipeConfig(eps=EPS, tracking={"mlflow": False}, **recipe)
        with tempfile.TemporaryDirectory(prefix="bastion-bench-") as out:
            result = fit(model, data, train, config, out_dir=out, progress=False)
        events = [f"{e['event']} at epoch {e['epoch']}" for e in result.events]
        return "; ".join(events)

    return run


def art_madry(model: nn.Module, data: Dataset, s: Settings) -> str:
    from art.defences.trainer import AdversarialTrainerMadryPGD
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=s.lr),
        input_shape=tuple(data.input_shape),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    trainer = AdversarialTrainerMadryPGD(
        classifier,
        nb_epochs=s.epochs,
        batch_size=s.batch_size,
        eps=EPS,
        eps_step=2.5 * EPS / s.steps,
        max_iter=s.steps,
        num_random_init=1,
    )
    x, y = data.train.x.astype(np.float32), data.train.y
    trainer.fit(x, np.eye(10, dtype=np.float32)[y])
    return ""


def contenders(s: Settings) -> dict[str, Callable[[nn.Module, Dataset, Settings], str]]:
    steps = {"steps": s.steps}
    ramp = {"epochs": 0.4 * s.epochs, "eps_start": 0.0}
    awp = {"gamma": 5e-3, "warmup_epochs": max(1, round(0.4 * s.epochs)) if s.epochs > 1 else 0}
    return {
        "bastion_pgd_at": bastion({"method": "pgd_at", "attack": steps}),
        "bastion_trades": bastion({"method": "trades", "beta": 6.0, "attack": steps}),
        "bastion_fgsm_rs": bastion({"method": "fgsm_rs"}),
        "bastion_pgd_at_awp": bastion({"method": "pgd_at", "attack": steps, "awp": awp}),
        "bastion_pgd_at_fast": bastion(
            {"method": "pgd_at", "attack": {"steps": s.fast_steps}, "exposure": ramp}
        ),
        "bastion_trades_fast": bastion(
            {"method": "trades", "beta": 6.0, "attack": {"steps": s.fast_steps}, "exposure": ramp}
        ),
        "art_madry_pgd": art_madry,
    }


# --- measurement --------------------------------------------------------------------------


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Any = None) -> float:
    correct = 0
    for start in range(0, len(x), 500):
        xb, yb = x[start : start + 500], y[start : start + 500]
        if attack is not None:
            xb = attack(model, xb, yb)
        with torch.no_grad():
            correct += int((model(xb).argmax(1) == yb).sum())
    return correct / len(x)


def suite_threat(quick: bool) -> ThreatModel:
    steps = 10 if quick else 50
    attacks_ = [
        {"name": "fgsm", "params": {"eps": EPS}},
        {"name": "pgd", "params": {"eps": EPS, "steps": 20}},
        {"name": "apgd_ce", "params": {"eps": EPS, "steps": steps}},
        {"name": "apgd_t", "params": {"eps": EPS, "steps": steps, "n_target_classes": 3}},
        {"name": "square", "params": {"eps": EPS, "n_queries": 200 if quick else 1000}},
    ]
    return ThreatModel.model_validate({"name": "bench-linf-0.3", "image": {"attacks": attacks_}})


def measure(model: nn.Module, data: Dataset, s: Settings, outcome: Outcome) -> None:
    model.eval()
    x, y = data.test.tensors()
    outcome.clean = accuracy(model, x, y)
    pgd50 = attacks.create("pgd", eps=EPS, steps=50, random_start=True, seed=SEED)
    outcome.pgd50 = accuracy(model, x, y, pgd50)
    try:
        from bastion.evaluate import evaluate
    except ImportError:  # the evaluation engine is optional for this script
        return
    config = EvaluationConfig(
        batch_size=500, standalone=False, max_samples=s.suite_samples, seed=SEED
    )
    record = evaluate(model, data.test, suite_threat(s.quick), config)
    outcome.suite = float(record.worst_case_accuracy)


# --- report -------------------------------------------------------------------------------


def table(results: dict[str, Outcome], s: Settings, data: Dataset) -> str:
    art = results.get("art_madry_pgd")
    art_time = statistics.median(art.seconds) if art and art.seconds else None
    lines = [
        f"MNIST {len(data.train)} train / {len(data.test)} test, small_cnn, L∞ ε = {EPS}, "
        f"{s.epochs} epochs, batch {s.batch_size}, "
        f"Adam lr {s.lr}, PGD-{s.steps} for PGD-AT/TRADES/AWP/ART, "
        f"torch threads {torch.get_num_threads()}",
        "",
        "| trainer | wall time (s, median) | × ART time | clean | PGD-50 | suite worst case |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, o in results.items():
        median = statistics.median(o.seconds)
        ratio = f"{median / art_time:.2f}" if art_time else "-"
        suite = "-" if o.suite is None else f"{100 * o.suite:.1f}%"
        lines.append(
            f"| {name} | {median:.1f} | {ratio} | {100 * o.clean:.1f}% | "
            f"{100 * o.pgd50:.1f}% | {suite} |"
        )
    return "\n".join(lines)


def write(
    out: Path, results: dict[str, Outcome], s: Settings, data: Dataset, argv: list[str] | None
) -> None:
    """The results so far as JSON at ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "training",
        "command": " ".join(["python bench/training.py", *(argv or sys.argv[1:])]),
        "settings": dataclasses.asdict(s),
        "eps": EPS,
        "train_rows": len(data.train),
        "test_rows": len(data.test),
        "data_fingerprint": data.fingerprint,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "bastion": __version__,
        "attack_library": attacks.LIBRARY_VERSION,
        "machine": platform.platform(),
        "python": platform.python_version(),
        "results": {
            name: {
                "seconds": o.seconds,
                "median_seconds": statistics.median(o.seconds),
                "clean_accuracy": o.clean,
                "pgd50_accuracy": o.pgd50,
                "suite_worst_case_accuracy": o.suite,
                "notes": o.notes,
            }
            for name, o in results.items()
        },
        "table": table(results, s, data),
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (1000 rows, 1 epoch)")
    parser.add_argument("--epochs", type=int, default=None, help="default 5 (quick: 1)")
    parser.add_argument("--steps", type=int, default=10, help="PGD steps of PGD-AT/TRADES/ART")
    parser.add_argument("--fast-steps", type=int, default=3, help="steps of the cheap recipe")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=1, help="round-robin repetitions")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--suite-samples", type=int, default=None, help="suite on a prefix")
    parser.add_argument("--only", nargs="*", default=None, help="run only these contenders")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "training.json")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    s = Settings(
        epochs=args.epochs if args.epochs is not None else (1 if args.quick else 5),
        steps=args.steps,
        fast_steps=args.fast_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        suite_samples=args.suite_samples,
        quick=args.quick,
    )
    data = load(args.quick)
    runners = contenders(s)
    if args.only:
        runners = {k: v for k, v in runners.items() if k in args.only}
    results = {name: Outcome(name) for name in runners}
    print(
        f"{len(data.train)} training rows, {len(data.test)} test rows, {s.epochs} epochs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        flush=True,
    )
    for repeat in range(args.repeats):
        for name, run in runners.items():
            model = fresh_model(data)
            started = time.perf_counter()
            notes = run(model, data, s)
            seconds = time.perf_counter() - started
            outcome = results[name]
            outcome.seconds.append(seconds)
            outcome.notes = notes
            if repeat == args.repeats - 1:
                measure(model, data, s, outcome)
            print(
                f"[{repeat + 1}/{args.repeats}] {name}: {seconds:.1f}s, clean {outcome.clean:.3f}, "
                f"PGD-50 {outcome.pgd50:.3f}, suite {outcome.suite} {notes}",
                flush=True,
            )
            done = {k: v for k, v in results.items() if v.seconds}
            write(args.out, done, s, data, argv)  # partial results survive a killed run
    print()
    print(table(results, s, data))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
