"""The typed run configuration: JSON round trip, old run directories, resume checks."""
import json
from pathlib import Path

import pytest

from pyg_sphere.simulate import BASIC_SHAPE_CLASSES, SHAPE_CLASSES, CosmologyConfig
from pyg_sphere.tasks import (CONFIG_FORMAT, ClimateData, CosmologyData, RunConfig, ShapesData,
                              TaskError)
from pyg_sphere.training import TrainConfig

DATA = Path(__file__).parent / 'data'


def configs():
    return [
        RunConfig('cosmology', TrainConfig(epochs=3), CosmologyData(
            CosmologyConfig(nside=32, n_maps=7, seed=2), patch_order=2, noise_std=0.01)),
        RunConfig('shapes', TrainConfig(lr=0.01), ShapesData('icosahedral', 3, 8, 'z', 0.0),
                  k=6, data_root='/tmp/x'),
        RunConfig('climate', TrainConfig(batch_size=4), ClimateData('healpix', 8, 12), k=10),
    ]


@pytest.mark.parametrize('config', configs(), ids=lambda c: c.task)
def test_json_round_trip(config, tmp_path):
    config.save(tmp_path / 'config.json')
    saved = json.loads((tmp_path / 'config.json').read_text())
    assert saved['format'] == CONFIG_FORMAT and saved['task'] == config.task
    assert RunConfig.load(tmp_path / 'config.json') == config


@pytest.mark.parametrize('task', ['cosmology', 'shapes', 'climate'])
def test_format_1_run_directories_still_load(task):
    # config.json files written by the code before the typed configuration
    old = json.loads((DATA / f'config_v1_{task}.json').read_text())
    config = RunConfig.load(DATA / f'config_v1_{task}.json')
    assert config.task == task and config.train == TrainConfig(**old['train'])
    assert list(config.input_scale.mean) == old['input_scale']['mean']
    assert config.k == old['k'] and config.data_root == old['data_root']
    if task == 'cosmology':
        # every simulation parameter is now explicit, with the values of that time
        assert config.data.simulation == CosmologyConfig(
            nside=64, n_maps=128, seed=0, cosmologies=((0.31, 0.82), (0.26, 0.91)))
        assert (config.data.patch_order, config.data.noise_std) == (1, 0.004)
        assert config.data.augment == 'none'  # trained before the option
    elif task == 'shapes':
        # the eight plain solids, undeformed: what the shapes task simulated then
        assert config.data == ShapesData('healpix', 16, 40, 'none', 0.1, None, 0,
                                         classes=BASIC_SHAPE_CLASSES, deform=0.0, noise=0.0,
                                         partial=0.0)
    else:
        assert config.data == ClimateData('icosahedral', 5, 64, None, 0)


def test_format_2_shapes_runs_before_the_24_classes_still_load(tmp_path):
    # format 2 as written before the classes / deform / noise / partial options
    config = RunConfig('shapes', TrainConfig(), ShapesData(), classes=BASIC_SHAPE_CLASSES)
    values = config.to_dict()
    for key in ('classes', 'deform', 'noise', 'partial'):
        del values['data'][key]
    (tmp_path / 'config.json').write_text(json.dumps(values))
    old = RunConfig.load(tmp_path / 'config.json')
    assert old.data.classes == BASIC_SHAPE_CLASSES
    assert (old.data.deform, old.data.noise, old.data.partial) == (0.0, 0.0, 0.0)
    # a new run keeps every class and the default perturbations
    assert ShapesData().classes == SHAPE_CLASSES and ShapesData().deform > 0
    values['data']['blur'] = 1
    (tmp_path / 'config.json').write_text(json.dumps(values))
    with pytest.raises(TaskError, match=r"unknown shapes data options \['blur'\]"):
        RunConfig.load(tmp_path / 'config.json')


def test_unknown_format_and_garbage_are_named(tmp_path):
    path = tmp_path / 'config.json'
    path.write_text(json.dumps(dict(configs()[0].to_dict(), format=7)))
    with pytest.raises(TaskError, match='format 7'):
        RunConfig.load(path)
    path.write_text('{"task": "cosmology", "tra')
    with pytest.raises(TaskError, match='not a readable JSON run configuration'):
        RunConfig.load(path)
    path.write_text(json.dumps({'format': 2, 'task': 'cosmology'}))
    with pytest.raises(TaskError, match="not a valid run configuration .*'train'"):
        RunConfig.load(path)
    path.write_text(json.dumps(dict(configs()[0].to_dict(), task='weather')))
    with pytest.raises(TaskError, match="unknown task 'weather'"):
        RunConfig.load(path)


def test_differences_name_each_option_and_ignore_where_data_live():
    a = configs()[1]
    b = a.replace(train=TrainConfig(lr=0.1, device='cuda'), data_root='/elsewhere', workers=5,
                  data=ShapesData('icosahedral', 4, 8, 'z', 0.0))
    assert a.differences(a) == []
    assert b.differences(a) == ['data.resolution (3 -> 4)', 'train.lr (0.01 -> 0.1)']
