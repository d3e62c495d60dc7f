"""Reading triangle meshes (OFF, OBJ, STL, PLY) with trimesh
(``pip install pyg-sphere[shapes]``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Tuple

import numpy as np

from .._validation import _got

#: Mesh file formats read by :func:`load_mesh` (file extensions, lower case).
MESH_FORMATS: Tuple[str, ...] = ('off', 'obj', 'stl', 'ply')


def _import_trimesh() -> Any:
    try:
        import trimesh
    except ImportError as err:
        raise ImportError("Reading mesh files needs the 'trimesh' package: "
                          "pip install pyg-sphere[shapes] (or pip install trimesh)") from err
    return trimesh


def load_mesh(path: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh from an OFF, OBJ, STL or PLY file with
    `trimesh <https://trimesh.org>`_ (``pip install pyg-sphere[shapes]``).

    Polygons are triangulated, the vertices are kept as in the file (no
    merging, no repair); files holding several objects are concatenated.

    Args:
        path (str or os.PathLike): the file; its extension (one of
            :obj:`MESH_FORMATS`, any case) gives the format.

    Returns:
        ``(vertices [V, 3] float64, faces [F, 3] int64)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown extension, unreadable file, or no triangles.
        ImportError: trimesh is not installed.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"Expected 'path' to be a str or os.PathLike (got {_got(path)})")
    path = Path(path)
    ext = path.suffix.lower().lstrip('.')
    if ext not in MESH_FORMATS:
        raise ValueError(f"Expected 'path' to have one of the extensions {MESH_FORMATS} "
                         f"(got '{path.name}')")
    if not path.is_file():
        raise FileNotFoundError(f"Expected 'path' to be an existing mesh file (got '{path}')")
    trimesh = _import_trimesh()
    try:
        mesh = trimesh.load(str(path), file_type=ext, force='mesh', process=False)
        vertices = np.asarray(mesh.vertices, dtype=np.float64).reshape(-1, 3)
        faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    except Exception as err:  # trimesh raises many kinds of errors on bad files
        raise ValueError(f"Could not read a triangle mesh from '{path}': "
                         f"{type(err).__name__}: {err}") from err
    if faces.shape[0] == 0 or vertices.shape[0] < 3:
        raise ValueError(f"Expected '{path}' to hold a non-empty triangle mesh (got "
                         f"{vertices.shape[0]} vertices and {faces.shape[0]} triangles)")
    if not np.isfinite(vertices).all():
        raise ValueError(f"Expected the vertices of '{path}' to be finite (got NaN or inf)")
    return vertices, faces
