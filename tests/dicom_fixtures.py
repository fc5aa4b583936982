"""DICOM series made for the tests, like a scanner would write them: slices of the MNI T1
template that nilearn ships, resampled onto oblique or orthogonal planes, written with pydicom
as MR Image Storage files (ORIGINAL\\PRIMARY), with a rescale slope and intercept, file names
and instance numbers that do NOT follow the slice order, and optionally phase images.

The slice grids and the template's pixels come from ``benchmarks/dicom_example.py``; the DICOM
geometry is written here with its own few lines (LPS, first pixel, row then column direction)
— independent of mri_unfold's reader and writer — and ``dcm2niix`` checks both.
Nothing is downloaded; everything is seeded.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from benchmarks.dicom_example import mni_images, plane_affine

#: The tools the validation tests need, and how to get them.
TOOLS_INSTALL = "apt-get install -y dcm2niix dicom3tools"


def _lps(v) -> list[float]:
    v = np.asarray(v, float)
    return [float(-v[0]), float(-v[1]), float(v[2])]


def _meta(sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid()
    return meta


def write_scanner_series(folder: Path, images: np.ndarray, affine: np.ndarray, *,
                         series_number: int = 3, description: str = "T1 MNI",
                         slope: float = 0.5, intercept: float = -10.0, seed: int = 0,
                         phase: np.ndarray | None = None, phase_encoding: str = "ROW",
                         patient: str = "Test^Patient", series_uid: str | None = None,
                         frame_uid: str | None = None, study_uid: str | None = None,
                         prefix: str = "IMG") -> list[Path]:
    """Write ``images`` ``(S, H, W)`` (real values) on the grid ``affine`` as MR images.

    Stored values are ``round((value - intercept) / slope)`` in int16; ``phase`` ``(S, H, W)``
    radians adds a phase image per slice (ImageType ...\\P, Siemens scale -4096..4095).  File
    names and InstanceNumbers are shuffled (seeded).  Returns the files written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    s, h, w = images.shape
    rng = np.random.default_rng(seed)
    series_uid = series_uid or generate_uid()
    frame_uid, study_uid = frame_uid or generate_uid(), study_uid or generate_uid()
    col = affine[:3, 0] / np.linalg.norm(affine[:3, 0])
    row = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    parts = [("M", images, slope, intercept)]
    if phase is not None:
        parts.append(("P", phase * 4096 / np.pi, 2.0, -4096.0))
    n = s * len(parts)
    names, instances = rng.permutation(n), rng.permutation(n)
    files = []
    for p_i, (flavour, values, sl, ic) in enumerate(parts):
        stored = np.rint((values - ic) / sl)
        assert stored.min() >= -32768 and stored.max() <= 32767
        for k in range(s):
            i = p_i * s + k
            ds = Dataset()
            ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
            ds.file_meta = _meta(ds.SOPInstanceUID)
            ds.PatientName, ds.PatientID, ds.PatientBirthDate = patient, "PID-0042", "19800203"
            ds.PatientSex, ds.StudyDate, ds.StudyTime = "F", "20240102", "101112"
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "ACC1", ""
            ds.Modality, ds.SeriesNumber, ds.SeriesDescription = "MR", series_number, description
            ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_uid, ""
            ds.Manufacturer, ds.InstitutionName = "TestVendor", "Test Hospital"
            ds.ImageType = ["ORIGINAL", "PRIMARY", flavour, "ND"]
            ds.InstanceNumber = int(instances[i]) + 1
            ds.ImagePositionPatient = _lps(affine @ np.array([0, 0, k, 1.0]))
            ds.ImageOrientationPatient = _lps(row) + _lps(col)
            ds.PixelSpacing = [float(np.linalg.norm(affine[:3, 0])),
                               float(np.linalg.norm(affine[:3, 1]))]
            ds.SliceThickness = float(np.linalg.norm(affine[:3, 2]))
            ds.InPlanePhaseEncodingDirection = phase_encoding
            ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "GR", "SP", ""
            ds.MRAcquisitionType, ds.RepetitionTime, ds.EchoTime = "2D", 500.0, 10.0
            ds.EchoTrainLength, ds.MagneticFieldStrength = 1, 3.0
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.Rows, ds.Columns = h, w
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.RescaleSlope, ds.RescaleIntercept = sl, ic
            ds.PixelData = stored[k].astype("<i2").tobytes()
            path = folder / f"{prefix}{int(names[i]):04d}"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    return files


def expected_values(images: np.ndarray, slope: float = 0.5, intercept: float = -10.0):
    """What a reader should return for ``images`` written with ``slope``/``intercept``."""
    return np.rint((images - intercept) / slope) * slope + intercept


def mni_series(folder: Path, plane: str = "axial", shape=(40, 36, 6),
               spacing=(4.0, 4.5, 5.0), oblique=(("x", 17.0), ("y", -9.0)), **kw):
    """An MNI series on ``plane`` (``shape`` ``(H, W, S)``); returns ``(files, affine,
    expected (S, H, W) values)``."""
    affine = plane_affine(plane, shape, spacing, oblique)
    images = mni_images(affine, shape)
    files = write_scanner_series(folder, images, affine, **kw)
    return files, affine, expected_values(images, kw.get("slope", 0.5),
                                          kw.get("intercept", -10.0))


def copy_test_file(name: str, dest: Path) -> Path:
    """A file of pydicom's own test data, copied to ``dest`` (a folder) for a test."""
    import pydicom.data

    dest.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(pydicom.data.get_testdata_file(name), dest / name))


def canonical(volume_shw: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """A ``(S, H, W)`` stack with its ``(H, W, S)`` affine, in the closest RAS orientation
    (voxel order made comparable whatever the writer's axis order)."""
    img = nib.Nifti1Image(np.ascontiguousarray(np.moveaxis(volume_shw, 0, -1)), affine)
    return nib.as_closest_canonical(img)


def same_grid(a: nib.Nifti1Image, b: nib.Nifti1Image, atol_mm: float = 1e-3) -> float:
    """Assert two images are the same voxels in the same place; returns the largest value
    difference."""
    ca, cb = nib.as_closest_canonical(a), nib.as_closest_canonical(b)
    assert ca.shape[:3] == cb.shape[:3], (ca.shape, cb.shape)
    np.testing.assert_allclose(ca.affine, cb.affine, atol=atol_mm)
    return float(np.abs(ca.get_fdata().reshape(ca.shape[:3])
                        - cb.get_fdata().reshape(cb.shape[:3])).max())


__all__ = ["TOOLS_INSTALL", "mni_series", "mni_images", "plane_affine", "write_scanner_series",
           "expected_values", "copy_test_file", "canonical", "same_grid", "pydicom"]
