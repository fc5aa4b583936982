"""Classical whole-volume reconstruction of 3-D scans with the true 3-D operator.

:func:`classical_3d` gathers a scan's readout positions into its 3-D k-space
``(C, KX, KY, KZ)`` (memory checked first), builds
:class:`~mri_unfold.operators.CartesianFourier3D` with 3-D coil maps and solves

* ``"sense"`` — 3-D CG-SENSE, ``min_x ‖Φ x − y‖²`` by conjugate gradient
  (:func:`mri_unfold.solvers.cg_sense`, 30 iterations);
* ``"l1-wavelet"`` — :class:`sigpy.mri.app.L1WaveletRecon` with its 3-D Daubechies-4
  wavelets, ``min_x ½‖B F₃ S x − y‖² + λ‖Ψ₃ x‖₁``;
* ``"tv"`` — :class:`sigpy.mri.app.TotalVariationRecon`, 3-D finite differences;
* ``"zero-filled"`` — the RSS of the coil volumes (equal to the per-position one).

As for the 2-D baselines (:mod:`mri_unfold.baselines`) λ is relative to a volume whose
zero-filled magnitude peaks at 1 (the k-space is divided by that peak first and the result
multiplied back) and the defaults are :data:`~mri_unfold.baselines.DEFAULT_LAMBDA`.  The
coil maps are the per-position ESPIRiT maps stacked along ``x`` (their phase is relative to
coil 0 at every position, so they form one 3-D map), 3-D ESPIRiT maps, or given maps.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import metrics
from ..baselines import DEFAULT_LAMBDA, DEFAULT_MAX_ITER
from ..data.espirit import EspiritSettings, EstimateCoilMaps, acs_width
from ..data.volume3d import ReadoutPositions
from ..errors import UserError
from ..fft import fftn, ifftn
from ..image_ops import center_crop, rss
from ..memory import require_memory
from ..operators import CartesianFourier3D
from ..solvers import cg_sense
from .volume3d import VolumeResult, espirit_3d_maps, espirit_or_error, position_metrics

__all__ = ["CLASSICAL_3D", "classical_3d", "gather_kspace"]

#: Methods :func:`classical_3d` solves in 3-D.
CLASSICAL_3D = ("zero-filled", "sense", "l1-wavelet", "tv")


def gather_kspace(readouts: ReadoutPositions, chunk: int = 32, *, maps: str | None = None,
                  espirit: EspiritSettings = EspiritSettings(), espirit_cache=None,
                  progress: bool = False):
    """The scan's 3-D k-space ``(C, X, Y, Z)`` complex64 (centred, ``x`` transformed back),
    its reference ``(X, Y, Z)`` (or ``None``) and its coil maps ``(C, X, Y, Z)`` for ``maps``
    ``"espirit"`` (per position, stacked) or ``"given"`` (``None`` otherwise)."""
    c, (x, y, z) = readouts.num_coils, readouts.shape
    copies = 2 if maps in ("espirit", "given") else 1
    require_memory(8 * c * x * y * z * (copies + 4), f"{readouts.fname}: a {c}-coil "
                   f"{x}x{y}x{z} scan solved in 3-D (k-space, maps and the solver's work "
                   "arrays)")
    hybrid = torch.zeros(c, x, y, z, dtype=torch.complex64)
    cmaps = torch.zeros(c, x, y, z, dtype=torch.complex64) if copies == 2 else None
    target = None
    estimate = EstimateCoilMaps(espirit_cache, espirit)
    with tqdm(total=x, desc="gathering k-space", disable=not progress, leave=False) as bar:
        for pos in readouts.chunks(chunk):
            for s in readouts.samples(pos):
                i = s.metadata.slice
                hybrid[:, i] = s.kspace * float(s.metadata.scale)
                if s.target is not None:
                    if target is None:
                        target = torch.zeros(x, y, z)
                    target[i] = s.target * float(s.metadata.scale)
                if maps == "given":
                    if s.coil_maps is None:
                        raise UserError(f"{readouts.fname}: coil maps 'given' but the scan "
                                        "carries none; use ESPIRiT maps")
                    cmaps[:, i] = s.coil_maps
                elif maps == "espirit" and bool(s.kspace.abs().amax() > 0):
                    cmaps[:, i] = espirit_or_error(estimate, s).coil_maps
            bar.update(len(pos))
    return fftn(hybrid, dims=(1,)), target, cmaps


def _sigpy(method: str, k: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor, lamda,
           max_iter) -> torch.Tensor:
    import sigpy.mri.app as app  # noqa: PLC0415  (slow import; only when used)

    cls = app.L1WaveletRecon if method == "l1-wavelet" else app.TotalVariationRecon
    weights = np.broadcast_to(mask.numpy()[None, None], k.shape).astype(np.float32)
    x = cls(k.numpy(), maps.numpy(), lamda, weights=weights, max_iter=max_iter,
            show_pbar=False).run()
    return torch.from_numpy(np.asarray(x, np.complex64))


def classical_3d(readouts: ReadoutPositions, method: str, *, maps: str = "espirit",
                 lamda: float | None = None, max_iter: int | None = None,
                 espirit: EspiritSettings = EspiritSettings(), espirit_cache=None,
                 chunk: int = 32, keep_complex: bool = False,
                 progress: bool = True) -> VolumeResult:
    """Solve a 3-D scan with a classical method in 3-D (module doc).

    Args:
        readouts: the scan (its ky–kz mask is the 3-D operator's mask for every ``kx``).
        method: one of :data:`CLASSICAL_3D`.
        maps: ``"espirit"``, ``"espirit-3d"`` or ``"given"`` (multi-coil).
        lamda / max_iter: λ (relative to a zero-filled peak of 1) and iterations (defaults:
            :data:`~mri_unfold.baselines.DEFAULT_LAMBDA`, 100 / 300 / 30 for sense).
    Returns:
        :class:`~mri_unfold.reconstruct.volume3d.VolumeResult` ``(X, y, z)``.
    Raises:
        UserError: an unknown method; InsufficientMemory: the 3-D arrays do not fit.
    """
    if method not in CLASSICAL_3D:
        raise UserError(f"unknown 3-D method {method!r}; valid: {', '.join(CLASSICAL_3D)}")
    multicoil = readouts.num_coils > 1 and method != "zero-filled"
    k, target, cmaps = gather_kspace(readouts, chunk, maps=maps if multicoil else None,
                                     espirit=espirit, espirit_cache=espirit_cache,
                                     progress=progress)
    coil_imgs = ifftn(k)
    zf = rss(coil_imgs, dim=0) if k.shape[0] > 1 else coil_imgs[0].abs()
    scale = float(zf.max()) or 1.0
    if method == "zero-filled":
        img = zf.to(torch.complex64)
    else:
        if multicoil and maps == "espirit-3d":
            side = acs_width(readouts.mask)
            cmaps = espirit_3d_maps(readouts, (side, side), espirit, chunk)
        mps = cmaps if multicoil else torch.ones((1, *k.shape[1:]), dtype=torch.complex64)
        y = k / scale
        if method == "sense":
            op = CartesianFourier3D(readouts.mask, mps)
            img = cg_sense(y[None], op, max_iter=max_iter or 30)[0, 0] * scale
        else:
            lam = DEFAULT_LAMBDA[method] if lamda is None else float(lamda)
            iters = DEFAULT_MAX_ITER[method] if max_iter is None else int(max_iter)
            img = _sigpy(method, y, readouts.mask, mps, lam, iters) * scale
    crop = readouts.crop
    img = center_crop(img, crop)
    zf = center_crop(zf, crop).numpy().astype(np.float32)
    recon = img.abs().numpy().astype(np.float32)
    result = VolumeResult(recon, zf, None, complex_image=img.numpy().astype(np.complex64)
                          if keep_complex else None)
    if target is not None:
        t = center_crop(target, crop).numpy().astype(np.float32)
        result.target = t
        result.metrics = {method: metrics.quality(t, recon),
                          "zero-filled": metrics.quality(t, zf)}
        result.positions = {method: position_metrics(t, recon),
                            "zero-filled": position_metrics(t, zf)}
    meta = readouts.metadata
    result.info = {"slices": len(readouts), "positions": len(readouts), "empty_positions": 0,
                   "crop_size": tuple(crop), "volume_shape": readouts.shape,
                   "sampled_fraction": float(readouts.mask.float().mean()),
                   "mask_seed": meta.mask_seed,
                   "mask_seed_source": meta.extras.get("mask_seed_source"),
                   "coil_maps": maps if multicoil else None, "solved_in": "3-D",
                   "affine": meta.extras.get("affine")}
    return result
