"""One table of hostile-but-fair inputs to the command line.  Every case must exit with
status 2 and one line naming the file or option and the problem, write nothing (no partial
output), and leave every input and every earlier output byte-for-byte unchanged."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from mri_unfold.cli import main
from mri_unfold.masks import make_mask, to_unshifted

sys.path.insert(0, str(Path(__file__).parent))
from fake_fastmri import phantom, write_fake_fastmri  # noqa: E402

SHAPE, RECON = (32, 28), (20, 20)


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _rewrite(src: Path, dst: Path, tensors=None, **meta_changes) -> Path:
    with safe_open(str(src), "pt") as f:
        meta = dict(f.metadata())
    t = load_file(str(src)) if tensors is None else tensors
    meta.update(meta_changes)
    meta = {k: v for k, v in meta.items() if v is not None}
    save_file(t, str(dst), metadata=meta)
    return dst


def _cases(d: Path, complex_ckpt: Path, real_ckpt: Path) -> list[tuple[str, list[str], str]]:
    """(name, argv, expected text) — files are made in ``d``."""
    scan = write_fake_fastmri(d / "scan.h5", num_slices=2, shape=SHAPE, recon_size=RECON)
    vol = np.stack([np.abs(phantom((32, 32), s)) for s in range(3)], axis=-1) * 500
    nii = d / "vol.nii.gz"
    nib.save(nib.Nifti1Image(vol.astype(np.int16), np.eye(4)), nii)
    (d / "old_recon.h5").write_bytes(b"an earlier result")
    os.symlink(scan, d / "link.h5")
    os.link(scan, d / "hard.h5")
    (d / "scan_recon_zero_filled.h5").write_bytes(b"an earlier zero-filled result")
    radial = make_mask("radial", (32, 32), acceleration=4, seed=0).mask
    np.save(d / "unshifted.npy", to_unshifted(radial))
    np.save(d / "zeros.npy", np.zeros((32, 32), np.float32))
    np.savez(d / "two.npz", a=radial, b=radial)
    nan_t = {k: v.clone().fill_(float("nan")) if v.is_floating_point() else v
             for k, v in load_file(str(complex_ckpt)).items()}
    nan_ckpt = _rewrite(complex_ckpt, d / "nan.safetensors", tensors=nan_t, sha256=None)
    flipped = bytearray(complex_ckpt.read_bytes())
    for i in range(len(flipped) - 400, len(flipped) - 200):
        flipped[i] ^= 0xFF
    (d / "flipped.safetensors").write_bytes(bytes(flipped))
    with safe_open(str(complex_ckpt), "pt") as f:
        cfg = json.loads(f.metadata()["model_config"])
    bomb = _rewrite(complex_ckpt, d / "bomb.safetensors", sha256=None,
                    model_config=json.dumps({**cfg, "channels": 200000}))
    edited = _rewrite(complex_ckpt, d / "edited.safetensors",
                      model_config=json.dumps({**cfg, "channels": 200000}))
    trunc = d / "trunc.nii.gz"
    trunc.write_bytes(nii.read_bytes()[:600])
    xml = d / "badxml.h5"
    with h5py.File(scan) as src, h5py.File(xml, "w") as dst:
        dst["kspace"] = src["kspace"][()]
        dst["ismrmrd_header"] = b"<ismrmrdHeader><encoding>"
    huge = d / "huge.h5"
    with h5py.File(scan) as src, h5py.File(huge, "w") as dst:
        dst.create_dataset("kspace", shape=(2, 100000, 100000), dtype=np.complex64)
        dst["ismrmrd_header"] = src["ismrmrd_header"][()]
    zmask = d / "zero_mask.h5"
    write_fake_fastmri(zmask, num_slices=1, shape=SHAPE, recon_size=RECON,
                       column_mask=np.zeros(SHAPE[1]))
    corrupt_log = d / "run"
    corrupt_log.mkdir()
    (corrupt_log / "log.jsonl").write_bytes(b'{"step": 1}\n\xff\xfe garbage\n{"step": 2}\n')
    block_cs = d / "block_cs.safetensors"
    assert main(["import-official", str(os.environ["MRI_UNFOLD_TEST_PKL"]), "--output",
                 str(block_cs)]) == 0
    no_phi = _rewrite(block_cs, d / "no_phi.safetensors", sha256=None, tensors={
        k: v for k, v in load_file(str(block_cs)).items() if k != "operator/phi"})
    bad_json = _rewrite(real_ckpt, d / "bad_json.safetensors", sha256=None,
                        model_config="{num_phases: 3")
    ck, rk = ["--model", str(complex_ckpt)], ["--model", str(real_ckpt)]
    m4 = ["--mask", "random", "--acceleration", "4", "--no-progress"]
    return [
        ("output is the input", ["recon", str(scan), *ck, *m4, "--output", str(scan)],
         "is the input file"),
        ("output is a symlink to the input", ["recon", str(scan), *ck, *m4, "--output",
                                              str(d / "link.h5")], "is the input file"),
        ("output is a hard link to the input", ["recon", str(scan), *ck, *m4, "--output",
                                                str(d / "hard.h5")], "is the input file"),
        ("output is the checkpoint", ["recon", str(scan), *ck, *m4, "--output",
                                      str(complex_ckpt)], "unsupported output"),
        ("existing output", ["recon", str(scan), *ck, *m4, "--output",
                             str(d / "old_recon.h5")], "exists; pass --overwrite"),
        ("existing second output", ["recon", str(scan), *ck, *m4, "--save-zero-filled"],
         "scan_recon_zero_filled.h5: exists; pass --overwrite"),
        ("all-NaN weights", ["recon", str(scan), "--model", str(nan_ckpt), *m4],
         "nan.safetensors: tensor"),
        ("200 flipped bytes", ["recon", str(scan), "--model", str(d / "flipped.safetensors"),
                               *m4], "flipped.safetensors"),
        ("edited metadata", ["recon", str(scan), "--model", str(edited), *m4],
         "edited.safetensors: the checkpoint does not match its SHA-256 digest"),
        ("size-bomb model config", ["recon", str(scan), "--model", str(bomb), *m4],
         "bomb.safetensors: the 'ista_net_plus' model of this checkpoint"),
        ("mask in the other layout", ["recon", str(nii), *rk, "--mask-file",
                                      str(d / "unshifted.npy"), "--no-progress"],
         "unshifted.npy read as 'centered': the k-space centre is not sampled"),
        ("all-zero mask file", ["recon", str(nii), *rk, "--mask-file", str(d / "zeros.npy")],
         "zeros.npy: the mask samples nothing"),
        ("all-zero mask dataset", ["recon", str(zmask), *ck, "--no-progress"],
         "zero_mask.h5: the 'mask' dataset samples nothing"),
        ("two arrays, no key", ["recon", str(nii), *rk, "--mask-file", str(d / "two.npz")],
         "two.npz: holds 2 arrays ['a', 'b']; choose one with key= (--mask-key NAME)"),
        ("block-CS checkpoint on MRI", ["recon", str(nii), "--model", str(block_cs), "--mask",
                                        "radial", "--acceleration", "4"],
         "block_cs.safetensors: a ista_net_plus trained for natural-image block compressive"),
        ("truncated .nii.gz", ["recon", str(trunc), *rk, "--mask", "radial",
                               "--acceleration", "4"], "trunc.nii.gz"),
        ("malformed ismrmrd_header", ["recon", str(xml), *ck, *m4],
         "badxml.h5: cannot parse the ismrmrd_header"),
        ("declared 2 x 100000 x 100000 k-space", ["recon", str(huge), *ck, *m4],
         "huge.h5: one k-space slice of shape (100000, 100000) needs"),
        ("unsupported output name", ["recon", str(scan), *ck, *m4, "--output",
                                     str(d / "out.png")], "out.png: unsupported output"),
        ("fp16 on CPU", ["recon", str(scan), *ck, *m4, "--precision", "fp16",
                         "--output", str(d / "o.h5")], "--precision fp16 needs a CUDA device"),
        ("model and method", ["recon", str(scan), *ck, "--method", "sense", "--output",
                              str(d / "o.h5")], "give either --model CKPT or --method"),
        ("NIfTI without a mask, checkpoint mask of another size", ["recon", str(nii), *ck],
         "complex.safetensors: the checkpoint's mask is (40, 33), the slices are (32, 32)"),
        ("missing input", ["recon", str(d / "nope.h5"), *ck], "nope.h5: input file not found"),
        ("huge mask", ["masks", "--kind", "radial", "--shape", "100000", "100000",
                       "--acceleration", "4", "--output", str(d / "m.png")],
         "a 100000 x 100000 'radial' mask needs"),
        ("unknown mask kind", ["masks", "--kind", "spiral", "--shape", "32", "32",
                               "--acceleration", "4"], "unknown mask kind 'spiral'"),
        ("lr = inf", ["train", str(ROOT / "protocols" / "tiny.toml"), "--override",
                      "training.lr=inf", "--run-dir", str(d / "r")],
         "training.lr must be a finite number > 0, got inf"),
        ("lr = nan", ["train", str(ROOT / "protocols" / "tiny.toml"), "--override",
                      "training.lr=nan", "--run-dir", str(d / "r")],
         "training.lr must be a finite number > 0, got nan"),
        ("corrupt log", ["plot-log", str(corrupt_log), "--output", str(d / "c.png")],
         "log.jsonl: not a run log (not UTF-8 text"),
        ("unknown data key", ["train", str(ROOT / "protocols" / "tiny.toml"), "--override",
                              "data.slices=3", "--run-dir", str(d / "r")],
         "unknown key 'data.slices'"),
        ("checkpoint without its phi", ["eval", str(no_phi), "--images", str(d)],
         "no_phi.safetensors: cannot rebuild the stored operator 'block_cs': tensor "
         "operator/phi is missing"),
        ("checkpoint with bad JSON", ["recon", str(nii), "--model", str(bad_json), "--mask",
                                      "radial", "--acceleration", "4"],
         "bad_json.safetensors: checkpoint metadata 'model_config' is not valid JSON"),
    ]


ROOT = Path(__file__).resolve().parents[1]
TABLE_SIZE = 31


@pytest.mark.slow
def test_bad_inputs_table(tmp_path, capsys, monkeypatch, shared, recon_complex_ckpt,
                          recon_real_ckpt):
    pkl = (shared / "reference" / "ista_net_pytorch" / "model" /
           "CS_ISTA_Net_plus_layer_9_group_1_ratio_25_lr_0.0001" / "net_params_200.pkl")
    monkeypatch.setenv("MRI_UNFOLD_TEST_PKL", str(pkl))
    cases = _cases(tmp_path, recon_complex_ckpt, recon_real_ckpt)
    assert len(cases) == TABLE_SIZE
    capsys.readouterr()
    before = {**_snapshot(tmp_path), **{str(p): hashlib.sha256(p.read_bytes()).hexdigest()
                                       for p in (recon_complex_ckpt, recon_real_ckpt)}}
    failures = []
    for name, argv, expect in cases:
        code = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        errors = [ln for ln in err if ln.startswith("mri-unfold: error: ")]
        after = {**_snapshot(tmp_path), **{str(p): hashlib.sha256(p.read_bytes()).hexdigest()
                                          for p in (recon_complex_ckpt, recon_real_ckpt)}}
        if code != 2 or len(errors) != 1 or expect not in errors[0] or after != before:
            failures.append((name, code, err, sorted(set(after.items()) ^ set(before.items()))))
    assert not failures, "\n".join(map(str, failures))
