"""The ``nifti`` data source: 2-D slices of NIfTI volumes for training on image data.

Every ``.nii``/``.nii.gz`` file of a folder (recognised by its header, sorted by name) or one
file is read with :class:`mri_unfold.data.NiftiVolume` and cut into slices along the array
axis ``axis``.  Each volume is divided by its maximum magnitude (networks are trained on
[0, 1] images); slices whose maximum is below ``min_signal`` × the volume maximum (the empty
slices at the edges of a head) are skipped.

``values`` chooses the image domain the protocol's operator measures:

* ``"magnitude"`` — ``|x|``, real ``(1, H, W)`` float32 (``real_input`` operators);
* ``"complex"`` — the file's complex values (a real file gives zero phase), complex64;
* ``"smooth_phase"`` — SIMULATION: ``|x| · exp(iφ)`` with a seeded smooth random phase per
  slice (:func:`mri_unfold.data.smooth_random_phase`), complex64.

Coil sensitivities and undersampling are the operator's business, not the source's.  All slices
must share one size (use one ``axis`` for volumes of one matrix).  The decoded volumes are
kept in memory.
"""
from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ..errors import DataFileError
from ..nifti import NiftiVolume
from .registry import DataSource, register_source
from .sniff import is_nifti
from .volume_slices import VALUES, VolumeSlices, check_slice_options

__all__ = ["NiftiSlices", "NiftiSource", "nifti_files", "VALUES"]


def nifti_files(root: str | Path, max_volumes: int = 0) -> list[Path]:
    """The NIfTI files of a folder (by content, sorted) or ``[root]``; first ``max_volumes``.

    Raises:
        FileNotFoundError: ``root`` missing.  DataFileError: no NIfTI file in the folder, or
            ``root`` is a file that is not NIfTI.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such NIfTI file or folder")
    if root.is_file():
        if not is_nifti(root):
            raise DataFileError(f"{root}: not a NIfTI file (no NIfTI-1/2 header)")
        files = [root]
    else:
        files = sorted(p for p in root.iterdir() if is_nifti(p))
        if not files:
            raise DataFileError(f"{root}: folder holds no NIfTI (.nii/.nii.gz) files")
    return files[:max_volumes] if max_volumes else files


class NiftiSlices(VolumeSlices):
    """Normalised 2-D slices of NIfTI volumes (module doc); items ``(1, H, W)``.

    Args:
        root: a NIfTI file or a folder of them.
        axis: array axis to slice along (0, 1 or 2).
        values: ``"magnitude"`` (float32), ``"complex"`` or ``"smooth_phase"`` (complex64).
        min_signal: skip slices whose maximum magnitude is below this fraction of the
            volume maximum (0 keeps every slice with any signal).
        volume_index: the volume of 4-D files.
        max_volumes: first N files (0 = all).
        seed: seed of the simulated phases (``values="smooth_phase"``).

    Attributes:
        index: ``[(file, slice), ...]`` of the kept slices, in item order.

    Raises:
        FileNotFoundError / DataFileError naming the file: unreadable or all-zero volumes,
        slices of different sizes, no slice left.
    """

    def __init__(self, root: str | Path, *, axis: int = 2, values: str = "magnitude",
                 min_signal: float = 0.0, volume_index: int = 0, max_volumes: int = 0,
                 seed: int = 0):
        if values not in VALUES:
            raise ValueError(f"values must be one of {VALUES}, got {values!r}")
        self.files = nifti_files(root, max_volumes)
        volumes = ((path, NiftiVolume(path, axis=axis, volume_index=volume_index).slices())
                   for path in self.files)
        super().__init__(root, volumes, values=values, min_signal=min_signal, seed=seed,
                         what=f"NIfTI slices along axis {axis}",
                         hint="use volumes of one matrix size or another axis")


@register_source
class NiftiSource(DataSource):
    """2-D slices of NIfTI volumes (magnitude, complex, or magnitude with a simulated phase)."""

    kind = "nifti"
    yields = "image"
    description = "2-D slices of NIfTI volumes along an axis (magnitude/complex/smooth_phase)"
    options = {
        "axis": (int, 2),                  # array axis to slice along
        "values": (str, "magnitude"),      # magnitude | complex | smooth_phase
        "min_signal": (float, 0.05),       # skip slices below this fraction of the volume max
        "volume_index": (int, 0),          # volume of 4-D files
    }
    choices = {"values": VALUES}

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        if options["axis"] not in (0, 1, 2):
            raise UserError(f"{where}: data.axis must be 0, 1 or 2, got {options['axis']}")
        check_slice_options(options, where)

    @classmethod
    def detect(cls, path: Path) -> bool:
        return is_nifti(path)

    @classmethod
    def open(cls, path, options: dict, *, seed: int = 0, patch_size=None,
             max_items: int = 0, for_training: bool = True) -> NiftiSlices:
        return NiftiSlices(path, axis=options["axis"], values=options["values"],
                           min_signal=options["min_signal"],
                           volume_index=options["volume_index"], max_volumes=max_items,
                           seed=seed)
