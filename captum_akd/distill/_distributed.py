"""Multi-process training with PyTorch's own engine (``torchrun`` + DDP).

The training code is the same with one process or many: :func:`setup` reads
the environment ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``),
joins the process group when there is more than one process (NCCL on CUDA,
gloo on CPU) and says which device this process uses. The helpers below are
no-ops for a single process, so callers never branch on the world size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly single-process) run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value is not None else default
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an int") from None


def resolve_device(device: str | torch.device | None, local_rank: int = 0) -> torch.device:
    """Return ``device`` as a :class:`torch.device`; ``None`` picks CUDA when available."""
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    return device


def setup(device: str | torch.device | None = None) -> DistContext:
    """Join the ``torchrun`` process group if there is one and pick the device."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = _env_int("LOCAL_RANK", rank)
        return DistContext(rank, world, local, resolve_device(device, local))
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    resolved = resolve_device(device, local)
    if world <= 1:
        return DistContext(0, 1, 0, resolved)
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but torch.distributed is not available in this build")
    backend = "nccl" if resolved.type == "cuda" else "gloo"
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    dist.init_process_group(backend=backend)
    return DistContext(rank, world, local, resolved)




def wrap(module: nn.Module, ctx: DistContext, unused_parameters: bool = False) -> nn.Module:
    """Wrap ``module`` in :class:`DistributedDataParallel` when distributed."""
    if not ctx.distributed:
        return module
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids,
                                   find_unused_parameters=unused_parameters)


def barrier(ctx: DistContext) -> None:
    """Wait until every process reaches this point (a no-op for one process)."""
    if ctx.distributed:
        dist.barrier()


def all_reduce_sum(values: Tensor, ctx: DistContext) -> Tensor:
    """Sum ``values`` over processes (in place; returned for chaining)."""
    if ctx.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_buffers(module: nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's buffers (batch-norm statistics) to every process."""
    if not ctx.distributed:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)
