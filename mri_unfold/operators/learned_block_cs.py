"""Block CS with a sampling matrix Φ learned jointly with the network (MADUN Table 4).

MADUN §4.4.2 "mimics the sampling process y = Φx using a convolution layer" whose weights
are trained together with the reconstruction network, and obtains the initialisation from
``Φ^T y``.  :class:`LearnedBlockCS` is :class:`~mri_unfold.operators.GaussianBlockCS` with Φ
registered as an :class:`torch.nn.Parameter` instead of a buffer, so

* ``model.parameters()`` / an optimiser over the operator's parameters update Φ;
* ``state_dict()`` stores ``phi`` (checkpoints keep the learned matrix);
* ``adjoint`` always uses the current Φ (``Φ^T y`` per block) — differentiable in Φ.

A fixed ``Qinit`` would not follow Φ during training, so :meth:`linear_init` is available
only when a ``Qinit`` is attached explicitly (``qinit=`` / :meth:`set_qinit`); networks
should use ``init="adjoint"`` with this operator.
"""
from __future__ import annotations

import torch
from torch import nn

from .block_cs import GaussianBlockCS
from .registry import OperatorExample, register_operator

__all__ = ["LearnedBlockCS"]


@register_operator("learned_block_cs", examples=(
    OperatorExample("b11_r25", lambda: LearnedBlockCS(0.25, block_size=11, seed=0), (1, 22, 33)),
    OperatorExample("b33_r04", lambda: LearnedBlockCS(0.04, seed=3), (1, 33, 33))))
class LearnedBlockCS(GaussianBlockCS):
    """Block CS whose ``(M, B²)`` matrix Φ is a trainable parameter.

    Args:
        ratio: sampling ratio (M from the papers' table for B = 33, see
            :func:`~mri_unfold.operators.measurements_for_ratio`).
        block_size: B.
        seed: seed of the Gaussian orthonormal initialisation
            (:func:`~mri_unfold.operators.gaussian_orthonormal_matrix`, private generator).
        qinit: optional fixed ``(B², M)`` linear initialiser (buffer, not trained).

    Shapes: as :class:`GaussianBlockCS` — ``forward`` ``(N, 1, H, W)`` -> ``(N, M, H/B, W/B)``,
    ``adjoint`` the reverse, H and W multiples of B.

    Parameters: ``phi`` ``(M, B²)`` float32, ``requires_grad=True``.

    Example:
        >>> op = LearnedBlockCS(0.25, seed=0)
        >>> [name for name, _ in op.named_parameters()]
        ['phi']
    """

    def __init__(self, ratio: float = 0.25, block_size: int = 33, seed: int = 0, *,
                 _phi: torch.Tensor | None = None, qinit=None):
        super().__init__(ratio, block_size, seed, _phi=_phi, qinit=qinit)
        phi = self.phi.detach().clone()
        del self.phi  # drop the buffer registered by GaussianBlockCS
        self.phi = nn.Parameter(phi)

    def orthonormality_error(self) -> float:
        """``max |Φ Φ^T - I|`` of the current Φ (0 for the orthonormal initialisation)."""
        with torch.no_grad():
            phi = self.phi.double()
            eye = torch.eye(phi.shape[0], dtype=phi.dtype, device=phi.device)
            return float((phi @ phi.T - eye).abs().max())

    def extra_repr(self) -> str:
        return super().extra_repr() + ", learned=True"
