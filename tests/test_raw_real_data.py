"""The real-data study of docs/raw_data.md on the 2-coil Siemens scan of ../shared: read,
fully sampled RSS and SENSE, retrospective 1-D equispaced 4x (24 ACS lines) and 2-D Poisson
4x, zero-filled / L1-wavelet / the bundled small ISTA-Net+ trained on simulated k-space,
PSNR/SSIM against the fully sampled RSS image, the comparison figure, and the ISMRMRD round
trip through our writer."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mri_unfold
from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.data.ismrmrd_writer import write_ismrmrd
from mri_unfold.data.sources import get_source
from mri_unfold.evaluation.raw_scan import real_scan_study

from raw_fixtures import twix_path

CKPT = Path(mri_unfold.__file__).parent / "weights" / "ista_net_plus_raw_sim.safetensors"
#: docs/raw_data.md: (PSNR dB, SSIM) vs the fully sampled RSS, then vs the fully sampled SENSE.
DOCS = {("1-D equispaced 4x, 24 ACS lines", "zero-filled"): (21.84, 0.5745, 21.72, 0.5491),
        ("1-D equispaced 4x, 24 ACS lines", "L1-wavelet"): (21.84, 0.5745, 21.72, 0.5491),
        ("1-D equispaced 4x, 24 ACS lines", "ISTA-Net+"): (21.94, 0.5306, 22.61, 0.6165),
        ("2-D Poisson-disc 4x", "zero-filled"): (23.68, 0.5917, 23.33, 0.5640),
        ("2-D Poisson-disc 4x", "L1-wavelet"): (24.14, 0.5764, 25.24, 0.6055),
        ("2-D Poisson-disc 4x", "ISTA-Net+"): (23.60, 0.5670, 24.54, 0.6467)}


def test_ismrmrd_round_trip_of_the_real_scan_is_identical(tmp_path):
    scan = get_source("twix").read(twix_path())
    back = get_source("ismrmrd").read(write_ismrmrd(list(scan), tmp_path / "scan.h5"))
    a, b = scan[0], back[0]
    assert torch.equal(a.kspace, b.kspace) and torch.equal(a.mask, b.mask)
    assert (a.metadata.fov_mm, a.metadata.voxel_size_mm, a.metadata.crop_size) == \
        (b.metadata.fov_mm, b.metadata.voxel_size_mm, b.metadata.crop_size)
    np.testing.assert_allclose(b.metadata.extras["affine"], a.metadata.extras["affine"],
                               atol=1e-4)


@pytest.mark.slow
def test_real_scan_study_matches_the_docs(tmp_path):
    res = real_scan_study(twix_path(), load_checkpoint(CKPT).model, figures=tmp_path)
    ref = res["reference"]
    assert ref["sense_vs_rss"]["psnr"] == pytest.approx(30.10, abs=0.05)
    assert res["images"]["fully sampled RSS"].shape == (160, 160)
    got = {(r["mask"], r["method"]): (r["psnr"], r["ssim"], r["psnr_vs_sense"],
                                      r["ssim_vs_sense"]) for r in res["rows"]}
    assert set(got) == set(DOCS)
    for key, expect in DOCS.items():
        for g, e, tol in zip(got[key], expect, (0.05, 0.002, 0.05, 0.002)):
            assert g == pytest.approx(e, abs=tol), key
    accel = {r["mask"]: (r["acceleration"], r["acs_lines"]) for r in res["rows"]}
    assert accel["1-D equispaced 4x, 24 ACS lines"] == (4.0, 24)
    for kind in ("equispaced", "poisson"):
        png = Image.open(tmp_path / f"raw_data_{kind}.png")
        assert png.format == "PNG" and png.size[0] > 800 and png.size[1] > 400
        assert np.asarray(png.convert("L")).std() > 20        # a real picture, not blank
