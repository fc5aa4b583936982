"""Whole 3-D scans through the pipeline and ``recon --ndim 3``: streaming over readout
positions, classical 3-D methods, coil maps, per-position statistics, NIfTI geometry round
trip, 3-D raw scans, networks (trained on ky–kz slices, learned masks), bad inputs."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from mri_unfold import metrics
from mri_unfold.cli import main
from mri_unfold.errors import UserError
from mri_unfold.data.ismrmrd_volume_writer import write_ismrmrd_volume
from mri_unfold.data.simulate3d import SimulatedVolume
from mri_unfold.masks.kykz import make_kykz_mask
from mri_unfold.models import build
from mri_unfold.reconstruct import (VolumeSettings, classical_3d, reconstruct_nifti_3d,
                                    reconstruct_positions, MaskSpec)
from mri_unfold.reconstruct.classical3d import gather_kspace

AFFINE = np.array([[0, 0, -1.1, 40], [0.9, 0.1, 0, -30], [0, 1.2, 0, 12], [0, 0, 0, 1]])


def _phantom(shape=(12, 24, 20)):
    """A smooth ellipsoid volume with some structure (float32, peak 1)."""
    g = [np.linspace(-1, 1, n) for n in shape]
    x, y, z = np.meshgrid(*g, indexing="ij")
    r = x ** 2 / 0.8 + y ** 2 / 0.7 + z ** 2 / 0.6
    v = (r < 1) * (0.6 + 0.4 * np.cos(4 * y) * np.sin(3 * z))
    return (v / v.max()).astype(np.float32)


def _nifti(tmp_path, vol=None, name="vol.nii.gz"):
    vol = _phantom() if vol is None else vol
    img = nib.Nifti1Image((vol * 1000).astype(np.int16), AFFINE)
    img.header.set_qform(AFFINE, code=1)
    img.header.set_sform(AFFINE, code=2)
    nib.save(img, tmp_path / name)
    return tmp_path / name


def _sim(accel=3.0, coils=4, shape=(12, 24, 20), acs=(10, 10)):
    m = make_kykz_mask("poisson", shape[1:], acceleration=accel, acs=acs, seed=0).mask
    return SimulatedVolume(_phantom(shape), m, coils=coils, seed=0)


def test_streamed_zero_filled_equals_the_3d_rss_and_chunks_do_not_matter():
    sim = _sim()
    a = reconstruct_positions(sim, method="zero-filled", chunk=1, progress=False)
    b = reconstruct_positions(sim, method="zero-filled", chunk=32, progress=False)
    c = classical_3d(sim, "zero-filled", progress=False)
    assert np.allclose(a.reconstruction, b.reconstruction, atol=1e-7)
    assert np.allclose(a.reconstruction, c.reconstruction, atol=1e-5)
    empty = sum(not sim.volume[x].any() for x in range(12))
    assert a.reconstruction.shape == (12, 24, 20) and a.info["empty_positions"] == empty == 2
    stats = a.positions["zero-filled"]["psnr_stats"]
    psnr = a.positions["zero-filled"]["psnr"]
    assert stats["n"] == len(psnr) and stats["ci_low"] < stats["mean"] < stats["ci_high"]
    assert stats["mean"] == pytest.approx(np.mean(psnr))
    peak = float(a.target.max())
    i = a.positions["zero-filled"]["positions"][0]
    assert psnr[0] == pytest.approx(metrics.psnr(a.target[i], a.reconstruction[i],
                                                 data_range=peak))


def test_classical_3d_methods_beat_zero_filled_and_sense_matches_per_position():
    sim = _sim(accel=3.0, coils=8)
    zf = reconstruct_positions(sim, method="zero-filled", progress=False).metrics
    s3 = classical_3d(sim, "sense", maps="given", progress=False)
    s2 = reconstruct_positions(sim, method="sense", maps="given", progress=False)
    l1 = classical_3d(sim, "l1-wavelet", maps="given", max_iter=30, progress=False)
    tv = classical_3d(sim, "tv", maps="given", max_iter=60, progress=False)
    base = zf["zero-filled"]["psnr"]
    for r, name in ((s3, "sense"), (l1, "l1-wavelet"), (tv, "tv")):
        assert r.metrics[name]["psnr"] > base + 3, (name, r.metrics[name], base)
        assert r.info["solved_in"] == "3-D"
    # the 3-D normal equations decouple over x: the same least-squares solution
    assert s3.metrics["sense"]["psnr"] == pytest.approx(s2.metrics["sense"]["psnr"], abs=1.0)


def test_espirit_per_position(tmp_path):
    sim = _sim(accel=3.0, shape=(10, 48, 40), acs=(20, 20))   # ESPIRiT needs a real ACS
    per = reconstruct_positions(sim, method="sense", maps="espirit", progress=False,
                                espirit_cache=tmp_path / "esp")
    zf = per.metrics["zero-filled"]["psnr"]
    assert per.metrics["sense"]["psnr"] > zf + 5 and per.info["coil_maps"] == "espirit"
    assert len(list((tmp_path / "esp").iterdir())) == 8      # one map set per position with signal
    with pytest.raises(UserError, match=r"the 3-D calibration cube is only 10 wide: 125 "
                                        r"calibration rows for 864 kernel columns"):
        reconstruct_positions(sim, method="sense", maps="espirit-3d", progress=False)


@pytest.mark.slow
def test_espirit_3d_maps():
    sim = _sim(accel=3.0, shape=(24, 48, 40), acs=(20, 20))
    three = reconstruct_positions(sim, method="sense", maps="espirit-3d", progress=False)
    zf = three.metrics["zero-filled"]["psnr"]
    assert three.metrics["sense"]["psnr"] > zf + 4 and three.info["coil_maps"] == "espirit-3d"


def test_nifti_round_trip_keeps_affine_orientation_and_voxel_order(tmp_path):
    """NIfTI -> simulated 3-D k-space (fully sampled) -> recon -> NIfTI: the same voxels."""
    src = _nifti(tmp_path)
    for axis in (0, 2):
        out = tmp_path / f"rec{axis}.nii.gz"
        assert main(["recon", str(src), "--ndim", "3", "--readout-axis", str(axis),
                     "--mask", "random2d", "--acceleration", "1", "--acs", "8", "8",
                     "--method", "zero-filled", "--output", str(out), "--no-progress"]) == 0
        a, b = nib.load(src), nib.load(out)
        assert b.shape == a.shape and np.array_equal(b.affine, a.affine)
        assert b.header.get_qform(coded=True)[1] == 1 and b.header.get_sform(coded=True)[1] == 2
        assert nib.aff2axcodes(b.affine) == nib.aff2axcodes(a.affine)
        assert b.get_data_dtype() == np.float32
        assert np.allclose(np.asarray(b.dataobj), np.asarray(a.dataobj), atol=1e-2)


def test_recon_3d_network_complex_output_and_report(tmp_path, capsys):
    src = _nifti(tmp_path)
    model = build("ista_net_plus", num_phases=2, channels=4, image_channels=2, seed=0)
    res = reconstruct_nifti_3d(src, model, MaskSpec(kind="poisson", acceleration=3, seed=1),
                               settings=VolumeSettings(coils=4, acs=(10, 10), maps="given",
                                                       chunk=5),
                               batch_size=3, progress=False, keep_complex=True)
    assert res.reconstruction.shape == (12, 24, 20) and res.complex_image.dtype == np.complex64
    assert np.allclose(np.abs(res.complex_image), res.reconstruction, atol=1e-5)
    assert set(res.metrics) == {"network", "zero-filled"} and res.info["readout_axis"] == 0
    out = tmp_path / "c.nii.gz"
    assert main(["recon", str(src), "--ndim", "3", "--mask", "gaussian2d", "--acceleration",
                 "3", "--acs", "10", "10", "--sim-coils", "4", "--coil-maps", "given",
                 "--method", "sense", "--complex-output", "--output", str(out),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "per readout position (mean [95% CI] over positions with signal):" in text
    assert "sense: PSNR" in text and "(n = " in text
    img = nib.load(out)
    assert img.get_data_dtype() == np.complex64 and img.shape == (12, 24, 20)


def test_recon_3d_raw_ismrmrd_detected_from_its_encoding(tmp_path, capsys):
    sim = _sim(accel=3.0, shape=(10, 48, 40), acs=(20, 20))
    k, target, _ = gather_kspace(sim)
    path = write_ismrmrd_volume(k, tmp_path / "scan.h5", affine=AFFINE)
    out = tmp_path / "scan_recon.nii.gz"
    assert main(["recon", str(path), "--method", "sense", "--output", str(out),
                 "--no-progress"]) == 0
    assert "(ismrmrd, 3-D): 10 readout positions of 48x40 ky-kz" in capsys.readouterr().out
    img = nib.load(out)
    assert img.shape == (10, 48, 40) and np.allclose(img.affine, AFFINE, atol=1e-5)
    rec = np.asarray(img.dataobj)
    assert metrics.psnr(target.numpy(), rec) > 30


@pytest.mark.parametrize("argv,message", [
    (["--ndim", "3", "--mask", "poisson", "--acceleration", "4", "--mask-file", "m.npy"],
     "give either --mask KIND or --mask-file FILE, not both"),
    (["--readout-axis", "1", "--mask", "poisson", "--acceleration", "4"],
     "--readout-axis is for 3-D scans: add --ndim 3"),
    (["--sim-coils", "4", "--mask", "poisson", "--acceleration", "4"],
     "--sim-coils is for 3-D scans: add --ndim 3"),
    (["--ndim", "3", "--method", "sense"],
     "a NIfTI volume is undersampled retrospectively in ky-kz: give --mask KIND"),
    (["--ndim", "3", "--mask", "caipi", "--acceleration", "4.5", "--acs", "8", "8"],
     "ky-kz mask 'caipi' for vol.nii.gz (24x20): a caipi mask needs an integer acceleration"),
    (["--ndim", "3", "--mask-file", "{mask}"],
     "the mask's ky-kz shape (20, 24) does not match the vol.nii.gz scan's (KY, KZ) = (24, 20)"),
    (["--ndim", "3", "--mask", "poisson", "--acceleration", "4", "--acs", "40", "4"],
     "acs must be two integers (ACS_Y, ACS_Z) within the ky-kz grid (24, 20)"),
    (["--ndim", "3", "--mask", "poisson", "--acceleration", "4", "--complex-output",
      "--output", "{out}.npy"], "--complex-output writes complex64 NIfTI"),
])
def test_bad_3d_inputs_exit_2_with_one_line_and_nothing_written(tmp_path, capsys, argv,
                                                                 message):
    src = _nifti(tmp_path)
    np.save(tmp_path / "m.npy", np.ones((20, 24), np.float32))
    argv = [a.replace("{mask}", str(tmp_path / "m.npy")).replace("{out}", str(tmp_path / "o"))
            for a in argv]
    before = sorted(p.name for p in tmp_path.iterdir())
    rc = main(["recon", str(src), *argv, "--output", str(tmp_path / "out.nii.gz"),
               "--no-progress"] if "--output" not in argv else
              ["recon", str(src), *argv, "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_raw_2d_scan_refuses_ndim_3_and_memory_guard(tmp_path, capsys, monkeypatch):
    k = np.zeros((8, 6, 1, 2), np.complex64)          # READ, PHS1, PHS2 = 1, COIL: 2-D
    k[...] = 1
    from mri_unfold.data.bart import write_cfl
    write_cfl(tmp_path / "flat", k)
    assert main(["recon", str(tmp_path / "flat.cfl"), "--ndim", "3", "--output",
                 str(tmp_path / "o.nii.gz")]) == 2
    assert "--ndim 3 needs a 3-D scan, but the file's encoding is 2-D" in capsys.readouterr().err
    import mri_unfold.memory as memory
    src = _nifti(tmp_path, _phantom((12, 24, 20)))
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 1 << 16)
    assert main(["recon", str(src), "--ndim", "3", "--mask", "poisson", "--acceleration",
                 "3", "--acs", "10", "10", "--method", "sense", "--output",
                 str(tmp_path / "o.nii.gz"), "--no-progress"]) == 2
    assert "refusing to allocate it" in capsys.readouterr().err
    assert not (tmp_path / "o.nii.gz").exists()
