"""The ``simulated_kspace`` data source: SIMULATED multi-coil complex k-space from magnitude
images, for training networks that are then used on real scanner k-space.

Each image ``x`` (a PNG/TIFF or ``.mat`` slice of a folder, as the ``images`` source reads
them) becomes fully sampled k-space ``y_c = F(S_c · x · e^{iφ})``
(:func:`mri_unfold.data.simulate_kspace`) with

* ``φ`` a smooth random polynomial phase (:func:`~mri_unfold.data.smooth_random_phase`,
  peak ``max_phase`` radians), seeded by the protocol seed and the image index — real
  images have such slowly varying phase;
* ``S_c`` birdcage coil sensitivities (:func:`~mri_unfold.data.birdcage_coil_maps`,
  ``coils`` channels, ``Σ|S_c|² = 1``), kept as the sample's coil maps (no ESPIRiT).

Then, as for the raw sources (:mod:`.raw_open`): a seeded retrospective mask per image
(``mask``, ``acceleration``, ``center_fraction``, ``mask_seed``; the mask seed mixes the
image's index in the folder), normalisation by the zero-filled maximum and, for training,
the complex coil-combined image as the target.

With ``trajectory`` = ``radial``, ``golden-radial`` or ``spiral`` the k-space is
non-Cartesian instead (:func:`simulated_noncartesian_slices`): every image is measured along
one trajectory ``acceleration`` times below Nyquist (the mask keys do not apply) and
prepared exactly as a radial/spiral file is (:func:`~mri_unfold.data.prepare_noncartesian`:
the DCF a file without one gets, normalisation by the gridding maximum), so a network
trained on it takes ISMRMRD radial/spiral files.  This is synthetic data, not a measurement.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from ...errors import UserError
from ...trajectories import TRAJECTORY_KINDS, make_trajectory
from ..noncartesian import file_dcf, prepare_noncartesian, simulate_noncartesian, trajectory_type
from ..simulate import birdcage_coil_maps, simulate_kspace, smooth_random_phase
from ..transforms import ApplyMask
from .fastmri import kspace_transform
from .images import ImageFolderDataset
from .prepared import PreparedSlices
from .raw_open import RAW_OPTIONS, check_raw_options
from .registry import DataSource, register_source

__all__ = ["SimulatedKSpaceSource", "simulated_slices", "simulated_noncartesian_slices"]


def simulated_slices(folder: str | Path, *, coils: int = 8, max_phase: float = math.pi,
                     seed: int = 0, image_variable: str = "im_ori", max_images: int = 0) -> list:
    """Fully sampled simulated :class:`~mri_unfold.data.KSpaceSample` slices (module doc):
    ``kspace`` ``(coils, H, W)`` complex64, ``coil_maps`` the birdcage maps, ``target`` the
    magnitude image ``(H, W)`` float32; ``metadata.fname`` = ``"<folder>_<index>"``."""
    images = ImageFolderDataset(folder, max_images, image_variable)
    first = images[0][0].numpy()
    maps = birdcage_coil_maps(coils, first.shape)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(len(images)):
        img = images[i][0].numpy()
        phase = smooth_random_phase(img.shape, max_phase=max_phase, seed=rng)
        out.append(simulate_kspace(img, np.ones(img.shape, np.float32), coil_maps=maps,
                                   phase=phase, fname=f"{Path(folder).name}_{i:04d}",
                                   slice_index=0))
    return out


def _copy(sample):
    return sample.replace()


def simulated_noncartesian_slices(folder: str | Path, trajectory: str, acceleration: float, *,
                                  coils: int = 1, max_phase: float = math.pi, seed: int = 0,
                                  image_variable: str = "im_ori", max_images: int = 0,
                                  with_image: bool = True) -> list:
    """Prepared non-Cartesian :class:`~mri_unfold.data.KSpaceSample` slices (module doc):
    ``kspace`` ``(coils, K)`` complex64 normalised, ``trajectory`` ``(K, 2)`` radians and
    ``dcf`` ``(K,)`` shared by every slice (the DCF of a file: ramp for radial kinds,
    Pipe–Menon for spiral, unit-norm operator), ``target`` the magnitude and (``with_image``)
    ``image`` the complex image ``(1, H, W)``, both in the k-space's scale."""
    images = ImageFolderDataset(folder, max_images, image_variable)
    first = images[0][0].numpy()
    hw = tuple(int(n) for n in first.shape)
    traj = make_trajectory(trajectory, max(hw), acceleration=acceleration, dcf="none")
    kind = trajectory_type(trajectory)
    traj = dataclasses.replace(traj, dcf=file_dcf(traj.traj, hw, kind))
    maps = birdcage_coil_maps(coils, hw) if coils > 1 else None
    rng = np.random.default_rng(seed)
    out = []
    for i in range(len(images)):
        img = images[i][0].numpy()
        if img.shape != hw:
            raise UserError(f"{folder}: image {i} is {img.shape[0]}x{img.shape[1]}, the first "
                            f"is {hw[0]}x{hw[1]}; a non-Cartesian simulation needs one size")
        phase = smooth_random_phase(hw, max_phase=max_phase, seed=rng)
        s = simulate_noncartesian(img, traj, maps, phase, fname=f"{Path(folder).name}_{i:04d}")
        s = prepare_noncartesian(s, units="radians")
        out.append(s if with_image else s.replace(image=None))
    return out


@register_source
class SimulatedKSpaceSource(DataSource):
    """Simulated multi-coil complex k-space from an image folder (module doc)."""

    kind = "simulated_kspace"
    yields = "kspace"
    description = ("SIMULATED multi-coil k-space from images (smooth random phase, birdcage "
                   "coils), seeded retrospective masks")
    options = {**{k: v for k, v in RAW_OPTIONS.items()
                  if not k.startswith("espirit") and k != "compress_coils"},
               "coils": (int, 8), "max_phase": (float, math.pi),
               "image_variable": (str, "im_ori"), "trajectory": (str, "cartesian")}

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        check_raw_options(options, where)
        if options["coils"] < 1:
            raise UserError(f"{where}: data.coils must be >= 1, got {options['coils']}")
        if options["max_phase"] < 0:
            raise UserError(f"{where}: data.max_phase must be >= 0, got {options['max_phase']}")
        if options["trajectory"] not in ("cartesian",) + TRAJECTORY_KINDS:
            raise UserError(f"{where}: data.trajectory must be one of cartesian, "
                            f"{', '.join(TRAJECTORY_KINDS)}; got {options['trajectory']!r}")

    @classmethod
    def open(cls, path, options: dict, *, seed: int = 0, patch_size=None, max_items: int = 0,
             for_training: bool = True) -> PreparedSlices:
        if options["trajectory"] != "cartesian":
            return PreparedSlices(simulated_noncartesian_slices(
                path, options["trajectory"], options["acceleration"], coils=options["coils"],
                max_phase=options["max_phase"], seed=seed, max_images=max_items,
                image_variable=options["image_variable"], with_image=for_training),
                _copy)
        samples = simulated_slices(path, coils=options["coils"], max_phase=options["max_phase"],
                                   seed=seed, image_variable=options["image_variable"],
                                   max_images=max_items)
        mask = ApplyMask(options["mask"], acceleration=options["acceleration"],
                         center_fraction=options["center_fraction"] or None,
                         base_seed=options["mask_seed"])
        return PreparedSlices(samples, kspace_transform(multicoil=False, mask=mask,
                                                        with_image=for_training,
                                                        normalize=options["normalize"]))
