"""``pyg-sphere train shapes``: 3D shape classification the SHREC'17 way
(Cohen et al. 2018; DeepSphere, Defferrard et al. 2020). Meshes are projected
onto the sphere by ray casting (6 channels); the FCN readout makes the
classifier nearly rotation invariant, which the rotated test set shows."""
from __future__ import annotations

import argparse
import csv
import io
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch_geometric.data import Data

from .._catalog import TASK_DEFAULTS, TASK_SAMPLINGS
from ..training.objectives import Classification
from ._base import (Task, TaskData, TaskError, data_dir_option, no_masked_skip, reject_options,
                    task_cache)
from ._samplings import build_sampling, check_sampling, pooling_levels, resolution_option

#: default shapes per class of the training split (val and test get a quarter)
DEFAULT_PER_CLASS = 40
DEFAULT_RESOLUTION = {'healpix': 16, 'icosahedral': 4, 'equiangular': 32}
#: largest random shift of the training meshes (units of the normalized radius)
TRANSLATE = 0.1
#: default strength of the random deformation of the procedural shapes (the
#: defaults were chosen by the sweep in docs/shapes.md: the weaker ones leave
#: the 24 classes nearly separable)
DEFORM = 1.0
#: default surface noise of the procedural shapes (units of the mesh radius)
NOISE = 0.02
#: default largest fraction of their surface cut away
PARTIAL = 0.3
#: what the data options of runs made before the 24 classes meant (the eight
#: plain solids); filled in when their config.json lacks these entries
_LEGACY = {'classes': ('box', 'ellipsoid', 'cylinder', 'cone', 'torus', 'capsule', 'pyramid',
                       'l_prism'), 'deform': 0.0, 'noise': 0.0, 'partial': 0.0}
# (written out, not BASIC_SHAPE_CLASSES: what an old run meant must not follow later edits)
#: channels of the SHREC'17 network's blocks, finest first
_WIDTHS = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class ShapesData:
    """The data options of the shapes task.

    Args:
        sampling (str): ``'healpix'``, ``'icosahedral'`` or ``'equiangular'``.
        resolution (int): its nside, subdivisions or nlat.
        n_per_class (int): training shapes per class (val and test get a
            quarter, at least 2); procedural shapes only.
        rotate (str): random rotations of every split, ``'none'``, ``'z'`` or
            ``'so3'``; unless ``'so3'``, an SO(3)-rotated test set is scored too.
        translate (float): largest random shift of the training meshes.
        data_dir (str, optional): a folder of meshes (ModelNet, plain or
            SHREC'17 layout) instead of the procedural solids.
        seed (int): seed of the shapes, their poses and the split.
        classes (tuple of str): the procedural classes (a subset of
            :obj:`~pyg_sphere.simulate.SHAPE_CLASSES`, in label order).
        deform (float): strength of the random deformation of the procedural
            shapes, in [0, 1] (:func:`~pyg_sphere.simulate.perturb_mesh`).
        noise (float): their surface noise, in units of the mesh radius.
        partial (float): largest fraction of their surface cut away (open,
            partial meshes), in [0, 1).
    """
    sampling: str = 'healpix'
    resolution: int = DEFAULT_RESOLUTION['healpix']
    n_per_class: int = DEFAULT_PER_CLASS
    rotate: str = 'none'
    translate: float = TRANSLATE
    data_dir: Optional[str] = None
    seed: int = 0
    classes: Tuple[str, ...] = ()
    deform: float = DEFORM
    noise: float = NOISE
    partial: float = PARTIAL

    def __post_init__(self) -> None:
        if not self.classes:  # the default: every procedural class
            from ..simulate import SHAPE_CLASSES
            object.__setattr__(self, 'classes', tuple(SHAPE_CLASSES))
        object.__setattr__(self, 'classes', tuple(self.classes))


class ShapesTask(Task):
    name = 'shapes'
    data_type = ShapesData
    defaults = TASK_DEFAULTS['shapes']
    samplings = TASK_SAMPLINGS['shapes']

    def data_from_dict(self, values: Dict[str, Any]) -> ShapesData:
        """The data options of ``config.json``; those written before the 24
        classes (no ``classes`` entry) mean the eight plain solids."""
        known = {f.name for f in fields(ShapesData)}
        values = dict({k: v for k, v in _LEGACY.items() if k not in values}, **values)
        unknown = set(values) - known
        if unknown:
            raise TaskError(f"unknown shapes data options {sorted(unknown)}")
        return ShapesData(**values)

    def data_config(self, args: argparse.Namespace) -> ShapesData:
        from ..transforms import MESH_ROTATIONS
        check_sampling(self.name, args.sampling, self.samplings)
        res = resolution_option(args, args.sampling, DEFAULT_RESOLUTION[args.sampling])
        build_sampling(args.sampling, res)  # validates
        rotate = 'none' if args.rotate is None else args.rotate
        if rotate not in MESH_ROTATIONS:
            raise TaskError(f"--rotate: expected one of {', '.join(MESH_ROTATIONS)} "
                            f"(got '{rotate}')")
        n = DEFAULT_PER_CLASS if args.n_maps is None else args.n_maps
        if n < 4:
            raise TaskError(f'--n-maps: expected at least 4 shapes per class (got {n})')
        data_dir = data_dir_option(args.data_dir, folder_only=True)
        reject_options(self.name, args, ('patch_order', 'noise_std', 'augment'))
        from ..simulate.mesh_perturbation import check_perturbation
        given = {'deform': getattr(args, 'deform', None),
                 'surface_noise': getattr(args, 'surface_noise', None),
                 'partial': getattr(args, 'partial', None)}
        for name, value in given.items():
            if data_dir is not None and value is not None:
                raise TaskError(f'--{name.replace("_", "-")}: perturbs the procedural shapes '
                                f'only (not the meshes of --data-dir)')
        perturb = (DEFORM if given['deform'] is None else given['deform'],
                   NOISE if given['surface_noise'] is None else given['surface_noise'],
                   PARTIAL if given['partial'] is None else given['partial'])
        try:
            deform, noise, partial = check_perturbation(*perturb)
        except ValueError as err:
            name = str(err).split("'")[1]
            option = '--surface-noise' if name == 'noise' else f'--{name}'
            raise TaskError(f'{option}: {err}') from None
        return ShapesData(sampling=args.sampling, resolution=res, n_per_class=n, rotate=rotate,
                          translate=TRANSLATE, data_dir=data_dir, seed=args.seed,
                          deform=deform, noise=noise, partial=partial)

    def classes(self, config: Any) -> List[str]:
        from ..datasets import MESH_SPLIT_FRACTIONS, scan_mesh_folder
        data = config.data
        if data.data_dir is None:
            return list(data.classes)
        try:
            return list(scan_mesh_folder(Path(data.data_dir), 'train', MESH_SPLIT_FRACTIONS,
                                         data.seed)[0])
        except (ValueError, OSError) as err:
            raise TaskError(f'--data-dir: {err}') from None

    def sampling(self, config: Any) -> Data:
        return build_sampling(config.data.sampling, config.data.resolution)

    def _levels(self, config: Any) -> int:
        return pooling_levels(config.data.sampling, config.data.resolution, len(_WIDTHS))

    def graph(self, config: Any) -> Data:
        """The model's pyramid, built once and shared by the FCN network and
        the dense-readout network of the baselines."""
        from ..transforms import SpherePyramid
        sampling = self.sampling(config)
        levels = self._levels(config)
        return SpherePyramid(levels, k=config.k)(sampling) if levels else sampling

    def _split(self, config: Any, split: str, rotate: str, progress: bool) -> Any:
        from ..datasets import MeshFolder, ProceduralShapes
        data = config.data
        sampling = self.sampling(config)
        translate = data.translate if split == 'train' else 0.0
        root = task_cache(config, 'shapes')
        try:
            if data.data_dir is None:
                n = data.n_per_class if split == 'train' else max(data.n_per_class // 4, 2)
                return ProceduralShapes(sampling, split, n_per_class=n, seed=data.seed,
                                        rotate=rotate, translate=translate,
                                        classes=data.classes, deform=data.deform,
                                        noise=data.noise, partial=data.partial,
                                        workers=config.workers, root=root,
                                        log=progress)
            return MeshFolder(data.data_dir, sampling, split, rotate=rotate,
                              translate=translate, seed=data.seed, root=root, log=progress)
        except (ValueError, ImportError) as err:
            where = '' if data.data_dir is None else '--data-dir: '
            raise TaskError(f'{where}{err}') from None

    def load(self, config: Any, progress: bool,
             splits: Sequence[str] = ('train', 'val', 'test')) -> TaskData:
        rotate = config.data.rotate
        empty = (torch.zeros(0), torch.zeros(0, dtype=torch.long))
        sets = {split: self._split(config, split, rotate, progress).tensors()
                for split in splits}
        extra = {}
        if rotate != 'so3' and 'test' in splits:
            extra['test_rotated'] = self._split(config, 'test', 'so3', progress).tensors()
        return TaskData(train=sets.get('train', empty), val=sets.get('val', empty),
                        test=sets.get('test', empty), class_names=self.classes(config),
                        extra_tests=extra)

    def model(self, config: Any, graph: Data, readout: str = 'mean',
              **kwargs: Any) -> torch.nn.Module:
        """The SHREC'17 network (blocks of 16 ... 256 channels, K = 4, max
        pooling, as many levels as the resolution allows), with the global
        average readout ("FCN") or, for ``readout='dense'``, the flatten +
        linear readout ("CNN") that is not rotation invariant."""
        from ..nn import DeepSphere
        from ..training import Standardize
        levels = self._levels(config)
        channels = _WIDTHS[:max(levels, 1)]
        scale = config.input_scale
        net = DeepSphere.shrec17(data=graph, channels=channels,
                                 out_channels=len(self.classes(config)), k=config.k,
                                 pool='max' if levels else None, readout=readout, **kwargs)
        return Standardize(net, *((scale.mean, scale.std) if scale else (0.0, 1.0)))

    def objective(self, config: Any, data: TaskData) -> Any:
        return ShapeRetrieval()

    def baselines(self, config: Any, data: TaskData, graph: Data,
                  log: Any) -> Dict[str, Any]:
        """A linear classifier on rotation-invariant channel statistics, and
        the same network with a dense readout, trained with the same recipe;
        accuracies under their names, SHREC'17 retrieval metrics under
        ``'retrieval'``."""
        from ..baselines import LinearClassifier, channel_statistics
        objective = ShapeRetrieval()
        clf = LinearClassifier().fit(channel_statistics(data.train[0]), data.train[1])
        tests = {'': data.test}
        if 'test_rotated' in data.extra_tests:
            tests['_rotated'] = data.extra_tests['test_rotated']
        out: Dict[str, Any] = {'retrieval': {}}
        for suffix, (X, y) in tests.items():
            prob = torch.softmax(clf.decision_function(channel_statistics(X)), 1)
            m = objective.metrics(prob, y)
            out['channel_statistics' + suffix] = m['accuracy']
            out['retrieval']['channel_statistics' + suffix] = m['retrieval']
        log('      training the dense-readout network (a baseline) ...')
        for name, m in self._dense_readout(config, data, graph).items():
            out[name] = m['accuracy']
            out['retrieval'][name] = m['retrieval']
        out['trained_networks'] = ['dense_readout']
        return out

    def _dense_readout(self, config: Any, data: TaskData, graph: Data) -> Dict[str, Any]:
        """The same network with the flatten + linear ("CNN") readout, trained
        with the same settings: it is not rotation invariant, which the
        rotated test set shows (the paper's FCN / CNN comparison)."""
        import tempfile
        from ..training import evaluate, train_model
        device = config.train.device
        objective = ShapeRetrieval()
        torch.manual_seed(config.train.seed)
        model = self.model(config, graph, readout='dense')
        with tempfile.TemporaryDirectory() as tmp:
            train_model(model, data.train, data.val, config.train, Path(tmp), objective,
                        progress=False, log=lambda line: None)
            model.load_state_dict(torch.load(Path(tmp) / 'best.pt', weights_only=False,
                                             map_location=device)['model'])
        out = {'dense_readout': evaluate(model, *data.test, device=device, objective=objective)}
        if 'test_rotated' in data.extra_tests:
            out['dense_readout_rotated'] = evaluate(model, *data.extra_tests['test_rotated'],
                                                    device=device, objective=objective)
        return out

    def summary_lines(self, summary: Dict[str, Any]) -> List[str]:
        b = summary['baselines']
        retrieval = b.get('retrieval', {})
        rows = [('DeepSphere (FCN readout)', summary.get('test'), summary.get('test_rotated')),
                ('same net, dense readout (CNN), trained', _scores(b, retrieval, 'dense_readout'),
                 _scores(b, retrieval, 'dense_readout_rotated')),
                ('channel-statistics baseline', _scores(b, retrieval, 'channel_statistics'),
                 _scores(b, retrieval, 'channel_statistics_rotated'))]
        head = f'{"acc":>6} {"F1":>6} {"mAP":>6} {"F1 M":>6} {"mAP M":>6}'
        lines = ["test set: accuracy, SHREC'17 F1 and mAP (micro; M: macro), in %",
                 f'  {"":<38} {"test":^34} | {"rotated (SO3)":^34}',
                 f'  {"":<38} {head} | {head}']
        for name, test, rotated in rows:
            lines.append(f'  {name:<38} {_cells(test)} | {_cells(rotated)}')
        return lines

    def plots(self, run_dir: Path, config: Any, model: torch.nn.Module, data: TaskData,
              summary: Dict[str, Any], device: str) -> List[str]:
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
        plot_maps(maps, self.sampling(config), titles, run_dir / 'inputs.png', ncols=2)
        return ['inputs.png']

    def predict(self, run_dir: Path, config: Any, model: torch.nn.Module,
                inputs: Sequence[str], output: Optional[str], device: str,
                masked: str = 'error') -> Path:
        from ..io import load_mesh
        from ..training import predict_proba
        from ..transforms import project_mesh
        from ..utils import atomic_write_text
        no_masked_skip(self.name, masked)
        pos = self.sampling(config).pos
        X = []
        for path in inputs:
            try:
                vertices, faces = load_mesh(path)
            except (ValueError, ImportError, OSError) as err:
                raise TaskError(f'{path}: {err}') from None
            X.append(project_mesh(vertices, faces, pos))
        prob = predict_proba(model, torch.stack(X).float(), device=device)
        names = list(config.classes)
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


class ShapeRetrieval(Classification):
    """Classification scored by accuracy, with the SHREC'17 retrieval
    metrics (:func:`~pyg_sphere.metrics.retrieval_metrics`) of the test sets
    under ``'retrieval'``."""

    def metrics(self, prob: torch.Tensor, target: torch.Tensor) -> Dict[str, Any]:
        from ..metrics import retrieval_metrics
        out = super().metrics(prob, target)
        out['retrieval'] = retrieval_metrics(prob, target).as_dict()
        return out


def _scores(baselines: Dict[str, Any], retrieval: Dict[str, Any],
            name: str) -> Optional[Dict[str, Any]]:
    if name not in baselines:
        return None
    return {'accuracy': baselines[name], 'retrieval': retrieval.get(name, {})}


def _cells(scores: Optional[Dict[str, Any]]) -> str:
    """``acc F1 mAP F1M mAPM`` in % (``-`` where missing)."""
    scores = scores or {}
    r = scores.get('retrieval', {})
    values = [scores.get('accuracy'), r.get('micro_f1'), r.get('micro_map'), r.get('macro_f1'),
              r.get('macro_map')]
    return ' '.join(f'{v * 100:6.1f}' if v is not None else f'{"-":>6}' for v in values)
