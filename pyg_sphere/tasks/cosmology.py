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

#: The defaults of ``pyg-sphere train cosmology``: 64 maps per class at nside
#: 128, cut into the 48 base pixels of order 2 (4,096 pixels each), where the
#: two classes have the same power spectrum (``docs/cosmology.md``: the sweep).
TASK_NSIDE = 128
TASK_PATCH_ORDER = 2
TASK_N_MAPS = 64
#: Augmentations of the training patches (``--augment``).
AUGMENTATIONS = ('symmetries', 'none')
#: The default augmentation of patches (full-sky maps: none).
DEFAULT_AUGMENT = 'symmetries'


@dataclass(frozen=True)
class CosmologyData:
    """The data options of the cosmology task.

    Args:
        simulation (CosmologyConfig): every parameter of the simulated maps.
        patch_order (int, optional): HEALPix base-pixel patch order
            (:math:`12 o^2` patches per map), :obj:`None` for full-sky maps.
        noise_std (float): std of the white noise added to the maps.
        noise_seed (int): seed of the noise of the validation and test maps.
        augment (str): augmentation of the training patches, one of
            :obj:`AUGMENTATIONS`: ``'symmetries'`` (each patch drawn under one
            of the 8 symmetries of its grid, every epoch) or ``'none'``.
    """
    simulation: CosmologyConfig = field(default_factory=CosmologyConfig)
    patch_order: Optional[int] = DEFAULT_PATCH_ORDER
    noise_std: float = DEFAULT_NOISE_STD
    noise_seed: int = 0
    augment: str = 'none'

    def __post_init__(self) -> None:
        check_patch_order(self.patch_order, self.simulation.nside)
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"Expected 'augment' to be one of {AUGMENTATIONS} (got "
                             f"{self.augment!r})")
        if self.augment == 'symmetries' and self.patch_order is None:
            raise ValueError("Expected 'augment' 'none' for full-sky maps (the symmetries "
                             "are those of a base-pixel patch) (got 'symmetries')")

    def to_dict(self) -> Dict[str, Any]:
        return {'simulation': self.simulation.to_dict(), 'patch_order': self.patch_order,
                'noise_std': self.noise_std, 'noise_seed': self.noise_seed,
                'augment': self.augment}


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
                                                          TASK_NSIDE)}
        sim['n_maps'] = TASK_N_MAPS if args.n_maps is None else args.n_maps
        try:
            simulation = CosmologyConfig(**sim)
        except ValueError as err:
            raise TaskError(str(err).replace("'nside'", '--nside').replace(
                "'n_maps'", '--n-maps')) from None
        order = TASK_PATCH_ORDER if args.patch_order is None else \
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
        augment = args.augment if getattr(args, 'augment', None) is not None else \
            (DEFAULT_AUGMENT if order is not None else 'none')
        if augment not in AUGMENTATIONS:
            raise TaskError(f"--augment: expected one of {', '.join(AUGMENTATIONS)} "
                            f"(got {augment!r})")
        if augment == 'symmetries' and order is None:
            raise TaskError('--augment symmetries: full-sky maps (--patch-order 0) have no '
                            'patch symmetries; use --augment none')
        return CosmologyData(simulation=simulation, patch_order=order, noise_std=noise,
                             augment=augment)

    def data_from_dict(self, values: Dict[str, Any]) -> CosmologyData:
        values = dict(values)
        values.setdefault('augment', 'none')  # runs made before the option
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

    def augment(self, config: Any, data: TaskData) -> Any:
        if config.data.augment != 'symmetries':
            return None
        from ..training import PatchSymmetries
        return PatchSymmetries(data.train[0].size(1))

    def summary_extras(self, config: Any, data: TaskData) -> Dict[str, Any]:
        """The residual power-spectrum ratio of the classes per l band (mean
        spectra of the simulation, with smoothing and pixel window, against
        the error of one sample's binned spectrum) and the GLASS solver's
        error, from the cached stage-1 spectra."""
        from ..simulate import cached_spectra
        from ..simulate.degeneracy import (band_edges, convergence_spectrum, noise_spectrum,
                                           spectrum_ratio)
        sim, order = config.data.simulation, config.data.patch_order
        spectra = cached_spectra(sim, Path(task_cache(config, 'cosmology')) / 'raw')
        if any(s is None for s in spectra) or len(spectra) != 2:
            return {}
        cls = [convergence_spectrum(s, sim.ncorr, sim.smoothing_arcmin) for s in spectra]
        fsky = 1.0 / (12 * (order or 1) ** 2) if order else 1.0
        ratio = spectrum_ratio(cls[0], cls[1], band_edges(sim.lmax, 8), fsky,
                               noise_spectrum(config.data.noise_std, sim.nside))
        out: Dict[str, Any] = {'spectrum_ratio': {
            'edges': ratio.edges.tolist(), 'ratio': ratio.ratio.tolist(),
            'error_one_sample': ratio.error.tolist(), 'chi2': ratio.chi2,
            'ideal_accuracy': ratio.accuracy_bound, 'fsky': fsky}}
        if all('solver_error' in s for s in spectra):
            out['glass_solver'] = {
                'max_error': max(float(s['solver_error']) for s in spectra),
                'glass_unconverged': int(sum((~s['gls_glass_converged'] & s['gls_present'])
                                             .sum() for s in spectra)),
                'spectra': int(sum(s['gls_present'].sum() for s in spectra))}
        return out

    def baselines(self, config: Any, data: TaskData, graph: Data,
                  log: Any) -> Dict[str, Any]:
        """Power spectrum, pixel histogram, peak counts and their combination
        (:func:`~pyg_sphere.baselines.weak_lensing.weak_lensing_baselines`),
        fitted on the noisy training maps, tuned on the validation maps,
        scored on the test maps."""
        from ..baselines.weak_lensing import weak_lensing_baselines
        sets = data.info['sets']
        nside = config.data.simulation.nside
        found = weak_lensing_baselines(sets['train'].tensors(), sets['val'].tensors(),
                                       sets['test'].tensors(), config.data.noise_std,
                                       nside=nside if config.data.patch_order is None else None)
        return {name: dict(r.to_dict(), option=repr(r.option)) for name, r in found.items()}

    def summary_lines(self, summary: Dict[str, Any]) -> List[str]:
        from ..baselines.weak_lensing import BASELINE_NAMES
        b = summary['baselines']
        rows = [('DeepSphere (graph CNN)', summary['test']['accuracy'])]
        rows += [(f'{label} baseline', b[name]['test_accuracy'] if isinstance(b[name], dict)
                  else b[name])  # runs made before the tuned baselines: a number
                 for name, label in BASELINE_NAMES.items() if name in b]
        lines = ['test accuracy (same split; baselines tuned on validation):']
        lines += [f'  {name:<32} {acc * 100:6.1f} %' for name, acc in rows]
        ratio = summary.get('spectrum_ratio')
        if ratio:
            lines.append(f'mean power spectrum of class 1 / class 0 (simulation, smoothing and '
                         f'pixel window included; err = std of one sample\'s band):')
            lines.append(f'  {"l band":>9}  {"C1/C0":>6}  {"(C1/C0-1)/err":>13}')
            for a, bnd, r, e in zip(ratio['edges'][:-1], ratio['edges'][1:], ratio['ratio'],
                                    ratio['error_one_sample']):
                lines.append(f'  {f"{a}-{bnd - 1}":>9}  {r:6.3f}  {(r - 1) / e:13.2f}')
            lines.append(f'  (ideal classifier of one sample\'s mean spectrum: '
                         f'{ratio["ideal_accuracy"] * 100:.1f} %)')
        solver = summary.get('glass_solver')
        if solver:
            lines.append(f'GLASS lognormal solver: error <= {solver["max_error"]:.1e} of the '
                         f'fields\' power ({solver["glass_unconverged"]} of {solver["spectra"]} '
                         f'near-zero cross-spectra fail GLASS\'s relative test; harmless)')
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
