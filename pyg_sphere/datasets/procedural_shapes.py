"""Parametric solids projected onto a sphere: the built-in, download-free
data of the shapes task."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch_geometric.data import Data

from .._validation import check_choice, check_int
from ..samplings import sampling_key, sampling_positions
from ..simulate.mesh_perturbation import check_perturbation, perturb_mesh
from ..simulate.solids import SHAPE_CLASSES, generate_shape
from ..transforms.mesh_projection import (MESH_CENTERS, MESH_CHANNELS, MESH_ROTATIONS,
                                          check_translate, project_mesh, random_pose)
from ..utils import progress as _progress
from ..utils.pool import run_jobs
from ._dense import DenseMapDataset
from ._split import SPLITS

#: Dataset splits.
SHAPE_SPLITS: Tuple[str, ...] = SPLITS

_FORMAT = 3  # bump when generation or projection changes the cached values
_CHUNK = 64  # samples projected by one job (a dataset of one chunk stays in this process)


def check_sampling(sampling: Any) -> Data:
    """A sampling ``Data`` with unit-vector ``pos`` (ValueError otherwise)."""
    sampling_positions(sampling)
    if not isinstance(sampling, Data):
        raise ValueError(f"Expected 'sampling' to be a Data with 'pos' (a sampling from "
                         f"pyg_sphere.samplings) (got a {type(sampling).__name__})")
    return sampling


class ProceduralShapes(DenseMapDataset):
    r"""Parametric solids of random proportions projected onto a sphere: a
    small, download-free stand-in for the SHREC'17 task of
    `Cohen et al. (2018) <https://arxiv.org/abs/1801.10130>`_.

    Sample :math:`j` of class :math:`c` in a split is :func:`~pyg_sphere.simulate.generate_shape`
    with a generator seeded by ``(seed, split, c, j)`` (``c`` the position in
    :obj:`~pyg_sphere.simulate.SHAPE_CLASSES`, so a sample does not depend on ``classes`` or on
    the other samples), deformed, noised and cut by
    :func:`~pyg_sphere.simulate.perturb_mesh` (``deform``, ``noise``,
    ``partial``; nothing with the defaults), posed by the same generator (``rotate``, then a
    translation in a uniform direction of length uniform in
    :math:`[0, \text{translate}]`) and projected with
    :func:`~pyg_sphere.transforms.project_mesh`. Samples are sorted by
    class: labels ``0 .. len(classes) - 1`` in the order of ``classes``.

    Each sample is a :class:`~torch_geometric.data.Data` with ``x`` [n, 6]
    (float32, :obj:`~pyg_sphere.transforms.MESH_CHANNELS`), ``y`` [1] and
    ``pos`` [n, 3] (the pixels of ``sampling``).

    Args:
        sampling (Data): the pixels, e.g. ``healpix(16)``.
        split (str, optional): one of :obj:`SHAPE_SPLITS`. (default: ``'train'``)
        n_per_class (int, optional): samples per class. (default: :obj:`40`)
        seed (int, optional): master seed, >= 0. (default: :obj:`0`)
        rotate (str, optional): one of
            :obj:`~pyg_sphere.transforms.MESH_ROTATIONS`. (default: ``'none'``)
        translate (float, optional): largest shift, in units of the
            normalized radius. (default: :obj:`0.0`)
        center (str, optional): one of
            :obj:`~pyg_sphere.transforms.MESH_CENTERS`. (default: ``'bbox'``)
        classes (sequence of str, optional): a subset of :obj:`~pyg_sphere.simulate.SHAPE_CLASSES`.
            (default: all)
        deform (float, optional): strength of the smooth random deformation,
            in :math:`[0, 1]`. (default: :obj:`0.0`)
        noise (float, optional): surface noise, std of the displacement of the
            vertices along their normals in units of the mesh radius, in
            :math:`[0, 0.1]`. (default: :obj:`0.0`)
        partial (float, optional): largest fraction of the surface cut away
            (open meshes, as partial scans), in :math:`[0, 1)`.
            (default: :obj:`0.0`)
        workers (int, optional): processes that project the meshes, in
            chunks of 64 (the values do not depend on it). (default: :obj:`1`)
        root (str, optional): the dataset folder (``raw/``: the projected
            samples, keyed by every parameter; ``processed/``).
            (default: ``default_cache_dir('shapes')``)
        transform, pre_transform, pre_filter (callable, optional): as in
            :class:`~torch_geometric.data.InMemoryDataset`.
        force_reload (bool, optional): regenerate even if cached.
            (default: :obj:`False`)
        log (bool, optional): show a progress bar. (default: :obj:`False`)

    Example:
        >>> from pyg_sphere.samplings import healpix
        >>> ds = ProceduralShapes(healpix(4), n_per_class=2,
        ...                       classes=('box', 'torus'))  # doctest: +SKIP
        >>> ds  # doctest: +SKIP
        ProceduralShapes(4)
        >>> X, y = ds.tensors()  # doctest: +SKIP
        >>> X.shape, y.tolist()  # doctest: +SKIP
        (torch.Size([4, 192, 6]), [0, 0, 1, 1])
    """
    cache_kind = 'shapes'

    def __init__(self, sampling: Data, split: str = 'train', n_per_class: int = 40,
                 seed: int = 0, rotate: str = 'none', translate: float = 0.0,
                 center: str = 'bbox', classes: Sequence[str] = SHAPE_CLASSES,
                 deform: float = 0.0, noise: float = 0.0, partial: float = 0.0,
                 workers: int = 1, root: Optional[str] = None, transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None, force_reload: bool = False,
                 log: bool = False) -> None:
        self.sampling = check_sampling(sampling)
        self.split = check_choice('split', split, SHAPE_SPLITS)
        self.n_per_class = check_int('n_per_class', n_per_class, minimum=1)
        self.seed = check_int('seed', seed, minimum=0)
        self.rotate = check_choice('rotate', rotate, MESH_ROTATIONS)
        self.translate = check_translate(translate)
        self.center = check_choice('center', center, MESH_CENTERS)
        if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes:
            raise ValueError(f"Expected 'classes' to be a non-empty sequence of names from "
                             f"{SHAPE_CLASSES} (got {classes!r})")
        for name in classes:
            check_choice('classes', name, SHAPE_CLASSES)
        if len(set(classes)) != len(classes):
            raise ValueError(f"Expected 'classes' to have no duplicates (got {tuple(classes)})")
        self.classes = tuple(classes)
        self.deform, self.noise, self.partial = check_perturbation(deform, noise, partial)
        self.workers = check_int('workers', workers, minimum=1)
        super().__init__(root, transform, pre_transform, pre_filter, force_reload, log)

    def _params(self) -> Dict[str, Any]:
        return {'format': _FORMAT, 'sampling': sampling_key(self.sampling),
                'split': self.split, 'n_per_class': self.n_per_class, 'seed': self.seed,
                'rotate': self.rotate, 'translate': self.translate, 'center': self.center,
                'classes': list(self.classes), 'deform': self.deform, 'noise': self.noise,
                'partial': self.partial}

    def make_raw(self, log: bool, force: bool) -> Dict[str, Any]:
        num, n = len(self.classes) * self.n_per_class, self.sampling.pos.size(0)
        return self.cached_block('shapes_' + self.split, self._params(),
                                 lambda: self._generate(log), (num, n, len(MESH_CHANNELS)),
                                 (num,), force)

    def processing_params(self) -> Dict[str, Any]:
        return self._params()

    def mesh(self, label: int, index: int) -> Tuple[np.ndarray, np.ndarray, Any, Any]:
        """``(vertices, faces, rotation, translation)`` of sample ``index`` of
        class ``classes[label]`` (perturbed; before normalization and pose)."""
        label = check_int('label', label, minimum=0)
        index = check_int('index', index, minimum=0)
        if label >= len(self.classes) or index >= self.n_per_class:
            raise ValueError(f"Expected 'label' < {len(self.classes)} and 'index' < "
                             f"{self.n_per_class} (got {label}, {index})")
        return _sample_mesh(self._params(), self.classes[label], index)

    def _generate(self, log: bool) -> Dict[str, np.ndarray]:
        n = self.sampling.pos.size(0)
        num = len(self.classes) * self.n_per_class
        X = np.empty((num, n, len(MESH_CHANNELS)), dtype=np.float32)
        y = np.repeat(np.arange(len(self.classes)), self.n_per_class)
        params, pos = self._params(), self.sampling.pos.detach().cpu().double().numpy()
        jobs = [(params, pos, [(i, self.classes[y[i]], i % self.n_per_class)
                               for i in range(start, min(start + _CHUNK, num))])
                for start in range(0, num, _CHUNK)]
        bar = _progress(num, f'ProceduralShapes {self.split}', log)
        for rows, values in run_jobs(jobs, _project_chunk, self.workers):
            X[rows] = values
            bar.update(len(rows))
        bar.close()
        return {'x': X, 'y': y}


def _sample_mesh(params: Dict[str, Any], name: str, index: int
                 ) -> Tuple[np.ndarray, np.ndarray, Any, Any]:
    """The perturbed mesh and pose of sample ``index`` of class ``name``."""
    rng = np.random.default_rng([params['seed'], SHAPE_SPLITS.index(params['split']),
                                 SHAPE_CLASSES.index(name), index])
    vertices, faces = generate_shape(name, rng)
    vertices, faces = perturb_mesh(vertices, faces, rng, params['deform'], params['noise'],
                                   params['partial'])
    rotation, translation = random_pose(rng, params['rotate'], params['translate'])
    return vertices, faces, rotation, translation


def _project_chunk(job: Tuple[Dict[str, Any], np.ndarray, List[Tuple[int, str, int]]]
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """``(rows, maps [len(rows), n, 6])`` of a chunk of samples (run in this
    process or in a worker)."""
    params, pos, items = job
    pos = torch.from_numpy(pos)
    out = np.empty((len(items), pos.size(0), len(MESH_CHANNELS)), dtype=np.float32)
    for k, (_, name, index) in enumerate(items):
        vertices, faces, rotation, translation = _sample_mesh(params, name, index)
        out[k] = project_mesh(vertices, faces, pos, center=params['center'], rotation=rotation,
                              translation=translation).float().numpy()
    return np.array([i for i, _, _ in items], dtype=np.int64), out
