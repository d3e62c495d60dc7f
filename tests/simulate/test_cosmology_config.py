"""CosmologyConfig (pyg_sphere.simulate.cosmology_config): every parameter of
the simulated maps, resolved and checked."""
import json

import pytest

from pyg_sphere.simulate import COSMOLOGIES, HALOFIT_VERSIONS, CosmologyConfig


def test_config_resolves_lmax_and_is_hashable():
    config = CosmologyConfig(nside=16)
    assert config.lmax == 47
    assert config == CosmologyConfig(nside=16, lmax=47)
    assert hash(config) == hash(CosmologyConfig(nside=16, lmax=47))
    assert config.cosmologies == ((0.31, 0.82), (0.26, 0.9002557))
    assert json.loads(json.dumps(config.to_dict()))['cosmologies'] == [[0.31, 0.82],
                                                                       [0.26, 0.9002557]]
    with pytest.raises(Exception):
        config.nside = 8
    assert COSMOLOGIES == config.cosmologies and config.num_classes == 2
    assert HALOFIT_VERSIONS == ('takahashi', 'original', 'mead2020')
    assert CosmologyConfig(nside=16, lmax=20).lmax == 20
    assert CosmologyConfig(cosmologies=[[0.3, 0.8], (0.25, 0.9), (0.2, 1.0)]).cosmologies == \
        ((0.3, 0.8), (0.25, 0.9), (0.2, 1.0))


@pytest.mark.parametrize('kwargs,name', [
    ({'nside': 12}, 'nside'),
    ({'nside': 0}, 'nside'),
    ({'n_maps': 0}, 'n_maps'),
    ({'lmax': 100, 'nside': 8}, 'lmax'),
    ({'omega_b': 0.3}, 'omega_b'),
    ({'cosmologies': ((0.3, 0.8),)}, 'cosmologies'),
    ({'cosmologies': ((0.3, 0.8), (0.3, -0.8))}, 'cosmologies'),
    ({'halofit_version': 'foo'}, 'halofit_version'),
    ({'smoothing_arcmin': -1.0}, 'smoothing_arcmin'),
    ({'shell_spacing': 0.0}, 'shell_spacing'),
    ({'pixel_window': 1}, 'pixel_window'),
])
def test_bad_config(kwargs, name):
    with pytest.raises(ValueError, match=f"'{name}'"):
        CosmologyConfig(**kwargs)
