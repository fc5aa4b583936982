"""Classical MRI reconstruction baselines: zero-filled, CG-SENSE, SigPy L1-wavelet and TV.

Every baseline takes the measured k-space ``y`` and the Fourier operator ``op`` that produced
it (:class:`~mri_unfold.operators.SingleCoilFourier` or
:class:`~mri_unfold.operators.MultiCoilFourier`, either k-space layout) and returns
**magnitude** images ``(N, H, W)`` (real tensor, on ``y``'s device, float32 for complex64
input) — the images that are compared against magnitude/RSS targets.

* ``zero_filled`` — single-coil: ``|Φ^H y|`` (the operator's adjoint; for
  ``real_input`` operators the magnitude of the complex zero-filled image ``|F^H B y|``, so
  no signal is dropped); multi-coil: root-sum-of-squares of the coil images ``F^H B y_c``
  (fastMRI convention).
* ``sense`` — least squares ``min_x ‖Φ x − y‖²`` by conjugate gradient on the normal
  equations (:func:`mri_unfold.solvers.cg_sense`; 30 iterations), magnitude of the solution:
  with coil maps this is CG-SENSE, single-coil the minimum-norm zero-filled image.
* ``l1_wavelet`` — :class:`sigpy.mri.app.L1WaveletRecon` (Daubechies-4 wavelets,
  accelerated proximal gradient), ``min_x ½‖B F S x − y‖² + λ‖Ψ x‖₁``.
* ``total_variation`` — :class:`sigpy.mri.app.TotalVariationRecon` (primal-dual),
  ``min_x ½‖B F S x − y‖² + λ‖∇x‖₁``.
* ``l1_wavelet_fista`` — the same L1-wavelet objective solved by FISTA in torch for the
  whole batch at once (:func:`mri_unfold.solvers.fista_l1`) with the orthonormal periodised
  db4 DWT (:class:`mri_unfold.wavelets.Wavelet2D`, exactly PyWavelets' ``periodization``
  mode), on any operator (``x`` real for real-domain operators); tens of times faster than
  the per-slice SigPy loop on CPU.

**Non-Cartesian operators** (:class:`~mri_unfold.operators.NonCartesianFourier`, ``y`` its
density-weighted samples ``(N, C, K)``): ``zero_filled`` is **gridding**, the adjoint with
the DCF per coil ``|F^H (w ⊙ k_c)|`` (RSS over coils), divided by its gain on a constant
image (``F^H W F 1`` at the centre, so the DCF's global scale does not matter); ``sense`` is CG-SENSE on the
density-weighted normal equations; ``l1_wavelet`` / ``total_variation`` call SigPy's apps
with ``coord=`` (the trajectory in cycles per FOV — SigPy's NUFFT has our sign, centre and
orthonormal scaling) and ``weights=`` the DCF, i.e. ``min_x ½‖W^½ (F S x − k)‖² + λ R(x)``
on the raw samples ``k = y / √w``: the same objective as on our operator.

**λ convention.**  λ depends on the intensity scale of the data, so before solving the
k-space is divided by ``s = max |zero-filled image|`` and the result multiplied back; λ is
therefore *relative to an image whose zero-filled magnitude peaks at 1*.  The defaults
(:data:`DEFAULT_LAMBDA`) were picked by a log-spaced sweep (λ ∈ {1e-4, 3e-4, …, 3e-2}) on
two axial slices of the MNI ICBM152 T1 template (the demo image, z-index 82 and 92) and two
``brain_test`` slices, 20 % pseudo-radial sampling (``radial_20.mat``), maximising mean
PSNR (L1-wavelet: λ = 1e-3 → 30.6 dB vs 27.1 dB zero-filled; TV: λ = 1e-2 with 300
primal-dual iterations → 33.8 dB; TV needs the extra iterations to converge).  The sweep is
reproduced in ``docs/reconstruction.md``.

**FFT convention.**  SigPy's FFT is centred and orthonormal (``sigpy.fft(x, center=True,
norm="ortho")`` = ``fftshift(fftn(ifftshift(x)))``), i.e. exactly our ``"centered"`` layout.
Data from an ``"unshifted"`` operator is converted exactly into the centred layout before
calling SigPy: ``y_c = fft2_c(ifft2_u(y))`` and ``mask_c = fftshift(mask)``.
Single-coil data is passed to SigPy with an all-ones sensitivity map.
"""
from __future__ import annotations

import numpy as np
import torch

from .fft import fft2, ifft2
from .image_ops import rss
from .operators import NonCartesianFourier, SingleCoilFourier
from .solvers import cg_sense, fista_l1
from .wavelets import Wavelet2D

__all__ = ["DEFAULT_LAMBDA", "DEFAULT_MAX_ITER", "BASELINES", "zero_filled", "sense",
           "l1_wavelet", "total_variation", "l1_wavelet_fista", "sigpy_recon", "run_baseline",
           "baseline_images"]

#: Default regularisation weights, relative to a zero-filled magnitude peak of 1.
DEFAULT_LAMBDA = {"l1-wavelet": 1e-3, "tv": 1e-2}
#: Default iteration counts of the SigPy solvers.
DEFAULT_MAX_ITER = {"l1-wavelet": 100, "tv": 300}


def _op_parts(y: torch.Tensor, op):
    """(mask (N, C, H, W) bool, layout, coil maps (N, C, H, W) complex or None, real_input)."""
    if not torch.is_tensor(y) or y.ndim != 4 or not y.is_complex():
        raise ValueError(f"y must be complex k-space of shape (N, C, H, W), got "
                         f"{tuple(y.shape) if torch.is_tensor(y) else type(y).__name__}")
    for attr in ("mask", "layout"):
        if not hasattr(op, attr):
            raise TypeError(f"baselines need a Fourier operator with a mask and a k-space layout "
                            f"(SingleCoilFourier / MultiCoilFourier), got {type(op).__name__}")
    mask = op.mask.to(y.device).expand(y.shape)
    maps = getattr(op, "coil_maps", None)
    if maps is not None:
        maps = maps.to(y.device)
        if maps.ndim == 3:
            maps = maps.unsqueeze(0)
        maps = maps.expand(y.shape[0], *maps.shape[1:])
    return mask, op.layout, maps, bool(getattr(op, "real_input", False))


def _dc_gain(op: NonCartesianFourier, y: torch.Tensor) -> torch.Tensor:
    """``(F^H W F 1)`` at the image centre, ``(N | 1, 1, 1, 1)``: the gain of gridding on a
    constant image, by which gridding is divided — the DCF's global scale is a convention
    (``make_trajectory`` scales it to a unit-norm operator), gridding's intensity is not."""
    plain = NonCartesianFourier(op.traj, op.image_shape, dcf=op.dcf, mask=op.mask, eps=op.eps,
                                backend=op.backend)
    h, w = op.image_shape
    one = torch.ones(op.batch_size or 1, 1, h, w, dtype=y.dtype, device=y.device)
    return plain.normal(one)[:, :, h // 2, w // 2].real.reshape(-1, 1, 1, 1)


def zero_filled(y: torch.Tensor, op) -> torch.Tensor:
    """Zero-filled reconstruction (magnitude, or RSS over coils for multi-coil).

    Args:
        y: complex k-space ``(N, C, H, W)`` (``C == 1`` single-coil), already masked.
        op: the Fourier operator that produced ``y``, or any Cartesian operator with the
            same mask and layout (coil maps are not needed: coils are combined by RSS).
    Returns:
        Real tensor ``(N, H, W)`` on ``y``'s device.
    """
    if isinstance(op, NonCartesianFourier):  # gridding: F^H (w ⊙ k) per coil
        coil_images = op.coil_images(y) / _dc_gain(op, y)
        return coil_images[:, 0].abs() if coil_images.shape[1] == 1 else rss(coil_images, dim=1)
    mask, layout, _, _ = _op_parts(y, op)
    zero = torch.zeros((), dtype=y.dtype, device=y.device)
    coil_images = ifft2(torch.where(mask, y, zero), layout)
    if coil_images.shape[1] == 1:
        return coil_images[:, 0].abs()
    return rss(coil_images, dim=1)


def sigpy_recon(kspace: np.ndarray, mask: np.ndarray, coil_maps: np.ndarray | None = None, *,
                method: str = "l1-wavelet", lamda: float | None = None,
                max_iter: int | None = None, coord: np.ndarray | None = None,
                image_shape: tuple[int, int] | None = None) -> np.ndarray:
    """One SigPy reconstruction of one slice, in the centred k-space layout (or along a
    non-Cartesian trajectory ``coord``).

    Args:
        kspace: complex ``(C, H, W)`` centred-layout k-space (unsampled entries zero).
        mask: ``(C, H, W)`` or ``(H, W)`` 0/1 sampling mask, centred layout.
        coil_maps: complex ``(C, H, W)`` sensitivities, or None for single-coil (all ones).
        method: ``"l1-wavelet"`` or ``"tv"``.
        lamda: regularisation weight relative to a zero-filled peak of 1
            (default :data:`DEFAULT_LAMBDA`).
        max_iter: solver iterations (default :data:`DEFAULT_MAX_ITER`).
        coord: non-Cartesian: the trajectory ``(K, 2)`` in cycles per FOV; then ``kspace`` is
            ``(C, K)`` raw samples, ``mask`` the ``(K,)`` weights (DCF) and ``image_shape``
            ``(H, W)`` is needed without coil maps.
    Returns:
        Complex ``(H, W)`` image (complex64/complex128 following ``kspace``) in the input's
        intensity scale.
    """
    import sigpy  # noqa: PLC0415  (sigpy import is slow; only when used)
    import sigpy.mri.app as app  # noqa: PLC0415

    if method not in DEFAULT_LAMBDA:
        raise ValueError(f"unknown baseline method {method!r}; valid: {', '.join(DEFAULT_LAMBDA)}")
    lamda = DEFAULT_LAMBDA[method] if lamda is None else float(lamda)
    max_iter = DEFAULT_MAX_ITER[method] if max_iter is None else int(max_iter)
    ksp = np.asarray(kspace)
    if ksp.ndim != (3 if coord is None else 2):
        raise ValueError(f"kspace must have shape {'(C, H, W)' if coord is None else '(C, K)'}"
                         f", got {ksp.shape}")
    weights = np.broadcast_to(np.asarray(mask, dtype=np.float32), ksp.shape).copy()
    shape = tuple(ksp.shape[1:]) if coord is None else tuple(
        image_shape if coil_maps is None else np.shape(coil_maps)[1:])
    mps = np.ones((1, *shape), ksp.dtype) if coil_maps is None else np.asarray(coil_maps)
    if coord is None:
        scale = float(rss(ifft2(torch.from_numpy(ksp * weights), "centered"), dim=0).max())
    else:
        grid = sigpy.nufft_adjoint(ksp * weights, coord, oshape=(len(ksp), *shape))
        scale = float(np.sqrt((np.abs(grid) ** 2).sum(0)).max())
    if scale == 0.0:
        return np.zeros(shape, ksp.dtype)
    cls = app.L1WaveletRecon if method == "l1-wavelet" else app.TotalVariationRecon
    x = cls(ksp / scale, mps, lamda, weights=weights, coord=coord, max_iter=max_iter,
            show_pbar=False).run()
    return (np.asarray(x) * scale).astype(ksp.dtype, copy=False)


def _sigpy_noncartesian(y: torch.Tensor, op: NonCartesianFourier, method: str, lamda,
                        max_iter) -> torch.Tensor:
    """SigPy with ``coord=`` per sample of a non-Cartesian batch ``y`` ``(N, C, K)``."""
    w = op.weights(y.real.double())
    w = torch.ones(1, y.shape[-1], dtype=torch.float64) if w is None else w.cpu()
    coord = (op.traj.double() * op.grid.double() / (2 * np.pi)).cpu().numpy()
    maps = op.coil_maps
    out = []
    for i in range(y.shape[0]):
        wi = w[i if len(w) > 1 else 0]
        raw = torch.where(wi > 0, y[i].cpu().to(torch.complex128) / wi.clamp_min(1e-30).sqrt(),
                          torch.zeros((), dtype=torch.complex128))
        mi = None if maps is None else (maps[min(i, len(maps) - 1)] if maps.ndim == 4 else maps)
        x = sigpy_recon(raw.numpy(), wi.numpy(), None if mi is None else mi.cpu().numpy(),
                        method=method, lamda=lamda, max_iter=max_iter,
                        coord=coord[i if len(coord) > 1 else 0], image_shape=op.image_shape)
        out.append(torch.from_numpy(np.ascontiguousarray(x)))
    x = torch.stack(out).to(y.device)
    return x.real if op.real_input else x


def _sigpy_images(y: torch.Tensor, op, method: str, lamda, max_iter) -> torch.Tensor:
    """The SigPy solution of every sample, ``(N, H, W)``: complex, or its real part for
    real-domain operators."""
    if isinstance(op, NonCartesianFourier):
        return _sigpy_noncartesian(y, op, method, lamda, max_iter)
    mask, layout, maps, real_input = _op_parts(y, op)
    zero = torch.zeros((), dtype=y.dtype, device=y.device)
    k = torch.where(mask, y, zero)
    if layout == "unshifted":  # exact change of layout (see module docstring)
        k = fft2(ifft2(k, "unshifted"), "centered")
        mask = torch.fft.fftshift(mask, dim=(-2, -1))
    out = []
    for i in range(y.shape[0]):
        x = sigpy_recon(k[i].cpu().numpy(), mask[i].cpu().numpy(),
                        None if maps is None else maps[i].cpu().numpy(),
                        method=method, lamda=lamda, max_iter=max_iter)
        out.append(torch.from_numpy(np.ascontiguousarray(x)))
    x = torch.stack(out).to(y.device)
    return x.real if real_input else x


def _sigpy_batch(y: torch.Tensor, op, method: str, lamda, max_iter) -> torch.Tensor:
    return _sigpy_images(y, op, method, lamda, max_iter).abs()


def l1_wavelet(y: torch.Tensor, op, lamda: float | None = None,
               max_iter: int | None = None) -> torch.Tensor:
    """SigPy L1-wavelet reconstruction of every sample: ``(N, C, H, W)`` -> ``(N, H, W)`` magnitude.

    For ``real_input`` operators the real part of the solution is taken (the image is real).
    """
    return _sigpy_batch(y, op, "l1-wavelet", lamda, max_iter)


def total_variation(y: torch.Tensor, op, lamda: float | None = None,
                    max_iter: int | None = None) -> torch.Tensor:
    """SigPy total-variation reconstruction: ``(N, C, H, W)`` -> ``(N, H, W)`` magnitude."""
    return _sigpy_batch(y, op, "tv", lamda, max_iter)


def l1_wavelet_fista(y: torch.Tensor, op, lamda=1e-3, max_iter: int = 100,
                     wavelet: str = "db4") -> torch.Tensor:
    """L1-wavelet by batched FISTA: the magnitude of :func:`_fista_images` ``(N, H, W)``."""
    return _fista_images(y, op, lamda, max_iter, wavelet).abs()


def _fista_images(y: torch.Tensor, op, lamda=1e-3, max_iter: int = 100,
                  wavelet: str = "db4") -> torch.Tensor:
    """L1-wavelet by batched FISTA (module doc): ``(N, C, ...)`` -> ``(N, H, W)`` images
    (complex; real for real-domain operators).

    ``lamda`` (SigPy's default, 1e-3) is relative to a zero-filled peak of 1 per sample, as
    for SigPy: each sample's k-space is divided by its zero-filled maximum and the result
    multiplied back.  A number or a per-sample sequence / tensor of ``N`` values.
    """
    peak = zero_filled(y, op).flatten(1).amax(1).clamp_min(1e-30)
    scale = peak.reshape(-1, *([1] * (y.ndim - 1))).to(y.real.dtype)
    lam = torch.as_tensor(lamda, dtype=y.real.dtype, device=y.device).reshape(-1, 1, 1, 1)
    x0 = op.adjoint(y[:1])
    lip = normal = None
    if isinstance(op, SingleCoilFourier) and bool(op.mask.any()):
        lip = 1.0                     # ‖Φ^H Φ‖ = 1: orthonormal FFT and a 0/1 mask
        if op.layout == "centered":   # the same measurement without the FFT shifts: faster
            y = fft2(ifft2(op.sampling.apply(y), "centered"), "unshifted")
            op = SingleCoilFourier(torch.fft.ifftshift(op.mask, dim=(-2, -1)), "unshifted",
                                   real_input=op.real_input)
        m = op.mask.to(y.device, y.real.dtype)

        def normal(x):                # F^H M F x (its real part for real images)
            k = torch.fft.ifft2(torch.fft.fft2(x, norm="ortho").mul_(m), norm="ortho")
            return k.real.contiguous() if op.real_input else k
    x = fista_l1(y / scale, op, Wavelet2D(tuple(x0.shape[-2:]), wavelet), lam,
                 max_iter=max_iter, lipschitz=lip, normal=normal)
    return (x * scale.reshape(-1, 1, 1, 1))[:, 0]


def sense(y: torch.Tensor, op, lamda: float = 0.0, max_iter: int = 30) -> torch.Tensor:
    """CG-SENSE (least squares by conjugate gradient): ``(N, C, ...)`` -> ``(N, H, W)``
    magnitude; works on any operator with ``adjoint`` and ``normal``."""
    x = cg_sense(y, op, lamda=lamda, max_iter=max_iter)
    return x[:, 0].abs()


#: Baselines by name (``run_baseline`` and the CLIs use these names).
BASELINES = {"zero-filled": zero_filled, "l1-wavelet": l1_wavelet, "tv": total_variation,
             "sense": sense, "l1-wavelet-fista": l1_wavelet_fista}


def baseline_images(name: str, y: torch.Tensor, op, **options) -> torch.Tensor:
    """The image a baseline solves for, before its magnitude: ``(N, H, W)`` complex (real for
    real-domain operators); ``zero-filled`` is the adjoint ``Φ^H y``.  What a k-space
    prediction (:mod:`mri_unfold.auto_lambda`) needs."""
    if name in ("l1-wavelet", "tv"):
        return _sigpy_images(y, op, name, options.get("lamda"), options.get("max_iter"))
    if name == "l1-wavelet-fista":
        return _fista_images(y, op, **options)
    if name == "sense":
        return cg_sense(y, op, **options)[:, 0]
    if name == "zero-filled":
        return op.adjoint(y)[:, 0]
    raise ValueError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")


def run_baseline(name: str, y: torch.Tensor, op, **options) -> torch.Tensor:
    """Run a baseline by name (``zero-filled``, ``l1-wavelet``, ``tv``, ``sense``) ->
    ``(N, H, W)`` magnitude."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
    return BASELINES[name](y, op, **options)
