"""Metrics: how every number in the benchmarks is computed (``design.md`` section 5).

Faithfulness metrics call the black-box target, never the student, on the
target's own input space:

- :func:`insertion`, :func:`deletion`: RISE's causal metrics (curves and areas).
- :func:`average_drop`, :func:`increase_in_confidence` (both at once:
  :func:`confidence_change`).
- :func:`mean_pixel_intensity`: compactness of a map.
- :func:`pointing_game`, :func:`energy_pointing_game`: localisation against masks.
- :func:`throughput`: images per second, methods and plain inference alike.
- :func:`sanity_check`, :func:`randomize_model`, :func:`spearman_correlation`:
  the model-randomisation test.
- :func:`road` (with :func:`noisy_linear_imputation`): ROAD, remove and
  debias, most and least relevant first and combined.
- :class:`UniformNoiseControl`, :class:`CentreGaussianControl`,
  :class:`SobelEdgeControl` (all :class:`ControlAttribution`): model-free maps
  scored like methods; a method is useful only where it beats all three.
- :func:`bootstrap_interval`, :func:`paired_comparison`: a mean with its 95 %
  bootstrap interval, and a paired comparison of two methods with a verdict.
"""

from captum_akd.metrics.causal import CausalMetricResult, deletion, insertion
from captum_akd.metrics.confidence import (
    ConfidenceResult,
    average_drop,
    confidence_change,
    increase_in_confidence,
)
from captum_akd.metrics.controls import (
    CentreGaussianControl,
    ControlAttribution,
    SobelEdgeControl,
    UniformNoiseControl,
)
from captum_akd.metrics.imputation import noisy_linear_imputation
from captum_akd.metrics.intensity import mean_pixel_intensity
from captum_akd.metrics.pointing import energy_pointing_game, pointing_game
from captum_akd.metrics.remove_and_debias import ROADResult, road
from captum_akd.metrics.sanity import (
    SanityCheckResult,
    randomize_model,
    sanity_check,
    spearman_correlation,
)
from captum_akd.metrics.throughput import ThroughputResult, throughput
from captum_akd.metrics.uncertainty import (
    BootstrapInterval,
    PairedComparison,
    bootstrap_interval,
    paired_comparison,
)

__all__ = [
    "BootstrapInterval",
    "CausalMetricResult",
    "CentreGaussianControl",
    "ConfidenceResult",
    "ControlAttribution",
    "PairedComparison",
    "ROADResult",
    "SanityCheckResult",
    "SobelEdgeControl",
    "ThroughputResult",
    "UniformNoiseControl",
    "average_drop",
    "bootstrap_interval",
    "confidence_change",
    "deletion",
    "energy_pointing_game",
    "increase_in_confidence",
    "insertion",
    "mean_pixel_intensity",
    "noisy_linear_imputation",
    "paired_comparison",
    "pointing_game",
    "randomize_model",
    "road",
    "sanity_check",
    "spearman_correlation",
    "throughput",
]
