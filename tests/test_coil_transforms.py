"""Coil compression (SVD by count / energy, geometric), noise prewhitening and ESPIRiT from
the data's own ACS, on the real 2-coil scan and synthetic many-coil k-space."""
import numpy as np
import pytest
import torch

from mri_unfold.data import ApplyMask, Compose, Normalize
from mri_unfold.data.coil_compression import CompressCoils, virtual_coil_count
from mri_unfold.data.espirit import EspiritSettings, EstimateCoilMaps
from mri_unfold.data.prewhiten import Prewhiten, noise_covariance, whitening_matrix
from mri_unfold.data.raw_samples import raw_sample
from mri_unfold.data.sources import get_source
from mri_unfold.errors import InvalidValue, UserError
from mri_unfold.fft import ifft2
from mri_unfold.image_ops import rss

from raw_fixtures import phantom_kspace, twix_path


@pytest.fixture(scope="module")
def real():
    return get_source("twix").read(twix_path())[0]


def _many(tmp_path, coils=8):
    return raw_sample(phantom_kspace(coils, 32, 24, seed=1), path=tmp_path / "x", index=0)


def test_svd_compression_matches_the_singular_vectors(tmp_path):
    s = _many(tmp_path)
    before = s.kspace.clone()
    out = CompressCoils(num_coils=3)(s)
    assert torch.equal(s.kspace, before) and out.num_coils == 3      # input untouched
    u, sv, _ = np.linalg.svd(s.kspace.numpy().reshape(8, -1).astype(np.complex128),
                             full_matrices=False)
    expect = np.einsum("vc,chw->vhw", u[:, :3].conj().T, s.kspace.numpy())
    np.testing.assert_allclose(out.kspace.numpy(), expect, atol=1e-5 * np.abs(expect).max())
    kept = out.metadata.extras["coil_compression"]["energy_kept"]
    assert kept == pytest.approx((sv[:3] ** 2).sum() / (sv ** 2).sum(), rel=1e-9)
    assert virtual_coil_count(sv, kept) == 3
    by_energy = CompressCoils(energy=kept)(s)
    assert by_energy.num_coils == 3
    np.testing.assert_allclose(np.linalg.norm(out.kspace.numpy()) ** 2,
                               kept * np.linalg.norm(s.kspace.numpy()) ** 2, rtol=1e-5)


def test_compression_keeps_maps_and_noise_consistent(tmp_path):
    s = _many(tmp_path)
    maps = torch.randn(8, 32, 24, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    s = s.replace(coil_maps=maps)
    s.metadata.extras["noise_covariance"] = np.eye(8)
    out = CompressCoils(num_coils=4)(s)
    a = out.metadata.extras["noise_covariance"]
    np.testing.assert_allclose(a, np.eye(4), atol=1e-6)        # unitary rows: Ψ stays white
    assert tuple(out.coil_maps.shape) == (4, 32, 24)
    geo = CompressCoils(num_coils=4, geometric=True)(s)
    assert tuple(geo.kspace.shape) == (4, 32, 24) and "noise_covariance" not in geo.metadata.extras


def test_geometric_keeps_at_least_the_svd_energy_on_real_data(real):
    svd = CompressCoils(num_coils=1)(real)
    gcc = CompressCoils(num_coils=1, geometric=True)(real)
    e = lambda t: float((t.abs() ** 2).sum())  # noqa: E731
    assert e(gcc.kspace) >= e(svd.kspace) * (1 - 1e-6)
    assert e(gcc.kspace) <= e(real.kspace) * (1 + 1e-6)
    full = CompressCoils(num_coils=2, geometric=True)(real)     # V = C: RSS image unchanged
    assert torch.allclose(rss(ifft2(full.kspace), 0), rss(ifft2(real.kspace), 0),
                          rtol=1e-4, atol=1e-6 * float(rss(ifft2(real.kspace), 0).max()))


def test_compression_errors(real):
    with pytest.raises(InvalidValue, match="exactly one of num_coils or energy"):
        CompressCoils()
    with pytest.raises(InvalidValue, match=r"energy must be in \(0, 1\]"):
        CompressCoils(energy=1.5)
    with pytest.raises(UserError, match="siemens_gre_2coil.dat slice 0: cannot compress 2 coils "
                                        "to 3"):
        CompressCoils(num_coils=3)(real)


def test_prewhitening_decorrelates(tmp_path):
    s = _many(tmp_path, coils=3)
    rng = np.random.default_rng(0)
    mix = np.array([[1, 0, 0], [0.6, 0.8, 0], [0.1, 0.2, 0.9]])
    noise = mix @ (rng.standard_normal((3, 20000)) + 1j * rng.standard_normal((3, 20000)))
    cov = noise_covariance(noise)
    w = whitening_matrix(cov)
    np.testing.assert_allclose(w @ cov @ w.conj().T, np.eye(3), atol=1e-10)
    out = Prewhiten(cov)(s)
    white_noise = Prewhiten(cov)(raw_sample(noise.reshape(3, 200, 100), path=tmp_path / "n",
                                            index=0))
    np.testing.assert_allclose(noise_covariance(white_noise.kspace.numpy().reshape(3, -1)),
                               np.eye(3), atol=1e-5)
    np.testing.assert_allclose(out.kspace.numpy(), np.einsum("dc,chw->dhw", w, s.kspace.numpy()),
                               rtol=1e-4, atol=1e-6 * float(s.kspace.abs().max()))
    passed = Prewhiten()(s)                    # no covariance in the sample: unchanged copy
    assert torch.equal(passed.kspace, s.kspace) and "prewhitened" not in passed.metadata.extras
    with pytest.raises(UserError, match="already prewhitened"):
        Prewhiten(cov)(out)
    with pytest.raises(UserError, match=r"noise covariance \(2, 2\) does not match the 3 coils"):
        Prewhiten(np.eye(2))(s)


def test_espirit_from_own_acs_composes_on_real_data(real):
    settings = EspiritSettings(calib_width=24)
    full_maps = EstimateCoilMaps(settings=settings)(real).coil_maps
    pipeline = Compose([CompressCoils(num_coils=2), ApplyMask("equispaced", acceleration=4,
                                                              center_fraction=0.15),
                        EstimateCoilMaps(settings=settings), Normalize()])
    out = pipeline(real)
    assert out.metadata.num_low_frequencies == 24 and out.metadata.undersampled
    assert tuple(out.coil_maps.shape) == (2, 160, 160)
    comp = CompressCoils(num_coils=2)(real)
    own = EstimateCoilMaps(settings=settings)(comp).coil_maps
    assert torch.allclose(out.coil_maps, own, atol=1e-4)          # same 24 ACS lines
    assert float((full_maps.abs() ** 2).sum(0).amax()) == pytest.approx(1.0, abs=1e-3)
