r"""Weak-lensing convergence maps of two cosmologies, the dataset of the
DeepSphere cosmology task (`Perraudin et al. 2019 <https://arxiv.org/abs/1810.12186>`_)."""
from __future__ import annotations

import numbers
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from .._validation import check_choice, check_int, check_real, is_power_of_two
from ..samplings import healpix
from ..simulate.cosmology_config import CosmologyConfig
from ..simulate.lensing_maps import generate_maps, map_checksums
from ._dense import DenseMapDataset
from ._split import SPLITS, check_fractions, split_indices

#: Default fractions of maps in the train / val / test splits.
SPLIT_FRACTIONS: Tuple[float, float, float] = (0.6, 0.2, 0.2)
#: Default partial-sky patch order o (12 o^2 NESTED patches per map).
DEFAULT_PATCH_ORDER: Optional[int] = 1
#: Default std of the white noise added to the convergence maps: about the
#: pixel std of the default maps (0.0042), i.e. shape noise 0.26 for ~1.2
#: galaxies per arcmin^2 at nside 64.
DEFAULT_NOISE_STD: float = 0.004

_SPLIT_TAG = 0x5EED5
_NOISE_TAG = 0x401CE


def split_maps(n_maps: int, seed: int = 0,
               fractions: Sequence[float] = SPLIT_FRACTIONS) -> Dict[str, np.ndarray]:
    """Deterministic split of the map indices ``range(n_maps)`` into train /
    val / test (sorted index arrays; the same maps for every class):
    ``round(n_maps * fraction)`` maps go to val and to test, the rest to train."""
    return split_indices(n_maps, fractions, seed=[_SPLIT_TAG, check_int('seed', seed, 0)])


def check_patch_order(patch_order: Any, nside: int) -> Optional[int]:
    """``None`` (full sky) or a power of two dividing ``nside``."""
    if patch_order is None:
        return None
    if isinstance(patch_order, bool) or not isinstance(patch_order, numbers.Integral) \
            or not is_power_of_two(int(patch_order)) or nside % int(patch_order):
        raise ValueError(f"Expected 'patch_order' to be None (full sky) or a power of two "
                         f"that divides nside={nside} (got {patch_order!r})")
    return int(patch_order)


def patch_noise(noise_seed: int, label: int, map_index: int, patch: int, n: int,
                std: float) -> np.ndarray:
    """The white noise of one sample, float32 [n], seeded by
    ``(noise_seed, label, map_index, patch)``."""
    rng = np.random.default_rng([_NOISE_TAG, noise_seed, label, map_index, patch])
    return rng.standard_normal(n, dtype=np.float32) * np.float32(std)


class CosmologyMaps(DenseMapDataset):
    r"""Weak-lensing convergence maps of two cosmologies, as full-sky maps or
    partial-sky patches (the DeepSphere cosmology task,
    `Perraudin et al. 2019 <https://arxiv.org/abs/1810.12186>`_).

    Maps are simulated on first use by
    :func:`~pyg_sphere.simulate.generate_maps` into ``root/raw`` (cached,
    checksummed, keyed by the configuration, so several configurations live
    side by side) and split by map into train / val / test
    (:func:`split_maps`), so the patches of one map are all in one split.
    Each sample is a :class:`~torch_geometric.data.Data` with

    * ``x`` [n, 1]: convergence plus white noise of std ``noise_std``,
    * ``y`` [1]: the class, the index of the model in ``config.cosmologies``,
    * ``pos`` [n, 3], ``sampling`` (and ``ipix`` [n] for patches): the pixels,
      as made by :func:`pyg_sphere.samplings.healpix` (NESTED),
    * ``map_index``, ``patch`` [1]: where the sample comes from.

    A patch of order :math:`o` is one of the :math:`12 o^2` NESTED base
    pixels of :math:`N_{side} = o`: the contiguous pixel range
    :math:`[p\,m, (p + 1)\,m)` with :math:`m = (N_{side} / o)^2`.

    The noise is added when a sample is read, seeded by ``(noise_seed, y,
    map_index, patch)``: fixed for a sample, independent of the split and of
    the order of reading. It is added after ``pre_transform`` (which sees the
    clean maps) and before ``transform``.

    Args:
        root (str, optional): the dataset folder (``raw/``, ``processed/``).
            (default: ``default_cache_dir('cosmology')``)
        split (str, optional): one of :obj:`SPLITS`. (default: :obj:`'train'`)
        config (CosmologyConfig, optional): simulation parameters.
            (default: :obj:`CosmologyConfig()`)
        patch_order (int, optional): patch order :math:`o` (a power of two
            dividing ``nside``), or :obj:`None` for full-sky maps.
            (default: :obj:`DEFAULT_PATCH_ORDER`)
        noise_std (float, optional): std of the white noise.
            (default: :obj:`DEFAULT_NOISE_STD`)
        noise_seed (int, optional): seed of the noise. (default: :obj:`0`)
        split_fractions (tuple, optional): fractions of maps in train / val /
            test. (default: :obj:`SPLIT_FRACTIONS`)
        workers (int, optional): processes used to generate the maps.
            (default: :obj:`1`)
        transform, pre_transform, pre_filter (callable, optional): as in
            :class:`~torch_geometric.data.InMemoryDataset`.
        force_reload (bool, optional): re-process the split. Generation is
            redone only when the cache is invalid. (default: :obj:`False`)
        log (bool, optional): print progress. (default: :obj:`True`)

    Example:
        >>> train = CosmologyMaps(split='train', workers=2)  # doctest: +SKIP
        >>> train  # 2 classes x 76 maps x 12 patches  # doctest: +SKIP
        CosmologyMaps(1824)
        >>> X, y = train.tensors()  # [1824, 4096, 1], [1824]  # doctest: +SKIP
        >>> graph = train.patch_data(0)  # pos [4096, 3] of patch 0  # doctest: +SKIP
    """
    cache_kind = 'cosmology'
    processing_format = 2

    def __init__(self, root: Optional[str] = None, split: str = 'train',
                 config: Optional[CosmologyConfig] = None,
                 patch_order: Optional[int] = DEFAULT_PATCH_ORDER,
                 noise_std: float = DEFAULT_NOISE_STD, noise_seed: int = 0,
                 split_fractions: Sequence[float] = SPLIT_FRACTIONS, workers: int = 1,
                 transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None, force_reload: bool = False,
                 log: bool = True) -> None:
        config = CosmologyConfig() if config is None else config
        if not isinstance(config, CosmologyConfig):
            raise ValueError(f"Expected 'config' to be a CosmologyConfig (got "
                             f"{type(config).__name__})")
        self.split = check_choice('split', split, SPLITS)
        self.config = config
        self.patch_order = check_patch_order(patch_order, config.nside)
        self.noise_std = check_real('noise_std', noise_std, 0.0)
        self.noise_seed = check_int('noise_seed', noise_seed, minimum=0)
        self.split_fractions = check_fractions(split_fractions)
        self._split = split_maps(config.n_maps, config.seed, self.split_fractions)[self.split]
        self.workers = check_int('workers', workers, minimum=1)
        self._patches: Dict[int, Data] = {}
        super().__init__(root, transform, pre_transform, pre_filter, force_reload, log)

    # -- raw data and processing -----------------------------------------------

    def make_raw(self, log: bool, force: bool) -> Dict[str, Any]:
        root = self.raw_cache.root
        paths = generate_maps(self.config, root, workers=self.workers, progress=log)
        return {'maps': [np.load(p, mmap_mode='r', allow_pickle=False) for p in paths],
                'sha256': map_checksums(self.config, root)}

    def processing_params(self) -> Dict[str, Any]:
        return {'split': self.split, 'fractions': list(self.split_fractions),
                'patch_order': self.patch_order, 'config': self.config.to_dict()}

    def samples(self, raw: Dict[str, Any]) -> Dict[str, Tensor]:
        m, p = self.patch_size, self.num_patches
        idx = self._split
        xs, ys, maps, patches = [], [], [], []
        for label, maps_c in enumerate(raw['maps']):
            block = np.asarray(maps_c[idx], dtype=np.float32)       # [M, npix]
            xs.append(torch.from_numpy(block.reshape(len(idx) * p, m, 1)))
            ys.append(torch.full((len(idx) * p,), label, dtype=torch.long))
            maps.append(torch.from_numpy(np.repeat(idx, p).astype(np.int64)))
            patches.append(torch.arange(p).repeat(len(idx)))
        return {'x': torch.cat(xs), 'y': torch.cat(ys), 'map_index': torch.cat(maps),
                'patch': torch.cat(patches)}

    def read_x(self, x: Tensor, fields: Dict[str, Tensor]) -> Tensor:
        if self.noise_std <= 0:
            return x
        n = x[0].numel() if x.size(0) else 0
        noise = np.stack([patch_noise(self.noise_seed, int(c), int(i), int(q), n,
                                      self.noise_std)
                          for c, i, q in zip(fields['y'].tolist(),
                                             fields['map_index'].tolist(),
                                             fields['patch'].tolist())]) if x.size(0) else \
            np.zeros((0, n), dtype=np.float32)
        return x + torch.from_numpy(noise).view_as(x).to(x.dtype)

    # -- geometry --------------------------------------------------------------

    @property
    def num_patches(self) -> int:
        """Patches per map: :math:`12 o^2`, or 1 for full-sky maps."""
        return 1 if self.patch_order is None else 12 * self.patch_order ** 2

    @property
    def patch_size(self) -> int:
        """Pixels per sample: :math:`12 N_{side}^2 / \\text{num\\_patches}`."""
        return 12 * self.config.nside ** 2 // self.num_patches

    def patch_data(self, patch: int = 0) -> Data:
        """The pixels of ``patch`` (``pos``, ``sampling``, ``ipix`` for a
        partial sky), from :func:`~pyg_sphere.samplings.healpix` (NESTED)."""
        patch = check_int('patch', patch, minimum=0)
        if patch >= self.num_patches:
            raise ValueError(f"Expected 'patch' < {self.num_patches} (got {patch})")
        if patch not in self._patches:
            if self.patch_order is None:
                self._patches[patch] = healpix(self.config.nside, nest=True)
            else:
                m = self.patch_size
                self._patches[patch] = healpix(self.config.nside, nest=True,
                                               indexes=np.arange(patch * m, (patch + 1) * m))
        return self._patches[patch]

    def pixels(self, fields: Dict[str, int]) -> Data:
        return self.patch_data(fields.get('patch', 0))

    @property
    def labels(self) -> Tensor:
        """Class of each sample, long [N]."""
        return self.field('y')

    @property
    def map_indices(self) -> Tensor:
        """Map index (within its class) of each sample, long [N]."""
        return self.field('map_index')

    @property
    def patches(self) -> Tensor:
        """Patch index of each sample, long [N] (0 for full-sky maps)."""
        return self.field('patch')
