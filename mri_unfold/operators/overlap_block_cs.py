"""Block CS on overlapping blocks (MADUN's deblocking for 99x99 fine-tuning and testing).

What the MADUN paper (Song, Chen & Zhang, ACM MM 2021, §4.1) states: "To alleviate blocking
artifacts, we firstly unfold the blocks of size 99x99 into overlapping blocks of size
33x33 while sampling process Φx and then fold the blocks of size 33x33 into larger blocks
while initialization Φ^T y.  We also unfold the whole image with this approach during
testing."  The paper gives no stride (and the released training script samples the 99x99
patches with a stride-33 convolution, i.e. without overlap), so the stride is an option here.

What :class:`OverlapBlockCS` does: ``B x B`` blocks are taken on a grid with step
``stride`` (``stride <= B``; ``stride < B`` makes them overlap), each block is vectorised
row-major and measured with the same Φ ``(M, B²)``:

* ``forward``  ``(N, 1, H, W)`` -> ``(N, M, nb_h, nb_w)``, ``nb = (side - B) / stride + 1``
  (strided block views ``Tensor.unfold``, then Φ);
* ``adjoint``  ``(N, M, nb_h, nb_w)`` -> ``(N, 1, H, W)``: ``Φ^T y_b`` of every block
  *added* at its position (overlap-add, ``torch.nn.functional.fold``) — the exact adjoint,
  so ``adjoint(forward(x))`` weights pixel ``p`` by the number of blocks covering it;
* ``linear_init`` (only when the block operator has a ``Qinit``): ``Qinit y_b`` per block,
  overlap-*averaged* (a linear estimate, not an adjoint).

``stride == B`` reproduces :class:`~mri_unfold.operators.GaussianBlockCS` exactly.  Image
sides must satisfy ``(side - B) % stride == 0``; pad first if needed.  Because blocks
overlap, the operator is not block-separable: ``block_size`` is ``None`` so networks
process whole images (the measuring block size is :attr:`measure_block`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import LinearOperator
from .block_cs import GaussianBlockCS
from .learned_block_cs import LearnedBlockCS
from .registry import OperatorExample, register_operator
from .shapes import ShapeError

__all__ = ["OverlapBlockCS"]


@register_operator("overlap_block_cs", examples=(
    OperatorExample("b8_s3", lambda: OverlapBlockCS(GaussianBlockCS(0.25, 8, seed=0), 3),
                    (1, 14, 17)),
    OperatorExample("b8_s8", lambda: OverlapBlockCS(GaussianBlockCS(0.25, 8, seed=1), 8),
                    (1, 16, 8)),
    OperatorExample("learned_b11_s5", lambda: OverlapBlockCS(
        LearnedBlockCS(0.25, block_size=11, seed=0), 5), (1, 21, 26))))
class OverlapBlockCS(LinearOperator):
    """Block CS measured on overlapping ``B x B`` blocks with a given stride.

    Args:
        phi: the per-block operator — a :class:`GaussianBlockCS` (or subclass such as
            ``LearnedBlockCS``, whose Φ then stays trainable and is shared), or an
            ``(M, B²)`` matrix (tensor / numpy array) wrapped with
            :meth:`GaussianBlockCS.from_matrix`.
        stride: grid step in pixels, ``1 <= stride <= B``.

    Shapes (dtype follows the input; real or complex):
        ``forward``: ``(N, 1, H, W)`` -> ``(N, M, nb_h, nb_w)`` with
        ``nb_h = (H - B) // stride + 1``; the measurement of the block whose top-left pixel
        is ``(r * stride, c * stride)`` is ``y[:, :, r, c]``.
        ``adjoint``: ``(N, M, nb_h, nb_w)`` -> ``(N, 1, (nb_h - 1) * stride + B,
        (nb_w - 1) * stride + B)``.

    Example:
        >>> import torch
        >>> from mri_unfold.operators import GaussianBlockCS
        >>> op = OverlapBlockCS(GaussianBlockCS(0.25, seed=0), stride=22)
        >>> op(torch.rand(2, 1, 99, 99)).shape
        torch.Size([2, 272, 4, 4])
    """

    complex_domain = False
    block_size = None
    domain_shape = (1, None, None)

    def __init__(self, phi, stride: int):
        super().__init__()
        if not isinstance(phi, GaussianBlockCS):
            phi = GaussianBlockCS.from_matrix(phi)
        self.block_op = phi
        b = phi.block_size
        if isinstance(stride, bool) or int(stride) != stride or not 1 <= int(stride) <= b:
            raise ValueError(f"stride must be an integer in [1, {b}] (the block size), "
                             f"got {stride!r}")
        self.stride = int(stride)

    # ------------------------------------------------------------------ properties
    @property
    def measure_block(self) -> int:
        """Side B of the measured blocks."""
        return self.block_op.block_size

    @property
    def phi(self) -> torch.Tensor:
        """The per-block matrix Φ ``(M, B²)`` (shared with :attr:`block_op`)."""
        return self.block_op.phi

    @property
    def num_measurements(self) -> int:
        return self.block_op.num_measurements

    @property
    def range_shape(self) -> tuple:
        return (self.num_measurements, None, None)

    def grid_shape(self, h: int, w: int) -> tuple[int, int]:
        """``(nb_h, nb_w)`` for an ``H x W`` image.

        Raises:
            ShapeError (a ValueError): a side smaller than B or not on the stride grid.
        """
        b, s = self.measure_block, self.stride
        if h < b or w < b or (h - b) % s or (w - b) % s:
            raise ShapeError(
                f"OverlapBlockCS: image size {(h, w)} does not fit {b}x{b} blocks with stride "
                f"{s}: each side must be {b} + k*{s} (e.g. {b}, {b + s}, {b + 2 * s}, ...)")
        return (h - b) // s + 1, (w - b) // s + 1

    def image_shape(self, nb_h: int, nb_w: int) -> tuple[int, int]:
        """``(H, W)`` covered by an ``nb_h x nb_w`` block grid."""
        b, s = self.measure_block, self.stride
        return (nb_h - 1) * s + b, (nb_w - 1) * s + b

    # ------------------------------------------------------------------ Φ, Φ^T
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` -> ``(N, M, nb_h, nb_w)``: ``y_b = Φ x_b`` for every block."""
        self.check_domain(x, "x", lambda: f"OverlapBlockCS expects images (N, 1, H, W), got "
                                          f"{tuple(x.shape)}")
        nb_h, nb_w = self.grid_shape(*x.shape[-2:])
        b = self.measure_block
        # (N, 1, nb_h, nb_w, B, B) view -> contiguous row-major block vectors
        v = x.unfold(2, b, self.stride).unfold(3, b, self.stride).reshape(
            x.shape[0], nb_h, nb_w, b * b)
        y = v @ self.phi.to(x.dtype).T  # (N, nb_h, nb_w, M)
        return y.permute(0, 3, 1, 2).contiguous()

    def _overlap_add(self, v: torch.Tensor) -> torch.Tensor:
        """``(N, nb_h, nb_w, B²)`` block vectors -> ``(N, 1, H, W)`` summed at their places."""
        n, nb_h, nb_w, bb = v.shape
        cols = v.reshape(n, nb_h * nb_w, bb).transpose(1, 2)
        return F.fold(cols, self.image_shape(nb_h, nb_w), self.measure_block, stride=self.stride)

    def _check_measurements(self, y: torch.Tensor) -> None:
        self.check_range(y, "y", lambda: f"OverlapBlockCS expects measurements "
                                         f"(N, {self.num_measurements}, nb_h, nb_w), got "
                                         f"{tuple(y.shape)}")

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``(N, M, nb_h, nb_w)`` -> ``(N, 1, H, W)``: overlap-add of ``Φ^T y_b``."""
        self._check_measurements(y)
        return self._overlap_add(y.permute(0, 2, 3, 1) @ self.phi.to(y.dtype))

    def linear_init(self, y: torch.Tensor) -> torch.Tensor:
        """Overlap-averaged ``Qinit y_b``; needs a ``Qinit`` on :attr:`block_op`.

        Returns ``(N, 1, H, W)``: every pixel is the mean of the block estimates covering it.
        """
        q = self.block_op.qinit
        if q is None:
            return super().linear_init(y)
        self._check_measurements(y)
        v = y.permute(0, 2, 3, 1) @ q.to(y.dtype).T
        summed = self._overlap_add(v)
        ones = torch.ones((1,) + v.shape[1:], dtype=summed.real.dtype, device=v.device)
        return summed / self._overlap_add(ones)

    def extra_repr(self) -> str:
        return (f"M={self.num_measurements}, measure_block={self.measure_block}, "
                f"stride={self.stride}")
