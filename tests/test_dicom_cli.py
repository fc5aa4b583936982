"""``mri-unfold recon`` with DICOM: a DICOM series through retrospective undersampling to a
DICOM series (classic, Enhanced, anonymised), NIfTI, twix and ISMRMRD to DICOM with the same
geometry as the NIfTI output and the scan's attributes, and the refusals (one line, exit 2,
nothing written)."""
from __future__ import annotations

import os

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from ismrmrd import xsd
from xsdata.models.datatype import XmlDate, XmlTime

from dicom_fixtures import canonical, mni_series, same_grid
from fake_fastmri import phantom
from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.cli import main
from mri_unfold.data.dicom_volume import DicomVolume
from mri_unfold.data.ismrmrd_writer import write_ismrmrd
from mri_unfold.data.sources import get_source
from mri_unfold.fft import fft2, ifft2
from mri_unfold.metrics import psnr
from mri_unfold.reconstruct import MaskSpec, reconstruct_dicom
from raw_fixtures import twix_path

MASK = ["--mask", "random", "--acceleration", "4", "--seed", "3", "--no-progress"]


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dicom") / "T1"
    files, affine, expected = mni_series(folder, "axial", shape=(32, 28, 5))
    return folder, files, affine, expected


def _read_nifti(path):
    img = nib.load(path)
    return np.moveaxis(np.asarray(img.dataobj, np.float64), -1, 0), img.affine


def test_dicom_series_to_dicom_series(tmp_path, series, recon_real_ckpt, capsys):
    folder, files, affine, expected = series
    out = tmp_path / "recon"
    assert main(["recon", str(folder), "--model", str(recon_real_ckpt), *MASK,
                 "--format", "dicom", "--output", str(out), "--save-zero-filled"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}  (5 slices of 32x28, DICOM (5 MR image files), 16-bit" in text
    assert "metrics vs the reference" in text
    nii = tmp_path / "recon.nii.gz"
    assert main(["recon", str(folder), "--model", str(recon_real_ckpt), *MASK,
                 "--output", str(nii)]) == 0
    ours, ours_affine = _read_nifti(nii)
    back = DicomVolume(out)
    slope = float(pydicom.dcmread(out / "IM_0001.dcm").RescaleSlope)
    # the DICOM series and the NIfTI output are the same voxels in the same place
    np.testing.assert_allclose(ours_affine, affine, atol=1e-6)
    assert same_grid(canonical(back.volume, back.affine),
                     nib.Nifti1Image(np.moveaxis(ours, 0, -1), ours_affine)) <= slope / 2 + 1e-5
    zf = DicomVolume(tmp_path / "recon_zero_filled").volume
    assert psnr(expected, back.volume) > psnr(expected, zf) + 1.0
    ds = pydicom.dcmread(out / "IM_0003.dcm")
    src = {pydicom.dcmread(f).SOPInstanceUID: pydicom.dcmread(f) for f in files}
    ref = src[ds.SourceImageSequence[0].ReferencedSOPInstanceUID]
    np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient],  # its own slice
                               [float(v) for v in ref.ImagePositionPatient], atol=1e-9)
    assert str(ds.PatientName) == "Test^Patient" and ds.PatientID == "PID-0042"
    assert ds.FrameOfReferenceUID == ref.FrameOfReferenceUID
    assert ds.StudyInstanceUID != ref.StudyInstanceUID and ds.SeriesNumber == 1004
    assert ds.SeriesDescription == f"mri-unfold ista_net_plus {recon_real_ckpt.name}"
    assert "random mask, sampled fraction 0.250, seed 3; a simulation" in \
        ds.DerivationDescription
    assert pydicom.dcmread(tmp_path / "recon_zero_filled" / "IM_0001.dcm").SeriesDescription \
        == "mri-unfold zero-filled"


def test_enhanced_and_anonymised(tmp_path, recon_real_ckpt):
    folder = tmp_path / "cor"
    mni_series(folder, "coronal", shape=(24, 30, 4))
    out = tmp_path / "enh"
    assert main(["recon", str(folder), "--model", str(recon_real_ckpt), *MASK,
                 "--format", "dicom", "--dicom-enhanced", "--anonymize",
                 "--output", str(out)]) == 0
    (f,) = sorted(out.iterdir())
    ds = pydicom.dcmread(f)
    assert ds.NumberOfFrames == 4 and ds.PatientIdentityRemoved == "YES"
    assert str(ds.PatientName) == "" and "InstitutionName" not in ds
    assert DicomVolume(out).volume.shape == (4, 24, 30)  # rows and columns as stored


@pytest.mark.parametrize("direction", ["ROW", "COL"])
def test_undersampling_follows_the_phase_encoding_direction(tmp_path, recon_real_ckpt,
                                                            direction):
    """The mask's undersampled axis is the series' phase-encoding direction: the zero-filled
    image equals a hand-made simulation with the mask on the columns (ROW) or rows (COL)."""
    folder = tmp_path / direction
    _, _, expected = mni_series(folder, "axial", shape=(24, 30, 3),
                                   phase_encoding=direction)
    model = load_checkpoint(recon_real_ckpt).model
    spec = MaskSpec(kind="random", acceleration=4, seed=3)
    res = reconstruct_dicom(folder, model, spec, progress=False)
    peak = float(np.abs(expected).max())
    x = torch.from_numpy(expected / peak).to(torch.complex64)
    if direction == "COL":  # phase encoding down the rows: the mask samples rows
        mask = torch.from_numpy(spec.make((30, 24)).T.copy())
    else:
        mask = torch.from_numpy(spec.make((24, 30)))
    manual = ifft2(fft2(x) * mask).abs().numpy() * peak
    np.testing.assert_allclose(res.zero_filled, manual, rtol=1e-4, atol=1e-3 * peak)
    assert res.info["phase_encoding"] == direction


def _bad(tmp_path, argv, capsys, expect):
    before = sorted(p for p in tmp_path.rglob("*"))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mri-unfold: error: ") and "\n" not in err, err
    assert expect in err, err
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written


def test_refusals(tmp_path, series, recon_real_ckpt, capsys):
    folder, files, affine, _ = series
    ck = ["--model", str(recon_real_ckpt), *MASK]
    two = tmp_path / "two"
    mni_series(two / "a", "axial", shape=(12, 10, 3), series_number=5, description="AX")
    mni_series(two / "b", "sagittal", shape=(12, 10, 3), series_number=6, description="SAG")
    _bad(tmp_path, ["recon", str(two), *ck, "--output", str(tmp_path / "o")], capsys,
         "holds 2 series (series 5 'AX'")
    _bad(tmp_path, ["recon", str(two), *ck, "--output", str(tmp_path / "o")], capsys,
         "choose one by its UID or number with --series UID|NUMBER")
    (two / "a" / "README.txt").write_text("scanner export")
    _bad(tmp_path, ["recon", str(two), "--series", "5", *ck, "--output", str(tmp_path / "o")],
         capsys, "README.txt: not a DICOM file (no DICM marker at byte 128)); --skip-invalid "
                 "skips them")
    out = tmp_path / "o"
    assert main(["recon", str(two), "--series", "5", "--skip-invalid", *ck,
                 "--output", str(out)]) == 0
    assert "skipped " in capsys.readouterr().out and len(list(out.iterdir())) == 3
    _bad(tmp_path, ["recon", str(two), "--series", "5", "--skip-invalid", *ck,
                    "--output", str(out)], capsys, "holds 3 files; pass --overwrite")
    (out / "mine.txt").write_text("notes")
    _bad(tmp_path, ["recon", str(two), "--series", "5", "--skip-invalid", *ck, "--overwrite",
                    "--output", str(out)], capsys, "mine.txt, which is not a DICOM file")
    (out / "mine.txt").unlink()
    _bad(tmp_path, ["recon", str(two / "a"), *ck, "--format", "dicom", "--skip-invalid",
                    "--output", str(two)], capsys, "refusing to write over an input")
    _bad(tmp_path, ["recon", str(folder), *ck, "--format", "dicom",
                    "--output", str(tmp_path / "x.nii.gz")], capsys,
         "--format dicom writes a folder of DICOM files")
    _bad(tmp_path, ["recon", str(folder), *ck, "--dicom-enhanced",
                    "--output", str(tmp_path / "x.nii.gz")], capsys,
         "--dicom-enhanced applies to DICOM output (--format dicom)")
    vol = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 2), np.float32), np.eye(4)), vol)
    _bad(tmp_path, ["recon", str(vol), *ck, "--series", "3"], capsys,
         "--series is for DICOM inputs")
    _bad(tmp_path, ["recon", str(folder), "--output", str(tmp_path / "z")], capsys,
         "a dicom image input is undersampled retrospectively: give --mask KIND "
         "--acceleration R or --mask-file FILE")
    assert sorted(os.listdir(out)) == ["IM_0001.dcm", "IM_0002.dcm", "IM_0003.dcm"]


def test_nifti_to_dicom_keeps_the_geometry(tmp_path, recon_real_ckpt):
    vol = np.stack([np.abs(phantom((24, 28), s)) for s in range(20)], axis=-1) * 1000
    affine = np.array([[0, 0, -2.0, 10], [-1.5, 0, 0, 5], [0, 1.5, 0, -3], [0, 0, 0, 1]])
    src = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(vol.astype(np.int16), affine), src)
    for axis in ("2", "0"):  # slices along the last or the first array axis
        base = ["recon", str(src), "--model", str(recon_real_ckpt), *MASK, "--axis", axis]
        assert main([*base, "--output", str(tmp_path / f"r{axis}.nii.gz")]) == 0
        assert main([*base, "--format", "dicom", "--output", str(tmp_path / f"d{axis}")]) == 0
        back = DicomVolume(tmp_path / f"d{axis}")
        slope = float(pydicom.dcmread(tmp_path / f"d{axis}" / "IM_0001.dcm").RescaleSlope)
        assert same_grid(canonical(back.volume, back.affine),
                         nib.load(tmp_path / f"r{axis}.nii.gz")) <= slope / 2 + 1e-4


def _with_scan_information(path):
    """Add subject, study and measurement information to an ISMRMRD file's header."""
    with h5py.File(path, "r+") as f:
        hdr = xsd.CreateFromDocument(f["dataset/xml"][0])
        hdr.subjectInformation = xsd.subjectInformationType(
            patientName="Raw^Subject", patientID="RAW-1", patientBirthdate=XmlDate(1990, 5, 6),
            patientGender="M")
        hdr.studyInformation = xsd.studyInformationType(
            studyDate=XmlDate(2023, 3, 4), studyTime=XmlTime(9, 8, 7), studyDescription="knee")
        hdr.measurementInformation = xsd.measurementInformationType(
            patientPosition=xsd.patientPositionType.HFS,
            frameOfReferenceUID="2.25.123123123123")
        hdr.acquisitionSystemInformation.systemVendor = "RawVendor"
        hdr.acquisitionSystemInformation.systemFieldStrength_T = 1.5
        f["dataset/xml"][0] = xsd.ToXML(hdr).encode()
    return path


def test_twix_and_ismrmrd_to_dicom(tmp_path):
    real = get_source("twix").read(twix_path())[0]
    runs = {"twix": twix_path(),
            "ismrmrd": _with_scan_information(write_ismrmrd([real], tmp_path / "scan.h5"))}
    for name, raw in runs.items():
        out, nii = tmp_path / f"{name}_dcm", tmp_path / f"{name}.nii.gz"
        assert main(["recon", str(raw), "--format", "dicom", "--output", str(out),
                     "--no-progress"]) == 0
        assert main(["recon", str(raw), "--output", str(nii), "--no-progress"]) == 0
        back = DicomVolume(out)
        ds = pydicom.dcmread(out / "IM_0001.dcm")
        assert same_grid(canonical(back.volume, back.affine), nib.load(nii),
                         atol_mm=1e-4) <= float(ds.RescaleSlope) / 2 + 1e-9
        np.testing.assert_allclose(nib.load(nii).affine, real.metadata.extras["affine"],
                                   atol=1e-4)
        assert float(ds.SliceThickness) == pytest.approx(real.metadata.voxel_size_mm[2])
        assert ds.SeriesDescription == "mri-unfold zero-filled"
        assert "from measured k-space" in ds.DerivationDescription
    tw = pydicom.dcmread(tmp_path / "twix_dcm" / "IM_0001.dcm")
    assert tw.Manufacturer == "SIEMENS" and tw.ManufacturerModelName == "Skyra"
    assert float(tw.MagneticFieldStrength) == pytest.approx(2.89362)
    assert tw.FrameOfReferenceUID == "1.3.12.2.1107.5.2.19.45385.1.20210622151635693.0.0.0"
    assert tw.PatientPosition == "HFS" and float(tw.RepetitionTime) == pytest.approx(10.0)
    mr = pydicom.dcmread(tmp_path / "ismrmrd_dcm" / "IM_0001.dcm")
    assert (str(mr.PatientName), mr.PatientID, mr.PatientBirthDate, mr.PatientSex) == \
        ("Raw^Subject", "RAW-1", "19900506", "M")
    assert (mr.StudyDate, mr.StudyTime, mr.StudyDescription) == ("20230304", "090807", "knee")
    assert mr.FrameOfReferenceUID == "2.25.123123123123" and mr.Manufacturer == "RawVendor"
    assert float(mr.MagneticFieldStrength) == 1.5 and mr.PatientPosition == "HFS"


def test_view_draws_three_planes_from_the_files(tmp_path, series, capsys):
    from PIL import Image

    folder = series[0]
    png = tmp_path / "view.png"
    assert main(["view", str(folder), "--output", str(png)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {png}  (5 slices of 32x28)"
    img = np.asarray(Image.open(png).convert("L"), np.float64)
    assert img.shape == (462, 1210)  # 11 x 4.2 inches at 110 dpi
    thirds = [img[60:420, k * 403:(k + 1) * 403] for k in range(3)]
    for part in thirds:  # each plane shows the brain: bright pixels on a dark background
        assert (part > 100).mean() > 0.005 and np.median(part) < 30
    nii = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(np.moveaxis(series[3], 0, -1).astype(np.float32), series[2]), nii)
    assert main(["view", str(nii), "--output", str(tmp_path / "n.png")]) == 0
    _bad(tmp_path, ["view", str(folder), "--output", str(png)], capsys,
         "exists; pass --overwrite")
    _bad(tmp_path, ["view", str(folder), "--output", str(tmp_path / "v.jpg")], capsys,
         "the picture is a PNG file")


def test_example_series_script(tmp_path, capsys):
    from benchmarks import dicom_example

    out = tmp_path / "mni"
    assert dicom_example.main([str(out), "--plane", "sagittal", "--matrix", "24", "20",
                               "--slices", "4", "--spacing", "2", "2", "5"]) == 0
    assert "wrote" in capsys.readouterr().out
    vol = DicomVolume(out)
    want = dicom_example.plane_affine("sagittal", (24, 20, 4), (2, 2, 5), (("x", 15.0),
                                                                           ("y", 7.5)))
    np.testing.assert_allclose(vol.affine, want, atol=1e-6)
    assert vol.reference.SeriesDescription == "MNI T1 oblique sagittal"
    assert float(vol.volume.max()) > 50


def test_default_output_is_a_dicom_folder_next_to_the_input(tmp_path, recon_real_ckpt, capsys):
    folder = tmp_path / "exam" / "T2"
    files, _, _ = mni_series(folder, "axial", shape=(16, 16, 3))
    assert main(["recon", str(folder), "--model", str(recon_real_ckpt), *MASK]) == 0
    assert sorted(p.name for p in (tmp_path / "exam").iterdir()) == ["T2", "T2_recon"]
    assert len(list((tmp_path / "exam" / "T2_recon").iterdir())) == 3
    # files given one by one: the output goes next to their folder, not among them
    assert main(["recon", *map(str, files), "--model", str(recon_real_ckpt), *MASK,
                 "--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "exam").iterdir()) == ["T2", "T2_recon"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(f.name for f in files)
    capsys.readouterr()
