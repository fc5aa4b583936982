"""Normalised 2-D slices of image volumes: the data set behind the ``nifti`` and ``dicom``
sources.

Each volume ``(S, H, W)`` is divided by its maximum magnitude (networks are trained on
[0, 1] images); slices whose maximum is below ``min_signal`` × the volume maximum (the empty
slices at the edges of a head) are skipped.  ``values`` chooses the image domain the
protocol's operator measures:

* ``"magnitude"`` — ``|x|``, real ``(1, H, W)`` float32 (``real_input`` operators);
* ``"complex"`` — the volume's complex values (a real volume gives zero phase), complex64;
* ``"smooth_phase"`` — SIMULATION: ``|x| · exp(iφ)`` with a seeded smooth random phase per
  slice (:func:`mri_unfold.data.smooth_random_phase`), complex64.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ...errors import UserError
from ..errors import DataFileError
from ..simulate import smooth_random_phase

__all__ = ["VolumeSlices", "VALUES", "check_slice_options"]

#: Image domains a slice can be given in.
VALUES = ("magnitude", "complex", "smooth_phase")


def check_slice_options(options: dict, where: str) -> None:
    """Validate the ``min_signal`` and ``volume_index`` options of a volume source (UserError
    naming ``where`` and the key)."""
    if not 0 <= options["min_signal"] < 1:
        raise UserError(f"{where}: data.min_signal must be in [0, 1), got "
                        f"{options['min_signal']}")
    if options["volume_index"] < 0:
        raise UserError(f"{where}: data.volume_index must be >= 0, got "
                        f"{options['volume_index']}")


class VolumeSlices(Dataset):
    """Normalised 2-D slices of volumes (module doc); items ``(1, H, W)``.

    Args:
        root: the input (file or folder), for messages.
        volumes: ``[(name, (S, H, W) float32/complex64 array), ...]``; ``name`` (a path or a
            label) identifies the volume in :attr:`index` and in messages.
        values / min_signal / seed: module doc (``seed``: the simulated phases).
        what / hint: how messages call the slices and what to do about different sizes.

    Attributes:
        index: ``[(name, slice), ...]`` of the kept slices, in item order.

    Raises:
        DataFileError naming the volume: all zeros; slices of different sizes; no slice left.
    """

    def __init__(self, root, volumes, *, values: str = "magnitude", min_signal: float = 0.0,
                 seed: int = 0, what: str = "slices", hint: str = ""):
        if values not in VALUES:
            raise ValueError(f"values must be one of {VALUES}, got {values!r}")
        self.values, self.seed = values, int(seed)
        self.volumes: list[np.ndarray] = []
        self.index: list[tuple[object, int]] = []
        self._items: list[tuple[int, int]] = []
        names = []
        for fi, (name, vol) in enumerate(volumes):  # read one by one
            names.append(name)
            peak = float(np.abs(vol).max())
            if peak == 0.0:
                raise DataFileError(f"{name}: the volume is all zeros")
            vol = vol / np.float32(peak)
            if values == "magnitude":
                vol = np.abs(vol).astype(np.float32)
            keep = [k for k in range(len(vol)) if np.abs(vol[k]).max() >= max(min_signal, 1e-12)]
            self.volumes.append(vol)
            self.index += [(name, k) for k in keep]
            self._items += [(fi, k) for k in keep]
        shapes = {tuple(v.shape[1:]) for v in self.volumes}
        if len(shapes) > 1:
            desc = ", ".join(f"{getattr(n, 'name', n)}: {tuple(v.shape[1:])}"
                             for n, v in zip(names, self.volumes))
            raise DataFileError(f"{root}: {what} have different sizes ({desc})"
                                + (f"; {hint}" if hint else ""))
        if not self._items:
            raise DataFileError(f"{root}: no slice has signal above min_signal={min_signal}")

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> torch.Tensor:
        fi, k = self._items[i]
        img = self.volumes[fi][k]
        if self.values == "smooth_phase":
            rng = np.random.default_rng([self.seed, fi, k])
            phase = smooth_random_phase(img.shape, seed=rng)
            img = (np.abs(img) * np.exp(1j * phase)).astype(np.complex64)
        elif self.values == "complex":
            img = img.astype(np.complex64)
        return torch.from_numpy(np.ascontiguousarray(img))[None]
