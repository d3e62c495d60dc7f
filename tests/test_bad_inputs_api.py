"""The bad-input table of the Python API: every case raises a ValueError (or
FileNotFoundError for a missing file) whose message names the argument and
what was got. (Command-line cases: tests/tasks/test_bad_inputs.py.)"""
import math
import re

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

EDGES = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])


def conv(**call):
    from pyg_sphere.nn import SphericalChebConv
    args = dict(x=torch.randn(5, 3), edge_index=EDGES, lambda_max=2.0)
    args.update(call)
    return SphericalChebConv(3, 4, K=2)(args.pop('x'), args.pop('edge_index'), **args)


def _cases():
    from pyg_sphere.datasets import ClimateEvents, CosmologyMaps, ProceduralShapes, split_indices
    from pyg_sphere.io import load_netcdf, read_healpix_map
    from pyg_sphere.nn import DeepSphere, SphericalChebConv, SpherePool
    from pyg_sphere.samplings import healpix, icosahedral, points
    from pyg_sphere.simulate import CosmologyConfig, generate_shape
    from pyg_sphere.tasks import RunConfig
    from pyg_sphere.training import TrainConfig, class_weights
    from pyg_sphere.transforms import SphereKNNGraph, SphereLaplacianLambdaMax, project_mesh
    from pyg_sphere.utils import ArrayCache
    nan = float('nan')
    return [
        ('nside not a power of two', lambda t: healpix(12), r"'nside' .* power of two .*\(got 12\)"),
        ('nside 0', lambda t: healpix(0), r"'nside' to be >= 1 \(got 0\)"),
        ('float nside', lambda t: healpix(4.5), r"'nside' to be an integer \(got 4.5\)"),
        ('bool nside', lambda t: healpix(True), r"'nside' to be an integer \(got True\)"),
        ('negative subdivisions', lambda t: icosahedral(-1), r"'subdivisions' to be >= 0 \(got -1\)"),
        ('NaN longitude', lambda t: points(torch.tensor([nan]), torch.tensor([0.0])),
         r"'lon' to be finite, but lon\[0\] is nan"),
        ('k 0', lambda t: SphereKNNGraph(k=0), r"'k' to be >= 1 \(got 0\)"),
        ('bool k', lambda t: SphereKNNGraph(k=True), r"'k' to be an integer \(got True\)"),
        ('float k', lambda t: SphereKNNGraph(k=2.5), r"'k' to be an integer \(got 2.5\)"),
        ('k >= n', lambda t: SphereKNNGraph(k=200)(healpix(2)),
         r"'k' to be smaller than the number of nodes \(48\) \(got 200\)"),
        ('negative width', lambda t: SphereKNNGraph(kernel_width=-1.0),
         r"'kernel_width' to be a positive finite number \(got -1.0\)"),
        ('unknown normalization', lambda t: SphereLaplacianLambdaMax('foo'),
         r"'normalization' to be one of .*\(got 'foo'\)"),
        ('K 0', lambda t: SphericalChebConv(3, 4, K=0), r"'K' to be >= 1 \(got 0\)"),
        ('lambda_max 0', lambda t: conv(lambda_max=0.0), r"'lambda_max' to be finite and > 0, .*\(got 0.0\)"),
        ('lambda_max < 0', lambda t: conv(lambda_max=-1.0), r"'lambda_max' .* \(got -1.0\)"),
        ('lambda_max NaN', lambda t: conv(lambda_max=nan), r"'lambda_max' .* \(got nan\)"),
        ('lambda_max inf', lambda t: conv(lambda_max=math.inf), r"'lambda_max' .* \(got inf\)"),
        ('edge_index beyond x', lambda t: conv(edge_index=torch.tensor([[0, 9], [9, 0]])),
         r"'edge_index' to index the 5 nodes of x, i.e. to lie in \[0, 4\] \(got 9\)"),
        ('NaN edge weight', lambda t: conv(edge_weight=torch.tensor([nan, 1.0, 1.0, 1.0])),
         r"'edge_weight' to be finite \(got 1 NaN or infinite"),
        ('integer x', lambda t: conv(x=torch.ones(5, 3, dtype=torch.long)),
         r"x to be a floating-point tensor \(got torch.int64\)"),
        ('x of the wrong width', lambda t: conv(x=torch.randn(5, 8)),
         r"x to have in_channels=3 features .*\(got 8\)"),
        ('maps of another sampling', lambda t: DeepSphere(healpix(4), 2, (4,), 3, K=2)(
            torch.randn(2, 100, 2)), r"'x' of shape \[B, n, F\] .* n = 192 pixels .*\[2, 100, 2\]"),
        ('pool of a bad cluster', lambda t: SpherePool(torch.tensor([0, 5]), 2),
         r"'cluster' values in \[0, 1\] for num_clusters=2, .*\(got 5\)"),
        ('no cosmology maps', lambda t: CosmologyConfig(n_maps=0), r"'n_maps' to be >= 1 \(got 0\)"),
        ('negative smoothing', lambda t: CosmologyConfig(smoothing_arcmin=-1.0),
         r"'smoothing_arcmin' to be >= 0.0 \(got -1.0\)"),
        ('patch order 3', lambda t: CosmologyMaps(root=str(t), patch_order=3,
                                                  config=CosmologyConfig(nside=8, n_maps=2)),
         r"'patch_order' .* divides nside=8 \(got 3\)"),
        ('no shapes', lambda t: ProceduralShapes(healpix(2), n_per_class=0, root=str(t)),
         r"'n_per_class' to be >= 1 \(got 0\)"),
        ('NaN climate noise', lambda t: ClimateEvents(healpix(2), noise=nan, root=str(t)),
         r"'noise' to be finite \(got nan\)"),
        ('fractions over 1', lambda t: split_indices(5, (0.5, 0.5, 0.5)),
         r"'split_fractions' to be 3 numbers .* \(got \(0.5, 0.5, 0.5\)\)"),
        ('cache root not a path', lambda t: ArrayCache(3), r"'root' to be a folder path \(got 3\)"),
        ('epochs 0', lambda t: TrainConfig(epochs=0), r"'epochs' to be >= 1 \(got 0\)"),
        ('NaN lr', lambda t: TrainConfig(lr=nan), r"'lr' to be a positive finite number \(got nan\)"),
        ('float labels', lambda t: class_weights(torch.rand(4)), r"'y' to hold integer labels"),
        ('missing map', lambda t: read_healpix_map(t / 'none.fits', 4), r'none.fits: no such file'),
        ('map of another nside', lambda t: (np.save(t / 'm.npy', np.zeros(48)),
                                            read_healpix_map(t / 'm.npy', 4)),
         r'expected maps of nside 4 \(192 pixels\), got 48 pixels \(nside 2\)'),
        ('missing netCDF', lambda t: load_netcdf(t / 'none.nc', healpix(2)),
         r"No netCDF file at .*none.nc"),
        ('mesh with NaN vertex', lambda t: project_mesh(np.full((4, 3), nan),
                                                        np.array([[0, 1, 2]]), healpix(2).pos),
         r"'vertices' to be finite \(got NaN or inf\)"),
        ('mesh face beyond the vertices', lambda t: project_mesh(
            *((lambda v, f: (v, f + 100))(*generate_shape('box', 0))), healpix(2).pos),
         r"'faces' to index vertices in \[0, 8\) \(got indices in \[100, 107\]\)"),
        ('empty run configuration', lambda t: RunConfig.from_dict({}, 'cfg'),
         r"cfg: not a valid run configuration of format 1|cfg: not a run configuration"),
        ('data without pos', lambda t: ProceduralShapes(Data(x=torch.ones(3)), root=str(t)),
         r"'sampling' to have a 'pos' attribute"),
    ]


CASES = _cases()


@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, tmp_path):
    _, call, pattern = case
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        call(tmp_path)
    message = str(info.value)
    assert re.search(pattern, message), message
    assert '\n' not in message
    assert not [p for p in tmp_path.rglob('*') if '.tmp-' in p.name]
