"""Rotation matrices of the sphere: random (Haar or about z), from quaternions,
checked, and as ZYZ Euler angles. NumPy, float64; no other dependency."""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import torch

from .._validation import _got, check_int


def as_generator(seed: Any) -> np.random.Generator:
    """A numpy Generator from a seed, :obj:`None` or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise ValueError(f"Expected 'seed' to be an int, None or a numpy Generator (got {_got(seed)})")


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions [..., 4] (w, x, y, z) to rotation matrices [..., 3, 3]."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def random_rotation(num: int = 1, seed: Any = None, axis: Optional[str] = None) -> np.ndarray:
    r"""Random rotation matrices, float64 [num, 3, 3].

    With ``axis=None`` they are uniform (Haar) on :math:`SO(3)`: the
    quaternion is a normalized standard Gaussian 4-vector, uniform on
    :math:`S^3`, which double-covers :math:`SO(3)` with the Haar measure.
    With ``axis='z'`` they are rotations about the z axis by a uniform angle
    in :math:`[0, 2\pi)`.

    Args:
        num (int): number of rotations.
        seed (int or numpy.random.Generator, optional): seed or generator.
        axis (str, optional): :obj:`None` (all of SO(3)) or ``'z'``.
    """
    num = check_int('num', num, minimum=0)
    rng = as_generator(seed)
    if axis is None:
        return quaternion_to_matrix(rng.standard_normal((num, 4)))
    if axis != 'z':
        raise ValueError(f"Expected 'axis' to be None or 'z' (got {axis!r})")
    return z_rotation(rng.uniform(0.0, 2 * np.pi, size=num))


def z_rotation(angle: Any) -> np.ndarray:
    """Rotations about z by ``angle`` (radians, array [num]) as [num, 3, 3]."""
    angle = np.atleast_1d(np.asarray(angle, dtype=np.float64))
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(angle.shape + (3, 3))
    out[..., 0, 0], out[..., 0, 1] = c, -s
    out[..., 1, 0], out[..., 1, 1] = s, c
    out[..., 2, 2] = 1.0
    return out


def check_rotation(rotation: Any) -> np.ndarray:
    """``rotation`` (array or tensor) as a float64 3 x 3 rotation matrix, or a
    ValueError."""
    if isinstance(rotation, torch.Tensor):
        rotation = rotation.detach().cpu().double().numpy()
    r = np.asarray(rotation, dtype=np.float64)
    if r.shape != (3, 3):
        raise ValueError(f"Expected 'rotation' to be a 3 x 3 matrix (got shape {r.shape})")
    if (np.abs(r @ r.T - np.eye(3)).max() > 1e-8 or np.linalg.det(r) < 0):
        raise ValueError("Expected 'rotation' to be a rotation matrix (orthogonal, det +1)")
    return r


def euler_zyz(rotation: Any) -> tuple:
    r"""Angles :math:`(\alpha, \beta, \gamma)` with :math:`R = R_z(\alpha)
    R_y(\beta) R_z(\gamma)` (active rotations, radians)."""
    r = check_rotation(rotation)
    beta = math.acos(min(1.0, max(-1.0, r[2, 2])))
    if math.sin(beta) > 1e-9:
        alpha = math.atan2(r[1, 2], r[0, 2])
        gamma = math.atan2(r[2, 1], -r[2, 0])
    elif r[2, 2] > 0:  # beta = 0: only alpha + gamma matters
        alpha, gamma = math.atan2(r[1, 0], r[0, 0]), 0.0
    else:  # beta = pi: only alpha - gamma matters
        alpha, gamma = math.atan2(-r[1, 0], -r[0, 0]), 0.0
    return alpha, beta, gamma
