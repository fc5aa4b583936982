"""Our DICOM checked by tools we did not write: dicom3tools' ``dciodvfy`` reports no errors on
our series (classic, Enhanced, anonymised), and ``dcm2niix`` gives the same affine and voxels
as our reader (series we make, pydicom's real MR files) and as our NIfTI output (our DICOM
output converted back).

Without the tools these tests are skipped by name with the install command; ``.ci/run``
installs them and sets ``MRI_UNFOLD_REQUIRE_DICOM_TOOLS=1``, which turns a missing tool into a
failure."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from dicom_fixtures import (TOOLS_INSTALL, canonical, copy_test_file, mni_images, mni_series,
                            plane_affine, same_grid)
from mri_unfold.cli import main
from mri_unfold.data.dicom_volume import DicomVolume
from mri_unfold.reconstruct import Provenance, write_dicom_series
from mri_unfold.reconstruct.writers import write_plain_nifti

REQUIRED = os.environ.get("MRI_UNFOLD_REQUIRE_DICOM_TOOLS") == "1"


def tool(name: str) -> str:
    """The path of ``name``; a named skip (or, in CI, a failure) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed; install it with: {TOOLS_INSTALL}"
        if REQUIRED:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def dciodvfy(path: Path) -> str:
    run = subprocess.run([tool("dciodvfy"), str(path)], capture_output=True, text=True,
                         timeout=60)
    return run.stdout + run.stderr


def dcm2niix(folder: Path, out: Path) -> nib.Nifti1Image:
    """Convert the one series in ``folder`` to ``out/series.nii`` with dcm2niix."""
    out.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([tool("dcm2niix"), "-b", "n", "-z", "n", "-f", "series", "-o",
                          str(out), str(folder)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (out / "series.nii").is_file(), run.stdout  # (an overlay adds series_ROI1.nii)
    return nib.load(out / "series.nii")


def _float32(values) -> float:
    """Rounding of float32 NIfTI values (both files store float32) near the maximum."""
    return 4 * float(np.finfo(np.float32).eps) * float(np.abs(values).max())


def _errors(report: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith("Error")]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("written")
    shape = (28, 24, 5)
    affine = plane_affine("sagittal", shape, (1.5, 1.25, 4.0), (("z", 14.0), ("x", -7.0)))
    images = mni_images(affine, shape) * 2.5
    attrs = {"PatientName": "Doe^Jane", "PatientID": "P-7", "StudyDate": "20240102",
             "FrameOfReferenceUID": "2.25.42", "Manufacturer": "TestVendor",
             "BodyPartExamined": "HEAD", "EchoTime": 10.0, "RepetitionTime": 500.0}
    prov = Provenance("ista_net_plus", "model.safetensors", "card", "a simulation")
    for name, kw in {"classic": {}, "enhanced": {"enhanced": True},
                     "anonymous": {"anonymize": True},
                     "anonymous_enhanced": {"anonymize": True, "enhanced": True}}.items():
        write_dicom_series(images, affine, root / name, provenance=prov, attributes=attrs,
                           **kw)
    # raw k-space magnitudes are tiny (window width < 1); a GRE header may still give a TI
    tiny = {**attrs, "InversionTime": 300.0}
    for name, kw in {"tiny": {}, "tiny_enhanced": {"enhanced": True}}.items():
        write_dicom_series(images * 1e-7, affine, root / name, provenance=prov, attributes=tiny,
                           **kw)
    return root, images, affine


@pytest.mark.parametrize("name,iod", [("classic", "MRImage"), ("enhanced", "EnhancedMRImage"),
                                      ("anonymous", "MRImage"),
                                      ("anonymous_enhanced", "EnhancedMRImage"),
                                      ("tiny", "MRImage"), ("tiny_enhanced", "EnhancedMRImage")])
def test_dciodvfy_reports_no_errors(written, name, iod):
    root, _, _ = written
    for f in sorted((root / name).iterdir())[:2]:
        report = dciodvfy(f)
        assert iod in report.splitlines(), report  # it recognised the IOD it checked
        assert _errors(report) == [], report


@pytest.mark.parametrize("plane", ["axial", "sagittal", "coronal"])
def test_dcm2niix_agrees_with_our_reader_on_series_we_make(tmp_path, plane):
    mni_series(tmp_path / "in", plane, shape=(30, 26, 6))
    ours = DicomVolume(tmp_path / "in")
    theirs = dcm2niix(tmp_path / "in", tmp_path / "out")
    assert same_grid(theirs, canonical(ours.volume, ours.affine), atol_mm=1e-4) == 0.0


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_bigendian.dcm",
                                  "examples_overlay.dcm"])
def test_dcm2niix_agrees_with_our_reader_on_real_files(tmp_path, name):
    f = copy_test_file(name, tmp_path / "in")
    ours = DicomVolume(f)
    theirs = dcm2niix(tmp_path / "in", tmp_path / "out")
    assert same_grid(theirs, canonical(ours.volume, ours.affine), atol_mm=1e-4) == 0.0


@pytest.mark.parametrize("name", ["classic", "enhanced"])
def test_dcm2niix_reads_our_dicom_like_our_nifti(tmp_path, written, name):
    root, images, affine = written
    ours = write_plain_nifti(images, tmp_path / "ours.nii", affine=affine)
    theirs = dcm2niix(root / name, tmp_path / "out")
    slope = float(pydicom.dcmread(sorted((root / "classic").iterdir())[0]).RescaleSlope)
    assert same_grid(theirs, nib.load(ours), atol_mm=1e-4) <= slope / 2 + _float32(images)


def test_recon_dicom_output_converts_back_to_the_nifti_output(tmp_path, recon_real_ckpt):
    """The command line round trip: DICOM series -> retrospective undersampling -> recon ->
    DICOM series; dcm2niix of that equals recon's own NIfTI output."""
    tool("dcm2niix"), tool("dciodvfy")
    mni_series(tmp_path / "T1", "coronal", shape=(26, 30, 5))
    base = ["recon", str(tmp_path / "T1"), "--model", str(recon_real_ckpt), "--mask", "random",
            "--acceleration", "4", "--no-progress"]
    assert main([*base, "--output", str(tmp_path / "recon_dicom")]) == 0   # DICOM in -> out
    assert main([*base, "--output", str(tmp_path / "recon.nii.gz")]) == 0
    theirs = dcm2niix(tmp_path / "recon_dicom", tmp_path / "conv")
    slope = float(pydicom.dcmread(tmp_path / "recon_dicom" / "IM_0001.dcm").RescaleSlope)
    nifti = nib.load(tmp_path / "recon.nii.gz")
    assert same_grid(theirs, nifti, atol_mm=1e-4) <= slope / 2 + _float32(nifti.get_fdata())
    assert _errors(dciodvfy(tmp_path / "recon_dicom" / "IM_0003.dcm")) == []
    assert np.isfinite(theirs.get_fdata()).all()


@pytest.mark.parametrize("enhanced", [False, True])
def test_twix_to_dicom_passes_dciodvfy(tmp_path, enhanced):
    """Raw data through the command line: the twix header's attributes (a GRE with an
    inversion time, a patient name the file anonymised as 'xxxxxxx') and tiny magnitudes."""
    tool("dciodvfy")
    from raw_fixtures import twix_path

    out = tmp_path / "gre"
    assert main(["recon", str(twix_path()), "--format", "dicom", "--output", str(out),
                 "--no-progress"] + (["--dicom-enhanced"] if enhanced else [])) == 0
    (f,) = sorted(out.iterdir())
    report = dciodvfy(f)
    assert _errors(report) == [], report
    ds = pydicom.dcmread(f)
    assert "InversionTime" not in ds  # not an inversion-recovery sequence
