"""ESPIRiT coil maps: FFT convention vs MultiCoilFourier, and the on-disk cache."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import mri_unfold.data.espirit as espirit_mod
from fake_fastmri import coil_maps, phantom, write_fake_fastmri
from mri_unfold.data import (ApplyMask, Compose, CropToRecon, EspiritCache, EspiritSettings,
                             EstimateCoilMaps, FastMRISliceDataset, acs_width, espirit_maps)
from mri_unfold.fft import fft2, ifft2
from mri_unfold.operators import MultiCoilFourier


def test_sigpy_fft_matches_ours_odd_and_even():
    import sigpy

    rng = np.random.default_rng(0)
    for shape in [(6, 8), (7, 5)]:
        x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
        ours = fft2(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(sigpy.fft(x, axes=(-2, -1)), ours, atol=1e-5)
        np.testing.assert_allclose(sigpy.ifft(x, axes=(-2, -1)),
                                   ifft2(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_acs_width():
    m = np.zeros((10, 9))
    m[:, 3:7] = 1  # centre column 4 (= 9 // 2); sampled columns 3..6
    assert acs_width(m) == 3  # square centred at (5, 4): s=3 -> cols 3..5; s=4 -> cols 2..5
    assert acs_width(np.ones((10, 9))) == 9
    assert acs_width(np.zeros((4, 4))) == 0


def test_espirit_maps_line_up_with_multicoil_fourier():
    shape = (48, 44)
    img = phantom(shape)
    true = coil_maps(6, shape)
    k = fft2(torch.from_numpy(img[None] * true))
    # undersampled with a fully sampled centre of 20 columns: same maps as from full data
    mask = np.zeros(shape, np.float32)
    mask[:, ::3] = 1
    mask[:, 12:32] = 1
    settings = EspiritSettings(calib_width=24, crop=0.8)
    maps = espirit_maps(k * torch.from_numpy(mask), settings, mask=mask)
    maps_full = espirit_maps(k, EspiritSettings(calib_width=20, crop=0.8))
    np.testing.assert_allclose(maps, maps_full, atol=1e-4)
    assert maps.shape == (6, 48, 44) and maps.dtype == np.complex64
    support = np.abs(img) > 0.5
    # maps equal the true maps up to one phase per pixel
    overlap = np.abs((maps.conj() * true).sum(0))
    assert overlap[support].min() > 0.97
    # adjoint of the full k-space with ESPIRiT maps = coil-combined image up to a phase
    op = MultiCoilFourier(np.ones(shape, np.float32), torch.from_numpy(maps))
    combined = op.adjoint(k[None])[0, 0].numpy()
    rss = np.sqrt((np.abs(ifft2(k).numpy()) ** 2).sum(0))
    rel = np.abs(np.abs(combined) - rss)[support] / rss[support]
    assert rel.max() < 0.03
    # and the SENSE model reproduces the measured k-space from that combined image
    k_model = op(torch.from_numpy(combined)[None, None])[0]
    err = torch.linalg.vector_norm(k_model - k) / torch.linalg.vector_norm(k)
    assert float(err) < 0.05


def test_too_small_acs_is_a_clear_error():
    k = torch.zeros(2, 32, 32, dtype=torch.complex64)
    mask = np.zeros((32, 32))
    mask[:, 14:19] = 1
    with pytest.raises(ValueError, match=r"vol\.h5 slice 0: the fully sampled k-space centre is "
                                         r"only 5 wide; ESPIRiT needs calib_width > kernel_width=6"):
        espirit_maps(k, mask=mask, where="vol.h5 slice 0")


@pytest.fixture()
def counted(monkeypatch):
    calls = []
    real = espirit_mod.espirit_maps

    def counting(*args, **kwargs):
        calls.append(kwargs.get("where"))
        return real(*args, **kwargs)

    monkeypatch.setattr(espirit_mod, "espirit_maps", counting)
    return calls


def test_cache_miss_then_hit_and_key_changes(tmp_path, counted):
    p = write_fake_fastmri(tmp_path / "vol.h5", challenge="multicoil", shape=(30, 28),
                           recon_size=(24, 24), num_coils=3, num_slices=2)
    cache_dir = tmp_path / "cache"
    tf = Compose([CropToRecon(), ApplyMask(mask=np.ones((24, 24))),
                  EstimateCoilMaps(cache_dir, EspiritSettings(calib_width=12))])
    ds = FastMRISliceDataset(p, "multicoil", transform=tf)
    first = ds[0]
    assert counted == ["vol.h5 slice 0"] and first.coil_maps.shape == (3, 24, 24)
    assert first.coil_maps.dtype == torch.complex64
    files = sorted(f.name for f in cache_dir.iterdir())
    assert len(files) == 1 and files[0].startswith("vol_s0_") and files[0].endswith(".npy")
    again = ds[0]
    assert counted == ["vol.h5 slice 0"]  # hit: not recomputed
    assert torch.equal(again.coil_maps, first.coil_maps)
    cache = tf.transforms[-1].cache
    assert (cache.hits, cache.misses) == (1, 1)
    ds[1]  # another slice: miss
    assert counted[-1] == "vol.h5 slice 1" and len(counted) == 2
    # other settings: miss, separate file
    tf.transforms[-1] = EstimateCoilMaps(cache_dir, EspiritSettings(calib_width=12, crop=0.5))
    ds[0]
    assert len(counted) == 3 and len(list(cache_dir.glob("*.npy"))) == 3
    # file modified (mtime changes): miss
    st = os.stat(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    ds[0]
    assert len(counted) == 4
    assert not list(cache_dir.glob("*.tmp"))  # atomic writes leave no temporaries
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".")]


def test_corrupt_cache_entry_is_recomputed(tmp_path, counted):
    shape = (24, 24)
    k = fft2(torch.from_numpy(phantom(shape)[None] * coil_maps(2, shape)))
    from mri_unfold.data import KSpaceSample, SampleMetadata

    s = KSpaceSample(k, torch.ones(shape), None, None, SampleMetadata("sim", 0))
    cache = EspiritCache(tmp_path, EspiritSettings(calib_width=12))
    maps = cache.get(s)
    cache.path_for(s).write_bytes(b"garbage")
    np.testing.assert_array_equal(cache.get(s), maps)
    assert len(counted) == 2 and np.load(cache.path_for(s)).shape == (2, 24, 24)
