"""Confusion matrices and training curves (pyg_sphere.plotting.diagnostics),
into given axes or saved to files."""
import os
import sys

import numpy as np
import pytest
import torch

pytest.importorskip('matplotlib')

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import imread  # noqa: E402

from pyg_sphere.plotting import CURVE_PANELS, plot_confusion, plot_training_curves  # noqa: E402


def test_plot_confusion_and_curves_write_png(tmp_path):
    cm = np.array([[5, 1], [2, 7]])
    assert imread(plot_confusion(cm, ['a', 'b'], tmp_path / 'cm.png')).shape[1] > 0
    rows = [{'epoch': i, 'train_loss': 1.0 / (i + 1), 'val_loss': 1.1 / (i + 1)}
            for i in range(3)]
    assert imread(plot_training_curves(rows, str(tmp_path / 'curves.png'))).ndim == 3
    assert sorted(os.listdir(tmp_path)) == ['cm.png', 'curves.png']


def test_plot_confusion_into_axes():
    ax = Figure().add_subplot()
    cm = torch.tensor([[3, 0, 1], [0, 4, 0], [2, 0, 5]])
    assert plot_confusion(cm, ['a', 'b', 'c'], ax, title='test') is ax
    assert [t.get_text() for t in ax.texts] == [str(v) for v in cm.flatten().tolist()]
    assert [t.get_text() for t in ax.get_yticklabels()] == ['a', 'b', 'c']
    assert ax.get_title() == 'test'
    ax = Figure().add_subplot()
    plot_confusion(cm, ['a', 'b', 'c'], ax, normalize=True)
    assert [t.get_text() for t in ax.texts][:3] == ['0.75', '0.00', '0.25']


def test_plot_training_curves_plots_what_is_present():
    rows = [{'epoch': e, 'train_loss': 2.0 - e, 'val_loss': 2.5 - e,
             'train_accuracy': 0.5 + e / 10, 'val_accuracy': 0.4 + e / 10,
             'val_score': None if e % 2 else 0.1 * e} for e in range(4)]
    fig = Figure()
    axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
    assert plot_training_curves(rows, axes) == axes
    assert [[line.get_label() for line in ax.lines] for ax in axes] == [
        ['train loss', 'val loss'], ['train accuracy', 'val accuracy'], ['val score']]
    assert axes[2].lines[0].get_xdata().tolist() == [0.0, 2.0]  # None skipped
    assert axes[2].lines[0].get_ydata().tolist() == [0.0, 0.2]
    assert [ax.get_ylabel() for ax in axes] == [label for label, _ in CURVE_PANELS]
    # only losses: one panel; a single Axes with several panels gets a twin axis
    only_loss = [{'epoch': r['epoch'], 'val_loss': r['val_loss']} for r in rows]
    ax = Figure().add_subplot()
    assert plot_training_curves(only_loss, ax) == [ax]
    assert ax.lines[0].get_ydata().tolist() == [2.5, 1.5, 0.5, -0.5]
    ax = Figure().add_subplot()
    left, right = plot_training_curves(rows, ax)
    assert left is ax and len(left.lines) == 2 and len(right.lines) == 3
    assert right.get_ylabel() == 'accuracy / score'


def test_plot_confusion_and_curves_errors(tmp_path):
    with pytest.raises(ValueError, match=r"Expected 'confusion' to be a square matrix \[C, C\] "
                                         r"\(got shape \(2, 3\)\)"):
        plot_confusion(np.zeros((2, 3)), ['a', 'b'], tmp_path / 'c.png')
    with pytest.raises(ValueError, match=r"Expected 'confusion' to hold finite non-negative"):
        plot_confusion(-np.eye(2), ['a', 'b'], tmp_path / 'c.png')
    with pytest.raises(ValueError, match=r"Expected 'class_names' to hold 2 names, one per "
                                         r"class \(got 3\)"):
        plot_confusion(np.eye(2), ['a', 'b', 'c'], tmp_path / 'c.png')
    with pytest.raises(ValueError, match=r"Expected 'path_or_ax' to be a file path or "
                                         r"Matplotlib Axes"):
        plot_confusion(np.eye(2), ['a', 'b'], 5)
    rows = [{'epoch': 0, 'train_loss': 1.0, 'train_accuracy': 0.5}]
    with pytest.raises(ValueError, match=r"Expected 'rows' to be a non-empty sequence"):
        plot_training_curves([], tmp_path / 'c.png')
    with pytest.raises(ValueError, match=r"Expected every row to be a dict with an 'epoch' "
                                         r"key .* at rows\[0\]"):
        plot_training_curves([{'loss': 1.0}], tmp_path / 'c.png')
    with pytest.raises(ValueError, match=r"Expected the rows to hold at least one of "
                                         r"\['train_loss'.*\(got keys \['epoch', 'lr'\]\)"):
        plot_training_curves([{'epoch': 0, 'lr': 0.1}], tmp_path / 'c.png')
    with pytest.raises(ValueError, match=r"Expected rows\[...\]\['val_loss'\] to be a number "
                                         r"or None \(got 'x' at epoch 0\)"):
        plot_training_curves([{'epoch': 0, 'val_loss': 'x'}], tmp_path / 'c.png')
    fig = Figure()
    with pytest.raises(ValueError, match=r"Expected 'path_or_ax' to hold 2 Axes, one per "
                                         r"panel \('loss', 'accuracy'\) \(got 3\)"):
        plot_training_curves(rows, [fig.add_subplot(1, 3, i + 1) for i in range(3)])
    with pytest.raises(ValueError, match=r"Expected 'path_or_ax' to be a file path, "
                                         r"Matplotlib Axes or a sequence of Axes"):
        plot_training_curves(rows, None)
    assert os.listdir(tmp_path) == []


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, 'matplotlib', None)
    with pytest.raises(ImportError, match=r"pip install pyg-sphere\[plot\]"):
        plot_training_curves([{'epoch': 0, 'val_loss': 1.0}], 'x.png')
    with pytest.raises(ImportError, match=r"pip install pyg-sphere\[plot\]"):
        plot_confusion(np.eye(2), ['a', 'b'], 'x.png')
