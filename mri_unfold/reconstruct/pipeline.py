"""The one reconstruction pipeline: prepared k-space slices -> network -> images + metrics.

Used by ``mri-unfold recon``, by the training engine's evaluation and by the Python API:

* :func:`reconstruct_volume` — the batched core: measurements of ``S`` slices, a model and an
  operator factory -> ``(S, H, W)`` network outputs (tqdm progress bar, CPU or CUDA);
* :func:`reconstruct_samples` — prepared :class:`~mri_unfold.data.KSpaceSample` slices of one
  volume (masked, normalised, with coil maps when multi-coil) -> :class:`ReconResult`:
  the magnitude of the network output (or of a classical method, :data:`METHODS`) and of the
  zero-filled image, centre-cropped to the samples' recon size and multiplied back by each
  slice's normalisation scale, the reference (when the samples carry one) and
  fastMRI-convention metrics.

Where the slices come from (a fastMRI file, a NIfTI volume simulated slice by slice, ...)
is :mod:`mri_unfold.reconstruct.inputs`; writing files is :mod:`mri_unfold.reconstruct.writers`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import metrics
from ..auto_lambda import AUTO_METHODS, central_slices, choose_lambda
from ..baselines import BASELINES, run_baseline, zero_filled
from ..data.geometry import crop_affine
from ..data.samples import KSpaceSample, collate_samples
from ..device import resolve_device
from ..errors import UserError
from ..fastpath import compile_with_fallback
from ..image_ops import center_crop
from ..operators import KSpaceOperatorFactory

#: ``adapt(model, samples, factory) -> [(slice indices, network), ...]`` (see
#: :func:`reconstruct_samples`).
Adapter = Callable[[torch.nn.Module, list, KSpaceOperatorFactory], list]

__all__ = ["Adapter", "reconstruct_volume", "reconstruct_samples", "ReconResult", "volume_metrics",
           "METHODS", "classical_volume", "AUTO_COMPILE_AFTER_S"]

#: Projected eager seconds left after the first batch above which ``auto_compile`` compiles
#: (compiling MADUN 25x32 costs 20-60 s on the 2-core CPU and saves 30-60 % per call; see
#: docs/performance.md).
AUTO_COMPILE_AFTER_S = 120.0

#: Classical methods :func:`reconstruct_samples` runs instead of a network.
METHODS = tuple(BASELINES)


def reconstruct_volume(measurements, model: torch.nn.Module,
                       op_factory: Callable[[list[int]], torch.nn.Module], batch_size: int = 8,
                       device: str | torch.device | None = None, progress: bool = True,
                       desc: str = "slices", pad_last_batch: bool = False,
                       auto_compile: bool = False) -> np.ndarray:
    """Reconstruct every slice of a volume with ``model(y, op)``, in batches.

    Args:
        measurements: k-space of ``S`` slices: a complex tensor/array ``(S, C, H, W)`` or any
            sequence whose items are complex ``(C, H, W)`` tensors.
        model: a network following the model contract (``model(y, op) -> (N, 1, H, W)``);
            it is moved to ``device`` and put in eval mode.
        op_factory: called with the list of slice indices of a batch, returns the operator
            for those slices (e.g. ``lambda idx: op`` for one shared mask, or per-slice masks
            and maps through :class:`~mri_unfold.operators.KSpaceOperatorFactory`).
        batch_size: slices per forward pass.
        device: ``None`` -> CUDA when available, else CPU.
        progress: show a tqdm bar over slices.
        pad_last_batch: when the volume has more than ``batch_size`` slices and the last
            batch is shorter, pad it to ``batch_size`` by repeating its last slice index
            (``op_factory`` gets the padded index list) and drop the padded outputs — every
            forward pass then has the same batch size (no recompilation of a
            ``torch.compile``-d model).  The result is the same as without padding.
        auto_compile: time the first batch eagerly; when the rest of the volume would take
            more than :data:`AUTO_COMPILE_AFTER_S` seconds eagerly, compile the model
            (:func:`mri_unfold.fastpath.compile_with_fallback`, padded batches) for the rest —
            compiling costs tens of seconds on a CPU and pays only for large volumes.
    Returns:
        ``(S, H, W)`` numpy array: complex64 for complex-domain operators, float32 otherwise
        (the raw network output; take magnitudes/crops afterwards).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    model = model.to(dev).eval()
    n = len(measurements)
    out: list[np.ndarray] = []
    call, timing = model, auto_compile
    with torch.inference_mode(), tqdm(total=n, desc=desc, unit="slice", disable=not progress,
                                      leave=False) as bar:
        for start in range(0, n, batch_size):
            idx = list(range(start, min(start + batch_size, n)))
            keep = len(idx)
            if pad_last_batch and n > batch_size:
                idx += [idx[-1]] * (batch_size - keep)
            y = torch.stack([torch.as_tensor(measurements[i]) for i in idx]).to(dev)
            if not y.is_complex():
                raise ValueError(f"measurements must be complex k-space (S, C, H, W), got "
                                 f"{y.dtype}")
            t0 = time.perf_counter()
            x = call(y, op_factory(idx).to(dev))
            out.append(x[:keep, 0].detach().cpu().numpy())
            bar.update(keep)
            if timing:
                timing = False
                left = (time.perf_counter() - t0) / keep * (n - start - keep)
                if left > AUTO_COMPILE_AFTER_S:
                    bar.write(f"compiling the network: about {left:.0f} s of eager work left")
                    call, pad_last_batch = compile_with_fallback(model), True
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def classical_volume(measurements: torch.Tensor, op_factory, method: str, batch_size: int = 8,
                     progress: bool = True, desc: str = "slices", options: dict | None = None,
                     report: dict | None = None) -> np.ndarray:
    """A classical method (:data:`METHODS`) over the slices of a volume, in batches.

    Args:
        measurements: ``(S, C, H, W)`` complex k-space.
        op_factory: slice indices -> the operator of those slices.
        options: the method's options (e.g. ``lamda``, ``max_iter``).  For L1-wavelet and TV
            ``lamda`` is ``"auto"`` unless given: chosen for the scan by the held-out k-space
            loss (:func:`mri_unfold.auto_lambda.choose_lambda`, on up to three central
            slices).
        report: filled with ``lambda`` (and ``lambda_losses``) when a λ was chosen.
    Returns:
        ``(S, H, W)`` float32 magnitudes.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    n = len(measurements)
    options = dict(options or {})
    if method in AUTO_METHODS and options.get("lamda", "auto") == "auto":
        idx = central_slices(n)
        choice = choose_lambda(method, measurements[idx], op_factory(idx),
                               max_iter=options.get("max_iter"))
        options["lamda"] = choice.lamda
        if report is not None:
            report.update({"lambda": choice.lamda, "lambda_losses": choice.losses,
                           "lambda_slices": idx})
    elif report is not None and "lamda" in options:
        report["lambda"] = float(options["lamda"])
    out: list[np.ndarray] = []
    with torch.inference_mode(), tqdm(total=n, desc=f"{desc} ({method})", unit="slice",
                                      disable=not progress, leave=False) as bar:
        for start in range(0, n, batch_size):
            idx = list(range(start, min(start + batch_size, n)))
            out.append(run_baseline(method, measurements[idx], op_factory(idx), **options)
                       .cpu().numpy())
            bar.update(len(idx))
    return np.concatenate(out).astype(np.float32)


#: Smallest slice (after the crop to the recon size) that can be reconstructed and scored
#: (SSIM's 7 x 7 window, plus a margin).
MIN_SLICE = 8


def check_measured(batch) -> None:
    """Refuse slices that cannot give a meaningful image: no measured sample of any slice is
    non-zero (nothing was measured), or the recon size is below :data:`MIN_SLICE` pixels.
    Single empty slices pass: the edge slices of an image volume are often background.

    Raises:
        UserError naming the file and the slice.
    """
    meta = batch.metadata[0]
    name = meta.extras.get("path", meta.fname)
    crop = tuple(int(c) for c in (batch.crop or batch.kspace.shape[-2:]))
    if min(crop) < MIN_SLICE:
        raise UserError(f"{name}: slices of {crop[0]}x{crop[1]} pixels are too small to "
                        f"reconstruct and score (at least {MIN_SLICE}x{MIN_SLICE})")
    measured = batch.kspace.reshape(len(batch), -1).abs().amax(dim=1)
    if not bool((measured > 0).any()):
        raise UserError(f"{name}: the k-space of every slice is all zero"
                        f"{f' ({len(batch)} slices)' if len(batch) > 1 else ''}: nothing was "
                        "measured")


def volume_metrics(target: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """fastMRI per-volume metrics of ``(S, H, W)`` magnitude volumes: PSNR and SSIM with
    ``data_range = target.max()`` (SSIM averaged over slices), NMSE
    (:func:`mri_unfold.metrics.quality`)."""
    return metrics.quality(target, prediction)


@dataclass
class ReconResult:
    """A reconstructed volume.

    Attributes:
        reconstruction: ``(S, h, w)`` float32 magnitude, in the input's intensity scale.
        zero_filled: ``(S, h, w)`` float32 zero-filled (RSS) magnitude, same scale.
        target: ``(S, h, w)`` float32 reference (NIfTI input / fastMRI target) or None.
        metrics: ``{"network": {...}, "zero-filled": {...}}`` (PSNR/SSIM/NMSE) or empty.
        info: input, slices, sizes, sampled fraction, mask seed and where it came from ...
        source: the input volume object the writers need (e.g. a
            :class:`~mri_unfold.data.NiftiVolume`) or None.
    """

    reconstruction: np.ndarray
    zero_filled: np.ndarray
    target: np.ndarray | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    source: object = None


def reconstruct_samples(samples: Sequence[KSpaceSample], model: torch.nn.Module | None = None,
                        *, method: str | None = None, real_input: bool = False,
                        layout: str = "centered", batch_size: int = 8, device=None,
                        progress: bool = True, pad_last_batch: bool = False,
                        desc: str = "slices", auto_compile: bool = False,
                        adapt: Adapter | None = None,
                        method_options: dict | None = None) -> ReconResult:
    """Reconstruct prepared slices of one volume (module doc).

    Args:
        samples: :class:`~mri_unfold.data.KSpaceSample` slices of one size and crop (masked,
            normalised by ``metadata.scale``, with coil maps for multi-coil data; ``sense``,
            ``l1-wavelet`` and ``tv`` use the maps, ``zero-filled`` combines coils by RSS).
        model: ``model(y, op)`` network; its image domain is real when ``real_input``.
        method: instead of a model, a classical method of :data:`METHODS`.
        real_input: the network reconstructs real images (``SingleCoilFourier(real_input)``).
        layout: the k-space layout of the samples (``"centered"``).
        batch_size / device / progress / pad_last_batch / auto_compile: see
            :func:`reconstruct_volume`.
        adapt: with a model, scan-specific adaptation before reconstructing:
            ``adapt(model, samples, factory)`` returns ``[(slice indices, network), ...]``
            covering every slice once (e.g. one network adapted to the whole scan, or one per
            slice; :class:`mri_unfold.training.zero_shot.ScanAdapter`).
        method_options: options of ``method`` (:func:`classical_volume`; ``lamda`` a number
            or ``"auto"``, the default); the λ used goes to ``info["lambda"]``.
    Returns:
        :class:`ReconResult` (metrics when every sample carries a target).
    Raises:
        ValueError: neither or both of ``model`` and ``method``.
    """
    if (model is None) == (method is None):
        raise ValueError("reconstruct_samples needs exactly one of model or method")
    batch = collate_samples(samples)
    check_measured(batch)
    factory = KSpaceOperatorFactory(layout=layout, real_input=real_input)

    def op_factory(idx):
        return factory.for_batch(batch, idx)

    kspace = factory.measurements(batch)  # density-weighted for non-Cartesian samples
    if model is not None:
        groups = [(list(range(len(batch))), model)] if adapt is None else \
            adapt(model, list(samples), factory)
        parts: dict[int, np.ndarray] = {}
        for idx, net in groups:
            sub = reconstruct_volume(kspace[idx], net, lambda j, idx=idx: op_factory(
                [idx[i] for i in j]), batch_size=batch_size, device=device, progress=progress,
                desc=desc, pad_last_batch=pad_last_batch, auto_compile=auto_compile)
            parts.update(zip(idx, sub))
        if sorted(parts) != list(range(len(batch))):
            raise ValueError("adapt must return every slice index exactly once")
        mag = np.abs(np.stack([parts[i] for i in range(len(batch))]))
    else:
        chosen: dict = {}
        mag = classical_volume(kspace, op_factory, method, batch_size, progress, desc,
                               method_options, chosen)
    scale = batch.scale.numpy()[:, None, None]
    crop = batch.crop
    recon = center_crop(torch.from_numpy(mag), crop).numpy() * scale
    zf = center_crop(zero_filled(kspace, op_factory(list(range(len(batch))))),
                     crop).numpy() * scale
    target = None
    if batch.target is not None:
        target = (batch.target[:, 0].numpy() * scale).astype(np.float32)
    result = ReconResult(recon.astype(np.float32), zf.astype(np.float32), target)
    if target is not None:
        result.metrics = {"network": volume_metrics(target, result.reconstruction),
                          "zero-filled": volume_metrics(target, result.zero_filled)}
    meta = batch.metadata[0]
    affine = meta.extras.get("affine")
    if affine is not None:  # the affine of the recon-size crop (scanner space)
        affine = crop_affine(affine, batch.image_shape, crop)
    result.info = {"slices": len(batch), "crop_size": tuple(int(c) for c in crop),
                   "sampled_fraction": float(batch.mask.float().mean()),
                   "mask_seed": meta.mask_seed,
                   "mask_seed_source": meta.extras.get("mask_seed_source"),
                   "affine": affine}
    if model is None and chosen:
        result.info.update(chosen)
    return result
