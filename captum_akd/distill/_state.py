"""Training state saved every epoch, and resuming from it.

A run directory is an ordinary captum-akd checkpoint (``config.json``,
``student.safetensors``, ``explainer.safetensors``; loadable with
:meth:`AttentiveDistillationAttribution.load`) plus, written in the same
atomic step::

    training_state.json   stage, epochs done, configuration fingerprints,
                          per-epoch history, fidelity reports
    training_state.pt     optimizer, scheduler and loss-scaler state, by
                          torch.save; read with torch.load(weights_only=True)
    peer.safetensors      the second student of a mutual-transfer run

Random state is not stored: every random draw of epoch ``e`` (data order,
augmentation, class choices) is seeded from ``(seed, stage, e)``, so an epoch
replays identically after a resume.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from captum_akd.checkpoint import (
    CONFIG_FILE,
    EXPLAINER_FILE,
    STUDENT_FILE,
    _is_replaceable,
    load_state_strict,
    read_config,
    read_json,
    read_weights,
    save_checkpoint,
    state_to_safetensors,
    write_json,
)
from captum_akd.distill._distributed import DistContext, barrier

STATE_JSON = "training_state.json"
STATE_OPTIM = "training_state.pt"
PEER_FILE = "peer.safetensors"
STATE_FORMAT = "captum-akd-training"
STATE_VERSION = 2
STAGES = ("student", "explainer")


def module_digest(module: nn.Module) -> str:
    """SHA-256 over a module's state dict (names, shapes, dtypes and values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def normalise_json(value: Any) -> Any:
    """Return ``value`` as it reads back from JSON (tuples become lists, ...)."""
    return json.loads(json.dumps(value, sort_keys=True))


def fingerprint_differences(saved: Mapping[str, Any], current: Mapping[str, Any],
                            prefix: str = "") -> list[str]:
    """List, readably, where two configuration fingerprints differ."""
    lines = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
        name = f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            lines += fingerprint_differences(a, b, name + ".")
        elif a != b:
            lines.append(f"{name}: {a!r} in the checkpoint, {b!r} now")
    return lines


@dataclass
class TrainingState:
    """What ``training_state.json`` records besides the tensors."""

    stage: str = "student"
    epoch: int = 0
    complete: bool = False
    fingerprints: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON form written to ``training_state.json``."""
        return {"format": STATE_FORMAT, "format_version": STATE_VERSION,
                **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> TrainingState:
        """Read a state back from the dict :meth:`to_json` wrote."""
        if data.get("format") != STATE_FORMAT or data.get("stage") not in STAGES:
            raise ValueError(f"`out`: {where} is not a captum-akd training state")
        if data.get("format_version", 0) > STATE_VERSION:
            raise ValueError(
                f"`out`: {where} was written by a newer captum-akd; upgrade to resume it"
            )
        return cls(**{f.name: copy.deepcopy(data[f.name]) for f in dataclasses.fields(cls)
                      if f.name in data})


@dataclass
class Resumed:
    """A stage's saved progress, read back from a run directory."""

    state: TrainingState
    student: dict[str, Tensor]
    explainer: dict[str, Tensor]
    peer: dict[str, Tensor] | None
    optim: dict[str, Any]


class RunDir:
    """The output directory of a training run: policy checks, saving, resuming."""

    def __init__(
        self,
        out: str | os.PathLike | None,
        resume: bool,
        overwrite: bool,
        ctx: DistContext,
    ) -> None:
        self.path = Path(out) if out is not None else None
        self.ctx = ctx
        self.saved: TrainingState | None = None
        self.state = TrainingState()
        if self.path is None:
            if resume:
                raise ValueError("`resume=True` needs `out`: the directory to resume from")
            return
        if self.path.exists():
            if not self.path.is_dir():
                raise FileExistsError(f"`out`: {str(self.path)!r} exists and is not a directory")
            if not _is_replaceable(self.path):
                raise FileExistsError(
                    f"`out`: {str(self.path)!r} exists and is neither empty nor a captum-akd "
                    "checkpoint; choose another directory"
                )
            has_checkpoint = (self.path / CONFIG_FILE).is_file()
            if resume and has_checkpoint:
                state_path = self.path / STATE_JSON
                if not state_path.is_file():
                    raise ValueError(
                        f"`out`: {str(self.path)!r} holds a checkpoint without training state "
                        f"({STATE_JSON}), so there is no run to resume; use overwrite=True "
                        "to start over"
                    )
                read_config(self.path)
                data = read_json(state_path, "out")
                self.saved = TrainingState.from_json(data, repr(str(state_path)))
                self.state = copy.deepcopy(self.saved)
            elif has_checkpoint and not resume and not overwrite:
                raise FileExistsError(
                    f"`out`: {str(self.path)!r} already holds a checkpoint; pass resume=True "
                    "to continue its run (--resume) or overwrite=True to start over (--overwrite)"
                )

    def check_fingerprint(self, stage: str, fingerprint: Mapping[str, Any]) -> None:
        """Raise if the saved run of ``stage`` was made by another configuration."""
        if self.saved is None or stage not in self.saved.fingerprints:
            return
        differences = fingerprint_differences(
            self.saved.fingerprints[stage], normalise_json(dict(fingerprint))
        )
        if differences:
            shown = "; ".join(differences[:6])
            more = f" (and {len(differences) - 6} more)" if len(differences) > 6 else ""
            raise ValueError(
                f"`out`: the run in {str(self.path)!r} was made with another configuration "
                f"for its {stage} stage, so it cannot be resumed: {shown}{more}. Use the "
                "same settings, another `out`, or overwrite=True to start over"
            )

    def stage_status(self, stage: str) -> str:
        """How far the saved run got with ``stage``."""
        saved = self.saved
        if saved is None or stage not in saved.fingerprints:
            return "new"
        if saved.stage == stage:
            return "complete" if saved.complete else "partial"
        # A later stage was saved, so this one finished.
        return "complete" if STAGES.index(saved.stage) > STAGES.index(stage) else "new"

    def load(self) -> Resumed:
        """Read the weights and optimizer state of the saved run (opened with ``resume``)."""
        assert self.path is not None and self.saved is not None
        config = read_config(self.path)
        peer = None
        if (self.path / PEER_FILE).is_file():
            peer = read_weights(self.path, PEER_FILE, config)
        optim: dict[str, Any] = {}
        if (self.path / STATE_OPTIM).is_file():
            try:
                optim = torch.load(self.path / STATE_OPTIM, map_location="cpu",
                                   weights_only=True)
            except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
                raise ValueError(f"`out`: {str(self.path / STATE_OPTIM)!r} is not a readable "
                                 f"training state: {err}") from None
        return Resumed(self.saved, read_weights(self.path, STUDENT_FILE, config),
                       read_weights(self.path, EXPLAINER_FILE, config), peer, optim)

    def save(self, student: nn.Module, explainer: nn.Module, metadata: Mapping[str, Any],
             optim: Mapping[str, Any], peer: nn.Module | None = None) -> None:
        """Write the checkpoint and :attr:`state` atomically (rank 0), then wait for all."""
        if self.path is None:
            return
        if self.ctx.is_main:
            data = self.state.to_json()
            extra = {STATE_OPTIM: lambda path: torch.save(dict(optim), path),
                     STATE_JSON: lambda path: write_json(data, path)}
            if peer is not None:
                extra[PEER_FILE] = lambda path: state_to_safetensors(peer, path)
            save_checkpoint(self.path, student, explainer, metadata, overwrite=True,
                            extra_files=extra)
        barrier(self.ctx)


def load_weights(module: nn.Module, state: Mapping[str, Tensor], what: str) -> None:
    """Load saved weights into ``module`` (on its device), naming any mismatch."""
    device = next(iter(module.state_dict().values())).device
    load_state_strict(module, {k: v.to(device) for k, v in state.items()}, what)
