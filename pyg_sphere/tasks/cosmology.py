"""``pyg-sphere train cosmology``: tell two cosmologies apart from weak-lensing
convergence maps (Perraudin et al. 2019), against power-spectrum and histogram
baselines on the same split."""
from __future__ import annotations

import argparse
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch_geometric.data import Data

from ..datasets.cosmology_maps import DEFAULT_NOISE_STD, DEFAULT_PATCH_ORDER, check_patch_order
from ..simulate.cosmology_config import CosmologyConfig
from .._catalog import TASK_DEFAULTS, TASK_SAMPLINGS
from ._base import Task, TaskData, TaskError, reject_options, task_cache
from ._samplings import check_sampling, resolution_option


@dataclass(frozen=True)
class CosmologyData:
    """The data options of the cosmology task.

    Args:
        simulation (CosmologyConfig): every parameter of the simulated maps.
        patch_order (int, optional): HEALPix base-pixel patch order
            (:math:`12 o^2` patches per map), :obj:`None` for full-sky maps.
        noise_std (float): std of the white noise added to the maps.
        noise_seed (int): seed of the noise of the validation and test maps.
    """
    simulation: CosmologyConfig = field(default_factory=CosmologyConfig)
    patch_order: Optional[int] = DEFAULT_PATCH_ORDER
    noise_std: float = DEFAULT_NOISE_STD
    noise_seed: int = 0

    def __post_init__(self) -> None:
        check_patch_order(self.patch_order, self.simulation.nside)

    def to_dict(self) -> Dict[str, Any]:
        return {'simulation': self.simulation.to_dict(), 'patch_order': self.patch_order,
                'noise_std': self.noise_std, 'noise_seed': self.noise_seed}


class CosmologyTask(Task):
    name = 'cosmology'
    data_type = CosmologyData
    defaults = TASK_DEFAULTS['cosmology']
    samplings = TASK_SAMPLINGS['cosmology']

    def data_config(self, args: argparse.Namespace) -> CosmologyData:
        check_sampling(self.name, args.sampling, self.samplings)
        reject_options(self.name, args, ('rotate', 'data_dir', 'deform', 'surface_noise',
                                          'partial'))
        sim: Dict[str, Any] = {'seed': args.seed,
                               'nside': resolution_option(args, 'healpix',
                                                          CosmologyConfig.nside)}
        if args.n_maps is not None:
            sim['n_maps'] = args.n_maps
        try:
            simulation = CosmologyConfig(**sim)
        except ValueError as err:
            raise TaskError(str(err).replace("'nside'", '--nside').replace(
                "'n_maps'", '--n-maps')) from None
        order = DEFAULT_PATCH_ORDER if args.patch_order is None else \
            (None if args.patch_order == 0 else args.patch_order)
        try:
            check_patch_order(order, simulation.nside)
        except ValueError:
            raise TaskError(f'--patch-order: expected 0 (full sky) or a power of two dividing '
                            f'nside {simulation.nside} (got {args.patch_order})') from None
        side = simulation.nside // (order or 1)
        if (order is None and simulation.nside < 32) or (order is not None and side < 64):
            raise TaskError(
                f'--nside {simulation.nside} with --patch-order {order or 0}: the '
                f'cosmology network pools 5 times by 4, so it needs nside / patch-order >= 64 '
                f'for patches (smallest: --nside 64 --patch-order 1) or nside >= 32 for the '
                f'full sky (--patch-order 0)')
        noise = DEFAULT_NOISE_STD if args.noise_std is None else args.noise_std
        if not noise >= 0 or noise == float('inf'):
            raise TaskError(f"--noise-std: expected a finite value >= 0 (got {noise})")
        return CosmologyData(simulation=simulation, patch_order=order, noise_std=noise)

    def data_from_dict(self, values: Dict[str, Any]) -> CosmologyData:
        values = dict(values)
        values['simulation'] = CosmologyConfig(**values['simulation'])
        return CosmologyData(**values)

    def classes(self, config: Any) -> List[str]:
        return [f'(Omega_m, sigma_8) = ({om:g}, {s8:g})'
                for om, s8 in config.data.simulation.cosmologies]

    def _sets(self, config: Any, progress: bool, splits: Sequence[str]) -> Dict[str, Any]:
        from ..datasets import CosmologyMaps
        data = config.data
        kwargs = dict(root=task_cache(config, 'cosmology'), config=data.simulation,
                      patch_order=data.patch_order, workers=config.workers, log=progress,
                      noise_seed=data.noise_seed)
        try:
            sets = {s: CosmologyMaps(split=s, noise_std=data.noise_std, **kwargs)
                    for s in splits}
            if 'train' in splits:
                sets['clean_train'] = CosmologyMaps(split='train', noise_std=0.0, **kwargs)
        except ValueError as err:
            raise TaskError(str(err)) from None
        return sets

    def load(self, config: Any, progress: bool,
             splits: Sequence[str] = ('train', 'val', 'test')) -> TaskData:
        sets = self._sets(config, progress, splits)
        empty = (torch.zeros(0), torch.zeros(0, dtype=torch.long))
        get = (lambda s: sets[s].tensors() if s in sets else empty)
        return TaskData(train=get('clean_train'), val=get('val'), test=get('test'),
                        class_names=self.classes(config), noise_std=config.data.noise_std,
                        info={'sets': sets})

    def sampling(self, config: Any) -> Data:
        from ..samplings import healpix
        nside, order = config.data.simulation.nside, config.data.patch_order
        return healpix(nside) if order is None else \
            healpix(nside, indexes=torch.arange((nside // order) ** 2))

    def model(self, config: Any, graph: Data, **kwargs: Any) -> torch.nn.Module:
        from ..nn import DeepSphere
        from ..training import Standardize
        scale = config.input_scale
        net = DeepSphere.cosmology(data=graph, k=config.k, **kwargs)
        return Standardize(net, *((scale.mean, scale.std) if scale else (0.0, 1.0)))

    def baselines(self, config: Any, data: TaskData, graph: Data,
                  log: Any) -> Dict[str, Any]:
        """Power-spectrum and histogram classifiers, fitted on the (noisy)
        training maps, scored on the test maps."""
        from ..baselines import (LinearClassifier, histogram_edges, histogram_features,
                                 power_spectrum_features)
        train, test = data.info['sets']['train'], data.info['sets']['test']
        nside = config.data.simulation.nside
        x_train, y_train = train.tensors()
        x_test, y_test = test.tensors()
        ps_train = power_spectrum_features(x_train, nside, train.patches, 16)
        ps_test = power_spectrum_features(x_test, nside, test.patches, 16)
        edges = histogram_edges(x_train, 32)
        return {
            'power_spectrum': LinearClassifier(1e-3).fit(ps_train, y_train).score(ps_test,
                                                                                  y_test),
            'histogram': LinearClassifier(1e-3).fit(histogram_features(x_train, edges),
                                                    y_train)
            .score(histogram_features(x_test, edges), y_test),
        }

    def summary_lines(self, summary: Dict[str, Any]) -> List[str]:
        rows = [('DeepSphere (graph CNN)', summary['test']['accuracy']),
                ('power-spectrum baseline', summary['baselines']['power_spectrum']),
                ('histogram baseline', summary['baselines']['histogram'])]
        lines = ['test accuracy (same split):']
        lines += [f'  {name:<26} {acc * 100:6.1f} %' for name, acc in rows]
        return lines

    def plots(self, run_dir: Path, config: Any, model: torch.nn.Module, data: TaskData,
              summary: Dict[str, Any], device: str) -> List[str]:
        from ..plotting import plot_maps
        from ..training import predict_proba
        X, y = data.test
        # two test patches of each class (noise included), with the predicted class
        pick = [int(i) for c in range(len(data.class_names))
                for i in torch.nonzero(y == c).view(-1)[:2]]
        prob = predict_proba(model, X[pick], device=device)
        names = [f'(Om, s8) = ({om:g}, {s8:g})'
                 for om, s8 in config.data.simulation.cosmologies]
        titles = [f'true {names[int(y[i])]}, predicted {names[int(p.argmax())]} '
                  f'(p = {float(p.max()):.2f})' for i, p in zip(pick, prob)]
        maps = [X[i, :, 0].numpy() for i in pick]
        test = data.info['sets']['test']
        where = [test.patch_data(int(test.patches[i])) for i in pick]
        plot_maps(maps, where, titles, run_dir / 'inputs.png', ncols=2,
                  map_kwargs=[{'unit': 'convergence kappa (dimensionless), noise included'}]
                  * len(maps))
        return ['inputs.png']

    def predict(self, run_dir: Path, config: Any, model: torch.nn.Module,
                inputs: Sequence[str], output: Optional[str], device: str,
                masked: str = 'error') -> Path:
        """Class probabilities of HEALPix maps: per patch and averaged over the
        patches of each map. With ``masked='skip'``, patches holding NaN or
        ``healpy.UNSEEN`` pixels are left out (a map whose patches are all
        masked is refused)."""
        from ..io import read_healpix_map
        from ..training import predict_proba
        from ..utils import atomic_write_text
        if masked not in ('error', 'skip'):
            raise TaskError(f"--masked: expected 'error' or 'skip' (got {masked!r})")
        nside, order = config.data.simulation.nside, config.data.patch_order
        if masked == 'skip' and order is None:
            raise TaskError('--masked skip: this run classifies full-sky maps (patch order 0); '
                            'a masked map cannot be scored')
        patches = 1 if order is None else 12 * order * order
        maps = []
        for path in inputs:
            try:
                maps.append(read_healpix_map(Path(path), nside, masked=masked == 'skip'))
            except (ValueError, OSError) as err:
                raise TaskError(str(err)) from None
        X = torch.from_numpy(np.stack(maps)).float().view(len(maps) * patches, -1, 1)
        ok = ~torch.isnan(X).any(dim=(1, 2))
        for i, path in enumerate(inputs):
            if not bool(ok[i * patches:(i + 1) * patches].any()):
                raise TaskError(f'{path}: every one of its {patches} patches holds masked '
                                f'pixels; nothing to score')
        prob = torch.full((X.size(0), len(config.classes)), float('nan'))
        prob[ok] = predict_proba(model, X[ok], device=device)
        prob = prob.view(len(maps), patches, -1)
        out = Path(output) if output else run_dir / 'predictions.csv'
        rows: List[List[Any]] = []
        means = []
        for path, p in zip(inputs, prob):
            good = ~torch.isnan(p[:, 0])
            mean = p[good].mean(0)
            means.append(mean)
            rows.append([path, 'all', int(mean.argmax())] + [f'{v:.6f}' for v in mean.tolist()])
            if patches > 1:
                rows += [[path, i, int(q.argmax()) if g else 'masked'] +
                         ([f'{v:.6f}' for v in q.tolist()] if g else [''] * len(q))
                         for i, (q, g) in enumerate(zip(p, good.tolist()))]
        buf = io.StringIO()
        writer = csv.writer(buf)
        # the classes are (Omega_m, sigma_8) pairs, named in config.json's 'classes'
        pairs = [f'{om:g}_{s8:g}' for om, s8 in config.data.simulation.cosmologies]
        writer.writerow(['file', 'patch', 'class'] + [f'prob_Om_s8_{p}' for p in pairs])
        writer.writerows(rows)
        atomic_write_text(out, buf.getvalue())
        for path, mean in zip(inputs, means):
            print(f'{path}: class {int(mean.argmax())} '
                  f'(p = {", ".join(f"{v:.3f}" for v in mean.tolist())})')
        return out
