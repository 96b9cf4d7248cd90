"""The epoch loop both stages share: seeding, progress, optimizer steps, reduction."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from captum_akd.distill.batches import EpochLoader, epoch_seed
from captum_akd.distill.distributed import DistContext, all_reduce_sum
from captum_akd.distill.optim import Precision

StepFn = Callable[[Tensor, Tensor, torch.Generator], dict[str, Tensor]]


@dataclass(frozen=True)
class RunSettings:
    """Settings shared by both stages (not hyper-parameters of either).

    Attributes:
        batch_size: images per batch and process.
        image_size: ``(H, W)`` every image is resized to, or ``None``.
        normalization: the ``{"mean", "std"}`` the data was normalised with,
            recorded in the checkpoint, or ``None``.
        amp: mixed precision; ``None`` enables it on CUDA only (see
            :class:`~captum_akd.distill.optim.Precision`).
        seed: seeds initialisation, data order, augmentation and class choices.
        num_workers: data-loader worker processes.
        quiet: no progress bars or log lines.

    Examples::

        >>> from captum_akd.distill.distributed import setup
        >>> from captum_akd.distill.loop import RunSettings
        >>> from captum_akd.distill.optim import Precision
        >>> settings = RunSettings(batch_size=64, image_size=(32, 32))
        >>> settings.fingerprint(setup("cpu"), Precision(torch.device("cpu")))
        {'batch_size': 64, 'image_size': [32, 32], 'seed': 0, 'world_size': 1,
         'mixed_precision': False}
    """

    batch_size: int = 128
    image_size: tuple[int, int] | None = None
    normalization: dict[str, Any] | None = None
    amp: bool | None = None
    seed: int = 0
    num_workers: int = 0
    quiet: bool = False

    def fingerprint(self, ctx: DistContext, precision: Precision) -> dict[str, Any]:
        """The settings a resumed run must share with the saved one.

        Args:
            ctx: the process's distributed context (its world size counts).
            precision: the run's mixed-precision setting (whether it is enabled
                counts).

        Returns:
            A JSON-serialisable dict: batch size, image size, seed, world size and
            whether mixed precision is on.
        """
        return {
            "batch_size": self.batch_size,
            "image_size": list(self.image_size) if self.image_size else None,
            "seed": self.seed,
            "world_size": ctx.world_size,
            "mixed_precision": precision.enabled,
        }


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch, ``random`` and NumPy for a block; restore the caller's state after.

    Dataset transforms drawing from the global generators then replay
    identically when an epoch is re-run after a resume, and the caller's own
    random streams are left as they were.

    Args:
        seed: the seed for the block (NumPy gets ``seed % 2**32``).
        device: the training device; a CUDA device's generator is forked too.

    Yields:
        Nothing; the block runs with the seeded generators.

    Examples::

        >>> from captum_akd.distill.loop import seeded
        >>> with seeded(7, torch.device("cpu")):
        ...     a = torch.rand(2)
        >>> with seeded(7, torch.device("cpu")):
        ...     b = torch.rand(2)
        >>> torch.equal(a, b)
        True
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def log(message: str, ctx: DistContext, quiet: bool) -> None:
    """Print a line on the main process without breaking progress bars.

    Args:
        message: the line to print.
        ctx: the process's distributed context; other ranks print nothing.
        quiet: print nothing.

    Examples::

        >>> from captum_akd.distill.distributed import setup
        >>> from captum_akd.distill.loop import log
        >>> log("student epoch 1/30: loss 1.2345", setup("cpu"), quiet=False)
        student epoch 1/30: loss 1.2345
    """
    if ctx.is_main and not quiet:
        tqdm.write(message)


def format_stats(stats: dict[str, float]) -> str:
    """Format an epoch's mean losses for a log line.

    Args:
        stats: name -> value.

    Returns:
        ``"name value, ..."`` with four decimals each.

    Examples::

        >>> from captum_akd.distill.loop import format_stats
        >>> format_stats({"loss": 1.23456, "kd": 0.5})
        'loss 1.2346, kd 0.5000'
    """
    return ", ".join(f"{k} {v:.4f}" for k, v in stats.items())


def run_epochs(
    *,
    stage: str,
    epochs: int,
    start_epoch: int,
    loader: EpochLoader,
    step: StepFn,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    precision: Precision,
    trained: Iterable[nn.Module],
    grad_clip: float | None,
    seed: int,
    ctx: DistContext,
    quiet: bool,
    end_of_epoch: Callable[[int, dict[str, float]], None],
) -> None:
    """Train from ``start_epoch`` to ``epochs``, calling ``end_of_epoch`` after each.

    ``step(images, labels, generator)`` returns the batch's losses with the
    total under ``"loss"``; this loop does the backward pass, clipping,
    (scaled) optimizer step and scheduler step, and shows the running means.
    Everything random in epoch ``e`` is seeded from ``(seed, stage, e)``.
    All arguments are keyword-only.

    Args:
        stage: the stage's name (``"student"`` or ``"explainer"``), used in
            seeds and progress bars.
        epochs: the total number of epochs of the stage.
        start_epoch: the first epoch to run (after a resume, the epochs done).
        loader: the training batches.
        step: computes the losses of one batch (forward pass only); the
            generator seeds its augmentation.
        optimizer: steps the trained parameters.
        scheduler: stepped after every batch.
        precision: autocast and gradient scaling.
        trained: the modules being trained: put in train mode each epoch and
            clipped together.
        grad_clip: the maximum gradient norm, or ``None`` for no clipping.
        seed: the run's seed.
        ctx: the process's distributed context.
        quiet: no progress bar.
        end_of_epoch: called as ``end_of_epoch(epoch, stats)``, ``stats`` the
            epoch's mean of every loss over all images of all processes (to
            evaluate, log and save).

    Examples::

        >>> import torch.nn.functional as F
        >>> from torch.utils.data import TensorDataset
        >>> from captum_akd.distill.batches import EpochLoader
        >>> from captum_akd.distill.distributed import setup
        >>> from captum_akd.distill.loop import run_epochs
        >>> from captum_akd.distill.optim import Precision, build_optimizer, cosine_schedule
        >>> ctx = setup("cpu")
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
        >>> data = TensorDataset(torch.randn(16, 3, 8, 8), torch.arange(16) % 3)
        >>> loader = EpochLoader(data, batch_size=4, ctx=ctx)
        >>> optimizer = build_optimizer([net], "adamw", lr=1e-3, weight_decay=0.0)
        >>> scheduler = cosine_schedule(optimizer, total_steps=2 * len(loader))
        >>> def step(images, labels, generator):
        ...     return {"loss": F.cross_entropy(net(images), labels)}
        >>> history = []
        >>> run_epochs(stage="student", epochs=2, start_epoch=0, loader=loader, step=step,
        ...            optimizer=optimizer, scheduler=scheduler, precision=Precision(ctx.device),
        ...            trained=[net], grad_clip=None, seed=0, ctx=ctx, quiet=True,
        ...            end_of_epoch=lambda epoch, stats: history.append((epoch, sorted(stats))))
        >>> history
        [(0, ['loss']), (1, ['loss'])]
    """
    params = [p for m in trained for p in m.parameters() if p.requires_grad]
    for epoch in range(start_epoch, epochs):
        for module in trained:
            module.train()
        with seeded(epoch_seed(seed, stage, epoch, ctx.rank), ctx.device):
            loader.set_epoch(epoch)
            generator = torch.Generator().manual_seed(
                epoch_seed(seed, f"{stage}/augment", epoch, ctx.rank)
            )
            totals: dict[str, Tensor] = {}
            count = 0
            bar = tqdm(
                total=len(loader),
                desc=f"{stage} epoch {epoch + 1}/{epochs}",
                disable=quiet or not ctx.is_main,
                unit="batch",
                dynamic_ncols=True,
                leave=True,
            )
            for index, (images, labels) in enumerate(loader):
                optimizer.zero_grad(set_to_none=True)
                losses = step(images, labels, generator)
                precision.scaler.scale(losses["loss"]).backward()
                if grad_clip is not None:
                    precision.scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, grad_clip)
                precision.scaler.step(optimizer)
                precision.scaler.update()
                scheduler.step()
                n = images.shape[0]
                count += n
                for key, value in losses.items():
                    totals[key] = totals.get(key, 0.0) + value.detach().double() * n
                bar.update(1)
                # Reading the values syncs the GPU, so the bar refreshes now and then.
                if not bar.disable and (index % 10 == 0 or index + 1 == len(loader)):
                    bar.set_postfix({k: f"{float(v) / count:.4f}" for k, v in totals.items()},
                                    refresh=False)
            bar.close()
        keys = sorted(totals)
        packed = torch.stack(
            [torch.tensor(float(count), dtype=torch.float64, device=ctx.device)]
            + [totals[k].to(ctx.device) for k in keys]
        )
        packed = all_reduce_sum(packed, ctx).tolist()
        stats = {k: v / max(packed[0], 1) for k, v in zip(keys, packed[1:], strict=True)}
        end_of_epoch(epoch, stats)
