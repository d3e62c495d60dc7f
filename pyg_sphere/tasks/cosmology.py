"""``pyg-sphere train cosmology``: tell two cosmologies apart from weak-lensing
convergence maps (Perraudin et al. 2019), against power-spectrum and histogram
baselines on the same split."""
from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch_geometric.data import Data

from ._base import Task, TaskData, TaskError, absolute_root, check_sampling, reject_options
from ._maps import read_healpix_map


class CosmologyTask(Task):
    name = 'cosmology'
    defaults = {'epochs': 12, 'batch_size': 16, 'lr': 2e-3, 'sampling': 'healpix', 'k': 8}
    samplings = ('healpix',)

    def resolve(self, args: argparse.Namespace) -> Dict[str, Any]:
        from ..datasets import DEFAULT_NOISE_STD, DEFAULT_PATCH_ORDER, CosmologyConfig
        check_sampling(self.name, args.sampling, self.samplings)
        reject_options(self.name, args, ('rotate', 'data_dir'))
        data: Dict[str, Any] = {'seed': args.seed}
        if args.nside is not None:
            data['nside'] = args.nside
        if args.n_maps is not None:
            data['n_maps'] = args.n_maps
        try:
            CosmologyConfig(**data)
        except ValueError as err:
            raise TaskError(str(err)) from None
        order = DEFAULT_PATCH_ORDER if args.patch_order is None else \
            (None if args.patch_order == 0 else args.patch_order)
        nside = CosmologyConfig(**data).nside
        if order is not None and (order < 1 or nside % order or order & (order - 1)):
            raise TaskError(f'--patch-order: expected 0 (full sky) or a power of two dividing '
                            f'nside {nside} (got {args.patch_order})')
        noise = DEFAULT_NOISE_STD if args.noise_std is None else args.noise_std
        if not noise >= 0:
            raise TaskError(f"--noise-std: expected a value >= 0 (got {noise})")
        return {'data': data, 'patch_order': order, 'noise_std': noise,
                'data_root': absolute_root(args.data_root), 'workers': args.workers, 'k': args.k}

    def _sets(self, cfg: Dict[str, Any], progress: bool, splits: Sequence[str]) -> Dict[str, Any]:
        from ..datasets import CosmologyConfig, CosmologyMaps
        kwargs = dict(root=cfg['data_root'], config=CosmologyConfig(**cfg['data']),
                      patch_order=cfg['patch_order'], workers=cfg['workers'], log=progress)
        try:
            return {s: CosmologyMaps(split=s, noise_std=cfg['noise_std'], **kwargs)
                    for s in splits} | (
                {'clean_train': CosmologyMaps(split='train', noise_std=0.0, **kwargs)}
                if 'train' in splits else {})
        except ValueError as err:
            raise TaskError(str(err)) from None

    def load(self, cfg: Dict[str, Any], progress: bool) -> TaskData:
        sets = self._sets(cfg, progress, ('train', 'val', 'test'))
        return TaskData(train=sets['clean_train'].tensors(), val=sets['val'].tensors(),
                        test=sets['test'].tensors(), sampling=sets['train'].patch_data(0),
                        class_names=['(0.31, 0.82)', '(0.26, 0.91)'],
                        noise_std=cfg['noise_std'], info={'sets': sets})

    def load_test(self, cfg: Dict[str, Any]) -> Dict[str, Any]:
        return {'test': self._sets(cfg, False, ('test',))['test'].tensors()}

    def sampling(self, cfg: Dict[str, Any]) -> Data:
        from ..datasets import CosmologyConfig
        from ..samplings import healpix
        nside, order = CosmologyConfig(**cfg['data']).nside, cfg['patch_order']
        return healpix(nside) if order is None else \
            healpix(nside, indexes=torch.arange((nside // order) ** 2))

    def model(self, cfg: Dict[str, Any]) -> torch.nn.Module:
        from ..nn import DeepSphere
        from ..training import Standardize
        scale = cfg.get('input_scale', {'mean': 0.0, 'std': 1.0})
        return Standardize(DeepSphere.cosmology(data=self.sampling(cfg), k=cfg['k']), **scale)

    def baselines(self, cfg: Dict[str, Any], data: TaskData) -> Dict[str, float]:
        from ..datasets import baseline_accuracies
        sets = data.info['sets']
        return baseline_accuracies(sets['train'], sets['test'])

    def summary_lines(self, summary: Dict[str, Any]) -> List[str]:
        rows = [('DeepSphere (graph CNN)', summary['test']['accuracy']),
                ('power-spectrum baseline', summary['baselines']['power_spectrum']),
                ('histogram baseline', summary['baselines']['histogram'])]
        lines = ['test accuracy (same split):']
        lines += [f'  {name:<26} {acc * 100:6.1f} %' for name, acc in rows]
        return lines

    def plots(self, run_dir: Path, cfg: Dict[str, Any], model: torch.nn.Module,
              data: TaskData, summary: Dict[str, Any], device: str) -> List[str]:
        from ..plotting import plot_maps
        from ..training import predict_proba
        X, y = data.test
        # two test patches of each class (noise included), with the predicted class
        pick = [int(i) for c in range(2) for i in torch.nonzero(y == c).view(-1)[:2]]
        prob = predict_proba(model, X[pick], device=device)
        titles = [f'true {data.class_names[int(y[i])]}, predicted '
                  f'{data.class_names[int(p.argmax())]} (p = {float(p.max()):.2f})'
                  for i, p in zip(pick, prob)]
        maps = [X[i, :, 0].numpy() for i in pick]
        test = data.info.get('sets', {}).get('test')
        where = ([test.patch_data(int(test.patches[i])) for i in pick] if test is not None
                 else data.sampling)  # each patch at its own base pixel
        plot_maps(maps, where, titles, run_dir / 'inputs.png', ncols=2)
        return ['inputs.png']

    def predict(self, run_dir: Path, cfg: Dict[str, Any], model: torch.nn.Module,
                inputs: Sequence[str], output: Optional[str], device: str) -> Path:
        from ..datasets import CosmologyConfig
        from ..training import atomic_write_text, predict_proba
        nside, order = CosmologyConfig(**cfg['data']).nside, cfg['patch_order']
        maps = [read_healpix_map(Path(p), nside) for p in inputs]
        patches = 1 if order is None else 12 * order * order
        X = torch.from_numpy(np.stack(maps)).float().view(len(maps) * patches, -1, 1)
        prob = predict_proba(model, X, device=device).view(len(maps), patches, -1)
        out = Path(output) if output else run_dir / 'predictions.csv'
        rows: List[List[Any]] = []
        for path, p in zip(inputs, prob):
            mean = p.mean(0)
            rows.append([path, 'all', int(mean.argmax())] + [f'{v:.6f}' for v in mean.tolist()])
            if patches > 1:
                rows += [[path, i, int(q.argmax())] + [f'{v:.6f}' for v in q.tolist()]
                         for i, q in enumerate(p)]
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(['file', 'patch', 'class'] + [f'prob_{c}' for c in range(prob.size(-1))])
        writer.writerows(rows)
        atomic_write_text(out, buf.getvalue())
        for path, p in zip(inputs, prob):
            print(f'{path}: class {int(p.mean(0).argmax())} '
                  f'(p = {", ".join(f"{v:.3f}" for v in p.mean(0).tolist())})')
        return out
