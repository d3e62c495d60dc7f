r"""Synthetic atmospheric states with labelled extreme events, the dataset of
the DeepSphere climate task (`Defferrard et al. 2020
<https://openreview.net/forum?id=B1e3OlStPB>`_)."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from .._validation import _got, check_bool, check_choice, check_int, check_real
from ..samplings import sampling_key, sampling_positions
from ..simulate.climate import CLIMATE_CHANNELS, CLIMATE_CLASSES, GENERATOR_VERSION, climate_maps
from ..utils import progress as _progress
from ._dense import DenseMapDataset
from ._split import SPLITS

#: Dataset splits; each has its own maps.
CLIMATE_SPLITS: Tuple[str, ...] = SPLITS
_SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}


def _check_stats(stats: Any) -> Tuple[Tensor, Tensor]:
    c = len(CLIMATE_CHANNELS)
    ok = isinstance(stats, (tuple, list)) and len(stats) == 2 and all(
        isinstance(s, Tensor) and s.shape == (c,) and s.is_floating_point() for s in stats)
    if not ok:
        raise ValueError(f"Expected 'stats' to be a pair (mean, std) of float tensors of shape "
                         f"[{c}], as returned by channel_stats() (got {_got(stats)})")
    mean, std = (s.detach().cpu().float() for s in stats)
    if not bool(torch.isfinite(mean).all()) or not bool((std > 0).all()) \
            or not bool(torch.isfinite(std).all()):
        raise ValueError(f"Expected 'stats' to hold finite means and positive finite stds "
                         f"(got mean={mean.tolist()}, std={std.tolist()})")
    return mean, std


class ClimateEvents(DenseMapDataset):
    r"""Synthetic maps of the DeepSphere climate task (`Defferrard et al. 2020
    <https://openreview.net/forum?id=B1e3OlStPB>`_): 16 channels
    (:obj:`~pyg_sphere.simulate.CLIMATE_CHANNELS`), 3 classes
    (:obj:`~pyg_sphere.simulate.CLIMATE_CLASSES`: background, tropical
    cyclone, atmospheric river) with the imbalance of the paper, made by
    :func:`~pyg_sphere.simulate.generate_climate_fields` on the pixels of
    ``sampling``.

    Map :math:`i` of a split is seeded by ``(seed, split, i)``: the same for
    any ``n_maps`` (the first maps of a larger dataset are the same maps),
    different between splits. Each sample is a
    :class:`~torch_geometric.data.Data` with ``x`` [n, 16] (float32,
    standardized per channel when ``standardize``), ``y`` [n] (long) and
    ``pos`` [n, 3]; :meth:`tensors` gives the whole split as dense tensors.

    Standardization uses, per channel, the mean and std over every pixel of
    every map of the dataset (:meth:`channel_stats`, unweighted by pixel
    area), or the ``stats`` given: pass ``train.channel_stats()`` to the
    validation and test sets.

    Generation takes about 30 ms per map of 10,242 pixels on one CPU core;
    the maps are cached in ``root/raw``, keyed by the pixels and every
    argument that changes them.

    Args:
        sampling (Data or torch.Tensor): the pixels, a ``Data`` with ``pos``
            [n, 3] (e.g. :func:`~pyg_sphere.samplings.icosahedral` (5), the
            sampling of the paper) or the unit vectors themselves.
        split (str, optional): one of :obj:`CLIMATE_SPLITS`.
            (default: :obj:`'train'`)
        n_maps (int, optional): number of maps. (default: :obj:`100`)
        seed (int, optional): master seed. (default: :obj:`0`)
        root (str, optional): the dataset folder (``raw/``, ``processed/``).
            (default: ``default_cache_dir('climate')``)
        standardize (bool, optional): standardize the channels of ``x``.
            (default: :obj:`True`)
        stats (tuple, optional): ``(mean, std)``, float tensors [16] in
            physical units, used to standardize. (default: :obj:`None`, this
            dataset's :meth:`channel_stats`)
        noise (float, optional): scale of the white noise of the fields.
            (default: :obj:`1.0`)
        transform, pre_transform, pre_filter (callable, optional): as in
            :class:`~torch_geometric.data.InMemoryDataset`.
        force_reload (bool, optional): regenerate the maps and re-process.
            (default: :obj:`False`)
        log (bool, optional): show a progress bar while generating.
            (default: :obj:`False`)

    Example:
        >>> from pyg_sphere.samplings import icosahedral
        >>> train = ClimateEvents(icosahedral(3), n_maps=4)  # doctest: +SKIP
        >>> X, y = train.tensors()  # doctest: +SKIP
        >>> X.shape, y.shape  # doctest: +SKIP
        (torch.Size([4, 642, 16]), torch.Size([4, 642]))
    """
    cache_kind = 'climate'

    def __init__(self, sampling: Union[Data, Tensor], split: str = 'train',
                 n_maps: int = 100, seed: int = 0, root: Optional[str] = None,
                 standardize: bool = True, stats: Optional[Tuple[Tensor, Tensor]] = None,
                 noise: float = 1.0, transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None, force_reload: bool = False,
                 log: bool = False) -> None:
        pos = sampling_positions(sampling)
        self.sampling = sampling if isinstance(sampling, Data) else Data(pos=pos)
        self.split = check_choice('split', split, CLIMATE_SPLITS)
        self.n_maps = check_int('n_maps', n_maps, minimum=1)
        self.seed = check_int('seed', seed, minimum=0)
        self.noise = check_real('noise', noise, 0.0)
        self.standardize = check_bool('standardize', standardize)
        self._given_stats = None if stats is None else _check_stats(stats)
        self._stats: Optional[Tuple[Tensor, Tensor]] = None
        super().__init__(root, transform, pre_transform, pre_filter, force_reload, log)

    @property
    def pos(self) -> Tensor:
        """The pixels, [n, 3]."""
        return self.sampling.pos

    def make_raw(self, log: bool, force: bool) -> Dict[str, Any]:
        params = {'version': GENERATOR_VERSION, 'split': self.split, 'n_maps': self.n_maps,
                  'seed': self.seed, 'noise': self.noise,
                  'pixels': sampling_key(self.sampling)}
        shape = (self.n_maps, self.pos.size(0))

        def build() -> Dict[str, np.ndarray]:
            bar = _progress(self.n_maps, f'climate maps ({self.split})', log)
            try:
                seeds = [[self.seed, _SPLIT_IDS[self.split], i] for i in range(self.n_maps)]
                x, y = climate_maps(self.pos, seeds, self.noise, bar)
            finally:
                bar.close()
            return {'x': x, 'y': y}

        return self.cached_block('climate_' + self.split, params, build,
                                 shape + (len(CLIMATE_CHANNELS),), shape, force)

    def processing_params(self) -> Dict[str, Any]:
        return {'split': self.split, 'n_maps': self.n_maps}

    def channel_stats(self) -> Tuple[Tensor, Tensor]:
        """``(mean, std)``, float32 [16]: the stats used to standardize, the
        ``stats`` given or else the mean and std of each channel over every
        pixel of this dataset (physical units)."""
        if self._given_stats is not None:
            mean, std = self._given_stats
        else:
            if self._stats is None:
                flat = torch.from_numpy(self._raw['x']).view(-1, len(CLIMATE_CHANNELS)).double()
                mean, std = flat.mean(0), flat.std(0)
                std = torch.where(std > 0, std, torch.ones_like(std))  # constant channel
                self._stats = (mean.float(), std.float())
            mean, std = self._stats
        return mean.clone(), std.clone()

    def read_x(self, x: Tensor, fields: Dict[str, Tensor]) -> Tensor:
        if not self.standardize:
            return x
        mean, std = self.channel_stats()
        return (x - mean) / std

    def class_fractions(self) -> Tensor:
        """Fraction of pixels of each class over the selected maps, float64 [3]."""
        y = self.field('y')
        counts = torch.bincount(y.reshape(-1), minlength=len(CLIMATE_CLASSES)).double()
        return counts / counts.sum()
