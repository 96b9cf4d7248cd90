"""The methods captum-akd is compared against, all with the same Captum face.

Each returns ``N x 1 x H x W`` maps from ``attribute(inputs, target=...)``:

- :class:`GradCAM`: Captum's ``LayerGradCam`` upsampled to the input (white box).
- :class:`RISE`: randomised input sampling (black box, perturbation).
- :class:`LimeImage`: LIME on superpixels, ``lime`` package or Captum engine.
- :class:`LayerwiseSurrogateCAM`: Grad-CAM at every stage of the distilled student.
"""

from captum_akd.baselines.gradcam import GradCAM
from captum_akd.baselines.layerwise_cam import LayerwiseSurrogateCAM
from captum_akd.baselines.lime import LimeImage
from captum_akd.baselines.rise import RISE

__all__ = ["RISE", "GradCAM", "LayerwiseSurrogateCAM", "LimeImage"]
