"""3-D data: the simulated scan equals the 3-D operator decoupled along the readout, 3-D
birdcage maps, readout checks, 3-D raw scans (ISMRMRD round trip, encodings, slabs), the
ky–kz training source and the learned k-space mask through the engine."""
from __future__ import annotations

import numpy as np
import pytest
import sigpy.mri
import torch

from mri_unfold.data.errors import DataFileError
from mri_unfold.data.ismrmrd_volume_writer import write_ismrmrd_volume
from mri_unfold.data.raw_assembly import Encoding, Readouts, assemble_volumes
from mri_unfold.data.raw_volumes import is_3d_scan, read_volumes
from mri_unfold.data.samples import SampleMetadata
from mri_unfold.data.simulate3d import SimulatedVolume, birdcage_maps_3d
from mri_unfold.data.sources import get_source
from mri_unfold.data.volume3d import DecoupledVolume, KSpaceVolume, crop_affine_3d
from mri_unfold.fft import ifftn
from mri_unfold.masks.kykz import make_kykz_mask
from mri_unfold.memory import InsufficientMemory
from mri_unfold.operators import CartesianFourier3D
from mri_unfold.reconstruct.classical3d import gather_kspace

from raw_fixtures import ismrmrd_xml, write_ismrmrd_acqs

AFFINE = np.array([[0, 0, 2.0, -10], [1.5, 0, 0, -20], [0, 1.2, 0, 5], [0, 0, 0, 1]])


def _volume(shape=(10, 12, 9), seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def test_simulated_scan_is_the_3d_operator_decoupled_along_the_readout():
    vol = _volume()
    m = make_kykz_mask("poisson", (12, 9), acceleration=2, acs=(4, 4), seed=0).mask
    sim = SimulatedVolume(vol, m, coils=4, seed=1, noise_std=0.0)
    maps, img = sim.coil_maps(range(10)), sim.images(range(10))
    hybrid = ifftn(CartesianFourier3D(m, maps)(img[None, None]), dims=(-3,))[0]
    samples = sim.samples(range(10))
    assert max(float((hybrid[:, x] - s.kspace).abs().max()) for x, s in enumerate(samples)) < 1e-5
    s = samples[4]
    assert s.metadata.slice == 4 and s.metadata.scale == pytest.approx(float(vol.max()))
    assert torch.allclose(s.target, torch.from_numpy(vol[4] / vol.max()), atol=1e-6)
    assert float(img.abs().max()) == pytest.approx(1.0)
    # streaming: any chunk of positions gives the same samples
    chunked = [t for pos in sim.chunks(3) for t in sim.samples(pos)]
    assert all(torch.allclose(a.kspace, b.kspace, atol=1e-6) for a, b in zip(samples, chunked))
    noisy = SimulatedVolume(vol, m, coils=4, seed=1, noise_std=0.01).samples([4])[0]
    diff = (noisy.kspace - s.kspace)[:, m > 0]
    assert float(diff.abs().pow(2).mean().sqrt()) == pytest.approx(0.01, rel=0.15)


def test_birdcage_maps_3d_are_normalised_and_close_to_sigpy():
    maps = birdcage_maps_3d(8, (24, 24, 24))
    assert tuple(maps.shape) == (8, 24, 24, 24)
    assert torch.allclose(maps.abs().square().sum(0), torch.ones(24, 24, 24), atol=1e-5)
    ref = np.transpose(sigpy.mri.birdcage_maps((8, 24, 24, 24), nzz=4), (0, 3, 2, 1))
    err = np.linalg.norm(maps.numpy() - ref) / np.linalg.norm(ref)
    assert err < 0.05, err      # coarse 48^3 grid + trilinear interpolation vs the exact maps
    part = birdcage_maps_3d(8, (24, 24, 24), positions=[3, 17])
    assert torch.allclose(part, maps[:, [3, 17]])


def _kspace_volume(k, name="scan.h5"):
    return KSpaceVolume(torch.as_tensor(k), SampleMetadata(fname=name, slice=0))


def test_undersampled_readout_and_mask_shape_are_refused():
    k = torch.ones(2, 8, 6, 5, dtype=torch.complex64)
    k[:, :3, 2, 1] = 0                                  # a partial echo on one ky-kz line
    with pytest.raises(DataFileError, match=r"scan.h5: the readout is undersampled: 1 of 30 "
                                            r"sampled ky-kz lines hold only 5..5 of 8 kx"):
        _kspace_volume(k)
    k = torch.ones(2, 8, 6, 5, dtype=torch.complex64)
    k[:, :, 0, :] = 0
    v = _kspace_volume(k)
    assert v.mask.sum() == 25 and not v.mask[0].any()
    with pytest.raises(DataFileError, match=r"the mask's ky-kz shape \(5, 6\) does not match "
                                            r"the scan's \(KY, KZ\) = \(6, 5\)"):
        DecoupledVolume(v, np.ones((5, 6)))
    d = DecoupledVolume(v, np.ones((6, 5)))
    assert len(d) == 8 and torch.allclose(d.samples([2])[0].kspace, ifftn(k, dims=(1,))[:, 2])


def test_ismrmrd_3d_round_trip_and_decoupled_positions(tmp_path):
    vol = _volume((12, 16, 10))
    m = make_kykz_mask("gaussian2d", (16, 10), acceleration=3, acs=(4, 4), seed=1).mask
    k, _, _ = gather_kspace(SimulatedVolume(vol, m, coils=3))
    path = write_ismrmrd_volume(k, tmp_path / "v3.h5", affine=AFFINE)
    assert is_3d_scan("ismrmrd", path) and get_source("ismrmrd").detect(path)
    (v,) = read_volumes("ismrmrd", path)
    assert torch.equal(v.kspace, k) and np.array_equal(v.mask.numpy(), m)
    assert np.allclose(v.metadata.extras["affine"], AFFINE, atol=1e-5)
    assert v.metadata.voxel_size_mm == pytest.approx((1.5, 1.2, 2.0))
    with pytest.raises(DataFileError, match="undersampled along the partitions"):
        get_source("ismrmrd").read(path)                # the 2-D reader refuses kz holes
    from mri_unfold.cli.info import volume_info
    info = volume_info(path, "ismrmrd")
    assert info["dimensions"] == {"coils": 3, "readout": 12, "ky": 16, "kz": 10, "slabs": 1}
    assert info["fov_mm"] == [18.0, 19.2, 20.0] and info["orientation"] == "ASR"
    assert info["kykz_sampling"]["acs_square"] >= 4
    pos = DecoupledVolume(v).samples([5])[0]
    assert pos.metadata.slice == 5 and tuple(pos.kspace.shape) == (3, 16, 10)
    assert np.allclose(pos.metadata.extras["affine"], AFFINE, atol=1e-5)


def test_3d_encodings_oversampling_and_inconsistent_acquisitions(tmp_path):
    rng = np.random.default_rng(2)
    c, x, y, z = 2, 8, 6, 4
    k = (rng.standard_normal((c, x, y, z)) + 1j * rng.standard_normal((c, x, y, z)))
    xml = ismrmrd_xml((x, y, z), (x, y, z - 2), (80.0, 60.0, 40.0), (80.0, 60.0, 20.0),
                      {"kspace_encoding_step_1": (0, y - 1, y // 2),
                       "kspace_encoding_step_2": (0, z - 1, z // 2)}, coils=c)
    acqs = [{"data": k[:, :, j, p], "idx": {"kspace_encode_step_1": j,
                                            "kspace_encode_step_2": p}}
            for j in range(y) for p in range(1, z)]           # partial Fourier: kz = 0 skipped
    write_ismrmrd_acqs(tmp_path / "pf.h5", xml, acqs)
    (v,) = read_volumes("ismrmrd", tmp_path / "pf.h5")
    assert v.mask[:, 0].sum() == 0 and v.mask[:, 1:].all()
    assert v.metadata.crop_size == (y, z - 2) and v.metadata.extras["recon_shape"] == (x, y, 2)
    acqs[3] = {"data": k[:, :5, 1, 1], "idx": {"kspace_encode_step_1": 1,
                                               "kspace_encode_step_2": 1}, "center_sample": 2}
    write_ismrmrd_acqs(tmp_path / "bad.h5", xml, acqs)
    with pytest.raises(DataFileError, match=r"inconsistent encodings between acquisitions: "
                                            r"readouts of 2 lengths \[5, 8\]"):
        read_volumes("ismrmrd", tmp_path / "bad.h5")
    flat = ismrmrd_xml((x, y, 1), (x, y, 1), (80.0, 60.0, 10.0), (80.0, 60.0, 10.0),
                       {"kspace_encoding_step_1": (0, y - 1, y // 2)}, coils=c)
    write_ismrmrd_acqs(tmp_path / "two_d.h5", flat, acqs[:6])
    assert not is_3d_scan("ismrmrd", tmp_path / "two_d.h5")
    with pytest.raises(DataFileError, match=r"not a 3-D Cartesian scan \(trajectory cartesian, 1 "
                                            r"partition\(s\)\)"):
        read_volumes("ismrmrd", tmp_path / "two_d.h5")


def test_declared_size_beyond_memory_is_refused_before_allocating(monkeypatch):
    import mri_unfold.memory as memory

    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 1 << 20)
    n = np.arange(4)
    r = Readouts(data=np.ones((4, 2, 64), np.complex64), line=n, partition=n, slice=0 * n,
                 contrast=0 * n, repetition=0 * n, average=0 * n, center_sample=32 + 0 * n,
                 reverse=np.zeros(4, bool), number=n)
    enc = Encoding(readout_full=64, readout_keep=64, lines=2000, center_line=0,
                   partitions=2000, center_partition=0)
    with pytest.raises(InsufficientMemory, match=r"huge.h5: k-space of the encoded matrix 64 x "
                                                 r"2000 x 2000 \(1 slices, 2 coils\) needs "
                                                 r"11.4 GiB of memory"):
        assemble_volumes(r, enc, "huge.h5")


def test_crop_affine_3d_moves_the_origin_to_the_kept_voxels():
    a = crop_affine_3d(AFFINE, (12, 16, 10), (10, 16, 6))
    assert np.allclose(a[:3, 3], AFFINE[:3, 3] + AFFINE[:3, 0] * 1 + AFFINE[:3, 2] * 2)


def _slab_acqs(k, slab, centre_z, dz=2.0):
    y, z = k.shape[2:]
    return [{"data": k[:, :, j, p], "idx": {"kspace_encode_step_1": j, "kspace_encode_step_2": p,
                                            "slice": slab},
             "read_dir": (1, 0, 0), "phase_dir": (0, 1, 0), "slice_dir": (0, 0, 1),
             "position": (0, 0, centre_z)} for j in range(y) for p in range(z)]


def test_contiguous_slabs_are_stacked_and_overlapping_ones_refused(tmp_path):
    from mri_unfold.cli import main

    rng = np.random.default_rng(3)
    c, x, y, z = 2, 8, 6, 4
    ks = [(rng.standard_normal((c, x, y, z)) + 1j * rng.standard_normal((c, x, y, z)))
          .astype(np.complex64) for _ in range(2)]
    xml = ismrmrd_xml((x, y, z), (x, y, z), (8.0, 6.0, 8.0), (8.0, 6.0, 8.0),
                      {"kspace_encoding_step_1": (0, y - 1, y // 2),
                       "kspace_encoding_step_2": (0, z - 1, z // 2), "slice": (0, 1, 0)},
                      coils=c)
    write_ismrmrd_acqs(tmp_path / "slabs.h5", xml, _slab_acqs(ks[0], 0, 0.0)
                       + _slab_acqs(ks[1], 1, 8.0))          # slab 1 starts where 0 ends
    vols = read_volumes("ismrmrd", tmp_path / "slabs.h5")
    assert [v.metadata.extras["slab"] for v in vols] == [0, 1]
    out = tmp_path / "stack.npy"
    assert main(["recon", str(tmp_path / "slabs.h5"), "--method", "zero-filled", "--output",
                 str(out), "--no-progress"]) == 0
    assert np.load(out).shape == (x, y, 2 * z)
    write_ismrmrd_acqs(tmp_path / "overlap.h5", xml, _slab_acqs(ks[0], 0, 0.0)
                       + _slab_acqs(ks[1], 1, 5.0))
    assert main(["recon", str(tmp_path / "overlap.h5"), "--method", "zero-filled", "--output",
                 str(tmp_path / "o.npy"), "--no-progress"]) == 2
    assert not (tmp_path / "o.npy").exists()


def test_bart_3d_volumes_with_a_retrospective_kykz_mask(tmp_path):
    from mri_unfold.cli import main
    from mri_unfold.data.bart import write_cfl

    vol = _volume((10, 32, 28))
    k, _, _ = gather_kspace(SimulatedVolume(vol, np.ones((32, 28), np.float32), coils=2))
    write_cfl(tmp_path / "scan", np.transpose(k.numpy(), (1, 2, 3, 0)))   # READ PHS1 PHS2 COIL
    assert is_3d_scan("bart", tmp_path / "scan.cfl")
    (v,) = read_volumes("bart", tmp_path / "scan.cfl")
    assert torch.allclose(v.kspace, k) and v.mask.min() == 1
    np.save(tmp_path / "m.npy", make_kykz_mask("random2d", (32, 28), acceleration=3,
                                               acs=(8, 8), seed=0).mask)
    out = tmp_path / "r.nii.gz"
    assert main(["recon", str(tmp_path / "scan.cfl"), "--mask-file", str(tmp_path / "m.npy"),
                 "--method", "zero-filled", "--output", str(out), "--no-progress"]) == 0
    import nibabel as nib
    assert nib.load(out).shape == (10, 32, 28)


def _twix_3d(src, out):
    """The shared 2-D twix scan re-labelled as a 3-D one: line l -> (Lin l % 40, Par l // 40),
    the protocol saying 40 lines x 4 partitions (same byte lengths)."""
    import re

    from twixtools import mdh_def

    from raw_fixtures import _mdbs

    data = bytearray(src.read_bytes())
    raw = bytes(data).replace(b"ucDimension\t = \t2", b"ucDimension\t = \t4")
    raw = raw.replace(b"lImagesPerSlab\t = \t16", b"lImagesPerSlab\t = \t 4")
    for key, old, new in ((b"NParMeas", b"1", b"4"), (b"NLinMeas", b"160", b" 40"),
                          (b"iNoOfFourierLines", b"160", b" 40")):
        raw = re.sub(b'("' + key + b'">[^}0-9]*)' + old, lambda m, n=new: m.group(1) + n, raw)
    data = bytearray(raw)
    h = mdh_def.Scan_header
    lc = h.Counter.offset
    for m in _mdbs(src):
        if m.is_flag_set("ACQEND"):
            continue
        line = m.mdh.Counter.Lin
        pos = m.mem_pos
        for off, value in ((lc + mdh_def.LineCounter.Lin.offset, line % 40),
                           (lc + mdh_def.LineCounter.Par.offset, line // 40),
                           (h.CenterLin.offset, 20), (h.CenterPar.offset, 2)):
            data[pos + off:pos + off + 2] = np.uint16(value).tobytes()
    out.write_bytes(bytes(data))
    return out


@pytest.mark.slow
def test_twix_3d_encoding_is_read_as_a_volume(tmp_path):
    from raw_fixtures import twix_path

    two_d = get_source("twix").read(twix_path(), {"prewhiten": False})[0].kspace   # (2, 160, 160)
    path = _twix_3d(twix_path(), tmp_path / "meas_3d.dat")
    assert is_3d_scan("twix", path) and not is_3d_scan("twix", twix_path())
    (v,) = read_volumes("twix", path, prewhiten=False)
    assert tuple(v.kspace.shape) == (2, 160, 40, 4) and v.mask.min() == 1
    expect = two_d.reshape(2, 160, 4, 40).permute(0, 1, 3, 2)      # line l = 40 par + lin
    assert torch.allclose(v.kspace, expect)
    assert v.metadata.extras["recon_shape"] == (160, 40, 4) and v.metadata.extras.get("affine") \
        is not None
