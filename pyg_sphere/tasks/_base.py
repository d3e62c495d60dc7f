"""What every ``pyg-sphere train TASK`` provides to the command line."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data


class TaskError(Exception):
    """A user error in a task's options or inputs (one line, exit status 2)."""


@dataclass
class TaskData:
    """The splits of a task as dense tensors, ``X [N, n, F]`` and ``y``.

    ``train`` holds clean maps when ``noise_std`` > 0 (the loop adds fresh
    noise to every batch); ``extra_tests`` holds further test sets (e.g. a
    rotated one), evaluated and reported beside ``test``.
    """
    train: Tuple[Tensor, Tensor]
    val: Tuple[Tensor, Tensor]
    test: Tuple[Tensor, Tensor]
    sampling: Data
    class_names: List[str]
    noise_std: float = 0.0
    extra_tests: Dict[str, Tuple[Tensor, Tensor]] = field(default_factory=dict)
    info: Dict[str, Any] = field(default_factory=dict)


class Task:
    """A built-in task: data, model, objective, baselines, plots, predict."""
    name: str = ''
    #: defaults of the shared options (``--epochs`` ...), per task
    defaults: Dict[str, Any] = {}
    samplings: Sequence[str] = ()

    def resolve(self, args: argparse.Namespace) -> Dict[str, Any]:
        """The task's part of the run configuration, validated (raises
        :class:`TaskError`)."""
        raise NotImplementedError

    def load(self, cfg: Dict[str, Any], progress: bool) -> TaskData:
        raise NotImplementedError

    def sampling(self, cfg: Dict[str, Any]) -> Data:
        """The sampling of the model's input (rebuilt from the config)."""
        raise NotImplementedError

    def model(self, cfg: Dict[str, Any]) -> torch.nn.Module:
        raise NotImplementedError

    def input_scale(self, data: TaskData) -> Dict[str, Any]:
        """Mean and std fed to :class:`~pyg_sphere.training.Standardize`."""
        X = data.train[0]
        dims = tuple(range(X.dim() - 1))
        mean, std = X.mean(dims), X.std(dims).clamp_min(1e-12)
        if data.noise_std > 0:
            std = torch.sqrt(std ** 2 + data.noise_std ** 2)
        return {'mean': mean.tolist(), 'std': std.tolist()}

    def objective(self, cfg: Dict[str, Any], data: TaskData) -> Any:
        from ..training import Classification
        return Classification()

    def baselines(self, cfg: Dict[str, Any], data: TaskData) -> Dict[str, float]:
        return {}

    def summary_lines(self, summary: Dict[str, Any]) -> List[str]:
        raise NotImplementedError

    def plots(self, run_dir: Path, cfg: Dict[str, Any], model: torch.nn.Module,
              data: TaskData, summary: Dict[str, Any], device: str) -> List[str]:
        """Write the task's plots into ``run_dir``; return their file names."""
        return []

    def predict(self, run_dir: Path, cfg: Dict[str, Any], model: torch.nn.Module,
                inputs: Sequence[str], output: Optional[str], device: str) -> Path:
        raise TaskError(f"task '{self.name}' has no predict command")


def absolute_root(path: Optional[str]) -> Optional[str]:
    """A cache folder as an absolute path, so that ``evaluate`` run from
    another folder finds the same data (:obj:`None` stays the default)."""
    return None if path is None else str(Path(path).expanduser().resolve())


def cache_dir(data_root: Optional[str], name: str) -> Path:
    """The cache folder of a task's simulated data: ``DATA_ROOT/name``, by
    default next to the cosmology cache (``~/.cache/pyg_sphere/name``)."""
    from ..datasets import default_root
    root = Path(data_root).expanduser() if data_root else default_root().parent
    return root / name


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


def reject_options(task: str, args: argparse.Namespace, names: Sequence[str]) -> None:
    """Refuse options given on the command line that ``task`` does not use."""
    for name in names:
        if getattr(args, name, None) is not None:
            raise TaskError(f'--{name.replace("_", "-")}: not an option of the {task} task')


def check_sampling(task: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise TaskError(f"--sampling: the {task} task supports {', '.join(allowed)} "
                        f"(got '{value}')")
    return value


def value_error(err: ValueError) -> TaskError:
    return TaskError(str(err))
