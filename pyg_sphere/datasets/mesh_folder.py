"""A folder of real meshes (ModelNet or plain layout) projected onto a sphere."""
from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from torch_geometric.data import Data

from .._validation import _got, check_choice, check_int
from ..io.mesh import MESH_FORMATS, load_mesh
from ..io.shrec17 import read_shrec17, shrec17_csvs
from ..samplings import sampling_key
from ..transforms.mesh_projection import (MESH_CENTERS, MESH_CHANNELS, MESH_ROTATIONS,
                                          check_translate, project_mesh, random_pose)
from ..utils import progress as _progress
from ._dense import DenseMapDataset
from ._split import SPLITS, check_fractions, split_indices
from .procedural_shapes import check_sampling

#: Default fractions of the meshes of a class in train / val / test
#: (:class:`MeshFolder` without train/test folders).
MESH_SPLIT_FRACTIONS: Tuple[float, float, float] = (0.7, 0.1, 0.2)

_FORMAT = 3  # bump when projection or the split rule changes the cached values


def split_files(files: List[Path], fractions: Sequence[float], seed: int,
                cls: str) -> Dict[str, List[Path]]:
    """Seeded split of the sorted ``files`` of a class by ``fractions``
    (:func:`~pyg_sphere.datasets._split.split_indices`, seeded by the seed
    and the class name)."""
    if not files:
        return {s: [] for s in SPLITS}
    parts = split_indices(len(files), fractions, seed=[seed, zlib.crc32(cls.encode())])
    return {s: [files[i] for i in parts[s]] for s in SPLITS}


def _mesh_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower().lstrip('.') in MESH_FORMATS)


def _scan_shrec17(root: Path, split: str, split_fractions: Sequence[float], seed: int
                  ) -> Tuple[List[str], List[List[Path]]]:
    """Classes and the files of ``split`` of each, in the SHREC'17 layout."""
    entries = read_shrec17(root)
    classes = sorted({cls for _, cls, _ in entries})
    with_split = [s for _, _, s in entries if s is not None]
    if with_split and len(with_split) < len(entries):
        raise ValueError(f"Expected every row of the CSV files of '{root}' to have a split, or "
                         f"none (got {len(entries) - len(with_split)} without)")
    for path, _, s in entries:
        if s is not None and s not in SPLITS:
            raise ValueError(f"Expected the split of '{path.name}' to be one of {SPLITS} "
                             f"(got '{s}')")
    per_class = []
    for cls in classes:
        files = [p for p, c, _ in entries if c == cls]
        if with_split:
            per_class.append([p for p, c, s in entries if c == cls and s == split])
        else:
            per_class.append(split_files(files, split_fractions, seed, cls)[split])
    return classes, per_class


def scan_mesh_folder(root: Path, split: str, split_fractions: Sequence[float], seed: int
                     ) -> Tuple[Tuple[str, ...], List[Path], List[int]]:
    """``(classes, files, labels)`` of ``split`` in the mesh folder ``root``
    (see :class:`MeshFolder` for the layouts and the split)."""
    if shrec17_csvs(root):
        classes, per_class = _scan_shrec17(root, split, split_fractions, seed)
        return _flatten(root, split, split_fractions, classes, per_class)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    classes, per_class = [], []
    for folder in folders:
        subdirs = [folder / s for s in ('train', 'test') if (folder / s).is_dir()]
        if subdirs:
            train = _mesh_files(folder / 'train') if (folder / 'train').is_dir() else []
            test = _mesh_files(folder / 'test') if (folder / 'test').is_dir() else []
            if not train and not test:
                continue
            f_train, f_val = split_fractions[:2]
            total = f_train + f_val
            parts = split_files(train, (f_train / total, f_val / total, 0.0),
                                seed, folder.name)
            parts['test'] = test
        else:
            files = _mesh_files(folder)
            if not files:
                continue
            parts = split_files(files, split_fractions, seed, folder.name)
        classes.append(folder.name)
        per_class.append(parts[split])
    if not classes:
        raise ValueError(f"Expected 'folder' to hold class folders with mesh files "
                         f"({', '.join('*.' + e for e in MESH_FORMATS)}) directly or in "
                         f"train/ and test/ sub-folders, or a SHREC'17 CSV of ids and "
                         f"classes (got none in '{root}')")
    return _flatten(root, split, split_fractions, classes, per_class)


def _flatten(root: Path, split: str, split_fractions: Sequence[float], classes: List[str],
             per_class: List[List[Path]]) -> Tuple[Tuple[str, ...], List[Path], List[int]]:
    files = [p for part in per_class for p in part]
    if not files:
        raise ValueError(f"Expected split '{split}' of '{root}' to hold at "
                         f"least one mesh file (got none; split_fractions="
                         f"{split_fractions})")
    labels = [c for c, part in enumerate(per_class) for _ in part]
    return tuple(classes), files, labels


class MeshFolder(DenseMapDataset):
    r"""A directory of mesh files, one folder per class, projected onto a
    sphere with :func:`~pyg_sphere.transforms.project_mesh` (the SHREC'17 /
    ModelNet setting of `Cohen et al. (2018)
    <https://arxiv.org/abs/1801.10130>`_).

    Layouts (decided per class folder):

    * ModelNet: ``folder/<class>/train/*.off`` and ``folder/<class>/test/*.off``.
      ``test`` is the test folder; the train folder is split into train and
      val in the ratio ``split_fractions[0] : split_fractions[1]``.
    * Plain: ``folder/<class>/*.off``, split into train / val / test by
      ``split_fractions`` (seeded by ``seed`` and the class name).
    * SHREC'17 (chosen when ``folder`` holds a CSV file with an ``id`` and a
      class column, see :func:`~pyg_sphere.io.read_shrec17`): mesh files
      named ``model_<id>.obj`` or ``<id>.obj`` in ``folder`` or below it
      (e.g. the challenge's ``train_normal/``), classes from the CSV
      (``synsetId``); the CSV's ``split`` column (train / val / test) when it
      has one, else ``split_fractions`` as for the plain layout. Listed ids
      without a file are left out.

    Classes are the sub-folders of ``folder`` holding mesh files (extensions
    :obj:`~pyg_sphere.io.MESH_FORMATS`), or the CSV's classes, sorted by name; labels are
    their positions. The
    files of a split are sorted by class, then by path. Each mesh is read
    with :func:`~pyg_sphere.io.load_mesh` (needs ``trimesh``), posed with a generator seeded
    by ``(seed, split, path)`` and projected. Samples are as in
    :class:`ProceduralShapes`; ``classes`` holds the class names and
    ``files`` the paths, in the order of the samples.

    Args:
        folder (str): the directory of class folders (read only).
        sampling (Data): the pixels, e.g. ``healpix(32)``.
        split (str, optional): one of :obj:`SHAPE_SPLITS`. (default: ``'train'``)
        rotate (str, optional): one of
            :obj:`~pyg_sphere.transforms.MESH_ROTATIONS`. (default: ``'none'``)
        translate (float, optional): largest shift. (default: :obj:`0.0`)
        center (str, optional): one of
            :obj:`~pyg_sphere.transforms.MESH_CENTERS`. (default: ``'bbox'``)
        seed (int, optional): seed of the split and the poses. (default: :obj:`0`)
        split_fractions (tuple, optional): train / val / test fractions.
            (default: :obj:`MESH_SPLIT_FRACTIONS`)
        root (str, optional): the dataset folder caching the projected
            samples (``raw/``, keyed by the parameters and the files' paths,
            sizes and modification times; ``processed/``).
            (default: ``default_cache_dir('shapes')``)
        transform, pre_transform, pre_filter (callable, optional): as in
            :class:`~torch_geometric.data.InMemoryDataset`.
        force_reload (bool, optional): re-project even if cached.
            (default: :obj:`False`)
        log (bool, optional): show a progress bar. (default: :obj:`False`)
    """
    cache_kind = 'shapes'

    def __init__(self, folder: str, sampling: Data, split: str = 'train',
                 rotate: str = 'none', translate: float = 0.0, center: str = 'bbox',
                 seed: int = 0, split_fractions: Sequence[float] = MESH_SPLIT_FRACTIONS,
                 root: Optional[str] = None, transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None, force_reload: bool = False,
                 log: bool = False) -> None:
        if not isinstance(folder, (str, os.PathLike)):
            raise ValueError(f"Expected 'folder' to be a str or os.PathLike (got "
                             f"{_got(folder)})")
        self.folder = Path(os.path.expanduser(str(folder)))
        if not self.folder.is_dir():
            raise ValueError(f"Expected 'folder' to be an existing directory (got '{folder}')")
        self.sampling = check_sampling(sampling)
        self.split = check_choice('split', split, SPLITS)
        self.rotate = check_choice('rotate', rotate, MESH_ROTATIONS)
        self.translate = check_translate(translate)
        self.center = check_choice('center', center, MESH_CENTERS)
        self.seed = check_int('seed', seed, minimum=0)
        self.split_fractions = check_fractions(split_fractions)
        self.classes, self.files, self._labels = scan_mesh_folder(
            self.folder, self.split, self.split_fractions, self.seed)
        super().__init__(root, transform, pre_transform, pre_filter, force_reload, log)

    def _params(self) -> Dict[str, Any]:
        stats = [(str(p.relative_to(self.folder)), p.stat().st_size, p.stat().st_mtime_ns)
                 for p in self.files]
        return {'format': _FORMAT, 'sampling': sampling_key(self.sampling),
                'folder': str(self.folder.resolve()), 'split': self.split,
                'rotate': self.rotate, 'translate': self.translate, 'center': self.center,
                'seed': self.seed, 'split_fractions': list(self.split_fractions),
                'classes': list(self.classes), 'files': stats}

    def make_raw(self, log: bool, force: bool) -> Dict[str, Any]:
        num, n = len(self.files), self.sampling.pos.size(0)
        return self.cached_block('meshes_' + self.split, self._params(),
                                 lambda: self._project(self._labels, log),
                                 (num, n, len(MESH_CHANNELS)), (num,), force)

    def processing_params(self) -> Dict[str, Any]:
        return self._params()

    def _project(self, labels: List[int], log: bool) -> Dict[str, np.ndarray]:
        n = self.sampling.pos.size(0)
        X = np.empty((len(self.files), n, len(MESH_CHANNELS)), dtype=np.float32)
        bar = _progress(len(self.files), f'MeshFolder {self.split}', log)
        split_id = SPLITS.index(self.split)
        for i, path in enumerate(self.files):
            vertices, faces = load_mesh(path)
            rel = str(path.relative_to(self.folder)).replace(os.sep, '/')
            rng = np.random.default_rng([self.seed, split_id, zlib.crc32(rel.encode())])
            rotation, translation = random_pose(rng, self.rotate, self.translate)
            try:
                x = project_mesh(vertices, faces, self.sampling.pos, center=self.center,
                                 rotation=rotation, translation=translation)
            except ValueError as err:
                raise ValueError(f"Could not project the mesh '{path}': {err}") from err
            X[i] = x.float().numpy()
            bar.update()
        bar.close()
        return {'x': X, 'y': np.asarray(labels, dtype=np.int64)}
