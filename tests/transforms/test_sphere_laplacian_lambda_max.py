import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import LaplacianLambdaMax

from pyg_sphere.graph import LANCZOS_MARGIN

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


def test_edgeless_graph_matches_pyg_transform():
    data = Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=5)
    for normalization in ('sym', 'rw'):
        pyg = LaplacianLambdaMax(normalization)(data.clone()).lambda_max
        ours = SphereLaplacianLambdaMax(normalization)(data.clone()).lambda_max
        assert ours == 1.0 and ours == pytest.approx(pyg, rel=1e-6)


def test_negative_degrees_rw_matches_pyg_transform():
    # a 6-cycle with edges (0, 1) and (3, 4) of weight -3: degrees -2, -2, 2, -2, -2, 2
    src = torch.arange(6)
    w = torch.ones(6, dtype=torch.float64)
    w[0] = w[3] = -3.0
    ei = torch.cat([torch.stack([src, (src + 1) % 6]), torch.stack([(src + 1) % 6, src])], 1)
    data = Data(edge_index=ei, edge_weight=torch.cat([w, w]), num_nodes=6)
    ref = data.clone()
    ref.edge_attr = ref.edge_weight
    pyg = LaplacianLambdaMax('rw')(ref).lambda_max
    assert SphereLaplacianLambdaMax('rw')(data).lambda_max == pytest.approx(pyg, rel=1e-5)
    assert SphereLaplacianLambdaMax('rw')(data).lambda_max == pytest.approx(2.5, rel=1e-9)


def test_lanczos_method_is_a_tight_upper_estimate():
    data = SphereKNNGraph(k=8)(healpix(16, dtype=torch.float64))  # 3072 nodes
    exact = SphereLaplacianLambdaMax()(data).lambda_max
    fast = SphereLaplacianLambdaMax(method='lanczos')(data).lambda_max
    assert exact <= fast <= exact * (1 + LANCZOS_MARGIN)
    with pytest.raises(ValueError, match="'method'"):
        SphereLaplacianLambdaMax(method='arpack')
