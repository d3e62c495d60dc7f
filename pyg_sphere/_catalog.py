"""What the command line shows before anything heavy is imported: the
built-in tasks, their samplings and the defaults of their shared options,
and the resolution option of each sampling. (No torch here.)"""
from typing import Dict, Tuple

#: task -> the samplings it runs on (the first is its default)
TASK_SAMPLINGS: Dict[str, Tuple[str, ...]] = {
    'cosmology': ('healpix',),
    'shapes': ('healpix', 'icosahedral', 'equiangular'),
    'climate': ('icosahedral', 'healpix'),
}
#: task -> defaults of the shared options
TASK_DEFAULTS: Dict[str, Dict[str, object]] = {
    'cosmology': {'epochs': 6, 'batch_size': 16, 'lr': 2e-3, 'sampling': 'healpix', 'k': 8},
    'shapes': {'epochs': 15, 'batch_size': 16, 'lr': 2e-3, 'sampling': 'healpix', 'k': 8},
    'climate': {'epochs': 20, 'batch_size': 8, 'lr': 1e-3, 'sampling': 'icosahedral', 'k': 8},
}
#: the resolution option of each sampling (the command-line flag, without --)
RESOLUTION_OPTIONS: Dict[str, str] = {'healpix': 'nside', 'icosahedral': 'subdivisions',
                                      'equiangular': 'nlat'}
#: what each resolution option means, for help texts
RESOLUTION_HELP: Dict[str, str] = {
    'nside': 'HEALPix nside, a power of two (12 nside^2 pixels)',
    'subdivisions': 'icosahedral subdivisions l, 0..8 (10 * 4^l + 2 pixels)',
    'nlat': 'equiangular (SOFT) latitudes, even, >= 4 (nlat x 2 nlat pixels)',
}
