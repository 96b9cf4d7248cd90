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

import contextlib
import hashlib
import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from captum_akd._version import __version__
from captum_akd.models import STUDENT_BUILDERS, AttentiveStudent, ExplanationNet
from captum_akd.models.builders import STUDENT_WEIGHTS_KEYWORDS

FORMAT = "captum-akd"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
STUDENT_FILE = "student.safetensors"
EXPLAINER_FILE = "explainer.safetensors"

# Checkpoints name the builders that made their networks; only these are
# rebuilt (STUDENT_BUILDERS comes from the one table in captum_akd.models.builders).
EXPLAINER_BUILDERS: dict[str, Callable[..., ExplanationNet]] = {"ExplanationNet": ExplanationNet}
_BUILDERS: dict[str, Mapping[str, Callable[..., nn.Module]]] = {
    "student": STUDENT_BUILDERS,
    "explainer": EXPLAINER_BUILDERS,
}

# Integer builder keywords with bounds far above any network the library
# builds: a corrupt config.json is named before anything is built or allocated.
KWARG_BOUNDS: dict[str, tuple[int, int]] = {
    "depth": (1, 1202),
    "first_stage": (0, 1000),
    "num_classes": (2, 1_000_000),
    "stem_stride": (1, 2),
    "width": (1, 8192),
}

# The dtype names of safetensors headers, to compare them with a module's tensors.
_SAFETENSORS_DTYPES: dict[torch.dtype, str] = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (what ``config.json`` records per weights file).

    Args:
        path: the file.

    Returns:
        64 hexadecimal characters.

    Examples::

        >>> _ = Path("empty.bin").write_bytes(b"")
        >>> file_sha256("empty.bin")[:12]
        'e3b0c44298fc'
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

        >>> from safetensors.torch import load_file
        >>> from captum_akd.models import cifar_resnet_student
        >>> student = cifar_resnet_student(depth=8, num_classes=3)
        >>> state_to_safetensors(student, "student.safetensors")
        >>> load_file("student.safetensors")["fc.weight"].shape
        torch.Size([3, 64])
    """
    # Cloned to CPU so tensors that share storage (tied weights) save cleanly.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in
               module.state_dict().items()}
    save_file(tensors, os.fspath(path))
    _give_open_mode(Path(path))


def _umask() -> int:
    """The process umask: it can only be read by setting it, so it is set back at once."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _give_open_mode(path: Path) -> None:
    """Give written files the mode ``open()`` would; safetensors creates them private (0600)."""
    mode = 0o666 & ~_umask()
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        if item.is_file() and not item.is_symlink():
            os.chmod(item, mode)


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
    os.chmod(staging, 0o777 & ~_umask())
    try:
        for name, write in writers.items():
            write(staging / name)
            # Writers that go through a temporary file of their own (safetensors)
            # leave it 0600; every file gets what a plain open() would give.
            _give_open_mode(staging / name)
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

        >>> from captum_akd.models import ExplanationNet, cifar_resnet_student
        >>> student = cifar_resnet_student(depth=8, num_classes=3)
        >>> explainer = ExplanationNet.for_student(student, width=16)
        >>> path = save_checkpoint("akd-ckpt", student, explainer, {"input_size": [32, 32]})
        >>> path.name, sorted(p.name for p in path.iterdir())
        ('akd-ckpt', ['config.json', 'explainer.safetensors', 'student.safetensors'])
        >>> read_config(path)["metadata"]
        {'input_size': [32, 32]}
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


def read_json(path: Path, argument: str) -> Any:
    """Parse a JSON file, naming the argument it came from if it is not valid JSON.

    Args:
        path: the file.
        argument: the user's argument the file belongs to (``"directory"``, ``"out"``).

    Returns:
        The parsed value.

    Raises:
        ValueError: if the file is not valid UTF-8 JSON (truncated or corrupted).

    Examples::

        >>> import json
        >>> path = Path("x.json")
        >>> _ = path.write_text(json.dumps({"a": 1}))
        >>> read_json(path, "out")
        {'a': 1}
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"`{argument}`: {str(path)!r} is not valid JSON (truncated or corrupted): {err}"
        ) from None


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint's ``config.json``.

    Args:
        directory: the checkpoint directory.

    Returns:
        The parsed configuration (format, version, builders and their
        arguments, weights hashes, metadata).

    Examples::

        >>> from captum_akd.models import ExplanationNet, cifar_resnet_student
        >>> student = cifar_resnet_student(depth=8, num_classes=3)
        >>> _ = save_checkpoint("akd-ckpt", student, ExplanationNet.for_student(student))
        >>> config = read_config("akd-ckpt")
        >>> config["student"]["builder"], config["num_classes"], config["format"]
        ('cifar_resnet_student', 3, 'captum-akd')
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"`directory`: no checkpoint directory at {str(root)!r}")
    path = root / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"`directory`: checkpoint {str(root)!r} is missing {CONFIG_FILE}"
        )
    config = read_json(path, "directory")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"`directory`: {str(path)!r} is not a captum-akd checkpoint config")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"`directory`: checkpoint format {config.get('format_version')} is newer than "
            f"this library reads ({FORMAT_VERSION}); upgrade captum-akd"
        )
    return config


def read_weights(
    directory: Path,
    name: str,
    config: Mapping[str, Any],
    expected: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Read one weights file after checking it against the config's hash.

    Args:
        directory: the checkpoint directory.
        name: the file in it, e.g. ``"student.safetensors"``.
        config: the checkpoint's configuration (:func:`read_config`).
        expected: the state dict the file must fill (tensors on the ``meta``
            device will do). When given, every tensor's name, shape and dtype in
            the file's header is compared with it before any tensor is read, so
            a file that does not fit is refused without allocating its tensors.

    Returns:
        The state dict, on the CPU.

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: if it does not match the config's hash, is not safetensors,
            or does not fit ``expected`` (naming the tensor and both shapes).

    Examples::

        >>> from captum_akd.models import ExplanationNet, cifar_resnet_student
        >>> student = cifar_resnet_student(depth=8, num_classes=3)
        >>> explainer = ExplanationNet.for_student(student, width=16)
        >>> path = save_checkpoint("ckpt", student, explainer)
        >>> state = read_weights(path, STUDENT_FILE, read_config(path),
        ...                      expected=student.state_dict())
        >>> state["fc.weight"].shape
        torch.Size([3, 64])
    """
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(f"`directory`: checkpoint {str(directory)!r} is missing {name}")
    expected_hash = config.get("weights_sha256", {}).get(name)
    if expected_hash is not None and file_sha256(path) != expected_hash:
        raise ValueError(
            f"`directory`: {name} does not match the hash in {CONFIG_FILE}: the file was "
            "truncated, modified, or comes from another checkpoint"
        )
    if expected is not None:
        _check_header(path, name, expected)
    try:
        return load_file(os.fspath(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise _unreadable(name, err) from None


def _unreadable(name: str, err: Exception) -> ValueError:
    """One message for a weights file that safetensors cannot parse, header or tensors."""
    return ValueError(f"`directory`: {name} is not a readable safetensors file: {err}")


def _check_header(path: Path, name: str, expected: Mapping[str, torch.Tensor]) -> None:
    """Compare a weights file's header with the module it will fill, before reading tensors."""
    found = {}
    try:
        # safe_open maps the file and parses only its header; no tensor is read.
        with safe_open(os.fspath(path), framework="pt") as handle:
            for key in handle.keys():
                tensor = handle.get_slice(key)
                found[key] = (list(tensor.get_shape()), tensor.get_dtype())
    except (SafetensorError, OSError, ValueError) as err:
        raise _unreadable(name, err) from None
    own = {k: (list(v.shape), _SAFETENSORS_DTYPES.get(v.dtype, str(v.dtype)))
           for k, v in expected.items()}
    what = Path(name).stem
    details = _differences(own, found, f"the {what} built from {CONFIG_FILE}")
    if details:
        raise ValueError(
            f"{name}: {'; '.join(details)} (the weights belong to another architecture or "
            f"class count than {CONFIG_FILE} describes)"
        )


def _differences(
    own: Mapping[str, tuple[list[int], str | None]],
    found: Mapping[str, tuple[list[int], str | None]],
    built: str,
) -> list[str]:
    """Name what keeps ``found`` (name -> shape, dtype) from filling ``own``; one message style."""
    missing = sorted(set(own) - set(found))
    unexpected = sorted(set(found) - set(own))
    details = []
    for key, (shape, dtype) in own.items():
        if key not in found:
            continue
        got_shape, got_dtype = found[key]
        if got_shape != shape:
            details.append(f"tensor {key!r} has shape {got_shape} but {built} expects {shape}")
        elif dtype is not None and got_dtype is not None and got_dtype != dtype:
            details.append(f"tensor {key!r} has dtype {got_dtype} but {built} expects {dtype}")
    if len(details) > 1:
        details[1:] = [f"{len(details) - 1} more mismatched tensor(s)"]
    for keys, kind in ((missing, "missing"), (unexpected, "unexpected")):
        if keys:
            shown = ", ".join(repr(k) for k in keys[:3])
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            details.append(f"{len(keys)} {kind} key(s): {shown}{more}")
    return details


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Load ``state`` into ``module`` with ``strict=True``, naming what does not fit.

    Args:
        module: the freshly built network.
        state: its state dict from a checkpoint.
        what: the network's name for the error message (``"student"``).

    Returns:
        None; raises ``ValueError`` naming the missing, unexpected or
        mis-shaped keys.

    Examples::

        >>> from captum_akd.models import cifar_resnet_student
        >>> student = cifar_resnet_student(depth=8, num_classes=3)
        >>> load_state_strict(student, student.state_dict(), "student")
    """
    own = {k: (list(v.shape), None) for k, v in module.state_dict().items()}
    found = {k: (list(v.shape), None) for k, v in state.items()}
    details = _differences(own, found, f"the {what}")
    if not details:
        try:
            module.load_state_dict(state, strict=True)
            return
        except RuntimeError as err:
            details = [str(err).splitlines()[0]]
    raise ValueError(
        f"`directory`: the {what} weights belong to another architecture or class "
        f"count than the config describes ({'; '.join(details)})"
    )


def _builder_spec(
    config: Mapping[str, Any], role: str
) -> tuple[str, Callable[..., nn.Module], dict[str, Any]]:
    """Check a ``config.json`` builder entry against the builder's signature, before building."""
    spec = config.get(role, {})
    name = spec.get("builder") if isinstance(spec, Mapping) else None
    builder = _BUILDERS[role].get(name) if isinstance(name, str) else None
    if builder is None:
        raise ValueError(f"`directory`: unknown {role} builder {name!r} in {CONFIG_FILE}")
    kwargs = spec.get("kwargs", {})
    where = f"{CONFIG_FILE}: {role} builder {name!r}"
    if not isinstance(kwargs, dict):
        raise ValueError(f"{where}: `kwargs` must be an object; got {type(kwargs).__name__}")
    params = inspect.signature(builder).parameters
    # A checkpoint carries its own weights; a path to others is never followed.
    external = STUDENT_WEIGHTS_KEYWORDS.get(name) if role == "student" else None
    valid = [p for p in params if p != external]
    for key in kwargs:
        if key == external:
            raise ValueError(
                f"{where} keyword {key!r} would load starting weights from outside the "
                "checkpoint, which carries its own; remove it"
            )
        if key not in valid:
            raise ValueError(f"{where} has no keyword {key!r}; valid: {', '.join(valid)}")
    for key in valid:
        if key not in kwargs and params[key].default is inspect.Parameter.empty:
            raise ValueError(f"{where} needs the keyword {key!r}")
    for key, (low, high) in KWARG_BOUNDS.items():
        value = kwargs.get(key, low)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(
                f"{where} keyword {key!r} must be an int from {low} to {high}; got {value!r}"
            )
    return name, builder, kwargs


def _build(role: str, name: str, builder: Callable[..., nn.Module], kwargs: dict[str, Any],
           meta: bool) -> nn.Module:
    """Build a network from checked keywords; on ``meta`` its shapes cost no memory."""
    place = torch.device("meta") if meta else contextlib.nullcontext()
    try:
        with place:
            return builder(**kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{CONFIG_FILE}: {role} builder {name!r} refuses its keywords: {err}"
        ) from None


def _check_explainer_fits(kwargs: Mapping[str, Any], student: AttentiveStudent) -> None:
    """Refuse an explainer that could not decode the student's features, before building it."""
    fits = {"stage_channels": student.stage_channels, "class_dim": student.stage_channels[-1]}
    for key, value in fits.items():
        if key in kwargs and kwargs[key] != value:
            raise ValueError(
                f"{CONFIG_FILE}: explainer keyword {key!r} is {kwargs[key]!r} but the student "
                f"built from {CONFIG_FILE} needs {value!r}"
            )


def load_checkpoint(
    directory: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[AttentiveStudent, ExplanationNet, dict[str, Any]]:
    """Rebuild the student and explainer of a checkpoint.

    Nothing large is allocated before the checkpoint is known to fit:
    ``config.json``'s builder keywords are checked against each builder's
    signature and :data:`KWARG_BOUNDS`, both networks are first built on the
    ``meta`` device, and every tensor's shape and dtype in the weights files'
    headers is compared with them. Only then are the weights read and the
    networks built for real (with ``strict=True`` loading).

    Args:
        directory: a directory written by :func:`save_checkpoint`.
        map_location: device to put both networks on.

    Returns:
        ``(student, explainer, config)`` with both networks in eval mode.

    Raises:
        FileNotFoundError: if the directory or one of its files is missing.
        ValueError: naming the key or tensor of a config or weights file that
            is corrupt or describes another network.

    Examples::

        >>> from captum_akd.models import ExplanationNet, cifar_resnet_student
        >>> student = cifar_resnet_student(depth=8, num_classes=3)
        >>> explainer = ExplanationNet.for_student(student, width=16)
        >>> path = save_checkpoint("ckpt", student, explainer)
        >>> student, explainer, config = load_checkpoint(path, map_location="cpu")
        >>> student.num_classes, config["student"]["builder"]
        (3, 'cifar_resnet_student')
    """
    root = Path(directory)
    config = read_config(root)
    student_spec = _builder_spec(config, "student")
    explainer_spec = _builder_spec(config, "explainer")
    meta_student = _build("student", *student_spec, meta=True)
    _check_explainer_fits(explainer_spec[2], meta_student)
    meta_explainer = _build("explainer", *explainer_spec, meta=True)
    student_state = read_weights(root, STUDENT_FILE, config, meta_student.state_dict())
    explainer_state = read_weights(root, EXPLAINER_FILE, config, meta_explainer.state_dict())
    # The files fit the meta networks, so the real ones cost what the files hold.
    student = _build("student", *student_spec, meta=False)
    explainer = _build("explainer", *explainer_spec, meta=False)
    load_state_strict(student, student_state, "student")
    load_state_strict(explainer, explainer_state, "explainer")
    student.pretrained = True
    device = torch.device(map_location)
    return student.to(device).eval(), explainer.to(device).eval(), config
