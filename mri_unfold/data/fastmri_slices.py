"""fastMRI HDF5 files as a dataset of typed k-space slices.

:class:`FastMRISliceDataset` subclasses :class:`fastmri.data.SliceDataset`, so slice
indexing and the ISMRMRD-header metadata (``encoding_size``, ``recon_size``,
``padding_left``/``padding_right``, plus the file attributes ``max``, ``norm``,
``acquisition``, ``patient_id``) come from fastMRI itself.  On top it

* reads one file or a folder of ``.h5`` files (other files are ignored),
* checks every file when indexing (readable HDF5, ``kspace`` present with the right
  number of dimensions, a ``mask`` dataset of matching width) and every slice when read
  (finite k-space), raising :class:`~mri_unfold.data.errors.DataFileError` naming the file,
* never unpickles a dataset cache and never touches the global RNG,
* returns a :class:`~mri_unfold.data.samples.KSpaceSample` per slice and applies
  sample-to-sample transforms (:mod:`mri_unfold.data.transforms`).

File layout (fastMRI): ``kspace`` ``(slices, H, W)`` (single-coil) or
``(slices, coils, H, W)`` (multi-coil) complex64, centred layout; targets
``reconstruction_esc`` / ``reconstruction_rss`` ``(slices, h, w)`` float32; optional
``mask`` ``(W,)`` for k-space that is already undersampled (test/challenge files).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable
from xml.etree.ElementTree import ParseError

import h5py
import numpy as np
import torch
from fastmri.data import SliceDataset

from ..memory import require_memory
from .errors import DataFileError
from .fastmri_checks import check_binary_columns, check_header_sizes
from .samples import KSpaceSample, SampleMetadata

__all__ = ["FastMRISliceDataset", "stable_seed", "num_low_frequencies_of", "detect_challenge"]

CHALLENGES = ("singlecoil", "multicoil")
_KSPACE_NDIM = {"singlecoil": 3, "multicoil": 4}


def stable_seed(fname: str | Path, base_seed: int = 0) -> int:
    """A seed derived from a file *name* (not path), identical across runs and machines.

    fastMRI seeds its masks with the file name so every slice of a volume gets the same
    mask; this is the same idea with a cryptographic hash (Python's ``hash()`` is salted
    per process).  Returns an int in ``[0, 2**31)``.
    """
    digest = hashlib.sha256(f"{Path(fname).name}|{int(base_seed)}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def num_low_frequencies_of(columns: np.ndarray) -> int:
    """Width of the contiguous run of sampled columns around the centre ``W // 2``."""
    cols = np.asarray(columns).astype(bool).ravel()
    c = cols.size // 2
    if not cols[c]:
        return 0
    left = c
    while left > 0 and cols[left - 1]:
        left -= 1
    right = c
    while right < cols.size - 1 and cols[right + 1]:
        right += 1
    return int(right - left + 1)


def detect_challenge(path: str | Path) -> str:
    """``"singlecoil"`` or ``"multicoil"`` from the ``kspace`` dimensions of one fastMRI file.

    Raises:
        FileNotFoundError: missing file.
        DataFileError: unreadable file, no ``kspace``, or ``kspace`` neither 3-D nor 4-D.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such fastMRI file")
    try:
        with h5py.File(path, "r") as hf:
            if "kspace" not in hf:
                raise DataFileError(f"{path}: missing dataset 'kspace' (has: {sorted(hf.keys())})")
            if not isinstance(hf["kspace"], h5py.Dataset):
                raise DataFileError(f"{path}: 'kspace' is an HDF5 group, not a dataset")
            ndim = hf["kspace"].ndim
    except (OSError, KeyError, ValueError) as e:
        if isinstance(e, DataFileError):
            raise
        raise DataFileError(f"{path}: not a readable fastMRI HDF5 file (truncated or corrupt?): "
                            f"{e}") from e
    for challenge, n in _KSPACE_NDIM.items():
        if ndim == n:
            return challenge
    raise DataFileError(f"{path}: kspace must be (slices, H, W) or (slices, coils, H, W), got "
                        f"{ndim} dimensions")


def _attr(attrs: dict, key: str, kind: type):
    v = attrs.get(key)
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode()
    return kind(v.item() if isinstance(v, np.generic) else v)


class FastMRISliceDataset(SliceDataset):
    """Slices of fastMRI ``.h5`` files as :class:`KSpaceSample` objects.

    Args:
        root: a folder of fastMRI ``.h5`` files or a single ``.h5`` file.
        challenge: ``"singlecoil"`` (target ``reconstruction_esc``) or ``"multicoil"``
            (target ``reconstruction_rss``); checked against each file's ``kspace``.
        transform: optional callable ``KSpaceSample -> KSpaceSample`` (e.g. a
            :class:`~mri_unfold.data.transforms.Compose`).
        raw_sample_filter: optional fastMRI filter on ``FastMRIRawDataSample``.

    Each item is a :class:`KSpaceSample` with ``kspace`` ``(C, H, W)`` complex64 as stored
    (``C == 1`` for single-coil), ``mask`` ``(H, W)`` float32 (all ones for fully
    sampled files, the file's column mask otherwise), the target or ``None``, no coil
    maps, and metadata (``crop_size`` = target size if present, else the header's recon
    size clamped to the k-space size).

    Raises:
        FileNotFoundError: ``root`` does not exist.
        DataFileError: a file is unreadable/truncated, lacks ``kspace`` or
            ``ismrmrd_header``, has the wrong number of dimensions for ``challenge``, a
            ``mask`` whose length differs from the k-space width, or (when read) a slice
            with NaN/Inf values.
    """

    def __init__(self, root: str | Path, challenge: str = "singlecoil",
                 transform: Callable[[KSpaceSample], KSpaceSample] | None = None,
                 raw_sample_filter: Callable | None = None):
        if challenge not in CHALLENGES:
            raise ValueError(f"challenge must be one of {CHALLENGES}, got {challenge!r}")
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such fastMRI file or folder")
        self.challenge = challenge
        if root.is_file():
            self._selected = {root.resolve()}
            folder = root.parent
        else:
            self._selected = {p.resolve() for p in root.iterdir()
                              if p.is_file() and p.suffix.lower() in (".h5", ".hdf5")}
            folder = root
        # use_dataset_cache=False: fastMRI's cache is a pickle, which we never load.
        super().__init__(folder, challenge, transform=None, use_dataset_cache=False,
                         raw_sample_filter=raw_sample_filter)
        self.sample_transform = transform

    # -- metadata (called by SliceDataset.__init__ for every file in the folder) --------
    def _retrieve_metadata(self, fname):
        fname = Path(fname)
        if fname.resolve() not in self._selected:
            return {}, 0
        try:
            with h5py.File(fname, "r") as hf:
                self._check_layout(fname, hf)
        except DataFileError:
            raise
        except (OSError, KeyError, ValueError) as e:
            raise DataFileError(f"{fname}: not a readable fastMRI HDF5 file (truncated or "
                                f"corrupt?): {e}") from e
        try:
            metadata, num_slices = super()._retrieve_metadata(fname)
        except (RuntimeError, ValueError, TypeError, ParseError, AttributeError) as e:
            raise DataFileError(f"{fname}: cannot parse the ismrmrd_header (needs encoding/"
                                f"encodedSpace, reconSpace and encodingLimits): {e}") from e
        with h5py.File(fname, "r") as hf:
            target = hf[self.recons_key].shape if self.recons_key in hf else None
            check_header_sizes(fname, metadata, hf["kspace"].shape, target)
        return metadata, num_slices

    def _check_layout(self, fname: Path, hf) -> None:
        keys = sorted(hf.keys())
        for key in ("kspace", "ismrmrd_header"):
            if key not in hf:
                raise DataFileError(f"{fname}: missing dataset {key!r} (has: {keys})")
            if not isinstance(hf[key], h5py.Dataset):
                raise DataFileError(f"{fname}: {key!r} is an HDF5 group, not a dataset")
        shape = hf["kspace"].shape
        want = _KSPACE_NDIM[self.challenge]
        if len(shape) != want:
            layout = "(slices, H, W)" if want == 3 else "(slices, coils, H, W)"
            raise DataFileError(f"{fname}: {self.challenge} k-space must be {layout}, got "
                                f"shape {shape}")
        if not np.issubdtype(hf["kspace"].dtype, np.complexfloating):
            raise DataFileError(f"{fname}: kspace must be complex, got {hf['kspace'].dtype}")
        # one slice, as complex64 plus the working copies of masking and normalising
        require_memory(4 * 8 * int(np.prod(shape[1:], dtype=np.float64)),
                       f"{fname}: one k-space slice of shape {tuple(shape[1:])}")
        if "mask" in hf:
            mshape = getattr(hf["mask"], "shape", None)
            if mshape is None or int(np.prod(mshape)) != shape[-1]:
                raise DataFileError(f"{fname}: mask of shape {mshape} does not match the "
                                    f"k-space width {shape[-1]} (kspace shape {shape})")
            check_binary_columns(fname, np.asarray(hf["mask"]))
        tshape = getattr(hf.get(self.recons_key), "shape", ())
        if self.recons_key in hf and (len(tshape) != 3 or tshape[0] != shape[0]):
            raise DataFileError(f"{fname}: {self.recons_key!r} of shape {tshape} does not match "
                                f"the {shape[0]} k-space slices (expected ({shape[0]}, h, w))")

    # -- reading -----------------------------------------------------------------------
    def __getitem__(self, i: int) -> KSpaceSample:
        fname, dataslice, metadata = self.raw_samples[i]
        try:
            with h5py.File(fname, "r") as hf:
                kspace = np.asarray(hf["kspace"][dataslice])
                mask = np.asarray(hf["mask"]) if "mask" in hf else None
                target = (np.asarray(hf[self.recons_key][dataslice])
                          if self.recons_key in hf else None)
                attrs = dict(hf.attrs)
        except (OSError, KeyError) as e:
            raise DataFileError(f"{fname}: cannot read slice {dataslice} (truncated or "
                                f"corrupt?): {e}") from e
        attrs.update(metadata)
        sample = self._to_sample(Path(fname), dataslice, kspace, mask, target, attrs)
        return sample if self.sample_transform is None else self.sample_transform(sample)

    def _to_sample(self, fname: Path, dataslice: int, kspace: np.ndarray, mask, target,
                   attrs: dict) -> KSpaceSample:
        if not np.isfinite(kspace).all():
            bad = int((~np.isfinite(kspace)).sum())
            raise DataFileError(f"{fname}: slice {dataslice} k-space contains {bad} NaN/Inf "
                                "values")
        if kspace.ndim == 2:
            kspace = kspace[None]
        h, w = kspace.shape[-2:]
        if mask is None:
            mask2d = np.ones((h, w), np.float32)
            nlf = None
        else:
            cols = np.asarray(mask).reshape(-1).astype(bool)
            if not cols.any():
                raise DataFileError(f"{fname}: the 'mask' dataset samples nothing (all zero)")
            mask2d = np.broadcast_to(cols[None, :], (h, w)).astype(np.float32)
            nlf = num_low_frequencies_of(cols)
        if target is not None:
            crop = (int(target.shape[-2]), int(target.shape[-1]))
        else:
            rs = attrs.get("recon_size", (h, w))
            crop = (min(int(rs[0]), h), min(int(rs[1]), w))
        known = {"max", "norm", "acquisition", "patient_id"}
        meta = SampleMetadata(
            fname=fname.name, slice=int(dataslice), max=_attr(attrs, "max", float),
            acquisition=_attr(attrs, "acquisition", str), crop_size=crop,
            num_low_frequencies=nlf, norm=_attr(attrs, "norm", float),
            patient_id=_attr(attrs, "patient_id", str), undersampled=mask is not None,
            extras={"path": str(fname.resolve()),
                    **{k: v for k, v in attrs.items() if k not in known}})
        return KSpaceSample(
            kspace=torch.from_numpy(np.ascontiguousarray(kspace, dtype=np.complex64)),
            mask=torch.from_numpy(np.ascontiguousarray(mask2d)),
            target=None if target is None else torch.from_numpy(
                np.ascontiguousarray(target, dtype=np.float32)),
            coil_maps=None, metadata=meta)
