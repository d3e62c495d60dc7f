"""Training: a resumable, optionally data-parallel loop for dense batches of
spherical maps, its objectives, and atomic run-directory writes."""
from ._io import atomic_save, atomic_write_bytes, atomic_write_text
from .config import TrainConfig, config_dict
from .distributed import (DistContext, GlobalBatchNorm, convert_batchnorm, init_from_env,
                          shutdown)
from .loop import Standardize, evaluate, predict_proba, train_classifier, train_model
from .objectives import Classification, Segmentation

__all__ = [
    'TrainConfig',
    'config_dict',
    'train_model',
    'train_classifier',
    'evaluate',
    'predict_proba',
    'Standardize',
    'Classification',
    'Segmentation',
    'DistContext',
    'GlobalBatchNorm',
    'convert_batchnorm',
    'init_from_env',
    'shutdown',
    'atomic_save',
    'atomic_write_text',
    'atomic_write_bytes',
]
