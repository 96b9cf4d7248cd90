"""Training: distil a black box into an attentive student, then train its explainer.

- :func:`distill` runs both stages and returns a ready
  :class:`~captum_akd.AttentiveDistillationAttribution`;
- :func:`distill_student` is stage 1 (knowledge distillation, optionally with
  mutual transfer between two students), :func:`train_explainer` stage 2;
- :class:`DistillConfig` and :class:`ExplainerConfig` hold their
  hyper-parameters and tested defaults;
- :mod:`~captum_akd.distill.losses` and :mod:`~captum_akd.distill.mutual`
  hold the losses, :mod:`~captum_akd.distill.fidelity` the reports.
"""

from captum_akd.distill.api import distill
from captum_akd.distill.augment import BatchAugment
from captum_akd.distill.config import DistillConfig, ExplainerConfig
from captum_akd.distill.stage1 import StudentResult, distill_student
from captum_akd.distill.stage2 import train_explainer

__all__ = [
    "BatchAugment",
    "DistillConfig",
    "ExplainerConfig",
    "StudentResult",
    "distill",
    "distill_student",
    "train_explainer",
]
