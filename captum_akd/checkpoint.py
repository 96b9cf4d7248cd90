"""Checkpoints: safetensors weights plus one JSON file, written atomically.

A checkpoint is a directory::

    config.json            format, library version, builders and their
                           arguments, class count, input size, normalisation,
                           SHA-256 of each weights file, reports
    student.safetensors    the attentive student's state dict
    explainer.safetensors  the explanation network's state dict

Nothing is unpickled when loading. A directory is written under a temporary
name beside its destination and renamed into place, so an interrupted save
never leaves a half-written checkpoint, and an existing checkpoint is only
replaced with ``overwrite=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from captum_akd._version import __version__
from captum_akd.models import (
    AttentiveStudent,
    ExplanationNet,
    cifar_resnet_student,
    efficientnet_lite_student,
    resnet_student,
)

FORMAT = "captum-akd"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
STUDENT_FILE = "student.safetensors"
EXPLAINER_FILE = "explainer.safetensors"

# Checkpoints name the builder that made the student; only these are rebuilt.
STUDENT_BUILDERS: dict[str, Callable[..., AttentiveStudent]] = {
    "cifar_resnet_student": cifar_resnet_student,
    "resnet_student": resnet_student,
    "efficientnet_lite_student": efficientnet_lite_student,
}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (what ``config.json`` records per weights file).

    Args:
        path: the file.

    Returns:
        64 hexadecimal characters.

    Examples::

        >>> file_sha256("akd-ckpt/student.safetensors")[:12]
        '3f9a0c2be871'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def state_to_safetensors(module: nn.Module, path: str | os.PathLike) -> None:
    """Write ``module``'s state dict to ``path`` as safetensors.

    Args:
        module: any module; its tensors are copied to the CPU first.
        path: the ``.safetensors`` file to write.

    Returns:
        None.

    Examples::

        >>> state_to_safetensors(student, "student.safetensors")
    """
    # Cloned to CPU so tensors that share storage (tied weights) save cleanly.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in
               module.state_dict().items()}
    save_file(tensors, os.fspath(path))


def write_json(data: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``data`` as indented JSON with sorted keys, atomically.

    The JSON goes to a temporary file beside ``path``, is flushed to disk and
    then renamed over ``path``, so a reader (or a crash) never sees half a
    file. Whether ``path`` may be replaced is the caller's decision.

    Args:
        data: a JSON-serialisable mapping.
        path: the file to write.

    Returns:
        None.

    Examples::

        >>> write_json({"top1_agreement": 0.93}, "report.json")
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _fsync_file(path: Path) -> None:
    # A writer may produce a directory (a checkpoint inside a results folder);
    # its own files were flushed by the writer that made them.
    if path.is_dir():
        return
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _is_replaceable(directory: Path, marker: str = CONFIG_FILE) -> bool:
    """Only an empty directory or one holding ``marker`` (one of ours) may be replaced."""
    if not directory.is_dir():
        return False
    entries = list(directory.iterdir())
    return not entries or (directory / marker).is_file()


def check_writable(directory: str | os.PathLike, overwrite: bool = False,
                   marker: str = CONFIG_FILE) -> Path:
    """Check, before any work, that :func:`write_directory_atomically` may write ``directory``.

    Args:
        directory: the destination.
        overwrite: whether an existing directory may be replaced.
        marker: the file that marks a directory as ours (see
            :func:`write_directory_atomically`).

    Returns:
        ``directory`` as a :class:`~pathlib.Path`.

    Raises:
        FileExistsError: it exists and ``overwrite`` is false, or it exists and
            holds files but no ``marker`` (never replaced, whatever ``overwrite``).

    Examples::

        >>> check_writable("akd-demo", overwrite=True, marker="results.json")
        PosixPath('akd-demo')
    """
    target = Path(directory)
    if target.exists():
        if not overwrite:
            raise FileExistsError(
                f"`directory` {str(target)!r} already exists; pass overwrite=True to replace it"
            )
        if not _is_replaceable(target, marker):
            what = "checkpoint" if marker == CONFIG_FILE else "results directory"
            raise FileExistsError(
                f"`directory` {str(target)!r} exists and is not a captum-akd {what} (no "
                f"{marker}); refusing to replace it even with overwrite=True"
            )
    return target


def write_directory_atomically(
    directory: str | os.PathLike,
    writers: Mapping[str, Callable[[Path], None]],
    overwrite: bool = False,
    marker: str = CONFIG_FILE,
) -> Path:
    """Create ``directory`` holding one file per writer, all or nothing.

    The files are written into a fresh sibling directory that then replaces
    ``directory``: an interrupted write never leaves half a directory, and an
    old one stays until the new one is complete.

    Args:
        directory: destination directory.
        writers: file name -> function that writes that file (or a
            sub-directory) at the given path.
        overwrite: replace an existing directory at ``directory``, provided
            it is empty or holds ``marker`` (so only what we wrote is replaced).
        marker: the file that marks a directory as ours: ``config.json`` for
            checkpoints, ``results.json`` for demo and benchmark results.

    Returns:
        The destination path.

    Examples::

        >>> write_directory_atomically("out", {"a.json": lambda p: write_json({}, p)})
        PosixPath('out')
    """
    target = check_writable(directory, overwrite, marker)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    # mkdtemp makes the directory private; what we save is for everyone the umask allows.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    try:
        for name, write in writers.items():
            write(staging / name)
            _fsync_file(staging / name)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, retired / target.name)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def save_checkpoint(
    directory: str | os.PathLike,
    student: AttentiveStudent,
    explainer: ExplanationNet,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    extra_files: Mapping[str, Callable[[Path], None]] | None = None,
) -> Path:
    """Save a student and explainer as a checkpoint directory.

    Args:
        directory: where to write (created; must not exist unless ``overwrite``).
        student: a student made by one of the builders (its ``config`` names it).
        explainer: the matching explanation network.
        metadata: JSON-serialisable extras stored in ``config.json``
            (``input_size``, ``normalization``, reports...).
        overwrite: replace an existing checkpoint.
        extra_files: more files to write in the same atomic step
            (name -> writer), e.g. training state.

    Returns:
        The checkpoint directory.

    Examples::

        >>> save_checkpoint("akd-ckpt", student, explainer, {"input_size": [32, 32]})
        PosixPath('akd-ckpt')
    """
    if student.config.get("builder") not in STUDENT_BUILDERS:
        raise ValueError(
            "`student` was not made by a captum-akd builder "
            f"({', '.join(STUDENT_BUILDERS)}), so a checkpoint could not rebuild it"
        )
    hashes: dict[str, str] = {}

    def weights_writer(module: nn.Module, name: str) -> Callable[[Path], None]:
        def write(path: Path) -> None:
            state_to_safetensors(module, path)
            hashes[name] = file_sha256(path)

        return write

    def write_config(path: Path) -> None:
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "torch_version": torch.__version__,
            "student": student.config,
            "explainer": explainer.config,
            "num_classes": student.num_classes,
            "in_channels": student.in_channels,
            "weights_sha256": hashes,
            "metadata": dict(metadata or {}),
        }
        write_json(config, path)

    writers: dict[str, Callable[[Path], None]] = {
        STUDENT_FILE: weights_writer(student, STUDENT_FILE),
        EXPLAINER_FILE: weights_writer(explainer, EXPLAINER_FILE),
    }
    writers.update(extra_files or {})
    writers[CONFIG_FILE] = write_config  # last: it records the hashes
    return write_directory_atomically(directory, writers, overwrite)


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint's ``config.json``.

    Args:
        directory: the checkpoint directory.

    Returns:
        The parsed configuration (format, version, builders and their
        arguments, weights hashes, metadata).

    Examples::

        >>> read_config("akd-ckpt")["student"]["builder"]
        'cifar_resnet_student'
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"`directory`: no checkpoint directory at {str(root)!r}")
    path = root / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"`directory`: checkpoint {str(root)!r} is missing {CONFIG_FILE}"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"`directory`: {str(path)!r} is not valid JSON (truncated or corrupted): {err}"
        ) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"`directory`: {str(path)!r} is not a captum-akd checkpoint config")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"`directory`: checkpoint format {config.get('format_version')} is newer than "
            f"this library reads ({FORMAT_VERSION}); upgrade captum-akd"
        )
    return config


def read_weights(directory: Path, name: str, config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Read one weights file after checking it against the config's hash.

    Args:
        directory: the checkpoint directory.
        name: the file in it, e.g. ``"student.safetensors"``.
        config: the checkpoint's configuration (:func:`read_config`).

    Returns:
        The state dict, on the CPU.

    Examples::

        >>> state = read_weights(Path("akd-ckpt"), STUDENT_FILE, read_config("akd-ckpt"))
    """
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(f"`directory`: checkpoint {str(directory)!r} is missing {name}")
    expected = config.get("weights_sha256", {}).get(name)
    if expected is not None and file_sha256(path) != expected:
        raise ValueError(
            f"`directory`: {name} does not match the hash in {CONFIG_FILE}: the file was "
            "truncated, modified, or comes from another checkpoint"
        )
    try:
        return load_file(os.fspath(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"`directory`: {name} is not a readable safetensors file: {err}") from None


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Load ``state`` into ``module``, naming what does not fit.

    Args:
        module: the freshly built network.
        state: its state dict from a checkpoint.
        what: the network's name for the error message (``"student"``).

    Returns:
        None; raises ``ValueError`` on a missing, unexpected or mis-shaped key.

    Examples::

        >>> load_state_strict(student, state, "student")
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or mismatched:
        details = []
        if mismatched:
            k = mismatched[0]
            details.append(
                f"{k} has shape {tuple(state[k].shape)}, expected {tuple(own[k].shape)}"
            )
        if missing:
            details.append(f"{len(missing)} missing key(s) such as {missing[0]!r}")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected key(s) such as {unexpected[0]!r}")
        raise ValueError(
            f"`directory`: the {what} weights belong to another architecture or class "
            f"count than the config describes ({'; '.join(details)})"
        )
    module.load_state_dict(state)


def load_checkpoint(
    directory: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[AttentiveStudent, ExplanationNet, dict[str, Any]]:
    """Rebuild the student and explainer of a checkpoint.

    Args:
        directory: a directory written by :func:`save_checkpoint`.
        map_location: device to put both networks on.

    Returns:
        ``(student, explainer, config)`` with both networks in eval mode.

    Examples::

        >>> student, explainer, config = load_checkpoint("akd-ckpt", map_location="cpu")
    """
    root = Path(directory)
    config = read_config(root)
    spec = config.get("student", {})
    builder = STUDENT_BUILDERS.get(spec.get("builder"))
    if builder is None:
        raise ValueError(
            f"`directory`: unknown student builder {spec.get('builder')!r} in {CONFIG_FILE}"
        )
    student = builder(**spec.get("kwargs", {}))
    explainer_spec = config.get("explainer", {})
    if explainer_spec.get("builder") != "ExplanationNet":
        raise ValueError(
            f"`directory`: unknown explainer {explainer_spec.get('builder')!r} in {CONFIG_FILE}"
        )
    explainer = ExplanationNet(**explainer_spec.get("kwargs", {}))
    load_state_strict(student, read_weights(root, STUDENT_FILE, config), "student")
    load_state_strict(explainer, read_weights(root, EXPLAINER_FILE, config), "explainer")
    device = torch.device(map_location)
    return student.to(device).eval(), explainer.to(device).eval(), config
