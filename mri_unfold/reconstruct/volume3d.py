"""Whole 3-D scans through the one pipeline: readout positions streamed in chunks.

A 3-D scan (:class:`~mri_unfold.data.volume3d.ReadoutPositions`: stored and decoupled, or
simulated from an image volume) is reconstructed ``chunk`` readout positions at a time:

1. the positions' ky–kz samples (:meth:`~mri_unfold.data.volume3d.ReadoutPositions.samples`);
2. coil maps for multi-coil data — ``"espirit"``: ESPIRiT of each position's ky–kz ACS
   block (:class:`~mri_unfold.data.EstimateCoilMaps`, optionally cached), ``"espirit-3d"``:
   slices of 3-D ESPIRiT maps of the whole scan (:func:`espirit_3d_maps`), ``"given"``: the
   samples' own maps (a simulation's true sensitivities);
3. normalisation by each position's zero-filled maximum (as every 2-D k-space slice);
4. the network (``model(y, op)`` batched over positions, :func:`reconstruct_volume`) or a
   classical method per position (:func:`classical_volume`), and the zero-filled image;
5. magnitude (and, on request, the complex image), cropped to the recon size, scaled back
   and written into the ``(X, y, z)`` output volumes.

Only one chunk's k-space, maps and network activations are in memory at a time, so scans
larger than the memory of a whole 3-D k-space still run.  Positions without signal (an
all-zero ACS block) are left zero.  With a reference the result has the per-volume metrics
(PSNR over the volume, SSIM averaged over positions, data range the volume maximum) and
per-position PSNR/SSIM with their mean and 95 % confidence interval over the positions whose
reference reaches :data:`SIGNAL_FRACTION` of the volume maximum.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import metrics
from ..baselines import zero_filled
from ..data.espirit import EspiritSettings, EstimateCoilMaps, acs_width, espirit_maps_3d
from ..data.samples import collate_samples
from ..data.transforms import Normalize
from ..data.volume3d import ReadoutPositions
from ..errors import UserError
from ..fft import fftn
from ..image_ops import center_crop
from ..operators import KSpaceOperatorFactory
from .pipeline import METHODS, ReconResult, classical_volume, reconstruct_volume

__all__ = ["COIL_MAPS", "VolumeResult", "reconstruct_positions", "espirit_3d_maps",
           "position_metrics", "SIGNAL_FRACTION", "espirit_or_error"]

#: Where multi-coil maps come from.
COIL_MAPS = ("espirit", "espirit-3d", "given")
#: Positions whose reference peaks below this fraction of the volume maximum are left out
#: of the per-position statistics (the empty edges of a head).
SIGNAL_FRACTION = 0.05


@dataclass
class VolumeResult(ReconResult):
    """A reconstructed 3-D scan: :class:`ReconResult` arrays ``(X, y, z)`` (readout first),
    plus ``complex_image`` ``(X, y, z)`` complex64 when asked for and ``positions``
    ``{method: {"psnr": [...], "ssim": [...], "positions": [...]}}``."""

    complex_image: np.ndarray | None = None
    positions: dict = field(default_factory=dict)


def espirit_3d_maps(readouts: ReadoutPositions, acs, settings: EspiritSettings,
                    chunk: int = 32) -> torch.Tensor:
    """3-D ESPIRiT maps ``(C, X, Y, Z)`` complex64 of a scan from its ky–kz ACS block over
    every ``kx``: the block is gathered from the readout positions chunk by chunk,
    transformed back along ``x`` and calibrated in 3-D (:func:`espirit_maps_3d`)."""
    x, y, z = readouts.shape
    ay, az = (int(a) for a in acs)
    ys = slice(y // 2 - ay // 2, y // 2 - ay // 2 + ay)       # sigpy's centring (acs_width)
    zs = slice(z // 2 - az // 2, z // 2 - az // 2 + az)
    block = torch.zeros(readouts.num_coils, x, ay, az, dtype=torch.complex64)
    for pos in readouts.chunks(chunk):
        for s in readouts.samples(pos):
            block[:, s.metadata.slice] = s.kspace[:, ys, zs]
    k = torch.zeros(readouts.num_coils, x, y, z, dtype=torch.complex64)
    k[:, :, ys, zs] = fftn(block, dims=(1,))
    return torch.from_numpy(espirit_maps_3d(k, (ay, az), settings, where=readouts.fname))


def espirit_or_error(estimate, sample):
    """``estimate(sample)`` with a too small calibration block as a :class:`UserError`."""
    try:
        return estimate(sample)
    except ValueError as e:
        raise UserError(str(e)) from e


def _prepare(samples, maps: str, maps_3d, needs_maps: bool, estimate):
    """Samples with coil maps and normalised; ``None`` for positions without signal."""
    out = []
    for s in samples:
        if not bool(s.kspace.abs().amax() > 0):
            out.append(None)
            continue
        if needs_maps:
            if maps == "espirit":
                s = espirit_or_error(estimate, s)
            elif maps == "espirit-3d":
                s = s.replace(coil_maps=maps_3d[:, s.metadata.slice].contiguous())
            elif s.coil_maps is None:
                raise UserError(f"{s.metadata.fname}: coil maps 'given' but the scan carries "
                                "none; use ESPIRiT maps")
            if not bool(s.coil_maps.abs().amax() > 0):
                out.append(None)
                continue
        out.append(Normalize("zero_filled_max")(s))
    return out


def position_metrics(target: np.ndarray, prediction: np.ndarray) -> dict:
    """Per-position PSNR/SSIM (data range the volume maximum) of ``(X, y, z)`` volumes over
    the positions with signal, and their :func:`~mri_unfold.metrics.ci95` statistics."""
    peak = float(target.max())
    keep = [i for i in range(len(target)) if target[i].max() >= SIGNAL_FRACTION * peak]
    psnr = [metrics.psnr(target[i], prediction[i], data_range=peak) for i in keep]
    ssim = [metrics.ssim(target[i], prediction[i], data_range=peak) for i in keep]
    out = {"positions": keep, "psnr": psnr, "ssim": ssim}
    for name, values in (("psnr", psnr), ("ssim", ssim)):
        mean, std, lo, hi = metrics.ci95(values)
        out[f"{name}_stats"] = {"mean": mean, "std": std, "ci_low": lo, "ci_high": hi,
                                "n": len(values)}
    return out


def reconstruct_positions(readouts: ReadoutPositions, model: torch.nn.Module | None = None, *,
                          method: str | None = None, maps: str = "espirit",
                          real_input: bool = False, batch_size: int = 8, chunk: int = 32,
                          device=None, progress: bool = True,
                          espirit: EspiritSettings = EspiritSettings(),
                          espirit_cache=None, maps_3d: torch.Tensor | None = None,
                          keep_complex: bool = False, pad_last_batch: bool = False,
                          auto_compile: bool = False) -> VolumeResult:
    """Reconstruct every readout position of a 3-D scan (module doc).

    Args:
        readouts: the scan's readout positions.
        model / method: a network ``model(y, op)`` or a classical method of :data:`METHODS`
            run per position (exactly one).
        maps: :data:`COIL_MAPS` (``maps_3d`` ``(C, X, Y, Z)`` for ``"espirit-3d"``; computed
            by :func:`espirit_3d_maps` when not given).
        real_input: the network reconstructs real images (single-coil only).
        batch_size: positions per network call; ``chunk``: positions in memory at once.
        espirit / espirit_cache: ESPIRiT settings and cache folder (``"espirit"``).
        keep_complex: also keep the complex image (``VolumeResult.complex_image``).
    Returns:
        :class:`VolumeResult` with ``(X, y, z)`` arrays (``y, z`` the recon size).
    Raises:
        UserError: neither or both of model and method, an unknown maps choice, a real-domain
            network on multi-coil data.
    """
    if (model is None) == (method is None):
        raise UserError("reconstructing a 3-D scan needs exactly one of a network or a method")
    if method is not None and method not in METHODS:
        raise UserError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    if maps not in COIL_MAPS:
        raise UserError(f"coil maps must be one of {', '.join(COIL_MAPS)}, got {maps!r}")
    multicoil = readouts.num_coils > 1
    if multicoil and real_input:
        raise UserError("this network works on real-valued images (single-coil); a "
                        f"{readouts.num_coils}-coil scan needs a complex-domain network")
    needs_maps = multicoil and method != "zero-filled"
    if needs_maps and maps == "espirit-3d" and maps_3d is None:
        side = acs_width(readouts.mask)
        maps_3d = espirit_3d_maps(readouts, (side, side), espirit, chunk)
    estimate = EstimateCoilMaps(espirit_cache, espirit)
    x, (h, w) = len(readouts), readouts.crop
    recon = np.zeros((x, h, w), np.float32)
    zf = np.zeros((x, h, w), np.float32)
    cplx = np.zeros((x, h, w), np.complex64) if keep_complex else None
    target = None
    factory = KSpaceOperatorFactory(real_input=real_input)
    empty = 0
    with tqdm(total=x, desc="readout positions", unit="position", disable=not progress,
              leave=False) as bar:
        for pos in readouts.chunks(chunk):
            raw = readouts.samples(pos)
            if raw[0].target is not None and target is None:
                target = np.zeros((x, h, w), np.float32)
            if target is not None:
                for s in raw:
                    target[s.metadata.slice] = center_crop(s.target, (h, w)).numpy() * \
                        float(s.metadata.scale)
            ready = [s for s in _prepare(raw, maps, maps_3d, needs_maps, estimate)
                     if s is not None]
            empty += len(raw) - len(ready)
            if ready:
                _run_chunk(ready, model, method, factory, recon, zf, cplx, batch_size, device,
                           pad_last_batch, auto_compile)
            bar.update(len(raw))
    result = VolumeResult(recon, zf, target, complex_image=cplx)
    label = "network" if model is not None else method
    if target is not None:
        result.metrics = {label: metrics.quality(target, recon),
                          "zero-filled": metrics.quality(target, zf)}
        result.positions = {label: position_metrics(target, recon),
                            "zero-filled": position_metrics(target, zf)}
    meta = readouts.metadata
    result.info = {"slices": x, "positions": x, "empty_positions": empty,
                   "crop_size": (h, w), "volume_shape": readouts.shape,
                   "sampled_fraction": float(readouts.mask.float().mean()),
                   "mask_seed": meta.mask_seed,
                   "mask_seed_source": meta.extras.get("mask_seed_source"),
                   "coil_maps": maps if needs_maps else None,
                   "affine": meta.extras.get("affine")}
    return result


def _run_chunk(samples, model, method, factory, recon, zf, cplx, batch_size, device,
               pad_last_batch, auto_compile) -> None:
    batch = collate_samples(samples)
    positions = [m.slice for m in batch.metadata]

    def op_factory(idx):
        return factory.for_batch(batch, idx)

    kspace = factory.measurements(batch)
    if model is not None:
        out = reconstruct_volume(kspace, model, op_factory, batch_size=batch_size,
                                 device=device, progress=False, pad_last_batch=pad_last_batch,
                                 auto_compile=auto_compile)
    else:
        out = classical_volume(kspace, op_factory, method, batch_size, progress=False)
    scale = batch.scale.numpy()[:, None, None]
    crop = batch.crop
    img = center_crop(torch.from_numpy(out), crop).numpy() * scale
    recon[positions] = np.abs(img)
    if cplx is not None:
        cplx[positions] = img.astype(np.complex64)
    zf[positions] = center_crop(zero_filled(kspace, op_factory(list(range(len(batch))))),
                                crop).numpy() * scale
