"""Data-parallel training with PyTorch's own engine: ``torchrun`` starts the processes, this
module joins them into a process group (gloo on CPU, NCCL when CUDA is present) and gives
the loop the few collectives it needs.

``bastion train --nproc N`` re-launches itself through ``torch.distributed.run``; a plain
``torchrun --nproc-per-node N -m bastion.train --config FILE`` does the same. Each rank
trains on its own shard (DistributedSampler) and attacks its own shard; gradients are
averaged by DistributedDataParallel, metrics are summed with ``all_reduce``, and only rank 0
writes files. Outside ``torchrun`` every helper here is a no-op on one process.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from bastion.errors import TrainingError

__all__ = [
    "DistContext",
    "all_gather_object",
    "all_reduce_max",
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "current",
    "launch",
    "setup_from_env",
    "teardown",
]

_TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class DistContext:
    """This process's place in the group (``rank`` 0 of 1 outside ``torchrun``)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current() -> DistContext:
    """The context of the process group this process belongs to, if any."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        )
    return DistContext()


def setup_from_env() -> bool:
    """Join the process group ``torchrun`` describes in the environment.

    Returns whether this call created the group (and so :func:`teardown` should end it).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    try:
        dist.init_process_group(backend=backend, timeout=_TIMEOUT)
    except (RuntimeError, ValueError) as exc:
        raise TrainingError(f"cannot join the {backend} process group: {exc}") from exc
    return True


def teardown(created: bool) -> None:
    if created and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks, in place; returns it."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum over ranks, in place; returns it."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def all_gather_object(obj: Any) -> list[Any]:
    """``obj`` from every rank, in rank order (``[obj]`` on one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def launch(nproc: int, arguments: Sequence[str]) -> int:
    """Run ``python -m bastion.train ARGUMENTS`` on ``nproc`` local processes through
    ``torch.distributed.run``; returns its exit status."""
    if nproc < 1:
        raise TrainingError(f"--nproc must be at least 1; got {nproc}")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "bastion.train",
        *arguments,
    ]
    env = dict(os.environ)
    # torchrun sets OMP_NUM_THREADS=1 per worker unless told otherwise; keep the caller's.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 130
