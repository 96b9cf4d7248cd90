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
    """Where this process stands in a (possibly single-process) run.

    Attributes:
        rank: global rank (0 for a single process).
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        device: the device this process trains on.
        owns_group: whether :func:`setup` created the process group (and
            :func:`teardown` should destroy it).

    Examples::

        >>> from captum_akd.distill.distributed import setup
        >>> ctx = setup("cpu")            # a plain `python` run: one process
        >>> ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed
        (0, 1, True, False)
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False

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
    """Return ``device`` as a :class:`torch.device`; ``None`` picks CUDA when available.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a :class:`torch.device`, or
            ``None``.
        local_rank: this process's rank on its machine; a CUDA device without
            an index (or ``None`` with CUDA available) becomes
            ``cuda:(local_rank % number of GPUs)``.

    Returns:
        The :class:`torch.device` to train on.

    Examples::

        >>> from captum_akd.distill.distributed import resolve_device
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("cuda", local_rank=1)   # on a machine with two GPUs
        device(type='cuda', index=1)
    """
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    return device


def setup(device: str | torch.device | None = None) -> DistContext:
    """Join the ``torchrun`` process group if there is one and pick the device.

    With ``WORLD_SIZE`` unset or 1 nothing is initialised; otherwise the
    process group is created (NCCL for CUDA, gloo for the CPU) unless one
    already exists.

    Args:
        device: the device to train on; ``None`` picks ``cuda:LOCAL_RANK``
            when CUDA is available, else the CPU.

    Returns:
        The process's :class:`DistContext`.

    Raises:
        ValueError: if ``RANK``, ``WORLD_SIZE`` or ``LOCAL_RANK`` is not an int.

    Examples::

        >>> from captum_akd.distill.distributed import setup, teardown
        >>> ctx = setup("cpu")
        >>> ctx.device, ctx.world_size
        (device(type='cpu'), 1)
        >>> teardown(ctx)
    """
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
    return DistContext(rank, world, local, resolved, owns_group=True)


def teardown(ctx: DistContext) -> None:
    """Leave the process group if :func:`setup` created it.

    Args:
        ctx: what :func:`setup` returned.

    Examples::

        >>> from captum_akd.distill.distributed import setup, teardown
        >>> ctx = setup()
        >>> teardown(ctx)   # a no-op for a single process
    """
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, ctx: DistContext) -> nn.Module:
    """Wrap ``module`` in :class:`DistributedDataParallel` when distributed.

    Args:
        module: the network to train, already on ``ctx.device``.
        ctx: the process's :class:`DistContext`.

    Returns:
        The DDP wrapper (bound to ``ctx.device`` for CUDA), or ``module`` itself
        for a single process.

    Examples::

        >>> from captum_akd.distill.distributed import setup, wrap
        >>> net = torch.nn.Linear(4, 2)
        >>> wrap(net, setup("cpu")) is net
        True
    """
    if not ctx.distributed:
        return module
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def barrier(ctx: DistContext) -> None:
    """Wait until every process reaches this point (a no-op for one process).

    Args:
        ctx: the process's :class:`DistContext`.

    Examples::

        >>> from captum_akd.distill.distributed import barrier, setup
        >>> barrier(setup("cpu"))
    """
    if ctx.distributed:
        dist.barrier()


def all_reduce_sum(values: Tensor, ctx: DistContext) -> Tensor:
    """Sum ``values`` over processes (in place; returned for chaining).

    Args:
        values: a tensor of any shape on ``ctx.device`` (e.g. loss sums and
            counts).
        ctx: the process's :class:`DistContext`.

    Returns:
        ``values``, now holding the element-wise sum over all processes
        (unchanged for a single process).

    Examples::

        >>> from captum_akd.distill.distributed import all_reduce_sum, setup
        >>> totals = torch.tensor([3.0, 8.0])       # loss sum, image count
        >>> all_reduce_sum(totals, setup("cpu"))
        tensor([3., 8.])
    """
    if ctx.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_buffers(module: nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's buffers (batch-norm statistics) to every process.

    DDP keeps parameters equal but each process updates its own running
    statistics on its last batch; syncing them makes every process hold, and
    rank 0 save, one state.

    Args:
        module: the unwrapped network; its buffers are overwritten in place.
        ctx: the process's :class:`DistContext`; a no-op for one process.

    Examples::

        >>> from captum_akd.distill.distributed import broadcast_buffers, setup
        >>> broadcast_buffers(torch.nn.BatchNorm2d(8), setup("cpu"))
    """
    if not ctx.distributed:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)
