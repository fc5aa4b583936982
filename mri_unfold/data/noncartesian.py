"""SIMULATION of non-Cartesian k-space from images, and the ``noncartesian`` operator kind.

* :func:`simulate_noncartesian` — one image measured along a trajectory (optionally with
  coil maps and a smooth phase) as a non-Cartesian :class:`~mri_unfold.data.KSpaceSample`:
  raw samples ``(C, K)``, the trajectory ``(K, 2)`` in radians, its DCF; the reconstruction
  pipeline and the k-space operator factory take it like measured data;
* :func:`prepare_noncartesian` — a non-Cartesian slice as read from a file (ISMRMRD: the
  trajectory as stored, no DCF) made ready for the pipeline: trajectory in radians, a ramp
  (radial) or Pipe–Menon DCF scaled to a unit-norm operator, k-space normalised by the
  gridding maximum;
* :func:`noncartesian_operator` — ``operator.kind = "noncartesian"`` of the protocols: one
  fixed :class:`~mri_unfold.operators.NonCartesianFourier` that measures the image targets
  of an image source (``images``, ``nifti``): ``operator.trajectory`` (``radial``,
  ``golden-radial``, ``spiral`` or a file), ``operator.acceleration`` (relative to Nyquist),
  ``operator.readout`` (0 = ``2 N``), ``operator.dcf`` (``auto``, ``ramp``, ``pipe-menon``,
  ``none``), ``operator.coils`` (> 1: simulated birdcage maps,
  :func:`~mri_unfold.data.simulate.birdcage_coil_maps`) and ``operator.real_input``.  A
  checkpoint stores the operator's tensors (trajectory, DCF, maps, image size), which
  rebuild it exactly.

The results are synthetic (SIMULATION), not measured data.
"""
from __future__ import annotations

import numpy as np
import torch

from ..baselines import zero_filled
from ..errors import UserError
from ..operators import NonCartesianFourier, register_operator, to_radians
from ..trajectories import (Trajectory, make_trajectory, normalize_dcf, pipe_menon_dcf,
                            ramp_from_trajectory)
from .samples import KSpaceSample, SampleMetadata
from .simulate import birdcage_coil_maps

__all__ = ["simulate_noncartesian", "noncartesian_operator", "trajectory_type",
           "prepare_noncartesian", "file_dcf"]


def trajectory_type(kind: str) -> str:
    """``metadata.trajectory_type`` of a trajectory kind (``radial``, ``spiral``, ``other``)."""
    return "radial" if "radial" in kind else "spiral" if "spiral" in kind else "other"


def simulate_noncartesian(image, trajectory: Trajectory, coil_maps=None, phase=None, *,
                          fname: str = "simulated", slice_index: int = 0) -> KSpaceSample:
    """SIMULATE non-Cartesian k-space of one image.

    Args:
        image: ``(H, W)`` real magnitude (or complex) image, numpy or tensor.
        trajectory: a :class:`~mri_unfold.trajectories.Trajectory` (radians, DCF or None).
        coil_maps: ``None`` or complex ``(C, H, W)``.
        phase: ``None`` or an ``(H, W)`` phase in radians.
    Returns:
        :class:`KSpaceSample` with ``kspace`` ``(C, K)`` complex64 (raw samples ``F S x``),
        ``mask`` ones ``(K,)``, ``trajectory`` ``(K, 2)`` float32 radians, ``dcf`` ``(K,)``
        float32 or None, ``image_shape`` ``(H, W)``, ``target`` the magnitude, ``image`` the
        complex training image ``(1, H, W)``.
    Raises:
        ValueError: an image that is not 2-D, maps or phase of another size.
    """
    img = torch.as_tensor(np.asarray(image))
    if img.ndim != 2:
        raise ValueError(f"image must be a 2-D (H, W) image, got shape {tuple(img.shape)}")
    hw = tuple(int(s) for s in img.shape)
    x = img.to(torch.complex64)
    if phase is not None:
        ph = torch.as_tensor(np.asarray(phase), dtype=torch.float32)
        if tuple(ph.shape) != hw:
            raise ValueError(f"phase shape {tuple(ph.shape)} does not match the image {hw}")
        x = x * torch.polar(torch.ones_like(ph), ph)
    op = NonCartesianFourier(trajectory.traj, hw, coil_maps)
    with torch.no_grad():
        k = op(x[None, None])[0]
    k_count = trajectory.num_samples
    dcf = None if trajectory.dcf is None else torch.as_tensor(trajectory.dcf, dtype=torch.float32)
    meta = SampleMetadata(fname=fname, slice=int(slice_index), max=float(x.abs().max()),
                          crop_size=hw, undersampled=True,
                          trajectory_type=trajectory_type(trajectory.kind),
                          extras={"simulated": True, "phase": phase is not None,
                                  "trajectory": dict(trajectory.info, kind=trajectory.kind)})
    return KSpaceSample(kspace=k.contiguous(), mask=torch.ones(k_count), target=x.abs(),
                        coil_maps=None if op.coil_maps is None else
                        op.coil_maps.to(torch.complex64).clone(), metadata=meta,
                        image=x[None].clone(),
                        trajectory=torch.as_tensor(trajectory.traj, dtype=torch.float32),
                        dcf=dcf, image_shape=hw)


def prepare_noncartesian(sample: KSpaceSample, *, units: str = "cycles") -> KSpaceSample:
    """``sample`` with its trajectory in radians (from ``units``; ISMRMRD stores cycles per
    FOV), a DCF when it has none (radial: the ramp,
    :func:`~mri_unfold.trajectories.ramp_from_trajectory`; otherwise Pipe–Menon; scaled by
    :func:`~mri_unfold.trajectories.normalize_dcf`)
    and k-space divided by the maximum of its gridding image (``metadata.scale``).

    Raises:
        UserError: a Cartesian sample, or a trajectory outside the range of ``units``
            (naming the slice).
    """
    if sample.is_cartesian:
        raise UserError(f"{sample.where}: prepare_noncartesian needs a non-Cartesian slice")
    hw = tuple(sample.image_shape)
    try:
        traj = to_radians(sample.trajectory.double(), hw, units)
    except ValueError as e:
        raise UserError(f"{sample.where}: {e}") from e
    dcf = sample.dcf
    if dcf is None:
        dcf = torch.from_numpy(file_dcf(traj.numpy(), hw, sample.metadata.trajectory_type))
    op = NonCartesianFourier(traj, hw, dcf=dcf, mask=sample.mask)
    with torch.no_grad():
        peak = float(zero_filled(op.weight(sample.kspace[None].to(torch.complex128)), op).max())
    scale = peak if peak > 0 else 1.0
    meta = sample.metadata
    out = sample.replace(kspace=(sample.kspace / scale).to(torch.complex64),
                         trajectory=traj.float(), dcf=dcf.float(),
                         target=None if sample.target is None else sample.target / scale,
                         image=None if sample.image is None else sample.image / scale)
    out.metadata.scale = float(meta.scale) * scale
    return out


def file_dcf(traj: np.ndarray, image_shape: tuple[int, int], trajectory_type: str) -> np.ndarray:
    """The DCF :func:`prepare_noncartesian` gives a trajectory read without one: the ramp
    (:func:`~mri_unfold.trajectories.ramp_from_trajectory`) for ``"radial"``, Pipe–Menon
    otherwise, scaled to a unit-norm operator.  ``traj`` ``(K, 2)`` radians; returns ``(K,)``
    float32."""
    hw = tuple(int(s) for s in image_shape)
    w = ramp_from_trajectory(traj, hw) if trajectory_type == "radial" else \
        pipe_menon_dcf(traj, hw)
    return normalize_dcf(traj, w, hw).astype(np.float32)


def _trajectory(cfg: dict, image_shape) -> Trajectory:
    n = max(int(s) for s in image_shape)
    try:
        return make_trajectory(cfg["trajectory"], n, acceleration=cfg["acceleration"],
                               readout=cfg["readout"] or None, dcf=cfg["dcf"])
    except (ValueError, FileNotFoundError) as e:
        raise UserError(f"operator.trajectory = {cfg['trajectory']!r} (acceleration "
                        f"{cfg['acceleration']}, dcf {cfg['dcf']!r}): {e}") from e


def noncartesian_operator(cfg: dict, tensors=None, image_shape=None) -> NonCartesianFourier:
    """``operator.kind = "noncartesian"`` (module doc).

    Raises:
        UserError: no image size (a fresh build needs the training images' size),
            ``operator.coils < 1``, an unusable trajectory or DCF setting.
    """
    real = bool(cfg.get("real_input", True))
    if tensors is not None:
        return NonCartesianFourier.from_state(tensors, real_input=real)
    if image_shape is None:
        raise UserError("operator.kind = 'noncartesian' needs the image size of the data "
                        "(set data.patch_size, or use whole images of one size)")
    coils = int(cfg.get("coils", 1))
    if coils < 1:
        raise UserError(f"operator.coils must be >= 1, got {coils}")
    hw = tuple(int(s) for s in image_shape)
    traj = _trajectory(cfg, hw)
    maps = birdcage_coil_maps(coils, hw) if coils > 1 else None
    return NonCartesianFourier(traj.traj, hw, maps, dcf=traj.dcf, real_input=real)


register_operator("noncartesian", from_config=noncartesian_operator)
