"""A training job from one config file: load the data, build (or load) the model, train it,
save the artifact. It is what ``bastion train`` and ``python -m bastion.train`` run, on one
process or on every rank under ``torchrun``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import yaml

from bastion import models
from bastion.config import BastionConfig, load_config
from bastion.data import load_dataset
from bastion.errors import BastionError
from bastion.train import distributed as dd
from bastion.train.checkpoint import atomic_write_bytes
from bastion.train.loop import StepEvent, TrainResult, fit

__all__ = ["default_out_dir", "main", "train_from_config", "train_from_file"]

CONFIG_COPY = "config.yaml"


def default_out_dir(config: BastionConfig) -> Path:
    """``output_dir/name/train`` of the config."""
    return config.output_dir / config.name / "train"


def train_from_config(
    config: BastionConfig,
    *,
    out_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[StepEvent], None] | None = None,
) -> TrainResult:
    """Train what ``config`` describes (clean when it has no ``recipe``) into ``out_dir``.

    Joins the ``torchrun`` process group when the environment describes one. ``on_step`` is
    called after every optimiser step (see :func:`~bastion.train.fit`).
    """
    created = dd.setup_from_env()
    try:
        ctx = dd.current()
        out = Path(out_dir) if out_dir is not None else default_out_dir(config)
        dataset = load_dataset(config.data)
        seed = config.recipe.seed if config.recipe and config.recipe.seed is not None else None
        torch.manual_seed(config.train.seed if seed is None else seed)
        if config.model.path is not None:
            spec = models.read_spec(config.model.path)
            model = models.load(config.model.path)
            architecture, arguments = spec.architecture, dict(spec.arguments)
        else:
            architecture, arguments = config.model.architecture, dict(config.model.arguments)
            model = models.build(
                architecture,
                input_shape=dataset.input_shape,
                num_classes=dataset.num_classes,
                **arguments,
            )
        if torch.cuda.is_available():
            model = model.to(torch.device("cuda", ctx.local_rank))
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            dumped = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
            atomic_write_bytes(out / CONFIG_COPY, dumped.encode("utf-8"))
        return fit(
            model,
            dataset,
            config.train,
            config.recipe,
            config.threat_model,
            out_dir=out,
            resume=resume,
            progress=progress,
            architecture=architecture,
            arguments=arguments,
            on_step=on_step,
        )
    finally:
        dd.teardown(created)


def train_from_file(
    path: str | Path,
    *,
    out_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """:func:`train_from_config` for the YAML file at ``path``."""
    return train_from_config(load_config(path), out_dir=out_dir, resume=resume, progress=progress)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bastion.train",
        description="Train a model from a Bastion config (also under torchrun).",
    )
    parser.add_argument("--config", required=True, type=Path, help="the YAML file")
    parser.add_argument("--out", type=Path, default=None, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bastion.train``; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rank = os.environ.get("RANK", "0")
    try:
        result = train_from_file(
            args.config, out_dir=args.out, resume=args.resume, progress=not args.no_progress
        )
    except BastionError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if rank == "0":
            print("interrupted; continue with --resume", file=sys.stderr)
        return 130
    if rank == "0":
        print(f"model artifact: {result.artifact}")
    return 0
