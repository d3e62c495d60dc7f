"""The base of every built-in dataset: maps on one sampling, kept as one dense
block ``[N, n, C]`` so that training reads whole batches without collating."""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import pickle
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset

from ..utils import ArrayCache, atomic_save, default_cache_dir

#: Errors of ``torch.load`` on a truncated, empty or garbage file.
_LOAD_ERRORS = (RuntimeError, EOFError, OSError, ValueError, KeyError, AssertionError,
                AttributeError, TypeError, ImportError, pickle.UnpicklingError)


class MapSample(Data):
    """A sample of a :class:`DenseMapDataset`: a :class:`~torch_geometric.data.Data`
    whose per-sample ``map_index`` is not shifted by the number of nodes when
    samples are batched (PyG shifts every attribute named ``*index*``)."""
    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key == 'map_index':
            return 0
        return super().__inc__(key, value, *args, **kwargs)


class DenseMapDataset(InMemoryDataset):
    r"""Maps on one sampling, in PyG's :class:`~torch_geometric.data.InMemoryDataset`
    layout (``root/raw``: the generated data, ``root/processed``: the split),
    with the whole split also readable as dense tensors (:meth:`tensors`).

    Each sample is a :class:`~torch_geometric.data.Data` with ``x`` [n, C],
    ``y`` ([1] for a class, [n] for per-pixel labels), the pixels (``pos``,
    ``sampling``, and ``ipix`` for a partial sky) and the per-sample fields of
    the subclass (e.g. ``map_index``).

    Raw data go through :class:`~pyg_sphere.utils.ArrayCache` in ``raw_dir``
    (keyed by every parameter that changes them, checksummed, atomic, locked),
    so settings never overwrite each other and a damaged file is regenerated.
    The processed split is named by a digest of the raw data and of the
    processing parameters; a truncated or unreadable processed file is
    rebuilt. ``pre_transform`` and ``pre_filter`` work as in PyG (they see
    clean samples with their pixels); ``transform`` is applied on access, not
    by :meth:`tensors`.

    Subclasses set :attr:`sampling` (or override :meth:`pixels`) and
    implement :meth:`make_raw` (return the raw arrays, generating them into
    :attr:`raw_cache` if needed), :meth:`samples` (the split's dense arrays
    from the raw ones) and :meth:`processing_params`; :meth:`read_x` changes
    ``x`` on access (e.g. adds seeded noise).
    """
    #: sub-folder of :func:`~pyg_sphere.utils.default_cache_dir` for ``root=None``
    cache_kind: str = 'datasets'
    #: bump when :meth:`samples` changes what it makes from the raw data
    processing_format: int = 1

    sampling: Data

    def __init__(self, root: Optional[str], transform: Optional[Callable],
                 pre_transform: Optional[Callable], pre_filter: Optional[Callable],
                 force_reload: bool, log: bool) -> None:
        if root is None:
            root = str(default_cache_dir(self.cache_kind))
        if not isinstance(root, (str, os.PathLike)):
            raise ValueError(f"Expected 'root' to be a folder path (got {root!r})")
        root = osp.expanduser(os.fspath(root))
        self.raw_cache = ArrayCache(Path(root) / 'raw')
        self._raw = self.make_raw(log, force_reload)
        self._tag = self._digest()
        super().__init__(root, transform, pre_transform, pre_filter, log=log,
                         force_reload=force_reload)
        try:
            self.load(self.processed_paths[0])
            self._check_loaded()
        except _LOAD_ERRORS:  # damaged processed file: make it again
            self.process()
            self.load(self.processed_paths[0])
            self._check_loaded()

    def load(self, path: str, data_cls: type = Data) -> None:
        super().load(path, data_cls)
        if type(self._data) is Data:  # samples batch as MapSample (a pre_transform's class stays)
            self._data = MapSample.from_dict(self._data.to_dict())

    # -- what subclasses provide -----------------------------------------------

    def make_raw(self, log: bool, force: bool) -> Dict[str, Any]:
        """The raw arrays (generated into :attr:`raw_cache` if needed), plus
        ``'sha256'``: a list of their checksums (they name the processed file)."""
        raise NotImplementedError

    def samples(self, raw: Dict[str, Any]) -> Dict[str, Tensor]:
        """This split's samples: ``'x'`` float32 [N, n, C], ``'y'`` long [N]
        or [N, n], and any other per-sample long tensors [N]. Here: the raw
        ``'x'`` and ``'y'`` as they are (see :meth:`cached_block`)."""
        return {'x': torch.from_numpy(np.ascontiguousarray(raw['x'], dtype=np.float32)),
                'y': torch.from_numpy(np.asarray(raw['y'], dtype=np.int64))}

    def cached_block(self, name: str, params: Dict[str, Any],
                     build: Callable[[], Dict[str, np.ndarray]], x_shape: Tuple[int, ...],
                     y_shape: Tuple[int, ...], force: bool) -> Dict[str, Any]:
        """The raw arrays ``x`` and ``y`` of one :attr:`raw_cache` entry
        (built by ``build()`` when missing, damaged or of another shape), with
        their checksum: what :meth:`make_raw` returns for a dataset whose
        samples are one dense block."""
        def check(a: Dict[str, np.ndarray]) -> bool:
            return (set(a) == {'x', 'y'} and a['x'].shape == tuple(x_shape)
                    and a['y'].shape == tuple(y_shape) and a['x'].dtype == np.float32)

        arrays = self.raw_cache.get_or_build(name, params, build, check=check, force=force)
        info = self.raw_cache.info(name, params, single=False)
        return {'x': arrays['x'], 'y': arrays['y'], 'sha256': [info['sha256']]}

    def processing_params(self) -> Dict[str, Any]:
        """Every parameter of :meth:`samples` (the split, its fractions, ...)."""
        raise NotImplementedError

    def pixels(self, fields: Dict[str, int]) -> Data:
        """The pixels of the sample with these per-sample ``fields``."""
        return self.sampling

    def read_x(self, x: Tensor, fields: Dict[str, Tensor]) -> Tensor:
        """``x`` [N, n, C] as read (noise, standardization, ...); ``fields``
        holds the per-sample tensors [N] of those samples (``y`` among them
        for a class per sample). Identity here."""
        return x

    # -- PyG protocol ----------------------------------------------------------

    @property
    def raw_file_names(self) -> List[str]:
        # Raw data are checked and made by make_raw() before PyG looks.
        return []

    @property
    def processed_file_names(self) -> str:
        split = getattr(self, 'split', 'all')
        return f'{split}-{self._tag}.pt'

    def download(self) -> None:  # pragma: no cover - raw data are generated
        pass

    def _digest(self) -> str:
        payload = {'format': self.processing_format, 'class': type(self).__name__,
                   'raw': self._raw.get('sha256'), 'params': self.processing_params()}
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def process(self) -> None:
        s = self.samples(self._raw)
        X, y = s.pop('x'), s.pop('y')
        N, n = X.size(0), X.size(1)
        self._expected = (N, n)
        if self.pre_transform is None and self.pre_filter is None:
            data = Data(x=X.reshape(N * n, X.size(2)), y=y.reshape(-1), **s)
            step = n if y.dim() == 2 else 1
            slices = {'x': torch.arange(N + 1) * n, 'y': torch.arange(N + 1) * step,
                      **{k: torch.arange(N + 1) for k in s}}
            out: Tuple[Any, ...] = (data.to_dict(), slices, Data)
        else:
            data_list = []
            for i in range(N):
                fields = {k: v[i:i + 1] for k, v in s.items()}
                d = Data(x=X[i], y=y[i] if y.dim() == 2 else y[i:i + 1], **fields)
                d = self._with_pixels(d, {k: int(v) for k, v in fields.items()})
                if self.pre_filter is not None and not self.pre_filter(d):
                    continue
                if self.pre_transform is not None:
                    d = self.pre_transform(d)
                data_list.append(d)
            if not data_list:
                raise ValueError(f"Expected 'pre_filter' to keep at least one of the {N} "
                                 f"samples of {type(self).__name__} (it kept none)")
            data, slices = self.collate(data_list)
            out = (data.to_dict(), slices, data.__class__)
        Path(self.processed_dir).mkdir(parents=True, exist_ok=True)
        atomic_save(out, self.processed_paths[0])

    def _check_loaded(self) -> None:
        """A processed file that loads but does not hold the expected samples
        (e.g. edited by hand) is refused."""
        if self.slices is None or 'x' not in self.slices or self._data.x is None:
            raise ValueError('processed file without samples')
        if self.pre_filter is None and self.pre_transform is None:
            expected = getattr(self, '_expected', None)
            if expected is None:
                s = self.samples(self._raw)
                expected = (s['x'].size(0), s['x'].size(1))
                self._expected = expected
            sizes = self.slices['x'][1:] - self.slices['x'][:-1]
            if sizes.numel() != expected[0] or bool((sizes != expected[1]).any()):
                raise ValueError('processed file of another shape')

    def _with_pixels(self, data: Data, fields: Dict[str, int]) -> Data:
        pixels = self.pixels({k: v for k, v in fields.items() if k != 'y'})
        data.pos = pixels.pos
        if 'sampling' in pixels:
            data.sampling = pixels.sampling
        if 'ipix' in pixels:
            data.ipix = pixels.ipix
        return data

    def get(self, idx: int) -> Data:
        data = super().get(idx)
        fields = {k: data[k].view(-1)[:1] for k in self._field_names()}
        if 'pos' not in data:
            data = self._with_pixels(data, {k: int(v[0]) for k, v in fields.items()
                                            if k != 'y'})
        data.x = self.read_x(data.x.unsqueeze(0), fields)[0]
        return data

    def _field_names(self) -> List[str]:
        """The per-sample fields (one value per sample), ``y`` included when
        it is a class per sample."""
        n = len(self.slices['x']) - 1
        return [k for k, s in self.slices.items()
                if k not in ('x', 'pos', 'ipix') and len(s) == n + 1
                and isinstance(self._data[k], Tensor) and self._data[k].dim() == 1
                and self._data[k].numel() == n]

    # -- dense access ----------------------------------------------------------

    def _selection(self) -> Optional[Tensor]:
        if self._indices is None:
            return None
        return torch.as_tensor(list(self.indices()), dtype=torch.long)

    def field(self, key: str) -> Tensor:
        """A per-sample field (e.g. ``'y'``, ``'map_index'``) of the selected
        samples, [N] (or [N, n] for per-pixel labels)."""
        values = self._data[key]
        if key == 'y' and values.numel() != len(self.slices['x']) - 1:
            values = values.view(len(self.slices['x']) - 1, -1)
        sel = self._selection()
        return values if sel is None else values[sel]

    def tensors(self) -> Tuple[Tensor, Tensor]:
        """The selected samples as dense tensors ``(X [N, n, C], y)``, with
        ``y`` [N] (a class per sample) or [N, n] (a label per pixel): the
        values of ``dataset[i].x`` / ``.y`` (``transform`` not applied).

        Needs samples of equal size (a ``pre_transform`` could change that).
        """
        x, slices = self._data.x, self.slices['x']
        sizes = slices[1:] - slices[:-1]
        if sizes.numel() and bool((sizes != sizes[0]).any()):
            raise ValueError(f"tensors() needs samples of equal size; the pre_transform "
                             f"made samples of {sorted(set(sizes.tolist()))} pixels")
        n = int(sizes[0]) if sizes.numel() else 0
        X = x.view(-1, n, x.size(-1) if x.dim() > 1 else 1)
        sel = self._selection()
        if sel is not None:
            X = X[sel]
        fields = {k: self.field(k) for k in self._field_names()}
        X = self.read_x(X, fields)
        if X.data_ptr() == self._data.x.data_ptr():
            X = X.clone()
        return X, self.field('y').clone()
