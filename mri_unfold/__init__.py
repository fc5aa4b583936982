"""mri-unfold: deep unfolding networks for compressive sensing and MRI reconstruction.

Subpackages: :mod:`mri_unfold.operators` (Φ), :mod:`mri_unfold.masks`,
:mod:`mri_unfold.models`, :mod:`mri_unfold.metrics`, :mod:`mri_unfold.losses`,
:mod:`mri_unfold.data`, :mod:`mri_unfold.training`, :mod:`mri_unfold.cli`.
"""
import importlib

__version__ = "0.1.0"

_LAZY = {
    "reconstruct_volume": ("mri_unfold.reconstruct", "reconstruct_volume"),
    "reconstruct_fastmri": ("mri_unfold.reconstruct", "reconstruct_fastmri"),
    "reconstruct_nifti": ("mri_unfold.reconstruct", "reconstruct_nifti"),
}


def __getattr__(name):  # lazy top-level API without importing torch-heavy modules up front
    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'mri_unfold' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
