"""NIfTI volumes: slicing along axes, 4-D, errors, and save_like round trips."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from mri_unfold.data.errors import DataFileError
from mri_unfold.data.nifti import NiftiVolume, save_like


def _non_ras_affine():
    # array axes -> (-y, +z, -x): orientation codes ('P', 'S', 'R')... not RAS
    a = np.array([[0.0, 0.0, -1.2, 90.0],
                  [-0.9, 0.0, 0.0, 100.0],
                  [0.0, 1.5, 0.0, -60.0],
                  [0.0, 0.0, 0.0, 1.0]])
    return a


def _write(tmp_path, name, data, affine, dtype, **extra):
    img = nib.Nifti1Image(data, affine)
    img.set_data_dtype(dtype)
    img.header["descrip"] = b"mri-unfold test"
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=2)
    for k, v in extra.items():
        img.header[k] = v
    path = tmp_path / name
    nib.save(img, str(path))
    return path


def test_3d_int16_non_ras_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 3000, size=(7, 6, 5)).astype(np.int16)
    aff = _non_ras_affine()
    ref = _write(tmp_path, "ref.nii.gz", data, aff, np.int16)
    vol = NiftiVolume(ref, axis=1)
    assert nib.aff2axcodes(vol.affine) == ("P", "S", "L")
    assert len(vol) == 6 and vol.slices().shape == (6, 7, 5) and vol.slices().dtype == np.float32
    np.testing.assert_array_equal(vol[2], data[:, 2, :])
    out = save_like(vol.volume_from_slices(vol.slices()), vol, tmp_path / "out.nii.gz")
    back = nib.load(str(out))
    assert back.shape == (7, 6, 5) and back.get_data_dtype() == np.int16
    np.testing.assert_array_equal(np.asarray(back.dataobj), data)
    np.testing.assert_allclose(back.affine, aff)
    assert nib.aff2axcodes(back.affine) == ("P", "S", "L")
    h0, h1 = nib.load(str(ref)).header, back.header
    for key in ("descrip", "pixdim", "xyzt_units", "qform_code", "sform_code", "dim", "datatype",
                "srow_x", "srow_y", "srow_z", "quatern_b", "quatern_c", "quatern_d"):
        np.testing.assert_array_equal(h1[key], h0[key], err_msg=key)
    # values are rounded and clipped to the integer type
    noisy = data.astype(np.float32) + 0.3
    noisy[0, 0, 0] = 1e6
    back2 = nib.load(str(save_like(noisy, ref, tmp_path / "clip.nii")))
    got = np.asarray(back2.dataobj)
    assert got.dtype == np.int16 and got[0, 0, 0] == 32767
    np.testing.assert_array_equal(got.ravel()[1:], data.ravel()[1:])


def test_4d_float_volume_index_and_round_trip(tmp_path):
    data = np.arange(4 * 5 * 3 * 2, dtype=np.float32).reshape(4, 5, 3, 2)
    ref = _write(tmp_path, "four.nii", data, np.diag([2.0, 2.0, 3.0, 1.0]), np.float32)
    v1 = NiftiVolume(ref, axis=2, volume_index=1)
    assert v1.num_volumes == 2 and v1.slices().shape == (3, 4, 5)
    np.testing.assert_array_equal(v1.slices()[1], data[:, :, 1, 1])
    out = save_like(data * 2, ref, tmp_path / "four_out.nii")
    back = nib.load(str(out))
    assert back.shape == (4, 5, 3, 2) and back.get_data_dtype() == np.float32
    np.testing.assert_array_equal(back.get_fdata(), data * 2)
    assert back.header["pixdim"][4] == nib.load(str(ref)).header["pixdim"][4]
    with pytest.raises(DataFileError, match=r"four\.nii: volume_index 2 out of range for 2 "
                                            r"volumes"):
        NiftiVolume(ref, volume_index=2)


def test_scaled_uint8_keeps_integer_family(tmp_path):
    data = np.linspace(0, 1000, 60, dtype=np.float32).reshape(3, 4, 5)
    img = nib.Nifti1Image(data, np.eye(4))
    img.set_data_dtype(np.uint8)
    nib.save(img, str(tmp_path / "u8.nii"))  # nibabel stores a scl_slope
    ref = nib.load(str(tmp_path / "u8.nii"))
    assert ref.dataobj.slope not in (None, 1.0)
    back = nib.load(str(save_like(data / 2, ref, tmp_path / "u8_out.nii")))
    assert back.get_data_dtype() == np.uint8
    np.testing.assert_allclose(back.get_fdata(), data / 2, atol=2.5)


def test_2d_nifti_is_a_clear_error(tmp_path):
    p = tmp_path / "flat.nii"
    nib.save(nib.Nifti1Image(np.zeros((8, 8), np.float32), np.eye(4)), str(p))
    with pytest.raises(DataFileError, match=r"flat\.nii: NIfTI data are 2-D \(shape \(8, 8\)\); "
                                            r"a 3-D or 4-D volume is needed"):
        NiftiVolume(p)


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.nii: no such NIfTI file"):
        NiftiVolume(tmp_path / "nope.nii")
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"definitely not nifti")
    with pytest.raises(DataFileError, match=r"junk\.nii\.gz: not a readable NIfTI file"):
        NiftiVolume(junk)
    ref = _write(tmp_path, "r.nii", np.zeros((3, 4, 5), np.float32), np.eye(4), np.float32)
    with pytest.raises(ValueError, match="axis must be 0, 1 or 2"):
        NiftiVolume(ref, axis=3)
    with pytest.raises(ValueError, match=r"array shape \(3, 4\) does not match the reference "
                                         r"shape \(3, 4, 5\)"):
        save_like(np.zeros((3, 4)), ref, tmp_path / "o.nii")
    with pytest.raises(ValueError, match="must end with .nii or .nii.gz"):
        save_like(np.zeros((3, 4, 5)), ref, tmp_path / "o.h5")
    with pytest.raises(DataFileError, match="does not exist"):
        save_like(np.zeros((3, 4, 5)), ref, tmp_path / "missing" / "o.nii")


def test_unwritable_output_leaves_nothing(tmp_path, monkeypatch):
    ref = _write(tmp_path, "r.nii", np.zeros((3, 4, 5), np.float32), np.eye(4), np.float32)
    ro = tmp_path / "ro"
    ro.mkdir()
    import tempfile

    def denied(*args, **kwargs):  # what mkstemp raises in a read-only folder (tests run as root)
        raise PermissionError(13, "Permission denied", str(ro))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(DataFileError, match=r"ro/o\.nii: cannot write to .*Permission denied"):
        save_like(np.ones((3, 4, 5)), ref, ro / "o.nii")
    assert list(ro.iterdir()) == []


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    ref = _write(tmp_path, "r.nii", np.zeros((3, 4, 5), np.float32), np.eye(4), np.float32)
    out = tmp_path / "out"
    out.mkdir()

    def boom(img, filename):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(nib, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_like(np.ones((3, 4, 5)), ref, out / "o.nii.gz")
    assert list(out.iterdir()) == []
