"""Reading the SHREC'17 layout (`Savva et al. 2017
<https://shapenet.cs.stanford.edu/shrec17/>`_): mesh files named by their
id (``model_000003.obj`` or ``000003.obj``, in the folder or below it, e.g.
``train_normal/``) and CSV files of ids and classes (the challenge's
``train.csv``: ``id,synsetId,subSynsetId,modelId,split``)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .mesh import MESH_FORMATS

#: The id column of a SHREC'17 CSV file.
SHREC17_ID_COLUMN = 'id'
#: Columns read as the class, the first present wins (``synsetId`` in SHREC'17).
SHREC17_CLASS_COLUMNS: Tuple[str, ...] = ('synsetId', 'class', 'label', 'category')
#: The split column (optional; without it the split is drawn).
SHREC17_SPLIT_COLUMN = 'split'


def _header(path: Path) -> List[str]:
    try:
        with open(path, newline='') as f:
            return [h.strip() for h in next(csv.reader(f), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def shrec17_csvs(folder: Path) -> List[Path]:
    """The CSV files directly in ``folder`` with an ``id`` column and a class
    column (:obj:`SHREC17_CLASS_COLUMNS`), sorted; empty when ``folder`` is
    not in the SHREC'17 layout."""
    out = []
    for path in sorted(Path(folder).glob('*.csv')):
        header = _header(path)
        if SHREC17_ID_COLUMN in header and any(c in header for c in SHREC17_CLASS_COLUMNS):
            out.append(path)
    return out


def _key(name: str) -> str:
    """Ids compare as numbers when they are numbers (``000003`` is ``3``)."""
    name = name.strip()
    return str(int(name)) if name.isdigit() else name


def _mesh_index(folder: Path) -> Dict[str, Path]:
    index: Dict[str, Path] = {}
    for path in sorted(p for p in folder.rglob('*') if p.is_file()
                       and p.suffix.lower().lstrip('.') in MESH_FORMATS):
        stem = path.stem[len('model_'):] if path.stem.startswith('model_') else path.stem
        key = _key(stem)
        if key in index:
            raise ValueError(f"Expected one mesh file per id in '{folder}' (got "
                             f"'{index[key].relative_to(folder)}' and "
                             f"'{path.relative_to(folder)}' for id {stem}; keep one set, e.g. "
                             f"the *_normal or the *_perturbed folders)")
        index[key] = path
    return index


def read_shrec17(folder: Path) -> List[Tuple[Path, str, Optional[str]]]:
    """``(mesh file, class, split or None)`` of every id of the CSV files of
    ``folder`` (:func:`shrec17_csvs`) that has a mesh file, sorted by path.
    Ids without a file are left out (e.g. the test split not downloaded); an
    id listed twice must keep its class.

    Raises:
        ValueError: no CSV file of the layout, a bad row, an id with two
            classes or two files, or no listed id with a file.
    """
    folder = Path(folder)
    csvs = shrec17_csvs(folder)
    if not csvs:
        raise ValueError(f"Expected '{folder}' to hold a CSV file with the columns "
                         f"'{SHREC17_ID_COLUMN}' and one of {SHREC17_CLASS_COLUMNS}")
    index = _mesh_index(folder)
    rows: Dict[str, Tuple[Path, str, Optional[str]]] = {}
    for path in csvs:
        with open(path, newline='') as f:
            reader = csv.DictReader(f)
            reader.fieldnames = [h.strip() for h in reader.fieldnames or []]
            column = next(c for c in SHREC17_CLASS_COLUMNS if c in reader.fieldnames)
            for line, row in enumerate(reader, start=2):
                ident = (row.get(SHREC17_ID_COLUMN) or '').strip()
                cls = (row.get(column) or '').strip()
                if not ident or not cls:
                    raise ValueError(f"Expected an id and a class in '{path.name}' line {line} "
                                     f"(got {dict(row)})")
                split = (row.get(SHREC17_SPLIT_COLUMN) or '').strip() or None
                key = _key(ident)
                if key in rows and rows[key][1] != cls:
                    raise ValueError(f"Expected id {ident} to have one class (got "
                                     f"'{rows[key][1]}' and '{cls}' in '{path.name}')")
                if key in index and key not in rows:
                    rows[key] = (index[key], cls, split)
    if not rows:
        raise ValueError(f"Expected some ids of {[p.name for p in csvs]} to have a mesh file "
                         f"(model_<id>.<ext> or <id>.<ext>, ext one of {MESH_FORMATS}) in or "
                         f"below '{folder}' (got none)")
    return sorted(rows.values())
