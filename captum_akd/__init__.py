"""captum-akd: fast saliency maps for black-box image classifiers.

A black box is distilled into an attentive student; an explanation network
trained on the student's multi-level features then gives a class-specific map
in one forward pass, through Captum's ``attribute`` interface.
"""

from captum_akd._version import __version__
from captum_akd.attribution import AttentiveDistillationAttribution
from captum_akd.baselines import LayerwiseSurrogateCAM
from captum_akd.distill import distill as distill

__all__ = ["AttentiveDistillationAttribution", "LayerwiseSurrogateCAM", "__version__"]
