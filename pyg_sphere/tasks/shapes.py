"""``pyg-sphere train shapes``: 3D shape classification the SHREC'17 way
(Cohen et al. 2018; DeepSphere, Defferrard et al. 2020). Meshes are projected
onto the sphere by ray casting (6 channels); the FCN readout makes the
classifier nearly rotation invariant, which the rotated test set shows."""
from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch_geometric.data import Data

from ._base import (Task, TaskData, TaskError, absolute_root, cache_dir, data_dir_option,
                    reject_options)
from ._samplings import build_sampling, check_resolution_sampling, pooling_levels

#: default shapes per class of the training split (val and test get a quarter)
DEFAULT_PER_CLASS = 40
DEFAULT_RESOLUTION = {'healpix': 16, 'icosahedral': 4, 'equiangular': 32}
#: largest random shift of the training meshes (units of the normalized radius)
TRANSLATE = 0.1


class ShapesTask(Task):
    name = 'shapes'
    defaults = {'epochs': 15, 'batch_size': 16, 'lr': 2e-3, 'sampling': 'healpix', 'k': 8}
    samplings = ('healpix', 'icosahedral', 'equiangular')

    def resolve(self, args: argparse.Namespace) -> Dict[str, Any]:
        from ..transforms import MESH_ROTATIONS
        check_resolution_sampling(self.name, args.sampling, self.samplings)
        res = DEFAULT_RESOLUTION[args.sampling] if args.nside is None else args.nside
        build_sampling(args.sampling, res)  # validates
        rotate = 'none' if args.rotate is None else args.rotate
        if rotate not in MESH_ROTATIONS:
            raise TaskError(f"--rotate: expected one of {', '.join(MESH_ROTATIONS)} "
                            f"(got '{rotate}')")
        n = DEFAULT_PER_CLASS if args.n_maps is None else args.n_maps
        if n < 4:
            raise TaskError(f'--n-maps: expected at least 4 shapes per class (got {n})')
        data_dir = data_dir_option(args.data_dir, folder_only=True)
        reject_options(self.name, args, ('patch_order', 'noise_std'))
        return {'sampling': args.sampling, 'resolution': res, 'k': args.k,
                'n_per_class': n, 'rotate': rotate, 'translate': TRANSLATE,
                'data_dir': data_dir, 'seed': args.seed,
                'data_root': absolute_root(args.data_root)}

    def sampling(self, cfg: Dict[str, Any]) -> Data:
        return build_sampling(cfg['sampling'], cfg['resolution'])

    def _split(self, cfg: Dict[str, Any], split: str, rotate: str, progress: bool) -> Any:
        from ..datasets import MeshFolder, ProceduralShapes
        sampling = self.sampling(cfg)
        translate = cfg['translate'] if split == 'train' else 0.0
        root = str(cache_dir(cfg['data_root'], 'shapes'))
        try:
            if cfg['data_dir'] is None:
                n = cfg['n_per_class'] if split == 'train' else max(cfg['n_per_class'] // 4, 2)
                return ProceduralShapes(sampling, split, n_per_class=n, seed=cfg['seed'],
                                        rotate=rotate, translate=translate,
                                        root=root, log=progress)
            return MeshFolder(cfg['data_dir'], sampling, split, rotate=rotate,
                              translate=translate, seed=cfg['seed'],
                              cache_dir=root, log=progress)
        except (ValueError, ImportError) as err:
            where = '' if cfg['data_dir'] is None else '--data-dir: '
            raise TaskError(f'{where}{err}') from None

    def load(self, cfg: Dict[str, Any], progress: bool) -> TaskData:
        sets = {split: self._split(cfg, split, cfg['rotate'], progress)
                for split in ('train', 'val', 'test')}
        extra = {}
        if cfg['rotate'] != 'so3':
            extra['test_rotated'] = self._split(cfg, 'test', 'so3', progress).tensors()
        return TaskData(train=sets['train'].tensors(), val=sets['val'].tensors(),
                        test=sets['test'].tensors(), sampling=self.sampling(cfg),
                        class_names=list(sets['train'].classes), extra_tests=extra)

    def model(self, cfg: Dict[str, Any], readout: str = 'mean') -> torch.nn.Module:
        """The SHREC'17 network (blocks of 16 ... 256 channels, K = 4, max
        pooling, as many levels as the resolution allows), with the global
        average readout ("FCN") or, for ``readout='dense'``, the flatten +
        linear readout ("CNN") that is not rotation invariant."""
        from ..nn import DeepSphere
        from ..training import Standardize
        levels = pooling_levels(cfg['sampling'], cfg['resolution'], 5)
        channels = (16, 32, 64, 128, 256)[:max(levels, 1)]
        num_classes = len(cfg['classes']) if 'classes' in cfg else None
        scale = cfg.get('input_scale', {'mean': 0.0, 'std': 1.0})
        model = DeepSphere.shrec17(data=self.sampling(cfg), channels=channels,
                                   out_channels=num_classes or 1, k=cfg['k'],
                                   pool='max' if levels else None, readout=readout)
        return Standardize(model, **scale)

    def baselines(self, cfg: Dict[str, Any], data: TaskData) -> Dict[str, float]:
        """A linear classifier on rotation-invariant channel statistics (mean,
        std and deciles of each channel over the sphere)."""
        from ..datasets import LinearClassifier

        def features(X: torch.Tensor) -> torch.Tensor:
            q = torch.quantile(X.double(), torch.linspace(0.1, 0.9, 9, dtype=torch.float64),
                               dim=1).permute(1, 0, 2).reshape(X.size(0), -1)
            return torch.cat([X.double().mean(1), X.double().std(1), q], dim=1).float()

        f_train = features(data.train[0])
        clf = LinearClassifier().fit(f_train, data.train[1])
        out = {'channel_statistics': clf.score(features(data.test[0]), data.test[1])}
        rotated = data.extra_tests.get('test_rotated')
        if rotated is not None:
            out['channel_statistics_rotated'] = clf.score(features(rotated[0]), rotated[1])
        out.update(self._dense_readout(cfg, data))
        return out

    def _dense_readout(self, cfg: Dict[str, Any], data: TaskData) -> Dict[str, float]:
        """The same network with the flatten + linear ("CNN") readout, trained
        with the same settings: it is not rotation invariant, which the
        rotated test set shows (the paper's FCN / CNN comparison)."""
        import tempfile
        from ..training import TrainConfig, evaluate, train_model
        train_cfg = TrainConfig(**cfg['train'])
        torch.manual_seed(train_cfg.seed)
        model = self.model(cfg, readout='dense')
        with tempfile.TemporaryDirectory() as tmp:
            train_model(model, data.train, data.val, train_cfg, Path(tmp), progress=False,
                        log=lambda line: None)
            model.load_state_dict(torch.load(Path(tmp) / 'best.pt', weights_only=False,
                                             map_location=train_cfg.device)['model'])
        out = {'dense_readout': evaluate(model, *data.test, device=train_cfg.device)['accuracy']}
        if 'test_rotated' in data.extra_tests:
            out['dense_readout_rotated'] = evaluate(model, *data.extra_tests['test_rotated'],
                                                    device=train_cfg.device)['accuracy']
        return out

    def summary_lines(self, summary: Dict[str, Any]) -> List[str]:
        b = summary['baselines']
        lines = ['test accuracy:', f'  {"":<30} {"test":>8} {"rotated (SO3)":>14}']

        def row(name: str, a: Optional[float], r: Optional[float]) -> str:
            fmt = (lambda v: f'{v * 100:7.1f} %' if v is not None else '        -')
            return f'  {name:<30} {fmt(a)} {fmt(r):>14}'
        rot = summary.get('test_rotated', {}).get('accuracy')
        lines.append(row('DeepSphere (FCN readout)', summary['test']['accuracy'], rot))
        lines.append(row('same net, dense readout (CNN)', b.get('dense_readout'),
                         b.get('dense_readout_rotated')))
        lines.append(row('channel-statistics baseline', b.get('channel_statistics'),
                         b.get('channel_statistics_rotated')))
        return lines

    def plots(self, run_dir: Path, cfg: Dict[str, Any], model: torch.nn.Module,
              data: TaskData, summary: Dict[str, Any], device: str) -> List[str]:
        from ..plotting import plot_maps
        from ..training import predict_proba
        X, y = data.test
        pick = [int(torch.nonzero(y == c)[0]) for c in range(len(data.class_names))
                if (y == c).any()][:4]
        prob = predict_proba(model, X[pick], device=device)
        maps, titles = [], []
        for i, p in zip(pick, prob):
            for ch, name in ((0, 'radius'), (1, 'cos normal')):
                maps.append(X[i, :, ch].numpy())
                titles.append(f'{name}: {data.class_names[int(y[i])]} -> '
                              f'{data.class_names[int(p.argmax())]}')
        plot_maps(maps, data.sampling, titles, run_dir / 'inputs.png', ncols=2)
        return ['inputs.png']

    def predict(self, run_dir: Path, cfg: Dict[str, Any], model: torch.nn.Module,
                inputs: Sequence[str], output: Optional[str], device: str) -> Path:
        from ..datasets import load_mesh
        from ..transforms import project_mesh
        from ..training import atomic_write_text, predict_proba
        pos = self.sampling(cfg).pos
        X = []
        for path in inputs:
            try:
                vertices, faces = load_mesh(path)
            except (ValueError, ImportError, OSError) as err:
                raise TaskError(f'{path}: {err}') from None
            X.append(project_mesh(vertices, faces, pos))
        prob = predict_proba(model, torch.stack(X).float(), device=device)
        names = cfg['classes']
        out = Path(output) if output else run_dir / 'predictions.csv'
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(['file', 'class', 'name'] + [f'prob_{n}' for n in names])
        for path, p in zip(inputs, prob):
            c = int(p.argmax())
            writer.writerow([path, c, names[c]] + [f'{v:.6f}' for v in p.tolist()])
            print(f'{path}: {names[c]} (p = {float(p[c]):.3f})')
        atomic_write_text(out, buf.getvalue())
        return out
