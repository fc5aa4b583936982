"""Bad, corrupt and forged files for the hostile-input tables (tests/test_hostile_cli.py and
tests/test_hostile_api.py): each builder writes one file into a folder and returns its path.
Everything is seeded and small; nothing is downloaded."""
from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fake_fastmri import phantom, write_fake_fastmri
from mri_unfold.checkpoints import digest
from raw_fixtures import cartesian_acqs, ismrmrd_xml, phantom_kspace, write_ismrmrd_acqs

SHAPE, RECON = (32, 28), (20, 20)


def fastmri_scan(d: Path, name: str = "scan.h5") -> Path:
    return write_fake_fastmri(d / name, num_slices=2, shape=SHAPE, recon_size=RECON)


def fastmri_variant(d: Path, name: str, edit) -> Path:
    """A copy of :func:`fastmri_scan`'s file changed by ``edit(h5py.File)``."""
    src = d / "scan.h5" if (d / "scan.h5").is_file() else fastmri_scan(d)
    p = d / name
    shutil.copy(src, p)
    with h5py.File(p, "a") as f:
        edit(f)
    return p


def _recon_matrix(x: int, y: int):
    def edit(f):
        xml = f["ismrmrd_header"][()]
        xml = xml.decode() if isinstance(xml, bytes) else xml
        block = re.search(r"<reconSpace>.*?</reconSpace>", xml, re.S).group(0)
        new = re.sub(r"<x>\d+</x>", f"<x>{x}</x>", block, count=1)
        new = re.sub(r"<y>\d+</y>", f"<y>{y}</y>", new, count=1)
        del f["ismrmrd_header"]
        f["ismrmrd_header"] = xml.replace(block, new)
    return edit


def recon_matrix(d: Path, name: str, x: int, y: int) -> Path:
    return fastmri_variant(d, name, _recon_matrix(x, y))


def mask_dataset(d: Path, name: str, value: float) -> Path:
    def edit(f):
        m = np.ones(SHAPE[1])
        m[3] = value
        m[5] = 0.0
        f["mask"] = m
    return fastmri_variant(d, name, edit)


def wrong_target(d: Path) -> Path:
    def edit(f):
        del f["reconstruction_esc"]
        f["reconstruction_esc"] = np.ones((2, 7, 9), np.float32)
    return fastmri_variant(d, "wrong_target.h5", edit)


def zero_kspace(d: Path, name: str, zero_target: bool) -> Path:
    def edit(f):
        f["kspace"][...] = 0
        if zero_target:
            f["reconstruction_esc"][...] = 0
    return fastmri_variant(d, name, edit)


def kspace_group(d: Path) -> Path:
    def edit(f):
        del f["kspace"]
        f.create_group("kspace")["data"] = np.zeros(3)
    return fastmri_variant(d, "kspace_group.h5", edit)


def size_bomb(d: Path) -> Path:
    """20000 x 320 x 320 declared k-space (a few KB on disk: unallocated chunks)."""
    def edit(f):
        del f["kspace"]
        f.create_dataset("kspace", shape=(20000, 320, 320), dtype=np.complex64,
                         chunks=(1, 320, 320))
    return fastmri_variant(d, "bomb.h5", edit)


def nifti(d: Path, name: str, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, np.eye(4)), d / name)
    return d / name


def patched_nifti(d: Path, name: str, offset: int, fmt: str, value, sform: bool = False) -> Path:
    """An uncompressed NIfTI-1 volume with one header field overwritten (byte offset)."""
    p = nifti(d, name, (np.random.default_rng(0).random((32, 32, 3)) * 100).astype(np.float32))
    raw = bytearray(p.read_bytes())
    if sform:
        struct.pack_into("<h", raw, 254, 1)  # sform_code = scanner
    struct.pack_into(fmt, raw, offset, value)
    p.write_bytes(bytes(raw))
    return p


def rgb_nifti(d: Path) -> Path:
    rgb = np.zeros((32, 32, 3), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    return nifti(d, "rgb.nii.gz", rgb)


def pickled_npy(d: Path, name: str = "objects.npy") -> Path:
    """A .npy file holding a pickled Python object array (never loaded by the tests)."""
    np.save(d / name, np.array([{"payload": 1}, 2], dtype=object), allow_pickle=True)
    return d / name


def _coils_xml(enc, trajectory="cartesian", coils=2, w=16):
    limits = {"kspace_encoding_step_1": (0, w - 1, w // 2), "slice": (0, 0, 0)}
    return ismrmrd_xml(enc, enc, (200, 200, 5), (200, 200, 5), limits, trajectory=trajectory,
                       coils=coils)


def ismrmrd_huge_matrix(d: Path) -> Path:
    k = phantom_kspace(2, 16, 16)
    return write_ismrmrd_acqs(d / "mrd_huge.h5", _coils_xml((65535, 65535, 1)), cartesian_acqs(k))


def ismrmrd_mixed_trajectories(d: Path) -> Path:
    acqs = cartesian_acqs(phantom_kspace(2, 16, 16))
    for a in acqs[::2]:
        a["traj"] = np.linspace(-0.4, 0.4, 32, dtype=np.float32).reshape(16, 2)
    return write_ismrmrd_acqs(d / "mrd_mixed.h5", _coils_xml((16, 16, 1)), acqs)


def ismrmrd_identical_coils(d: Path) -> Path:
    """Noise scans in which both coils record the same noise up to 1e-6 of it (a coupled
    or duplicated channel): a nearly singular covariance, whose Cholesky factor exists and
    whose inverse multiplies the coils' different signals by about 1e6."""
    rng = np.random.default_rng(0)
    n = (rng.standard_normal((2, 4000)) + 1j * rng.standard_normal((2, 4000)))
    noise = np.stack([n[0], n[0] + 1e-6 * n[1]]).astype(np.complex64)
    acqs = [{"data": noise[:, i:i + 400], "flags": (19,)} for i in range(0, 4000, 400)]
    k = phantom_kspace(2, 16, 16)
    return write_ismrmrd_acqs(d / "mrd_singular_noise.h5", _coils_xml((16, 16, 1)),
                              acqs + cartesian_acqs(k))


def ismrmrd_radial_at_dc(d: Path) -> Path:
    """A radial file whose stored trajectory is zero for every sample."""
    acqs = [{"data": phantom_kspace(1, 16, 16)[:, :, j], "idx": {"slice": 0},
             "traj": np.zeros((16, 2), np.float32)} for j in range(8)]
    return write_ismrmrd_acqs(d / "mrd_dc.h5", _coils_xml((16, 16, 1), "radial", coils=1), acqs)


def truncated(src: Path, dst: Path, n: int) -> Path:
    dst.write_bytes(src.read_bytes()[:n])
    return dst


def forged_checkpoint(src: Path, dst: Path, tensors=None, **meta_changes) -> Path:
    """A copy of checkpoint ``src`` with changed tensors/metadata and a recomputed digest (a
    digest proves integrity, not trust)."""
    with safe_open(str(src), "pt") as f:
        meta = dict(f.metadata())
    t = load_file(str(src)) if tensors is None else tensors
    meta.update(meta_changes)
    meta["sha256"] = digest(t, meta)
    save_file(t, str(dst), metadata=meta)
    return dst


def int8_weight_checkpoint(src: Path, dst: Path) -> Path:
    t = load_file(str(src))
    name = next(k for k in t if k.startswith("model/") and t[k].ndim == 4)
    t[name] = t[name].clamp(-1, 1).to(torch.int8)
    return forged_checkpoint(src, dst, tensors=t)


def many_phases_checkpoint(src: Path, dst: Path) -> Path:
    with safe_open(str(src), "pt") as f:
        cfg = json.loads(f.metadata()["model_config"])
    return forged_checkpoint(src, dst, model_config=json.dumps({**cfg, "num_phases": 10 ** 6}))


def png(path: Path, seed: int = 0, size: int = 32) -> Path:
    img = np.abs(phantom((size, size), seed))
    Image.fromarray((255 * img / img.max()).astype(np.uint8)).save(path)
    return path


def user_folder(path: Path, files: dict[str, str]) -> Path:
    """A folder of the user's own files (name -> text)."""
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path
