"""Data sources (``data.kind``): the registry and the built-in sources.

Built in: ``fastmri``, ``ismrmrd``, ``twix``, ``bart``, ``array``, ``simulated_kspace``,
``volume_kspace`` (k-space), ``images``,
``nifti`` and ``dicom`` (image slices).  Plug-ins add more
(``natural_cs``: ``patches``, ``block_mat``).  See :mod:`.registry`.
"""
from .registry import (YIELDS, DataSource, detect_source, get_source, register_source,
                       source_kinds, sources_with_option)
from . import dicom, fastmri, images, nifti  # noqa: E402,F401  (register the built-in sources)
from . import arrays, bart, ismrmrd_source, simulated, twix  # noqa: E402,F401  (raw k-space)
from . import volume_kspace  # noqa: E402,F401  (ky-kz slices of simulated 3-D scans)
from .fastmri import FastMRIKSpaceSlices, FastMRISource, fastmri_files, kspace_transform
from .images import IMAGE_EXTS, ImageFolderDataset, ImagesSource
from .nifti import NiftiSlices, NiftiSource
from .dicom import DicomSlices, DicomSource

__all__ = ["DataSource", "register_source", "source_kinds", "get_source", "detect_source",
           "sources_with_option", "YIELDS", "FastMRISource", "FastMRIKSpaceSlices",
           "fastmri_files", "kspace_transform", "ImagesSource", "ImageFolderDataset",
           "IMAGE_EXTS", "NiftiSource", "NiftiSlices", "DicomSource", "DicomSlices"]
