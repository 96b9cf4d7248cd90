"""Training: distil a black box into an attentive student, then train its explainer.

- :func:`distill` runs both stages and returns a ready
  :class:`~captum_akd.AttentiveDistillationAttribution`;
- :func:`distill_student` is stage 1 (knowledge distillation, optionally with
  mutual transfer between two students), :func:`train_explainer` stage 2;
- :class:`RunConfig` holds how a run is carried out (batch size, device,
  output directory, resume...), :class:`DistillConfig` and
  :class:`ExplainerConfig` the two stages' hyper-parameters with their tested
  defaults;
- :mod:`~captum_akd.distill.losses` and :mod:`~captum_akd.distill.mutual`
  hold the losses, :class:`BatchAugment` the augmentation both models see.

The modules with a leading underscore are the machinery (one training loop,
the two stage objects, data, state, fidelity reports) and may change.
"""

from captum_akd.distill._api import StudentResult, distill, distill_student, train_explainer
from captum_akd.distill.augment import BatchAugment
from captum_akd.distill.config import DistillConfig, ExplainerConfig, RunConfig

__all__ = [
    "BatchAugment",
    "DistillConfig",
    "ExplainerConfig",
    "RunConfig",
    "StudentResult",
    "distill",
    "distill_student",
    "train_explainer",
]
