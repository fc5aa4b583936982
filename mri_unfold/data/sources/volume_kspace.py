"""The ``volume_kspace`` data source: ky–kz slices of NIfTI volumes simulated as 3-D scans —
the training data of 2-D networks for 3-D scans.

Every NIfTI volume of ``train`` (a file or a folder, recognised by content) is simulated
into a 3-D scan (:class:`~mri_unfold.data.simulate3d.SimulatedVolume`: readout along the
array axis ``readout_axis``, ``coils`` birdcage coils, a smooth random phase, optional
noise; SIMULATION, not measured data) and cut, by readout decoupling, into its readout
positions: each item is one ky–kz :class:`~mri_unfold.data.KSpaceSample` ``(C, KY, KZ)``.
``positions`` (``"start:stop"`` along the readout, Python slice rules; ``""`` = all) picks
the positions — hold some out of training for validation or testing — and positions whose
image peaks below ``min_signal`` × the volume maximum are skipped.

Then, as for every k-space source: a ky–kz mask per volume (``mask`` a kind of
:func:`~mri_unfold.masks.kykz.make_kykz_mask` with ``acceleration``, ``acs``,
``elliptical``, ``partial_fourier``, seeded by the file name and ``mask_seed``, the same for
every position of the volume, as on a scanner; ``"none"`` keeps the k-space fully sampled —
for masks learned with the network, ``operator.kind = "learned_kspace_mask"``), coil maps
(``maps = "espirit"``: ESPIRiT of each position's ACS block as at reconstruction time, cached
in ``espirit_cache``; ``"given"``: the simulation's own maps), normalisation by the
zero-filled maximum and, for training, the complex coil-combined image as the target.
"""
from __future__ import annotations

import math

import numpy as np
from torch.utils.data import Dataset

from ...errors import UserError
from ...masks.kykz import KYKZ_KINDS, make_kykz_mask
from ..fastmri_slices import stable_seed
from ..nifti import NiftiVolume
from ..samples import KSpaceSample, collate_samples
from ..simulate3d import SimulatedVolume
from ..transforms import ApplyMask
from .fastmri import kspace_transform
from .nifti import nifti_files
from .registry import DataSource, register_source

__all__ = ["VolumeKSpaceSource", "VolumePositions", "parse_positions"]

MAPS = ("espirit", "given")


def parse_positions(spec: str, n: int, where: str) -> range:
    """``"start:stop"`` (Python slice rules, either side may be empty) -> the positions of an
    axis of ``n``; ``""`` = all.

    Raises:
        UserError naming ``where``: not of that form, or an empty selection.
    """
    if not spec:
        return range(n)
    parts = spec.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        start, stop = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise UserError(f"{where}: data.positions must be 'start:stop' (e.g. '0:100'), got "
                        f"{spec!r}") from None
    r = range(n)[slice(start, stop)]
    if len(r) == 0:
        raise UserError(f"{where}: data.positions = {spec!r} selects no readout position of "
                        f"{n}")
    return r


class VolumePositions(Dataset):
    """The prepared readout positions of simulated volumes (module doc); items
    :class:`~mri_unfold.data.KSpaceSample` ``(C, KY, KZ)``.

    Attributes:
        index: ``[(file, position), ...]`` in item order; ``files``: the volumes read;
        ``masks``: the ky–kz mask of each volume (``None`` for ``mask = "none"``).
    """

    def __init__(self, root, options: dict, *, max_volumes: int = 0, with_image: bool = True):
        self.files = nifti_files(root, max_volumes)
        self.items: list[tuple[int, int]] = []
        self.index: list = []
        self.sims, self.transforms, self.masks = [], [], []
        kind = options["mask"]
        for fi, path in enumerate(self.files):
            vol = NiftiVolume(path, axis=options["readout_axis"]).slices()
            shape = vol.shape[1:]
            mask = None
            if kind != "none":
                seed = stable_seed(path.name, options["mask_seed"])
                try:
                    mask = make_kykz_mask(kind, shape, acceleration=options["acceleration"],
                                          acs=tuple(options["acs"]),
                                          elliptical=options["elliptical"],
                                          partial_fourier=options["partial_fourier"],
                                          seed=seed).mask
                except (ValueError, TypeError) as e:
                    raise UserError(f"{path}: data.mask = {kind!r}: {e}") from e
            sim = SimulatedVolume(vol, np.ones(shape, np.float32), coils=options["coils"],
                                  seed=stable_seed(path.name, options["sim_seed"]),
                                  max_phase=options["max_phase"],
                                  noise_std=options["noise_std"], fname=path.name)
            peak = float(np.abs(vol).max())
            for x in parse_positions(options["positions"], len(vol), str(path)):
                if float(np.abs(vol[x]).max()) >= options["min_signal"] * peak:
                    self.items.append((fi, x))
                    self.index.append((path, x))
            multicoil = options["coils"] > 1 and options["maps"] == "espirit"
            self.sims.append(sim)
            self.masks.append(mask)
            self.transforms.append(kspace_transform(
                multicoil=multicoil, mask=None if mask is None else ApplyMask(mask=mask),
                espirit_crop=options["espirit_crop"], espirit_cache=options["espirit_cache"],
                with_image=with_image))
        if not self.items:
            raise UserError(f"{root}: no readout position with signal above min_signal="
                            f"{options['min_signal']}")
        shapes = {s.shape[1:] for s in self.sims}
        if len(shapes) > 1:
            raise UserError(f"{root}: the volumes' ky-kz planes have different sizes "
                            f"{sorted(shapes)}; use volumes of one matrix")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> KSpaceSample:
        fi, x = self.items[i]
        return self.transforms[fi](self.sims[fi].samples([x])[0])

    @property
    def collate_fn(self):
        return collate_samples


@register_source
class VolumeKSpaceSource(DataSource):
    """ky–kz slices of simulated 3-D scans of NIfTI volumes (module doc)."""

    kind = "volume_kspace"
    yields = "kspace"
    description = ("SIMULATED 3-D scans of NIfTI volumes cut into ky-kz slices (readout "
                   "positions), ky-kz masks with an ACS block")
    options = {
        "readout_axis": (int, 0),
        "positions": (str, ""),
        "min_signal": (float, 0.05),
        "coils": (int, 8),
        "maps": (str, "espirit"),
        "max_phase": (float, math.pi),
        "noise_std": (float, 0.0),
        "sim_seed": (int, 0),
        "mask": (str, "poisson"),
        "acceleration": (float, 4.0),
        "acs": (list, [24, 24]),
        "elliptical": (bool, False),
        "partial_fourier": (float, 1.0),
        "mask_seed": (int, 0),
        "espirit_crop": (float, 0.95),
        "espirit_cache": (str, ""),
    }
    choices = {"mask": ("none", *KYKZ_KINDS), "maps": MAPS}

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        if options["readout_axis"] not in (0, 1, 2):
            raise UserError(f"{where}: data.readout_axis must be 0, 1 or 2, got "
                            f"{options['readout_axis']}")
        if not 0 <= options["min_signal"] < 1:
            raise UserError(f"{where}: data.min_signal must be in [0, 1), got "
                            f"{options['min_signal']}")
        if options["coils"] < 1:
            raise UserError(f"{where}: data.coils must be >= 1, got {options['coils']}")
        acs = options["acs"]
        if len(acs) != 2 or not all(isinstance(a, int) and a >= 1 for a in acs):
            raise UserError(f"{where}: data.acs must be two positive integers [KY, KZ], got "
                            f"{acs!r}")
        if options["acceleration"] < 1 or options["noise_std"] < 0:
            raise UserError(f"{where}: data.acceleration must be >= 1 and data.noise_std >= 0")

    @classmethod
    def detect(cls, path) -> bool:
        return False        # NIfTI files are the nifti source's; this one is chosen by name

    @classmethod
    def open(cls, path, options: dict, *, seed: int = 0, patch_size=None, max_items: int = 0,
             for_training: bool = True) -> VolumePositions:
        return VolumePositions(path, options, max_volumes=max_items, with_image=for_training)

