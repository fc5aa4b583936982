"""ESPIRiT coil sensitivities from the fully sampled k-space centre, cached on disk.

:func:`espirit_maps` wraps :class:`sigpy.mri.app.EspiritCalib`.  sigpy's centred FFT
(``ifftshift -> fft(norm="ortho") -> fftshift``) is the same as :mod:`mri_unfold.fft`'s
``"centered"`` layout, so the maps line up with
:class:`mri_unfold.operators.MultiCoilFourier` as they are (checked in the tests).

Only the calibration region — a centred ``calib x calib`` square (sigpy's crop: start
``n // 2 - calib // 2``) — is used; ``calib`` is clamped to the largest fully sampled
centred square of the mask, so maps computed from undersampled k-space equal those from
the fully sampled data.

:class:`EspiritCache` stores each slice's maps as ``.npy`` (written atomically) under a key
made of the source file's path, modification time and size, the slice, the k-space shape,
the effective calibration width and the settings — changing any of them recomputes.
Samples without a source file (simulated) are keyed by a hash of their calibration data.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_output
from ..errors import InvalidValue
from ..memory import require_memory
from .errors import DataFileError
from .samples import KSpaceSample

__all__ = ["EspiritSettings", "espirit_maps", "espirit_maps_3d", "espirit_3d_bytes", "acs_width",
           "EspiritCache", "EstimateCoilMaps"]


@dataclass(frozen=True)
class EspiritSettings:
    """Parameters of :class:`sigpy.mri.app.EspiritCalib` (sigpy's defaults)."""

    calib_width: int = 24
    thresh: float = 0.02
    kernel_width: int = 6
    crop: float = 0.95
    max_iter: int = 100


def acs_width(mask) -> int:
    """Side of the largest fully sampled centred square of a ``(H, W)`` mask (sigpy centring)."""
    m = np.asarray(torch.as_tensor(mask).cpu()) != 0
    h, w = m.shape
    best = 0
    for s in range(1, min(h, w) + 1):
        r0, c0 = h // 2 - s // 2, w // 2 - s // 2
        if not m[r0:r0 + s, c0:c0 + s].all():
            break
        best = s
    return best


def _effective_calib(kspace_shape, mask, settings: EspiritSettings, where: str) -> int:
    acs = acs_width(mask) if mask is not None else min(kspace_shape[-2:])
    calib = min(settings.calib_width, acs)
    if calib <= settings.kernel_width:
        raise DataFileError(f"{where}: the fully sampled k-space centre is only {acs} wide; ESPIRiT "
                         f"needs calib_width > kernel_width={settings.kernel_width} (use a larger "
                         "center_fraction or a smaller kernel_width)")
    return calib


def espirit_maps(kspace, settings: EspiritSettings = EspiritSettings(), mask=None,
                 where: str = "k-space") -> np.ndarray:
    """ESPIRiT maps of one slice.

    Args:
        kspace: ``(C, H, W)`` complex k-space (numpy or tensor), centred layout; may be
            undersampled if ``mask`` is given.
        settings: :class:`EspiritSettings`.
        mask: optional ``(H, W)`` 0/1 mask: the calibration width is clamped to its fully
            sampled centre.
        where: text naming the data in error messages.

    Returns:
        ``(C, H, W)`` complex64 numpy array (phase relative to coil 0, zero outside the
        ``crop`` eigenvalue threshold).
    """
    import sigpy.mri.app

    k = np.asarray(torch.as_tensor(kspace).detach().cpu().numpy(), dtype=np.complex64)
    if k.ndim != 3:
        raise ValueError(f"{where}: espirit_maps expects k-space (C, H, W), got {k.shape}")
    calib = _effective_calib(k.shape, mask, settings, where)
    app = sigpy.mri.app.EspiritCalib(k, calib_width=calib, thresh=settings.thresh,
                                     kernel_width=settings.kernel_width, crop=settings.crop,
                                     max_iter=settings.max_iter, show_pbar=False)
    return np.asarray(app.run(), dtype=np.complex64)


def espirit_3d_bytes(num_coils: int, shape) -> int:
    """Memory :class:`sigpy.mri.app.EspiritCalib` needs for 3-D maps of ``shape``
    ``(X, Y, Z)``: the image-domain kernel matrices ``(X, Y, Z, C, C)`` and a few
    ``(C, X, Y, Z)`` arrays, complex64."""
    voxels = int(np.prod([int(s) for s in shape], dtype=np.float64))
    return 8 * voxels * (num_coils * num_coils + 6 * num_coils)


def espirit_maps_3d(kspace, acs, settings: EspiritSettings = EspiritSettings(),
                    where: str = "k-space") -> np.ndarray:
    """3-D ESPIRiT maps of a 3-D scan from its ``kx × ky × kz`` calibration cube.

    Args:
        kspace: ``(C, X, Y, Z)`` complex 3-D k-space, centred layout (only the central
            calibration cube is read: the rest may be zero).
        acs: the fully sampled ``(ACS_Y, ACS_Z)`` ky–kz block (every ``kx`` is sampled):
            the cube's side is ``min(calib_width, ACS_Y, ACS_Z, X)``.
        settings: :class:`EspiritSettings` (as the 2-D maps).
    Returns:
        ``(C, X, Y, Z)`` complex64 (phase relative to coil 0).
    Raises:
        InvalidValue: a calibration cube with fewer calibration rows than kernel columns
            (the kernel subspace is then not determined).
        InsufficientMemory: the maps' kernel matrices would not fit (before allocating).
    """
    import sigpy.mri.app

    k = np.asarray(torch.as_tensor(kspace).detach().cpu().numpy(), dtype=np.complex64)
    if k.ndim != 4:
        raise ValueError(f"{where}: espirit_maps_3d expects k-space (C, X, Y, Z), got {k.shape}")
    calib = min(settings.calib_width, int(acs[0]), int(acs[1]), k.shape[1])
    rows, cols = (calib - settings.kernel_width + 1) ** 3, k.shape[0] * settings.kernel_width ** 3
    if calib <= settings.kernel_width or rows < cols:
        raise InvalidValue(f"{where}: the 3-D calibration cube is only {calib} wide: "
                           f"{max(rows, 0)} calibration rows for {cols} kernel columns "
                           f"({k.shape[0]} coils x {settings.kernel_width}^3); 3-D ESPIRiT "
                           "needs a larger ACS block and readout (or maps per readout position)")
    require_memory(espirit_3d_bytes(k.shape[0], k.shape[1:]),
                   f"{where}: 3-D ESPIRiT maps of a {k.shape[0]}-coil "
                   f"{'x'.join(map(str, k.shape[1:]))} volume (use maps per readout position)")
    app = sigpy.mri.app.EspiritCalib(k, calib_width=calib, thresh=settings.thresh,
                                     kernel_width=settings.kernel_width, crop=settings.crop,
                                     max_iter=settings.max_iter, show_pbar=False)
    return np.asarray(app.run(), dtype=np.complex64)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)


class EspiritCache:
    """On-disk cache of per-slice ESPIRiT maps.

    Args:
        cache_dir: folder for the ``.npy`` files (created if missing).
        settings: :class:`EspiritSettings` (part of the key).

    Attributes:
        hits / misses: counters, handy for checking that training does not recompute.
    """

    def __init__(self, cache_dir: str | Path, settings: EspiritSettings = EspiritSettings()):
        self.dir = Path(cache_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataFileError(f"{self.dir}: cannot create the ESPIRiT cache folder ({e})") from e
        self.settings = settings
        self.hits = 0
        self.misses = 0

    def key(self, sample: KSpaceSample) -> str:
        """Hex key of a sample's maps (file path, mtime, size, slice, shape, settings)."""
        meta = sample.metadata
        calib = _effective_calib(sample.kspace.shape, sample.mask, self.settings,
                                 f"{meta.fname} slice {meta.slice}")
        parts = {"settings": dataclasses.asdict(self.settings), "calib": calib,
                 "shape": list(sample.kspace.shape), "slice": meta.slice,
                 "cropped_from": list(meta.extras.get("cropped_from", ()))}
        path = meta.extras.get("path")
        if path and Path(path).is_file():
            st = Path(path).stat()
            parts.update(path=str(Path(path).resolve()), mtime_ns=st.st_mtime_ns, size=st.st_size)
        else:  # no source file: key by the calibration data itself
            k = sample.kspace.detach().cpu().numpy().astype(np.complex64)
            h, w = k.shape[-2:]
            region = k[:, h // 2 - calib // 2: h // 2 - calib // 2 + calib,
                       w // 2 - calib // 2: w // 2 - calib // 2 + calib]
            parts["acs_sha256"] = hashlib.sha256(np.ascontiguousarray(region).tobytes()).hexdigest()
        blob = json.dumps(parts, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:32]

    def path_for(self, sample: KSpaceSample) -> Path:
        stem = Path(sample.metadata.fname).stem or "sample"
        return self.dir / f"{stem}_s{sample.metadata.slice}_{self.key(sample)}.npy"

    def get(self, sample: KSpaceSample) -> np.ndarray:
        """Maps ``(C, H, W)`` complex64 for ``sample``: loaded if cached, else computed and saved."""
        path = self.path_for(sample)
        if path.is_file():
            try:
                maps = np.load(path, allow_pickle=False)
                if maps.shape == tuple(sample.kspace.shape):
                    self.hits += 1
                    return maps
            except (OSError, ValueError):
                pass  # unreadable cache entry: recompute and overwrite
        self.misses += 1
        meta = sample.metadata
        maps = espirit_maps(sample.kspace, self.settings, mask=sample.mask,
                            where=f"{meta.fname} slice {meta.slice}")
        _atomic_save_npy(path, maps)
        return maps


class EstimateCoilMaps:
    """Transform adding ESPIRiT ``coil_maps`` ``(C, H, W)`` complex64 to a sample.

    Args:
        cache_dir: cache folder (:class:`EspiritCache`); ``None`` computes every time.
        settings: :class:`EspiritSettings`.
    """

    def __init__(self, cache_dir: str | Path | None = None,
                 settings: EspiritSettings = EspiritSettings()):
        self.settings = settings
        self.cache = None if cache_dir is None else EspiritCache(cache_dir, settings)

    def __call__(self, sample: KSpaceSample) -> KSpaceSample:
        if self.cache is not None:
            maps = self.cache.get(sample)
        else:
            meta = sample.metadata
            maps = espirit_maps(sample.kspace, self.settings, mask=sample.mask,
                                where=f"{meta.fname} slice {meta.slice}")
        return sample.replace(coil_maps=torch.from_numpy(maps).to(sample.kspace.device))
