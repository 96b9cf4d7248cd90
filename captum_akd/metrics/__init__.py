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
"""

from captum_akd.metrics.causal import CausalMetricResult, deletion, insertion
from captum_akd.metrics.confidence import (
    ConfidenceResult,
    average_drop,
    confidence_change,
    increase_in_confidence,
)
from captum_akd.metrics.intensity import mean_pixel_intensity
from captum_akd.metrics.pointing import energy_pointing_game, pointing_game
from captum_akd.metrics.sanity import (
    SanityCheckResult,
    randomize_model,
    sanity_check,
    spearman_correlation,
)
from captum_akd.metrics.throughput import ThroughputResult, throughput

__all__ = [
    "CausalMetricResult",
    "ConfidenceResult",
    "SanityCheckResult",
    "ThroughputResult",
    "average_drop",
    "confidence_change",
    "deletion",
    "energy_pointing_game",
    "increase_in_confidence",
    "insertion",
    "mean_pixel_intensity",
    "pointing_game",
    "randomize_model",
    "sanity_check",
    "spearman_correlation",
    "throughput",
]
