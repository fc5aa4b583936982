"""fastMRI slice dataset and transforms on small fake fastMRI files."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from fake_fastmri import phantom, write_fake_fastmri
from mri_unfold.data import (ApplyMask, Compose, CropToRecon, DataFileError,
                             FastMRISliceDataset, KSpaceSample, Normalize, collate_samples,
                             fastmri_transform, num_low_frequencies_of, stable_seed,
                             zero_filled_image)
from mri_unfold.fft import fft2, ifft2


@pytest.fixture()
def single(tmp_path):
    return write_fake_fastmri(tmp_path / "file_single.h5", shape=(40, 33), recon_size=(24, 24))


@pytest.fixture()
def multi_dir(tmp_path):
    d = tmp_path / "multi"
    d.mkdir()
    write_fake_fastmri(d / "vol_a.h5", challenge="multicoil", shape=(37, 31), num_coils=4,
                       recon_size=(21, 20), num_slices=2)
    write_fake_fastmri(d / "vol_b.h5", challenge="multicoil", shape=(37, 31), num_coils=4,
                       recon_size=(21, 20), num_slices=3)
    (d / "notes.txt").write_text("not an h5 file")
    return d


def test_single_coil_raw_sample(single):
    ds = FastMRISliceDataset(single, "singlecoil")
    assert len(ds) == 3
    s = ds[2]
    assert isinstance(s, KSpaceSample)
    assert s.kspace.shape == (1, 40, 33) and s.kspace.dtype == torch.complex64
    assert s.mask.shape == (40, 33) and float(s.mask.min()) == 1.0
    assert s.target.shape == (24, 24) and s.target.dtype == torch.float32
    assert s.coil_maps is None
    m = s.metadata
    assert (m.fname, m.slice, m.acquisition, m.patient_id) == ("file_single.h5", 2,
                                                                 "CORPD_FBK", "abc123")
    assert m.crop_size == (24, 24) and m.undersampled is False and m.scale == 1.0
    assert m.extras["recon_size"] == (24, 24, 1) and m.extras["encoding_size"] == (40, 33, 1)
    # fastMRI's header parsing: padding from the encoding limits (1 zero column each side)
    assert (m.extras["padding_left"], m.extras["padding_right"]) == (1, 32)
    with h5py.File(single) as f:
        np.testing.assert_array_equal(s.kspace[0].numpy(), f["kspace"][2])
        assert m.max == pytest.approx(float(f.attrs["max"]))
        # the stored target is the centre crop of |ifft2c(kspace)|
        img = ifft2(torch.from_numpy(f["kspace"][2])).abs()
        np.testing.assert_allclose(img[8:32, 4:28].numpy(), f["reconstruction_esc"][2], atol=1e-5)


def test_multicoil_folder_ignores_other_files_and_odd_sizes(multi_dir):
    ds = FastMRISliceDataset(multi_dir, "multicoil")
    assert len(ds) == 5
    assert [(r.fname.name, r.slice_ind) for r in ds.raw_samples][:3] == [
        ("vol_a.h5", 0), ("vol_a.h5", 1), ("vol_b.h5", 0)]
    s = ds[3]
    assert s.kspace.shape == (4, 37, 31) and s.target.shape == (21, 20)
    assert s.metadata.crop_size == (21, 20)


def test_crop_to_recon_resimulates_kspace(multi_dir):
    ds = FastMRISliceDataset(multi_dir / "vol_b.h5", "multicoil", transform=CropToRecon())
    s = ds[1]
    assert s.kspace.shape == (4, 21, 20) and s.mask.shape == (21, 20)
    assert s.metadata.extras["cropped_from"] == (37, 31)
    # RSS of the cropped coil images equals the stored RSS target
    rss = ifft2(s.kspace).abs().pow(2).sum(0).sqrt()
    np.testing.assert_allclose(rss.numpy(), s.target.numpy(), atol=1e-5)




def test_stable_seed_is_name_based_and_stable():
    assert stable_seed("/a/b/file1000.h5") == stable_seed("file1000.h5")
    assert stable_seed("file1000.h5") != stable_seed("file1001.h5")
    assert stable_seed("file1000.h5", 1) != stable_seed("file1000.h5", 0)
    # value fixed across processes / machines (sha256 based, not Python's salted hash())
    assert stable_seed("file1000.h5") == 37713693  # sha256("file1000.h5|0")[:4], little-endian
    assert 0 <= stable_seed("x") < 2**31


def test_apply_mask_same_mask_per_volume_different_across(multi_dir):
    tf = Compose([CropToRecon(), ApplyMask("random", acceleration=4, center_fraction=0.2)])
    ds = FastMRISliceDataset(multi_dir, "multicoil", transform=tf)
    a0, a1, b0, b2 = ds[0], ds[1], ds[2], ds[4]
    assert torch.equal(a0.mask, a1.mask) and torch.equal(b0.mask, b2.mask)
    assert not torch.equal(a0.mask, b0.mask)
    assert a0.metadata.mask_seed == stable_seed("vol_a.h5")
    assert a0.metadata.undersampled and a0.metadata.num_low_frequencies == 4  # round(20*0.2)
    # columns masks: every row identical; unsampled k-space exactly zero
    assert torch.equal(a0.mask, a0.mask[:1].expand_as(a0.mask))
    assert bool((a0.kspace[:, a0.mask == 0] == 0).all())
    full = FastMRISliceDataset(multi_dir, "multicoil", transform=CropToRecon())[0]
    assert torch.equal(a0.kspace[:, a0.mask == 1], full.kspace[:, a0.mask == 1])
    # a different base seed gives a different mask; the same one reproduces it
    again = ApplyMask("random", acceleration=4, center_fraction=0.2)(full)
    other = ApplyMask("random", acceleration=4, center_fraction=0.2, base_seed=7)(full)
    assert torch.equal(again.mask, a0.mask) and not torch.equal(other.mask, a0.mask)


def test_apply_mask_removes_padding_columns(single):
    ds = FastMRISliceDataset(single, "singlecoil",
                             transform=ApplyMask(mask=np.ones((40, 33), np.float32)))
    s = ds[0]
    assert s.mask[:, 0].sum() == 0 and s.mask[:, 32].sum() == 0 and s.mask[:, 1:32].min() == 1
    assert s.metadata.num_low_frequencies == 31 and s.metadata.mask_seed is None


def test_fixed_mask_shape_mismatch_names_file(single):
    ds = FastMRISliceDataset(single, transform=ApplyMask(mask=np.ones((40, 32))))
    with pytest.raises(ValueError, match=r"file_single\.h5 slice 0: mask shape \(40, 32\) does "
                                         r"not match the k-space shape \(40, 33\)"):
        ds[0]


def test_normalize_zero_filled_max_and_volume_max(single):
    raw = FastMRISliceDataset(single)[1]
    s = Normalize()(raw)
    zf_max = float(zero_filled_image(raw).max())
    assert s.metadata.scale == pytest.approx(zf_max)
    assert float(zero_filled_image(s).max()) == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(s.target, raw.target / zf_max)
    v = Normalize("volume_max")(raw)
    assert v.metadata.scale == pytest.approx(raw.metadata.max)
    assert v.metadata.max == pytest.approx(1.0)
    assert raw.metadata.scale == 1.0  # input untouched
    with pytest.raises(ValueError, match="by must be one of"):
        Normalize("std")


def test_already_undersampled_file_keeps_its_mask(tmp_path):
    cols = np.zeros(33, np.float32)
    cols[::3] = 1
    cols[14:19] = 1
    p = write_fake_fastmri(tmp_path / "test_file.h5", column_mask=cols, with_target=False)
    ds = FastMRISliceDataset(p, transform=fastmri_transform("random", crop=False))
    s = ds[0]
    assert s.target is None and s.metadata.undersampled
    np.testing.assert_array_equal(s.mask.numpy(), np.broadcast_to(cols, (40, 33)))
    assert s.metadata.num_low_frequencies == num_low_frequencies_of(cols) == 5
    assert s.metadata.crop_size == (24, 24)  # from the header's recon size
    with pytest.raises(DataFileError, match=r"test_file\.h5 slice 0: CropToRecon needs fully "
                                            r"sampled k-space"):
        FastMRISliceDataset(p, transform=CropToRecon())[0]


def test_collate_for_operators(multi_dir):
    from mri_unfold.operators import MultiCoilFourier

    tf = Compose([CropToRecon(), ApplyMask(mask=np.ones((21, 20)))])
    ds = FastMRISliceDataset(multi_dir, "multicoil", transform=tf)
    batch = collate_samples([ds[0], ds[3]])
    assert batch.kspace.shape == (2, 4, 21, 20) and batch.mask.shape == (2, 1, 21, 20)
    assert batch.target.shape == (2, 1, 21, 20) and batch.coil_maps is None
    assert [m.fname for m in batch.metadata] == ["vol_a.h5", "vol_b.h5"]
    from fake_fastmri import coil_maps
    op = MultiCoilFourier(batch.mask, torch.from_numpy(coil_maps(4, (21, 20))))
    assert op.adjoint(batch.kspace).shape == (2, 1, 21, 20)
    with pytest.raises(ValueError, match="k-space shapes differ"):
        collate_samples([ds[0], FastMRISliceDataset(multi_dir, "multicoil")[0]])


# ---------------------------------------------------------------------- bad files
def test_truncated_file_names_file(tmp_path):
    p = write_fake_fastmri(tmp_path / "trunc.h5")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataFileError, match=r"trunc\.h5: not a readable fastMRI HDF5 file"):
        FastMRISliceDataset(p)


def test_garbage_file_names_file(tmp_path):
    p = tmp_path / "garbage.h5"
    p.write_bytes(b"\x00not hdf5 at all" * 10)
    with pytest.raises(DataFileError, match=r"garbage\.h5: not a readable fastMRI HDF5"):
        FastMRISliceDataset(tmp_path)


def test_missing_kspace(tmp_path):
    p = write_fake_fastmri(tmp_path / "nok.h5")
    with h5py.File(p, "a") as f:
        del f["kspace"]
    with pytest.raises(DataFileError, match=r"nok\.h5: missing dataset 'kspace' \(has: "
                                            r"\['ismrmrd_header', 'reconstruction_esc'\]\)"):
        FastMRISliceDataset(p)


def test_wrong_challenge_dims(single):
    with pytest.raises(DataFileError, match=r"multicoil k-space must be \(slices, coils, H, W\), "
                                            r"got shape \(3, 40, 33\)"):
        FastMRISliceDataset(single, "multicoil")


def test_file_mask_width_mismatch(tmp_path):
    p = write_fake_fastmri(tmp_path / "m.h5")
    with h5py.File(p, "a") as f:
        f.create_dataset("mask", data=np.ones(30, bool))
    with pytest.raises(DataFileError, match=r"m\.h5: mask of shape \(30,\) does not match the "
                                            r"k-space width 33"):
        FastMRISliceDataset(p)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_kspace(tmp_path, bad):
    p = write_fake_fastmri(tmp_path / "nan.h5")
    with h5py.File(p, "a") as f:
        k = f["kspace"][1]
        k[3, 4] = bad
        f["kspace"][1] = k
    ds = FastMRISliceDataset(p)
    assert ds[0].kspace.shape == (1, 40, 33)  # other slices fine
    with pytest.raises(DataFileError, match=r"nan\.h5: slice 1 k-space contains 1 NaN/Inf"):
        ds[1]


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such fastMRI file or folder"):
        FastMRISliceDataset(tmp_path / "nope")


def test_mask_is_make_mask_with_file_seed_and_global_rng_untouched(multi_dir):
    from mri_unfold.masks import make_mask

    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    ds = FastMRISliceDataset(multi_dir / "vol_b.h5", "multicoil",
                             transform=Compose([CropToRecon(), ApplyMask("equispaced",
                                                                         acceleration=4)]))
    s = ds[1]
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)
    ref = make_mask("equispaced", (21, 20), acceleration=4, seed=stable_seed("vol_b.h5"))
    np.testing.assert_array_equal(s.mask.numpy(), ref.mask)
    assert s.metadata.num_low_frequencies == ref.num_low_frequencies


def test_detect_challenge(single, multi_dir, tmp_path):
    from mri_unfold.data import detect_challenge

    assert detect_challenge(single) == "singlecoil"
    assert detect_challenge(multi_dir / "vol_a.h5") == "multicoil"
    (tmp_path / "x.h5").write_bytes(b"junk")
    with pytest.raises(DataFileError, match=r"x\.h5: not a readable fastMRI HDF5 file"):
        detect_challenge(tmp_path / "x.h5")
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f.create_dataset("kspace", data=np.zeros((2, 3), np.complex64))
    with pytest.raises(DataFileError, match=r"y\.h5: kspace must be .* got 2 dimensions"):
        detect_challenge(tmp_path / "y.h5")
