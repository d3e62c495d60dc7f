"""DeepSphere and SphericalUNet: built with their operators, compiled cold with torch.compile."""
import pytest
import torch

from pyg_sphere.nn.models import DeepSphere
from pyg_sphere.samplings import healpix

from .test_models import maps, randomize_, small_deepsphere, small_unet


@pytest.mark.parametrize('backend,which,train', [
    # graph capture + AOTAutograd: a few seconds each
    ('aot_eager', 'deepsphere', True),
    ('aot_eager', 'shrec17', True),
    ('aot_eager', 'unet', False),
    # + C++ codegen
    pytest.param('inductor', 'deepsphere', True, marks=pytest.mark.slow),
    pytest.param('inductor', 'shrec17', False, marks=pytest.mark.slow),
    pytest.param('aot_eager', 'unet', True, marks=pytest.mark.slow),
])
def test_torch_compile_fullgraph_cold_equals_eager(backend, which, train):
    # A fresh model compiles as one graph from its first call: the Laplacians are
    # built at construction, and convs (custom ops on them), batch norm, pooling /
    # unpooling, concatenation and readout make no host sync and no graph break,
    # so fullgraph=True succeeds without an eager warm-up call.
    torch._dynamo.reset()
    data = healpix(4)
    if which == 'deepsphere':
        model = small_deepsphere(data)
    elif which == 'shrec17':  # the preset's layers on a tiny sphere: 768 -> 192 -> 48 -> 12
        torch.manual_seed(0)
        data = healpix(8)
        model = DeepSphere.shrec17(data=data, channels=(16, 32, 64), out_channels=5)
    else:
        model = small_unet(data, unpool='max_indices', channels=(4, 6, 6))
    x = maps(2, data.num_nodes, model.in_channels, seed=14)
    randomize_(model, seed=15)
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    model.eval()
    with torch.no_grad():
        cold = compiled(x)  # the first call of the model: compiled, no eager call before
        torch.testing.assert_close(cold, model(x), rtol=1e-5, atol=1e-6)
    if not train:
        return
    model.train()
    results = []
    for fn in (compiled, model):
        model.zero_grad()
        xx = x.clone().requires_grad_()
        fn(xx).square().sum().backward()
        results.append([xx.grad] + [p.grad for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_laplacians_built_at_construction_and_kept():
    # Every conv has its operator before the first call (one per level, shared),
    # reset_parameters keeps it, and it follows the model's dtype.
    for model in (small_deepsphere(healpix(4)), small_unet(healpix(4))):
        convs = model._conv_levels()
        assert len({id(conv) for conv, _ in convs}) == len(convs)
        assert len(convs) == sum(isinstance(m, type(convs[0][0])) for m in model.modules())
        for conv, lvl in convs:
            lap = conv._cached_laplacian
            assert lap is not None and lap.num_nodes == model.graph.num_nodes[lvl]
        model.reset_parameters()
        assert all(conv._cached_laplacian is not None for conv, _ in convs)
        model.double()  # a higher precision: rebuilt from the graphs by the next call
        assert all(conv._cached_laplacian is None for conv, _ in convs)
        model(maps(1, model.num_nodes, model.in_channels, seed=0, dtype=torch.float64))
        assert all(conv._cached_laplacian.value.dtype == torch.float64 for conv, _ in convs)
        model.float()  # a lower precision: cast
        assert all(conv._cached_laplacian.value.dtype == torch.float32 for conv, _ in convs)
