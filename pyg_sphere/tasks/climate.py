"""``pyg-sphere train climate``: dense segmentation of extreme weather events
(tropical cyclones and atmospheric rivers) with a spherical U-Net, as in the
DeepSphere climate experiment (Jiang et al. 2019 data, class-weighted loss,
mean accuracy / IoU / average precision over the two event classes)."""
from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch_geometric.data import Data

from ._base import (Task, TaskData, TaskError, absolute_root, cache_dir, data_dir_option,
                    reject_options)
from ._samplings import build_sampling, check_resolution_sampling, pooling_levels

#: training maps simulated by default (val and test get a quarter each)
DEFAULT_TRAIN_MAPS = 64
DEFAULT_RESOLUTION = {'icosahedral': 5, 'healpix': 32}
#: the netCDF variable holding the labels of user data
LABEL_VARIABLE = 'LABELS'
#: encoder widths of the paper's U-Net, finest first
_WIDTHS = (32, 64, 128, 256, 512, 512, 512)
_SPLIT_FRACTIONS = (0.7, 0.15, 0.15)


class ClimateTask(Task):
    name = 'climate'
    defaults = {'epochs': 20, 'batch_size': 8, 'lr': 1e-3, 'sampling': 'icosahedral', 'k': 8}
    samplings = ('icosahedral', 'healpix')

    def resolve(self, args: argparse.Namespace) -> Dict[str, Any]:
        check_resolution_sampling(self.name, args.sampling, self.samplings)
        res = DEFAULT_RESOLUTION[args.sampling] if args.nside is None else args.nside
        build_sampling(args.sampling, res)  # validates
        n = DEFAULT_TRAIN_MAPS if args.n_maps is None else args.n_maps
        if n < 4:
            raise TaskError(f'--n-maps: expected at least 4 training maps (got {n})')
        reject_options(self.name, args, ('patch_order', 'noise_std', 'rotate'))
        if pooling_levels(args.sampling, res, 5) < 1:
            raise TaskError(f'--nside: the U-Net needs a sampling that can be coarsened at '
                            f'least once (got {args.sampling} at {res})')
        data_dir = data_dir_option(args.data_dir, folder_only=False)
        return {'sampling': args.sampling, 'resolution': res, 'k': args.k, 'n_maps': n,
                'data_dir': data_dir, 'seed': args.seed,
                'data_root': absolute_root(args.data_root)}

    def sampling(self, cfg: Dict[str, Any]) -> Data:
        return build_sampling(cfg['sampling'], cfg['resolution'])

    def _user_data(self, cfg: Dict[str, Any]) -> Dict[str, Any]:
        """Time steps of the user's netCDF file(s) in (file, time) order, split
        70 / 15 / 15 into contiguous blocks."""
        from ..datasets import CLIMATE_CHANNELS, load_netcdf
        path = Path(cfg['data_dir'])
        files = sorted(path.glob('*.nc')) if path.is_dir() else [path]
        if not files:
            raise TaskError(f'--data-dir: no .nc files in {path}')
        xs, ys = [], []
        for f in files:
            try:
                fields = load_netcdf(f, self.sampling(cfg), CLIMATE_CHANNELS, LABEL_VARIABLE)
            except (ValueError, KeyError, OSError, ImportError) as err:
                raise TaskError(f'{f}: {err}') from None
            xs.append(fields.x)
            ys.append(fields.y)
        X, y = torch.cat(xs), torch.cat(ys)
        if X.size(0) < 3:
            raise TaskError(f'--data-dir: expected at least 3 time steps to split into '
                            f'train / val / test (got {X.size(0)})')
        # contiguous blocks in (file, time) order: neighbouring time steps are
        # nearly the same map, so a random split would leak test into train
        n_val = max(1, round(_SPLIT_FRACTIONS[1] * X.size(0)))
        n_test = max(1, round(_SPLIT_FRACTIONS[2] * X.size(0)))
        n_train = X.size(0) - n_val - n_test
        parts = {'train': slice(0, n_train), 'val': slice(n_train, n_train + n_val),
                 'test': slice(n_train + n_val, None)}
        return {k: (X[v], y[v]) for k, v in parts.items()}

    def load(self, cfg: Dict[str, Any], progress: bool) -> TaskData:
        from ..datasets import CLIMATE_CLASSES, ClimateEvents
        if cfg['data_dir'] is not None:
            sets = self._user_data(cfg)
        else:
            sampling = self.sampling(cfg)
            root = str(cache_dir(cfg['data_root'], 'climate'))
            small = max(cfg['n_maps'] // 4, 4)
            sets = {}
            for split, n in (('train', cfg['n_maps']), ('val', small), ('test', small)):
                ds = ClimateEvents(sampling, split, n_maps=n, seed=cfg['seed'],
                                   root=root, standardize=False, progress=progress)
                sets[split] = ds.tensors()
        return TaskData(train=sets['train'], val=sets['val'], test=sets['test'],
                        sampling=self.sampling(cfg), class_names=list(CLIMATE_CLASSES))

    def objective(self, cfg: Dict[str, Any], data: TaskData) -> Any:
        from ..datasets import class_weights
        from ..training import Segmentation
        return Segmentation(3, weight=class_weights(data.train[1], 3), score_classes=(1, 2))

    def model(self, cfg: Dict[str, Any]) -> torch.nn.Module:
        from ..nn import SphericalUNet
        from ..training import Standardize
        levels = pooling_levels(cfg['sampling'], cfg['resolution'], 5)
        channels = _WIDTHS[:levels + 2]
        pool = 'keep' if cfg['sampling'] == 'icosahedral' else 'max'
        scale = cfg.get('input_scale', {'mean': 0.0, 'std': 1.0})
        net = SphericalUNet.climate(data=self.sampling(cfg), channels=channels, levels=levels,
                                    pool=pool, k=cfg['k'])
        return Standardize(net, **scale)

    def baselines(self, cfg: Dict[str, Any], data: TaskData) -> Dict[str, float]:
        """A per-pixel linear (softmax) classifier on the 16 channels, without
        spatial context, fitted on the training pixels."""
        from ..datasets import LinearClassifier
        from ..metrics.segmentation import segmentation_metrics
        X, y = data.train
        gen = torch.Generator().manual_seed(0)
        keep = torch.randperm(X.size(0), generator=gen)[:32]
        f, t = X[keep].reshape(-1, X.size(-1)), y[keep].reshape(-1)
        clf = LinearClassifier(weight_decay=1e-4, max_iter=200).fit(f, t)
        Xt, yt = data.test
        with torch.no_grad():
            z = ((Xt.reshape(-1, Xt.size(-1)).double() - clf.mean) / clf.std) @ clf.weight.T
            logits = (z + clf.bias).float()
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
        lines.append(f'  per class accuracy: background {acc[0] * 100:.1f} %, TC '
                     f'{acc[1] * 100:.1f} %, AR {acc[2] * 100:.1f} %')
        return lines

    def plots(self, run_dir: Path, cfg: Dict[str, Any], model: torch.nn.Module,
              data: TaskData, summary: Dict[str, Any], device: str) -> List[str]:
        from ..datasets import CLIMATE_CHANNELS
        from ..plotting import plot_maps
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
            kw += [{}, {'categorical': True, 'labels': labels},
                   {'categorical': True, 'labels': labels}]
        plot_maps(maps, data.sampling, titles, run_dir / 'predictions.png', ncols=3,
                  map_kwargs=kw)
        return ['predictions.png']

    def _read_input(self, path: Path, cfg: Dict[str, Any], sampling: Data) -> torch.Tensor:
        """Fields ``[T, n, 16]`` in physical units from a netCDF file (lat-lon,
        interpolated), a ``.npy`` array ``[n, 16]`` or ``[T, n, 16]`` on the
        run's pixels, or, for a HEALPix run, a FITS file of 16 fields (RING or
        NESTED)."""
        from ..datasets import CLIMATE_CHANNELS, load_netcdf
        from ._maps import read_healpix_fields
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
            if values.ndim == 2:
                values = values[None]
            if values.ndim != 3 or values.shape[1:] != (n, c):
                raise TaskError(f'{path}: expected an array [{n}, {c}] or [T, {n}, {c}] '
                                f'(pixels of the run, channels {", ".join(CLIMATE_CHANNELS)}), '
                                f'got shape {values.shape}')
            if not np.isfinite(values).all():
                raise TaskError(f'{path}: {int((~np.isfinite(values)).sum())} NaN / infinite '
                                f'values; fill them first')
            return torch.from_numpy(values.astype(np.float32))
        if suffix in ('.fits', '.fit') or path.name.endswith('.fits.gz'):
            if cfg['sampling'] != 'healpix':
                raise TaskError(f'{path}: FITS maps need a run on the HEALPix sampling (this '
                                f'run uses {cfg["sampling"]}); pass netCDF or .npy')
            fields = read_healpix_fields(path, cfg['resolution'], c)
            return torch.from_numpy(fields.astype(np.float32))[None]
        raise TaskError(f'{path}: expected a netCDF (.nc), .npy or HEALPix FITS file')

    def predict(self, run_dir: Path, cfg: Dict[str, Any], model: torch.nn.Module,
                inputs: Sequence[str], output: Optional[str], device: str) -> Path:
        from ..training import atomic_write_bytes, predict_proba
        sampling = self.sampling(cfg)
        xs, names = [], []
        for path in inputs:
            xs.append(self._read_input(Path(path), cfg, sampling))
            names += [str(path)] * xs[-1].size(0)
        X = torch.cat(xs)
        prob = predict_proba(model, X, device=device)
        out = Path(output) if output else run_dir / 'predictions.npz'
        buf = io.BytesIO()
        np.savez_compressed(buf, labels=prob.argmax(-1).numpy().astype(np.int8),
                            probabilities=prob.numpy().astype(np.float32),
                            pos=sampling.pos.numpy(), classes=np.array(cfg['classes']),
                            files=np.array(names))
        atomic_write_bytes(out, buf.getvalue())
        counts = torch.bincount(prob.argmax(-1).reshape(-1), minlength=3).tolist()
        print(f'{X.size(0)} maps: {counts[1]} pixels labelled tropical cyclone, {counts[2]} '
              f'atmospheric river')
        return out
