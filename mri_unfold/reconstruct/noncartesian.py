"""Non-Cartesian k-space files (ISMRMRD radial, spiral, ...) through the pipeline.

:func:`reconstruct_noncartesian_slices` takes the slices a k-space source read with their
trajectories (:meth:`mri_unfold.data.sources.DataSource.read`), prepares them
(:func:`mri_unfold.data.prepare_noncartesian`: trajectory in radians, Pipe–Menon DCF when the
file has none, normalisation) and reconstructs them with a network or a classical method
(gridding as ``zero-filled``; ``sense`` and ``l1-wavelet`` need coil maps for multi-coil data,
which are not estimated for non-Cartesian data).  :func:`~mri_unfold.reconstruct.
reconstruct_kspace_file` hands non-Cartesian files here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..data.noncartesian import prepare_noncartesian
from ..data.samples import KSpaceSample
from ..errors import UserError
from .pipeline import ReconResult, reconstruct_samples

__all__ = ["reconstruct_noncartesian_slices"]


def reconstruct_noncartesian_slices(path: Path, raw: Sequence[KSpaceSample], model=None, *,
                                    method: str | None = None, mask=None, units: str = "cycles",
                                    **options) -> ReconResult:
    """Reconstruct non-Cartesian slices read from ``path`` (module doc).

    Args:
        raw: the source's slices (``trajectory`` in ``units``, ISMRMRD: cycles per FOV).
        model / method: a network (complex-domain, or real-valued with ``real_input`` for
            single-coil data) or a classical method.
        mask: must be ``None`` (no retrospective Cartesian mask for non-Cartesian data).
        options: ``batch_size``, ``device``, ``progress``, ... of
            :func:`~mri_unfold.reconstruct.pipeline.reconstruct_samples`.
    Raises:
        UserError: a Cartesian mask, coil-map methods on multi-coil data, a network on
            multi-coil data (no maps), trajectories outside their range.
    """
    if mask is not None:
        raise UserError(f"{path}: the k-space is non-Cartesian; a Cartesian mask does not "
                        "apply")
    coils = raw[0].num_coils
    if coils > 1 and (model is not None or method not in (None, "zero-filled")):
        raise UserError(f"{path}: {coils}-coil non-Cartesian data: coil maps are not estimated "
                        "for non-Cartesian k-space; use the zero-filled method (gridding, RSS)")
    samples = [prepare_noncartesian(s, units=units) for s in raw]
    if options.pop("complex_model", True) is False:
        options["real_input"] = True
    return reconstruct_samples(samples, model, method=method, **options)
