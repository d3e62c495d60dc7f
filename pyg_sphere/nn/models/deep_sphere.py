"""DeepSphere: a graph-based spherical CNN for classification and regression of maps."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

from ..._validation import check_choice, check_int
from ...samplings import healpix
from ..blocks import SphericalChebBlock
from ..conv import SphericalChebConv
from .._threads import forward_threads
from ..pool import SpherePool
from ._input import check_channels, dense_input
from ._pyramid import PyramidGraph, cache_laplacians, cluster, keep_laplacians, model_pyramid, \
    sampling_repr

#: Poolings between resolutions (:class:`~pyg_sphere.nn.SpherePool`
#: reductions), or :obj:`None` for a single resolution.
POOLS = ('max', 'mean', 'keep', None)

#: Readouts: global average or maximum over the pixels (rotation invariant,
#: the "FCN" variant), or flatten + linear (the "CNN" variant, not invariant).
READOUTS = ('mean', 'max', 'dense')

#: Output heads: a linear layer after the readout, or a last graph convolution
#: to ``out_channels`` before a global readout.
HEADS = ('linear', 'conv')


class DeepSphere(torch.nn.Module):
    r"""The DeepSphere classifier / regressor of `Perraudin et al. (2019)
    <https://arxiv.org/abs/1810.12186>`_ and `Defferrard et al. (2020)
    <https://arxiv.org/abs/2012.15000>`_: Chebyshev graph convolutions on a
    sampled sphere, with pooling between resolutions and a global readout.

    Block :math:`l = 0, \dots, L - 1` (``L = len(channels)``) is a
    :class:`~pyg_sphere.nn.SphericalChebBlock` on the graph of level :math:`l`
    of the sampling's pyramid,

    .. math::
        \mathbf{X}^{(l+1)} = P_{l+1}\left(\mathrm{ReLU}\left(\mathrm{BN}\left(
        \sum_{k=0}^{K-1} T_k(\tilde{\mathbf{L}}_l)\, \mathbf{X}^{(l)}\,
        \mathbf{\Theta}_l^{(k)} + \mathbf{b}_l\right)\right)\right),
        \qquad \tilde{\mathbf{L}}_l = \frac{2 \mathbf{L}_l}
        {1.02\, \lambda_{\max}(\mathbf{L}_l)} - \mathbf{I},

    where :math:`P_{l+1}` pools level :math:`l` into level :math:`l + 1`
    (about ``factor ** 2`` pixels into one). The output is then, for
    ``head='linear'``,

    .. math::
        \mathbf{y} = \mathbf{W}\, \rho\left(\mathbf{X}^{(L)}\right) + \mathbf{c},
        \qquad \rho(\mathbf{X}) = \frac{1}{n_L} \sum_{i=1}^{n_L} \mathbf{x}_i
        \ \text{(mean)}, \quad \max_i \mathbf{x}_i \ \text{(max)}, \quad
        \mathrm{vec}(\mathbf{X}) \ \text{(dense)},

    and for ``head='conv'`` :math:`\mathbf{y} = \rho\left(\sum_k
    T_k(\tilde{\mathbf{L}}_L)\, \mathbf{X}^{(L)} \mathbf{\Theta}^{(k)} +
    \mathbf{b}\right)` (a last graph convolution to ``out_channels``, then
    the global readout). The global mean and max are invariant to any
    permutation of the pixels of the last level, so the whole network is
    invariant to the symmetries of the grid that map its graphs onto
    themselves, and approximately to rotations (the "FCN" variant); the
    ``'dense'`` readout is not (the "CNN" variant, which did much worse on
    rotated data). The output is the logits (no softmax).

    The pyramid (``SpherePyramid(levels=L, k, factor, kernel_width,
    normalization)``) is built once, here, from the sampling; its graphs are
    kept as non-persistent buffers (they move with ``.to()`` but stay out of
    the ``state_dict``: build the model from the same sampling to load one),
    and every conv's rescaled Laplacian is built here too (in the default
    dtype; it follows ``.to()``). The forward pass then makes no host
    synchronisation, its first call is no slower than the next ones, and it
    compiles with ``torch.compile(fullgraph=True)`` from a cold start.

    Inputs: a dense batch ``[B, n, F]`` of maps of the sampling (pixel
    :math:`i` of every map at node :math:`i` of the sampling, e.g. NESTED
    order for HEALPix), or PyG's node layout ``[B * n, F]`` of a
    :class:`~torch_geometric.data.Batch` of ``B`` such maps (with its batch
    vector, or the ``Batch`` itself). The maps share the stored graphs
    (tiled, i.e. the block-diagonal graph of the ``Batch``); a ``Batch``'s own
    graph attributes are not read.

    Args:
        data (torch_geometric.data.Data): A sampling made by
            :mod:`pyg_sphere.samplings` (the pyramid is built from it), or the
            output of :class:`~pyg_sphere.transforms.SpherePyramid` with at
            least ``len(channels)`` levels (used as it is; its ``lambda_max``
            must be for ``normalization``).
        in_channels (int): Input features per pixel :math:`F_{in}`.
        channels (sequence of int): Output features of each block.
        out_channels (int): Outputs (classes or regression targets).
        K (int): Chebyshev filter size :math:`K \geq 1` of every conv.
        pool (str, optional): One of :obj:`POOLS`: the
            :class:`~pyg_sphere.nn.SpherePool` reduction after every block, or
            :obj:`None` for no pooling (every block at full resolution).
            (default: ``'max'``)
        readout (str, optional): One of :obj:`READOUTS`. (default: ``'mean'``)
        head (str, optional): One of :obj:`HEADS`; ``'conv'`` needs a global
            readout. (default: ``'linear'``)
        batch_norm (bool, optional): Batch norm in every block.
            (default: :obj:`True`)
        activation (str or torch.nn.Module, optional): Activation of every
            block (see :class:`~pyg_sphere.nn.SphericalChebBlock`).
            (default: ``'relu'``)
        normalization (str, optional): Laplacian normalization, :obj:`None`,
            ``'sym'`` or ``'rw'``. (default: ``'sym'``)
        k (int, optional): Neighbours of the kNN graphs. (default: :obj:`8`)
        factor (int, optional): Linear coarsening factor between levels
            (``2``: pooling by 4). (default: :obj:`2`)
        kernel_width (float, optional): Kernel width :math:`t` of level 0 (see
            :class:`~pyg_sphere.transforms.SpherePyramid`).
            (default: :obj:`None`, the sampling's default)
        bias (bool, optional): Biases in the convs. (default: :obj:`True`)

    Shapes:
        - **input:** maps :math:`(B, n, F_{in})`, or :math:`(B n, F_{in})`
          with an optional batch vector :math:`(B n)`, or a ``Data`` /
          ``Batch`` holding them
        - **output:** :math:`(B, F_{out})`

    Example:
        >>> import torch
        >>> from pyg_sphere.samplings import healpix
        >>> model = DeepSphere(healpix(4), 2, channels=(8, 16), out_channels=3, K=3)
        >>> model(torch.randn(5, 192, 2)).shape
        torch.Size([5, 3])
        >>> DeepSphere.shrec17().num_parameters()  # the paper's 190 k
        190087
    """
    def __init__(
        self,
        data: Data,
        in_channels: int,
        channels: Sequence[int],
        out_channels: int,
        K: int,
        pool: Optional[str] = 'max',
        readout: str = 'mean',
        head: str = 'linear',
        batch_norm: bool = True,
        activation: Union[str, torch.nn.Module, None] = 'relu',
        normalization: Optional[str] = 'sym',
        k: int = 8,
        factor: int = 2,
        kernel_width: Optional[float] = None,
        bias: bool = True,
    ):
        super().__init__()
        self.in_channels = check_int('in_channels', in_channels, minimum=1)
        self.out_channels = check_int('out_channels', out_channels, minimum=1)
        self.channels = check_channels(channels)
        check_int('K', K, minimum=1)
        self.pool_mode = check_choice('pool', pool, POOLS)
        self.readout_mode = check_choice('readout', readout, READOUTS)
        self.head_mode = check_choice('head', head, HEADS)
        if head == 'conv' and readout == 'dense':
            raise ValueError("Expected 'head' to be 'linear' with readout='dense' (got "
                             "'conv', which ends with a global readout: 'mean' or 'max')")
        self.levels = len(self.channels) if pool is not None else 0
        pyramid = model_pyramid(data, self.levels, k, factor, kernel_width, normalization,
                                f'DeepSphere(channels={list(self.channels)})')
        self.graph = PyramidGraph(pyramid, self.levels)
        self.num_nodes = self.graph.num_nodes[0]
        self._sampling = sampling_repr(pyramid)

        self.blocks = torch.nn.ModuleList()
        width = self.in_channels
        for lvl, out in enumerate(self.channels):
            p = None
            if pool is not None:
                p = SpherePool(*cluster(pyramid, lvl + 1), reduce=pool)
            self.blocks.append(SphericalChebBlock(width, out, K, normalization, batch_norm,
                                                  activation, pool=p, bias=bias, cached=True))
            width = out
        if head == 'conv':
            self.head = SphericalChebConv(width, self.out_channels, K, normalization, bias=bias,
                                          cached=True)
            self.lin = None
        else:
            self.head = None
            n_last = self.graph.num_nodes[-1] if readout == 'dense' else 1
            self.lin = torch.nn.Linear(width * n_last, self.out_channels)
        self.reset_parameters()
        cache_laplacians(self.graph, self._conv_levels())

    def _conv_levels(self) -> List[Tuple[SphericalChebConv, int]]:
        """Every conv and the pyramid level of its graph."""
        convs = [(block.conv, lvl if self.levels else 0) for lvl, block in enumerate(self.blocks)]
        if self.head is not None:
            convs.append((self.head, self.levels))
        return convs

    @property
    def K(self) -> int:
        """Chebyshev filter size of the convs."""
        return self.blocks[0].K

    def reset_parameters(self) -> None:
        """Reset every block, the head and the linear layer (the graphs and their
        cached Laplacians stay)."""
        with keep_laplacians(self._conv_levels()):
            self._reset_parameters()

    def _reset_parameters(self) -> None:
        for block in self.blocks:
            block.reset_parameters()
        if self.head is not None:
            self.head.reset_parameters()
        if self.lin is not None:
            self.lin.reset_parameters()

    def num_parameters(self) -> int:
        """Number of learnable scalars."""
        return sum(p.numel() for p in self.parameters())

    def features(self, x: Tensor) -> Tensor:
        """The last level's feature maps ``[B, n_L, F]`` of dense maps ``x`` [B, n, F_in]
        (the output of the conv head for ``head='conv'``)."""
        for i, block in enumerate(self.blocks):
            edge_index, edge_weight, lam = self.graph.level(i if self.levels else 0)
            x = block(x, edge_index, edge_weight, lambda_max=lam)
        if self.head is not None:
            edge_index, edge_weight, lam = self.graph.level(self.levels)
            x = self.head(x, edge_index, edge_weight, lambda_max=lam)
        return x

    def readout(self, x: Tensor) -> Tensor:
        r"""The readout and linear layer on the last level's maps ``x`` [B, n_L, F].

        For ``'mean'`` and ``'max'`` the result is invariant to any
        permutation of the :math:`n_L` pixels.
        """
        if self.readout_mode == 'mean':
            h = x.mean(dim=1)
        elif self.readout_mode == 'max':
            h = x.amax(dim=1)
        else:
            h = x.reshape(x.size(0), -1)
        return h if self.lin is None else self.lin(h)

    def forward(self, x: Union[Tensor, Data], batch: Optional[Tensor] = None) -> Tensor:
        """Outputs ``[B, out_channels]`` for maps ``x`` [B, n, F] or [B * n, F]
        (optional batch vector [B * n]), or a ``Data`` / ``Batch`` holding them."""
        x, _ = dense_input(x, batch, self.num_nodes, self.in_channels)
        with forward_threads(x):  # on CPU: PyTorch's small ops on one thread
            return self.readout(self.features(x))

    # ------------------------------------------------------------------ presets

    @classmethod
    def shrec17(cls, nside: int = 32, data: Optional[Data] = None, **kwargs: Any) -> 'DeepSphere':
        r"""The SHREC'17 3D shape classifier of `Defferrard et al. (2020)
        <https://arxiv.org/abs/2012.15000>`_ (appendix): HEALPix
        :math:`n_{side} = 32` (12,288 pixels, NESTED), 6 input channels,
        blocks of 16, 32, 64, 128 and 256 channels with :math:`K = 4`, batch
        norm, ReLU and max pooling by 4 after each (down to
        :math:`n_{side} = 1`), global average pooling and a linear layer to
        the 55 classes: 190,087 parameters (the paper's "190 k").

        ``data`` replaces the sampling (e.g. ``equiangular(128)``, the paper's
        other variant); ``kwargs`` override any argument of :class:`DeepSphere`.
        """
        if data is None:
            data = healpix(check_int('nside', nside, minimum=1))
        args = dict(in_channels=6, channels=(16, 32, 64, 128, 256), out_channels=55, K=4,
                    pool='max', readout='mean', head='linear')
        args.update(kwargs)
        return cls(data, **args)

    @classmethod
    def cosmology(cls, nside: int = 1024, order: Optional[int] = 2,
                  data: Optional[Data] = None, **kwargs: Any) -> 'DeepSphere':
        r"""The cosmological model classifier of `Perraudin et al. (2019)
        <https://arxiv.org/abs/1810.12186>`_ ("FCN", as in the appendix of
        Defferrard et al. 2020): one input channel (convergence map), blocks of
        16, 32, 64, 64 and 64 channels with :math:`K = 5`, batch norm, ReLU and
        max pooling by 4 after each, a last graph convolution to the 2 classes
        and global average pooling.

        The maps are HEALPix patches (NESTED): with ``order`` :math:`o`, the
        first of the :math:`12 o^2` base-pixel patches, of
        :math:`(n_{side} / o)^2` pixels (the paper: :math:`n_{side} = 1024`,
        :math:`o = 2`); ``order=None`` takes the full sphere. ``data``
        replaces the sampling; ``kwargs`` override any argument of
        :class:`DeepSphere` (``readout='dense', head='linear'`` gives the
        "CNN" variant).
        """
        if data is None:
            nside = check_int('nside', nside, minimum=1)
            if order is None:
                data = healpix(nside)
            else:
                order = check_int('order', order, minimum=1)
                if nside % order:
                    raise ValueError(f"Expected 'order' to divide 'nside' = {nside}, so "
                                     f"that a patch has (nside / order)**2 pixels (got "
                                     f"order={order})")
                data = healpix(nside, indexes=torch.arange((nside // order) ** 2))
        args = dict(in_channels=1, channels=(16, 32, 64, 64, 64), out_channels=2, K=5,
                    pool='max', readout='mean', head='conv')
        args.update(kwargs)
        return cls(data, **args)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, {self.out_channels}, '
                f'channels={list(self.channels)}, K={self.K}, pool={self.pool_mode}, '
                f'readout={self.readout_mode}, head={self.head_mode}, '
                f'sampling={self._sampling})')
