"""The one training loop both stages run: precision, optimizer, schedule, resume, saving.

A stage (:class:`~captum_akd.distill._stage1.StudentStage`,
:class:`~captum_akd.distill._stage2.ExplainerStage`) names the module it trains
and supplies ``step(images, labels, generator)`` (the batch's losses, total
under ``"loss"``), ``evaluate(epoch, last)`` and ``complete(report)`` (what
only the final report measures); :func:`train` does everything else,
the same way for both. Everything random in epoch ``e`` is seeded from
``(seed, stage, e)``, so a resumed run replays the epochs it had not finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from captum_akd.data._batches import EpochLoader, epoch_seed
from captum_akd.distill._distributed import (
    DistContext,
    all_reduce_sum,
    broadcast_buffers,
    setup,
    wrap,
)
from captum_akd.distill._fidelity import HeldOut
from captum_akd.distill._preflight import DataInfo, preflight
from captum_akd.distill._state import RunDir, normalise_json
from captum_akd.distill.config import RunConfig
from captum_akd.models import AttentiveStudent

# Without val_data, fidelity is measured on this many training images.
TRAIN_REPORT_IMAGES = 1024


def parameter_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict]:
    """Trainable parameters split so that biases, norms and gates get no decay."""
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
    """Linear warm-up to the peak learning rate, then cosine annealing to 0."""
    total_steps = max(total_steps, 1)
    warmup_steps = min(max(warmup_steps, 0), total_steps // 5)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return LambdaLR(optimizer, factor)


class Precision:
    """Mixed precision: bfloat16 (float16 with loss scaling where CUDA lacks it)."""

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
        """A context manager for the forward pass and loss."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)



@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch, ``random`` and NumPy for a block (dataset transforms replay on resume)."""
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
    """Print a line on the main process without breaking progress bars."""
    if ctx.is_main and not quiet:
        tqdm.write(message)


def format_stats(stats: dict[str, float]) -> str:
    """``"name value, ..."`` with four decimals, for log lines."""
    return ", ".join(f"{k} {v:.4f}" for k, v in stats.items())


@dataclass
class Shared:
    """What both stages of one call use, built once: checks, data, held-out set, output."""

    forward_func: Callable[..., Tensor]
    run: RunConfig
    ctx: DistContext
    out: RunDir
    info: DataInfo
    input_size: tuple[int, int]
    loader: EpochLoader
    held_out: HeldOut
    has_val_data: bool
    train_data: Dataset | DataLoader

    def reseeded(self, seed: int, out: RunDir) -> Shared:
        """The same run from another seed into another directory (a stage-2 restart)."""
        run = dataclasses.replace(self.run, seed=seed, out=out.path)
        return dataclasses.replace(self, run=run, out=out,
                                   loader=train_loader(self.train_data, run, self.ctx))

    def metadata(self) -> dict[str, Any]:
        """The checkpoint's JSON metadata: reports and how the run was made."""
        state = self.out.state
        return {"input_size": list(self.input_size), "normalization": self.run.normalization,
                "fidelity": state.reports, "training": state.fingerprints,
                "stage": state.stage, "epochs_done": state.epoch, "complete": state.complete}


def prepare(forward_func: Callable[..., Tensor], train_data: Dataset | DataLoader,
            val_data: Dataset | DataLoader | None, student: AttentiveStudent,
            run: RunConfig) -> Shared:
    """Check everything (one black-box call), open ``out`` and the data, for both stages."""
    ctx = setup(run.device)
    out = RunDir(run.out, run.resume, run.overwrite, ctx)
    info = preflight(forward_func, train_data, val_data, student, run.image_size, ctx.device)
    loader = train_loader(train_data, run, ctx)
    data = val_data if val_data is not None else train_data
    held_loader = EpochLoader(data, run.batch_size, ctx, run.seed, shuffle=False,
                              image_size=run.image_size, num_workers=run.num_workers,
                              where="val_data" if val_data is not None else "train_data")
    limit = None if val_data is not None else -(-TRAIN_REPORT_IMAGES // ctx.world_size)
    held_out = HeldOut(held_loader, forward_func, ctx.device, limit,
                       "val" if val_data is not None else "train", ctx.rank)
    return Shared(forward_func, run, ctx, out, info, run.image_size or info.image_shape[1:],
                  loader, held_out, val_data is not None, train_data)


def train_loader(train_data: Dataset | DataLoader, run: RunConfig, ctx: DistContext
                 ) -> EpochLoader:
    """The run's shuffled training batches, their order drawn from its seed."""
    return EpochLoader(train_data, run.batch_size, ctx, run.seed, shuffle=True,
                       image_size=run.image_size, num_workers=run.num_workers)


# A stage (StudentStage, ExplainerStage) has: ``name``, ``config``, ``module`` (what is
# optimised; wrapped in DDP as ``trained``), ``student``, ``explainer``, ``peer``,
# ``unused_parameters``, ``precision`` (set here), and ``fingerprint()``, ``load(resumed)``,
# ``frozen()``, ``before_epoch(epoch)``, ``step(images, labels, generator)``,
# ``evaluate(epoch, last)``, ``score(report)`` and ``complete(report)``.
Stage = Any


def train(stage: Stage, shared: Shared) -> list[dict[str, float]]:
    """Run (or resume, or skip when complete) one stage; returns its per-epoch history."""
    ctx, run, out, config = shared.ctx, shared.run, shared.out, stage.config
    precision = Precision(ctx.device, run.amp)
    fingerprint = stage_fingerprint(stage, shared, precision)
    status = resumed_status(stage, shared, fingerprint)
    number = 1 + (stage.name == "explainer")
    if status == "complete":
        return list(out.state.history.get(stage.name, []))
    stage.trained = wrap(stage.module, ctx, stage.unused_parameters)
    optimizer = build_optimizer([stage.module], config.optimizer, config.resolved_lr(),
                                config.resolved_weight_decay(), config.momentum)
    steps = max(len(shared.loader), 1)
    scheduler = cosine_schedule(optimizer, config.epochs * steps,
                                round(config.warmup_epochs * steps))
    start, best = 0, None
    if status == "partial":
        resumed = out.load()
        if "optimizer" not in resumed.optim:
            raise ValueError(f"`out`: {str(out.path)!r} holds no optimizer state (an older "
                             "captum-akd wrote it), so it cannot be resumed; use overwrite=True")
        stage.load(resumed)
        optimizer.load_state_dict(resumed.optim["optimizer"])
        scheduler.load_state_dict(resumed.optim["scheduler"])
        if resumed.optim.get("scaler") is not None:
            precision.scaler.load_state_dict(resumed.optim["scaler"])
        start, best = out.state.epoch, resumed.optim.get("best")
        log(f"resuming stage {number} ({stage.name}) after epoch {start}/{config.epochs}", ctx,
            run.quiet)
    else:
        # Earlier stages' records stay; this stage starts afresh.
        out.state.history[stage.name] = []
        out.state.reports.pop(stage.name, None)
    out.state.fingerprints[stage.name] = fingerprint
    history = out.state.history[stage.name]
    stage.precision = precision
    if status != "partial":
        # Measured before the first epoch, so a run never ends worse than it started.
        best = _best_so_far(stage, stage.evaluate(None, False)[1], 0)
    with stage.frozen():
        params = [p for p in stage.module.parameters() if p.requires_grad]
        for epoch in range(start, config.epochs):
            stage.module.train()
            stage.before_epoch(epoch)
            with seeded(epoch_seed(run.seed, stage.name, epoch, ctx.rank), ctx.device):
                stats = _epoch(stage, shared, epoch, optimizer, scheduler, precision, params)
            broadcast_buffers(stage.module, ctx)
            last = epoch + 1 == config.epochs
            extra, report = stage.evaluate(epoch, last)
            if best is not None and report is not None and (
                    stage.score(report) > tuple(best["score"])):
                best = {**_best_so_far(stage, report, epoch + 1), "start": best["start"]}
            # Counted in evaluated epochs' terms: an epoch without a report stops nothing.
            # The best epoch is then an earlier one, whose own report _keep_best keeps.
            if (not last and best is not None and report is not None
                    and config.patience is not None
                    and epoch + 1 - best["epoch"] >= config.patience):
                log(f"stage {number}: no better held-out score for {config.patience} epochs; "
                    f"stopping after epoch {epoch + 1}/{config.epochs}", ctx, run.quiet)
                last = True
            if last and best is not None:
                more, report = _keep_best(stage, best, report, epoch)
                # Measurements of the kept weights: they belong to this epoch only if kept.
                if report["epoch"] == epoch + 1:
                    extra.update(more)
            elif last and report is not None:
                more, report = stage.complete(report)
                extra.update(more)
            if report is not None and last:
                out.state.reports[stage.name] = report
            record = {"epoch": epoch + 1, **stats, **extra}
            history.append(record)
            out.state.stage, out.state.epoch, out.state.complete = stage.name, epoch + 1, last
            log(f"stage {number} epoch {epoch + 1}/{config.epochs}: "
                f"{format_stats({k: v for k, v in record.items() if k != 'epoch'})}",
                ctx, run.quiet)
            scaler = precision.scaler.state_dict() if precision.scaler.is_enabled() else None
            out.save(stage.student, stage.explainer, shared.metadata(),
                     {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                      "scaler": scaler, "best": best}, stage.peer)
            if last:
                break
    return list(history)


def stage_fingerprint(stage: Stage, shared: Shared, precision: Precision) -> dict[str, Any]:
    """What a resumed run of ``stage`` must share with the saved one, as JSON reads it back."""
    run = shared.run
    return normalise_json({
        **stage.fingerprint(), "config": stage.config.to_dict(),
        "num_classes": shared.info.num_classes, "train_data": shared.info.fingerprint(),
        "val_data": shared.has_val_data, "batch_size": run.batch_size,
        "image_size": run.image_size, "seed": run.seed, "world_size": shared.ctx.world_size,
        "mixed_precision": precision.enabled})


def resumed_status(stage: Stage, shared: Shared, fingerprint: dict[str, Any]) -> str:
    """Check the saved run against ``fingerprint``; a complete stage's weights are loaded."""
    out = shared.out
    out.check_fingerprint(stage.name, fingerprint)
    status = out.stage_status(stage.name)
    if status == "complete":
        stage.load(out.load())
        log(f"stage {1 + (stage.name == 'explainer')} ({stage.name}) already complete in "
            f"{str(out.path)!r}; skipped", shared.ctx, shared.run.quiet)
    return status


def _best_so_far(stage: Stage, report: dict | None, epoch: int) -> dict[str, Any] | None:
    """A copy of the weights worth keeping, with how they scored (None: stage keeps its last)."""
    score = stage.score(report) if report is not None else None
    if score is None:
        return None
    state = {k: v.detach().clone() for k, v in stage.module.state_dict().items()}
    return {"epoch": epoch, "score": list(score), "report": report, "start": report,
            "state": state}


def _keep_best(stage: Stage, best: dict[str, Any], last: dict, epoch: int
               ) -> tuple[dict[str, float], dict]:
    """Put the best epoch's weights back; its report says where the run started and ended."""
    kept = last
    if best["epoch"] != last.get("epoch", -1):
        stage.module.load_state_dict(best["state"])
        kept = best["report"]
    # What only the final report measures, once, on the weights kept.
    more, kept = stage.complete(kept)
    brief = [k for k in best["start"] if isinstance(best["start"][k], float)]
    return more, {**kept, "best_epoch": best["epoch"],
                  "start": {k: best["start"][k] for k in brief},
                  "last": {k: last[k] for k in brief}}


def _epoch(stage: Stage, shared: Shared, epoch: int, optimizer: torch.optim.Optimizer,
           scheduler: LambdaLR, precision: Precision, params: list[nn.Parameter]
           ) -> dict[str, float]:
    """One pass over the data; the mean of every loss over all images of all processes."""
    ctx, loader, config = shared.ctx, shared.loader, stage.config
    loader.set_epoch(epoch)
    generator = torch.Generator().manual_seed(
        epoch_seed(shared.run.seed, f"{stage.name}/augment", epoch, ctx.rank))
    totals: dict[str, Tensor] = {}
    count = 0
    bar = tqdm(total=len(loader), desc=f"{stage.name} epoch {epoch + 1}/{config.epochs}",
               disable=shared.run.quiet or not ctx.is_main, unit="batch", dynamic_ncols=True)
    for index, (images, labels) in enumerate(loader):
        optimizer.zero_grad(set_to_none=True)
        losses = stage.step(images, labels, generator)
        precision.scaler.scale(losses["loss"]).backward()
        if config.grad_clip is not None:
            precision.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
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
    packed = torch.stack([torch.tensor(float(count), dtype=torch.float64, device=ctx.device)]
                         + [totals[k].to(ctx.device) for k in keys])
    packed = all_reduce_sum(packed, ctx).tolist()
    return {k: v / max(packed[0], 1) for k, v in zip(keys, packed[1:], strict=True)}
