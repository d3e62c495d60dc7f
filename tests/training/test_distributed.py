"""Data-parallel training on 2 CPU processes (gloo) makes the same steps as
one process with the same global batch."""

import pytest
import torch
import torch.multiprocessing as mp

from pyg_sphere.nn import DeepSphere
from pyg_sphere.samplings import healpix
from pyg_sphere.training import (Classification, DistContext, GlobalBatchNorm, Segmentation,
                                 TrainConfig, convert_batchnorm, train_model)
from pyg_sphere.nn import SphericalUNet

N, NSIDE = 14, 4


def _rendezvous(tmp_path) -> str:
    """A file rendezvous: no TCP port to pick (a port found free, released,
    then bound by the workers can be taken in between, failing the test)."""
    return f'file://{tmp_path / "rendezvous"}'


def _problem(kind):
    # bias=False: a conv bias right before batch norm has a zero gradient up
    # to rounding, which Adam turns into steps of size lr in a direction set by
    # rounding noise, so runs that differ only by rounding would part ways
    gen = torch.Generator().manual_seed(1)
    data = healpix(NSIDE)
    X = torch.randn(N + 4, data.num_nodes, 2, generator=gen)
    if kind == 'classification':
        y = torch.randint(0, 3, (N + 4,), generator=gen)
        X[y == 1] *= 1.5
        torch.manual_seed(0)
        model = DeepSphere(data, in_channels=2, channels=(8, 8), out_channels=3, K=3,
                           pool='max', readout='mean', head='linear', k=8, bias=False)
        objective = Classification()
    else:
        y = (X[..., 0] > 0.8).long() + (X[..., 1] > 1.5).long()
        torch.manual_seed(0)
        model = SphericalUNet(data, in_channels=2, out_channels=3, channels=(8, 8), K=3, k=8, bias=False)
        objective = Segmentation(3, weight=torch.tensor([0.2, 1.0, 3.0]))
    return model, objective, (X[:N], y[:N]), (X[N:], y[N:])


def _run(rank, world, init, kind, out_dir, noise):
    torch.set_num_threads(1)
    if world > 1:
        torch.distributed.init_process_group('gloo', init_method=init, rank=rank,
                                             world_size=world)
    ctx = DistContext(rank=rank, world_size=world)
    model, objective, train, val = _problem(kind)
    cfg = TrainConfig(epochs=2, batch_size=6, lr=1e-2, seed=3)
    train_model(model, train, val, cfg, out_dir, objective, progress=False,
                log=lambda s: None, noise_std=noise, ctx=ctx)
    if world > 1:
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize('kind,noise', [('classification', 0.1), ('segmentation', 0.0)])
def test_two_processes_match_one(tmp_path, kind, noise):
    _run(0, 1, None, kind, tmp_path / 'single', noise)
    mp.spawn(_run, args=(2, _rendezvous(tmp_path), kind, tmp_path / 'ddp', noise), nprocs=2,
             join=True)
    single = torch.load(tmp_path / 'single' / 'last.pt', weights_only=False)
    ddp = torch.load(tmp_path / 'ddp' / 'last.pt', weights_only=False)
    assert single['model'].keys() == ddp['model'].keys()
    model, _, _, val = _problem(kind)
    bad = []
    for key, value in single['model'].items():
        if not torch.allclose(ddp['model'][key], value, rtol=1e-4, atol=1e-5):
            bad.append((key, float((ddp['model'][key] - value).abs().max())))
    assert not bad
    outputs = []
    for state in (single, ddp):
        model.load_state_dict(state['model'])
        outputs.append(model.eval()(val[0]))
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-4, atol=1e-4)
    model, *_ = _problem(kind)
    moved = 0
    for key, value in model.state_dict().items():
        if value.is_floating_point() and not torch.allclose(value, single['model'][key]):
            moved += 1
    assert moved > 0  # training changed the weights, so the comparison means something
    # metrics reduced across ranks equal the single-process ones
    import json
    m1 = [json.loads(l) for l in (tmp_path / 'single' / 'metrics.jsonl').read_text().splitlines()]
    m2 = [json.loads(l) for l in (tmp_path / 'ddp' / 'metrics.jsonl').read_text().splitlines()]
    for a, b in zip(m1, m2):
        for key in ('train_loss', 'train_accuracy', 'val_loss', 'val_accuracy'):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), key
    assert not list((tmp_path / 'ddp').glob('.*.tmp'))


def test_global_batch_norm_is_batch_norm_in_one_process():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm1d(4)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), bn)
    convert_batchnorm(model)
    assert isinstance(model[1], GlobalBatchNorm)
    x = torch.randn(10, 3)
    ref = torch.nn.functional.batch_norm(model[0](x), None, None, training=True)
    torch.testing.assert_close(model(x), ref)


def _bn_rank(rank, world, init, x, out_dir):
    torch.set_num_threads(1)
    torch.distributed.init_process_group('gloo', init_method=init, rank=rank, world_size=world)
    torch.manual_seed(0)
    bn = GlobalBatchNorm(3, momentum=None)
    bn.weight.data = torch.tensor([1.5, 0.5, 2.0])
    bn.bias.data = torch.tensor([0.1, -0.2, 0.3])
    part = x[rank::world].clone().requires_grad_(True)
    for _ in range(2):  # two steps: the cumulative running average (momentum=None)
        out = bn(part)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    (out * g[rank::world]).sum().backward()
    torch.save({'out': out.detach(), 'grad': part.grad, 'mean': bn.running_mean,
                'var': bn.running_var, 'wgrad': bn.weight.grad}, out_dir / f'rank{rank}.pt')
    torch.distributed.destroy_process_group()


def test_global_batch_norm_over_two_processes_is_batch_norm_of_the_batch(tmp_path):
    x = torch.randn(10, 3, 5, generator=torch.Generator().manual_seed(2)) * 3 + 1
    mp.spawn(_bn_rank, args=(2, _rendezvous(tmp_path), x, tmp_path), nprocs=2, join=True)
    ref = torch.nn.BatchNorm1d(3, momentum=None)
    ref.weight.data = torch.tensor([1.5, 0.5, 2.0])
    ref.bias.data = torch.tensor([0.1, -0.2, 0.3])
    xr = x.clone().requires_grad_(True)
    for _ in range(2):
        out = ref(xr)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    (out * g).sum().backward()
    ranks = [torch.load(tmp_path / f'rank{r}.pt') for r in range(2)]
    got = torch.empty_like(out)
    grad = torch.empty_like(xr.grad)
    for r, res in enumerate(ranks):
        got[r::2], grad[r::2] = res['out'], res['grad']
        torch.testing.assert_close(res['mean'], ref.running_mean)
        torch.testing.assert_close(res['var'], ref.running_var)
    torch.testing.assert_close(got, out.detach())
    torch.testing.assert_close(grad, xr.grad, rtol=1e-4, atol=1e-5)
    # the affine parameters' gradients are per-rank parts that DDP sums
    torch.testing.assert_close(ranks[0]['wgrad'] + ranks[1]['wgrad'], ref.weight.grad,
                               rtol=1e-4, atol=1e-5)


def test_batch_smaller_than_world_is_refused(tmp_path):
    model, objective, train, val = _problem('classification')
    cfg = TrainConfig(epochs=1, batch_size=1, seed=0)
    with pytest.raises(ValueError, match="'batch_size' >= the number of processes"):
        train_model(model, train, val, cfg, tmp_path, objective,
                    ctx=DistContext(rank=0, world_size=2), progress=False)
    assert not any(tmp_path.iterdir())


def test_nan_validation_score_still_leaves_a_best_checkpoint(tmp_path):
    import json
    model, objective, train, val = _problem('segmentation')
    val = (val[0], torch.zeros_like(val[1]))  # no event pixel: mean AP is undefined (NaN)
    train_model(model, train, val, TrainConfig(epochs=2, batch_size=7, seed=0), tmp_path,
                objective, progress=False, log=lambda s: None)
    assert (tmp_path / 'best.pt').exists()
    rows = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
    assert [r['val_mean_ap'] for r in rows] == [None, None]
