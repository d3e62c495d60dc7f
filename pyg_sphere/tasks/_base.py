"""What every built-in task provides to :func:`pyg_sphere.tasks.train`."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data

# (``config`` below is a :class:`~pyg_sphere.tasks.RunConfig`.)
RunConfig = Any


class TaskError(ValueError):
    """A user error in a task's options or inputs (the command line prints it
    as one line and exits with status 2)."""


@dataclass
class TaskData:
    """The splits of a task as dense tensors, ``X [N, n, F]`` and ``y``.

    ``train`` holds clean maps when ``noise_std`` > 0 (the loop adds fresh
    noise to every batch); ``extra_tests`` holds further test sets (e.g. a
    rotated one), evaluated and reported beside ``test``; ``info`` holds what
    baselines and plots need beyond the tensors (e.g. the datasets).
    """
    train: Tuple[Tensor, Tensor]
    val: Tuple[Tensor, Tensor]
    test: Tuple[Tensor, Tensor]
    class_names: List[str]
    noise_std: float = 0.0
    extra_tests: Dict[str, Tuple[Tensor, Tensor]] = field(default_factory=dict)
    info: Dict[str, Any] = field(default_factory=dict)


class Task:
    """A built-in task: its data configuration, data, model, objective,
    baselines, summary, plots and predict.

    Every method but :meth:`load` is cheap: :func:`pyg_sphere.tasks.train`
    resolves the configuration and builds the model (and so checks every
    option) before any data is generated.
    """
    #: the name on the command line
    name: str = ''
    #: the dataclass of the task's data options (``RunConfig.data``)
    data_type: type = object
    #: defaults of the shared options (``--epochs`` ...), per task
    defaults: Dict[str, Any] = {}
    samplings: Sequence[str] = ()

    def data_config(self, args: argparse.Namespace) -> Any:
        """The task's data options from parsed command-line arguments,
        validated (raises :class:`TaskError`)."""
        raise NotImplementedError

    def data_from_dict(self, values: Dict[str, Any]) -> Any:
        """The data options back from ``config.json``."""
        return self.data_type(**values)

    def classes(self, config: RunConfig) -> List[str]:
        """The class names, known before the data are made."""
        raise NotImplementedError

    def sampling(self, config: RunConfig) -> Data:
        """The sampling of the model's input."""
        raise NotImplementedError

    def graph(self, config: RunConfig) -> Data:
        """What :meth:`model` is built on: the sampling (the model builds its
        pyramid), or a prebuilt ``SpherePyramid`` shared by several models."""
        return self.sampling(config)

    def model(self, config: RunConfig, graph: Data, **kwargs: Any) -> torch.nn.Module:
        """The network on ``graph`` (:meth:`graph`), wrapped in
        :class:`~pyg_sphere.training.Standardize` (mean 0, std 1 until the
        configuration holds the input scale)."""
        raise NotImplementedError

    def load(self, config: RunConfig, progress: bool, splits: Sequence[str] =
             ('train', 'val', 'test')) -> TaskData:
        """The data (simulated on first use, then cached)."""
        raise NotImplementedError

    def input_scale(self, data: TaskData) -> Tuple[List[float], List[float]]:
        """Per-channel mean and std of the training maps, fed to
        :class:`~pyg_sphere.training.Standardize` (the noise std is added in
        quadrature when the loop adds noise)."""
        X = data.train[0]
        dims = tuple(range(X.dim() - 1))
        mean, std = X.mean(dims), X.std(dims).clamp_min(1e-12)
        if data.noise_std > 0:
            std = torch.sqrt(std ** 2 + data.noise_std ** 2)
        return mean.tolist(), std.tolist()

    def objective(self, config: RunConfig, data: TaskData) -> Any:
        from ..training import Classification
        return Classification()

    def augment(self, config: RunConfig, data: TaskData) -> Any:
        """The augmentation of training batches passed to
        :func:`~pyg_sphere.training.train_model` (:obj:`None`: none)."""
        return None

    def summary_extras(self, config: RunConfig, data: TaskData) -> Dict[str, Any]:
        """Entries the task adds to the run's summary (default: none)."""
        return {}

    def baselines(self, config: RunConfig, data: TaskData, graph: Data,
                  log: Any) -> Dict[str, Any]:
        """Baselines on the same split: ``{name: value}``. A baseline that
        trains a network says so under ``'trained_networks'``."""
        return {}

    def summary_lines(self, summary: Dict[str, Any]) -> List[str]:
        raise NotImplementedError

    def plots(self, run_dir: Path, config: RunConfig, model: torch.nn.Module,
              data: TaskData, summary: Dict[str, Any], device: str) -> List[str]:
        """Write the task's plots into ``run_dir``; return their file names."""
        return []

    def predict(self, run_dir: Path, config: RunConfig, model: torch.nn.Module,
                inputs: Sequence[str], output: Optional[str], device: str,
                masked: str = 'error') -> Path:
        """Apply ``model`` to the user's files. ``masked='skip'`` (tasks on
        partial-sky patches only) leaves out the patches holding masked
        pixels instead of refusing the map."""
        raise TaskError(f"task '{self.name}' has no predict command")


def no_masked_skip(task: str, masked: str) -> None:
    if masked != 'error':
        raise TaskError(f"--masked {masked}: only the cosmology task scores partial skies "
                        f"(the {task} task needs complete inputs)")


def reject_options(task: str, args: argparse.Namespace, names: Sequence[str]) -> None:
    """Refuse options given on the command line that ``task`` does not use."""
    for name in names:
        if getattr(args, name, None) is not None:
            raise TaskError(f'--{name.replace("_", "-")}: not an option of the {task} task')


def data_dir_option(path: Optional[str], folder_only: bool) -> Optional[str]:
    """``--data-dir`` as an absolute path, checked to exist (and to be a
    folder when ``folder_only``); :obj:`None` means the built-in data."""
    if path is None:
        return None
    resolved = Path(path).expanduser()
    if not (resolved.is_dir() if folder_only else resolved.exists()):
        what = 'directory' if folder_only else 'file or directory'
        raise TaskError(f'--data-dir: no such {what}: {resolved}')
    return str(resolved.resolve())


def task_cache(config: RunConfig, name: str) -> str:
    """The dataset folder of a task's simulated data: ``DATA_ROOT/name``
    (default ``default_cache_dir(name)``)."""
    from ..utils import default_cache_dir
    if config.data_root is None:
        return str(default_cache_dir(name))
    return str(Path(config.data_root).expanduser() / name)
