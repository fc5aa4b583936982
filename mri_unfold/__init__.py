"""mri-unfold: deep unfolding networks for compressive sensing and MRI reconstruction.

Subpackages: :mod:`mri_unfold.operators` (Φ), :mod:`mri_unfold.masks`,
:mod:`mri_unfold.models`, :mod:`mri_unfold.metrics`, :mod:`mri_unfold.losses`,
:mod:`mri_unfold.data`, :mod:`mri_unfold.training`, :mod:`mri_unfold.cli`.
"""
__version__ = "0.1.0"
