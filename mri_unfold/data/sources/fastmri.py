"""The ``fastmri`` data source: fastMRI ``.h5`` k-space (single- or multi-coil).

Reading is :class:`~mri_unfold.data.FastMRISliceDataset`; :class:`FastMRIKSpaceSlices`
adds the k-space preparation that training, the ``fastmri`` evaluation and
``mri-unfold recon`` share (:func:`kspace_transform`):

1. optional :class:`~mri_unfold.data.CropToRecon` (``crop_to_recon``; fully sampled files);
2. :class:`~mri_unfold.data.ApplyMask` — a :func:`mri_unfold.masks.make_mask` mask seeded
   from the file name (``mask``, ``acceleration``, ``center_fraction``, ``mask_seed``), the
   same for every slice of a volume; files that are already undersampled keep theirs;
3. multi-coil: ESPIRiT maps from the fully sampled centre of the masked k-space
   (:class:`~mri_unfold.data.EstimateCoilMaps`, cached in ``espirit_cache``, eigenvalue
   crop ``espirit_crop``), refused when all zero;
4. :class:`~mri_unfold.data.Normalize` — divide by the maximum of the zero-filled image;
5. for training, :class:`~mri_unfold.data.AttachTrainingImage`: the complex coil-combined
   image of the fully sampled k-space (``Σ_c conj(S_c) F^H k_c``, the operator's adjoint).

Items are :class:`~mri_unfold.data.KSpaceSample` (``kspace`` ``(C, H, W)`` complex64,
``mask`` ``(H, W)``, ``coil_maps`` ``(C, H, W)`` or ``None``, ``target`` ``(h, w)``,
``image`` ``(1, H, W)`` or ``None``), stacked by :func:`~mri_unfold.data.collate_samples`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ...errors import UserError
from ..espirit import EspiritSettings, EstimateCoilMaps
from ..fastmri_slices import FastMRISliceDataset, detect_challenge
from ..samples import KSpaceSample
from ..transforms import (ApplyMask, AttachTrainingImage, Compose, CropToRecon, Normalize,
                          RequireCoilMaps)
from .prepared import PreparedSlices
from .registry import DataSource, register_source
from .sniff import hdf5_keys

__all__ = ["FastMRISource", "FastMRIKSpaceSlices", "fastmri_files", "kspace_transform"]


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


def kspace_transform(*, multicoil: bool, mask: ApplyMask | None, espirit_crop: float = 0.95,
                     espirit_cache: str | Path | None = None, crop_to_recon: bool = False,
                     with_image: bool = False, normalize: str = "zero_filled_max"
                     ) -> Callable[[KSpaceSample], KSpaceSample]:
    """The k-space preparation of the module doc as one transform.

    Args:
        multicoil: estimate ESPIRiT maps (and refuse all-zero maps).
        mask: the undersampling transform, or ``None`` to keep the k-space as read.
        espirit_crop / espirit_cache: ESPIRiT eigenvalue crop and cache folder.
        crop_to_recon: crop the coil images to the recon size first (fully sampled only).
        with_image: attach the complex training image (fully sampled input only).
        normalize: ``"zero_filled_max"`` (default) or ``"none"`` (keep the stored intensity
            scale, e.g. measurements written at a known scale).
    """
    steps: list = [] if mask is None else [mask]
    if multicoil:
        steps += [EstimateCoilMaps(espirit_cache or None, EspiritSettings(crop=espirit_crop)),
                  RequireCoilMaps()]
    steps.append(Normalize(normalize))
    prepare = AttachTrainingImage(Compose(steps)) if with_image else Compose(steps)
    return Compose([CropToRecon(), prepare]) if crop_to_recon else prepare


class FastMRIKSpaceSlices(PreparedSlices):
    """Prepared fastMRI slices (module doc) as :class:`~mri_unfold.data.KSpaceSample` items.

    Args:
        root: folder of fastMRI ``.h5`` files or one file.
        challenge: ``"singlecoil"``, ``"multicoil"`` or ``"auto"`` (from the first file).
        mask / acceleration / center_fraction / mask_seed: the seeded undersampling
            (``center_fraction`` 0 = the mask kind's default).
        espirit_crop / espirit_cache: ESPIRiT settings (multi-coil).
        crop_to_recon: crop the coil images to the recon size first (fully sampled only).
        max_volumes: use the first N files (0 = all).
        with_image: attach the complex training image (needs fully sampled k-space).

    Raises:
        FileNotFoundError / UserError / DataFileError naming the file: missing data, an
        undersampled file where a training image is needed, unusable ESPIRiT settings.
    """

    def __init__(self, root: str | Path, challenge: str = "auto", *, mask: str = "random",
                 acceleration: float = 4.0, center_fraction: float = 0.08, mask_seed: int = 0,
                 espirit_crop: float = 0.95, espirit_cache: str | Path | None = None,
                 crop_to_recon: bool = False, max_volumes: int = 0, with_image: bool = True):
        self.files = fastmri_files(root, max_volumes)
        self.challenge = detect_challenge(self.files[0]) if challenge == "auto" else challenge
        names = {p.resolve() for p in self.files}
        base = FastMRISliceDataset(
            root, self.challenge, raw_sample_filter=lambda raw: Path(raw.fname).resolve() in names)
        if len(base) == 0:
            raise UserError(f"{root}: no slices in the selected fastMRI files")
        apply_mask = ApplyMask(mask, acceleration=acceleration,
                               center_fraction=center_fraction or None, base_seed=mask_seed)
        super().__init__(base, kspace_transform(
            multicoil=self.challenge == "multicoil", mask=apply_mask, espirit_crop=espirit_crop,
            espirit_cache=espirit_cache, crop_to_recon=crop_to_recon, with_image=with_image))


@register_source
class FastMRISource(DataSource):
    """fastMRI ``.h5`` k-space files (``kspace`` + ``ismrmrd_header``), single- or multi-coil,
    undersampled retrospectively with a seeded mask per volume."""

    kind = "fastmri"
    yields = "kspace"
    operator_kind = "fastmri"
    description = "fastMRI .h5 k-space (single/multi-coil), seeded retrospective masks, ESPIRiT"
    options = {
        "challenge": (str, "auto"),        # auto | singlecoil | multicoil
        "mask": (str, "random"),           # make_mask kind, one mask per volume (file-seeded)
        "acceleration": (float, 4.0),
        "center_fraction": (float, 0.08),  # 0 = the mask kind's default
        "mask_seed": (int, 0),             # base seed mixed with each file name
        "espirit_crop": (float, 0.95),     # ESPIRiT eigenvalue crop (multicoil)
        "espirit_cache": (str, ""),        # folder caching ESPIRiT maps ("" = no cache)
        "crop_to_recon": (bool, False),    # crop coil images to the recon size first
    }
    choices = {"challenge": ("auto", "singlecoil", "multicoil")}

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        if options["acceleration"] < 1:
            raise UserError(f"{where}: data.acceleration must be >= 1, got "
                            f"{options['acceleration']}")
        if not 0 <= options["center_fraction"] < 1:
            raise UserError(f"{where}: data.center_fraction must be in [0, 1), got "
                            f"{options['center_fraction']}")

    @classmethod
    def detect(cls, path: Path) -> bool:
        keys = hdf5_keys(path)
        return keys is not None and {"kspace", "ismrmrd_header"} <= keys

    @classmethod
    def files(cls, path, max_items: int = 0) -> list[Path]:
        return fastmri_files(path, max_items)

    @classmethod
    def read(cls, path, options: dict | None = None) -> FastMRISliceDataset:
        return FastMRISliceDataset(path, detect_challenge(path))

    @classmethod
    def open(cls, path, options: dict, *, seed: int = 0, patch_size=None, max_items: int = 0,
             for_training: bool = True) -> FastMRIKSpaceSlices:
        return FastMRIKSpaceSlices(path, options["challenge"], mask=options["mask"],
                                   acceleration=options["acceleration"],
                                   center_fraction=options["center_fraction"],
                                   mask_seed=options["mask_seed"],
                                   espirit_crop=options["espirit_crop"],
                                   espirit_cache=options["espirit_cache"],
                                   crop_to_recon=options["crop_to_recon"],
                                   max_volumes=max_items, with_image=for_training)
