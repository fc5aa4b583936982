"""Siemens twix reading on the real 2-coil VD/VE scan and on VB / multi-RAID / noise variants
made from it (tests/raw_fixtures.py)."""
import nibabel as nib
import numpy as np
import pytest
import torch

from mri_unfold.data.prewhiten import noise_covariance, whitening_matrix
from mri_unfold.data.sources import detect_source, get_source
from mri_unfold.errors import DataFileError
from mri_unfold.fft import ifft2

from raw_fixtures import flagged_twix, multi_raid_twix, twix_path, vb_twix


@pytest.fixture(scope="module")
def twix():
    return get_source("twix").read(twix_path())


def _own_reference():
    """Oversampling removed by hand from twixtools' raw array: centred orthonormal iFFT
    along the 320-sample readout, keep the centre 160, FFT back."""
    import twixtools

    arr = twixtools.map_twix(str(twix_path()), verbose=False)[-1]["image"]
    full = torch.from_numpy(arr[:].squeeze()).permute(1, 2, 0)          # (2, 320, 160)
    sh = lambda t, f: torch.fft.fftshift(f(torch.fft.ifftshift(t, dim=1), dim=1, norm="ortho"),  # noqa: E731
                                         dim=1)
    return sh(sh(full, torch.fft.ifft)[:, 80:240], torch.fft.fft), arr


def test_real_scan_reads_as_stored(twix):
    assert detect_source(twix_path()) == "twix" and len(twix) == 1
    s = twix[0]
    assert tuple(s.kspace.shape) == (2, 160, 160) and s.kspace.dtype == torch.complex64
    ref, arr = _own_reference()
    assert torch.equal(s.kspace, ref)
    arr.flags["remove_os"] = True                 # twixtools' own removal: numpy's ifft/fft
    theirs = ifft2(torch.from_numpy(arr[:].squeeze()).permute(1, 2, 0)).abs()
    ours = ifft2(s.kspace).abs()
    assert torch.allclose(ours, theirs * np.sqrt(2), rtol=1e-4, atol=1e-6 * float(ours.max()))
    assert bool((s.mask == 1).all()) and not s.metadata.undersampled
    m = s.metadata
    assert m.fov_mm == (200.0, 200.0, 4.0) and m.voxel_size_mm == (1.25, 1.25, 4.0)
    assert m.crop_size == (160, 160) and m.trajectory_type == "cartesian"
    assert m.extras["encoded_matrix"] == (320, 160, 1) and m.extras["software"] == "VD/VE"
    assert twix.info["image_readouts"] == 160 and twix.info["noise_readouts"] == 0


def test_affine_from_the_slice_position_and_orientation(twix):
    a = twix[0].metadata.extras["affine"]
    assert "".join(nib.aff2axcodes(a)) == "LAS"
    np.testing.assert_allclose(np.linalg.norm(a[:3, :3], axis=0), [1.25, 1.25, 4.0], rtol=1e-6)
    centre = a @ np.array([80, 80, 0, 1.0])       # pixel (H//2, W//2) = slice centre (RAS)
    np.testing.assert_allclose(centre[:3], [2.5897, -53.9224, -53.9995], atol=1e-3)


def test_vb_layout_gives_the_same_kspace(twix, tmp_path):
    vb = vb_twix(twix_path(), tmp_path / "vb.dat")
    assert detect_source(vb) == "twix"
    got = get_source("twix").read(vb)
    assert got.info["format"] == "Siemens twix (VB)"
    assert torch.equal(got[0].kspace, twix[0].kspace)


def test_multi_raid_last_measurement_and_noise_prewhitening(twix, tmp_path):
    mr = multi_raid_twix(twix_path(), tmp_path / "mr.dat", tmp_path)
    white = get_source("twix").read(mr)
    assert white.info["measurements"] == 2 and white.info["noise_readouts"] == 160
    plain = get_source("twix").read(mr, {"prewhiten": False})
    assert torch.equal(plain[0].kspace, twix[0].kspace)       # the image scan of the last one
    import twixtools
    noise = np.concatenate([np.asarray(m.data) for m in twixtools.read_twix(
        str(mr), verbose=False, parse_pmu=False)[0]["mdb"] if m.is_flag_set("NOISEADJSCAN")], 1)
    cov = noise_covariance(noise)
    np.testing.assert_allclose(white[0].metadata.extras["noise_covariance"], cov)
    w = torch.from_numpy(whitening_matrix(cov).astype(np.complex64))
    expect = torch.einsum("dc,chw->dhw", w, twix[0].kspace)
    assert torch.allclose(white[0].kspace, expect, atol=1e-6 * float(expect.abs().max()))
    assert white[0].metadata.extras["prewhitened"] is True


def test_bad_twix_files(tmp_path):
    raw = twix_path().read_bytes()
    (tmp_path / "half.dat").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFileError, match=r"half.dat: truncated twix file: measurement 0 "
                                            r"needs bytes 10240\.\.1656864, the file has 828672"):
        get_source("twix").read(tmp_path / "half.dat")
    noimg = flagged_twix(twix_path(), tmp_path / "noise_only.dat")
    with pytest.raises(DataFileError, match=r"noise_only.dat: no image scan in the last "
                                            r"measurement \(160 readouts, 160 of them noise\)"):
        get_source("twix").read(noimg)
    vb = vb_twix(twix_path(), tmp_path / "vb.dat").read_bytes()
    (tmp_path / "vb_cut.dat").write_bytes(vb[:-5000])
    with pytest.raises(DataFileError, match="vb_cut.dat: truncated twix file: measurement 0 "
                                            "ends without the end-of-acquisition readout"):
        get_source("twix").read(tmp_path / "vb_cut.dat")
