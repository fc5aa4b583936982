"""Volume reconstruction: run an unfolding network over every slice of a volume.

* :func:`reconstruct_volume` — the batched core: k-space of ``S`` slices + a model + an
  operator factory -> ``(S, H, W)`` images (tqdm progress bar, CPU or CUDA).
* :func:`reconstruct_fastmri` — a fastMRI ``.h5`` file (single- or multi-coil, already
  undersampled or undersampled here): every slice through the network; magnitude, centre
  crop to the recon size, optional comparison with the file's target.
* :func:`reconstruct_nifti` — a NIfTI magnitude volume: each slice is retrospectively
  undersampled with a seeded mask (simulation), reconstructed and compared with the input.
* :func:`write_fastmri_h5` — the fastMRI submission layout (dataset ``reconstruction``).

Intensity handling: fastMRI k-space is normalised per slice by the maximum of its
zero-filled (RSS) image (:class:`mri_unfold.data.Normalize`, the training convention) and
scaled back afterwards; NIfTI volumes are divided by the volume maximum (networks are
trained on [0, 1] images) and scaled back.  Metrics follow fastMRI: per volume,
``data_range`` = target (volume) maximum.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .atomic import atomic_output  # re-exported: the project's one atomic writer
from .errors import UserError

__all__ = ["reconstruct_volume", "ReconResult", "MaskSpec", "reconstruct_fastmri",
           "reconstruct_nifti", "write_fastmri_h5", "volume_metrics", "check_output_path",
           "atomic_output", "model_is_complex", "format_table",
           "write_nifti_like"]


def reconstruct_volume(measurements, model: torch.nn.Module,
                       op_factory: Callable[[list[int]], torch.nn.Module], batch_size: int = 8,
                       device: str | torch.device | None = None, progress: bool = True,
                       desc: str = "slices", pad_last_batch: bool = False) -> np.ndarray:
    """Reconstruct every slice of a volume with ``model(y, op)``, in batches.

    Args:
        measurements: k-space of ``S`` slices: a complex tensor/array ``(S, C, H, W)`` or any
            sequence whose items are complex ``(C, H, W)`` tensors.
        model: a network following the model contract (``model(y, op) -> (N, 1, H, W)``);
            it is moved to ``device`` and put in eval mode.
        op_factory: called with the list of slice indices of a batch, returns the operator
            for those slices (e.g. ``lambda idx: op`` for one shared mask, or per-slice coil
            maps ``MultiCoilFourier(mask, maps[idx])``).
        batch_size: slices per forward pass.
        device: ``None`` -> CUDA when available, else CPU.
        progress: show a tqdm bar over slices.
        pad_last_batch: when the volume has more than ``batch_size`` slices and the last
            batch is shorter, pad it to ``batch_size`` by repeating its last slice index
            (``op_factory`` gets the padded index list) and drop the padded outputs — every
            forward pass then has the same batch size (no recompilation of a
            ``torch.compile``-d model).  The result is the same as without padding.
    Returns:
        ``(S, H, W)`` numpy array: complex64 for complex-domain operators, float32 otherwise
        (the raw network output; take magnitudes/crops afterwards).
    """
    from tqdm.auto import tqdm  # noqa: PLC0415

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(dev).eval()
    n = len(measurements)
    out: list[np.ndarray] = []
    with torch.inference_mode(), tqdm(total=n, desc=desc, unit="slice", disable=not progress,
                                      leave=False) as bar:
        for start in range(0, n, batch_size):
            idx = list(range(start, min(start + batch_size, n)))
            keep = len(idx)
            if pad_last_batch and n > batch_size:
                idx += [idx[-1]] * (batch_size - keep)
            y = torch.stack([torch.as_tensor(measurements[i]) for i in idx]).to(dev)
            op = op_factory(idx).to(dev)
            if not y.is_complex():
                raise ValueError(f"measurements must be complex k-space (S, C, H, W), got "
                                 f"{y.dtype}")
            x = model(y, op)
            out.append(x[:keep, 0].detach().cpu().numpy())
            bar.update(keep)
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


# ------------------------------------------------------------------------------ helpers
def model_is_complex(model: torch.nn.Module, meta: dict | None = None) -> bool:
    """Whether a network works on complex images (2 CNN channels).

    Uses the checkpoint's operator (``meta["op"].complex_domain``) when known, else the
    model's ``image_channels`` (2 -> complex); defaults to complex.
    """
    op = (meta or {}).get("op")
    if op is not None:
        return bool(op.complex_domain)
    ch = getattr(model, "image_channels", None)
    return True if ch is None else int(ch) == 2


def check_output_path(out: str | os.PathLike, what: str = "--output") -> Path:
    """Fail early (``UserError``) if ``out`` cannot be written: missing/unwritable folder,
    or ``out`` is a directory."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise UserError(f"{what} {out}: is a directory (give a file name)")
    if not parent.is_dir():
        raise UserError(f"{what} {out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UserError(f"{what} {out}: folder {parent} is not writable")
    return out


def write_fastmri_h5(recon: np.ndarray, out: str | os.PathLike, attrs: dict | None = None) -> Path:
    """Write ``recon`` ``(S, H, W)`` as float32 dataset ``reconstruction`` (fastMRI submission
    layout), atomically."""
    import h5py  # noqa: PLC0415

    recon = np.asarray(recon, dtype=np.float32)
    if recon.ndim != 3:
        raise ValueError(f"reconstruction must be (slices, H, W), got shape {recon.shape}")
    with atomic_output(out) as tmp:
        with h5py.File(tmp, "w") as hf:
            hf.create_dataset("reconstruction", data=recon)
            for k, v in (attrs or {}).items():
                hf.attrs[k] = v
    return Path(out)


def volume_metrics(target: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """fastMRI per-volume metrics of ``(S, H, W)`` magnitude volumes: PSNR and SSIM with
    ``data_range = target.max()`` (SSIM averaged over slices), NMSE."""
    from . import metrics  # noqa: PLC0415

    t = np.asarray(target, np.float64)
    p = np.asarray(pred, np.float64)
    dr = float(t.max())
    return {"psnr": float(metrics.psnr(t, p, data_range=dr)),
            "ssim": float(metrics.ssim(t, p, data_range=dr)),
            "nmse": float(metrics.nmse(t, p))}


@dataclass(frozen=True)
class MaskSpec:
    """How to undersample: a generated mask (``kind`` + ``acceleration``/``center_fraction``,
    ``seed``) or a mask file (``file``, stored in k-space ``layout``, read with
    :func:`mri_unfold.masks.load_mask`, returned centred)."""

    kind: str | None = None
    acceleration: float | None = None
    center_fraction: float | None = None
    file: str | None = None
    seed: int = 0
    layout: str = "centered"

    def __post_init__(self):
        if (self.kind is None) == (self.file is None):
            raise UserError("give either --mask KIND (with --acceleration) or --mask-file FILE")
        if self.kind is not None and self.acceleration is None:
            raise UserError(f"--mask {self.kind}: needs --acceleration R")

    def make(self, shape: tuple[int, int]) -> np.ndarray:
        """The ``(H, W)`` float32 0/1 mask in the centred layout.

        Raises:
            UserError: a mask file whose shape differs from ``shape``; bad mask options.
        """
        from . import masks  # noqa: PLC0415

        if self.file is not None:
            m = np.asarray(masks.load_mask(self.file, layout=self.layout), dtype=np.float32)
            if m.shape != tuple(shape):
                raise UserError(f"--mask-file {self.file}: mask shape {m.shape} does not match "
                                f"the k-space/slice shape {tuple(shape)}")
            return m
        kw = {"acceleration": self.acceleration, "seed": self.seed}
        if self.center_fraction is not None:
            kw["center_fraction"] = self.center_fraction
        try:
            return np.asarray(masks.make_mask(self.kind, tuple(shape), **kw).mask, np.float32)
        except ValueError as e:
            raise UserError(f"--mask {self.kind}: {e}") from e


@dataclass
class ReconResult:
    """Output of a volume reconstruction flow.

    Attributes:
        reconstruction: ``(S, H, W)`` float32 magnitude, in the input's intensity scale.
        zero_filled: ``(S, H, W)`` float32 zero-filled (RSS) magnitude, same scale.
        target: ``(S, H, W)`` float32 reference (NIfTI input / fastMRI target) or None.
        metrics: ``{"network": {...}, "zero-filled": {...}}`` (PSNR/SSIM/NMSE) or empty.
        info: mask ratio, seed, sizes, challenge ...
        source: the input :class:`mri_unfold.data.NiftiVolume` (NIfTI flow) or None.
    """

    reconstruction: np.ndarray
    zero_filled: np.ndarray
    target: np.ndarray | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    source: object = None


def _finish(result: ReconResult) -> ReconResult:
    if result.target is not None:
        result.metrics = {"network": volume_metrics(result.target, result.reconstruction),
                          "zero-filled": volume_metrics(result.target, result.zero_filled)}
    return result


# ------------------------------------------------------------------------------ fastMRI
def _fastmri_challenge(path: Path) -> str:
    import h5py  # noqa: PLC0415

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as hf:
            if "kspace" not in hf:
                raise UserError(f"{path}: no 'kspace' dataset (not a fastMRI k-space file); "
                                f"found {sorted(hf.keys())}")
            ndim = hf["kspace"].ndim
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {e}") from e
    if ndim not in (3, 4):
        raise UserError(f"{path}: 'kspace' must be (slices, [coils,] H, W), got {ndim} dims")
    return "multicoil" if ndim == 4 else "singlecoil"


def reconstruct_fastmri(path: str | os.PathLike, model: torch.nn.Module, *,
                        complex_model: bool = True, mask: MaskSpec | None = None,
                        batch_size: int = 8, device=None, progress: bool = True,
                        espirit_cache: str | os.PathLike | None = None,
                        espirit_crop: float = 0.95, pad_last_batch: bool = False) -> ReconResult:
    """Reconstruct every slice of a fastMRI ``.h5`` file.

    Args:
        path: fastMRI file; ``kspace`` ``(S, H, W)`` (single-coil) or ``(S, C, H, W)``.
        model: complex-domain network (multi-coil uses ESPIRiT maps + ``MultiCoilFourier``).
        mask: undersample retrospectively (fully sampled files); ``None`` for files that are
            already undersampled (they carry a ``mask`` dataset).
        espirit_cache: folder caching ESPIRiT maps (multi-coil), or None.
        espirit_crop: ESPIRiT eigenvalue crop threshold (sigpy default 0.95; 0 keeps the
            maps everywhere, useful for tiny calibration regions).
        pad_last_batch: see :func:`reconstruct_volume` (for compiled models).
    Returns:
        :class:`ReconResult` cropped to the file's recon size (target with metrics if the
        file has one).
    Raises:
        UserError: unreadable/truncated file, missing ``kspace``, NaN/Inf k-space, mask
            shape mismatch, a fully sampled file without a mask, a real-domain model.
    """
    from .baselines import zero_filled  # noqa: PLC0415
    from .data import (ApplyMask, Compose, EspiritSettings, EstimateCoilMaps,  # noqa: PLC0415
                       FastMRISliceDataset, Normalize)
    from .image_ops import center_crop  # noqa: PLC0415
    from .operators import MultiCoilFourier, SingleCoilFourier  # noqa: PLC0415

    path = Path(path)
    if not complex_model:
        raise UserError("this checkpoint works on real-valued images (real_input); fastMRI "
                        "k-space needs a complex-domain model")
    challenge = _fastmri_challenge(path)
    steps: list = []
    if mask is not None:
        if mask.file is not None:
            import h5py  # noqa: PLC0415

            with h5py.File(path, "r") as hf:
                shape = tuple(hf["kspace"].shape[-2:])
            steps.append(ApplyMask(mask=mask.make(shape)))
        else:
            steps.append(ApplyMask(mask.kind, acceleration=mask.acceleration,
                                   center_fraction=mask.center_fraction, base_seed=mask.seed))
    if challenge == "multicoil":
        steps.append(EstimateCoilMaps(espirit_cache, EspiritSettings(crop=espirit_crop)))
    steps.append(Normalize())
    ds = FastMRISliceDataset(path, challenge, transform=Compose(steps))
    samples = [ds[i] for i in range(len(ds))]
    if not samples:
        raise UserError(f"{path}: the file has no slices")
    if not samples[0].metadata.undersampled:
        raise UserError(f"{path}: k-space is fully sampled; give --mask KIND --acceleration R "
                        "or --mask-file FILE to undersample it")
    kspace = torch.stack([s.kspace for s in samples])
    masks = torch.stack([s.mask for s in samples])[:, None]
    maps = None if challenge == "singlecoil" else torch.stack([s.coil_maps for s in samples])
    if maps is not None:
        empty = [i for i in range(len(samples)) if not bool(maps[i].abs().amax() > 0)]
        if empty:
            raise UserError(f"{path}: ESPIRiT found no coil sensitivity in slice(s) {empty} "
                            "(calibration region too small?); try a lower --espirit-crop")

    def op_factory(idx):
        if maps is None:
            return SingleCoilFourier(masks[idx])
        return MultiCoilFourier(masks[idx], maps[idx])

    x = reconstruct_volume(kspace, model, op_factory, batch_size, device, progress,
                           pad_last_batch=pad_last_batch)
    scale = np.array([s.metadata.scale for s in samples], np.float32)[:, None, None]
    crop = samples[0].metadata.crop_size or tuple(kspace.shape[-2:])
    recon = center_crop(torch.from_numpy(np.abs(x)), crop).numpy() * scale
    zf = center_crop(zero_filled(kspace, op_factory(list(range(len(samples))))), crop).numpy()
    target = None
    if samples[0].target is not None:
        target = np.stack([s.target.numpy() for s in samples]) * scale
    info = {"input": str(path), "challenge": challenge, "slices": len(samples),
            "crop_size": tuple(int(c) for c in crop),
            "sampled_fraction": float(masks.float().mean()),
            "mask_seed": samples[0].metadata.mask_seed}
    return _finish(ReconResult(recon.astype(np.float32), (zf * scale).astype(np.float32),
                               None if target is None else target.astype(np.float32), info=info))


# ------------------------------------------------------------------------------ NIfTI
def reconstruct_nifti(path: str | os.PathLike, model: torch.nn.Module, mask: MaskSpec, *,
                      complex_model: bool = False, axis: int = 2, batch_size: int = 8,
                      device=None, progress: bool = True,
                      pad_last_batch: bool = False) -> ReconResult:
    """Retrospectively undersample every slice of a NIfTI magnitude volume and reconstruct.

    The volume (3-D, or the first volume of a 4-D file) is read as slices along ``axis``
    and divided by its maximum; each slice is measured with ``SingleCoilFourier`` (centred
    layout, the same seeded mask for every slice; ``real_input`` for real-domain
    networks), reconstructed, and scaled back.  This is a SIMULATION from magnitude images.
    ``pad_last_batch``: see :func:`reconstruct_volume` (for compiled models).

    Returns:
        :class:`ReconResult` with arrays ``(S, H, W)`` in slice order along ``axis`` (use
        :func:`mri_unfold.data.save_like` / the CLI to write them back as NIfTI).
    Raises:
        UserError: not a 3-D/4-D NIfTI, an empty volume, mask shape mismatch.
    """
    from .baselines import zero_filled  # noqa: PLC0415
    from .data.nifti import NiftiVolume  # noqa: PLC0415
    from .operators import SingleCoilFourier  # noqa: PLC0415

    nv = NiftiVolume(path, axis=axis)
    if nv.num_volumes > 1:
        raise UserError(f"{path}: 4-D NIfTI with {nv.num_volumes} volumes; give a 3-D volume "
                        "(or a 4-D file with one volume)")
    vol = np.asarray(nv.slices(), dtype=np.float32)
    if vol.ndim != 3:
        raise UserError(f"{path}: expected a stack of 2-D slices, got shape {vol.shape}")
    if not np.isfinite(vol).all():
        raise UserError(f"{path}: the volume contains NaN or Inf values")
    peak = float(np.abs(vol).max())
    if peak == 0.0:
        raise UserError(f"{path}: the volume is all zeros")
    m = mask.make(vol.shape[-2:])
    op = SingleCoilFourier(m, real_input=not complex_model)
    x = torch.from_numpy(vol / peak)[:, None]
    y = op(x if not complex_model else x.to(torch.complex64))
    rec = reconstruct_volume(y, model, lambda idx: op, batch_size, device, progress,
                             pad_last_batch=pad_last_batch)
    rec = np.abs(rec) * peak
    zf = zero_filled(y, op).numpy() * peak
    info = {"input": str(path), "slices": int(vol.shape[0]), "axis": axis,
            "slice_shape": tuple(int(s) for s in vol.shape[-2:]),
            "sampled_fraction": float(m.mean()), "mask_seed": mask.seed if mask.file is None
            else None, "mask": mask.kind or mask.file}
    return _finish(ReconResult(rec.astype(np.float32), zf.astype(np.float32), vol, info=info,
                               source=nv))


def write_nifti_like(stack: np.ndarray, source, out: str | os.PathLike) -> Path:
    """Write a slice stack ``(S, H, W)`` back in the layout of ``source`` (a
    :class:`mri_unfold.data.NiftiVolume`): same shape, affine, header, orientation and
    data-type family (:func:`mri_unfold.data.save_like`, atomic)."""
    from .data.nifti import save_like  # noqa: PLC0415

    full = source.volume_from_slices(stack)
    if len(source.shape) == 4:
        full = full[..., None]
    return save_like(full, source, out)


def format_table(rows: Sequence[tuple[str, dict[str, float]]]) -> str:
    """A plain-text table ``method | PSNR (dB) | SSIM | NMSE``."""
    w = max([16] + [len(name) for name, _ in rows])
    lines = [f"{'method':<{w}} {'PSNR (dB)':>10} {'SSIM':>8} {'NMSE':>10}"]
    for name, m in rows:
        lines.append(f"{name:<{w}} {m['psnr']:>10.2f} {m['ssim']:>8.4f} {m['nmse']:>10.5f}")
    return "\n".join(lines)
