"""Diagnostics of a training run: confusion matrices and training curves."""
from __future__ import annotations

import numbers
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from .._validation import _got

from ._common import _check_path, _is_path, _matplotlib, _save

#: Panels of :func:`plot_training_curves`: (y-axis label, keys plotted on it).
CURVE_PANELS = (
    ('loss', ('train_loss', 'val_loss')),
    ('accuracy', ('train_accuracy', 'val_accuracy')),
    ('score', ('val_score',)),
)


def plot_confusion(confusion: Any, class_names: Sequence[str], path_or_ax: Any,
                   title: Optional[str] = 'confusion', normalize: bool = False,
                   dpi: int = 100) -> Any:
    r"""Plot a confusion matrix, true classes in rows and predicted classes in
    columns, each cell annotated with its count.

    Args:
        confusion (array-like [C, C]): ``confusion[i, j]`` counts the samples
            of true class ``i`` predicted as class ``j``.
        class_names (sequence of str): the ``C`` class names.
        path_or_ax (str, os.PathLike or matplotlib.axes.Axes): a file to write
            atomically (format from its suffix), or axes to draw into.
        title (str, optional): axes title. (default: :obj:`'confusion'`)
        normalize (bool, optional): color each cell by its fraction of its
            row (the recall on the diagonal) and annotate fractions instead of
            counts. (default: :obj:`False`)
        dpi (int, optional): resolution of raster formats. (default: :obj:`100`)

    Returns:
        The :class:`pathlib.Path` written, or the Axes drawn into.
    """
    mpl = _matplotlib()
    if isinstance(confusion, torch.Tensor):
        confusion = confusion.detach().cpu().numpy()
    cm = np.asarray(confusion)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"Expected 'confusion' to be a square matrix [C, C] "
                         f"(got shape {cm.shape})")
    if not (np.issubdtype(cm.dtype, np.integer) or np.issubdtype(cm.dtype, np.floating)) \
            or not np.isfinite(cm).all() or (cm < 0).any():
        raise ValueError("Expected 'confusion' to hold finite non-negative counts")
    if isinstance(class_names, str) or len(class_names) != cm.shape[0]:
        got = repr(class_names) if isinstance(class_names, str) else len(class_names)
        raise ValueError(f"Expected 'class_names' to hold {cm.shape[0]} names, one per class "
                         f"(got {got})")
    if _is_path(path_or_ax):
        path, fmt = _check_path(path_or_ax)
        size = 1.2 + 0.55 * cm.shape[0]
        fig = mpl.figure.Figure(figsize=(size + 1.2, size), layout='constrained')
        ax = fig.add_subplot()
    elif hasattr(path_or_ax, 'imshow'):
        path, ax = None, path_or_ax
    else:
        raise ValueError(f"Expected 'path_or_ax' to be a file path or Matplotlib Axes "
                         f"(got {_got(path_or_ax)})")
    rows = cm.sum(axis=1, keepdims=True).astype(np.float64)
    fraction = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    shown = fraction if normalize else cm
    im = ax.imshow(shown, cmap='Blues', vmin=0, vmax=1 if normalize else max(cm.max(), 1))
    threshold = (1 if normalize else max(cm.max(), 1)) / 2
    for (i, j), value in np.ndenumerate(shown):
        text = f'{value:.2f}' if normalize else \
            (f'{int(value)}' if float(value).is_integer() else f'{value:.3g}')
        ax.text(j, i, text, ha='center', va='center', fontsize=8,
                color='white' if value > threshold else 'black')
    ticks = np.arange(cm.shape[0])
    names = [str(name) for name in class_names]
    slanted = cm.shape[0] > 4 or max(len(n) for n in names) > 10
    ax.set_xticks(ticks, names, rotation=30 if slanted else 0,
                  ha='right' if slanted else 'center')
    ax.set_yticks(ticks, names)
    ax.set(xlabel='predicted', ylabel='true')
    if title is not None:
        ax.set_title(str(title))
    ax.figure.colorbar(im, ax=ax, shrink=0.8)
    return ax if path is None else _save(ax.figure, path, fmt, dpi)


# -- training curves -------------------------------------------------------------

def _series(rows: Sequence[Mapping[str, Any]], key: str) -> Tuple[List[float], List[float]]:
    xs, ys = [], []
    for row in rows:
        value = row.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"Expected rows[...]['{key}'] to be a number or None "
                             f"(got {_got(value)} at epoch {row['epoch']})")
        xs.append(float(row['epoch']))
        ys.append(float(value))
    return xs, ys


def plot_training_curves(rows: Sequence[Mapping[str, Any]], path_or_ax: Any,
                         dpi: int = 100) -> Any:
    r"""Plot per-epoch training metrics: the panels of :obj:`CURVE_PANELS`
    (loss, accuracy, score) that have data.

    Args:
        rows (sequence of dict): one dict per epoch with ``'epoch'`` and any of
            ``'train_loss'``, ``'val_loss'``, ``'train_accuracy'``,
            ``'val_accuracy'``, ``'val_score'`` (missing or :obj:`None` entries
            are skipped, e.g. validation every few epochs), as in a run's
            ``metrics.jsonl``.
        path_or_ax (str, os.PathLike, Axes or sequence of Axes): a file to
            write atomically (format from its suffix), one Axes per panel, or
            a single Axes (losses on its left y-axis, accuracies and score on
            a twin right y-axis, dashed).
        dpi (int, optional): resolution of raster formats. (default: :obj:`100`)

    Returns:
        The :class:`pathlib.Path` written, or the list of Axes drawn into.
    """
    mpl = _matplotlib()
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or len(rows) == 0:
        raise ValueError(f"Expected 'rows' to be a non-empty sequence of dicts, one per epoch "
                         f"(got {_got(rows)})")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping) or 'epoch' not in row:
            raise ValueError(f"Expected every row to be a dict with an 'epoch' key "
                             f"(got {_got(row)} at rows[{i}])")
    panels = []
    for label, keys in CURVE_PANELS:
        series = [(key, *_series(rows, key)) for key in keys]
        series = [s for s in series if s[1]]
        if series:
            panels.append((label, series))
    if not panels:
        known = [key for _, keys in CURVE_PANELS for key in keys]
        raise ValueError(f"Expected the rows to hold at least one of {known} "
                         f"(got keys {sorted(set().union(*(row.keys() for row in rows)))})")

    path, twin = None, False
    if _is_path(path_or_ax):
        path, fmt = _check_path(path_or_ax)
        fig = mpl.figure.Figure(figsize=(4.2 * len(panels), 3.4), layout='constrained')
        axes = [fig.add_subplot(1, len(panels), i + 1) for i in range(len(panels))]
    elif hasattr(path_or_ax, 'plot'):
        # One Axes: losses on the left, accuracies and score on a twin right axis.
        twin = len(panels) > 1
        axes = [path_or_ax] + [path_or_ax.twinx()] * (len(panels) > 1)
    elif isinstance(path_or_ax, Sequence) and all(hasattr(a, 'plot') for a in path_or_ax):
        if len(path_or_ax) != len(panels):
            raise ValueError(f"Expected 'path_or_ax' to hold {len(panels)} Axes, one per panel "
                             f"{tuple(label for label, _ in panels)} (got {len(path_or_ax)})")
        axes = list(path_or_ax)
    else:
        raise ValueError(f"Expected 'path_or_ax' to be a file path, Matplotlib Axes or a "
                         f"sequence of Axes (got {_got(path_or_ax)})")

    groups = [panels[:1], panels[1:]] if twin else [[panel] for panel in panels]
    styles = ['-', '--'] if twin else ['-'] * len(axes)
    color = 0  # one color per curve, across twin axes too
    for ax, group, style in zip(axes, groups, styles):
        for _, series in group:
            for key, xs, ys in series:
                ax.plot(xs, ys, linestyle=style, color=f'C{color % 10}',
                        marker='.' if len(xs) < 30 else None, label=key.replace('_', ' '))
                color += 1
        ax.set_ylabel(' / '.join(label for label, _ in group))
        if ax is axes[0] or not twin:
            ax.grid(True, alpha=0.3)
    axes[0].set_xlabel('epoch')
    if twin:
        handles, names = axes[0].get_legend_handles_labels()
        more_handles, more_names = axes[1].get_legend_handles_labels()
        axes[0].legend(handles + more_handles, names + more_names, fontsize=8)
    else:
        for ax in axes:
            ax.set_xlabel('epoch')
            ax.legend(fontsize=8)
    if path is not None:
        return _save(axes[0].figure, path, fmt, dpi)
    return axes
