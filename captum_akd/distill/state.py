"""Training state saved every epoch, and resuming from it.

A run directory is an ordinary captum-akd checkpoint (``config.json``,
``student.safetensors``, ``explainer.safetensors``; loadable with
:meth:`AttentiveDistillationAttribution.load`) plus a second
safetensors/JSON pair written in the same atomic step::

    training_state.json         stage, epochs done, configuration fingerprint,
                                per-epoch history, fidelity reports, and the
                                non-tensor parts of the optimizer/scheduler
    training_state.safetensors  optimizer moments, step counts, loss scaler
    peer.safetensors            the second student of a mutual-transfer run

Random state is not stored: every random draw of epoch ``e`` (data order,
augmentation, class choices) is seeded from ``(seed, stage, e)``, so an epoch
replays identically after a resume.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from captum_akd.checkpoint import (
    CONFIG_FILE,
    EXPLAINER_FILE,
    STUDENT_FILE,
    _is_replaceable,
    load_state_strict,
    read_config,
    read_weights,
    save_checkpoint,
    state_to_safetensors,
    write_json,
)
from captum_akd.distill.distributed import DistContext, barrier
from captum_akd.models import AttentiveStudent, ExplanationNet

STATE_JSON = "training_state.json"
STATE_TENSORS = "training_state.safetensors"
PEER_FILE = "peer.safetensors"
STATE_FORMAT = "captum-akd-training"
STATE_VERSION = 1
STAGES = ("student", "explainer")


def _encode(value: Any, prefix: str, tensors: dict[str, Tensor]) -> Any:
    """JSON form of a nested state dict; tensors go to ``tensors`` by path."""
    if isinstance(value, Tensor):
        tensors[prefix] = value.detach().to("cpu").contiguous().clone()
        return {"__tensor__": prefix}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v, f"{prefix}.{k}", tensors) for k, v in value.items()}
        # Optimizer state is keyed by parameter index; JSON keys are strings.
        return {"__items__": [[k, _encode(v, f"{prefix}.{k}", tensors)] for k, v in
                              value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    # Schedulers keep functions (lr lambdas) that are rebuilt, never stored.
    return None


def _decode(value: Any, tensors: Mapping[str, Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        if set(value) == {"__items__"}:
            return {k: _decode(v, tensors) for k, v in value["__items__"]}
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        return {k: _decode(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value


def module_digest(module: nn.Module) -> str:
    """SHA-256 over a module's state dict (names, shapes, dtypes and values).

    Entries are hashed in sorted name order, on the CPU, so the digest does not
    depend on the device or on the order modules were registered in.

    Args:
        module: any :class:`torch.nn.Module`.

    Returns:
        The 64-character hexadecimal digest.

    Examples::

        >>> from captum_akd.distill.state import module_digest
        >>> layer = torch.nn.Linear(2, 2)
        >>> len(module_digest(layer)), module_digest(layer) == module_digest(torch.nn.Linear(2, 2))
        (64, False)
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def normalise_json(value: Any) -> Any:
    """Return ``value`` as it reads back from JSON (tuples become lists, ...).

    Used to compare a configuration fingerprint with one loaded from
    ``training_state.json``.

    Args:
        value: any JSON-serialisable value.

    Returns:
        ``json.loads(json.dumps(value, sort_keys=True))``.

    Raises:
        TypeError: if ``value`` holds something JSON cannot encode.

    Examples::

        >>> from captum_akd.distill.state import normalise_json
        >>> normalise_json({"size": (32, 32), "b": 1})
        {'b': 1, 'size': [32, 32]}
    """
    return json.loads(json.dumps(value, sort_keys=True))


def fingerprint_differences(saved: Mapping[str, Any], current: Mapping[str, Any],
                            prefix: str = "") -> list[str]:
    """List, readably, where two configuration fingerprints differ.

    Nested mappings are compared key by key, their keys joined with dots; a
    key missing on one side shows as ``'<absent>'``.

    Args:
        saved: the fingerprint stored in the checkpoint.
        current: the fingerprint of the run being started.
        prefix: prepended to every key (used for the recursion).

    Returns:
        One ``"key: saved in the checkpoint, current now"`` string per
        difference, sorted by key; empty when they agree.

    Examples::

        >>> from captum_akd.distill.state import fingerprint_differences
        >>> fingerprint_differences({"lr": 0.1, "crop": {"padding": 4}},
        ...                         {"lr": 0.1, "crop": {"padding": 2}})
        ['crop.padding: 4 in the checkpoint, 2 now']
    """
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
    """What ``training_state.json`` records besides the tensors.

    Attributes:
        stage: ``"student"`` (stage 1) or ``"explainer"`` (stage 2): the
            stage the last save belongs to.
        epoch: epochs of that stage completed.
        complete: whether that stage finished.
        fingerprints: per stage, the configuration the run was started with.
        history: per stage, one dict of mean losses (and validation
            numbers) per epoch.
        reports: per stage, the fidelity report made when it finished.

    Examples::

        >>> from captum_akd.distill.state import TrainingState
        >>> data = TrainingState(stage="student", epoch=3).to_json()
        >>> data["format"], data["epoch"]
        ('captum-akd-training', 3)
        >>> TrainingState.from_json(data, "training_state.json").epoch
        3
    """

    stage: str = "student"
    epoch: int = 0
    complete: bool = False
    fingerprints: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON form written to ``training_state.json``.

        Returns:
            A dict with the format name and version and every field.
        """
        return {
            "format": STATE_FORMAT,
            "format_version": STATE_VERSION,
            "stage": self.stage,
            "epoch": self.epoch,
            "complete": self.complete,
            "fingerprints": self.fingerprints,
            "history": self.history,
            "reports": self.reports,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> TrainingState:
        """Read a state back from the dict :meth:`to_json` wrote.

        Args:
            data: the parsed ``training_state.json``.
            where: how to name the file in error messages.

        Returns:
            A new :class:`TrainingState`.

        Raises:
            ValueError: if ``data`` is not a captum-akd training state or was
                written by a newer format version.
        """
        if data.get("format") != STATE_FORMAT or data.get("stage") not in STAGES:
            raise ValueError(f"`out`: {where} is not a captum-akd training state")
        if data.get("format_version", 0) > STATE_VERSION:
            raise ValueError(
                f"`out`: {where} was written by a newer captum-akd; upgrade to resume it"
            )
        return cls(
            stage=data["stage"],
            epoch=int(data.get("epoch", 0)),
            complete=bool(data.get("complete", False)),
            fingerprints=dict(data.get("fingerprints", {})),
            history={k: list(v) for k, v in data.get("history", {}).items()},
            reports=dict(data.get("reports", {})),
        )


@dataclass
class Resumed:
    """A stage's saved progress, read back from a run directory.

    Attributes:
        state: the saved :class:`TrainingState`.
        student: the student's state dict.
        explainer: the explainer's state dict.
        peer: the peer student's state dict in a mutual-transfer run, else
            ``None``.
        optimizer: the optimizer's state dict, or ``None`` if none was saved.
        scheduler: the learning-rate scheduler's state dict, or ``None``.
        scaler: the AMP gradient scaler's state dict, or ``None`` (no AMP).

    Examples::

        >>> # the run saved in the RunDir example
        >>> resumed = RunDir("run", resume=True, overwrite=False, ctx=setup("cpu")).load()
        >>> resumed.state.stage, resumed.state.epoch, resumed.peer is None
        ('student', 1, True)
    """

    state: TrainingState
    student: dict[str, Tensor]
    explainer: dict[str, Tensor]
    peer: dict[str, Tensor] | None
    optimizer: dict[str, Any] | None
    scheduler: dict[str, Any] | None
    scaler: dict[str, Any] | None


class RunDir:
    """The output directory of a training run: policy checks, saving, resuming.

    All checks happen here, before any training: an ``out`` that exists
    without ``resume`` or ``overwrite``, an ``out`` that is not a checkpoint,
    ``resume`` without ``out``, and (in :meth:`check_fingerprint`) a
    checkpoint made by another configuration.

    Args:
        out: the directory, or ``None`` for no checkpoints.
        resume: continue the run saved there (a missing directory starts a
            new run).
        overwrite: replace what is there and start over.
        ctx: the process's distributed context (only rank 0 writes).

    Raises:
        FileExistsError: if ``out`` is a file, a folder that is not a
            checkpoint, or a checkpoint while neither ``resume`` nor
            ``overwrite`` is set.
        ValueError: for ``resume`` without ``out``, or a checkpoint without a
            readable training state.

    Examples::

        >>> from captum_akd.distill.distributed import setup
        >>> from captum_akd.distill.state import RunDir
        >>> from captum_akd.models import ExplanationNet, cifar_resnet_student
        >>> student = cifar_resnet_student(depth=8, num_classes=3)
        >>> explainer = ExplanationNet.for_student(student, width=8)
        >>> run = RunDir("run", resume=False, overwrite=False, ctx=setup("cpu"))
        >>> run.state.fingerprints["student"] = {"lr": 0.1}
        >>> run.state.epoch = 1
        >>> run.save(student, explainer, metadata={})
        >>> again = RunDir("run", resume=True, overwrite=False, ctx=setup("cpu"))
        >>> again.stage_status("student"), again.stage_status("explainer")
        ('partial', 'new')
    """

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
                try:
                    data = json.loads(state_path.read_text(encoding="utf-8"))
                except (json.JSONDecodeError, UnicodeDecodeError) as err:
                    raise ValueError(
                        f"`out`: {str(state_path)!r} is not valid JSON: {err}"
                    ) from None
                self.saved = TrainingState.from_json(data, repr(str(state_path)))
                self.state = copy.deepcopy(self.saved)
            elif has_checkpoint and not resume and not overwrite:
                raise FileExistsError(
                    f"`out`: {str(self.path)!r} already holds a checkpoint; pass resume=True "
                    "to continue its run (--resume) or overwrite=True to start over (--overwrite)"
                )

    @property
    def enabled(self) -> bool:
        """Whether checkpoints are written (``out`` was given)."""
        return self.path is not None

    def check_fingerprint(self, stage: str, fingerprint: Mapping[str, Any]) -> None:
        """Raise if the saved run of ``stage`` was made by another configuration.

        Nothing is checked for a new run or a stage the saved run never started.

        Args:
            stage: ``"student"`` or ``"explainer"``.
            fingerprint: the configuration of the run being started.

        Raises:
            ValueError: listing (up to six of) the differences.
        """
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
        """How far the saved run got with ``stage``.

        Args:
            stage: ``"student"`` or ``"explainer"``.

        Returns:
            ``"new"`` (not started, or no saved run), ``"partial"`` (saved during
            the stage) or ``"complete"`` (the stage finished, or a later stage was
            saved).
        """
        saved = self.saved
        if saved is None or stage not in saved.fingerprints:
            return "new"
        if saved.stage == stage:
            return "complete" if saved.complete else "partial"
        # A later stage was saved, so this one finished.
        return "complete" if STAGES.index(saved.stage) > STAGES.index(stage) else "new"

    def load(self) -> Resumed:
        """Read the weights and optimizer state of the saved run.

        Only valid when the directory was opened with ``resume=True`` and holds a
        run.

        Returns:
            A :class:`Resumed` with the state dicts on the CPU.
        """
        assert self.path is not None and self.saved is not None
        config = read_config(self.path)
        student = read_weights(self.path, STUDENT_FILE, config)
        explainer = read_weights(self.path, EXPLAINER_FILE, config)
        peer = None
        if (self.path / PEER_FILE).is_file():
            peer = read_weights(self.path, PEER_FILE, config)
        data = json.loads((self.path / STATE_JSON).read_text(encoding="utf-8"))
        tensors: dict[str, Tensor] = {}
        if (self.path / STATE_TENSORS).is_file():
            tensors = read_weights(self.path, STATE_TENSORS, config)
        optim = _decode(data.get("optimizer_state"), tensors)
        return Resumed(
            state=self.saved,
            student=student,
            explainer=explainer,
            peer=peer,
            optimizer=optim.get("optimizer") if optim else None,
            scheduler=optim.get("scheduler") if optim else None,
            scaler=optim.get("scaler") if optim else None,
        )

    def save(
        self,
        student: AttentiveStudent,
        explainer: ExplanationNet,
        metadata: Mapping[str, Any],
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        scaler: Any = None,
        peer: AttentiveStudent | None = None,
    ) -> None:
        """Write the checkpoint and :attr:`state` atomically (rank 0 only).

        Does nothing without ``out``. Every process waits at a barrier afterwards,
        so no process runs ahead of the save.

        Args:
            student: the student being trained.
            explainer: the explainer (untrained during stage 1).
            metadata: the checkpoint's metadata (``config.json``).
            optimizer: its state dict is saved when given.
            scheduler: its state dict is saved when given.
            scaler: an AMP gradient scaler; saved when given and enabled.
            peer: the second student of a mutual-transfer run, saved to
                ``peer.safetensors``.
        """
        if self.path is None:
            return
        if self.ctx.is_main:
            tensors: dict[str, Tensor] = {}
            optim = {
                "optimizer": optimizer.state_dict() if optimizer is not None else None,
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled()
                else None,
            }
            data = self.state.to_json()
            data["optimizer_state"] = _encode(optim, "optim", tensors)

            def write_tensors(path: Path) -> None:
                # safetensors refuses an empty file name map only in old versions.
                save_file(tensors or {"_empty": torch.zeros(0)}, os.fspath(path))

            extra = {
                STATE_TENSORS: write_tensors,
                STATE_JSON: lambda path: write_json(data, path),
            }
            if peer is not None:
                extra[PEER_FILE] = lambda path: state_to_safetensors(peer, path)
            save_checkpoint(self.path, student, explainer, metadata, overwrite=True,
                            extra_files=extra)
        barrier(self.ctx)


def load_weights(module: nn.Module, state: Mapping[str, Tensor], what: str) -> None:
    """Load saved weights into ``module`` (on its device), naming any mismatch.

    Args:
        module: the network to load into; the tensors are moved to the device
            of its first state-dict entry.
        state: a state dict, e.g. :attr:`Resumed.student`.
        what: the network's name for error messages (``"student"``).

    Raises:
        ValueError: on a missing, unexpected or mis-shaped key.

    Examples::

        >>> from captum_akd.distill.state import load_weights
        >>> # the run and student of the RunDir example
        >>> resumed = RunDir("run", resume=True, overwrite=False, ctx=setup("cpu")).load()
        >>> load_weights(student, resumed.student, "student")
    """
    device = next(iter(module.state_dict().values())).device
    load_state_strict(module, {k: v.to(device) for k, v in state.items()}, what)
