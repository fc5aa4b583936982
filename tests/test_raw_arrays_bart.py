"""BART .cfl/.hdr (dimension order) and plain arrays (.npy, .mat v5/v7.3, .h5; axes and
layout from options)."""
import h5py
import numpy as np
import pytest
import scipy.io
import torch

from mri_unfold.data.bart import BART_DIMS, bart_to_kspace, kspace_to_bart, read_cfl, write_cfl
from mri_unfold.data.sources import detect_source, get_source
from mri_unfold.errors import DataFileError, UserError
from mri_unfold.fft import ifft2

from raw_fixtures import phantom_kspace

K = np.stack([phantom_kspace(2, 8, 6, seed=s) for s in range(3)])   # (S, C, H, W)


def test_bart_dimension_order_on_disk(tmp_path):
    b = kspace_to_bart(K)
    assert b.shape == (8, 6, 1, 2) + (1,) * 9 + (3,)
    assert BART_DIMS[0] == "READ" and BART_DIMS[3] == "COIL" and BART_DIMS[13] == "SLICE"
    write_cfl(tmp_path / "k", b)
    assert (tmp_path / "k.hdr").read_text() == "# Dimensions\n8 6 1 2 1 1 1 1 1 1 1 1 1 3 1 1\n"
    flat = np.fromfile(tmp_path / "k.cfl", "<c8")
    s, c, x, y = 2, 1, 5, 4                      # column-major: READ varies fastest
    assert flat[x + 8 * (y + 6 * (0 + 1 * (c + 2 * (s * 1))))] == K[s, c, x, y]
    back = read_cfl(tmp_path / "k.hdr")
    assert back.shape == b.shape + (1, 1) and np.array_equal(back.reshape(b.shape), b)
    assert np.array_equal(bart_to_kspace(b), K)
    for name in ("k.cfl", "k.hdr"):
        assert detect_source(tmp_path / name) == "bart"
    ds = get_source("bart").read(tmp_path / "k.cfl")
    assert len(ds) == 3 and torch.equal(ds[2].kspace, torch.from_numpy(K[2]))


def test_bart_partitions_become_slices_and_bad_sizes(tmp_path):
    vol = np.zeros((8, 6, 4, 2), np.complex64)
    vol[..., 0] = 1
    write_cfl(tmp_path / "v", vol)
    ds = get_source("bart").read(tmp_path / "v.cfl")
    assert len(ds) == 4 and tuple(ds[0].kspace.shape) == (2, 8, 6)
    assert torch.allclose(ds[2].kspace[0], torch.full((8, 6), 2.0 + 0j))   # iFFT of ones in kz
    (tmp_path / "v.cfl").write_bytes((tmp_path / "v.cfl").read_bytes()[:-8])
    with pytest.raises(DataFileError, match=r"v.cfl: holds 3064 bytes, the header's dimensions "
                                            r"\[8, 6, 4, 2, 1"):
        read_cfl(tmp_path / "v.cfl")


def test_plain_arrays_in_every_container(tmp_path):
    np.save(tmp_path / "k4.npy", K)
    scipy.io.savemat(tmp_path / "k.mat", {"kspace": np.transpose(K[1], (1, 2, 0))})
    with h5py.File(tmp_path / "k.h5", "w") as f:
        f["kspace"] = K
    with h5py.File(tmp_path / "k73.mat", "w", userblock_size=512) as f:   # MATLAB v7.3 layout
        f["kspace"] = np.zeros(K[0].T.shape, [("real", "<f4"), ("imag", "<f4")])
        f["kspace"]["real"], f["kspace"]["imag"] = K[0].T.real, K[0].T.imag
    with open(tmp_path / "k73.mat", "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file")
    for name in ("k4.npy", "k.mat", "k.h5", "k73.mat"):
        assert detect_source(tmp_path / name) == "array", name
    np.save(tmp_path / "real.npy", K.real)
    assert detect_source(tmp_path / "real.npy") is None     # real arrays are images
    src = get_source("array")
    assert torch.equal(src.read(tmp_path / "k4.npy")[2].kspace, torch.from_numpy(K[2]))
    assert torch.equal(src.read(tmp_path / "k.h5")[0].kspace, torch.from_numpy(K[0]))
    got = src.read(tmp_path / "k.mat", {"axes": "readout,phase,coil"})
    assert len(got) == 1 and torch.equal(got[0].kspace, torch.from_numpy(K[1]))
    got = src.read(tmp_path / "k73.mat", {"axes": "coil,readout,phase"})
    assert torch.equal(got[0].kspace, torch.from_numpy(K[0]))
    # numpy-convention k-space of an image (DC at 0) reads back as the centred k-space of the
    # same image, not moved by half a field of view, with zeros kept exactly zero
    ku = np.fft.fft2(np.fft.ifft2(np.fft.ifftshift(K[0, 0]), norm="ortho"), norm="ortho")
    ku[1, 2] = 0
    img = np.fft.ifft2(ku, norm="ortho")                           # the 8 x 6 image
    np.save(tmp_path / "u.npy", ku.astype(np.complex64))
    got = src.read(tmp_path / "u.npy", {"layout": "unshifted"})[0].kspace[0]
    back = ifft2(got[None], "centered")[0].numpy()
    assert np.abs(back - img).max() < 1e-5
    assert int((got == 0).sum()) == 1 and got[5, 5] == 0          # fftshift of index (1, 2)


def test_plain_array_axes_errors(tmp_path):
    np.save(tmp_path / "k3.npy", K[0])
    src = get_source("array")
    with pytest.raises(UserError, match=r"k3.npy: the axes of 'kspace' \(2, 8, 6\) are ambiguous"):
        src.read(tmp_path / "k3.npy")
    with pytest.raises(UserError, match=r"k3.npy: axes 'slice,coil,readout,phase' name 4 axes "
                                        r"but 'kspace' has 3"):
        src.read(tmp_path / "k3.npy", {"axes": "slice,coil,readout,phase"})
    with pytest.raises(UserError, match="give each array axis one distinct name"):
        src.read(tmp_path / "k3.npy", {"axes": "coil,coil,readout"})
    s = src.read(tmp_path / "k3.npy", {"axes": "slice,readout,phase"})
    assert len(s) == 2 and s[0].num_coils == 1
