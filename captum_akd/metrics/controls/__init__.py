"""Controls: model-free maps scored like methods (``../design.md`` section 5).

A method is useful only where it beats all three:

- :class:`UniformNoiseControl`: seeded uniform noise, a chance ranking;
- :class:`CentreGaussianControl`: a centred Gaussian, sigma a quarter of the side;
- :class:`SobelEdgeControl`: the lightly smoothed Sobel edge magnitude of the image.

All subclass :class:`ControlAttribution`, which gives them the face of the
project's baselines and makes sure the model is never called.
"""

from captum_akd.metrics.controls.base import ControlAttribution
from captum_akd.metrics.controls.centre_gaussian import CentreGaussianControl
from captum_akd.metrics.controls.sobel_edges import SobelEdgeControl
from captum_akd.metrics.controls.uniform_noise import UniformNoiseControl

__all__ = [
    "CentreGaussianControl",
    "ControlAttribution",
    "SobelEdgeControl",
    "UniformNoiseControl",
]
