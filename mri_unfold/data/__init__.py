"""MRI data: fastMRI HDF5 slices, transforms, ESPIRiT coil maps, image files, NIfTI, simulation.

See ``docs/data.md``.  Everything returns typed :class:`KSpaceSample` objects (k-space
``(C, H, W)`` complex64 in the centred layout, mask, target, coil maps, metadata).
"""
from .errors import DataFileError
from .espirit import EspiritCache, EspiritSettings, EstimateCoilMaps, acs_width, espirit_maps
from ..atomic import atomic_output
from .fastmri_slices import FastMRISliceDataset, detect_challenge, num_low_frequencies_of, stable_seed
from .image_files import ImageFolderSlices, MatFileSlices, load_mat_image, read_image
from .nifti import NiftiVolume, save_like
from .samples import KSpaceSample, SampleBatch, SampleMetadata, collate_samples
from .simulate import birdcage_coil_maps, simulate_kspace, smooth_random_phase
from .transforms import (ApplyMask, Compose, CropToRecon, Normalize, fastmri_transform,
                         zero_filled_image)

__all__ = [
    "DataFileError", "EspiritCache", "EspiritSettings", "EstimateCoilMaps", "acs_width",
    "espirit_maps", "FastMRISliceDataset", "num_low_frequencies_of", "stable_seed",
    "KSpaceSample", "SampleBatch", "SampleMetadata", "collate_samples", "ApplyMask", "Compose",
    "CropToRecon", "Normalize", "fastmri_transform", "zero_filled_image", "ImageFolderSlices",
    "MatFileSlices", "load_mat_image", "read_image", "NiftiVolume", "save_like",
    "atomic_output", "detect_challenge", "birdcage_coil_maps", "simulate_kspace", "smooth_random_phase",
]
