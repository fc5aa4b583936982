"""Trajectories read from files: ``.npy`` arrays and ISMRMRD / MRD raw data.

* ``.npy`` — a real array ``(K, 2)`` or ``(..., 2)`` (e.g. ``(spokes, readout, 2)``),
  flattened to ``(K, 2)``; loaded with ``allow_pickle=False``;
* ISMRMRD ``.h5`` — the ``traj`` of every imaging acquisition of the dataset group (noise
  scans, ``trajectory_dimensions == 0`` skipped), concatenated in acquisition order, first
  two dimensions.  The ``ismrmrd`` package reads the records.  ISMRMRD leaves the units to
  the writer; the common convention (and the one assumed here) is cycles per FOV,
  ``[-N/2, N/2]``; :func:`mri_unfold.operators.to_radians` validates them.  The ``ismrmrd``
  data source (:mod:`mri_unfold.data.sources`) reads trajectories together with the k-space
  samples; this reader is for a trajectory on its own (e.g. to simulate a measured one).

Returns :class:`LoadedTrajectory` (``traj`` ``(K, 2)`` float64 and its ``units``).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from ..errors import DataFileError
from ..npy_files import load_npy

__all__ = ["LoadedTrajectory", "load_trajectory", "NOISE_FLAG"]

#: ISMRMRD flag bit (1-based) of noise-measurement acquisitions.
NOISE_FLAG = 19


@dataclasses.dataclass(frozen=True)
class LoadedTrajectory:
    """``traj`` ``(K, 2)`` float64 in ``units`` (``"radians"`` or ``"cycles"``)."""

    traj: np.ndarray
    units: str


def _from_npy(path: Path, units: str) -> LoadedTrajectory:
    try:
        a = load_npy(path)
    except ValueError as e:
        raise DataFileError(f"{path}: not a plain .npy array ({e})") from e
    if a.ndim < 2 or a.shape[-1] != 2 or not np.isrealobj(a) or a.dtype.kind not in "fiu":
        raise DataFileError(f"{path}: expected a real (..., 2) trajectory array, got {a.dtype} "
                            f"{a.shape}")
    return LoadedTrajectory(a.reshape(-1, 2).astype(np.float64), units)


def _from_ismrmrd(path: Path, group: str) -> LoadedTrajectory:
    import ismrmrd  # noqa: PLC0415  (optional heavy dependency, imported when used)

    try:
        ds = ismrmrd.Dataset(str(path), group, create_if_needed=False)
    except Exception as e:  # noqa: BLE001 - h5py/ismrmrd raise many types for a bad file
        raise DataFileError(f"{path}: not an ISMRMRD file with group {group!r} ({e})") from e
    try:
        parts = []
        for i in range(ds.number_of_acquisitions()):
            acq = ds.read_acquisition(i)
            if acq.is_flag_set(NOISE_FLAG) or acq.trajectory_dimensions < 2:
                continue
            parts.append(np.asarray(acq.traj, np.float64).reshape(-1, acq.trajectory_dimensions))
    finally:
        ds.close()
    if not parts:
        raise DataFileError(f"{path}: no imaging acquisition with a stored trajectory")
    return LoadedTrajectory(np.concatenate(parts)[:, :2].copy(), "cycles")


def load_trajectory(path: str | os.PathLike, *, units: str = "radians",
                    group: str = "dataset") -> LoadedTrajectory:
    """Read a trajectory (module doc).

    Args:
        path: ``.npy`` or ISMRMRD ``.h5``.
        units: the units of a ``.npy`` array (``"radians"`` or ``"cycles"``); ISMRMRD
            trajectories are cycles per FOV.
        group: the ISMRMRD dataset group.
    Raises:
        FileNotFoundError: missing file.  DataFileError: unreadable file, wrong array shape,
            no trajectory, NaN/Inf coordinates, every sample at k = 0, unknown suffix.
        ValueError: unknown ``units``.
    """
    path = Path(path)
    if units not in ("radians", "cycles"):
        raise ValueError(f"units must be 'radians' or 'cycles', got {units!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: trajectory file not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        loaded = _from_npy(path, units)
    elif suffix in (".h5", ".hdf5", ".mrd"):
        loaded = _from_ismrmrd(path, group)
    else:
        raise DataFileError(f"{path}: unsupported trajectory file (expected .npy or ISMRMRD "
                            ".h5)")
    if not np.isfinite(loaded.traj).all():
        raise DataFileError(f"{path}: the trajectory has NaN/Inf coordinates")
    if len(loaded.traj) > 1 and not np.abs(loaded.traj).any():
        raise DataFileError(f"{path}: all {len(loaded.traj)} trajectory samples are at k = 0")
    return loaded
