"""``pyg-sphere train climate``: dense segmentation of extreme weather events
(tropical cyclones and atmospheric rivers) with a spherical U-Net, as in the
DeepSphere climate experiment (Jiang et al. 2019 data, class-weighted loss,
mean accuracy / IoU / average precision over the two event classes)."""
from __future__ import annotations

import argparse
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch_geometric.data import Data

from .._catalog import TASK_DEFAULTS, TASK_SAMPLINGS
from ._base import (Task, TaskData, TaskError, data_dir_option, no_masked_skip, reject_options,
                    task_cache)
from ._samplings import build_sampling, check_sampling, pooling_levels, resolution_option

#: training maps simulated by default (val and test get a quarter each)
DEFAULT_TRAIN_MAPS = 64
DEFAULT_RESOLUTION = {'icosahedral': 5, 'healpix': 32}
#: the netCDF variable holding the labels of user data
LABEL_VARIABLE = 'LABELS'
#: fractions of the time steps of user data in train / val / test (contiguous)
USER_SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
#: encoder widths of the paper's U-Net, finest first
_WIDTHS = (32, 64, 128, 256, 512, 512, 512)


@dataclass(frozen=True)
class ClimateData:
    """The data options of the climate task.

    Args:
        sampling (str): ``'icosahedral'`` or ``'healpix'``.
        resolution (int): its subdivisions or nside.
        n_maps (int): simulated training maps (val and test get a quarter,
            at least 4).
        data_dir (str, optional): a netCDF file or folder of them instead of
            the simulated maps.
        seed (int): seed of the simulated maps.
    """
    sampling: str = 'icosahedral'
    resolution: int = DEFAULT_RESOLUTION['icosahedral']
    n_maps: int = DEFAULT_TRAIN_MAPS
    data_dir: Optional[str] = None
    seed: int = 0


class ClimateTask(Task):
    name = 'climate'
    data_type = ClimateData
    defaults = TASK_DEFAULTS['climate']
    samplings = TASK_SAMPLINGS['climate']

    def data_config(self, args: argparse.Namespace) -> ClimateData:
        check_sampling(self.name, args.sampling, self.samplings)
        res = resolution_option(args, args.sampling, DEFAULT_RESOLUTION[args.sampling])
        build_sampling(args.sampling, res)  # validates
        n = DEFAULT_TRAIN_MAPS if args.n_maps is None else args.n_maps
        if n < 4:
            raise TaskError(f'--n-maps: expected at least 4 training maps (got {n})')
        reject_options(self.name, args, ('patch_order', 'noise_std', 'rotate', 'augment', 'deform',
                                          'surface_noise', 'partial'))
        if pooling_levels(args.sampling, res, 5) < 1:
            option = 'subdivisions' if args.sampling == 'icosahedral' else 'nside'
            raise TaskError(f'--{option}: the U-Net needs a sampling that can be coarsened at '
                            f'least once (got {args.sampling} {option} {res})')
        data_dir = data_dir_option(args.data_dir, folder_only=False)
        return ClimateData(sampling=args.sampling, resolution=res, n_maps=n, data_dir=data_dir,
                           seed=args.seed)

    def classes(self, config: Any) -> List[str]:
        from ..simulate import CLIMATE_CLASSES
        return list(CLIMATE_CLASSES)

    def sampling(self, config: Any) -> Data:
        return build_sampling(config.data.sampling, config.data.resolution)

    def _user_data(self, config: Any) -> Dict[str, Any]:
        """Time steps of the user's netCDF file(s) in (file, time) order, split
        into contiguous blocks (neighbouring time steps are nearly the same
        map, so a random split would leak test into train)."""
        from ..datasets import split_indices
        from ..io import load_netcdf
        from ..simulate import CLIMATE_CHANNELS
        path = Path(config.data.data_dir)
        files = sorted(path.glob('*.nc')) if path.is_dir() else [path]
        if not files:
            raise TaskError(f'--data-dir: no .nc files in {path}')
        sampling = self.sampling(config)
        xs, ys = [], []
        for f in files:
            try:
                fields = load_netcdf(f, sampling, CLIMATE_CHANNELS, LABEL_VARIABLE)
            except (ValueError, KeyError, OSError, ImportError) as err:
                raise TaskError(f'{f}: {err}') from None
            xs.append(fields.x)
            ys.append(fields.y)
        X, y = torch.cat(xs), torch.cat(ys)
        if X.size(0) < 3:
            raise TaskError(f'--data-dir: expected at least 3 time steps to split into '
                            f'train / val / test (got {X.size(0)})')
        parts = split_indices(X.size(0), USER_SPLIT_FRACTIONS)
        if not all(len(p) for p in parts.values()):
            raise TaskError(f'--data-dir: {X.size(0)} time steps are too few for a split '
                            f'{USER_SPLIT_FRACTIONS} with a non-empty val and test')
        return {k: (X[torch.from_numpy(v)], y[torch.from_numpy(v)]) for k, v in parts.items()}

    def load(self, config: Any, progress: bool,
             splits: Sequence[str] = ('train', 'val', 'test')) -> TaskData:
        from ..datasets import ClimateEvents
        data = config.data
        if data.data_dir is not None:
            sets = self._user_data(config)
        else:
            sampling = self.sampling(config)
            small = max(data.n_maps // 4, 4)
            sets = {}
            for split, n in (('train', data.n_maps), ('val', small), ('test', small)):
                if split in splits:
                    sets[split] = ClimateEvents(sampling, split, n_maps=n, seed=data.seed,
                                                root=task_cache(config, 'climate'),
                                                standardize=False, log=progress).tensors()
        empty = (torch.zeros(0), torch.zeros(0, dtype=torch.long))
        return TaskData(train=sets.get('train', empty), val=sets.get('val', empty),
                        test=sets.get('test', empty), class_names=self.classes(config))

    def objective(self, config: Any, data: TaskData) -> Any:
        from ..training import Segmentation, class_weights
        return Segmentation(3, weight=class_weights(data.train[1], 3), score_classes=(1, 2))

    def model(self, config: Any, graph: Data, **kwargs: Any) -> torch.nn.Module:
        from ..nn import SphericalUNet
        from ..training import Standardize
        data = config.data
        levels = pooling_levels(data.sampling, data.resolution, 5)
        pool = 'keep' if data.sampling == 'icosahedral' else 'max'
        scale = config.input_scale
        net = SphericalUNet.climate(data=graph, channels=_WIDTHS[:levels + 2], levels=levels,
                                    pool=pool, k=config.k, **kwargs)
        return Standardize(net, *((scale.mean, scale.std) if scale else (0.0, 1.0)))

    def baselines(self, config: Any, data: TaskData, graph: Data,
                  log: Any) -> Dict[str, Any]:
        """A per-pixel linear (softmax) classifier on the 16 channels, without
        spatial context, fitted on the pixels of 32 training maps."""
        from ..baselines import LinearClassifier
        from ..metrics import segmentation_metrics
        X, y = data.train
        gen = torch.Generator().manual_seed(0)
        keep = torch.randperm(X.size(0), generator=gen)[:32]
        clf = LinearClassifier(weight_decay=1e-4, max_iter=200).fit(
            X[keep].reshape(-1, X.size(-1)), y[keep].reshape(-1))
        Xt, yt = data.test
        logits = clf.decision_function(Xt.reshape(-1, Xt.size(-1))).float()
        if logits.size(1) < 3:  # a class absent from the training pixels
            logits = torch.cat([logits, logits.new_full((logits.size(0), 3 - logits.size(1)),
                                                        -1e4)], 1)
        m = segmentation_metrics(logits.view(*yt.shape, 3), yt, 3, from_logits=True,
                                 mean_classes=(1, 2))
        return {'pixel_linear_mean_ap': m.mean_ap, 'pixel_linear_mean_accuracy':
                m.mean_accuracy, 'pixel_linear_mean_iou': m.mean_iou}

    def summary_lines(self, summary: Dict[str, Any]) -> List[str]:
        t, b = summary['test'], summary['baselines']
        lines = ['test set, mean over tropical cyclones and atmospheric rivers:',
                 f'  {"":<30} {"accuracy":>9} {"IoU":>7} {"AP":>7}',
                 f'  {"DeepSphere U-Net (weighted)":<30} {t["mean_accuracy"] * 100:8.1f}% '
                 f'{t["mean_iou"] * 100:6.1f}% {t["mean_ap"] * 100:6.1f}%']
        if b:
            lines.append(f'  {"per-pixel linear baseline":<30} '
                         f'{b["pixel_linear_mean_accuracy"] * 100:8.1f}% '
                         f'{b["pixel_linear_mean_iou"] * 100:6.1f}% '
                         f'{b["pixel_linear_mean_ap"] * 100:6.1f}%')
        acc = t['class_accuracy']
        shown = [('background', acc[0]), ('TC', acc[1]), ('AR', acc[2])]
        lines.append('  per class accuracy: ' + ', '.join(
            f'{name} {a * 100:.1f} %' if a is not None and a == a else
            f'{name} n/a (no {name} pixel in the test set)' for name, a in shown))
        return lines

    def plots(self, run_dir: Path, config: Any, model: torch.nn.Module, data: TaskData,
              summary: Dict[str, Any], device: str) -> List[str]:
        from ..plotting import plot_maps
        from ..simulate import CLIMATE_CHANNELS
        from ..training import predict_proba
        X, y = data.test
        events = (y > 0).sum(1)
        pick = torch.argsort(events, descending=True)[:2].tolist()
        pred = predict_proba(model, X[pick], device=device).argmax(-1)
        tmq = CLIMATE_CHANNELS.index('TMQ')
        maps, titles, kw = [], [], []
        labels = ['background', 'TC', 'AR']
        for j, i in enumerate(pick):
            maps += [X[i, :, tmq].numpy(), y[i].numpy(), pred[j].numpy()]
            titles += [f'map {i}: TMQ (input)', 'true labels', 'predicted labels']
            kw += [{'unit': 'TMQ, precipitable water (kg m-2)'},
                   {'categorical': True, 'labels': labels},
                   {'categorical': True, 'labels': labels}]
        plot_maps(maps, self.sampling(config), titles, run_dir / 'predictions.png', ncols=3,
                  map_kwargs=kw)
        return ['predictions.png']

    def _read_input(self, path: Path, config: Any, sampling: Data) -> torch.Tensor:
        """Fields ``[T, n, 16]`` in physical units from a netCDF file (lat-lon,
        interpolated), a ``.npy`` array ``[n, 16]`` or ``[T, n, 16]`` on the
        run's pixels, or, for a HEALPix run, a FITS file of 16 fields (RING or
        NESTED)."""
        from ..io import check_real_array, is_fits, load_netcdf, read_healpix_fields
        from ..simulate import CLIMATE_CHANNELS
        c, n = len(CLIMATE_CHANNELS), sampling.num_nodes
        if not path.exists():
            raise TaskError(f'{path}: no such file')
        suffix = path.suffix.lower()
        if suffix == '.nc':
            try:
                return load_netcdf(path, sampling, CLIMATE_CHANNELS).x
            except (ValueError, KeyError, OSError, ImportError) as err:
                raise TaskError(f'{path}: {err}') from None
        if suffix == '.npy':
            try:
                values = np.load(path, allow_pickle=False)
            except Exception as err:
                raise TaskError(f'{path}: cannot read a .npy array ({err})') from None
            try:
                values = check_real_array(path, values)
            except ValueError as err:
                raise TaskError(str(err)) from None
            if values.ndim == 2:
                values = values[None]
            if values.ndim != 3 or values.shape[1:] != (n, c) or values.shape[0] == 0:
                raise TaskError(f'{path}: expected an array [{n}, {c}] or [T, {n}, {c}] with '
                                f'T >= 1 (pixels of the run, channels '
                                f'{", ".join(CLIMATE_CHANNELS)}), got shape {values.shape}')
            if not np.isfinite(values).all():
                raise TaskError(f'{path}: {int((~np.isfinite(values)).sum())} NaN / infinite '
                                f'values; fill them first')
            return torch.from_numpy(values.astype(np.float32))
        if is_fits(path):
            if config.data.sampling != 'healpix':
                raise TaskError(f'{path}: FITS maps need a run on the HEALPix sampling (this '
                                f'run uses {config.data.sampling}); pass netCDF or .npy')
            try:
                fields = read_healpix_fields(path, config.data.resolution, c)
            except (ValueError, OSError) as err:
                raise TaskError(str(err)) from None
            return torch.from_numpy(fields.astype(np.float32))[None]
        raise TaskError(f'{path}: expected a netCDF (.nc), .npy or HEALPix FITS file')

    def predict(self, run_dir: Path, config: Any, model: torch.nn.Module,
                inputs: Sequence[str], output: Optional[str], device: str,
                masked: str = 'error') -> Path:
        from ..training import predict_proba
        from ..utils import atomic_write_bytes
        no_masked_skip(self.name, masked)
        sampling = self.sampling(config)
        xs, names = [], []
        for path in inputs:
            xs.append(self._read_input(Path(path), config, sampling))
            names += [str(path)] * xs[-1].size(0)
        X = torch.cat(xs)
        prob = predict_proba(model, X, device=device)
        out = Path(output) if output else run_dir / 'predictions.npz'
        buf = io.BytesIO()
        np.savez_compressed(buf, labels=prob.argmax(-1).numpy().astype(np.int8),
                            probabilities=prob.numpy().astype(np.float32),
                            pos=sampling.pos.numpy(), classes=np.array(config.classes),
                            files=np.array(names))
        atomic_write_bytes(out, buf.getvalue())
        counts = torch.bincount(prob.argmax(-1).reshape(-1), minlength=3).tolist()
        print(f'{X.size(0)} maps: {counts[1]} pixels labelled tropical cyclone, {counts[2]} '
              f'atmospheric river')
        return out
