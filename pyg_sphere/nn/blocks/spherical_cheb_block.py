"""The DeepSphere building block: Chebyshev conv, batch norm, activation, pooling."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.nn.resolver import activation_resolver

from ..._validation import _got, check_choice
from ..conv import SphericalChebConv
from ..pool import SpherePool
from ..conv._cheb_kernel import cheb_filter
from ._fused import can_fuse, fused_bn_relu_max_pool
from ._fused_block import applies, fused_block
from ._layout import from_rows, pool_dense, rows

#: Activations accepted by name (any ``torch.nn.Module`` instance is accepted
#: too); :obj:`None` is the identity.
ACTIVATIONS = ('relu', 'leaky_relu', 'elu', 'gelu', 'silu', 'tanh', 'sigmoid', None)


def make_activation(activation: Any) -> Optional[torch.nn.Module]:
    """Validate ``activation`` (a name of :obj:`ACTIVATIONS` or a module)."""
    if isinstance(activation, torch.nn.Module):
        return activation
    if not isinstance(activation, str) and activation is not None:
        raise ValueError(f"Expected 'activation' to be one of {ACTIVATIONS} or a "
                         f"torch.nn.Module (got {_got(activation)})")
    check_choice('activation', activation, ACTIVATIONS)
    return None if activation is None else activation_resolver(activation)


def make_pool(pool: Any) -> Optional[SpherePool]:
    """``None``, a :class:`SpherePool`, or the keyword arguments of one."""
    if pool is None or isinstance(pool, SpherePool):
        return pool
    if isinstance(pool, Mapping):
        return SpherePool(**pool)
    raise ValueError(f"Expected 'pool' to be None, a SpherePool or a dict of SpherePool "
                     f"arguments (got {_got(pool)})")


def _hooked(module: torch.nn.Module) -> bool:
    """Whether calling ``module`` would run hooks (then it is called as a module)."""
    from torch.nn.modules import module as _module
    return bool(module._forward_hooks or module._forward_pre_hooks
                or _module._global_forward_hooks or _module._global_forward_pre_hooks)


class SphericalChebBlock(torch.nn.Module):
    r"""The building block of `DeepSphere <https://arxiv.org/abs/2012.15000>`_
    (`Perraudin et al. 2019 <https://arxiv.org/abs/1810.12186>`_): a Chebyshev
    graph convolution, batch normalization, a non-linearity and an optional
    pooling to the next coarser sampling,

    .. math::
        \mathbf{X}' = P\left(\sigma\left(\mathrm{BN}\left(
        \sum_{k=0}^{K-1} T_k(\tilde{\mathbf{L}})\, \mathbf{X}\,
        \mathbf{\Theta}^{(k)} + \mathbf{b}\right)\right)\right),
        \qquad
        \mathrm{BN}(\mathbf{h})_f = \gamma_f \frac{h_f - \mu_f}
        {\sqrt{\sigma_f^2 + \epsilon}} + \beta_f,

    where :math:`\mu_f, \sigma_f^2` are the mean and variance of channel
    :math:`f` over every pixel of every map in the batch (running estimates in
    eval mode), :math:`\sigma` is the activation and :math:`P` the pooling.
    The convolution is :class:`~pyg_sphere.nn.SphericalChebConv` (see it for
    :math:`T_k` and :math:`\tilde{L}`), the pooling a
    :class:`~pyg_sphere.nn.SpherePool`.

    The batch norm runs over the channel axis for both layouts: a dense batch
    of maps ``[B, n, F]`` (statistics over the :math:`B n` pixels) and PyG's
    node layout ``[N, F]`` (statistics over the :math:`N` nodes), so that a
    :class:`~torch_geometric.data.Batch` of ``B`` maps of one sampling gives the
    same result as the dense batch. For a dense batch every step after the conv
    works on the conv's memory, without transposing the maps; batch norm, ReLU
    and max pooling over contiguous clusters (HEALPix NESTED) run fused, with
    one pass over the full-resolution maps that writes pooled-size tensors
    only; on CPUs, for two maps or more, the conv joins them (its blocks of
    maps take their statistics, and their gradient is formed, while in cache;
    an eval forward never writes the full-resolution conv output), except when
    a hook is registered on the conv, which then runs as a module.

    Args:
        in_channels (int): Size of each input sample :math:`F_{in}`.
        out_channels (int): Size of each output sample :math:`F_{out}`.
        K (int): Chebyshev filter size :math:`K \geq 1`.
        normalization (str, optional): Normalization of the graph Laplacian,
            :obj:`None`, ``'sym'`` or ``'rw'``. (default: ``'sym'``)
        batch_norm (bool, optional): If :obj:`False`, no batch normalization.
            (default: :obj:`True`)
        activation (str or torch.nn.Module, optional): One of
            :obj:`ACTIVATIONS` or a module; :obj:`None` for none.
            (default: ``'relu'``)
        pool (SpherePool or dict, optional): Pooling applied last, or the
            keyword arguments of a :class:`~pyg_sphere.nn.SpherePool`
            (``dict(cluster=..., num_clusters=..., reduce='max')``).
            (default: :obj:`None`, no pooling)
        bias (bool, optional): If :obj:`False`, the conv learns no bias.
            (default: :obj:`True`)
        cached (bool, optional): Passed to the conv: build
            :math:`\tilde{L}` on the first call and reuse it.
            (default: :obj:`False`)

    Shapes:
        - **input:**
          node features :math:`(B, n, F_{in})` or :math:`(N, F_{in})`,
          edge indices :math:`(2, |\mathcal{E}|)`,
          edge weights :math:`(|\mathcal{E}|)` *(optional)*,
          batch vector :math:`(N)` *(optional, 2-D input)*,
          maximum :obj:`lambda` value :math:`()` or :math:`(|\mathcal{G}|)`
          *(optional)*
        - **output:** :math:`(B, n, F_{out})` or :math:`(N, F_{out})` without
          pooling; with pooling, what the :class:`~pyg_sphere.nn.SpherePool`
          returns: :math:`(B, c, F_{out})` or :math:`(B c, F_{out})`, followed
          by the argmax indices if it has ``return_indices=True``, and by the
          coarse batch vector :math:`(B c)` if ``batch`` was given with a 2-D
          input. A dense output is a view of node-major memory: use
          ``.reshape`` rather than ``.view`` on it.

    Example:
        >>> import torch
        >>> from pyg_sphere.samplings import healpix
        >>> from pyg_sphere.transforms import SpherePyramid
        >>> data = SpherePyramid(levels=1)(healpix(4))
        >>> block = SphericalChebBlock(3, 16, K=4, pool=dict(
        ...     cluster=data.cluster_1, num_clusters=data.num_nodes_1))
        >>> block(torch.randn(2, 192, 3), data.edge_index, data.edge_weight).shape
        torch.Size([2, 48, 16])
    """
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        K: int,
        normalization: Optional[str] = 'sym',
        batch_norm: bool = True,
        activation: Union[str, torch.nn.Module, None] = 'relu',
        pool: Union[SpherePool, Mapping, None] = None,
        bias: bool = True,
        cached: bool = False,
    ):
        super().__init__()
        if not isinstance(batch_norm, bool):
            raise ValueError(f"Expected 'batch_norm' to be a bool (got {_got(batch_norm)})")
        self.conv = SphericalChebConv(in_channels, out_channels, K, normalization=normalization,
                                      bias=bias, cached=cached)
        self.in_channels = self.conv.in_channels
        self.out_channels = self.conv.out_channels
        self.norm = torch.nn.BatchNorm1d(self.out_channels) if batch_norm else None
        self.act = make_activation(activation)
        self.pool = make_pool(pool)
        self.reset_parameters()

    @property
    def K(self) -> int:
        """Chebyshev filter size."""
        return self.conv.K

    def reset_parameters(self) -> None:
        r"""Reset the conv (and clear its cached :math:`\tilde{L}`), the batch
        norm (parameters and running statistics) and a learnable activation."""
        self.conv.reset_parameters()
        if self.norm is not None:
            self.norm.reset_parameters()
        if self.act is not None and hasattr(self.act, 'reset_parameters'):
            self.act.reset_parameters()

    def _norm_act(self, x: Tensor) -> Tensor:
        if self.norm is not None:
            x = self.norm(x)
        if self.act is not None:
            x = self.act(x)
        return x

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Optional[Tensor] = None,
        batch: Optional[Tensor] = None,
        lambda_max: Optional[Union[float, Tensor]] = None,
    ) -> Union[Tensor, Tuple[Tensor, ...]]:
        group = can_fuse(self.norm, self.act, self.pool) if x.dim() == 3 else None
        if group is not None and not _hooked(self.conv):
            lap, weight = self.conv.operands(x, edge_index, edge_weight, batch, lambda_max)
            if applies(x, lap, group):  # the whole block, blocks of maps in cache
                return fused_block(x, weight, self.conv.bias, lap, self.norm, group)
            # batch norm, ReLU, max pooling in one pass
            return fused_bn_relu_max_pool(cheb_filter(x, weight, self.conv.bias, lap), self.norm,
                                          group)
        out = self.conv(x, edge_index, edge_weight, batch, lambda_max)
        if out.dim() == 3:
            if group is not None:
                return fused_bn_relu_max_pool(out, self.norm, group)
            r, shape = rows(out)  # free: the conv's own memory
            out = from_rows(self._norm_act(r), shape)
            return out if self.pool is None else pool_dense(self.pool, out)
        out = self._norm_act(out)
        if self.pool is None:
            return out
        return self.pool(out) if batch is None else self.pool(out, batch)

    def __repr__(self) -> str:
        act = self.act.__class__.__name__ if self.act is not None else None
        return (f'{self.__class__.__name__}({self.in_channels}, {self.out_channels}, '
                f'K={self.K}, normalization={self.conv.normalization}, '
                f'batch_norm={self.norm is not None}, activation={act}, pool={self.pool})')
