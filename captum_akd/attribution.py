"""AttentiveDistillationAttribution: the library's Captum face."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from captum_akd._base import ImageAttribution
from captum_akd._validation import check_channels, check_min_size, check_same_device
from captum_akd.checkpoint import load_checkpoint, save_checkpoint
from captum_akd.models import AttentiveStudent, ExplanationNet


class AttentiveDistillationAttribution(ImageAttribution):
    r"""Saliency for a black-box classifier in one forward pass.

    Attentive knowledge distillation (Lee & Kim, Sensors 2021) explains a model
    that may only be called: the black box is distilled into an
    :class:`~captum_akd.models.AttentiveStudent` (a CNN with attention after
    every stage), and an :class:`~captum_akd.models.ExplanationNet` learns to
    turn the student's multi-level features and the class activation map of
    class ``c`` into a fine-grained map of where the evidence for ``c`` lies.
    Once both are trained (:func:`captum_akd.distill`), a map for any class
    costs one forward pass of the student and the explainer; the black box is
    only called when ``target`` is ``None``, to read its prediction.

    Maps are in [0, 1]: high where keeping the pixels preserves the class
    score and removing them destroys it.

    Args:
        forward_func: the black box, ``N x C x H x W -> N x K`` logits. Only
            called (under :func:`torch.no_grad`) when ``target`` is ``None``;
            may be ``None`` if every call gives ``target``.
        student: the distilled attentive student.
        explainer: the explanation network built for ``student``
            (:meth:`ExplanationNet.for_student`).
        input_size: ``(H, W)`` the pair was trained at, stored in checkpoints.
        normalization: ``{"mean": [...], "std": [...]}`` of the black box's
            input space, stored in checkpoints for reference.
        metadata: other JSON-serialisable facts to keep in checkpoints
            (training settings, fidelity reports).

    Shape:
        :meth:`attribute` (the shared
        :meth:`captum_akd._base.ImageAttribution.attribute`) maps
        ``N x C x H x W`` images (or a 1-tuple of them), with ``H`` and ``W``
        at least the student's ``min_input_size``, to ``N x 1 x H x W`` maps
        in [0, 1] (``N x C x H x W`` with ``expand_to_input=True``), in the
        same form as the inputs.

    Examples::

        >>> from captum_akd import AttentiveDistillationAttribution
        >>> from captum_akd.models import cifar_resnet_student, ExplanationNet
        >>> black_box = torch.nn.Sequential(torch.nn.Flatten(),
        ...                                 torch.nn.Linear(3 * 16 * 16, 3))
        >>> student = cifar_resnet_student(depth=8, num_classes=3)
        >>> explainer = ExplanationNet.for_student(student, width=16)
        >>> attr = AttentiveDistillationAttribution(black_box, student, explainer)
        >>> images = torch.randn(4, 3, 16, 16)
        >>> maps = attr.attribute(images, target=[0, 1, 2, 0])
        >>> maps.shape, bool(maps.min() >= 0), bool(maps.max() <= 1)
        (torch.Size([4, 1, 16, 16]), True, True)
        >>> attr.attribute(images).shape    # target=None: the black box's classes
        torch.Size([4, 1, 16, 16])
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor] | None,
        student: AttentiveStudent,
        explainer: ExplanationNet,
        *,
        input_size: tuple[int, int] | None = None,
        normalization: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(forward_func)
        if not isinstance(student, AttentiveStudent):
            raise TypeError(
                f"`student` must be an AttentiveStudent; got {type(student).__name__}"
            )
        if not isinstance(explainer, ExplanationNet):
            raise TypeError(
                f"`explainer` must be an ExplanationNet; got {type(explainer).__name__}"
            )
        if explainer.stage_channels != student.stage_channels:
            raise ValueError(
                f"`explainer` was built for stages with {explainer.stage_channels} channels "
                f"but `student` has {student.stage_channels}; use "
                "ExplanationNet.for_student(student)"
            )
        self.student = student.eval()
        self.explainer = explainer.eval()
        self.input_size = tuple(input_size) if input_size is not None else None
        self.normalization = dict(normalization) if normalization is not None else None
        self.metadata = dict(metadata or {})

    @property
    def num_classes(self) -> int:
        """The student's number of classes ``K``; targets must lie in ``[0, K)``."""
        return self.student.num_classes

    def to(self, device: str | torch.device) -> AttentiveDistillationAttribution:
        """Move the student and explainer to ``device``.

        Args:
            device: e.g. ``"cuda"`` or ``torch.device("cpu")``; inputs given to
                :meth:`attribute` must then be on the same device.

        Returns:
            ``self``, for chaining.

        Examples::

            >>> from captum_akd.models import cifar_resnet_student, ExplanationNet
            >>> student = cifar_resnet_student(depth=8, num_classes=3)
            >>> attr = AttentiveDistillationAttribution(
            ...     None, student, ExplanationNet.for_student(student, width=16))
            >>> device = "cuda" if torch.cuda.is_available() else "cpu"
            >>> attr.to(device) is attr
            True
            >>> images = torch.randn(2, 3, 16, 16, device=device)
            >>> attr.attribute(images, target=[0, 2]).device == images.device
            True
        """
        self.student.to(device)
        self.explainer.to(device)
        return self

    def _check_inputs(self, images: Tensor) -> None:
        check_channels(images, self.student.in_channels)
        check_min_size(images, self.student.min_input_size)
        check_same_device(images, self.student, "student")

    def _attribute_batch(
        self, images: Tensor, labels: Tensor, additional_forward_args: Any
    ) -> Tensor:
        # Batch norm in training mode would make a map depend on its batch.
        if self.student.training or self.explainer.training:
            self.student.eval()
            self.explainer.eval()
        return self.explainer.explain(self.student, images, labels)

    def save(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the student and explainer as a checkpoint directory.

        The directory holds ``student.safetensors``, ``explainer.safetensors``
        and ``config.json`` (builders and their arguments, class count, input
        size, normalisation, library version, SHA-256 of the weights,
        :attr:`metadata`). It is written under a temporary name and renamed
        into place, so it is never half-written.

        Args:
            directory: destination; must not exist unless ``overwrite``.
            overwrite: replace an existing captum-akd checkpoint there.

        Returns:
            The checkpoint directory.

        Examples::

            >>> from captum_akd.models import cifar_resnet_student, ExplanationNet
            >>> student = cifar_resnet_student(depth=8, num_classes=3)
            >>> attr = AttentiveDistillationAttribution(
            ...     None, student, ExplanationNet.for_student(student, width=16),
            ...     input_size=(16, 16))
            >>> path = attr.save("akd-ckpt")                # fails if it exists
            >>> sorted(p.name for p in path.iterdir())
            ['config.json', 'explainer.safetensors', 'student.safetensors']
            >>> attr.save("akd-ckpt")
            Traceback (most recent call last):
                ...
            FileExistsError: ...
            >>> attr.save("akd-ckpt", overwrite=True).name  # replaces a checkpoint
            'akd-ckpt'
        """
        metadata = dict(self.metadata)
        metadata["input_size"] = list(self.input_size) if self.input_size else None
        metadata["normalization"] = self.normalization
        return save_checkpoint(directory, self.student, self.explainer, metadata, overwrite)

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        forward_func: Callable[..., Tensor] | None = None,
        map_location: str | torch.device = "cpu",
    ) -> AttentiveDistillationAttribution:
        """Rebuild an attribution saved with :meth:`save`; nothing is unpickled.

        Args:
            directory: the checkpoint directory.
            forward_func: the black box (needed only for ``target=None``).
            map_location: device for the student and explainer.

        Returns:
            An attribution that gives the same maps as the one saved.

        Examples::

            >>> from captum_akd.models import cifar_resnet_student, ExplanationNet
            >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3))
            >>> student = cifar_resnet_student(depth=8, num_classes=3)
            >>> saved = AttentiveDistillationAttribution(
            ...     model, student, ExplanationNet.for_student(student, width=16),
            ...     input_size=(16, 16))
            >>> _ = saved.save("akd-ckpt")
            >>> attr = AttentiveDistillationAttribution.load("akd-ckpt", forward_func=model)
            >>> attr.input_size, attr.num_classes
            ((16, 16), 3)
            >>> images = torch.randn(2, 3, 16, 16)
            >>> torch.equal(attr.attribute(images), saved.attribute(images))
            True
        """
        student, explainer, config = load_checkpoint(directory, map_location)
        metadata = dict(config.get("metadata", {}))
        input_size = metadata.pop("input_size", None)
        normalization = metadata.pop("normalization", None)
        return cls(
            forward_func,
            student,
            explainer,
            input_size=input_size,
            normalization=normalization,
            metadata=metadata,
        )
