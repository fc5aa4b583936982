"""ISMRMRD reading: counters, oversampling, partial Fourier / asymmetric echo, averages,
skipped flags, slices and geometry, noise prewhitening, non-Cartesian trajectories, the
writer's round trip, and the errors (tests/raw_fixtures.py makes the files)."""
import numpy as np
import pytest
import torch

from mri_unfold.data.ismrmrd_writer import write_ismrmrd
from mri_unfold.data.prewhiten import noise_covariance, whitening_matrix
from mri_unfold.data.sampling import sampling_pattern
from mri_unfold.data.sources import detect_source, get_source
from mri_unfold.errors import DataFileError
from mri_unfold.fft import fft2, ifft2

from raw_fixtures import cartesian_acqs, ismrmrd_xml, phantom_kspace, write_ismrmrd_acqs

C, H, W = 3, 16, 12


def _xml(h=H, w=W, slices=1, step1=None, recon=None, enc_fov=(160.0, 120.0, 5.0), **kw):
    limits = {"kspace_encoding_step_1": step1 or (0, w - 1, w // 2),
              "slice": (0, slices - 1, 0)}
    return ismrmrd_xml((h, w, 1), recon or (h, w, 1), enc_fov,
                       kw.pop("recon_fov", enc_fov), limits, coils=C, **kw)


def _read(path, **options):
    return get_source("ismrmrd").read(path, options)


def test_counters_place_lines_and_slices_with_geometry(tmp_path):
    k = [phantom_kspace(C, H, W, seed=s) for s in range(2)]
    geo = lambda s: {"read_dir": (1, 0, 0), "phase_dir": (0, 1, 0), "slice_dir": (0, 0, 1),  # noqa: E731
                     "position": (0, 0, 5.0 * s)}
    acqs = cartesian_acqs(k[1], 1, **geo(1))[::-1] + cartesian_acqs(k[0], 0, lines=range(0, W, 2),
                                                                   **geo(0))
    f = write_ismrmrd_acqs(tmp_path / "two.h5", _xml(slices=2), acqs)
    assert detect_source(f) == "ismrmrd"
    ds = _read(f)
    assert len(ds) == 2
    mask0 = np.zeros((H, W), np.float32)
    mask0[:, ::2] = 1
    assert torch.equal(ds[0].mask, torch.from_numpy(mask0))
    assert torch.equal(ds[0].kspace, torch.from_numpy(k[0] * mask0))
    assert torch.equal(ds[1].kspace, torch.from_numpy(k[1])) and not ds[1].metadata.undersampled
    assert ds[0].metadata.num_low_frequencies == 1 and ds[0].metadata.undersampled
    assert ds[0].metadata.voxel_size_mm == (10.0, 10.0, 5.0)
    a = ds[0].metadata.extras["affine"]
    np.testing.assert_allclose(a[:3, :3], np.diag([-10.0, -10.0, 5.0]))   # LPS -> RAS
    np.testing.assert_allclose(a @ [H // 2, W // 2, 1, 1], [0, 0, 5, 1])
    p = sampling_pattern(ds[0].mask)
    assert (p.kind, p.acceleration, p.sampled_lines, p.acs_lines) == ("1-D lines", 2.0, 6, 1)


def test_oversampling_is_removed_to_the_recon_fov(tmp_path):
    img = ifft2(torch.from_numpy(phantom_kspace(C, 2 * H, W)))
    img[:, : H // 2] = 0
    img[:, H // 2 + H:] = 0                          # object inside the recon FOV
    full = fft2(img).numpy()
    xml = _xml(h=2 * H, recon=(H, W, 1), enc_fov=(320.0, 120.0, 5.0),
               recon_fov=(160.0, 120.0, 5.0))
    ds = _read(write_ismrmrd_acqs(tmp_path / "os.h5", xml, cartesian_acqs(full)))
    expect = fft2(img[:, H // 2: H // 2 + H])
    assert tuple(ds[0].kspace.shape) == (C, H, W)
    assert torch.allclose(ds[0].kspace, expect, atol=1e-5 * float(expect.abs().max()))
    assert ds[0].metadata.fov_mm == (160.0, 120.0, 5.0)


def test_partial_fourier_and_asymmetric_echo_are_zero_filled(tmp_path):
    k = phantom_kspace(C, H, W)
    lines, rows = range(3, W), slice(4, H)           # 9 of 12 lines, echo from row 4
    acqs = [{"data": k[:, rows, j], "center_sample": H // 2 - 4,
             "idx": {"kspace_encode_step_1": j}} for j in lines]
    ds = _read(write_ismrmrd_acqs(tmp_path / "pf.h5", _xml(step1=(3, W - 1, W // 2)), acqs))
    expect = np.zeros_like(k)
    expect[:, 4:, 3:] = k[:, 4:, 3:]
    assert torch.equal(ds[0].kspace, torch.from_numpy(expect))
    p = sampling_pattern(ds[0].mask)
    assert (p.kind, p.sampled_lines, p.readout_samples) == ("1-D lines", 9, 12)


def test_averages_are_averaged_and_calibration_navigators_skipped(tmp_path):
    k = phantom_kspace(C, H, W)
    acqs = (cartesian_acqs(k) +
            [dict(a, data=a["data"] * 3, idx={**a["idx"], "average": 1})
             for a in cartesian_acqs(k)] +
            [dict(a, data=a["data"] * 100, flags=(20,)) for a in cartesian_acqs(k)] +
            [dict(a, data=a["data"] * 100, flags=(23,)) for a in cartesian_acqs(k)])
    ds = _read(write_ismrmrd_acqs(tmp_path / "avg.h5", _xml(), acqs))
    assert torch.allclose(ds[0].kspace, torch.from_numpy(2 * k), rtol=1e-6)
    assert ds.info["skipped_acquisitions"] == 2 * W


def test_noise_scans_prewhiten(tmp_path):
    rng = np.random.default_rng(3)
    mix = np.array([[1, 0, 0], [0.5, 1, 0], [0.2, 0.3, 0.7]])
    noise = mix @ (rng.standard_normal((C, 4000)) + 1j * rng.standard_normal((C, 4000)))
    k = phantom_kspace(C, H, W)
    acqs = [{"data": noise[:, i:i + 400], "flags": (19,)} for i in range(0, 4000, 400)]
    f = write_ismrmrd_acqs(tmp_path / "noise.h5", _xml(), acqs + cartesian_acqs(k))
    white, plain = _read(f), _read(f, prewhiten=False)
    assert torch.equal(plain[0].kspace, torch.from_numpy(k))
    cov = noise_covariance(noise.astype(np.complex64))
    np.testing.assert_allclose(white[0].metadata.extras["noise_covariance"], cov, rtol=1e-5)
    w = whitening_matrix(cov)
    np.testing.assert_allclose(white[0].kspace.numpy(), np.einsum("dc,chw->dhw", w, k),
                               rtol=1e-4, atol=1e-5 * np.abs(k).max())
    np.testing.assert_allclose(w @ (mix @ mix.conj().T * 2) @ w.conj().T, np.eye(C), atol=0.1)


def test_non_cartesian_trajectory_is_kept(tmp_path):
    n, spokes = 32, 5
    ang = np.pi * np.arange(spokes) / spokes
    r = np.linspace(-0.5, 0.5, n, endpoint=False)
    acqs = [{"data": phantom_kspace(C, n, spokes)[:, :, s],
             "traj": np.stack([r * np.cos(a), r * np.sin(a)], 1)} for s, a in enumerate(ang)]
    ds = _read(write_ismrmrd_acqs(tmp_path / "radial.h5", _xml(h=n, w=n, trajectory="radial"),
                                  acqs))
    s = ds[0]
    assert not s.is_cartesian and tuple(s.kspace.shape) == (C, n * spokes)
    assert tuple(s.trajectory.shape) == (n * spokes, 2) and s.image_shape == (n, n)
    np.testing.assert_allclose(s.trajectory[n:2 * n, 0].numpy(), r * np.cos(ang[1]), atol=1e-7)
    assert s.metadata.trajectory_type == "radial"


def test_writer_round_trip(tmp_path):
    from mri_unfold.data.raw_samples import raw_sample

    k = phantom_kspace(C, H, W)
    k[:, :, 1::3] = 0
    affine = np.array([[-2.0, 0, 0, 10], [0, 0, 3.0, -5], [0, 2.0, 0, 7], [0, 0, 0, 1]])
    samples = [raw_sample(k * (s + 1), path=tmp_path / "src", index=s, fov_mm=(32.0, 24.0, 3.0),
                          extras={"affine": affine}) for s in range(2)]
    back = _read(write_ismrmrd(samples, tmp_path / "rt.h5"))
    for a, b in zip(samples, back):
        assert torch.equal(a.kspace, b.kspace) and torch.equal(a.mask, b.mask)
        assert b.metadata.fov_mm == (32.0, 24.0, 3.0)
        np.testing.assert_allclose(b.metadata.extras["affine"], affine, atol=1e-5)


def test_bad_ismrmrd_files(tmp_path):
    k = phantom_kspace(C, H, W)
    nohdr = write_ismrmrd_acqs(tmp_path / "nohdr.h5", None, cartesian_acqs(k))
    with pytest.raises(DataFileError, match=r"nohdr.h5: ISMRMRD file without an XML header "
                                            r"\(no '/dataset/xml' dataset\)"):
        _read(nohdr)
    acqs = cartesian_acqs(k)
    acqs[4]["idx"]["kspace_encode_step_1"] = 40
    out = write_ismrmrd_acqs(tmp_path / "limits.h5", _xml(), acqs)
    with pytest.raises(DataFileError, match=r"limits.h5: acquisition 4 has line counter 40, "
                                            r"outside the header's encoding limits \[0, 11\]"):
        _read(out)
    nan = k.copy()
    nan[0, 3, 3] = np.nan
    out = write_ismrmrd_acqs(tmp_path / "nan.h5", _xml(), cartesian_acqs(nan))
    with pytest.raises(DataFileError, match=r"nan.h5 slice 0: k-space holds 1 NaN/Inf samples"):
        _read(out)
    only_noise = write_ismrmrd_acqs(tmp_path / "noise_only.h5", _xml(),
                                    [dict(a, flags=(19,)) for a in cartesian_acqs(k)])
    with pytest.raises(DataFileError, match="noise_only.h5: no image acquisitions"):
        _read(only_noise)
