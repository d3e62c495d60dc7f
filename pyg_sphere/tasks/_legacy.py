"""Reading run directories written before the typed configuration
(``config.json`` of format 1: no ``format`` key, task options at the top level)."""
from __future__ import annotations

from typing import Any, Dict

from ._base import TaskError

# The simulation defaults of format 1, written out so that later changes of
# CosmologyConfig's defaults do not change what an old run meant.
_COSMOLOGY_V1 = {
    'cosmologies': [[0.31, 0.82], [0.26, 0.91]], 'n_maps': 128, 'seed': 0, 'nside': 64,
    'lmax': None, 'h': 0.7, 'omega_b': 0.05, 'n_s': 0.96, 'halofit_version': 'takahashi',
    'shell_spacing': 200.0, 'ncorr': 3, 'z_source': 1.0, 'sigma_z': 0.05,
    'smoothing_arcmin': 3.0, 'limber_lmin': 100, 'pixel_window': True,
}


def convert_format_1(values: Dict[str, Any], where: str) -> Dict[str, Any]:
    """The format-2 form of a format-1 configuration."""
    try:
        task = values['task']
        out = {'format': 2, 'task': task, 'train': values['train'], 'k': values['k'],
               'data_root': values.get('data_root'), 'workers': values.get('workers', 2),
               'classes': values.get('classes', [])}
        scale = values.get('input_scale')
        if scale is not None:
            as_list = (lambda v: list(v) if isinstance(v, (list, tuple)) else [v])
            out['input_scale'] = {'mean': as_list(scale['mean']), 'std': as_list(scale['std'])}
        if task == 'cosmology':
            simulation = dict(_COSMOLOGY_V1, **values['data'])
            out['data'] = {'simulation': simulation, 'patch_order': values['patch_order'],
                           'noise_std': values['noise_std'], 'noise_seed': 0}
        elif task == 'shapes':
            out['data'] = {key: values[key] for key in
                           ('sampling', 'resolution', 'n_per_class', 'rotate', 'translate',
                            'data_dir', 'seed')}
        elif task == 'climate':
            out['data'] = {key: values[key] for key in
                           ('sampling', 'resolution', 'n_maps', 'data_dir', 'seed')}
        else:
            raise TaskError(f"unknown task {task!r}")
    except (KeyError, TypeError) as err:
        raise TaskError(f'{where}: not a run configuration of format 1 or 2 (missing or bad '
                        f'entry {err})') from None
    return out
