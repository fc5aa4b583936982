"""Non-Cartesian MRI sampling: the density-weighted NUFFT ``Φ = W^½ F S`` (2-D and 3-D).

``F`` is the type-2 NUFFT of :mod:`.nufft` (the centred orthonormal DFT evaluated at the
trajectory's frequencies), ``S`` the SENSE coil expansion (absent for single-coil data) and
``W = diag(dcf ⊙ mask)`` the density compensation times the retrospective sampling mask
(identity when neither is given).  With a density compensation the normal operator
``Φ^H Φ = S^H F^H W F S`` is well conditioned (close to the identity on the sampled disc),
which is what gradient steps of unfolding networks need; its range is *density-weighted*
k-space ``√w ⊙ k`` (:meth:`NonCartesianFourier.weight` maps raw samples into it) and
``Φ^H (√w ⊙ k) = S^H F^H (w ⊙ k)`` is the gridding reconstruction.

Units of ``traj`` (validated; NaN/Inf and out-of-range coordinates are errors):

* ``units="radians"`` (default, finufft/torchkbnufft): ``ω ∈ [-π, π]`` per axis,
  ``ω = 2π κ / N`` for ``κ`` in cycles per field of view;
* ``units="cycles"`` (SigPy's ``coord``, ISMRMRD): ``κ ∈ [-H/2, H/2] × [-W/2, W/2]``.

``traj[..., 0]`` goes with the image rows (``H``), ``traj[..., 1]`` with the columns.  On
the Cartesian grid ``ω = 2π (m - N//2) / N`` the operator equals
:class:`~mri_unfold.operators.SingleCoilFourier` / ``MultiCoilFourier`` (centred layout).

Shapes (``N`` batch, ``C`` coils, ``K`` samples): image ``(N, 1, H, W)`` complex64/128
(float with ``real_input``) -> k-space ``(N, C, K)`` complex (``C = 1`` single-coil).
**3-D** (3-D radial "kooshball", 3-D cones, any 3-D trajectory through finufft's 3-D
transforms, with the 3-D Toeplitz normal): ``image_shape`` ``(X, Y, Z)``, ``traj``
``(K, 3)`` / ``(N, K, 3)``, images ``(N, 1, X, Y, Z)``, maps ``(C, X, Y, Z)``.
Per-sample parameters: ``traj`` ``(N, K, 2)``, ``dcf``/``mask`` ``(N, K)``, ``coil_maps``
``(N, C, H, W)``; shared ones ``(K, 2)``, ``(K,)``, ``(C, H, W)``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import InvalidValue
from .base import LinearOperator
from .nufft import BACKENDS, PlanCache, nufft1, nufft2
from .parts import CoilExpansion, binary_mask, complex_dtype, to_tensor
from .registry import OperatorExample, register_operator
from .toeplitz import apply_toeplitz, toeplitz_kernel

__all__ = ["NonCartesianFourier", "TRAJECTORY_UNITS", "to_radians", "density_weights"]

#: Accepted units of ``traj``.
TRAJECTORY_UNITS = ("radians", "cycles")


def to_radians(traj, image_shape, units: str = "radians") -> torch.Tensor:
    """Validate ``traj`` ``(..., K, 2)`` and return it in radians (a float tensor).

    Raises:
        ValueError: wrong shape, NaN/Inf, coordinates outside the range of ``units``
            (naming it and the largest offending value), an unknown unit.
    """
    if units not in TRAJECTORY_UNITS:
        raise ValueError(f"units must be one of {', '.join(TRAJECTORY_UNITS)}, got {units!r}")
    t = to_tensor(traj, "traj")
    d = len(image_shape)
    if t.is_complex() or t.ndim not in (2, 3) or t.shape[-1] != d:
        raise ValueError(f"traj must be a real (K, {d}) or (N, K, {d}) array of {d}-D k-space "
                         f"coordinates, got {t.dtype} {tuple(t.shape)}")
    t = t.to(torch.float64 if t.dtype == torch.float64 else torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"traj contains {int((~torch.isfinite(t)).sum())} NaN/Inf "
                         "coordinates")
    still = t.abs().reshape(-1, t.shape[-2] * d).amax(-1) == 0
    if t.shape[-2] > 1 and bool(still.any()):
        raise InvalidValue(f"traj: all {t.shape[-2]} samples are at k = 0 (only the DC value "
                           "would be measured; a trajectory in other units, or none stored?)")
    sizes = [float(n) for n in image_shape]
    half = torch.tensor([n / 2 for n in sizes], dtype=t.dtype) if units == "cycles" else \
        torch.full((d,), math.pi, dtype=t.dtype)
    over = t.abs() > half * (1 + 1e-6)
    if bool(over.any()):
        rng = (" x ".join(f"[-{n / 2:g}, {n / 2:g}]" for n in sizes) + " cycles per FOV"
               if units == "cycles" else "[-pi, pi] radians")
        worst = float(t.abs().max())
        raise ValueError(f"traj has {int(over.any(-1).sum())} coordinates outside {rng} "
                         f"(units={units!r}; largest |coordinate| {worst:.4g}); rescale the "
                         "trajectory or give the matching units")
    if units == "cycles":
        t = t * (2 * math.pi / torch.tensor(sizes, dtype=t.dtype))
    return t.clamp(-math.pi, math.pi)


def density_weights(dcf: torch.Tensor | None, mask: torch.Tensor | None, like: torch.Tensor
                    ) -> torch.Tensor | None:
    """``W = dcf ⊙ mask`` ``(N | 1, K)`` in ``like``'s real precision and device (``None`` when
    both are ``None``): the weights of :class:`NonCartesianFourier`, whose range holds
    ``√W ⊙ k`` for raw samples ``k``."""
    dt, dev = like.real.dtype, like.device
    w = None if dcf is None else dcf.to(device=dev, dtype=dt).reshape(-1, dcf.shape[-1])
    if mask is not None:
        m = mask.to(device=dev, dtype=dt).reshape(-1, mask.shape[-1])
        w = m if w is None else w * m
    return w


def _per_sample_vector(value, name: str, k: int, dtype) -> torch.Tensor | None:
    """``(K,)`` or ``(N, K)`` -> ``(N | 1, K)``; ``None`` stays ``None``."""
    if value is None:
        return None
    v = to_tensor(value, name)
    if v.ndim not in (1, 2) or v.shape[-1] != k:
        raise ValueError(f"{name} must have shape ({k},) or (N, {k}) — one value per "
                         f"trajectory sample (K = {k}) — got {tuple(v.shape)}")
    return v.reshape(-1, k) if dtype is None else v.to(dtype).reshape(-1, k)


def _batch_of(owner: str, sizes: dict) -> int | None:
    """The common per-sample batch size of ``{name: size or None}`` (1 = shared)."""
    per = {n: int(s) for n, s in sizes.items() if s is not None and s != 1}
    if len(set(per.values())) > 1:
        raise ValueError(f"{owner}: per-sample parameters disagree on the batch size: " +
                         ", ".join(f"{n} has {s}" for n, s in per.items()))
    return next(iter(per.values()), None)


class NonCartesianFourier(LinearOperator):
    """Non-Cartesian (radial, spiral, ...) MRI sampling ``Φ = W^½ F S`` (module doc).

    Args:
        traj: k-space coordinates ``(K, d)`` (shared) or ``(N, K, d)`` (per sample), numpy or
            tensor, in ``units``; ``d`` = 2, or 3 for volumes.  Stored as the float buffer
            ``traj`` ``(N | 1, K, d)`` in radians.
        image_shape: the image ``(H, W)`` or volume ``(X, Y, Z)``.
        coil_maps: ``None`` (single-coil) or complex ``(C, H, W)`` / ``(N, C, H, W)``.
        dcf: density compensation ``(K,)`` / ``(N, K)``, finite and ``>= 0`` (buffer
            ``dcf``), or ``None``.
        mask: 0/1 samples kept by a retrospective undersampling, ``(K,)`` / ``(N, K)``
            (bool buffer ``mask``): the others are measured as exactly 0.
        units: ``"radians"`` or ``"cycles"`` (module doc).
        real_input: real images (``adjoint`` and ``normal`` return real parts: the exact
            adjoint of the real-linear map w.r.t. ``Re <., .>``).
        eps: NUFFT accuracy (default 1e-6 in single and 1e-12 in double precision).
        backend: ``"auto"``, ``"finufft"`` or ``"torchkbnufft"`` (:mod:`.nufft`).
        toeplitz: ``normal`` by the Toeplitz embedding (:mod:`.toeplitz`; kernel computed
            once per trajectory, device and precision) instead of ``adjoint(forward(x))``.
    Raises:
        ValueError: each bad argument, naming it and what was expected.
    """

    def __init__(self, traj, image_shape, coil_maps=None, dcf=None, *, mask=None,
                 units: str = "radians", real_input: bool = False, eps: float | None = None,
                 backend: str = "auto", toeplitz: bool = True):
        super().__init__()
        if (not isinstance(image_shape, (tuple, list)) or len(image_shape) not in (2, 3)
                or not all(isinstance(s, (int, np.integer)) and s > 0 for s in image_shape)):
            raise ValueError(f"image_shape must be two (H, W) or three (X, Y, Z) positive ints, "
                             f"got {image_shape!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.image_shape = tuple(int(n) for n in image_shape)
        om = to_radians(traj, self.image_shape, units)
        om = om.unsqueeze(0) if om.ndim == 2 else om
        k = int(om.shape[1])
        self.register_buffer("traj", om.contiguous())
        self.register_buffer("grid", torch.tensor(self.image_shape, dtype=torch.int64))
        d = _per_sample_vector(dcf, "dcf", k, om.dtype)
        if d is not None and not bool((torch.isfinite(d) & (d >= 0)).all()):
            raise InvalidValue("dcf must be finite and >= 0 everywhere")
        if d is not None and not bool((d.reshape(d.shape[0], -1) > 0).any(-1).all()):
            raise InvalidValue("dcf is zero everywhere (every measured sample would get weight "
                               "0)")
        self.register_buffer("dcf", d)
        m = _per_sample_vector(mask, "mask", k, None)
        self.register_buffer("mask", None if m is None else binary_mask(m))
        self.coils = None if coil_maps is None else self._coils(coil_maps)
        self.batch_size = _batch_of("NonCartesianFourier", {
            "traj": om.shape[0], "dcf": None if d is None else d.shape[0],
            "mask": None if m is None else m.shape[0],
            "coil_maps": None if self.coils is None else self.coils.batch_size})
        self.real_input = bool(real_input)
        self.complex_domain = not self.real_input
        self.complex_range = True
        self.eps, self.backend, self.toeplitz = eps, backend, bool(toeplitz)
        c = 1 if self.coils is None else self.coils.num_coils
        self.domain_shape = (1, *self.image_shape)
        self.range_shape = (c, k)
        self._plans = PlanCache()

    def _coils(self, coil_maps) -> CoilExpansion:
        s = to_tensor(coil_maps, "coil_maps")
        d = len(self.image_shape)
        if s.ndim not in (d + 1, d + 2) or tuple(s.shape[-d:]) != self.image_shape:
            grid = ", ".join(map(str, self.image_shape))
            raise ValueError(f"coil_maps must have shape (C, {grid}) or (N, C, {grid}) for "
                             f"image_shape {self.image_shape}, got {tuple(s.shape)}")
        return CoilExpansion(s, spatial_dims=d)

    @classmethod
    def from_state(cls, tensors: dict, **options) -> "NonCartesianFourier":
        """The operator stored in ``tensors`` (its ``state_dict``: ``traj``, ``grid``, and
        ``dcf``, ``mask``, ``coils.maps_ri`` when present); ``options`` as the constructor.

        Raises:
            KeyError: ``traj`` or ``grid`` missing.
        """
        maps = tensors.get("coils.maps_ri")
        return cls(tensors["traj"], tuple(int(v) for v in tensors["grid"]),
                   None if maps is None else torch.view_as_complex(maps.contiguous()),
                   dcf=tensors.get("dcf"), mask=tensors.get("mask"), **options)

    # ------------------------------------------------------------------ properties
    @property
    def num_samples(self) -> int:
        """``K``, the number of trajectory samples."""
        return int(self.traj.shape[1])

    @property
    def num_coils(self) -> int:
        return 1 if self.coils is None else self.coils.num_coils

    @property
    def coil_maps(self) -> torch.Tensor | None:
        """Complex maps ``(C, H, W)`` / ``(N, C, H, W)`` or ``None``."""
        return None if self.coils is None else self.coils.maps

    def weights(self, like: torch.Tensor | None = None) -> torch.Tensor | None:
        """``W`` ``(N | 1, K)`` real (``dcf ⊙ mask``), or ``None`` when neither is given; in
        ``like``'s real precision and device."""
        return density_weights(self.dcf, self.mask, self.traj if like is None else like)

    def weight(self, kspace: torch.Tensor) -> torch.Tensor:
        """Raw k-space samples ``(N, C, K)`` -> the operator's range ``√w ⊙ k`` (unchanged
        without dcf and mask)."""
        w = self.weights(kspace)
        return kspace if w is None else kspace * w.sqrt().unsqueeze(1)

    # ------------------------------------------------------------------ checks
    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x, "x", lambda: f"x must be (N, 1, "
                                          f"{', '.join(map(str, self.image_shape))}) images")
        if self.real_input and x.is_complex():
            raise TypeError(f"NonCartesianFourier(real_input=True) expects real images "
                            f"(float32/float64), got {x.dtype}")
        return x.to(complex_dtype(x, "x"))

    def _range_detail(self, y) -> str:
        if y.ndim == 3 and y.shape[-1] != self.num_samples:
            return (f"the k-space has {y.shape[-1]} samples per coil but the trajectory has "
                    f"K = {self.num_samples}")
        return f"expected (N, {self.num_coils}, {self.num_samples}) k-space: (batch, coils, K)"

    # ------------------------------------------------------------------ kernels
    def _coil_images(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.coils is None else x * self.coils.maps_for(x)

    def _combine(self, imgs: torch.Tensor) -> torch.Tensor:
        if self.coils is not None:
            imgs = (self.coils.maps_for(imgs).conj() * imgs).sum(dim=1, keepdim=True)
        return imgs.real.contiguous() if self.real_input else imgs

    def _omega(self, t: torch.Tensor) -> torch.Tensor:
        """``traj`` in ``t``'s real precision, cached (a stable tensor keeps the NUFFT plans)."""
        return self._memo("omega", t, lambda: self.traj.to(dtype=t.real.dtype))

    def _memo(self, what: str, like: torch.Tensor, compute):
        """``compute()`` cached per ``what``, device and precision of ``like`` until ``traj``,
        ``dcf`` or ``mask`` change (new storage, shape or in-place write; tensors made under
        ``torch.inference_mode`` have no version counter and are compared by storage)."""
        stamp = tuple(None if t is None else (t.data_ptr(), tuple(t.shape),
                                              -1 if t.is_inference() else t._version)
                      for t in (self.traj, self.dcf, self.mask))
        cache = self.__dict__.setdefault("_memo_cache", {})
        key = (what, like.device, like.real.dtype)
        hit = cache.get(key)
        if hit is None or hit[0] != stamp:
            hit = cache[key] = (stamp, compute())
        return hit[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``√w ⊙ F (S x)``: ``(N, 1, H, W)`` -> ``(N, C, K)`` complex."""
        x = self._check_x(x)
        y = nufft2(self._coil_images(x), self._omega(x), eps=self.eps, backend=self.backend,
                   cache=self._plans)
        return self.weight(y)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``S^H F^H (√w ⊙ y)``: ``(N, C, K)`` -> ``(N, 1, H, W)`` (real part if
        ``real_input``)."""
        self.check_range(y, "y", lambda: self._range_detail(y))
        y = self.weight(y.to(complex_dtype(y, "y")))
        imgs = nufft1(y, self._omega(y), self.image_shape, eps=self.eps, backend=self.backend,
                      cache=self._plans)
        return self._combine(imgs)

    def coil_images(self, y: torch.Tensor) -> torch.Tensor:
        """Per-coil gridding ``F^H (√w ⊙ y_c)``: ``(N, C, K)`` -> ``(N, C, H, W)`` complex."""
        self.check_range(y, "y", lambda: self._range_detail(y))
        y = self.weight(y.to(complex_dtype(y, "y")))
        return nufft1(y, self._omega(y), self.image_shape, eps=self.eps, backend=self.backend,
                      cache=self._plans)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``S^H F^H W F S x`` by the Toeplitz embedding (or ``adjoint(forward(x))``)."""
        if not self.toeplitz:
            return self.adjoint(self.forward(x))
        x = self._check_x(x)
        return self._combine(apply_toeplitz(self._coil_images(x), self.kernel(x)))

    def kernel(self, like: torch.Tensor) -> torch.Tensor:
        """The Toeplitz kernel ``(N | 1, 1, 2H, 2W)`` (3-D: ``(N | 1, 1, 2X, 2Y, 2Z)``) for ``like``'s device and precision,
        cached until ``traj``, ``dcf`` or ``mask`` change (not saved in the state_dict)."""
        def compute():
            w = self.weights(like)
            if w is None:
                w = torch.ones(1, self.num_samples, dtype=like.real.dtype, device=like.device)
            with torch.no_grad():
                return toeplitz_kernel(self._omega(like), w, self.image_shape, eps=self.eps,
                                       backend=self.backend)

        return self._memo("kernel", like, compute)

    def extra_repr(self) -> str:
        return (f"image_shape={self.image_shape}, samples={self.num_samples}, "
                f"coils={self.num_coils}, dcf={self.dcf is not None}, "
                f"mask={self.mask is not None}, real_input={self.real_input}, "
                f"backend={self.backend!r}, toeplitz={self.toeplitz}")


# ---------------------------------------------------------------------------- examples
def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _traj(*shape: int, seed: int) -> torch.Tensor:
    return (torch.rand(*shape, 2, generator=_g(seed), dtype=torch.float64) * 2 - 1) * math.pi


def _traj3(k: int, seed: int) -> torch.Tensor:
    return (torch.rand(k, 3, generator=_g(seed), dtype=torch.float64) * 2 - 1) * math.pi


def _maps(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.complex128, generator=_g(seed))


register_operator("noncartesian", examples=(
    OperatorExample("single_coil", lambda: NonCartesianFourier(_traj(40, seed=1), (8, 6))),
    OperatorExample("odd_dcf_mask", lambda: NonCartesianFourier(
        _traj(37, seed=2), (7, 9), dcf=torch.rand(37, generator=_g(3), dtype=torch.float64),
        mask=torch.rand(37, generator=_g(4)) < 0.7)),
    OperatorExample("per_sample_traj_maps", lambda: NonCartesianFourier(
        _traj(2, 30, seed=5), (6, 6), coil_maps=_maps(2, 3, 6, 6, seed=6),
        dcf=torch.rand(2, 30, generator=_g(7), dtype=torch.float64))),
    OperatorExample("shared_maps_cycles", lambda: NonCartesianFourier(
        _traj(25, seed=8) * (4 / math.pi), (8, 8), coil_maps=_maps(2, 8, 8, seed=9),
        units="cycles")),
    OperatorExample("real_input", lambda: NonCartesianFourier(
        _traj(33, seed=10), (6, 7), dcf=torch.rand(33, generator=_g(11), dtype=torch.float64),
        real_input=True)),
    OperatorExample("no_toeplitz", lambda: NonCartesianFourier(
        _traj(20, seed=12), (5, 6), coil_maps=_maps(2, 5, 6, seed=13), toeplitz=False)),
    OperatorExample("volume_kooshball_dcf", lambda: NonCartesianFourier(
        _traj3(60, seed=14), (5, 4, 6), dcf=torch.rand(60, generator=_g(15), dtype=torch.float64),
        mask=torch.rand(60, generator=_g(16)) < 0.8)),
    OperatorExample("volume_coils_cycles", lambda: NonCartesianFourier(
        _traj3(40, seed=17) * (2 / math.pi), (4, 5, 4), coil_maps=_maps(2, 4, 5, 4, seed=18),
        units="cycles")),
))(NonCartesianFourier)
