"""The configuration of a run: typed, resolved once, saved to ``config.json``
and loaded back by ``evaluate``, ``predict`` and ``--resume``."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..training import TrainConfig
from ._base import TaskError

#: Format of ``config.json`` written by this version. Format 1 (no
#: ``format`` key) was written by pyg_sphere 0.1.0.dev0 before the typed
#: configuration; it is converted on load.
CONFIG_FORMAT = 2
#: Entries that may change between a run and its ``--resume`` (they do not
#: change the results): where the data are cached, how many processes make
#: them, and the device.
RESUMABLE = ('data_root', 'workers', 'train.device')


@dataclass(frozen=True)
class InputScale:
    """Per-channel mean and std of the training maps (what
    :class:`~pyg_sphere.training.Standardize` subtracts and divides by)."""
    mean: Tuple[float, ...]
    std: Tuple[float, ...]


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run of ``pyg-sphere train``.

    Args:
        task (str): the task's name.
        train (TrainConfig): optimisation settings.
        data: the task's data options (e.g. :class:`~pyg_sphere.tasks.cosmology.CosmologyData`).
        k (int): neighbours of the kNN graphs.
        data_root (str, optional): cache of simulated data; ``DATA_ROOT/TASK``
            holds the task's datasets. (default: the user cache)
        workers (int): processes that generate data.
        input_scale (InputScale, optional): learnt from the training data
            (filled in by :func:`~pyg_sphere.tasks.train`).
        classes (tuple of str): the class names.
    """
    task: str
    train: TrainConfig
    data: Any
    k: int = 8
    data_root: Optional[str] = None
    workers: int = 2
    input_scale: Optional[InputScale] = None
    classes: Tuple[str, ...] = field(default_factory=tuple)

    def replace(self, **changes: Any) -> 'RunConfig':
        return dataclasses.replace(self, **changes)

    # -- JSON ------------------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        data = self.data.to_dict() if hasattr(self.data, 'to_dict') else \
            dataclasses.asdict(self.data)
        return {'format': CONFIG_FORMAT, 'task': self.task,
                'train': dataclasses.asdict(self.train), 'data': data, 'k': self.k,
                'data_root': self.data_root, 'workers': self.workers,
                'input_scale': None if self.input_scale is None else
                dataclasses.asdict(self.input_scale), 'classes': list(self.classes)}

    @classmethod
    def from_dict(cls, values: Dict[str, Any], where: str = 'config.json') -> 'RunConfig':
        """A configuration from its JSON form (format 2, or format 1, which is
        converted); raises :class:`TaskError` naming what is wrong."""
        from . import get_task
        if not isinstance(values, dict):
            raise TaskError(f'{where}: expected a JSON object (got {type(values).__name__})')
        fmt = values.get('format', 1)
        if fmt == 1:
            from ._legacy import convert_format_1
            values = convert_format_1(values, where)
        elif fmt != CONFIG_FORMAT:
            raise TaskError(f'{where}: a run configuration of format {fmt!r}; this version of '
                            f'pyg_sphere reads formats 1 and {CONFIG_FORMAT}')
        try:
            task = get_task(values['task'])
            scale = values.get('input_scale')
            return cls(task=values['task'], train=TrainConfig(**values['train']),
                       data=task.data_from_dict(values['data']), k=int(values['k']),
                       data_root=values.get('data_root'), workers=int(values['workers']),
                       input_scale=None if scale is None else InputScale(
                           tuple(scale['mean']), tuple(scale['std'])),
                       classes=tuple(values.get('classes', ())))
        except TaskError as err:
            raise TaskError(f'{where}: {err}') from None
        except (KeyError, TypeError, ValueError) as err:
            raise TaskError(f'{where}: not a valid run configuration of format {fmt} '
                            f'({type(err).__name__}: {err})') from None

    def save(self, path: Path) -> None:
        from ..utils import atomic_write_text
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + '\n')

    @classmethod
    def load(cls, path: Path) -> 'RunConfig':
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            raise TaskError(f'{path}: no such file') from None
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise TaskError(f'{path}: not a readable JSON run configuration ({err})') from None
        return cls.from_dict(values, str(path))

    # -- resuming --------------------------------------------------------------

    def differences(self, other: 'RunConfig') -> List[str]:
        """The options (dotted paths) whose values differ from ``other``'s,
        ignoring :obj:`RESUMABLE` and what is learnt from the data."""
        a, b = _flat(self.to_dict()), _flat(other.to_dict())
        skip = set(RESUMABLE)
        out = []
        for key in sorted(set(a) | set(b)):
            if key in skip or key.startswith(('input_scale', 'classes')):
                continue
            if a.get(key) != b.get(key):
                out.append(f'{key} ({b.get(key)!r} -> {a.get(key)!r})')
        return out


def _flat(values: Dict[str, Any], prefix: str = '') -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in values.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            out.update(_flat(value, name + '.'))
        else:
            out[name] = value
    return out
