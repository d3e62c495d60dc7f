import pytest
import torch
from torch_geometric.transforms import LaplacianLambdaMax

from pyg_sphere.samplings import cubed, healpix
from pyg_sphere.transforms import SphereKNNGraph, SphereLaplacianLambdaMax


@pytest.mark.parametrize('normalization', [None, 'sym', 'rw'])
def test_matches_pyg_transform(normalization):
    data = SphereKNNGraph(k=8)(cubed(2, dtype=torch.float64))
    ours = SphereLaplacianLambdaMax(normalization)(data).lambda_max
    ref = data.clone()
    ref.edge_attr = ref.edge_weight
    pyg = LaplacianLambdaMax(normalization)(ref).lambda_max
    assert isinstance(ours, float)
    assert ours == pytest.approx(pyg, rel=1e-6)


def test_margin_and_edge_attr_fallback():
    data = SphereKNNGraph(k=8)(healpix(2, dtype=torch.float64))
    base = SphereLaplacianLambdaMax()(data).lambda_max
    assert SphereLaplacianLambdaMax(margin=1.02)(data).lambda_max == pytest.approx(1.02 * base)
    alt = data.clone()
    alt.edge_attr = alt.edge_weight
    del alt.edge_weight
    assert SphereLaplacianLambdaMax()(alt).lambda_max == pytest.approx(base)
    unweighted = data.clone()
    del unweighted.edge_weight
    assert SphereLaplacianLambdaMax()(unweighted).lambda_max != pytest.approx(base, rel=1e-6)


def test_wrong_weight_length():
    data = SphereKNNGraph(k=8)(healpix(1))
    data.edge_weight = data.edge_weight[:-1]
    with pytest.raises(ValueError, match="'edge_weight'"):
        SphereLaplacianLambdaMax()(data)
