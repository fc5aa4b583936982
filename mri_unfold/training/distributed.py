"""Data-parallel context for ``torchrun`` (DDP): NCCL on CUDA, gloo on CPU.

``torchrun --nproc-per-node=N -m mri_unfold train P`` sets ``WORLD_SIZE``/``RANK``/
``LOCAL_RANK``; :func:`init_distributed` then joins the process group.  Without those
variables everything runs as a single process (rank 0 of 1).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Rank information; ``is_main`` is the only rank that logs and writes files."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1).

    Returns:
        ``(context, device)`` — on CUDA the device becomes ``cuda:LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(), device
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    created = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        created = True
    return DistContext(rank, world, local, created), device
