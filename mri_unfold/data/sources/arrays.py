"""The ``array`` data source: complex k-space in plain arrays — ``.npy``, MATLAB ``.mat``
(v5 and v7.3) and HDF5 ``.h5`` holding a ``kspace`` dataset.

Plain arrays say nothing about their axes, so the axis order comes from the option
``axes``: comma-separated names, one per array axis, from ``slice``, ``coil``, ``readout``
and ``phase`` (``readout`` and ``phase`` required), e.g. ``"slice,coil,readout,phase"``
(fastMRI's layout) or ``"readout,phase,coil"`` (a MATLAB habit).  ``"auto"`` (default)
only accepts the unambiguous cases: 2-D = ``readout,phase`` (one coil, one slice) and 4-D
= ``slice,coil,readout,phase``; a 3-D array could be coils or slices and is refused with a
message asking for ``axes``.  ``layout`` says where the k-space centre is: ``"centered"``
(DC at ``n // 2``, the project's ``fft2c`` convention, default) or ``"unshifted"`` (DC at
index 0: ``numpy.fft.fft2`` of the image, converted exactly by :func:`unshifted_to_centered`
so that the image is where numpy's ``ifft2`` puts it).
``variable`` names the MATLAB variable / HDF5 dataset (default ``kspace``).

Recognised by content: a ``.npy`` file with a complex dtype (real ``.npy`` files are images,
not k-space), a MATLAB file with a ``kspace`` variable, an HDF5 file with a ``kspace``
dataset that is neither fastMRI (no ``ismrmrd_header``) nor ISMRMRD.  Arrays are loaded
without pickle.  Slices carry no FOV or affine.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.io

from ...errors import InvalidValue, UserError
from ...npy_files import load_npy
from ..errors import DataFileError
from ..raw_samples import RawSlices, stack_slices
from .raw_open import RAW_OPTIONS, check_raw_options, open_raw
from .registry import DataSource, register_source
from .sniff import hdf5_keys

__all__ = ["ArraySource", "read_array", "parse_axes", "AXIS_NAMES", "unshifted_to_centered"]

AXIS_NAMES = ("slice", "coil", "readout", "phase")
_MAT5, _MAT73 = b"MATLAB 5.0 MAT-file", b"MATLAB 7.3 MAT-file"


def parse_axes(axes: str) -> tuple[str, ...] | None:
    """``"slice,coil,readout,phase"`` -> a tuple of names; ``"auto"`` -> None.

    Raises:
        InvalidValue: unknown or repeated names, ``readout``/``phase`` missing.
    """
    if axes.strip().lower() == "auto":
        return None
    names = tuple(a.strip().lower() for a in axes.split(","))
    bad = [a for a in names if a not in AXIS_NAMES]
    if bad or len(set(names)) != len(names) or not {"readout", "phase"} <= set(names):
        raise InvalidValue(f"axes {axes!r}: give each array axis one distinct name of "
                           f"{', '.join(AXIS_NAMES)} (readout and phase required)")
    return names


def _kind(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(128)
    except OSError:
        return None
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(_MAT5):
        return "mat5"
    if head.startswith(_MAT73):
        return "mat73"
    return "h5" if head.startswith(b"\x89HDF") else None


def _load(path: Path, variable: str) -> np.ndarray:
    kind = _kind(path)
    try:
        if kind == "npy":
            return load_npy(path)
        if kind == "mat5":
            mat = scipy.io.loadmat(path, variable_names=[variable])
            if variable not in mat:
                raise DataFileError(f"{path}: no variable {variable!r} in the MATLAB file")
            return np.asarray(mat[variable])
        if kind in ("mat73", "h5"):
            with h5py.File(path, "r") as f:
                if variable not in f or not isinstance(f[variable], h5py.Dataset):
                    raise DataFileError(f"{path}: no dataset {variable!r}; found {sorted(f)}")
                a = f[variable][()]
            if a.dtype.names and {"real", "imag"} <= set(a.dtype.names):  # MATLAB complex
                a = a["real"] + 1j * a["imag"]
            return a.T if kind == "mat73" else a           # v7.3 is stored column-major
    except (OSError, ValueError) as e:
        if isinstance(e, DataFileError):
            raise
        raise DataFileError(f"{path}: unreadable array file ({e})") from e
    raise DataFileError(f"{path}: not a .npy, MATLAB or HDF5 file")


def unshifted_to_centered(k: np.ndarray) -> np.ndarray:
    """numpy-convention k-space (``numpy.fft.fft2`` of an image: DC at index 0) ``(..., H, W)``
    -> the project's centred convention (``fft2c`` of the same image), exactly: per axis of
    length ``n`` a phase ramp ``exp(2πi k (n//2) / n)`` (``(-1)^k`` for even ``n``: the image
    is not moved by half a field of view) and ``fftshift``.  Unmeasured (zero) samples stay
    exactly zero."""
    out = k.astype(np.complex64, copy=True)
    for axis in (-2, -1):
        n = out.shape[axis]
        i = np.arange(n)
        ramp = (np.where(i % 2, -1.0, 1.0) if n % 2 == 0
                else np.exp(2j * np.pi * i * (n // 2) / n)).astype(np.complex64)
        shape = [1] * out.ndim
        shape[axis] = n
        out *= ramp.reshape(shape)
    return np.fft.fftshift(out, axes=(-2, -1))


def read_array(path: str | Path, axes: str = "auto", layout: str = "centered",
               variable: str = "kspace") -> RawSlices:
    """The slices of a plain k-space array (module doc): ``kspace`` ``(C, H, W)``
    complex64, centred, ``mask`` measured from the data.

    Raises:
        DataFileError / UserError naming the file: not complex, axes that do not match the
        array (or ambiguous ones with ``axes = "auto"``), NaN/Inf samples, an empty array.
    """
    path = Path(path)
    a = _load(path, variable)
    if not np.iscomplexobj(a):
        raise DataFileError(f"{path}: {variable!r} is {a.dtype} {a.shape}; k-space must be "
                            "complex")
    if a.size == 0:
        raise DataFileError(f"{path}: {variable!r} is empty (shape {a.shape})")
    names = parse_axes(axes)
    if names is None:
        names = {2: ("readout", "phase"), 4: ("slice", "coil", "readout", "phase")}.get(a.ndim)
        if names is None:
            raise UserError(f"{path}: the axes of {variable!r} {a.shape} are ambiguous "
                            f"({a.ndim}-D: is the first axis coils or slices?); set the "
                            "array's axis order, axes = e.g. 'coil,readout,phase'")
    if len(names) != a.ndim:
        raise UserError(f"{path}: axes {','.join(names)!r} name {len(names)} axes but "
                        f"{variable!r} has {a.ndim} (shape {a.shape})")
    order = [names.index(n) for n in AXIS_NAMES if n in names]
    k = np.transpose(a, order).astype(np.complex64)
    for n in AXIS_NAMES[:2]:
        if n not in names:
            k = k[None] if n == "slice" else k[:, None]
    if layout == "unshifted":
        k = unshifted_to_centered(k)
    elif layout != "centered":
        raise InvalidValue(f"layout must be 'centered' or 'unshifted', got {layout!r}")
    return stack_slices(np.ascontiguousarray(k), path, {
        "format": f"plain array ({_kind(path)})", "variable": variable, "stored_shape":
        list(a.shape), "axes": ",".join(names), "layout": layout, "trajectory": "cartesian"})


@register_source
class ArraySource(DataSource):
    """Plain complex k-space arrays (module doc)."""

    kind = "array"
    yields = "kspace"
    description = "complex k-space in .npy / .mat / .h5 ('kspace'); axis order from options"
    options = {**RAW_OPTIONS, "axes": (str, "auto"), "layout": (str, "centered"),
               "variable": (str, "kspace")}
    choices = {"layout": ("centered", "unshifted")}

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        check_raw_options(options, where)
        try:
            parse_axes(options["axes"])
        except InvalidValue as e:
            raise UserError(f"{where}: data.{e}") from e

    @classmethod
    def detect(cls, path: Path) -> bool:
        p = Path(path)
        if not p.is_file():
            return False
        kind = _kind(p)
        if kind == "npy":
            try:
                return np.iscomplexobj(load_npy(p, mmap_mode="r"))
            except (OSError, ValueError):
                return False
        if kind == "mat5":
            try:
                return any(name == "kspace" for name, *_ in scipy.io.whosmat(p))
            except (OSError, ValueError):
                return False
        keys = hdf5_keys(p) if kind in ("mat73", "h5") else None
        return keys is not None and "kspace" in keys and "ismrmrd_header" not in keys

    @classmethod
    def read(cls, path, options: dict | None = None) -> RawSlices:
        opts = {k: v for k, (_, v) in cls.options.items()} | (options or {})
        return read_array(path, opts["axes"], opts["layout"], opts["variable"])

    @classmethod
    def open(cls, path, options: dict, *, seed: int = 0, patch_size=None, max_items: int = 0,
             for_training: bool = True):
        return open_raw(cls, path, options, max_items=max_items, for_training=for_training)
