"""The one reconstruction pipeline (used by ``mri-unfold recon``, the engine's evaluation and
the Python API) and the file writers.

* :mod:`.pipeline` — :func:`reconstruct_volume`, :func:`reconstruct_samples`,
  :class:`ReconResult`, :func:`volume_metrics`;
* :mod:`.inputs` — :class:`MaskSpec`, :func:`reconstruct_fastmri`, :func:`reconstruct_nifti`,
  :func:`reconstruct_image`;
* :mod:`.dicom_input` — :func:`reconstruct_dicom` (DICOM series, retrospective undersampling);
* :mod:`.volume3d`, :mod:`.classical3d`, :mod:`.volume_inputs` — whole 3-D scans: readout
  positions streamed through a network, classical 3-D solvers, NIfTI volumes simulated into
  3-D k-space (:func:`reconstruct_nifti_3d`) and 3-D raw scans;
* :mod:`.writers` — fastMRI ``.h5``, NIfTI and ``.npy`` output; :mod:`.dicom_writer` —
  :func:`write_dicom_series` (DICOM MR series, classic or Enhanced multi-frame).
"""
from .pipeline import (AUTO_COMPILE_AFTER_S, METHODS, ReconResult, classical_volume, reconstruct_samples,
                       reconstruct_volume, volume_metrics)
from .inputs import (MaskSpec, reconstruct_fastmri, reconstruct_image, reconstruct_kspace_file,
                     reconstruct_nifti, reconstruct_raw_slices)
from .checkpoint_masks import (BLOCK_CS_KINDS, MASK_CHECKPOINT_KINDS, mask_of_checkpoint,
                               require_mri_checkpoint)
from .reference import REFERENCES, read_reference_file, score_result
from .trajectory import TrajectorySpec
from .dicom_input import reconstruct_dicom
from .dicom_writer import Provenance, dicom_series, write_dicom_folders, write_dicom_series
from .writers import (check_output_path, output_format, with_tag, write_fastmri_h5,
                      write_nifti_like, write_npy, write_plain_nifti, write_volume_nifti)
from .volume3d import VolumeResult, reconstruct_positions
from .classical3d import classical_3d
from .volume_inputs import (VolumeSettings, kykz_mask, read_scan, reconstruct_nifti_3d,
                            reconstruct_raw_3d, reconstruct_scan)

__all__ = ["reconstruct_volume", "reconstruct_samples", "ReconResult", "volume_metrics",
           "METHODS", "classical_volume", "reconstruct_kspace_file", "reconstruct_raw_slices", "AUTO_COMPILE_AFTER_S",
           "MaskSpec", "reconstruct_fastmri", "reconstruct_nifti", "reconstruct_image",
           "check_output_path",
           "output_format", "with_tag", "write_fastmri_h5", "write_nifti_like",
           "write_plain_nifti", "write_npy", "mask_of_checkpoint", "TrajectorySpec",
           "MASK_CHECKPOINT_KINDS", "reconstruct_dicom", "Provenance", "dicom_series",
           "write_dicom_folders", "write_dicom_series", "BLOCK_CS_KINDS",
           "require_mri_checkpoint", "REFERENCES", "read_reference_file", "score_result",
           "write_volume_nifti", "VolumeResult",
           "reconstruct_positions", "classical_3d", "VolumeSettings", "kykz_mask",
           "reconstruct_nifti_3d", "reconstruct_scan", "read_scan", "reconstruct_raw_3d"]
