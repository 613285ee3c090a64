"""Bastion's image attacks against their peers, in one process, on the same model and points.

Why this exists: the attack library claims to be as fast as the practical limit and as
strong as AutoAttack for a fraction of its time. Those claims are only worth something
measured side by side, so this script

1. trains (or loads from ``bench/.cache``) a small_cnn on the 8000 non-test MNIST rows of
   ``bastion.data``'s ``mnist`` loader, and times PGD L∞ (ε = 0.3, random start, step
   2.5·ε/steps) at 10 and 40 steps, batch 256, on the same test points: Bastion (default,
   and with ``early_exit=False`` so that it does exactly the hand loop's work), torchattacks,
   ART (``batch_size=256, num_random_init=1``) and a minimal hand-written loop (steps × one
   forward + backward: the practical limit for that work). Contenders run interleaved
   (A B C …, then … C B A) so that load on a shared machine hits all of them alike; medians
   and ratios are reported, with the robust accuracy each reached (equal strength);
2. makes a robust small_cnn with a short PGD adversarial-training loop of its own, and
   compares Bastion's suite (APGD-CE, then APGD-T, then Square, cheapest first, each only
   on the points still standing) with torchattacks' AutoAttack (standard, L∞ ε = 0.3, with
   the paper's budgets set explicitly: APGD-CE 100 iterations, APGD-T 100 iterations × 9
   targets, FAB-T 100 iterations × 9 targets, Square 5000 queries; torchattacks' own
   default is 10 iterations) on the same points: worst-case robust accuracy and wall time.

Targets: Bastion PGD ≥ 0.95× the hand loop and ≥ 1.0× torchattacks; the suite at most 0.5
points of robust accuracy above AutoAttack's, in at most half its wall time.

Usage (peers come from the ``bench`` extra, ``make bench-deps``)::

    python bench/attacks.py            # full run (minutes to train once, then ~15 min)
    python bench/attacks.py --quick    # smoke run on a few points

Writes ``bench/results/attacks.json`` (``--out``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bastion import attacks, models
from bastion.attacks import ImageAttack
from bastion.config import DataConfig
from bastion.data import Dataset, load_dataset

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EPS = 0.3
BATCH = 256

AttackFn = Callable[[Tensor, Tensor], Tensor]


# --- data and models ---------------------------------------------------------------------


def mnist(shared: Path) -> Dataset:
    return load_dataset(DataConfig(name="mnist", path=shared / "mnist", seed=0))


def train_rows(data: Dataset) -> tuple[Tensor, Tensor]:
    """The 8000 non-test rows (train + validation): the benchmark tunes nothing on them."""
    xt, yt = data.train.tensors()
    xv, yv = data.val.tensors()
    return torch.cat([xt, xv]), torch.cat([yt, yv])


def train(data: Dataset, *, epochs: int, adversarial: bool, seed: int = 0) -> nn.Module:
    """Adam, batch 128. ``adversarial``: PGD-AT (Madry et al. 2018) on the *last* PGD-10
    iterate (the library's ``pgd`` keeps the first fooling one, which suits evaluation, not
    training), ε ramped from 0 to 0.3 over the first half of training: a robust MNIST model
    in minutes of CPU, not a state-of-the-art one."""
    torch.manual_seed(seed)
    model = models.build("small_cnn", input_shape=data.input_shape, num_classes=10)
    x, y = train_rows(data)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    batches = -(-len(x) // 128)
    ramp = max(epochs // 2, 1) * batches
    for epoch in range(epochs):
        started = time.perf_counter()
        total = 0.0
        for i, idx in enumerate(torch.randperm(len(x), generator=generator).split(128)):
            xb, yb = x[idx], y[idx]
            if adversarial:
                eps = EPS * min(1.0, (epoch * batches + i + 1) / ramp)
                model.eval()
                xb = hand_pgd(model, eps, 2.5 * eps / 10, 10, seed=epoch * batches + i)(xb, yb)
            model.train()
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        kind = "PGD-AT" if adversarial else "clean"
        seconds = time.perf_counter() - started
        print(f"  {kind} epoch {epoch + 1}/{epochs}: loss {total / len(x):.3f} ({seconds:.0f}s)")
    return model.eval()


def cached_model(data: Dataset, *, kind: str, epochs: int, refresh: bool) -> nn.Module:
    """Train once, then load from ``bench/.cache`` (keyed by data fingerprint and recipe)."""
    key = hashlib.sha256(f"{data.fingerprint}|{kind}|{epochs}|v2".encode()).hexdigest()[:16]
    folder = HERE / ".cache" / f"mnist_small_cnn_{kind}_{key}"
    if folder.is_dir() and not refresh:
        print(f"loading cached {kind} model from {folder.relative_to(REPO)}")
        return models.load(folder)
    print(f"training the {kind} model ({epochs} epochs)")
    model = train(data, epochs=epochs, adversarial=kind == "robust")
    models.save(
        model,
        folder,
        architecture="small_cnn",
        arguments={},
        input_shape=data.input_shape,
        classes=data.classes,
        input_scaling=data.input_scaling,
        extra={"bench": f"{kind}, {epochs} epochs"},
    )
    return model


# --- contenders ----------------------------------------------------------------------------


def hand_pgd(model: nn.Module, eps: float, alpha: float, steps: int, seed: int = 0) -> AttackFn:
    """The practical limit: random start, then steps × (forward, backward, sign step,
    projection), nothing else; returns the last iterate."""
    generator = torch.Generator().manual_seed(seed)

    def run(x: Tensor, y: Tensor) -> Tensor:
        noise = torch.rand(x.shape, generator=generator) * 2 - 1
        x_adv = (x + eps * noise).clamp(0, 1)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), y)
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = torch.min(torch.max(x_adv.detach() + alpha * grad.sign(), x - eps), x + eps)
            x_adv = x_adv.clamp(0, 1)
        return x_adv.detach()

    return run


def image_attack(name: str, **params: Any) -> ImageAttack:
    attack = attacks.create(name, **params)
    if not isinstance(attack, ImageAttack):
        raise TypeError(f"{name} is not an image attack")
    return attack


def bastion_pgd(model: nn.Module, eps: float, alpha: float, steps: int) -> AttackFn:
    attack = image_attack("pgd", eps=eps, steps=steps, step_size=alpha, random_start=True)
    return lambda x, y: attack(model, x, y)


def bastion_pgd_full(model: nn.Module, eps: float, alpha: float, steps: int) -> AttackFn:
    """The same work as the hand loop: every sample takes every step."""
    attack = image_attack(
        "pgd", eps=eps, steps=steps, step_size=alpha, random_start=True, early_exit=False
    )
    return lambda x, y: attack(model, x, y)


def torchattacks_pgd(model: nn.Module, eps: float, alpha: float, steps: int) -> AttackFn:
    import torchattacks

    attack = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
    return lambda x, y: attack(x, y)


def art_pgd(model: nn.Module, eps: float, alpha: float, steps: int) -> AttackFn:
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 28, 28),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    attack = ProjectedGradientDescent(
        classifier,
        norm=np.inf,
        eps=eps,
        eps_step=alpha,
        max_iter=steps,
        num_random_init=1,
        batch_size=BATCH,
        verbose=False,
    )

    def run(x: Tensor, y: Tensor) -> Tensor:
        return torch.from_numpy(attack.generate(x.numpy(), y=y.numpy()))

    return run


CONTENDERS: dict[str, Callable[[nn.Module, float, float, int], AttackFn]] = {
    "bastion": bastion_pgd,
    "bastion_full": bastion_pgd_full,
    "hand_loop": hand_pgd,
    "torchattacks": torchattacks_pgd,
    "art": art_pgd,
}


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        hits = sum(
            int((model(xb).argmax(dim=1) == yb).sum().item())
            for xb, yb in zip(x.split(BATCH), y.split(BATCH), strict=True)
        )
    return hits / max(len(x), 1)


def sweep(fn: AttackFn, x: Tensor, y: Tensor, batch: int) -> tuple[float, Tensor]:
    """Seconds to attack all points in batches of ``batch``, and the adversarial points.
    ART batches internally, so it gets the whole set at once (with batch_size=256)."""
    started = time.perf_counter()
    outputs = [fn(xb, yb) for xb, yb in zip(x.split(batch), y.split(batch), strict=True)]
    return time.perf_counter() - started, torch.cat(outputs)


def throughput(
    model: nn.Module, x: Tensor, y: Tensor, *, steps_list: list[int], repeats: int
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for steps in steps_list:
        alpha = 2.5 * EPS / steps
        fns = {name: make(model, EPS, alpha, steps) for name, make in CONTENDERS.items()}
        times: dict[str, list[float]] = {name: [] for name in fns}
        robust: dict[str, float] = {}
        for name, fn in fns.items():  # warm-up, untimed
            sweep(fn, x[:BATCH], y[:BATCH], BATCH if name != "art" else len(x))
        for r in range(repeats):
            order = list(fns) if r % 2 == 0 else list(reversed(fns))
            for name in order:
                batch = len(x) if name == "art" else BATCH
                seconds, x_adv = sweep(fns[name], x, y, batch)
                times[name].append(seconds)
                robust[name] = accuracy(model, x_adv, y)
            line = ", ".join(f"{n} {len(x) / times[n][-1]:.0f}/s" for n in fns)
            print(f"  PGD-{steps} repeat {r + 1}/{repeats}: {line}", flush=True)
        medians = {name: statistics.median(t) for name, t in times.items()}
        per_second = {name: len(x) / s for name, s in medians.items()}
        results[f"pgd{steps}"] = {
            "steps": steps,
            "step_size": alpha,
            "images_per_second": per_second,
            "median_seconds": medians,
            "all_seconds": times,
            "robust_accuracy": robust,
            "ratio_bastion_over": {
                name: per_second["bastion"] / v
                for name, v in per_second.items()
                if name != "bastion"
            },
        }
    return results


# --- part 2: suite against AutoAttack -------------------------------------------------------


@dataclass(frozen=True)
class SuiteBudget:
    apgd_steps: int
    apgd_t_steps: int
    apgd_t_targets: int
    square_queries: int


class BastionSuite:
    """Cheapest first, each attack only on the points still standing (the evaluation
    engine's worst case, written out here so the timing covers nothing else). Calling it
    maps points to the mask of those that survive every attack; ``stages`` accumulates each
    attack's seconds and survivors."""

    def __init__(self, model: nn.Module, budget: SuiteBudget) -> None:
        self.model = model
        self.suite = sorted(
            [
                image_attack("apgd_ce", eps=EPS, steps=budget.apgd_steps),
                image_attack(
                    "apgd_t",
                    eps=EPS,
                    steps=budget.apgd_t_steps,
                    n_target_classes=budget.apgd_t_targets,
                ),
                image_attack("square", eps=EPS, n_queries=budget.square_queries),
            ],
            key=lambda a: a.cost(),
        )
        self.stages: dict[str, dict[str, Any]] = {
            a.name: {"attack": a.describe(), "seconds": 0.0, "survivors": 0} for a in self.suite
        }

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        model = self.model
        with torch.no_grad():
            standing = torch.cat(
                [
                    model(xb).argmax(dim=1) == yb
                    for xb, yb in zip(x.split(BATCH), y.split(BATCH), strict=True)
                ]
            )
        for attack in self.suite:
            started = time.perf_counter()
            for idx in standing.nonzero().flatten().split(BATCH):
                x_adv = attack(model, x[idx], y[idx])
                with torch.no_grad():
                    fooled = model(x_adv).argmax(dim=1) != y[idx]
                standing[idx[fooled]] = False
            self.stages[attack.name]["seconds"] += time.perf_counter() - started
            self.stages[attack.name]["survivors"] += int(standing.sum())
        return standing


def autoattack(model: nn.Module) -> tuple[Callable[[Tensor, Tensor], Tensor], dict[str, int]]:
    """torchattacks' AutoAttack (standard) with the paper's budgets; the function maps
    points to the mask of those that survive it."""
    import torchattacks
    from torchattacks.attacks.apgd import APGD
    from torchattacks.attacks.apgdt import APGDT
    from torchattacks.attacks.fab import FAB
    from torchattacks.attacks.square import Square

    aa = torchattacks.AutoAttack(
        model, norm="Linf", eps=EPS, version="standard", n_classes=10, seed=0
    )
    apgd, apgdt, fab, square = aa._autoattack.attacks
    kinds = (APGD, APGDT, FAB, Square)
    if not all(isinstance(a, k) for a, k in zip((apgd, apgdt, fab, square), kinds, strict=True)):
        raise RuntimeError("torchattacks' AutoAttack changed its line-up; update the benchmark")
    # torchattacks defaults to 10 iterations; the paper's standard AutoAttack uses 100
    apgd.steps = 100
    apgdt.steps = 100
    apgdt.n_target_classes = 9
    fab.steps = 100
    fab.n_target_classes = 9
    square.n_queries = 5000
    budget = {
        "apgd_ce_steps": apgd.steps,
        "apgd_t_steps": apgdt.steps,
        "apgd_t_targets": apgdt.n_target_classes,
        "fab_t_steps": fab.steps,
        "fab_t_targets": fab.n_target_classes,
        "square_queries": square.n_queries,
    }

    def run(x: Tensor, y: Tensor) -> Tensor:
        survived = []
        for xb, yb in zip(x.split(BATCH), y.split(BATCH), strict=True):
            x_adv = aa(xb, yb)
            with torch.no_grad():
                survived.append(model(x_adv).argmax(dim=1) == yb)
        return torch.cat(survived)

    return run, budget


def suite_vs_autoattack(
    model: nn.Module, x: Tensor, y: Tensor, budget: SuiteBudget, chunks: int
) -> dict[str, Any]:
    """Both on the same points, in ``chunks`` interleaved pieces (ours, AA; AA, ours; …) so
    that a change of load on a shared machine hits both alike."""
    ours = BastionSuite(model, budget)
    theirs, aa_budget = autoattack(model)
    seconds = {"bastion": 0.0, "autoattack": 0.0}
    robust = {"bastion": 0, "autoattack": 0}
    fns: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"bastion": ours, "autoattack": theirs}
    for i, (xc, yc) in enumerate(zip(x.chunk(chunks), y.chunk(chunks), strict=True)):
        order = ["bastion", "autoattack"] if i % 2 == 0 else ["autoattack", "bastion"]
        for name in order:
            started = time.perf_counter()
            standing = fns[name](xc, yc)
            seconds[name] += time.perf_counter() - started
            robust[name] += int(standing.sum())
            print(
                f"  chunk {i + 1}/{chunks} {name}: {int(standing.sum())}/{len(xc)} robust "
                f"({time.perf_counter() - started:.1f}s)",
                flush=True,
            )
    stages = list(ours.stages.values())
    for stage in stages:
        stage["robust_accuracy_after"] = stage.pop("survivors") / len(x)
    return {
        "bastion": {
            "robust_accuracy": robust["bastion"] / len(x),
            "seconds": seconds["bastion"],
            "stages": stages,
        },
        "autoattack": {
            "robust_accuracy": robust["autoattack"] / len(x),
            "seconds": seconds["autoattack"],
            "budget": aa_budget,
        },
    }


# --- report --------------------------------------------------------------------------------


LABELS = {
    "bastion": "Bastion",
    "bastion_full": "Bastion, early_exit=False",
    "hand_loop": "hand loop",
    "torchattacks": "torchattacks",
    "art": "ART",
}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Threads: {result['threads']} · points: {result['throughput_points']} (throughput), "
        f"{result['suite_points']} (suite) · batch {BATCH} · medians of {result['repeats']} "
        "interleaved repeats",
        "",
        "| PGD L∞ ε=0.3, step 2.5ε/steps | steps | images/s | ÷ hand loop | ÷ torchattacks "
        "| robust accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in result["throughput"].values():
        ips = row["images_per_second"]
        for name, label in LABELS.items():
            lines.append(
                f"| {label} | {row['steps']} | {ips[name]:.0f} | "
                f"{ips[name] / ips['hand_loop']:.3f} | {ips[name] / ips['torchattacks']:.3f} | "
                f"{row['robust_accuracy'][name]:.4f} |"
            )
    suite = result.get("suite")
    if suite:
        b, aa = suite["bastion"], suite["autoattack"]
        budget = suite["bastion_budget"]
        lines += [
            "",
            f"Robust small_cnn (PGD-AT in the script), clean accuracy "
            f"{suite['clean_accuracy']:.4f} on the suite points:",
            "",
            "| L∞ ε=0.3 | worst-case robust accuracy | wall time (s) |",
            "|---|---:|---:|",
            f"| Bastion suite (APGD-CE {budget['apgd_steps']}, APGD-T {budget['apgd_t_steps']}×"
            f"{budget['apgd_t_targets']}, Square {budget['square_queries']}) | "
            f"{b['robust_accuracy']:.4f} | {b['seconds']:.1f} |",
            f"| torchattacks AutoAttack standard (APGD-CE 100, APGD-T 100×9, FAB-T 100×9, "
            f"Square 5000) | {aa['robust_accuracy']:.4f} | {aa['seconds']:.1f} |",
            "",
            f"Bastion − AutoAttack: {100 * suite['accuracy_gap']:+.2f} points of robust accuracy; "
            f"wall time ratio {suite['time_ratio']:.3f}",
        ]
    lines += ["", "Targets:"]
    for name, target in result["targets"].items():
        lines.append(
            f"- {name}: {'met' if target['met'] else 'MISSED'} "
            f"({target['value']:.3f}, goal {target['goal']})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few points, 1 repeat")
    parser.add_argument("--points", type=int, default=512, help="throughput test points")
    parser.add_argument("--suite-points", type=int, default=200, help="suite test points")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timing repeats")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared machine more threads mostly add noise; "
        "0 keeps torch's default)",
    )
    parser.add_argument("--clean-epochs", type=int, default=3)
    parser.add_argument("--robust-epochs", type=int, default=8)
    parser.add_argument("--apgd-steps", type=int, default=100)
    parser.add_argument("--apgd-t-steps", type=int, default=100)
    parser.add_argument("--apgd-t-targets", type=int, default=9)
    parser.add_argument("--square-queries", type=int, default=1000)
    parser.add_argument(
        "--suite-chunks", type=int, default=2, help="interleaved pieces of the suite points"
    )
    parser.add_argument("--skip-suite", action="store_true", help="throughput only")
    parser.add_argument("--refresh", action="store_true", help="retrain instead of the cache")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "attacks.json")
    shared_default = Path(os.environ.get("BASTION_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--shared", type=Path, default=shared_default)
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.suite_points, args.repeats = 256, 20, 1
        args.square_queries = min(args.square_queries, 200)
        args.out = args.out.with_name("attacks.quick.json")
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    data = mnist(args.shared)
    x_test, y_test = data.test.tensors()
    clean = cached_model(data, kind="clean", epochs=args.clean_epochs, refresh=args.refresh)
    x, y = x_test[: args.points], y_test[: args.points]
    print(
        f"clean model: test accuracy {accuracy(clean, x, y):.4f}; threads {torch.get_num_threads()}"
    )
    result: dict[str, Any] = {
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
        "bastion_attack_library": attacks.LIBRARY_VERSION,
        "batch": BATCH,
        "repeats": args.repeats,
        "throughput_points": len(x),
        "suite_points": 0,
        "clean_model_accuracy": accuracy(clean, x, y),
        "peers": _peer_versions(),
    }
    result["throughput"] = throughput(clean, x, y, steps_list=[10, 40], repeats=args.repeats)
    targets: dict[str, dict[str, Any]] = {}
    for key, row in result["throughput"].items():
        ips = row["images_per_second"]
        for name in ("bastion", "bastion_full"):
            label = LABELS[name]
            targets[f"{key}: {label} ≥ 0.95× hand loop"] = {
                "value": ips[name] / ips["hand_loop"],
                "goal": ">= 0.95",
                "met": ips[name] / ips["hand_loop"] >= 0.95,
            }
            targets[f"{key}: {label} ≥ 1.0× torchattacks"] = {
                "value": ips[name] / ips["torchattacks"],
                "goal": ">= 1.0",
                "met": ips[name] / ips["torchattacks"] >= 1.0,
            }
    if not args.skip_suite:
        robust_model = cached_model(
            data, kind="robust", epochs=args.robust_epochs, refresh=args.refresh
        )
        xs, ys = x_test[: args.suite_points], y_test[: args.suite_points]
        budget = SuiteBudget(
            args.apgd_steps, args.apgd_t_steps, args.apgd_t_targets, args.square_queries
        )
        clean_acc = accuracy(robust_model, xs, ys)
        print(f"robust model: clean accuracy {clean_acc:.4f} on {len(xs)} points")
        duel = suite_vs_autoattack(robust_model, xs, ys, budget, args.suite_chunks)
        ours, theirs = duel["bastion"], duel["autoattack"]
        gap = ours["robust_accuracy"] - theirs["robust_accuracy"]
        ratio = ours["seconds"] / theirs["seconds"]
        result["suite_points"] = len(xs)
        result["suite"] = {
            "clean_accuracy": clean_acc,
            "bastion_budget": budget.__dict__,
            "bastion": ours,
            "autoattack": theirs,
            "accuracy_gap": gap,
            "time_ratio": ratio,
        }
        targets["suite: robust accuracy ≤ AutoAttack + 0.5 points"] = {
            "value": 100 * gap,
            "goal": "<= +0.5 points",
            "met": gap <= 0.005,
        }
        targets["suite: wall time ≤ 0.5× AutoAttack"] = {
            "value": ratio,
            "goal": "<= 0.5",
            "met": ratio <= 0.5,
        }
    result["targets"] = targets
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print()
    print(markdown(result))
    print(f"\nwrote {args.out}")
    return 0


def _peer_versions() -> dict[str, str]:
    import art
    import torchattacks

    return {
        "torchattacks": torchattacks.__version__,
        "adversarial-robustness-toolbox": art.__version__,
    }


if __name__ == "__main__":
    raise SystemExit(main())
