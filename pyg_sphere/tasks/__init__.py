"""The built-in tasks of ``pyg-sphere train``, the three applications of the
DeepSphere paper, runnable without downloads, and the functions that run them
from Python::

    from pyg_sphere.tasks import RunConfig, get_task, train
    summary = train(config, 'runs/cosmo')
"""
from ._base import Task, TaskData, TaskError
from .climate import ClimateData, ClimateTask
from .config import CONFIG_FORMAT, InputScale, RunConfig
from .cosmology import CosmologyData, CosmologyTask
from .run import evaluate, load_run, predict, train
from .shapes import ShapesData, ShapesTask

#: name -> task, in the order the command line lists them
TASKS = {'cosmology': CosmologyTask(), 'shapes': ShapesTask(), 'climate': ClimateTask()}


def get_task(name: str) -> Task:
    """The task called ``name`` (raises :class:`TaskError` naming the choices)."""
    if name not in TASKS:
        raise TaskError(f"unknown task '{name}' (expected one of {', '.join(TASKS)})")
    return TASKS[name]


__all__ = [
    'TASKS',
    'get_task',
    'train',
    'evaluate',
    'predict',
    'load_run',
    'RunConfig',
    'InputScale',
    'CONFIG_FORMAT',
    'Task',
    'TaskData',
    'TaskError',
    'CosmologyTask',
    'CosmologyData',
    'ShapesTask',
    'ShapesData',
    'ClimateTask',
    'ClimateData',
]
