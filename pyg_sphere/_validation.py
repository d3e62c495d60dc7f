"""Small input checks shared by the public API.

Every error names the argument, what was expected and what was got, so that a
user can fix the call without reading our source.
"""
from __future__ import annotations

import numbers
from typing import Any, Iterable

import numpy as np
import torch


def _got(value: Any) -> str:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f'{type(value).__name__} of shape {tuple(value.shape)}'
    return repr(value)


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """Return ``value`` as an ``int`` or raise a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"Expected '{name}' to be an integer (got {_got(value)})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"Expected '{name}' to be >= {minimum} (got {value})")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"Expected '{name}' to be one of {choices} (got {value!r})")
    return value


def is_power_of_two(value: int) -> bool:
    return value > 0 and (value & (value - 1)) == 0


def check_real(name: str, value: Any, minimum: float | None = None,
               strict: bool = False) -> float:
    """Return ``value`` as a finite ``float`` (not a bool), at least
    ``minimum`` (greater than it when ``strict``), or raise a ValueError
    naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"Expected '{name}' to be a number (got {_got(value)})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"Expected '{name}' to be finite (got {value})")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"Expected '{name}' to be {'>' if strict else '>='} {minimum} "
                         f"(got {value})")
    return value


def check_positive_float(name: str, value: Any) -> float:
    """A finite number > 0 (see :func:`check_real`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"Expected '{name}' to be a positive number (got {_got(value)})")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"Expected '{name}' to be a positive finite number (got {value})")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool, or raise a ValueError naming ``name``."""
    if not isinstance(value, bool):
        raise ValueError(f"Expected '{name}' to be a bool (got {_got(value)})")
    return value


def check_pos(pos: Any, name: str = 'pos') -> torch.Tensor:
    """Check that ``pos`` is a finite [n, 3] float tensor of (near) unit vectors."""
    if not isinstance(pos, torch.Tensor):
        raise ValueError(f"Expected '{name}' to be a torch.Tensor of shape [n, 3] "
                         f"(got {_got(pos)})")
    if pos.dim() != 2 or pos.size(1) != 3:
        raise ValueError(f"Expected '{name}' to have shape [n, 3] (got {tuple(pos.shape)})")
    if not pos.is_floating_point():
        raise ValueError(f"Expected '{name}' to be a floating point tensor (got {pos.dtype})")
    finite = torch.isfinite(pos).all(dim=1)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0, 0])
        raise ValueError(f"Expected '{name}' to be finite, but row {bad} is "
                         f"{pos[bad].tolist()} ({int((~finite).sum())} non-finite rows)")
    norm = pos.double().norm(dim=1)
    err = (norm - 1).abs()
    if pos.numel() and float(err.max()) > 1e-3:
        bad = int(err.argmax())
        raise ValueError(f"Expected '{name}' to hold unit vectors (points on the unit "
                         f"sphere), but row {bad} has norm {float(norm[bad]):.6g}")
    return pos
