"""Training: a resumable, optionally data-parallel loop for dense batches of
spherical maps, and its objectives."""
from .augment import PatchSymmetries
from .config import TrainConfig
from .distributed import (DistContext, GlobalBatchNorm, convert_batchnorm, init_from_env,
                          shutdown)
from .loop import Standardize, evaluate, predict_proba, train_model
from .objectives import Classification, Segmentation, class_weights

__all__ = [
    'TrainConfig',
    'train_model',
    'evaluate',
    'predict_proba',
    'Standardize',
    'PatchSymmetries',
    'Classification',
    'Segmentation',
    'class_weights',
    'DistContext',
    'GlobalBatchNorm',
    'convert_batchnorm',
    'init_from_env',
    'shutdown',
]
