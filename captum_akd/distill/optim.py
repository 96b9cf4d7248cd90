"""Optimizer, learning-rate schedule and mixed precision for both stages."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR


def parameter_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict]:
    """Trainable parameters split so that biases, norms and gates get no decay.

    Decaying batch-norm scales or the attention blocks' scalar gates would pull
    them to zero, which is not regularisation but a change of the function.
    Parameters with more than one dimension (weights of convolutions and
    linear layers) are decayed; parameters shared between modules are listed
    once; frozen ones (``requires_grad=False``) are left out.

    Args:
        modules: the networks whose parameters are trained together.
        weight_decay: the decay of the first group.

    Returns:
        Optimizer parameter groups: ``{"params": [...], "weight_decay":
        weight_decay}`` and, when there are any, ``{"params": [...],
        "weight_decay": 0.0}`` for the 0-d and 1-d parameters.

    Examples::

        >>> from captum_akd.distill.optim import parameter_groups
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
        >>> [(len(g["params"]), g["weight_decay"]) for g in parameter_groups([net], 0.05)]
        [(1, 0.05), (3, 0.0)]
    """
    decay, no_decay, seen = [], [], set()
    for module in modules:
        for param in module.parameters():
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (decay if param.dim() > 1 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(
    modules: Iterable[nn.Module],
    name: str,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov) over the trainable parameters of ``modules``.

    Biases, norms and gates get no weight decay (see :func:`parameter_groups`).

    Args:
        modules: the networks to train together.
        name: ``"adamw"``; anything else gives SGD.
        lr: the (peak) learning rate.
        weight_decay: decay of the weight matrices and kernels.
        momentum: SGD momentum; Nesterov momentum is used when it is positive.

    Returns:
        A :class:`torch.optim.AdamW` or :class:`torch.optim.SGD`.

    Raises:
        ValueError: if no parameter requires a gradient.

    Examples::

        >>> from captum_akd.distill.optim import build_optimizer
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
        >>> optimizer = build_optimizer([net], "sgd", lr=0.05, weight_decay=5e-4)
        >>> type(optimizer).__name__, optimizer.defaults["nesterov"]
        ('SGD', True)
    """
    groups = parameter_groups(modules, weight_decay)
    if not any(group["params"] for group in groups):
        raise ValueError("there is nothing to train: every parameter has requires_grad=False")
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)


def cosine_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0
) -> LambdaLR:
    """Linear warm-up to the peak learning rate, then cosine annealing to 0.

    Stepped once per batch, so short runs anneal as smoothly as long ones. The
    warm-up is capped at a fifth of the run, so a one-epoch run still anneals
    instead of ending at the peak rate.

    Args:
        optimizer: the optimizer whose learning rates (the peaks) are scaled.
        total_steps: the number of batches of the whole stage (at least 1).
        warmup_steps: batches of linear warm-up; step ``s < warmup_steps``
            uses ``(s + 1) / (warmup_steps + 1)`` of the peak.

    Returns:
        A :class:`~torch.optim.lr_scheduler.LambdaLR` to step after every
        optimizer step.

    Examples::

        >>> from captum_akd.distill.optim import build_optimizer, cosine_schedule
        >>> optimizer = build_optimizer([torch.nn.Linear(4, 2)], "adamw", 2e-3, 0.05)
        >>> schedule = cosine_schedule(optimizer, total_steps=10, warmup_steps=2)
        >>> rates = []
        >>> for _ in range(10):
        ...     rates.append(round(optimizer.param_groups[0]["lr"] * 1000, 3))
        ...     optimizer.step()
        ...     schedule.step()
        >>> rates      # x 1e-3: warm-up over two steps, then the cosine to 0
        [0.667, 1.333, 2.0, 1.924, 1.707, 1.383, 1.0, 0.617, 0.293, 0.076]
    """
    total_steps = max(total_steps, 1)
    warmup_steps = min(max(warmup_steps, 0), total_steps // 5)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return LambdaLR(optimizer, factor)


class Precision:
    """Mixed precision: bfloat16 (float16 with loss scaling where CUDA lacks it).

    On by default on CUDA. On the CPU it is off unless asked for
    (``enabled=True``): bfloat16 autocast there is fast on CPUs with bfloat16
    instructions (AVX512-BF16 or AMX) and slow on others. Disabled, it does
    nothing, so the same training step runs everywhere.

    Args:
        device: the training device.
        enabled: use mixed precision; ``None`` enables it on CUDA only.

    Attributes:
        enabled: whether mixed precision is on.
        dtype: ``torch.bfloat16`` or ``torch.float16`` when enabled, else
            ``None``.
        scaler: a :class:`torch.amp.GradScaler`, enabled only for float16.

    Raises:
        ValueError: for ``enabled=True`` on a device other than CUDA or the CPU.

    Examples::

        >>> from captum_akd.distill.optim import Precision
        >>> precision = Precision(torch.device("cpu"))
        >>> precision.enabled, precision.dtype, precision.scaler.is_enabled()
        (False, None, False)
        >>> net = torch.nn.Linear(4, 2)
        >>> with precision.autocast():
        ...     loss = net(torch.randn(3, 4)).sum()
        >>> precision.scaler.scale(loss).backward()
        >>> with Precision(torch.device("cpu"), enabled=True).autocast():
        ...     net(torch.randn(3, 4)).dtype
        torch.bfloat16
    """

    def __init__(self, device: torch.device, enabled: bool | None = None) -> None:
        self.enabled = device.type == "cuda" if enabled is None else bool(enabled)
        if self.enabled and device.type not in ("cuda", "cpu"):
            raise ValueError(f"`amp=True` needs a CUDA device or the CPU; training runs on "
                             f"{device}")
        self.device_type = device.type
        self.dtype = None
        if self.enabled:
            self.dtype = (torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported()
                          else torch.float16)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.enabled and self.dtype == torch.float16
        )

    def autocast(self):
        """A context manager for the forward pass and loss.

        Returns:
            :func:`torch.autocast` to :attr:`dtype` when enabled, else a
            :func:`contextlib.nullcontext`.
        """
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)
