"""Classical baselines of the built-in tasks: summary statistics of maps
(power spectrum, pixel histogram, channel statistics) and the linear
classifier fitted on them."""
from .linear import LinearClassifier
from .statistics import (channel_statistics, histogram_edges, histogram_features,
                         power_spectrum_features)

__all__ = [
    'LinearClassifier',
    'power_spectrum_features',
    'histogram_edges',
    'histogram_features',
    'channel_statistics',
]
