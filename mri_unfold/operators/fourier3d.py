"""3-D Cartesian MRI sampling ``Φ = B F₃ S``: the true 3-D operator of volumetric scans.

A 3-D scan (MPRAGE, 3-D GRE, SPACE/CUBE, FLAIR) encodes a volume ``(X, Y, Z)`` with the
readout along ``X`` (``kx``, always fully sampled) and two phase encodings ``ky``, ``kz``
(undersampled).  :class:`CartesianFourier3D` is ``B F₃ S`` with the orthonormal centred 3-D
DFT of the project's convention (:func:`mri_unfold.fft.fftn`), the SENSE coil expansion
``S`` with 3-D maps (none for single-coil data) and a 0/1 mask ``B`` — a ``(Y, Z)`` ky–kz
mask shared by every ``kx`` (the usual case), or a full ``(X, Y, Z)`` mask.

**Readout decoupling.**  When ``B`` does not depend on ``kx``, the inverse DFT along ``kx``
commutes with it: ``F_x^H y = B F_yz S x``, i.e. every readout position ``x`` is an
independent 2-D ky–kz problem ``y_x = B F_yz (S_x x_x)`` — exactly
:class:`~mri_unfold.operators.MultiCoilFourier` with the mask ``B`` and the maps of that
position (:meth:`CartesianFourier3D.position_operator`).  Every 2-D network and baseline
therefore reconstructs a 3-D scan batched over readout positions; this operator serves
classical whole-volume methods (3-D CG-SENSE, L1-wavelet, TV).

Shapes: image ``(N, 1, X, Y, Z)`` complex64/complex128 (float promoted) -> k-space
``(N, C, X, Y, Z)`` (``C = 1`` without coil maps); maps ``(C, X, Y, Z)`` shared or
``(N, C, X, Y, Z)`` per sample.
"""
from __future__ import annotations

import torch

from ..fft import fftn, ifftn
from .base import LinearOperator
from .fourier import MultiCoilFourier, SingleCoilFourier
from .parts import CoilExpansion, binary_mask, complex_dtype, to_tensor
from .registry import OperatorExample, register_operator
from .shapes import Shape

__all__ = ["CartesianFourier3D", "volume_mask"]

_DIMS = (-3, -2, -1)


def volume_mask(mask) -> torch.Tensor:
    """A ``(Y, Z)`` ky–kz mask or an ``(X, Y, Z)`` mask as a bool ``(1 | X, Y, Z)`` tensor.

    Raises:
        ValueError: another rank, complex or non-binary values.
    """
    m = to_tensor(mask, "mask")
    if m.ndim not in (2, 3):
        raise ValueError(f"a 3-D mask must be (KY, KZ) (the readout fully sampled) or "
                         f"(KX, KY, KZ), got shape {tuple(m.shape)}")
    flat = binary_mask(m.reshape(-1, m.shape[-1]))          # validated as a 2-D mask
    return flat.reshape((1, *m.shape) if m.ndim == 2 else tuple(m.shape))


class CartesianFourier3D(LinearOperator):
    """``Φ = B F₃ S`` (module doc).

    Args:
        mask: 0/1 ``(KY, KZ)`` (readout fully sampled) or ``(KX, KY, KZ)``, centred layout;
            stored as the bool buffer ``mask`` ``(1 | X, Y, Z)``.
        coil_maps: ``None`` (single coil) or complex ``(C, X, Y, Z)`` / ``(N, C, X, Y, Z)``.
        layout: ``"centered"`` (default) or ``"unshifted"`` k-space.
    Raises:
        ValueError: masks or maps of the wrong rank, or whose sizes disagree.
    """

    complex_domain = True

    def __init__(self, mask, coil_maps=None, layout: str = "centered"):
        super().__init__()
        self.register_buffer("mask", volume_mask(mask))
        self.layout = layout
        fftn(torch.zeros(1, 1, 1, dtype=torch.complex64), layout=layout)  # validates layout
        self.coils = None if coil_maps is None else CoilExpansion(coil_maps, spatial_dims=3)
        grid = tuple(int(d) for d in self.mask.shape)
        if self.coils is not None:
            vol = tuple(self.coils.domain_shape[1:])
            if grid[1:] != vol[1:] or grid[0] not in (1, vol[0]):
                raise ValueError(f"CartesianFourier3D: mask of shape {tuple(self.mask.shape)} "
                                 f"does not fit the coil maps' volume {vol} (X, Y, Z)")
            grid = vol
        x = None if grid[0] == 1 and self.coils is None else grid[0]
        self.domain_shape: Shape = (1, x, *grid[1:])
        self.range_shape: Shape = (self.num_coils, x, *grid[1:])
        self.batch_size = None if self.coils is None else self.coils.batch_size

    @property
    def num_coils(self) -> int:
        return 1 if self.coils is None else self.coils.num_coils

    @property
    def coil_maps(self) -> torch.Tensor | None:
        """Complex maps ``(C, X, Y, Z)`` / ``(N, C, X, Y, Z)`` or ``None``."""
        return None if self.coils is None else self.coils.maps

    @property
    def readout_fully_sampled(self) -> bool:
        """Whether the mask is the same at every ``kx`` (readout decoupling applies)."""
        m = self.mask
        return m.shape[0] == 1 or bool((m == m[:1]).all())

    def _masked(self, k: torch.Tensor) -> torch.Tensor:
        return torch.where(self.mask.to(k.device), k, torch.zeros((), dtype=k.dtype,
                                                                  device=k.device))

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x, "x", lambda: "x must be (N, 1, X, Y, Z) volumes")
        return x.to(complex_dtype(x, "x"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B F₃ (S x)``: ``(N, 1, X, Y, Z)`` -> ``(N, C, X, Y, Z)``."""
        x = self._check_x(x)
        coil = x if self.coils is None else x * self.coils.maps_for(x)
        return self._masked(fftn(coil, _DIMS, self.layout))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``S^H F₃^H B y``: ``(N, C, X, Y, Z)`` -> ``(N, 1, X, Y, Z)``."""
        self.check_range(y, "y", lambda: f"y must be (N, {self.num_coils}, X, Y, Z) k-space")
        y = y.to(complex_dtype(y, "y"))
        imgs = ifftn(self._masked(y), _DIMS, self.layout)
        if self.coils is None:
            return imgs
        return (self.coils.maps_for(imgs).conj() * imgs).sum(dim=1, keepdim=True)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``S^H F₃^H B F₃ S x``; the centred shifts of the ``C`` coil volumes are moved to the
        single image and the maps (``F_c = Q F P`` with ``P = ifftshift``)."""
        x = self._check_x(x)
        if self.layout != "centered":
            return self.adjoint(self.forward(x))
        shift = lambda t: torch.fft.ifftshift(t, dim=_DIMS)  # noqa: E731
        xs = shift(x)
        s = None if self.coils is None else shift(self.coils.maps_for(x))
        k = torch.fft.fftn(xs if s is None else xs * s, dim=_DIMS, norm="ortho")
        k = k.masked_fill_(~shift(self.mask.to(k.device)), 0)
        v = torch.fft.ifftn(k, dim=_DIMS, norm="ortho")
        v = v if s is None else torch.linalg.vecdot(s, v, dim=1).unsqueeze(1)
        return torch.fft.fftshift(v, dim=_DIMS)

    def position_operator(self, positions) -> SingleCoilFourier | MultiCoilFourier:
        """The 2-D ky–kz operator of readout positions ``positions`` (a list of ``x``
        indices): ``B F_yz S_x`` for a batch of ``(len(positions), 1, Y, Z)`` images, the
        maps of each position — what readout decoupling reconstructs (module doc).

        Raises:
            ValueError: the mask depends on ``kx`` (decoupling does not apply).
        """
        if not self.readout_fully_sampled:
            raise ValueError("the mask changes along the readout (kx): readout positions are "
                             "not independent 2-D problems")
        mask = self.mask[0]
        if self.coils is None:
            return SingleCoilFourier(mask, layout=self.layout)
        maps = self.coils.maps
        if maps.ndim == 5:
            raise ValueError("position_operator needs coil maps shared by the batch")
        return MultiCoilFourier(mask, maps[:, list(positions)].transpose(0, 1), self.layout)

    def extra_repr(self) -> str:
        return (f"mask={tuple(self.mask.shape)}, coils={self.num_coils}, "
                f"layout={self.layout!r}")


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mask(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(*shape, generator=_g(seed)) < 0.4


def _maps(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.complex128, generator=_g(seed))


register_operator("cartesian_3d", examples=(
    OperatorExample("kykz_single_coil", lambda: CartesianFourier3D(_mask(5, 4, seed=1)),
                    (1, 3, 5, 4)),
    OperatorExample("kykz_multi_coil", lambda: CartesianFourier3D(
        _mask(4, 5, seed=2), _maps(3, 5, 4, 5, seed=3))),
    OperatorExample("full_mask_unshifted", lambda: CartesianFourier3D(
        _mask(3, 4, 5, seed=4), _maps(2, 3, 4, 5, seed=5), layout="unshifted")),
    OperatorExample("per_sample_maps", lambda: CartesianFourier3D(
        _mask(4, 3, seed=6), _maps(2, 2, 3, 4, 3, seed=7))),
))(CartesianFourier3D)
