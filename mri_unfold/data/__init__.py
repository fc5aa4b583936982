"""MRI data: the one k-space sample type, transforms, data sources, readers, simulation.

See ``docs/data.md``.  k-space data sources return typed :class:`KSpaceSample` objects
(k-space ``(C, H, W)`` complex64 in the centred layout, mask, target, coil maps, training
image, metadata) stacked by :func:`collate_samples`; image sources return ``(1, H, W)``
tensors.  :mod:`.sources` is the ``data.kind`` registry.
"""
from ..atomic import atomic_output
from .errors import DataFileError
from .samples import CollateError, KSpaceSample, SampleBatch, SampleMetadata, collate_samples
from .fastmri_slices import (FastMRISliceDataset, detect_challenge, num_low_frequencies_of,
                             stable_seed)
from .espirit import EspiritCache, EspiritSettings, EstimateCoilMaps, acs_width, espirit_maps
from .image_files import ImageFolderSlices, MatFileSlices, load_mat_image, read_image
from .nifti import NiftiVolume, save_like
from .dicom_volume import DicomVolume
from .simulate import birdcage_coil_maps, simulate_kspace, smooth_random_phase
from .coil_compression import CompressCoils
from .prewhiten import Prewhiten, noise_covariance, whitening_matrix
from .sampling import SamplingPattern, measured_mask, sampling_pattern
from .ismrmrd_writer import write_ismrmrd
from .noncartesian import noncartesian_operator, simulate_noncartesian
from .transforms import (ApplyMask, AttachTrainingImage, Compose, CropToRecon, Normalize,
                         RequireCoilMaps, combined_image, fastmri_transform, zero_filled_image)
from .sources import (DataSource, FastMRIKSpaceSlices, detect_source, get_source,
                      register_source, source_kinds)

__all__ = [
    "DataFileError", "EspiritCache", "EspiritSettings", "EstimateCoilMaps", "acs_width",
    "espirit_maps", "FastMRISliceDataset", "num_low_frequencies_of", "stable_seed",
    "KSpaceSample", "SampleBatch", "SampleMetadata", "collate_samples", "CollateError",
    "ApplyMask", "AttachTrainingImage", "Compose", "CropToRecon", "Normalize",
    "RequireCoilMaps", "combined_image", "fastmri_transform", "zero_filled_image",
    "ImageFolderSlices", "MatFileSlices", "load_mat_image", "read_image", "NiftiVolume",
    "save_like", "atomic_output", "detect_challenge", "birdcage_coil_maps", "simulate_kspace",
    "smooth_random_phase", "DataSource", "FastMRIKSpaceSlices", "detect_source", "get_source",
    "register_source", "source_kinds", "simulate_noncartesian", "noncartesian_operator",
    "CompressCoils", "Prewhiten", "noise_covariance", "whitening_matrix", "SamplingPattern",
    "measured_mask", "sampling_pattern", "write_ismrmrd", "DicomVolume",
]
