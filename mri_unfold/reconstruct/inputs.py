"""Inputs of the reconstruction pipeline: files -> prepared k-space slices -> results.

* :class:`MaskSpec` — how to undersample: a generated mask (kind, acceleration, centre
  fraction, seed) or a mask file in a given k-space layout;
* :func:`reconstruct_kspace_file` — every slice of a k-space file of any registered k-space
  source (:func:`reconstruct_fastmri` for fastMRI files), prepared by the k-space transform
  of training (mask, ESPIRiT maps, normalisation) and run through
  :func:`~mri_unfold.reconstruct.pipeline.reconstruct_samples` with a network or a classical
  method;
* :func:`reconstruct_nifti` — a NIfTI magnitude (or complex) volume: every slice is
  retrospectively undersampled (SIMULATION, :func:`mri_unfold.data.simulate_kspace`) with
  one seeded mask and reconstructed; the volume itself is the reference;
* :func:`reconstruct_image` — one 2-D image, simulated single-coil (``compare``, ``demo``).

Intensity handling: fastMRI k-space is normalised per slice by the maximum of its
zero-filled (RSS) image (the training convention) and scaled back; NIfTI volumes are
divided by the volume maximum (networks are trained on [0, 1] images) and scaled back.
Errors name the file and never a command-line option.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import masks
from ..data import ApplyMask, NiftiVolume, simulate_kspace, simulate_noncartesian
from ..data.sources import get_source, kspace_transform
from ..errors import UserError
from ..fft import LAYOUTS
from ..memory import require_memory
from ..operators import SingleCoilFourier
from .pipeline import Adapter, ReconResult, reconstruct_samples, reconstruct_volume
from .noncartesian import reconstruct_noncartesian_slices
from .trajectory import TrajectorySpec

__all__ = ["MaskSpec", "reconstruct_kspace_file", "reconstruct_raw_slices", "reconstruct_fastmri",
           "reconstruct_nifti", "reconstruct_image_volume", "reconstruct_image",
           "mask_of_checkpoint", "MASK_CHECKPOINT_KINDS", "BLOCK_CS_KINDS",
           "require_mri_checkpoint"]


@dataclass(frozen=True)
class MaskSpec:
    """How to undersample: a generated mask (``kind`` + ``acceleration``/``center_fraction``,
    ``seed``) or a mask file (``file``, stored in k-space ``layout``, read with
    :func:`mri_unfold.masks.load_mask`, returned centred).

    Raises:
        UserError: neither or both of ``kind``/``file``; a kind without acceleration; an
            unknown layout.
    """

    kind: str | None = None
    acceleration: float | None = None
    center_fraction: float | None = None
    file: str | None = None
    seed: int = 0
    layout: str = "centered"
    key: str | None = None
    array: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.array is not None:
            return
        if (self.kind is None) == (self.file is None):
            raise UserError("a mask needs either a kind (with an acceleration) or a mask file, "
                            "not both or neither")
        if self.kind is not None and self.acceleration is None:
            raise UserError(f"mask {self.kind!r}: needs an acceleration")
        if self.layout not in LAYOUTS:
            raise UserError(f"mask layout must be one of {', '.join(LAYOUTS)}, got "
                            f"{self.layout!r}")

    @property
    def label(self) -> str:
        return self.kind or (str(self.file) if self.file else "the checkpoint's mask")

    def make(self, shape: tuple[int, int]) -> np.ndarray:
        """The ``(H, W)`` float32 0/1 mask in the centred layout.

        Raises:
            UserError: a mask file whose shape differs from ``shape``; bad mask options.
        """
        if self.array is not None or self.file is not None:
            m = (np.asarray(self.array, np.float32) if self.array is not None else
                 np.asarray(masks.load_mask(self.file, layout=self.layout, key=self.key),
                            dtype=np.float32))
            where = self.file or "the checkpoint's mask"
            if m.shape != tuple(shape):
                raise UserError(f"{where}: mask shape {m.shape} does not match the "
                                f"k-space/slice shape {tuple(shape)}")
            if not m.any():
                raise UserError(f"{where}: the mask samples nothing (all zero)")
            return m
        kw = {"acceleration": self.acceleration, "seed": self.seed}
        if self.center_fraction is not None:
            kw["center_fraction"] = self.center_fraction
        try:
            return np.asarray(masks.make_mask(self.kind, tuple(shape), **kw).mask, np.float32)
        except ValueError as e:
            raise UserError(f"mask {self.kind!r}: {e}") from e

    def transform(self, shape: tuple[int, int]) -> ApplyMask:
        """The :class:`~mri_unfold.data.ApplyMask` for k-space of ``shape``: a file mask for
        every slice, or a generated mask seeded by ``seed`` and the file name (fastMRI's
        convention: one mask per volume)."""
        if self.array is not None or self.file is not None:
            return ApplyMask(mask=self.make(shape))
        return ApplyMask(self.kind, acceleration=self.acceleration,
                         center_fraction=self.center_fraction, base_seed=self.seed)


def reconstruct_kspace_file(path: str | os.PathLike, kind: str,
                            model: torch.nn.Module | None = None, *, method: str | None = None,
                            complex_model: bool = True, mask: MaskSpec | None = None,
                            batch_size: int = 8, device=None, progress: bool = True,
                            espirit_cache: str | os.PathLike | None = None,
                            espirit_crop: float = 0.95, pad_last_batch: bool = False,
                            auto_compile: bool = False,
                            read_options: dict | None = None,
                            adapt: Adapter | None = None,
                            method_options: dict | None = None) -> ReconResult:
    """Reconstruct every slice of a k-space file of any registered k-space source.

    The source (``kind``, e.g. from :func:`mri_unfold.data.detect_source`) reads the slices
    as stored; then, as for training (:func:`mri_unfold.data.sources.kspace_transform`): the
    retrospective ``mask`` if given, ESPIRiT coil maps for multi-coil data (not needed by
    ``zero-filled``, which combines coils by RSS), normalisation by the zero-filled maximum;
    then :func:`~mri_unfold.reconstruct.pipeline.reconstruct_samples`.

    Args:
        path: the file.
        kind: its registered k-space data source.
        model: a network, or None with ``method``.
        method: a classical method (:data:`~mri_unfold.reconstruct.pipeline.METHODS`).
        complex_model: whether ``model`` reconstructs complex images; a real-valued model
            (the CS-MRI setting of ISTA-Net+: the k-space of a real object) takes
            single-coil k-space only.
        mask: undersample retrospectively; ``None`` keeps the data's own sampling.
        espirit_cache / espirit_crop: ESPIRiT cache folder and eigenvalue crop (0 keeps the
            maps everywhere, useful for tiny calibration regions).
        read_options: the source's options for reading the file (e.g. a plain array's
            ``axes``); defaults for missing keys.
        batch_size / device / progress / pad_last_batch / auto_compile / adapt /
            method_options: see :func:`~mri_unfold.reconstruct.pipeline.reconstruct_samples`.
    Returns:
        :class:`ReconResult` cropped to the recon size (target and metrics when the file has
        a reference).
    Raises:
        UserError / DataFileError naming the file: unreadable data, NaN/Inf k-space, mask
        shape mismatch, fully sampled data for a network without a mask, a real-valued model
        on multi-coil k-space.
    """
    path = Path(path)
    raw = get_source(kind).read(path, read_options)
    result = reconstruct_raw_slices(
        raw, path, model, method=method, complex_model=complex_model, mask=mask,
        batch_size=batch_size, device=device, progress=progress, espirit_cache=espirit_cache,
        espirit_crop=espirit_crop, pad_last_batch=pad_last_batch, auto_compile=auto_compile,
        adapt=adapt, method_options=method_options)
    first = raw[0]
    result.info.update({"input": str(path), "format": kind, "coils": first.num_coils})
    if first.is_cartesian:
        result.info.update({"voxel_size_mm": first.metadata.voxel_size_mm,
                            "scan_attributes": getattr(raw, "info", {}).get("scan_attributes")})
    return result


def reconstruct_raw_slices(raw, path: str | os.PathLike, model: torch.nn.Module | None = None, *,
                           method: str | None = None, complex_model: bool = True,
                           mask: MaskSpec | None = None, batch_size: int = 8, device=None,
                           progress: bool = True,
                           espirit_cache: str | os.PathLike | None = None,
                           espirit_crop: float = 0.95, pad_last_batch: bool = False,
                           auto_compile: bool = False,
                           adapt: Adapter | None = None,
                           method_options: dict | None = None) -> ReconResult:
    """:func:`reconstruct_kspace_file` after reading: the slices ``raw`` (a sequence of
    :class:`~mri_unfold.data.KSpaceSample` as a source reads them) of ``path`` (for
    messages).  The streaming server (:mod:`mri_unfold.serving`) calls it for each slice as
    soon as it is complete, so its images are those of ``recon``."""
    if len(raw) == 0:
        raise UserError(f"{path}: the file has no slices")
    first = raw[0]
    real = model is not None and not complex_model
    if real and first.num_coils > 1:
        raise UserError(f"{path}: {first.num_coils}-coil k-space; this network reconstructs "
                        "real-valued images from single-coil k-space (a complex-domain model "
                        "is needed for multi-coil data)")
    # the whole volume is held at once: k-space, coil maps, measurements and the images
    require_memory(4 * 8 * len(raw) * first.kspace.numel(),
                   f"{path}: {len(raw)} slices of k-space {tuple(first.kspace.shape)}")
    if not first.is_cartesian:  # radial/spiral files: gridding / networks on the NUFFT
        return reconstruct_noncartesian_slices(
            path, raw, model, method=method, mask=mask, batch_size=batch_size, device=device,
            progress=progress, pad_last_batch=pad_last_batch, auto_compile=auto_compile,
            real_input=real, adapt=adapt, method_options=method_options)
    needs_maps = first.num_coils > 1 and method != "zero-filled"
    transform = kspace_transform(
        multicoil=needs_maps, mask=None if mask is None else mask.transform(first.mask.shape),
        espirit_crop=espirit_crop, espirit_cache=espirit_cache)
    samples = [transform(raw[i]) for i in range(len(raw))]
    if model is not None and not samples[0].metadata.undersampled:
        raise UserError(f"{path}: k-space is fully sampled; give a mask (a kind and an "
                        "acceleration, or a mask file) to undersample it")
    return reconstruct_samples(samples, model, method=method, batch_size=batch_size,
                               device=device, progress=progress, real_input=real,
                               pad_last_batch=pad_last_batch, auto_compile=auto_compile,
                               adapt=adapt, method_options=method_options)


def reconstruct_fastmri(path: str | os.PathLike, model: torch.nn.Module | None = None,
                        **options) -> ReconResult:
    """:func:`reconstruct_kspace_file` of a fastMRI ``.h5`` file (``kind = "fastmri"``);
    ``info["challenge"]`` says single- or multi-coil."""
    result = reconstruct_kspace_file(path, "fastmri", model, **options)
    result.info["challenge"] = "multicoil" if result.info["coils"] > 1 else "singlecoil"
    return result


def reconstruct_nifti(path: str | os.PathLike, model: torch.nn.Module, mask: MaskSpec | None, *,
                      trajectory: TrajectorySpec | None = None,
                      complex_model: bool = False, axis: int = 2, batch_size: int = 8,
                      device=None, progress: bool = True,
                      pad_last_batch: bool = False, auto_compile: bool = False,
                      adapt: Adapter | None = None) -> ReconResult:
    """Retrospectively undersample every slice of a NIfTI volume and reconstruct it.

    The volume (3-D, or a 4-D file with one volume) is read as slices along ``axis`` and
    divided by its maximum magnitude; each slice is measured in the centred layout with the
    same mask, reconstructed (``real_input`` operators for real-domain networks) and scaled
    back.  This is a SIMULATION from images.  Complex volumes need a complex-domain model.
    With ``trajectory`` (and ``mask=None``) every slice is measured along that non-Cartesian
    trajectory instead (:func:`~mri_unfold.data.simulate_noncartesian`, single coil, the
    network's operator a :class:`~mri_unfold.operators.NonCartesianFourier`).

    Returns:
        :class:`ReconResult` with arrays ``(S, H, W)`` in slice order along ``axis`` and the
        input volume as ``source`` (:func:`~mri_unfold.reconstruct.writers.write_nifti_like`).
    Raises:
        UserError / DataFileError naming the file: not a 3-D/4-D NIfTI, several volumes, an
        all-zero volume, a complex volume with a real-domain model, mask shape mismatch.
    """
    path = Path(path)
    nv = NiftiVolume(path, axis=axis)
    if nv.num_volumes > 1:
        raise UserError(f"{path}: 4-D NIfTI with {nv.num_volumes} volumes; give a 3-D volume "
                        "(or a 4-D file with one volume)")
    result = reconstruct_image_volume(
        nv.slices(), path, model, mask, trajectory=trajectory, complex_model=complex_model,
        batch_size=batch_size, device=device, progress=progress, pad_last_batch=pad_last_batch,
        auto_compile=auto_compile, adapt=adapt)
    result.info["axis"] = axis
    result.source = nv
    return result


def reconstruct_image_volume(vol: np.ndarray, path: str | os.PathLike, model: torch.nn.Module,
                             mask: MaskSpec | None, *, trajectory: TrajectorySpec | None = None,
                             complex_model: bool = False, batch_size: int = 8, device=None,
                             progress: bool = True, pad_last_batch: bool = False,
                             auto_compile: bool = False,
                             adapt: Adapter | None = None) -> ReconResult:
    """Retrospectively undersample every slice of an image volume and reconstruct it: the
    simulation behind :func:`reconstruct_nifti` and
    :func:`~mri_unfold.reconstruct.dicom_input.reconstruct_dicom`.

    Args:
        vol: ``(S, H, W)`` float32 magnitudes or complex64 images (the reference).
        path: the input, for messages and the samples' file name.
        mask / trajectory / complex_model / ...: see :func:`reconstruct_nifti`.
    Returns:
        :class:`ReconResult` ``(S, H, W)`` in the volume's intensity scale, metrics against
        ``vol``; ``info`` has the input, slice shape, mask and where its seed came from.
    Raises:
        UserError naming ``path``: a complex volume with a real-domain model, an all-zero
        volume, neither or both of mask and trajectory, a mask of another shape.
    """
    path = Path(path)
    if np.iscomplexobj(vol) and not complex_model:
        raise UserError(f"{path}: the volume is complex-valued; reconstructing it needs a "
                        "complex-domain model (this one works on real images)")
    peak = float(np.abs(vol).max())
    if peak == 0.0:
        raise UserError(f"{path}: the volume is all zeros")
    if (mask is None) == (trajectory is None):
        raise UserError(f"{path}: simulating k-space needs either a Cartesian mask or a "
                        "non-Cartesian trajectory, not both or neither")
    m = mask.make(vol.shape[-2:]) if mask is not None else None
    traj = trajectory.make(vol.shape[-2:]) if trajectory is not None else None
    samples = []
    for k in range(vol.shape[0]):
        if traj is not None:
            s = simulate_noncartesian(vol[k] / np.float32(peak), traj, fname=path.name,
                                      slice_index=k)
        else:
            s = simulate_kspace(vol[k] / np.float32(peak), m, fname=path.name, slice_index=k)
            s.metadata.mask_seed = mask.seed if mask.file is None else None
        s.metadata.scale = peak
        samples.append(s)
    result = reconstruct_samples(samples, model, real_input=not complex_model,
                                 batch_size=batch_size, device=device, progress=progress,
                                 pad_last_batch=pad_last_batch, auto_compile=auto_compile,
                                 adapt=adapt)
    result.info.update({"input": str(path),
                        "slice_shape": tuple(int(s) for s in vol.shape[-2:]),
                        "mask": trajectory.label if mask is None else mask.label,
                        "mask_seed_source": "the mask seed option"
                        if mask is not None and mask.file is None else None})
    return result


def reconstruct_image(model: torch.nn.Module, image: np.ndarray, mask: np.ndarray, *,
                      complex_model: bool, device=None) -> np.ndarray:
    """``|model(y, op)|`` of one image measured single-coil, ``y = op(image)`` (SIMULATION).

    Args:
        image: ``(H, W)`` real image (e.g. scaled to a maximum of 1).
        mask: ``(H, W)`` 0/1 mask in the centred layout.
        complex_model: the network's image domain (``real_input`` operator when False).
    Returns:
        ``(H, W)`` float32 magnitude.
    """
    op = SingleCoilFourier(mask, real_input=not complex_model)
    x = torch.from_numpy(np.asarray(image, np.float32))[None, None]
    y = op(x.to(torch.complex64) if complex_model else x)
    rec = reconstruct_volume(y, model, lambda idx: op, batch_size=1, device=device,
                             progress=False)
    return np.abs(rec[0]).astype(np.float32)


#: Operator kinds whose checkpoints carry a Cartesian mask that recon can reuse.
MASK_CHECKPOINT_KINDS = ("single_coil", "learned_mask")
#: Operator kinds of natural-image block compressive sensing (their networks are not MRI's).
BLOCK_CS_KINDS = ("block_cs", "learned_block_cs", "overlap_block_cs")


def require_mri_checkpoint(ck, path, what: str) -> None:
    """Refuse a checkpoint trained for natural-image block CS where MRI k-space is measured;
    ``what`` ends the message (e.g. ``"it cannot reconstruct scan.h5"``).

    Raises:
        UserError naming ``path``.
    """
    kind = ck.operator_cfg.get("kind")
    if kind in BLOCK_CS_KINDS:
        raise UserError(f"{path}: a {ck.arch} trained for natural-image block compressive "
                        f"sensing (operator {kind}), not MRI; {what}")


def mask_of_checkpoint(operator_cfg: dict, op, shape: tuple[int, int]) -> MaskSpec:
    """The undersampling a checkpoint was trained with, for images of ``shape``: its stored
    mask when the sizes agree (in the centred layout; a learned mask's binarised mask), else
    the same generated mask kind (``operator.mask``, ``ratio``, ``seed``) at ``shape``.

    Raises:
        UserError: the checkpoint has no single-coil Cartesian mask (another task), or its
            mask is a file of another size.
    """
    kind = operator_cfg.get("kind")
    if kind not in MASK_CHECKPOINT_KINDS or getattr(op, "mask", None) is None:
        raise UserError(f"the checkpoint's operator ({kind!r}) has no Cartesian mask to reuse; "
                        "give a mask")
    stored = op.mask.detach().cpu().numpy().astype(np.float32)
    if stored.ndim == 2 and stored.shape == tuple(shape):
        centred = stored if op.layout == "centered" else masks.to_centered(stored)
        return MaskSpec(array=np.ascontiguousarray(centred))
    spec = str(operator_cfg.get("mask", ""))
    if spec in masks.KINDS:
        return MaskSpec(kind=spec, acceleration=1.0 / float(operator_cfg["ratio"]),
                        center_fraction=operator_cfg.get("center_fraction") or None,
                        seed=int(operator_cfg.get("seed", 0)))
    raise UserError(f"the checkpoint's mask is {stored.shape[-2:]}, the slices are "
                    f"{tuple(shape)}; give a mask for this size")
