"""Networks: the attentive student, its attention blocks and the explainer."""

from captum_akd.models.attention import CBAM, ChannelAttention, SpatialAttention
from captum_akd.models.builders import (
    STUDENT_ARCHS,
    STUDENT_BUILDERS,
    StudentArch,
    build_student,
    cifar_resnet_student,
    efficientnet_lite_student,
    resnet_student,
)
from captum_akd.models.explainer import ExplanationNet
from captum_akd.models.student import AttentiveStudent, StudentOutput

__all__ = [
    "CBAM",
    "STUDENT_ARCHS",
    "STUDENT_BUILDERS",
    "AttentiveStudent",
    "ChannelAttention",
    "ExplanationNet",
    "SpatialAttention",
    "StudentArch",
    "StudentOutput",
    "build_student",
    "cifar_resnet_student",
    "efficientnet_lite_student",
    "resnet_student",
]
