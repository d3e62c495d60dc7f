"""A spherical U-Net for dense (per-pixel) tasks such as segmentation."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

from ..._validation import _got, check_choice, check_int
from ...samplings import icosahedral
from ..blocks import SphericalChebBlock
from ..blocks._layout import cat_channels, pool_dense, unpool_dense
from ..conv import SphericalChebConv
from .._threads import forward_threads
from ..pool import UNPOOL_MODES, SpherePool, SphereUnpool
from ._input import check_channels, dense_input
from ._pyramid import PyramidGraph, cache_laplacians, cluster, keep_laplacians, model_pyramid, \
    sampling_repr

#: Poolings of the encoder (:class:`~pyg_sphere.nn.SpherePool` reductions).
UNET_POOLS = ('max', 'mean', 'keep')


class SphericalUNet(torch.nn.Module):
    r"""The spherical U-Net of `Defferrard et al. (2020)
    <https://arxiv.org/abs/2012.15000>`_ for dense tasks (climate event
    segmentation): an encoder of Chebyshev convolutions and poolings, a
    decoder of unpoolings and convolutions, with skip connections that
    concatenate the encoder's maps at every resolution.

    ``channels`` lists the encoder's convolutions, :math:`c_1, \dots, c_N`;
    the first :math:`N - L` run at full resolution (level 0) and each of the
    :math:`L` = ``levels`` poolings is followed by one. Each is a
    :class:`~pyg_sphere.nn.SphericalChebBlock` (conv, batch norm, activation)
    except the last, the bottleneck, a plain conv as in the paper. Write
    :math:`a_l \to b_l` for the last encoder conv of level :math:`l` and
    :math:`E_l` for its output. The decoder mirrors the encoder from level
    :math:`L - 1` up to level 0:

    .. math::
        \mathbf{D}_l = g_l\left(\left[\, f_l\left(U_{l+1}(\mathbf{D}_{l+1})
        \right) \,\Vert\, \mathbf{E}_l \,\right]\right),
        \qquad \mathbf{D}_L = \mathbf{E}_L,

    with :math:`U_{l+1}` the unpooling from level :math:`l + 1` to :math:`l`,
    :math:`f_l` a block to :math:`a_l` channels, :math:`\Vert` the
    concatenation of channels and :math:`g_l` a block
    :math:`a_l + b_l \to a_l`. With ``finest_skip=False`` level 0 has no skip
    connection (:math:`\mathbf{D}_0 = f_0(U_1(\mathbf{D}_1))`), as in the
    paper's climate network. A last conv maps :math:`\mathbf{D}_0` to
    ``out_channels`` (logits per pixel, no softmax). Each level uses the graph
    of its resolution, every conv on level :math:`l` the rescaled Laplacian
    :math:`\tilde{L}_l = 2 L_l / (1.02\, \lambda_{\max}(L_l)) - I`.

    Geometry, inputs and compilation as in :class:`DeepSphere`: the pyramid
    is built once from the sampling and kept as non-persistent buffers, and
    the input is a dense batch ``[B, n, F]`` or PyG's node layout
    ``[B * n, F]`` (with its batch vector, or a ``Batch``).

    Args:
        data (torch_geometric.data.Data): A sampling, or a
            :class:`~pyg_sphere.transforms.SpherePyramid` output with at least
            ``levels`` levels.
        in_channels (int): Input features per pixel :math:`F_{in}`.
        channels (sequence of int): Output features of the encoder convs,
            at least two.
        out_channels (int): Outputs per pixel (e.g. classes).
        K (int): Chebyshev filter size of every conv.
        levels (int, optional): Number of poolings :math:`L`, at most
            ``len(channels) - 1``. (default: ``max(len(channels) - 2, 1)``: two
            convs at full resolution, as in the paper)
        pool (str, optional): One of :obj:`UNET_POOLS`. (default: ``'max'``)
        unpool (str, optional): One of
            :obj:`~pyg_sphere.nn.pool.UNPOOL_MODES`: ``'repeat'`` copies each
            coarse pixel to its children, ``'max_indices'`` puts it back where
            the maximum came from (needs ``pool='max'`` and
            ``channels[-1] == channels[-2]``). (default: ``'repeat'``)
        finest_skip (bool, optional): Skip connection at full resolution.
            (default: :obj:`True`)
        batch_norm (bool, optional): Batch norm in every block.
            (default: :obj:`True`)
        activation (str or torch.nn.Module, optional): Activation of every
            block. (default: ``'relu'``)
        normalization (str, optional): Laplacian normalization.
            (default: ``'sym'``)
        k (int, optional): Neighbours of the kNN graphs. (default: :obj:`8`)
        factor (int, optional): Linear coarsening factor between levels.
            (default: :obj:`2`)
        kernel_width (float, optional): Kernel width :math:`t` of level 0.
            (default: :obj:`None`)
        bias (bool, optional): Biases in the convs. (default: :obj:`True`)

    Shapes:
        - **input:** maps :math:`(B, n, F_{in})`, or :math:`(B n, F_{in})`
          with an optional batch vector :math:`(B n)`, or a ``Data`` /
          ``Batch`` holding them
        - **output:** :math:`(B, n, F_{out})`, or :math:`(B n, F_{out})` for
          PyG's layout

    Example:
        >>> import torch
        >>> from pyg_sphere.samplings import icosahedral
        >>> model = SphericalUNet(icosahedral(2), 4, channels=(8, 16, 32), out_channels=3, K=3)
        >>> model(torch.randn(2, 162, 4)).shape
        torch.Size([2, 162, 3])
    """
    def __init__(
        self,
        data: Data,
        in_channels: int,
        channels: Sequence[int],
        out_channels: int,
        K: int,
        levels: Optional[int] = None,
        pool: str = 'max',
        unpool: str = 'repeat',
        finest_skip: bool = True,
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
        self.channels = check_channels(channels, minimum_length=2)
        N = len(self.channels)
        check_int('K', K, minimum=1)
        if levels is None:
            levels = max(N - 2, 1)
        self.levels = L = check_int('levels', levels, minimum=1)
        if L > N - 1:
            raise ValueError(f"Expected 'levels' to be at most len(channels) - 1 = {N - 1}, "
                             f"one conv per coarser level and at least one at full "
                             f"resolution (got {L})")
        self.pool_mode = check_choice('pool', pool, UNET_POOLS)
        self.unpool_mode = check_choice('unpool', unpool, UNPOOL_MODES)
        if unpool == 'max_indices':
            if pool != 'max':
                raise ValueError(f"Expected 'pool' to be 'max' with unpool='max_indices' "
                                 f"(got {pool!r})")
            if self.channels[-1] != self.channels[-2]:
                raise ValueError(f"Expected 'channels' to end with two equal widths with "
                                 f"'unpool'='max_indices', so that the bottleneck's maps "
                                 f"match the pooling indices (got {list(self.channels)})")
        if not isinstance(finest_skip, bool):
            raise ValueError(f"Expected 'finest_skip' to be a bool (got {_got(finest_skip)})")
        self.finest_skip = finest_skip

        pyramid = model_pyramid(data, L, k, factor, kernel_width, normalization,
                                f'SphericalUNet(levels={L})')
        self.graph = PyramidGraph(pyramid, L)
        self.num_nodes = self.graph.num_nodes[0]
        self._sampling = sampling_repr(pyramid)

        def block(cin: int, cout: int) -> SphericalChebBlock:
            return SphericalChebBlock(cin, cout, K, normalization, batch_norm, activation,
                                      bias=bias, cached=True)

        # Encoder: level 0 gets the first N - L convs, every other level one.
        widths = (self.in_channels, ) + self.channels
        per_level = [N - L] + [1] * L
        self.encoder = torch.nn.ModuleList()
        a: List[int] = []  # input width of the last conv of each level
        b: List[int] = []  # output width of each level
        j = 0
        for lvl, count in enumerate(per_level):
            convs = torch.nn.ModuleList()
            for _ in range(count):
                cin, cout = widths[j], widths[j + 1]
                last = j == N - 1
                convs.append(SphericalChebConv(cin, cout, K, normalization, bias=bias,
                                               cached=True) if last else block(cin, cout))
                j += 1
            a.append(cin)
            b.append(cout)
            self.encoder.append(convs)
        return_indices = unpool == 'max_indices'
        self.pools = torch.nn.ModuleList([
            SpherePool(*cluster(pyramid, lvl + 1), reduce=pool, return_indices=return_indices)
            for lvl in range(L)
        ])
        self.unpools = torch.nn.ModuleList([
            SphereUnpool(*cluster(pyramid, lvl + 1), mode=unpool) for lvl in range(L)
        ])
        # Decoder, from level L - 1 up to level 0 (up[i], merge[i] for level L - 1 - i).
        self.up = torch.nn.ModuleList()
        self.merge = torch.nn.ModuleList()
        width = b[L]
        for lvl in range(L - 1, -1, -1):
            self.up.append(block(width, a[lvl]))
            if lvl > 0 or finest_skip:
                self.merge.append(block(a[lvl] + b[lvl], a[lvl]))
            width = a[lvl]
        self.out_conv = SphericalChebConv(width, self.out_channels, K, normalization,
                                          bias=bias, cached=True)
        self.reset_parameters()
        cache_laplacians(self.graph, self._conv_levels())

    def _conv_levels(self) -> List[Tuple[SphericalChebConv, int]]:
        """Every conv and the pyramid level of its graph."""
        convs = []
        for lvl, level_convs in enumerate(self.encoder):
            convs += [(getattr(c, 'conv', c), lvl) for c in level_convs]
        merge = iter(self.merge)
        for i, lvl in enumerate(range(self.levels - 1, -1, -1)):
            convs.append((self.up[i].conv, lvl))
            if lvl > 0 or self.finest_skip:
                convs.append((next(merge).conv, lvl))
        return convs + [(self.out_conv, 0)]

    @property
    def K(self) -> int:
        """Chebyshev filter size of the convs."""
        return self.out_conv.K

    def reset_parameters(self) -> None:
        """Reset every conv and block (the graphs and their cached Laplacians stay)."""
        with keep_laplacians(self._conv_levels()):
            self._reset_parameters()

    def _reset_parameters(self) -> None:
        for convs in self.encoder:
            for conv in convs:
                conv.reset_parameters()
        for module in list(self.up) + list(self.merge):
            module.reset_parameters()
        self.out_conv.reset_parameters()

    def num_parameters(self) -> int:
        """Number of learnable scalars."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: Union[Tensor, Data], batch: Optional[Tensor] = None) -> Tensor:
        """Per-pixel outputs for maps ``x`` [B, n, F] (returns [B, n, out]) or
        [B * n, F] (returns [B * n, out]), or a ``Data`` / ``Batch``."""
        x, flat = dense_input(x, batch, self.num_nodes, self.in_channels)
        with forward_threads(x):  # on CPU: PyTorch's small ops on one thread
            h = self._dense_forward(x)
            if flat:
                return h.reshape(x.size(0) * self.num_nodes, self.out_channels)
            return h.contiguous()

    def _dense_forward(self, x: Tensor) -> Tensor:
        L = self.levels
        skips: List[Tensor] = []
        indices: List[Tensor] = []
        h = x
        for lvl, convs in enumerate(self.encoder):
            if lvl > 0:
                out = pool_dense(self.pools[lvl - 1], h)
                if isinstance(out, tuple):
                    h = out[0]
                    indices.append(out[1])
                else:
                    h = out
            edge_index, edge_weight, lam = self.graph.level(lvl)
            for conv in convs:
                h = conv(h, edge_index, edge_weight, lambda_max=lam)
            skips.append(h)
        merge = iter(self.merge)
        for i, lvl in enumerate(range(L - 1, -1, -1)):
            idx = indices[lvl] if self.unpool_mode == 'max_indices' else None
            h = unpool_dense(self.unpools[lvl], h, idx)
            edge_index, edge_weight, lam = self.graph.level(lvl)
            h = self.up[i](h, edge_index, edge_weight, lambda_max=lam)
            if lvl > 0 or self.finest_skip:
                h = next(merge)(cat_channels(h, skips[lvl]), edge_index, edge_weight,
                                lambda_max=lam)
        edge_index, edge_weight, lam = self.graph.level(0)
        return self.out_conv(h, edge_index, edge_weight, lambda_max=lam)

    # ------------------------------------------------------------------ presets

    @classmethod
    def climate(cls, subdivisions: int = 5, data: Optional[Data] = None,
                **kwargs: Any) -> 'SphericalUNet':
        r"""The climate event segmentation U-Net of `Defferrard et al. (2020)
        <https://arxiv.org/abs/2012.15000>`_ (appendix; the code of
        ``deepsphere-pytorch``): icosahedral grid of level 5 (10,242
        pixels), 16 input channels, 3 classes (background, tropical cyclones,
        atmospheric rivers), encoder convs of 32, 64 (level 5), 128, 256, 512,
        512 and 512 channels (levels 4 to 0) with :math:`K = 4`, pooling that
        keeps the coarse vertices, decoder without skip connection at full
        resolution.

        Difference: the paper's unpooling pads the new vertices with ones;
        here each new vertex repeats its nearest coarse vertex
        (``unpool='repeat'``). ``kwargs`` override any argument.
        """
        if data is None:
            data = icosahedral(check_int('subdivisions', subdivisions, minimum=0))
        args = dict(in_channels=16, channels=(32, 64, 128, 256, 512, 512, 512),
                    out_channels=3, K=4, levels=5, pool='keep', unpool='repeat',
                    finest_skip=False)
        args.update(kwargs)
        return cls(data, **args)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, {self.out_channels}, '
                f'channels={list(self.channels)}, K={self.K}, levels={self.levels}, '
                f'pool={self.pool_mode}, unpool={self.unpool_mode}, '
                f'sampling={self._sampling})')
