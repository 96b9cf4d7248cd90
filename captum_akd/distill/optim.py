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
    """AdamW or SGD (Nesterov) over the trainable parameters of ``modules``."""
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
    """Mixed precision on CUDA: bfloat16 where supported, else float16 with loss scaling.

    On other devices (or with ``enabled=False``) it does nothing, so the same
    training step runs everywhere.

    Args:
        device: the training device.
        enabled: use mixed precision; ``None`` enables it on CUDA.
    """

    def __init__(self, device: torch.device, enabled: bool | None = None) -> None:
        self.enabled = device.type == "cuda" if enabled is None else bool(enabled)
        if self.enabled and device.type != "cuda":
            raise ValueError(f"`amp=True` needs a CUDA device; training runs on {device}")
        self.dtype = None
        if self.enabled:
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.enabled and self.dtype == torch.float16
        )

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.dtype)
