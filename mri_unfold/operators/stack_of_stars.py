"""Stack-of-stars MRI: radial (or any 2-D non-Cartesian) sampling in-plane, Cartesian
partitions along ``kz`` — ``Φ = W^½ M_z F_xy F_z S``.

The image ``(X, Y, Z)`` (``Z`` the partition axis) is expanded by the coil maps, transformed
along ``z`` by the centred orthonormal DFT (:func:`mri_unfold.fft.fftn`), and every partition
``kz`` is sampled along its in-plane trajectory by the 2-D NUFFT of :mod:`.nufft` (one shared
trajectory ``(K, 2)``, or one per partition ``(Z, K, 2)`` — rotated stars); ``M_z`` keeps the
acquired partitions (kz undersampling, partial Fourier) and ``W`` is the in-plane density
compensation ``(K,)`` / ``(Z, K)``.  The range is density-weighted k-space ``(C, Z, K)``.

**Normal operator.**  ``Φ^H Φ = S^H F_z^H M_z T_z F_z S`` with ``T_z`` the 2-D Toeplitz
embedding of partition ``z`` (:mod:`.toeplitz`).  With one trajectory for all partitions the
in-plane Toeplitz operator commutes with ``F_z``, so the normal is ``S^H (F_z^H M_z F_z ⊗ T)
S``: one 2-D kernel and, when every partition is acquired, no ``z`` transform at all.

**Decoupling.**  With a shared trajectory and every partition acquired, the inverse DFT along
``kz`` turns the scan into ``Z`` independent 2-D non-Cartesian problems (:meth:`slice_operator`
gives their :class:`~mri_unfold.operators.NonCartesianFourier`), which the 2-D networks and
baselines reconstruct batched over slices.

Shapes: image ``(N, 1, X, Y, Z)`` complex; k-space ``(N, C, Z, K)``; maps ``(C, X, Y, Z)``
(shared).
"""
from __future__ import annotations

import math

import torch

from ..fft import fftn, ifftn
from .base import LinearOperator
from .noncartesian import NonCartesianFourier, to_radians
from .nufft import PlanCache, nufft1, nufft2
from .parts import CoilExpansion, complex_dtype, to_tensor
from .registry import OperatorExample, register_operator
from .toeplitz import apply_toeplitz, toeplitz_kernel

__all__ = ["StackOfStarsFourier"]


class StackOfStarsFourier(LinearOperator):
    """Stack-of-stars sampling (module doc).

    Args:
        traj: in-plane trajectory ``(K, 2)`` (every partition) or ``(Z, K, 2)`` (one per
            partition), radians (or ``units="cycles"``).
        image_shape: ``(X, Y, Z)``, ``Z`` the partition axis.
        coil_maps: ``None`` or complex ``(C, X, Y, Z)``.
        dcf: in-plane density compensation ``(K,)`` or ``(Z, K)``, finite and ``>= 0``.
        partitions: 0/1 ``(Z,)`` acquired partitions (default all).
        eps / backend: NUFFT accuracy and backend (:mod:`.nufft`).
    Raises:
        ValueError: shapes that do not fit, trajectories out of range, negative DCF.
    """

    complex_domain = True

    def __init__(self, traj, image_shape, coil_maps=None, dcf=None, *, partitions=None,
                 units: str = "radians", eps: float | None = None, backend: str = "auto"):
        super().__init__()
        if len(image_shape) != 3 or not all(int(n) > 0 for n in image_shape):
            raise ValueError(f"image_shape must be (X, Y, Z), got {image_shape!r}")
        self.image_shape = tuple(int(n) for n in image_shape)
        x, y, z = self.image_shape
        om = to_radians(traj, (x, y), units)
        om = om.unsqueeze(0) if om.ndim == 2 else om
        if om.shape[0] not in (1, z):
            raise ValueError(f"traj must be (K, 2) or (Z, K, 2) with Z = {z} partitions, got "
                             f"{tuple(om.shape)}")
        self.register_buffer("traj", om.contiguous())
        k = int(om.shape[1])
        w = None
        if dcf is not None:
            w = to_tensor(dcf, "dcf").to(om.dtype)
            if w.shape not in ((k,), (z, k)) or not bool((torch.isfinite(w) & (w >= 0)).all()):
                raise ValueError(f"dcf must be finite, >= 0 and of shape ({k},) or ({z}, {k}), "
                                 f"got {tuple(w.shape)}")
            w = w.reshape(-1, k)
        self.register_buffer("dcf", w)
        p = torch.ones(z) if partitions is None else to_tensor(partitions, "partitions").float()
        if tuple(p.shape) != (z,) or not bool(((p == 0) | (p == 1)).all()) or not bool(p.any()):
            raise ValueError(f"partitions must be 0/1 of shape ({z},) with one acquired, got "
                             f"{tuple(p.shape)}")
        self.register_buffer("partitions", p.bool())
        self.coils = None
        if coil_maps is not None:
            s = to_tensor(coil_maps, "coil_maps")
            if s.ndim != 4 or tuple(s.shape[1:]) != self.image_shape:
                raise ValueError(f"coil_maps must be (C, {x}, {y}, {z}), got {tuple(s.shape)}")
            self.coils = CoilExpansion(s, spatial_dims=3)
        self.eps, self.backend = eps, backend
        c = 1 if self.coils is None else self.coils.num_coils
        self.domain_shape, self.range_shape = (1, x, y, z), (c, z, k)
        self._plans = PlanCache()

    @property
    def num_coils(self) -> int:
        return 1 if self.coils is None else self.coils.num_coils

    @property
    def shared_trajectory(self) -> bool:
        """One trajectory (and DCF) for every partition."""
        return self.traj.shape[0] == 1 and (self.dcf is None or self.dcf.shape[0] == 1)

    def _weights(self, like: torch.Tensor) -> torch.Tensor:
        """``(Z | 1, K)`` √-able weights (dcf) times the partition mask, ``(Z, K)``."""
        z, k = self.image_shape[2], self.traj.shape[1]
        w = torch.ones(1, k, dtype=like.real.dtype, device=like.device) if self.dcf is None \
            else self.dcf.to(device=like.device, dtype=like.real.dtype)
        return w * self.partitions.to(like.device, like.real.dtype)[:, None].expand(z, 1)

    def _omega(self, like: torch.Tensor, n: int) -> torch.Tensor:
        om = self.traj.to(device=like.device, dtype=like.real.dtype)
        return om if om.shape[0] == 1 else om.repeat(n, 1, 1)           # (N·Z, K, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``√W M_z F_xy F_z S x``: ``(N, 1, X, Y, Z)`` -> ``(N, C, Z, K)``."""
        self.check_domain(x)
        x = x.to(complex_dtype(x, "x"))
        n, (nx, ny, nz) = x.shape[0], self.image_shape
        coil = x if self.coils is None else x * self.coils.maps_for(x)
        kz = fftn(coil, dims=(-1,)).permute(0, 4, 1, 2, 3).reshape(n * nz, -1, nx, ny)
        y = nufft2(kz, self._omega(x, n), eps=self.eps, backend=self.backend,
                   cache=self._plans)                                   # (N·Z, C, K)
        y = y.reshape(n, nz, -1, y.shape[-1]).transpose(1, 2)
        return y * self._weights(y).sqrt()

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``S^H F_z^H F_xy^H M_z √W y``: ``(N, C, Z, K)`` -> ``(N, 1, X, Y, Z)``."""
        self.check_range(y, "y")
        y = y.to(complex_dtype(y, "y"))
        n, (nx, ny, nz) = y.shape[0], self.image_shape
        y = (y * self._weights(y).sqrt()).transpose(1, 2).reshape(n * nz, -1, y.shape[-1])
        img = nufft1(y, self._omega(y, n), (nx, ny), eps=self.eps, backend=self.backend,
                     cache=self._plans)                                 # (N·Z, C, X, Y)
        img = ifftn(img.reshape(n, nz, -1, nx, ny).permute(0, 2, 3, 4, 1), dims=(-1,))
        if self.coils is None:
            return img
        return (self.coils.maps_for(img).conj() * img).sum(dim=1, keepdim=True)

    def kernel(self, like: torch.Tensor) -> torch.Tensor:
        """In-plane Toeplitz kernels ``(1 | Z, 1, 2X, 2Y)`` (the partition mask excluded);
        not cached in the state_dict."""
        cache = self.__dict__.setdefault("_kernel_cache", {})
        key = (like.device, like.real.dtype, self.traj.data_ptr(), self.traj._version,
               None if self.dcf is None else (self.dcf.data_ptr(), self.dcf._version))
        if key not in cache:
            w = torch.ones(1, self.traj.shape[1], dtype=like.real.dtype, device=like.device) \
                if self.dcf is None else self.dcf.to(device=like.device, dtype=like.real.dtype)
            with torch.no_grad():
                cache.clear()
                cache[key] = toeplitz_kernel(self.traj.to(like.device, like.real.dtype), w,
                                             self.image_shape[:2], eps=self.eps,
                                             backend=self.backend)
        return cache[key]

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``S^H F_z^H M_z T_z F_z S x`` by the Toeplitz embedding (module doc)."""
        self.check_domain(x)
        x = x.to(complex_dtype(x, "x"))
        coil = x if self.coils is None else x * self.coils.maps_for(x)
        kern = self.kernel(x)
        all_parts = bool(self.partitions.all())
        if self.shared_trajectory and all_parts:
            out = self._toeplitz_slices(coil, kern)
        else:
            kz = fftn(coil, dims=(-1,))
            if self.shared_trajectory:
                kz = self._toeplitz_slices(kz, kern)
            else:
                kz = self._toeplitz_slices(kz, kern, per_partition=True)
            kz = kz * self.partitions.to(kz.device)
            out = ifftn(kz, dims=(-1,))
        if self.coils is None:
            return out
        return (self.coils.maps_for(out).conj() * out).sum(dim=1, keepdim=True)

    @staticmethod
    def _toeplitz_slices(v: torch.Tensor, kern: torch.Tensor,
                         per_partition: bool = False) -> torch.Tensor:
        """The in-plane Toeplitz operator on every ``z`` slice of ``(N, C, X, Y, Z)``."""
        n, c, nx, ny, nz = v.shape
        s = v.permute(0, 4, 1, 2, 3).reshape(n * nz, c, nx, ny)
        k = kern.repeat(n, 1, 1, 1) if per_partition else kern
        out = apply_toeplitz(s, k)
        return out.reshape(n, nz, c, nx, ny).permute(0, 2, 3, 4, 1)

    def slice_operator(self, slices) -> NonCartesianFourier:
        """The 2-D :class:`NonCartesianFourier` of image slices ``slices`` (``z`` indices) of
        the decoupled scan: ``F_z^H y`` of slice ``z`` is ``√W F_xy S_z x_z`` (module doc).

        Raises:
            ValueError: per-partition trajectories or skipped partitions (no decoupling).
        """
        if not self.shared_trajectory or not bool(self.partitions.all()):
            raise ValueError("stack-of-stars slices decouple only with one trajectory for every "
                             "partition and every partition acquired")
        maps = None if self.coils is None else \
            self.coils.maps[..., list(slices)].permute(3, 0, 1, 2)
        return NonCartesianFourier(self.traj[0], self.image_shape[:2], maps,
                                   dcf=None if self.dcf is None else self.dcf[0],
                                   eps=self.eps, backend=self.backend)

    def extra_repr(self) -> str:
        return (f"image_shape={self.image_shape}, samples={self.traj.shape[1]}, "
                f"coils={self.num_coils}, partitions={int(self.partitions.sum())}/"
                f"{self.image_shape[2]}, shared_trajectory={self.shared_trajectory}")


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _traj(*shape: int, seed: int) -> torch.Tensor:
    return (torch.rand(*shape, 2, generator=_g(seed), dtype=torch.float64) * 2 - 1) * math.pi


register_operator("stack_of_stars", examples=(
    OperatorExample("shared_single_coil", lambda: StackOfStarsFourier(
        _traj(30, seed=1), (6, 5, 4))),
    OperatorExample("shared_coils_dcf_kz_mask", lambda: StackOfStarsFourier(
        _traj(25, seed=2), (5, 6, 5), torch.randn(2, 5, 6, 5, dtype=torch.complex128,
                                                  generator=_g(3)),
        dcf=torch.rand(25, generator=_g(4), dtype=torch.float64),
        partitions=torch.tensor([1, 0, 1, 1, 0]))),
    OperatorExample("rotated_per_partition", lambda: StackOfStarsFourier(
        _traj(4, 20, seed=5), (5, 5, 4), dcf=torch.rand(4, 20, generator=_g(6),
                                                        dtype=torch.float64))),
))(StackOfStarsFourier)
