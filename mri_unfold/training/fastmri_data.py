"""fastMRI k-space slices for the training engine (``data.kind = "fastmri"``).

:class:`FastMRITrainingSlices` turns the slices of fastMRI ``.h5`` files (a folder or one
file, :class:`mri_unfold.data.FastMRISliceDataset`) into training items with the same
pipeline as ``mri-unfold recon`` (:func:`mri_unfold.reconstruct.reconstruct_fastmri`):

1. optional ``CropToRecon`` (``data.crop_to_recon``; fully sampled files only);
2. ``ApplyMask`` — a :func:`mri_unfold.masks.make_mask` mask seeded from the file name
   (``data.mask``, ``data.acceleration``, ``data.center_fraction``, ``data.mask_seed``):
   the same mask for every slice of a volume;
3. multi-coil: ESPIRiT maps from the fully sampled centre of the *masked* k-space
   (``EstimateCoilMaps``, cached on disk in ``data.espirit_cache``, eigenvalue crop
   ``data.espirit_crop``);
4. ``Normalize`` — divide by the maximum of the zero-filled (RSS) image.

The training target is the **complex coil-combined image** of the fully sampled k-space,
divided by the same scale: ``x = Σ_c conj(S_c) F^H k_c`` (multi-coil, the SENSE
combination with the ESPIRiT maps, i.e. ``MultiCoilFourier(ones, S).adjoint(k)``) or
``x = F^H k`` (single-coil) — the image domain the networks reconstruct in.

Items are :class:`FastMRIItem`; :func:`collate_fastmri` (the data set's ``collate_fn``)
stacks them into a :class:`FastMRIBatch`.  Slices of different k-space or crop sizes cannot
share a batch (a clear error); ``training.batch_size = 1`` always works.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..errors import UserError

__all__ = ["FastMRIItem", "FastMRIBatch", "FastMRITrainingSlices", "collate_fastmri",
           "fastmri_files", "build_fastmri_dataset"]


@dataclass
class FastMRIItem:
    """One prepared slice.

    Shapes: ``kspace`` ``(C, H, W)`` complex64 masked and normalised; ``mask`` ``(H, W)``
    float32 0/1 (centred); ``coil_maps`` ``(C, H, W)`` complex64 or ``None`` (single-coil);
    ``image`` ``(1, H, W)`` complex64 training target (normalised) or ``None``;
    ``target`` ``(h, w)`` float32 — the file's ``reconstruction_esc``/``_rss`` divided by
    ``scale`` — or ``None``; ``crop`` ``(h, w)``; ``scale`` the normalisation factor.
    """

    kspace: torch.Tensor
    mask: torch.Tensor
    coil_maps: torch.Tensor | None
    image: torch.Tensor | None
    target: torch.Tensor | None
    crop: tuple[int, int]
    scale: float
    fname: str
    slice: int


@dataclass
class FastMRIBatch:
    """Stacked :class:`FastMRIItem` objects (``N`` slices of one size).

    Shapes: ``kspace`` ``(N, C, H, W)`` complex64; ``mask`` ``(N, 1, H, W)`` float32;
    ``coil_maps`` ``(N, C, H, W)`` complex64 or ``None``; ``image`` ``(N, 1, H, W)``
    complex64 or ``None``; ``crop`` ``(h, w)`` shared by the batch; ``scale`` ``(N,)``.
    """

    kspace: torch.Tensor
    mask: torch.Tensor
    coil_maps: torch.Tensor | None
    image: torch.Tensor | None
    crop: tuple[int, int]
    scale: torch.Tensor
    names: list[str]

    def __len__(self) -> int:
        return int(self.kspace.shape[0])

    def to(self, device) -> "FastMRIBatch":
        mv = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return FastMRIBatch(mv(self.kspace), mv(self.mask), mv(self.coil_maps), mv(self.image),
                            self.crop, self.scale, self.names)


def collate_fastmri(items: list[FastMRIItem]) -> FastMRIBatch:
    """Stack items of one k-space shape and crop size.

    Raises:
        UserError: different k-space shapes or crop sizes (names the slices), or a mix of
            items with and without coil maps / training images.
    """
    if not items:
        raise UserError("collate_fastmri: empty batch")
    keys = {(tuple(it.kspace.shape), it.crop) for it in items}
    if len(keys) > 1:
        desc = ", ".join(f"{it.fname}[{it.slice}] k-space {tuple(it.kspace.shape)} crop "
                         f"{it.crop}" for it in items[:4])
        raise UserError(f"fastMRI slices of different sizes cannot share a batch ({desc}); use "
                        "training.batch_size = 1 or data.crop_to_recon = true")

    def stack(name):
        vals = [getattr(it, name) for it in items]
        if all(v is None for v in vals):
            return None
        if any(v is None for v in vals):
            raise UserError(f"collate_fastmri: {name} missing for some slices of the batch")
        return torch.stack(vals)

    return FastMRIBatch(kspace=stack("kspace"), mask=stack("mask").unsqueeze(1),
                        coil_maps=stack("coil_maps"), image=stack("image"),
                        crop=items[0].crop,
                        scale=torch.tensor([it.scale for it in items], dtype=torch.float64),
                        names=[f"{it.fname}[{it.slice}]" for it in items])


def fastmri_files(root: str | Path, max_volumes: int = 0) -> list[Path]:
    """The ``.h5`` files of a folder (sorted) or ``[root]`` for a file; first ``max_volumes``.

    Raises:
        FileNotFoundError: ``root`` missing.  UserError: a folder without ``.h5`` files.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such fastMRI file or folder")
    if root.is_file():
        files = [root]
    else:
        files = sorted(p for p in root.iterdir()
                       if p.is_file() and p.suffix.lower() in (".h5", ".hdf5"))
        if not files:
            raise UserError(f"{root}: folder holds no fastMRI .h5 files")
    return files[:max_volumes] if max_volumes else files


class FastMRITrainingSlices(Dataset):
    """Masked, normalised fastMRI slices with complex training targets (module doc).

    Args:
        root: folder of fastMRI ``.h5`` files or one file.
        challenge: ``"singlecoil"``, ``"multicoil"`` or ``"auto"`` (from the first file).
        mask / acceleration / center_fraction / mask_seed: :class:`mri_unfold.data.ApplyMask`.
        espirit_crop: ESPIRiT eigenvalue crop (multi-coil; 0 keeps the maps everywhere).
        espirit_cache: folder caching the maps (``""``/``None``: computed on every read).
        crop_to_recon: crop the coil images to the recon size first (fully sampled only).
        max_volumes: use the first N files (0 = all).
        with_image: compute the complex training target (needs fully sampled k-space).

    Raises:
        FileNotFoundError / UserError / DataFileError naming the file: missing data, an
        undersampled file where a training target is needed, unusable ESPIRiT settings.
    """

    def __init__(self, root: str | Path, challenge: str = "auto", *, mask: str = "random",
                 acceleration: float = 4.0, center_fraction: float = 0.08, mask_seed: int = 0,
                 espirit_crop: float = 0.95, espirit_cache: str | Path | None = None,
                 crop_to_recon: bool = False, max_volumes: int = 0, with_image: bool = True):
        from ..data import (ApplyMask, CropToRecon, EspiritSettings, EstimateCoilMaps,
                            FastMRISliceDataset, Normalize, detect_challenge)

        self.files = fastmri_files(root, max_volumes)
        self.challenge = detect_challenge(self.files[0]) if challenge == "auto" else challenge
        names = {p.resolve() for p in self.files}
        self.base = FastMRISliceDataset(
            root, self.challenge, transform=CropToRecon() if crop_to_recon else None,
            raw_sample_filter=lambda raw: Path(raw.fname).resolve() in names)
        if len(self.base) == 0:
            raise UserError(f"{root}: no slices in the selected fastMRI files")
        try:
            self.apply_mask = ApplyMask(mask, acceleration=acceleration,
                                        center_fraction=center_fraction or None,
                                        base_seed=mask_seed)
        except ValueError as e:
            raise UserError(f"data.mask: {e}") from e
        self.coil_maps = (EstimateCoilMaps(espirit_cache or None,
                                           EspiritSettings(crop=espirit_crop))
                          if self.challenge == "multicoil" else None)
        self.normalize = Normalize("zero_filled_max")
        self.with_image = with_image

    def __len__(self) -> int:
        return len(self.base)

    def sample(self, i: int):
        """``(full, prepared)`` :class:`~mri_unfold.data.KSpaceSample` pair of slice ``i``
        (``prepared`` masked, with coil maps, normalised)."""
        full = self.base[i]
        meta = full.metadata
        where = f"{meta.fname} slice {meta.slice}"
        try:
            s = self.apply_mask(full)
            if self.coil_maps is not None:
                s = self.coil_maps(s)
        except (ValueError, TypeError) as e:
            raise UserError(f"{where}: {e}") from e
        if s.coil_maps is not None and not bool(s.coil_maps.abs().amax() > 0):
            raise UserError(f"{where}: ESPIRiT found no coil sensitivity (calibration region "
                            "too small?); lower data.espirit_crop (0 keeps the maps everywhere)")
        return full, self.normalize(s)

    def __getitem__(self, i: int) -> FastMRIItem:
        from ..fft import ifft2

        full, s = self.sample(i)
        meta = s.metadata
        image = None
        if self.with_image:
            if full.metadata.undersampled:
                raise UserError(f"{meta.fname}: k-space is already undersampled (the file has a "
                                "'mask' dataset); training needs fully sampled fastMRI files")
            coil_images = ifft2(full.kspace / meta.scale)  # (C, H, W)
            if s.coil_maps is None:
                image = coil_images
            else:
                image = (s.coil_maps.conj() * coil_images).sum(0, keepdim=True)
            image = image.to(torch.complex64).contiguous()
        h, w = s.kspace.shape[-2:]
        crop = meta.crop_size or (h, w)
        crop = (min(int(crop[0]), h), min(int(crop[1]), w))
        return FastMRIItem(kspace=s.kspace, mask=s.mask, coil_maps=s.coil_maps, image=image,
                           target=s.target, crop=crop, scale=float(meta.scale),
                           fname=meta.fname, slice=int(meta.slice))

    @property
    def collate_fn(self):
        """:func:`collate_fastmri` (used by the training loop's ``DataLoader``)."""
        return collate_fastmri


def dataset_options(data_cfg: dict) -> dict:
    """Keyword options of :class:`FastMRITrainingSlices` from a protocol's ``data`` table."""
    return {"challenge": data_cfg["challenge"], "mask": data_cfg["mask"],
            "acceleration": data_cfg["acceleration"],
            "center_fraction": data_cfg["center_fraction"], "mask_seed": data_cfg["mask_seed"],
            "espirit_crop": data_cfg["espirit_crop"], "espirit_cache": data_cfg["espirit_cache"]}


def build_fastmri_dataset(data_cfg: dict) -> FastMRITrainingSlices:
    """The training data set of a ``data.kind = "fastmri"`` protocol table."""
    return FastMRITrainingSlices(data_cfg["train"], crop_to_recon=data_cfg["crop_to_recon"],
                                 max_volumes=data_cfg["max_images"], **dataset_options(data_cfg))
