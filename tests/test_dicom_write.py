"""Writing DICOM series: identity (new UIDs, DERIVED, description, provenance), geometry from
the affine, 16-bit pixels within the quantisation step, copied and anonymised attributes,
classic and Enhanced multi-frame, read back by pydicom, nibabel and our reader, and
all-or-nothing folders."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pydicom
import pytest

from dicom_fixtures import canonical, mni_images, plane_affine, same_grid
from mri_unfold import __version__
from mri_unfold.atomic import atomic_output_folders
from mri_unfold.data.dicom_volume import DicomVolume
from mri_unfold.data.geometry import image_planes
from mri_unfold.errors import DataFileError, UserError
from mri_unfold.reconstruct import Provenance, write_dicom_series
from mri_unfold.reconstruct.dicom_writer import quantise, window

SHAPE = (30, 26, 5)
PROV = Provenance("ista_net_plus", "my_model.safetensors", "ISTA-Net+ 9x32 on chest slices",
                  "images undersampled retrospectively (radial mask; a simulation)")
ATTRS = {"PatientName": "Doe^Jane", "PatientID": "P-7", "PatientBirthDate": "19800203",
         "PatientSex": "F", "StudyDate": "20240102", "StudyDescription": "brain",
         "InstitutionName": "Test Hospital", "FrameOfReferenceUID": "2.25.555123456789",
         "Manufacturer": "TestVendor", "MagneticFieldStrength": 3.0, "EchoTime": 10.0}


@pytest.fixture(scope="module")
def volume():
    affine = plane_affine("sagittal", SHAPE, (1.5, 1.25, 4.0), (("z", 14.0), ("x", -7.0)))
    images = mni_images(affine, SHAPE).astype(np.float32) * 3.7 + 0.25
    return images, affine


def _files(folder):
    return sorted(folder.iterdir())


def test_quantise_keeps_the_float_range_within_half_a_step():
    x = np.random.default_rng(0).normal(size=(3, 8, 9)) * 50 + 20
    stored, slope, intercept = quantise(x)
    assert stored.dtype == np.uint16 and stored.min() == 0 and stored.max() == 65535
    assert intercept == pytest.approx(x.min()) and slope == pytest.approx(np.ptp(x) / 65535)
    assert np.abs(stored * slope + intercept - x).max() <= slope / 2 + 1e-9
    c, w = window(x, slope)
    lo, hi = np.percentile(x, [0.5, 99.5])
    assert c == pytest.approx((lo + hi) / 2) and w == pytest.approx(hi - lo)


def test_classic_series_identity_geometry_and_pixels(tmp_path, volume):
    images, affine = volume
    files = write_dicom_series(images, affine, tmp_path / "out", provenance=PROV,
                               attributes=ATTRS, series_number=12, slice_thickness=3.0)
    assert [f.name for f in files] == [f"IM_{k:04d}.dcm" for k in range(1, 6)]
    assert _files(tmp_path / "out") == files
    dss = [pydicom.dcmread(f) for f in files]
    planes = image_planes(affine, SHAPE[2])
    uids = {d.SOPInstanceUID for d in dss}
    assert len(uids) == 5 and len({d.SeriesInstanceUID for d in dss}) == 1
    d0 = dss[0]
    assert d0.SOPClassUID == pydicom.uid.MRImageStorage
    assert d0.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert list(d0.ImageType) == ["DERIVED", "SECONDARY", "OTHER"]
    assert d0.SeriesDescription == "mri-unfold ista_net_plus my_model.safetensors"
    assert d0.SeriesNumber == 12 and [d.InstanceNumber for d in dss] == [1, 2, 3, 4, 5]
    assert d0.DerivationDescription.startswith(f"Reconstructed by mri-unfold {__version__} "
                                               "with ista_net_plus; model my_model.safetensors; "
                                               "model card: ISTA-Net+ 9x32")
    eq = d0.ContributingEquipmentSequence[0]
    assert (eq.Manufacturer, eq.SoftwareVersions) == ("mri-unfold", __version__)
    assert eq.PurposeOfReferenceCodeSequence[0].CodeValue == "109102"
    assert str(d0.PatientName) == "Doe^Jane" and d0.PatientID == "P-7"
    assert d0.FrameOfReferenceUID == ATTRS["FrameOfReferenceUID"]  # same scanner space
    assert d0.StudyInstanceUID not in ("", None) and d0.StudyDescription == "brain"
    assert float(d0.MagneticFieldStrength) == 3.0 and d0.Manufacturer == "TestVendor"
    np.testing.assert_allclose([float(v) for v in d0.PixelSpacing], [1.5, 1.25], atol=1e-9)
    assert float(d0.SliceThickness) == 3.0 and float(d0.SpacingBetweenSlices) == pytest.approx(4)
    np.testing.assert_allclose([float(v) for v in d0.ImageOrientationPatient],
                               planes.orientation, atol=1e-12)
    for k, d in enumerate(dss):
        np.testing.assert_allclose([float(v) for v in d.ImagePositionPatient],
                                   planes.positions[k], atol=1e-9)
        real = d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept)
        assert d.pixel_array.dtype == np.uint16 and d.BitsStored == 16
        assert np.abs(real - images[k]).max() <= float(d.RescaleSlope) / 2 + 1e-6
    lo, hi = np.percentile(images, [0.5, 99.5])
    assert float(d0.WindowCenter) == pytest.approx((lo + hi) / 2, rel=1e-6)


def test_nibabel_and_our_reader_read_it_back(tmp_path, volume):
    with warnings.catch_warnings():  # nibabel: "The DICOM readers are highly experimental"
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom import dicomwrappers
    images, affine = volume
    files = write_dicom_series(images, affine, tmp_path / "out", provenance=PROV)
    slope = float(pydicom.dcmread(files[0]).RescaleSlope)
    planes = image_planes(affine, SHAPE[2])
    for k, f in enumerate(files):  # nibabel's DICOM wrapper: scaled pixels and slice affine
        w = dicomwrappers.wrapper_from_file(str(f))
        assert w.get_data().shape == images[k].shape  # (Rows, Columns)
        assert np.abs(w.get_data() - images[k]).max() <= slope / 2 + 1e-6
        np.testing.assert_allclose(w.image_position, planes.positions[k], atol=1e-9)
    back = DicomVolume(tmp_path / "out")
    assert same_grid(canonical(back.volume, back.affine), canonical(images, affine),
                     atol_mm=1e-6) <= slope / 2 + 1e-6


def test_enhanced_multiframe_matches_the_classic_series(tmp_path, volume):
    images, affine = volume
    classic = write_dicom_series(images, affine, tmp_path / "c", provenance=PROV)
    (enh,) = write_dicom_series(images, affine, tmp_path / "e", provenance=PROV, enhanced=True)
    d = pydicom.dcmread(enh)
    assert d.SOPClassUID == pydicom.uid.EnhancedMRImageStorage and d.NumberOfFrames == 5
    assert list(d.ImageType) == ["DERIVED", "PRIMARY", "OTHER", "NONE"]
    frames = d.PerFrameFunctionalGroupsSequence
    for k, f in enumerate(classic):
        c = pydicom.dcmread(f)
        assert list(frames[k].PlanePositionSequence[0].ImagePositionPatient) == \
            list(c.ImagePositionPatient)
        assert frames[k].FrameContentSequence[0].InStackPositionNumber == k + 1
        np.testing.assert_array_equal(d.pixel_array[k], c.pixel_array)
    back = DicomVolume(tmp_path / "e")
    np.testing.assert_allclose(back.affine, DicomVolume(tmp_path / "c").affine, atol=1e-9)
    np.testing.assert_array_equal(back.volume, DicomVolume(tmp_path / "c").volume)


def test_anonymize_drops_identity_and_source_references(tmp_path, volume):
    images, affine = volume
    src = [("1.2.840.10008.5.1.4.1.1.4", f"2.25.777000111222333444{k}") for k in range(5)]
    kept = write_dicom_series(images, affine, tmp_path / "k", provenance=PROV, attributes=ATTRS,
                              source_images=src)
    anon = write_dicom_series(images, affine, tmp_path / "a", provenance=PROV, attributes=ATTRS,
                              source_images=src, anonymize=True)
    k0, a0 = pydicom.dcmread(kept[2]), pydicom.dcmread(anon[2])
    assert k0.SourceImageSequence[0].ReferencedSOPInstanceUID == src[2][1]
    assert "SourceImageSequence" not in a0 and a0.PatientIdentityRemoved == "YES"
    for key in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate"):
        assert str(a0.get(key, "")) == "", key  # type 2: present and empty
    for key in ("InstitutionName", "StudyDescription", "SeriesDate"):
        assert key not in a0, key
    assert a0.FrameOfReferenceUID != ATTRS["FrameOfReferenceUID"]
    assert a0.PatientSex == "F" and float(a0.MagneticFieldStrength) == 3.0  # not identifying
    text = b"".join(p.read_bytes() for p in anon)
    for secret in (b"Doe^Jane", b"P-7", b"19800203", b"Test Hospital",
                   src[0][1].encode(), ATTRS["FrameOfReferenceUID"].encode()):
        assert secret not in text


def test_folder_output_is_all_or_nothing(tmp_path, volume, monkeypatch):
    images, affine = volume
    out = tmp_path / "out"
    write_dicom_series(images, affine, out, provenance=PROV)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    slope_before = float(pydicom.dcmread(out / "IM_0001.dcm").RescaleSlope)
    with pytest.raises(FileExistsError, match="out: exists and is not empty"):
        write_dicom_series(images * 2, affine, out, provenance=PROV)
    calls = {"n": 0}
    real = pydicom.Dataset.save_as

    def failing(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(self, *a, **kw)

    monkeypatch.setattr(pydicom.Dataset, "save_as", failing)
    with pytest.raises(OSError, match="disk full"):
        write_dicom_series(images * 2, affine, out, provenance=PROV, replace=True)
    monkeypatch.setattr(pydicom.Dataset, "save_as", real)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched
    assert sorted(os.listdir(tmp_path)) == ["out"]                      # no debris
    write_dicom_series(images * 2, affine, out, provenance=PROV, replace=True)
    assert len(list(out.iterdir())) == 5 and sorted(os.listdir(tmp_path)) == ["out"]
    new = float(pydicom.dcmread(out / "IM_0001.dcm").RescaleSlope)
    assert new == pytest.approx(2 * slope_before, rel=1e-6)  # the new series replaced the old
    with atomic_output_folders([tmp_path / "new"]) as (tmp,):
        assert tmp.is_dir() and tmp.parent == tmp_path
    assert (tmp_path / "new").is_dir() and not any((tmp_path / "new").iterdir())


def test_bad_images_and_affines_are_refused(tmp_path, volume):
    images, affine = volume
    sheared = affine.copy()
    sheared[:3, 1] += 0.3 * sheared[:3, 0]
    with pytest.raises(DataFileError, match="in-plane axes are not orthogonal"):
        write_dicom_series(images, sheared, tmp_path / "s", provenance=PROV)
    tilted = affine.copy()
    tilted[:3, 2] += 0.5 * tilted[:3, 0]
    with pytest.raises(DataFileError, match="slice axis is not perpendicular"):
        write_dicom_series(images, tilted, tmp_path / "t", provenance=PROV)
    bad = images.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(UserError, match=r"1 non-finite values \(NaN/Inf\).*nothing was written"):
        write_dicom_series(bad, affine, tmp_path / "n", provenance=PROV)
    with pytest.raises(UserError, match=r"real images \(slices, rows, columns\)"):
        write_dicom_series(images[0], affine, tmp_path / "2d", provenance=PROV)
    assert sorted(os.listdir(tmp_path)) == []
