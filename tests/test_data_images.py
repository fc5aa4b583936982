"""Image-domain readers: brain PNG slices, chest .mat (v7.3 orientation), v5 .mat, TIFF."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from mri_unfold.data.errors import DataFileError
from mri_unfold.data.image_files import (ImageFolderSlices, MatFileSlices, load_mat_image,
                                         read_image)


def test_brain_png_folder(shared):
    ds = ImageFolderSlices(shared / "data" / "mri" / "brain_test")
    assert len(ds) == 50 and ds.names[:2] == ["brain_test_01.png", "brain_test_02.png"]
    x = ds[0]
    assert x.shape == (1, 256, 256) and x.dtype == torch.float32
    raw = np.asarray(Image.open(ds.files[0]))
    assert raw.dtype == np.uint8
    np.testing.assert_array_equal(x[0].numpy(), (raw / 255.0).astype(np.float32))
    assert float(x.min()) >= 0 and float(x.max()) <= 1


def test_chest_mat_orientation_and_range(shared):
    folder = shared / "data" / "mri" / "chest_train"
    ds = MatFileSlices(folder)
    assert len(ds) == 100 and ds.names[0] == "im-01.mat"
    x = ds[0][0].numpy()
    assert x.shape == (256, 256) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.5
    with h5py.File(folder / "im-01.mat") as f:
        raw = np.asarray(f["im_ori"])  # HDF5 (column-major) view: MATLAB's transpose
    np.testing.assert_array_equal(x, raw.T.astype(np.float32))
    assert not np.allclose(raw, raw.T)  # the check above is meaningful


def test_mat_v5_and_v73_agree(tmp_path):
    img = np.arange(12, dtype=np.float64).reshape(3, 4) / 11  # MATLAB orientation (3 x 4)
    scipy.io.savemat(tmp_path / "a_v5.mat", {"im_ori": img})
    with h5py.File(tmp_path / "b_v73.mat", "w") as f:  # v7.3 stores the column-major array
        f.create_dataset("im_ori", data=img.T)
    np.testing.assert_array_equal(load_mat_image(tmp_path / "a_v5.mat"), img.astype(np.float32))
    np.testing.assert_array_equal(load_mat_image(tmp_path / "b_v73.mat"), img.astype(np.float32))
    assert MatFileSlices(tmp_path).stack().shape == (2, 1, 3, 4)
    with pytest.raises(KeyError, match=r"a_v5\.mat: variable 'x' not found \(has: \['im_ori'\]\)"):
        load_mat_image(tmp_path / "a_v5.mat", "x")
    scipy.io.savemat(tmp_path / "c.mat", {"im_ori": np.zeros((2, 2, 2))})
    with pytest.raises(DataFileError, match=r"c\.mat: variable 'im_ori' must be a real 2-D image"):
        load_mat_image(tmp_path / "c.mat")


def test_tiff_16bit_gray_rgb_and_errors(tmp_path):
    a16 = np.array([[0, 65535], [32768, 1000]], np.uint16)
    Image.fromarray(a16).save(tmp_path / "s1.tif")
    np.testing.assert_allclose(read_image(tmp_path / "s1.tif"), a16 / 65535.0, rtol=1e-6)
    gray = np.array([[0, 51], [102, 255]], np.uint8)
    Image.fromarray(np.stack([gray] * 3, -1)).save(tmp_path / "s2.png")
    np.testing.assert_allclose(read_image(tmp_path / "s2.png"), gray / 255.0, rtol=1e-6)
    colour = np.zeros((2, 2, 3), np.uint8)
    colour[0, 0, 0] = 200
    Image.fromarray(colour).save(tmp_path / "c.png")
    with pytest.raises(DataFileError, match=r"c\.png: expected a grayscale slice, got a colour"):
        read_image(tmp_path / "c.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataFileError, match=r"bad\.png: cannot read image"):
        read_image(tmp_path / "bad.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFileError, match=r"empty: no PNG/TIFF image files"):
        ImageFolderSlices(empty)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        ImageFolderSlices(tmp_path / "nowhere")
