"""The built-in tasks of ``pyg-sphere train``: the three applications of the
DeepSphere paper, runnable without downloads."""
from ._base import Task, TaskData, TaskError
from .cosmology import CosmologyTask
from .shapes import ShapesTask
from .climate import ClimateTask

#: name -> task, in the order the command line lists them
TASKS = {'cosmology': CosmologyTask(), 'shapes': ShapesTask(),
         'climate': ClimateTask()}


def get_task(name: str) -> Task:
    """The task called ``name`` (raises :class:`TaskError` naming the choices)."""
    if name not in TASKS:
        raise TaskError(f"unknown task '{name}' (expected one of {', '.join(TASKS)})")
    return TASKS[name]


__all__ = ['TASKS', 'Task', 'TaskData', 'TaskError', 'get_task', 'CosmologyTask', 'ShapesTask',
           'ClimateTask']
