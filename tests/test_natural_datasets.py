"""natural_cs.datasets / image_cache: patches, Y channel, augmentation, seeds, caches, .mat blocks."""
from __future__ import annotations

import random
import warnings

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from torch.utils.data import DataLoader

from natural_cs import image_cache
from natural_cs.datasets import DIHEDRAL_MODES, BlockMatDataset, PatchDataset, dihedral
from natural_cs.image_cache import load_image_stack


@pytest.fixture(autouse=True)
def _fresh_memory_cache(monkeypatch):
    monkeypatch.setattr(image_cache, "_MEMORY", {})


def _gray(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


@pytest.fixture
def gray_folder(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    imgs = {"a.png": _gray(40, 50, 1), "b.PNG": _gray(36, 33, 2), "c.tif": _gray(45, 45, 3)}
    for name, a in imgs.items():
        Image.fromarray(a).save(d / name)
    (d / "notes.txt").write_text("not an image")
    return d, [imgs[k] for k in sorted(imgs)]


# ---------------------------------------------------------------- image stack / Y channel
def test_stack_reads_gray_images_in_sorted_order(gray_folder):
    d, imgs = gray_folder
    st = load_image_stack(d)
    assert st.names == ("a.png", "b.PNG", "c.tif")
    for i, a in enumerate(imgs):
        assert st.image(i).dtype == np.uint8
        np.testing.assert_array_equal(st.image(i), a)


def test_colour_luminance_is_opencv_bt601_y(tmp_path):
    # pure colours and values whose fixed-point Y differs from round(0.299R+0.587G+0.114B)
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]],
                    [[255, 255, 255], [0, 0, 0], [227, 146, 166], [12, 145, 7]]], dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "c.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)]), "RGBA").save(
        tmp_path / "d.png")
    st = load_image_stack(tmp_path)
    # (1868 B + 9617 G + 4899 R + 8192) >> 14, as cv2.COLOR_BGR2YCrCb on 8-bit data
    expected = np.array([[76, 150, 29, 128], [255, 0, 173, 89]], dtype=np.uint8)
    np.testing.assert_array_equal(st.image(0), expected)
    np.testing.assert_array_equal(st.image(1), expected)  # alpha ignored


def test_palette_image_uses_palette_colours(tmp_path):
    idx = np.array([[0, 1], [2, 0]], dtype=np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette([255, 0, 0, 0, 255, 0, 9, 9, 9] + [0] * (256 * 3 - 9))
    im.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_image_stack(tmp_path).image(0), [[76, 150], [9, 76]])


def test_empty_folder_error_names_folder_and_extensions(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(ValueError) as e:
        PatchDataset(tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg and "no images found" in msg
    assert ".png" in msg and ".tif" in msg and ".jpg" in msg


def test_missing_folder_and_bad_image(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope: image folder not found"):
        PatchDataset(tmp_path / "nope")
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=r"broken\.png: cannot decode image"):
        PatchDataset(tmp_path)


def test_image_smaller_than_patch_is_named(gray_folder):
    d, _ = gray_folder
    with pytest.raises(ValueError) as e:
        PatchDataset(d, patch_size=37)
    assert "b.PNG: image is 36x33, smaller than patch_size 37" in str(e.value)
    assert "(2 such images)" not in str(e.value)
    with pytest.raises(ValueError, match=r"\(2 such images\)"):
        PatchDataset(d, patch_size=41)
    with pytest.raises(ValueError, match="patches_per_image must be a positive integer"):
        PatchDataset(d, patches_per_image=0)


# ---------------------------------------------------------------- disk cache
def test_disk_cache_written_reused_and_keyed_by_contents(gray_folder, tmp_path, monkeypatch):
    d, imgs = gray_folder
    cache = tmp_path / "cache"
    load_image_stack(d)  # in memory only
    assert not cache.exists()
    load_image_stack(d, cache_dir=cache)  # memory hit, still writes the cache file
    files = sorted(cache.iterdir())
    assert len(files) == 1 and files[0].name.startswith("images_") and files[0].suffix == ".npz"

    # a new process (empty memory cache) reads the file instead of decoding
    monkeypatch.setattr(image_cache, "_MEMORY", {})
    monkeypatch.setattr(image_cache, "_decode", lambda f: pytest.fail("decoded again"))
    st = load_image_stack(d, cache_dir=cache)
    np.testing.assert_array_equal(st.image(2), imgs[2])
    monkeypatch.undo()

    # a changed folder gets a new cache file
    Image.fromarray(_gray(34, 34, 9)).save(d / "z.png")
    monkeypatch.setattr(image_cache, "_MEMORY", {})
    assert len(load_image_stack(d, cache_dir=cache)) == 4
    assert len(list(cache.glob("images_*.npz"))) == 2
    assert not list(cache.glob("*.tmp"))
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_corrupt_cache_is_rebuilt_with_warning(gray_folder, tmp_path, monkeypatch):
    d, imgs = gray_folder
    cache = tmp_path / "cache"
    load_image_stack(d, cache_dir=cache)
    (f,) = cache.iterdir()
    f.write_bytes(b"garbage")
    monkeypatch.setattr(image_cache, "_MEMORY", {})
    with pytest.warns(UserWarning, match="unreadable image cache"):
        st = load_image_stack(d, cache_dir=cache)
    np.testing.assert_array_equal(st.image(0), imgs[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.setattr(image_cache, "_MEMORY", {})
        load_image_stack(d, cache_dir=cache)  # rewritten: loads cleanly


# ---------------------------------------------------------------- patches
def test_items_are_exact_crops_without_augmentation(gray_folder):
    d, imgs = gray_folder
    ds = PatchDataset(d, patch_size=33, patches_per_image=5, seed=3, augment=False)
    assert len(ds) == 15
    for k in range(len(ds)):
        i, r, c, mode = ds.patch_spec(k)
        assert i == k // 5 and mode == 0
        x = ds[k]
        assert x.shape == (1, 33, 33) and x.dtype == torch.float32
        expect = imgs[i][r:r + 33, c:c + 33].astype(np.float32) / 255.0
        np.testing.assert_array_equal(x[0].numpy(), expect)


def test_positions_cover_each_image_range(gray_folder):
    d, _ = gray_folder
    ds = PatchDataset(d, patch_size=33, patches_per_image=400, seed=0)
    spec = np.array([ds.patch_spec(k) for k in range(len(ds))])
    for i, (h, w) in enumerate([(40, 50), (36, 33), (45, 45)]):
        s = spec[spec[:, 0] == i]
        assert (s[:, 1].min(), s[:, 1].max()) == (0, h - 33)
        assert (s[:, 2].min(), s[:, 2].max()) == (0, w - 33)


def test_dihedral_modes_are_the_8_symmetries():
    a = np.arange(12).reshape(3, 4)
    outs = [dihedral(a, m) for m in range(DIHEDRAL_MODES)]
    assert len({o.tobytes() + bytes(o.shape) for o in outs}) == 8
    np.testing.assert_array_equal(outs[0], a)
    np.testing.assert_array_equal(outs[1], np.rot90(a))
    np.testing.assert_array_equal(outs[4], a[:, ::-1])
    np.testing.assert_array_equal(outs[5], np.rot90(a)[:, ::-1])
    # MADUN's hflip / vflip / transpose combinations are exactly these 8 elements
    madun = {np.ascontiguousarray(t).tobytes() + bytes(t.shape)
             for hf in (0, 1) for vf in (0, 1) for tr in (0, 1)
             for t in [(lambda b: b.T if tr else b)((lambda b: b[::-1] if vf else b)(
                 a[:, ::-1] if hf else a))]}
    assert madun == {np.ascontiguousarray(o).tobytes() + bytes(o.shape) for o in outs}
    with pytest.raises(ValueError, match="dihedral mode must be in 0..7"):
        dihedral(a, 8)


def test_augmented_items_and_uniform_modes(gray_folder):
    d, imgs = gray_folder
    ds = PatchDataset(d, patch_size=33, patches_per_image=3000, seed=1)
    for k in (0, 3001, 8999):
        i, r, c, m = ds.patch_spec(k)
        expect = dihedral(imgs[i][r:r + 33, c:c + 33], m).astype(np.float32) / 255.0
        np.testing.assert_array_equal(ds[k][0].numpy(), expect)
    counts = np.bincount([ds.patch_spec(k)[3] for k in range(len(ds))], minlength=8)
    assert counts.sum() == 9000 and counts.min() > 1000 and counts.max() < 1250


def test_seed_and_epoch_reproducibility_without_global_rng(gray_folder):
    d, _ = gray_folder
    states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    a = PatchDataset(d, patch_size=33, patches_per_image=20, seed=5)
    b = PatchDataset(d, patch_size=33, patches_per_image=20, seed=5)
    e0 = torch.stack([a[k] for k in range(len(a))])
    assert torch.equal(e0, torch.stack([b[k] for k in range(len(b))]))
    a.set_epoch(1)
    e1 = torch.stack([a[k] for k in range(len(a))])
    assert not torch.equal(e0, e1)
    b.set_epoch(1)
    assert torch.equal(e1, torch.stack([b[k] for k in range(len(b))]))
    a.set_epoch(0)
    assert torch.equal(e0, torch.stack([a[k] for k in range(len(a))]))
    c = PatchDataset(d, patch_size=33, patches_per_image=20, seed=6)
    assert not torch.equal(e0, torch.stack([c[k] for k in range(len(c))]))
    assert torch.equal(states[0], torch.get_rng_state())
    assert np.array_equal(states[1], np.random.get_state()[1])
    assert states[2] == random.getstate()


def test_dataloader_batches(gray_folder):
    d, _ = gray_folder
    ds = PatchDataset(d, patch_size=33, patches_per_image=30, seed=0)
    batches = list(DataLoader(ds, batch_size=64, shuffle=False))
    assert [tuple(x.shape) for x in batches] == [(64, 1, 33, 33), (26, 1, 33, 33)]
    assert 0.0 <= float(batches[0].min()) and float(batches[0].max()) <= 1.0


def test_train400_patches_33_and_99(shared):
    folder = shared / "data" / "natural" / "Train400"
    ds = PatchDataset(folder, patch_size=33, patches_per_image=2, seed=0)
    assert len(ds) == 800 and ds.stack.shape(399) == (180, 180)
    i, r, c, m = ds.patch_spec(799)
    img = np.asarray(Image.open(folder / ds.stack.names[i]))
    expect = dihedral(img[r:r + 33, c:c + 33], m).astype(np.float32) / 255.0
    np.testing.assert_array_equal(ds[799][0].numpy(), expect)
    big = PatchDataset(folder, patch_size=99, patches_per_image=1, seed=0)
    assert big.stack is ds.stack  # decoded once per process
    assert big[0].shape == (1, 99, 99)


# ---------------------------------------------------------------- Training_Data.mat blocks
def _labels(n=5):
    return np.random.default_rng(0).random((n, 1089))


def test_block_mat_v5(tmp_path):
    lab = _labels()
    scipy.io.savemat(tmp_path / "Training_Data.mat", {"labels": lab})
    ds = BlockMatDataset(tmp_path / "Training_Data.mat")
    assert len(ds) == 5
    x = ds[3]
    assert x.shape == (1, 33, 33) and x.dtype == torch.float32
    # row-major: element (i, j) of the block is entry i*33 + j of the row
    assert float(x[0, 2, 5]) == pytest.approx(lab[3, 2 * 33 + 5], abs=1e-7)
    np.testing.assert_allclose(x[0].numpy(), lab[3].reshape(33, 33), atol=1e-7)


def test_block_mat_v73_hdf5(tmp_path):
    lab = _labels(4)
    p = tmp_path / "Training_Data.mat"
    with h5py.File(p, "w", userblock_size=512) as f:  # MATLAB v7.3 layout: column-major
        f.create_dataset("labels", data=lab.T)
    ds = BlockMatDataset(p)
    assert len(ds) == 4
    np.testing.assert_allclose(ds[1][0].numpy(), lab[1].reshape(33, 33), atol=1e-7)


def test_block_mat_errors(tmp_path):
    p = tmp_path / "t.mat"
    scipy.io.savemat(p, {"labels": _labels()[:, :100]})
    with pytest.raises(ValueError, match=r"t\.mat: variable 'labels' must be an N x 1089 array"):
        BlockMatDataset(p)
    scipy.io.savemat(p, {"labels": _labels() * 255})
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        BlockMatDataset(p)
    with pytest.raises(KeyError, match="variable 'blocks' not found"):
        BlockMatDataset(p, variable="blocks")
    with pytest.raises(FileNotFoundError, match="no such MATLAB file"):
        BlockMatDataset(tmp_path / "missing.mat")


# ---------------------------------------------------------------- docs/natural_cs.md examples
def test_docs_examples_run_and_print_what_they_claim(shared, capsys):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "natural_cs.md").read_text()
    blocks = re.findall(r"```python\n(.*?)\n```", text, flags=re.S)
    assert len(blocks) == 5
    for code in blocks:
        exec(compile(code, "docs/natural_cs.md", "exec"), {})
        out = capsys.readouterr().out.splitlines()
        claims = [ln.split("# ", 1)[1].split(":")[0].strip() for ln in code.splitlines()
                  if ln.startswith("print(") and "# " in ln]
        assert claims and all(c in out for c in claims), (claims, out)
