"""Reading DICOM series: slice order along the normal (never file names or InstanceNumber),
rescaling, the NIfTI/RAS affine on oblique series of three orientations, magnitude/phase pairs,
Enhanced multi-frame input, pydicom's real MR files, several series, and every refusal
(missing slices, non-uniform spacing, mixed orientations or sizes, invalid, truncated,
undecodable and size-bomb files) with its one-line reason."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pydicom
import pydicom.data
import pytest
import torch
from pydicom.pixels import get_decoder

from dicom_fixtures import (copy_test_file, expected_values, mni_images, mni_series,
                            plane_affine, write_scanner_series)
from mri_unfold.data.dicom_files import (InvalidDicomFiles, SeveralSeries, is_dicom, scan_dicom,
                                         select_series)
from mri_unfold.data.dicom_volume import DicomVolume
from mri_unfold.data.sources import detect_source, get_source
from mri_unfold.errors import DataFileError, UserError
from mri_unfold.memory import InsufficientMemory


@pytest.mark.parametrize("plane", ["axial", "sagittal", "coronal"])
def test_oblique_series_volume_and_affine(tmp_path, plane):
    files, affine, expected = mni_series(tmp_path / plane, plane)
    vol = DicomVolume(tmp_path / plane)
    # the fixture's slice axis is the DICOM normal: the reader's order and affine are its own
    np.testing.assert_allclose(vol.affine, affine, atol=1e-9)
    np.testing.assert_array_equal(vol.volume, expected.astype(np.float32))
    assert vol.volume.shape == (6, 40, 36) and vol.volume.dtype == np.float32
    assert vol.series.number == 3 and vol.num_volumes == 1 and not vol.is_complex
    assert float(vol.volume.max()) > 150  # the template's white matter, not an empty grid
    # names and InstanceNumbers are shuffled: neither follows the slice order
    by_name = [int(pydicom.dcmread(f).InstanceNumber) for f in sorted(files)]
    assert by_name != sorted(by_name)


def test_slices_are_sorted_by_position_not_name_or_instance(tmp_path):
    shape = (20, 18, 5)
    affine = plane_affine("axial", shape, (2.0, 2.0, 3.0), (("z", 30.0),))
    images = mni_images(affine, shape)
    for seed in (1, 2):  # two different shufflings of names and InstanceNumbers
        write_scanner_series(tmp_path / f"s{seed}", images, affine, seed=seed)
    a, b = DicomVolume(tmp_path / "s1"), DicomVolume(tmp_path / "s2")
    np.testing.assert_array_equal(a.volume, b.volume)
    np.testing.assert_array_equal(a.volume, expected_values(images).astype(np.float32))
    positions = [float(s[0].position @ s[0].normal) for s in a.frames]
    assert positions == sorted(positions) and np.allclose(np.diff(positions), 3.0)


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    shape = (12, 10, 3)
    affine = plane_affine("coronal", shape, (1.0, 1.0, 2.0))
    images = mni_images(affine, shape)
    write_scanner_series(tmp_path / "s", images, affine, slope=0.25, intercept=-100.0)
    vol = DicomVolume(tmp_path / "s")
    stored = pydicom.dcmread(next((tmp_path / "s").iterdir())).pixel_array
    assert stored.min() >= 400  # stored values are not the real values ...
    np.testing.assert_allclose(vol.volume, expected_values(images, 0.25, -100.0), atol=1e-5)
    assert np.abs(vol.volume - images).max() <= 0.125 + 1e-6  # ... real = stored*0.25 - 100


def test_magnitude_and_phase_make_a_complex_volume(tmp_path):
    shape = (16, 14, 4)
    affine = plane_affine("axial", shape, (2.0, 2.0, 4.0), (("y", 12.0),))
    mag = mni_images(affine, shape)
    yy, xx = np.mgrid[0:16, 0:14]
    phase = np.stack([np.angle(np.exp(1j * (0.3 * xx - 0.2 * yy + k))) for k in range(4)])
    write_scanner_series(tmp_path / "mp", mag, affine, phase=phase)
    vol = DicomVolume(tmp_path / "mp")
    assert vol.is_complex and vol.components == ["MAGNITUDE", "PHASE"]
    assert vol.volume.dtype == np.complex64 and vol.volume.shape == (4, 16, 14)
    np.testing.assert_allclose(np.abs(vol.volume), expected_values(mag), atol=1e-3)
    stored_phase = np.rint((phase * 4096 / np.pi + 4096) / 2) * 2 - 4096  # as written
    want = np.angle(np.exp(1j * stored_phase * np.pi / 4096))
    on = expected_values(mag) > 1
    err = np.angle(np.exp(1j * (np.angle(vol.volume) - want)))[on]
    assert np.abs(err).max() < 1e-4


def test_several_series_are_listed_or_picked(tmp_path):
    shape = (10, 8, 3)
    a = plane_affine("axial", shape, (2.0, 2.0, 3.0))
    write_scanner_series(tmp_path / "mix", mni_images(a, shape), a, series_number=3,
                         description="T1 AX", series_uid="1.2.826.0.1.3680043.8.498.11")
    s = plane_affine("sagittal", shape, (2.0, 2.0, 3.0))
    write_scanner_series(tmp_path / "mix", mni_images(s, shape), s, series_number=7,
                         description="T1 SAG", series_uid="1.2.826.0.1.3680043.8.498.22", seed=5,
                         prefix="SAG")
    with pytest.raises(SeveralSeries, match=r"holds 2 series \(series 3 'T1 AX' \(MR, 3 images, "
                                            r"UID 1.2.826.0.1.3680043.8.498.11\); series 7 "
                                            r"'T1 SAG'.*choose one by its UID or number"):
        DicomVolume(tmp_path / "mix")
    assert DicomVolume(tmp_path / "mix", "7").series.description == "T1 SAG"
    by_uid = DicomVolume(tmp_path / "mix", "1.2.826.0.1.3680043.8.498.11")
    assert by_uid.series.number == 3
    np.testing.assert_allclose(by_uid.affine, a, atol=1e-9)
    with pytest.raises(DataFileError, match=r"no series with UID or number '9'"):
        select_series(scan_dicom(tmp_path / "mix"), "9")


def _series(tmp_path, name, **kw):
    shape = (10, 8, 5)
    affine = plane_affine("axial", shape, (2.0, 2.0, 3.0), (("x", 10.0),))
    files = write_scanner_series(tmp_path / name, mni_images(affine, shape), affine, **kw)
    return files, affine


def _position(path) -> list:
    return list(pydicom.dcmread(path).ImagePositionPatient)


def test_geometry_problems_are_refused_with_the_reason(tmp_path):
    files, affine = _series(tmp_path, "gap")
    middle = min(files, key=lambda f: abs(float(np.dot(_position(f), [0, 0, 1])) -
                                          float(np.median([_position(g)[2] for g in files]))))
    middle.unlink()
    with pytest.raises(DataFileError, match=r"1 missing slice\(s\) between .* mm along the slice "
                                            r"normal \(slices every 3.000 mm elsewhere\)"):
        DicomVolume(tmp_path / "gap")
    files, _ = _series(tmp_path, "uneven")
    ds = pydicom.dcmread(files[0])
    ds.ImagePositionPatient = [float(v) + 1.3 * n for v, n in
                               zip(ds.ImagePositionPatient, np.cross(
                                   ds.ImageOrientationPatient[:3],
                                   ds.ImageOrientationPatient[3:]))]
    ds.save_as(files[0])
    with pytest.raises(DataFileError, match="non-uniform slice spacing along the normal"):
        DicomVolume(tmp_path / "uneven")
    files, _ = _series(tmp_path, "tilted")
    ds = pydicom.dcmread(files[1])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0.996, 0.0872]
    ds.save_as(files[1])
    with pytest.raises(DataFileError, match=r"mixed orientations in one series"):
        DicomVolume(tmp_path / "tilted")
    files, _ = _series(tmp_path, "sizes")
    ds = pydicom.dcmread(files[2])
    ds.Rows, ds.PixelData = 9, ds.PixelData[: 9 * 8 * 2]
    ds.save_as(files[2])
    with pytest.raises(DataFileError, match=r"mixed image sizes in one series: 10x8 .* 9x8|"
                                            r"mixed image sizes in one series: 9x8 .* 10x8"):
        DicomVolume(tmp_path / "sizes")
    files, _ = _series(tmp_path, "shift")
    ds = pydicom.dcmread(files[3])
    ds.ImagePositionPatient = [float(ds.ImagePositionPatient[0]) + 5,
                               *ds.ImagePositionPatient[1:]]
    ds.save_as(files[3])
    with pytest.raises(DataFileError, match=r"not stacked along their normal .* gantry tilt"):
        DicomVolume(tmp_path / "shift")


def test_invalid_files_are_listed_and_skipped_only_when_asked(tmp_path):
    files, affine = _series(tmp_path, "dir")
    (tmp_path / "dir" / "notes.txt").write_text("acquired on Tuesday")
    broken = tmp_path / "dir" / "broken"
    broken.write_bytes(files[0].read_bytes()[:-40])          # pixel data cut short
    head = tmp_path / "dir" / "head_only"
    head.write_bytes(files[1].read_bytes()[:700])             # ends inside the header
    with pytest.raises(InvalidDicomFiles) as err:
        DicomVolume(tmp_path / "dir")
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'dir'}: 3 of 8 files are not valid DICOM images")
    assert "notes.txt: not a DICOM file (no DICM marker at byte 128)" in msg
    assert "broken: truncated: the pixel data element declares 160 bytes, the file holds 120" \
        in msg
    assert "head_only: truncated" in msg
    vol = DicomVolume(tmp_path / "dir", skip_invalid=True)
    assert vol.volume.shape == (5, 10, 8)
    assert sorted(p.name for p, _ in vol.scan.invalid) == ["broken", "head_only", "notes.txt"]
    with pytest.raises(DataFileError, match=r"no DICOM image among 1 files"):
        DicomVolume(tmp_path / "dir" / "notes.txt", skip_invalid=True)


def test_pydicom_real_mr_files(tmp_path):
    ref = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    for name in ("MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm",
                 "MR_small_implicit.dcm", "MR_small_padded.dcm"):
        vol = DicomVolume(copy_test_file(name, tmp_path / name))
        np.testing.assert_array_equal(vol.volume[0], ref.pixel_array.astype(np.float32))
        # first pixel at ImagePositionPatient, rows along the column direction (0, 1, 0) LPS
        # = (0, -1, 0) RAS stepping 0.3125 mm, one slice of SliceThickness 0.8 mm
        # and columns along the row direction (1, 0, 0) LPS = (-1, 0, 0) RAS
        want = np.array([[0, -0.3125, 0, 83.9063], [-0.3125, 0, 0, 91.2], [0, 0, 0.8, 6.6406],
                         [0, 0, 0, 1]])
        np.testing.assert_allclose(vol.affine, want, atol=1e-4)
    big = DicomVolume(copy_test_file("examples_overlay.dcm", tmp_path / "ov"))
    assert big.volume.shape == (1, 300, 484) and big.reference.Manufacturer == "SIEMENS"


def test_truncated_and_undecodable_real_files(tmp_path):
    trunc = copy_test_file("MR_truncated.dcm", tmp_path / "t")
    with pytest.raises(InvalidDicomFiles, match=r"MR_truncated.dcm: truncated: the pixel data "
                                                r"element declares 8192 bytes, the file holds "
                                                r"8130"):
        DicomVolume(trunc)
    ref = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm")).pixel_array
    for name, ts, packages in (
            ("MR_small_jpeg_ls_lossless.dcm", pydicom.uid.JPEGLSLossless, r".*pylibjpeg.*pyjpegls"),
            ("MR_small_jp2klossless.dcm", pydicom.uid.JPEG2000Lossless, r".*pylibjpeg")):
        f = copy_test_file(name, tmp_path / name)
        if get_decoder(ts).is_available:  # a decoder is installed: it must decode exactly
            np.testing.assert_array_equal(DicomVolume(f).volume[0], ref)
        else:
            with pytest.raises(DataFileError, match=re.escape(
                    f"{name}: pixel data compressed as {ts.name}, which no installed package "
                    "decodes; install one of: ") + packages):
                DicomVolume(f)


def test_size_bomb_is_refused_before_decoding(tmp_path):
    """An RLE-compressed Enhanced file declaring 200 frames of 65535 x 65535 (a few KB on
    disk, terabytes decoded) is refused from its header."""
    files, _ = _series(tmp_path, "seed")
    base = pydicom.dcmread(files[0])
    ds = pydicom.Dataset()
    for key in ("PatientName", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
                "SOPClassUID", "SOPInstanceUID"):
        setattr(ds, key, base[key].value)
    ds.file_meta = base.file_meta
    ds.file_meta.TransferSyntaxUID = pydicom.uid.RLELossless
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 200
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SharedFunctionalGroupsSequence = [_item(
        PlaneOrientationSequence=[_item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])],
        PixelMeasuresSequence=[_item(PixelSpacing=[1, 1], SliceThickness=1)])]
    ds.PerFrameFunctionalGroupsSequence = [
        _item(PlanePositionSequence=[_item(ImagePositionPatient=[0, 0, k])]) for k in range(200)]
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    bomb = tmp_path / "bomb" / "bomb.dcm"
    bomb.parent.mkdir()
    ds.save_as(bomb, enforce_file_format=True)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(InsufficientMemory, match=r"bomb.dcm .*200 slices of 65535x65535 needs "
                                                 r".* TiB of memory"):
        DicomVolume(bomb)


def _item(**kw) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def test_dicom_source_detects_by_content_and_yields_normalised_slices(tmp_path):
    files, _ = _series(tmp_path, "train/a", series_uid="1.2.826.0.1.3680043.8.498.31")
    _series(tmp_path, "train/b", series_uid="1.2.826.0.1.3680043.8.498.32", series_number=4,
            seed=3)
    renamed = files[0].with_name("scan.nii.gz")  # a misleading name: content decides
    shutil.move(files[0], renamed)
    assert is_dicom(renamed) and detect_source(renamed) == "dicom"
    assert get_source("dicom").yields == "image"
    src = get_source("dicom")
    opts = {k: v for k, (_, v) in src.options.items()} | {"min_signal": 0.0}
    ds = src.open(tmp_path / "train", opts)
    assert len(ds) == 10 and ds[0].shape == (1, 10, 8) and ds[0].dtype == torch.float32
    assert max(float(ds[i].max()) for i in range(5)) == pytest.approx(1.0)
    one = src.open(tmp_path / "train", opts | {"series": "4", "values": "complex"})
    assert len(one) == 5 and one[0].dtype == torch.complex64
    with pytest.raises(UserError, match="data.min_signal must be in"):
        src.check_options(opts | {"min_signal": 1.5}, "p.toml")



def test_several_images_per_position_are_volumes(tmp_path):
    """Two echoes of one series at every position: refused without a volume index; with one,
    the echo of that rank (by EchoNumbers), whatever the files' order."""
    shape = (10, 8, 3)
    affine = plane_affine("axial", shape, (2.0, 2.0, 3.0))
    images = mni_images(affine, shape)
    for echo, scale in ((2, 0.5), (1, 1.0)):
        files = write_scanner_series(tmp_path / "me", images * scale, affine, prefix=f"E{echo}",
                                     series_uid="2.25.4242", seed=echo)
        for f in files:
            ds = pydicom.dcmread(f)
            ds.EchoNumbers = echo
            ds.save_as(f)
    with pytest.raises(DataFileError, match=r"2 images per slice position \(echoes or time "
                                            r"points\); choose a volume index"):
        DicomVolume(tmp_path / "me")
    first, second = (DicomVolume(tmp_path / "me", volume_index=v) for v in (0, 1))
    assert first.num_volumes == 2
    np.testing.assert_array_equal(first.volume, expected_values(images).astype(np.float32))
    np.testing.assert_array_equal(second.volume,
                                  expected_values(images * 0.5).astype(np.float32))
