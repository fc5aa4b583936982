"""Inputs of 3-D reconstruction: NIfTI volumes simulated into 3-D k-space, 3-D raw scans.

* :class:`VolumeSettings` — how a 3-D scan is simulated and reconstructed: readout axis,
  coils, ky–kz mask options (ACS block, elliptical scanning, partial Fourier), coil maps,
  streaming chunk;
* :func:`kykz_mask` — the ky–kz mask of a :class:`~mri_unfold.reconstruct.MaskSpec` (a
  :func:`~mri_unfold.masks.kykz.make_kykz_mask` kind, or a mask file of the scan's
  ``(KY, KZ)`` shape);
* :func:`reconstruct_nifti_3d` — a NIfTI volume simulated into 3-D k-space in its own voxel
  grid (:class:`~mri_unfold.data.simulate3d.SimulatedVolume`, readout along
  ``readout_axis``) and reconstructed whole (:func:`reconstruct_scan`);
* :func:`reconstruct_scan` — a 3-D scan with a network (readout positions, streamed) or a
  classical method (``zero-filled`` streamed; ``sense``, ``l1-wavelet``, ``tv`` solved in
  3-D);
* :func:`read_scan` / :func:`reconstruct_raw_3d` — the slabs of a 3-D raw scan (ISMRMRD,
  twix, BART; :mod:`mri_unfold.data.raw_volumes`), decoupled along the readout, each
  reconstructed and stacked along ``z`` when they are contiguous.

The results are :class:`~mri_unfold.reconstruct.volume3d.VolumeResult` volumes ``(X, Y, Z)``
in the readout-first order; for a NIfTI input ``source`` is the volume read along the
readout axis, so the writers put every voxel back where it came from (same affine,
orientation and voxel order).  Errors name the file and never a command-line option.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import masks
from ..data import NiftiVolume
from ..data.espirit import EspiritSettings
from ..data.simulate3d import SimulatedVolume
from ..data.raw_volumes import read_volumes
from ..data.volume3d import DecoupledVolume, ReadoutPositions
from ..errors import DataFileError, InvalidValue, UserError
from ..masks.kykz import make_kykz_mask
from .classical3d import classical_3d
from .inputs import MaskSpec
from .volume3d import COIL_MAPS, VolumeResult, reconstruct_positions

__all__ = ["VolumeSettings", "kykz_mask", "reconstruct_nifti_3d", "reconstruct_scan",
           "read_scan", "reconstruct_raw_3d"]


@dataclass(frozen=True)
class VolumeSettings:
    """How a 3-D scan is simulated and reconstructed.

    Attributes:
        readout_axis: the NIfTI array axis of the readout (``kx``); the other two, in
            order, are ``ky`` and ``kz``.
        coils: simulated birdcage coils (1: single coil).
        acs / elliptical / partial_fourier: ky–kz mask options
            (:func:`~mri_unfold.masks.kykz.make_kykz_mask`).
        maps: coil maps (:data:`~mri_unfold.reconstruct.volume3d.COIL_MAPS`).
        max_phase / noise_std / sim_seed: the simulation's smooth phase peak, noise and seed.
        chunk: readout positions in memory at once.
        espirit_crop / espirit_cache: ESPIRiT eigenvalue crop and cache folder.
    """

    readout_axis: int = 0
    coils: int = 8
    acs: tuple[int, int] = (24, 24)
    elliptical: bool = False
    partial_fourier: float = 1.0
    maps: str = "espirit"
    max_phase: float = math.pi
    noise_std: float = 0.0
    sim_seed: int = 0
    chunk: int = 32
    espirit_crop: float = 0.95
    espirit_cache: str | None = None

    def __post_init__(self):
        if self.readout_axis not in (0, 1, 2):
            raise InvalidValue(f"the readout axis must be 0, 1 or 2, got {self.readout_axis!r}")
        if self.coils < 1:
            raise InvalidValue(f"coils must be >= 1, got {self.coils}")
        if self.chunk < 1:
            raise InvalidValue(f"the chunk of readout positions must be >= 1, got {self.chunk}")
        if self.maps not in COIL_MAPS:
            raise InvalidValue(f"coil maps must be one of {', '.join(COIL_MAPS)}, got "
                               f"{self.maps!r}")
        if self.noise_std < 0:
            raise InvalidValue(f"noise_std must be >= 0, got {self.noise_std}")

    @property
    def espirit(self) -> EspiritSettings:
        return EspiritSettings(crop=self.espirit_crop)


def kykz_mask(mask: MaskSpec, shape: tuple[int, int], settings: VolumeSettings,
              where: str) -> np.ndarray:
    """The ``(KY, KZ)`` float32 mask of ``mask`` for a scan of ky–kz ``shape``.

    Raises:
        UserError naming ``where``: a mask file whose ky–kz shape does not match, an empty
            mask, a kind that cannot make the mask.
    """
    if mask.array is not None or mask.file is not None:
        m = (np.asarray(mask.array, np.float32) if mask.array is not None else
             np.asarray(masks.load_mask(mask.file, layout=mask.layout, key=mask.key),
                        np.float32))
        src = mask.file or "the checkpoint's mask"
        if m.shape != tuple(shape):
            raise UserError(f"{src}: the mask's ky-kz shape {m.shape} does not match the "
                            f"{where} scan's (KY, KZ) = {tuple(shape)}")
        if not m.any():
            raise UserError(f"{src}: the mask samples nothing (all zero)")
        return m
    if mask.center_fraction is not None:
        raise UserError("a ky-kz mask's fully sampled block is its ACS size, not a centre "
                        "fraction")
    try:
        return make_kykz_mask(mask.kind, tuple(shape), acceleration=mask.acceleration,
                              acs=settings.acs, elliptical=settings.elliptical,
                              partial_fourier=settings.partial_fourier, seed=mask.seed).mask
    except (ValueError, TypeError) as e:
        raise UserError(f"ky-kz mask {mask.kind!r} for {where} ({shape[0]}x{shape[1]}): "
                        f"{e}") from e


def reconstruct_scan(readouts: ReadoutPositions, model=None, *, method: str | None = None,
                     settings: VolumeSettings = VolumeSettings(), complex_model: bool = True,
                     batch_size: int = 8, device=None, progress: bool = True,
                     keep_complex: bool = False, pad_last_batch: bool = False,
                     auto_compile: bool = False) -> VolumeResult:
    """A 3-D scan through a network (readout positions batched and streamed) or a classical
    method (``zero-filled`` streamed, the others in 3-D) — the module doc."""
    if model is not None:
        return reconstruct_positions(
            readouts, model, maps=settings.maps, real_input=not complex_model,
            batch_size=batch_size, chunk=settings.chunk, device=device, progress=progress,
            espirit=settings.espirit, espirit_cache=settings.espirit_cache,
            keep_complex=keep_complex, pad_last_batch=pad_last_batch,
            auto_compile=auto_compile)
    if method == "zero-filled":
        return reconstruct_positions(readouts, method=method, chunk=settings.chunk,
                                     progress=progress, keep_complex=keep_complex)
    return classical_3d(readouts, method or "zero-filled", maps=settings.maps,
                        espirit=settings.espirit, espirit_cache=settings.espirit_cache,
                        chunk=settings.chunk, keep_complex=keep_complex, progress=progress)


def reconstruct_nifti_3d(path: str | os.PathLike, model=None, mask: MaskSpec | None = None, *,
                         method: str | None = None, settings: VolumeSettings = VolumeSettings(),
                         complex_model: bool = True, **options) -> VolumeResult:
    """Simulate a NIfTI volume's 3-D scan and reconstruct it (module doc; SIMULATION).

    The volume (3-D, or 4-D with one volume) is read with the readout along
    ``settings.readout_axis``; ``options`` go to :func:`reconstruct_scan`.

    Raises:
        UserError / DataFileError naming the file: several volumes, an all-zero or complex
            volume with a real-domain network, no mask, a mask of another ky–kz shape.
    """
    path = Path(path)
    nv = NiftiVolume(path, axis=settings.readout_axis)
    if nv.num_volumes > 1:
        raise UserError(f"{path}: 4-D NIfTI with {nv.num_volumes} volumes; give a 3-D volume "
                        "(or a 4-D file with one volume)")
    if mask is None:
        raise UserError(f"{path}: a 3-D simulation needs a ky-kz mask (a kind and an "
                        "acceleration, or a mask file)")
    vol = nv.slices()
    if nv.is_complex and model is not None and not complex_model:
        raise UserError(f"{path}: the volume is complex-valued; reconstructing it needs a "
                        "complex-domain model (this one works on real images)")
    if settings.coils > 1 and model is not None and not complex_model:
        raise UserError(f"{path}: a {settings.coils}-coil simulation needs a complex-domain "
                        "network (this one works on real single-coil images); simulate one "
                        "coil")
    m = kykz_mask(mask, vol.shape[1:], settings, path.name)
    meta_seed = mask.seed if mask.file is None and mask.array is None else None
    try:
        sim = SimulatedVolume(vol, m, coils=settings.coils, seed=settings.sim_seed,
                              max_phase=settings.max_phase if complex_model else 0.0,
                              noise_std=settings.noise_std, fname=path.name,
                              mask_seed=meta_seed)
    except ValueError as e:
        raise UserError(f"{path}: {e}") from e
    result = reconstruct_scan(sim, model, method=method, settings=settings,
                              complex_model=complex_model, **options)
    result.source = nv
    result.info.update({"input": str(path), "readout_axis": settings.readout_axis,
                        "kykz_shape": tuple(int(s) for s in vol.shape[1:]),
                        "coils": settings.coils,
                        "mask": mask.label, "mask_seed": meta_seed,
                        "mask_seed_source": "the mask seed option" if meta_seed is not None
                        else None})
    return result


def read_scan(kind: str, path: str | os.PathLike, mask: MaskSpec | None,
              settings: VolumeSettings, prewhiten: bool = True) -> list[DecoupledVolume]:
    """The slabs of a 3-D raw scan as readout positions, with an optional retrospective
    ky–kz ``mask`` on top of the measured sampling.

    Raises:
        UserError / DataFileError naming the file: not a 3-D scan, several repetitions or
            contrasts, a mask of another ky–kz shape, an undersampled readout.
    """
    path = Path(path)
    vols = read_volumes(kind, path, prewhiten)
    reps = {(v.metadata.extras.get("repetition", 0), v.metadata.extras.get("contrast", 0))
            for v in vols}
    if len(reps) > 1:
        raise DataFileError(f"{path}: {len(reps)} repetitions/contrasts of the 3-D scan; "
                            "reconstructing one volume per repetition or echo is not supported")
    out = []
    for v in vols:
        m, seed = None, None
        if mask is not None:
            m = kykz_mask(mask, v.shape[1:], settings, path.name)
            seed = mask.seed if mask.file is None and mask.array is None else None
        out.append(DecoupledVolume(v, m, mask_seed=seed))
    return out


def _stack_slabs(path: Path, slabs: list[DecoupledVolume], results: list[VolumeResult]
                 ) -> VolumeResult:
    """Slab results stacked along ``z`` (slab order), refused when the slabs' geometry says
    they overlap or leave gaps."""
    first = results[0]
    if len({r.reconstruction.shape[:2] for r in results}) > 1:
        raise DataFileError(f"{path}: slabs of different sizes cannot form one volume")
    affines = [r.info.get("affine") for r in results]
    if all(a is not None for a in affines):
        a0, offset = np.asarray(affines[0]), 0
        for r, a in zip(results, affines):
            gap = np.asarray(a)[:3, 3] - (a0[:3, 3] + a0[:3, 2] * offset)
            if np.linalg.norm(gap) > 1e-3 * np.linalg.norm(a0[:3, 2]):
                raise DataFileError(f"{path}: slab {len(results)} slabs overlap or leave gaps "
                                    f"(slab off by {np.linalg.norm(gap):.2f} mm); multi-slab "
                                    "scans are stacked only when contiguous")
            offset += r.reconstruction.shape[2]
    cat = lambda name: None if getattr(first, name) is None else np.concatenate(  # noqa: E731
        [getattr(r, name) for r in results], axis=2)
    out = VolumeResult(cat("reconstruction"), cat("zero_filled"), cat("target"),
                       complex_image=cat("complex_image"))
    out.info = dict(first.info)
    out.info["slabs"] = len(results)
    out.info["volume_shape"] = tuple(out.reconstruction.shape)
    return out


def reconstruct_raw_3d(kind: str, path: str | os.PathLike, model=None, *,
                       mask: MaskSpec | None = None, method: str | None = None,
                       settings: VolumeSettings = VolumeSettings(), complex_model: bool = True,
                       prewhiten: bool = True, **options) -> VolumeResult:
    """A 3-D raw scan reconstructed whole (module doc); ``options`` go to
    :func:`reconstruct_scan`.  ``source`` is ``None``: the volume is written with the scan's
    affine in the readout-first order ``(X, Y, Z)``."""
    path = Path(path)
    slabs = read_scan(kind, path, mask, settings, prewhiten)
    if model is not None and not any(s.metadata.undersampled for s in slabs):
        raise UserError(f"{path}: the 3-D k-space is fully sampled; give a ky-kz mask to "
                        "undersample it")
    results = [reconstruct_scan(s, model, method=method, settings=settings,
                                complex_model=complex_model, **options) for s in slabs]
    result = results[0] if len(results) == 1 else _stack_slabs(path, slabs, results)
    result.info.update({"input": str(path), "format": kind, "coils": slabs[0].num_coils,
                        "kykz_shape": slabs[0].shape[1:]})
    return result

