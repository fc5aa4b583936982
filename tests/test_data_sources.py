"""The data-source registry (``data.kind``): built-in and plug-in kinds, content detection,
per-source protocol keys, the ``nifti`` source, and training on NIfTI slices."""
from __future__ import annotations

import sys
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from mri_unfold.data.sources import detect_source, get_source, source_kinds
from mri_unfold.data.sources.nifti import NiftiSlices
from mri_unfold.errors import DataFileError, UserError
from mri_unfold.training.config import validate_protocol
from mri_unfold.training.loop import train

sys.path.insert(0, str(Path(__file__).parent))
from dicom_fixtures import mni_series  # noqa: E402
from fake_fastmri import phantom, write_fake_fastmri  # noqa: E402


def _volume(path: Path, n: int = 5, shape=(24, 20), scale=900.0, empty_first=True,
            dtype=np.int16) -> Path:
    vol = np.stack([np.abs(phantom(shape, s)) for s in range(n)], axis=-1) * scale
    if empty_first:
        vol[..., 0] = 0
    nib.save(nib.Nifti1Image(vol.astype(dtype), np.diag([1.5, 1.5, 3.0, 1])), path)
    return path


def test_registry_lists_builtin_and_plugin_kinds():
    kinds = source_kinds()
    assert {"fastmri", "images", "nifti", "dicom", "patches", "block_mat"} <= set(kinds)
    assert get_source("fastmri").yields == "kspace" and get_source("nifti").yields == "image"
    assert get_source("patches").__module__ == "natural_cs.sources"  # a plug-in's source
    with pytest.raises(UserError, match=r"data.kind = 'minc' is not a registered data source; "
                                        r"valid kinds: .*dicom.*fastmri.*nifti"):
        get_source("minc")


def test_formats_are_detected_by_content(tmp_path):
    h5 = write_fake_fastmri(tmp_path / "scan.h5", num_slices=1, shape=(16, 12))
    renamed = tmp_path / "scan.data"  # a fastMRI file without its usual suffix
    renamed.write_bytes(h5.read_bytes())
    nii = _volume(tmp_path / "vol.nii.gz")
    odd = tmp_path / "vol.bin"  # gzip'ed NIfTI under another name
    odd.write_bytes(nii.read_bytes())
    plain = tmp_path / "plain.nii"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 2), np.float32), np.eye(4)), plain)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["image"] = np.zeros((2, 2))
    png = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(png)
    fake_nii = tmp_path / "fake.nii.gz"
    fake_nii.write_bytes(b"not a volume")
    assert [detect_source(p) for p in (h5, renamed, nii, odd, plain)] == \
        ["fastmri", "fastmri", "nifti", "nifti", "nifti"]
    assert [detect_source(p) for p in (other, png, fake_nii, tmp_path / "missing")] == \
        [None, None, None, None]


def test_data_keys_belong_to_their_source():
    base = {"model": {"name": "ista_net_plus"}, "operator": {"kind": "single_coil"}}
    cfg = validate_protocol({**base, "data": {"kind": "nifti", "train": "v", "axis": 1}})
    assert cfg["data"] == {"kind": "nifti", "train": "v", "val": "", "max_images": 0,
                           "num_workers": 0, "axis": 1, "values": "magnitude",
                           "min_signal": 0.05, "volume_index": 0}
    # a key of another source with that source's default (older run folders) is dropped
    cfg = validate_protocol({**base, "data": {"kind": "images", "train": "d", "augment": True,
                                              "patch_size": 33}})
    assert "augment" not in cfg["data"] and "patch_size" not in cfg["data"]
    with pytest.raises(UserError, match=r"p.toml: data.augment applies to data.kind = "
                                        r"'patches' only \(data.kind is 'images'\)"):
        validate_protocol({**base, "data": {"kind": "images", "train": "d", "augment": False}},
                          source="p.toml")
    with pytest.raises(UserError, match=r"unknown key 'data.slab' in data; valid keys: axis, "
                                        r"values, min_signal, volume_index, \(for data.kind = "
                                        r"'nifti'\), kind, train, val, max_images, num_workers$"):
        validate_protocol({**base, "data": {"kind": "nifti", "train": "v", "slab": 2}})
    with pytest.raises(UserError, match=r"data.values = 'phase' is not one of magnitude, "
                                        r"complex, smooth_phase"):
        validate_protocol({**base, "data": {"kind": "nifti", "train": "v", "values": "phase"}})
    with pytest.raises(UserError, match=r"data.axis must be 0, 1 or 2, got 3"):
        validate_protocol({**base, "data": {"kind": "nifti", "train": "v", "axis": 3}})
    with pytest.raises(UserError, match=r"operator.kind = 'fastmri' takes its operator from "
                                        r"k-space data .*data.kind = 'nifti' gives images"):
        validate_protocol({"model": {"name": "ista_net_plus"}, "operator": {"kind": "fastmri"},
                           "data": {"kind": "nifti", "train": "v"}})


def test_nifti_slices_magnitude_complex_and_simulated_phase(tmp_path):
    folder = tmp_path / "vols"
    folder.mkdir()
    _volume(folder / "a.nii.gz")
    _volume(folder / "b.nii", scale=300.0)
    (folder / "notes.txt").write_text("not a volume")
    ds = NiftiSlices(folder, axis=2, min_signal=0.05)
    assert [(p.name, k) for p, k in ds.index] == [("a.nii.gz", k) for k in (1, 2, 3, 4)] + \
        [("b.nii", k) for k in (1, 2, 3, 4)]
    x = ds[0]
    assert x.shape == (1, 24, 20) and x.dtype == torch.float32
    assert max(float(ds[i].max()) for i in range(4)) == pytest.approx(1.0)  # volume max -> 1
    along0 = NiftiSlices(folder / "a.nii.gz", axis=0, min_signal=0.0)
    assert along0[0].shape == (1, 20, 5)
    smooth = NiftiSlices(folder, values="smooth_phase", seed=4)
    z = smooth[2]
    assert z.dtype == torch.complex64
    torch.testing.assert_close(z.abs(), ds[2], rtol=1e-5, atol=1e-6)
    assert float(z.angle().std()) > 0.1
    torch.testing.assert_close(NiftiSlices(folder, values="smooth_phase", seed=4)[2], z)
    assert not torch.equal(NiftiSlices(folder, values="smooth_phase", seed=5)[2], z)
    cvol = (np.stack([phantom((8, 6), s) for s in range(3)], axis=-1) * 5).astype(np.complex64)
    nib.save(nib.Nifti1Image(cvol, np.eye(4)), tmp_path / "c.nii")
    c = NiftiSlices(tmp_path / "c.nii", values="complex", min_signal=0.0)
    peak = np.abs(cvol).max()
    np.testing.assert_allclose(c[1][0].numpy(), cvol[..., 1] / peak, rtol=1e-6, atol=1e-7)


def test_nifti_source_errors(tmp_path):
    _volume(tmp_path / "a.nii.gz", shape=(24, 20))
    _volume(tmp_path / "b.nii.gz", shape=(24, 22))
    with pytest.raises(DataFileError, match=r"slices along axis 2 have different sizes "
                                             r"\(a.nii.gz: \(24, 20\), b.nii.gz: \(24, 22\)\)"):
        NiftiSlices(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFileError, match="folder holds no NIfTI"):
        NiftiSlices(empty)
    zeros = tmp_path / "z.nii"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.float32), np.eye(4)), zeros)
    with pytest.raises(DataFileError, match=r"z.nii: the volume is all zeros"):
        NiftiSlices(zeros)
    with pytest.raises(FileNotFoundError, match="no such NIfTI file or folder"):
        NiftiSlices(tmp_path / "nope")


@pytest.mark.parametrize("kind,values,real_input", [("nifti", "magnitude", True),
                                                   ("nifti", "smooth_phase", False),
                                                   ("dicom", "magnitude", True)])
def test_training_on_image_slices(tmp_path, kind, values, real_input):
    folder = tmp_path / "vols"
    folder.mkdir()
    for i in range(2):
        if kind == "nifti":
            _volume(folder / f"v{i}.nii.gz", n=6, shape=(32, 32), empty_first=False)
        else:  # two DICOM series (oblique MNI slices) in one folder
            mni_series(folder / f"s{i}", ("axial", "coronal")[i], shape=(32, 32, 6), seed=i)
    raw = {"name": kind, "seed": 0,
           "data": {"kind": kind, "train": str(folder), "values": values},
           "operator": {"kind": "single_coil", "mask": "radial", "ratio": 0.32,
                        "real_input": real_input},
           "model": {"name": "ista_net_plus", "config": {"num_phases": 2, "channels": 8}},
           "training": {"epochs": 4, "batch_size": 4, "lr": 3e-3, "progress": False}}
    res = train(validate_protocol(raw), tmp_path / "run", device="cpu")
    assert res["step"] == 12  # 2 volumes (series) x 6 slices, batch 4, 4 epochs
    losses = res["losses"]
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses


def test_complex_nifti_data_needs_a_complex_operator(tmp_path):
    folder = tmp_path / "vols"
    folder.mkdir()
    _volume(folder / "v.nii.gz", n=3, shape=(16, 16), empty_first=False)
    raw = {"data": {"kind": "nifti", "train": str(folder), "values": "smooth_phase"},
           "operator": {"kind": "single_coil", "mask": "radial", "ratio": 0.5},
           "model": {"name": "ista_net_plus", "config": {"num_phases": 1, "channels": 4}}}
    with pytest.raises(UserError, match=r"the data gives complex images but operator "
                                        r"SingleCoilFourier measures real ones; set "
                                        r"operator.real_input = false"):
        train(validate_protocol(raw), tmp_path / "run", device="cpu")
    assert not (tmp_path / "run").exists()


def test_switching_data_kind_by_override_drops_the_previous_kinds_keys(tmp_path):
    from mri_unfold.training.config import load_protocol

    root = Path(__file__).resolve().parents[1]
    cfg = load_protocol(root / "protocols" / "ista_net_cs.toml",
                        ["data.kind=block_mat", "data.train=/data/Training_Data.mat"])
    assert cfg["data"] == {"kind": "block_mat", "train": "/data/Training_Data.mat", "val": "",
                           "max_images": 0, "num_workers": 0}
    with pytest.raises(UserError, match=r"data.augment applies to data.kind = 'patches' only"):
        load_protocol(root / "protocols" / "ista_net_cs.toml",
                      ["data.kind=block_mat", "data.augment=false"])
