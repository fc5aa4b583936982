"""Issue 25's hostile inputs to every command, one row each: the command exits with status 2
and prints one line ``mri-unfold: error: ...`` naming the file, key or option and the problem,
writes nothing (no partial output, no run folder, no debris) and leaves every file of the
workspace byte-for-byte unchanged.

The rows are grouped as in the issue: data that was lost or changed, inputs that were
accepted silently, inputs that ended in an "internal error", and the "also" items; then the
same standard applied to other input surfaces.  :data:`ROWS` is the table;
``test_the_table_covers_the_issue`` pins its size.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import mri_unfold.atomic as atomic
from mri_unfold.cli import main
from mri_unfold.masks import make_mask
from mri_unfold.outputs import MARKER

sys.path.insert(0, str(Path(__file__).parent))
import hostile_files as hf  # noqa: E402
from study_fixtures import make_study  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "protocols" / "tiny.toml")
PKL = ("reference/ista_net_pytorch/model/CS_ISTA_Net_plus_layer_9_group_1_ratio_25_lr_0.0001/"
       "net_params_200.pkl")
QUICK = ["--override", "data.max_images=2", "--override", "training.max_steps=1",
         "--no-progress"]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest()
                                         if p.is_file() else "dir")
            for p in sorted(folder.rglob("*")) if not p.is_symlink()}


@pytest.fixture(scope="module")
def w(tmp_path_factory, recon_complex_ckpt, recon_real_ckpt, shared):
    """The workspace: every hostile file of the table, built once."""
    d = tmp_path_factory.mktemp("hostile")
    ns = SimpleNamespace(d=d, ck=str(recon_complex_ckpt), rk=str(recon_real_ckpt))
    ns.scan = hf.fastmri_scan(d)
    # --- user folders and files that must never change ------------------------------------
    ns.debris_dir = hf.user_folder(d / "user_debris", {".draft.partial-1": "my draft"})
    ns.protocol_dir = hf.user_folder(d / "user_protocol", {"protocol.toml": "my notes"})
    ns.logs_dir = hf.user_folder(d / "user_logs", {"log.csv": "mine\n", "log.jsonl": "{}\n"})
    ns.results_dir = hf.user_folder(d / "user_results", {"results.csv": "a,b\n1,2\n"})
    ns.run = hf.user_folder(d / "run", {"log.jsonl": json.dumps(
        {"step": 1, "epoch": 0, "split": "train", "time": 0.0, "loss": 0.5}) + "\n"})
    ns.user_png = hf.png(d / "user.png")
    ns.npy_dir = d / "npy"
    ns.npy_dir.mkdir()
    np.save(ns.npy_dir / "radial.npy", np.ones((4, 4)))
    ns.image = hf.png(d / "brain.png", seed=1)
    ns.pkl = d / "ratio_25" / "net_params_200.pkl"
    ns.pkl.parent.mkdir()
    ns.pkl.write_bytes((shared / PKL).read_bytes())
    ns.wrong_keys = d / "ratio_25" / "wrong_keys.pkl"
    torch.save({"conv.weight": torch.zeros(2, 2)}, ns.wrong_keys)
    ns.block_cs = d / "block_cs.safetensors"
    assert main(["import-official", str(ns.pkl), "--output", str(ns.block_cs)]) == 0
    shard = hf.user_folder(d / "shard", {})
    (shard / "study.json").write_text(json.dumps({"name": "s", "fingerprint": "f00",
                                                  "cells": []}))
    ns.shard = shard
    ns.study = make_study(d / "study")
    # --- fastMRI ----------------------------------------------------------------------------
    ns.recon_huge = hf.recon_matrix(d, "recon_30000.h5", 30000, 30000)
    ns.recon_neg = hf.recon_matrix(d, "recon_-20.h5", -20, 20)
    ns.recon_zero = hf.recon_matrix(d, "recon_0.h5", 0, 20)
    ns.mask_half = hf.mask_dataset(d, "mask_half.h5", 0.5)
    ns.mask_nan = hf.mask_dataset(d, "mask_nan.h5", float("nan"))
    ns.wrong_target = hf.wrong_target(d)
    ns.zero_k = hf.zero_kspace(d, "zero_k.h5", zero_target=False)
    ns.zero_kt = hf.zero_kspace(d, "zero_kt.h5", zero_target=True)
    ns.group = hf.kspace_group(d)
    ns.bomb = hf.size_bomb(d)
    # --- NIfTI, arrays, raw ---------------------------------------------------------------
    ns.tiny_nii = hf.nifti(d, "tiny.nii.gz", np.ones((4, 4, 2), np.float32))
    ns.nan_sform = hf.patched_nifti(d, "nan_sform.nii", 280, "<f", float("nan"), sform=True)
    ns.neg_dim = hf.patched_nifti(d, "neg_dim.nii", 44, "<h", -3)
    ns.rgb = hf.rgb_nifti(d)
    ns.vol = hf.nifti(d, "vol.nii.gz", (np.stack([np.abs(hf.phantom((32, 32), s))
                                                  for s in range(3)], -1) * 500).astype(np.int16))
    ns.objects = hf.pickled_npy(d)
    ns.radial = d / "radial_mask.npy"
    np.save(ns.radial, make_mask("radial", (32, 32), acceleration=4, seed=0).mask)
    ns.dc_traj = d / "dc_traj.npy"
    np.save(ns.dc_traj, np.zeros((400, 2)))
    ns.mrd_huge = hf.ismrmrd_huge_matrix(d)
    ns.mrd_mixed = hf.ismrmrd_mixed_trajectories(d)
    ns.mrd_dc = hf.ismrmrd_radial_at_dc(d)
    from raw_fixtures import twix_path
    ns.twix100 = hf.truncated(twix_path(), d / "twix_100.dat", 100)
    # --- forged checkpoints (digest recomputed) -------------------------------------------
    ns.int8 = hf.int8_weight_checkpoint(recon_complex_ckpt, d / "int8.safetensors")
    ns.phases = hf.many_phases_checkpoint(recon_complex_ckpt, d / "phases.safetensors")
    return ns


def _full_disk(monkeypatch, w):
    """Every temporary output file is /dev/full: each write fails with ENOSPC (a full
    file-system, without needing one)."""
    real = atomic._temporary

    def on_full_disk(path, suffix):
        tmp = real(path, suffix)
        tmp.unlink()
        os.symlink("/dev/full", tmp)
        return tmp

    monkeypatch.setattr(atomic, "_temporary", on_full_disk)


def _cwd(monkeypatch, w):
    monkeypatch.chdir(w.d)


M4 = ["--mask", "random", "--acceleration", "4", "--no-progress"]


def _train_override(override: str):
    return lambda w: ["train", TINY, *QUICK, "--override", override, "--run-dir", str(w.d / "r")]


#: (name, argv(w), expected text of the error line, optional setup(monkeypatch, w)).
ROWS = [
    # ---------------------------------------------------------------- data lost or changed
    ("train into a user's folder with a .draft.partial-1",
     lambda w: ["train", TINY, *QUICK, "--run-dir", str(w.debris_dir)],
     "user_debris: exists and is not a training run folder of mri-unfold"),
    ("train into a user's folder with a protocol.toml",
     lambda w: ["train", TINY, *QUICK, "--run-dir", str(w.protocol_dir)],
     "user_protocol: exists and is not a training run folder"),
    ("train into a user's folder with log.csv/log.jsonl",
     lambda w: ["train", TINY, *QUICK, "--run-dir", str(w.logs_dir)],
     "user_logs: exists and is not a training run folder"),
    ("study merge into an unrelated non-empty folder",
     lambda w: ["study", "merge", str(w.shard), "--out", str(w.results_dir)],
     "--out " + "{d}/user_results: exists and is not a study folder of mri-unfold"),
    ("plot-log --output is the run's own log.jsonl",
     lambda w: ["plot-log", str(w.run), "--output", str(w.run / "log.jsonl")],
     "run/log.jsonl: must end with .png"),
    ("plot-log --output is an existing user file",
     lambda w: ["plot-log", str(w.run), "--output", str(w.user_png)],
     "user.png: exists; pass --overwrite to replace it"),
    ("masks --output over an existing PNG",
     lambda w: ["masks", "--kind", "radial", "--shape", "32", "32", "--acceleration", "4",
                "--output", str(w.user_png)], "user.png: exists; pass --overwrite"),
    ("masks --save-npy into a folder with a user's radial.npy",
     lambda w: ["masks", "--kind", "radial", "--shape", "32", "32", "--acceleration", "4",
                "--save-npy", str(w.npy_dir)],
     "--save-npy {d}/npy/radial.npy: exists; pass --overwrite"),
    ("compare --output is the input PNG",
     lambda w: ["compare", str(w.image), "--mask", "radial", "--acceleration", "4", "--output",
                str(w.image)], "brain.png: is the input file"),
    ("import-official --output is an existing checkpoint",
     lambda w: ["import-official", str(w.pkl), "--output", str(w.block_cs)],
     "block_cs.safetensors: exists; pass --overwrite"),
    ("import-official --output is the input .pkl",
     lambda w: ["import-official", str(w.pkl), "--output", str(w.pkl), "--overwrite"],
     "net_params_200.pkl: is the input file"),
    # ---------------------------------------------------------------- accepted silently
    ("protocol name ../../x", lambda w: ["train", TINY, *QUICK, "--override", 'name="../../x"'],
     "name = '../../x' must be a plain folder name", _cwd),
    ("protocol name is an absolute path",
     lambda w: ["train", TINY, *QUICK, "--override", f'name="{w.d}/abs"'],
     "must be a plain folder name", _cwd),
    ("study name ../../x",
     lambda w: ["study", str(w.study), "--override", 'name="../../x"', "--no-progress"],
     "name = '../../x' must be a plain folder name", _cwd),
    ("study name is an absolute path",
     lambda w: ["study", str(w.study), "--override", f'name="{w.d}/abs"', "--no-progress"],
     "must be a plain folder name", _cwd),
    ("training.max_steps = -1", _train_override("training.max_steps=-1"),
     "training.max_steps must be >= 0, got -1"),
    ("training.checkpoint_every = -1", _train_override("training.checkpoint_every=-1"),
     "training.checkpoint_every must be >= 0, got -1"),
    ("report.grid_image = 999",
     lambda w: ["study", str(w.study), "--override", "report.grid_image=999", "--out",
                str(w.d / "s"), "--no-progress"],
     "report.grid_image = 999 must be in 0..3 (the study has 4 test images)"),
    ("report.compare names masks that do not exist",
     lambda w: ["study", str(w.study), "--override", 'report.compare=["radial", "spiral"]',
                "--out", str(w.d / "s"), "--no-progress"],
     "report.compare names 'spiral', not a mask of this study"),
    ("fastMRI recon matrix 30000 x 30000", lambda w: ["recon", str(w.recon_huge), "--model", w.ck, *M4],
     "recon_30000.h5: the ismrmrd_header's recon matrix 30000 x 30000 does not fit the k-space "
     "matrix 32 x 28"),
    ("fastMRI mask dataset holding 0.5", lambda w: ["recon", str(w.mask_half), "--model", w.ck],
     "mask_half.h5: the 'mask' dataset must hold only 0 and 1, found 0.5"),
    ("fastMRI mask dataset holding NaN", lambda w: ["recon", str(w.mask_nan), "--model", w.ck],
     "mask_nan.h5: the 'mask' dataset must hold only 0 and 1, found nan"),
    ("fastMRI target of the wrong shape",
     lambda w: ["recon", str(w.wrong_target), "--model", w.ck, *M4],
     "wrong_target.h5: the reference image is (7, 9) per slice, the ismrmrd_header's recon "
     "matrix is (20, 20)"),
    ("all-zero k-space", lambda w: ["recon", str(w.zero_k), "--model", w.ck, *M4],
     "zero_k.h5: the k-space of every slice is all zero (2 slices): nothing was measured"),
    ("trajectory with every sample at k = 0 (ISMRMRD)",
     lambda w: ["recon", str(w.mrd_dc), "--no-progress"],
     "mrd_dc.h5: slice 0: all 128 trajectory samples are at k = 0"),
    ("trajectory file with every sample at k = 0",
     lambda w: ["recon", str(w.vol), "--model", w.rk, "--trajectory", str(w.dc_traj),
                "--acceleration", "2", "--no-progress"],
     "dc_traj.npy: all 400 trajectory samples are at k = 0"),
    ("forged checkpoint with an int8 convolution weight",
     lambda w: ["recon", str(w.scan), "--model", str(w.int8), *M4],
     "int8.safetensors: tensor 'model/phases.0."),
    ("--output ending with /",
     lambda w: ["recon", str(w.scan), "--model", w.ck, *M4, "--output", f"{w.d}/out.h5/"],
     "--output {d}/out.h5/: names a folder (give a file name)"),
    # ---------------------------------------------------------------- internal errors
    ("NIfTI 4 x 4 x 2 volume",
     lambda w: ["recon", str(w.tiny_nii), "--model", w.rk, "--mask", "radial",
                "--acceleration", "4"],
     "tiny.nii.gz: slices of 4x4 pixels are too small to reconstruct and score"),
    ("NIfTI with NaN in the sform",
     lambda w: ["recon", str(w.nan_sform), "--model", w.rk, "--mask", "radial",
                "--acceleration", "4"],
     "nan_sform.nii: the NIfTI affine (qform/sform) has NaN/Inf entries"),
    ("NIfTI RGB24 volume",
     lambda w: ["recon", str(w.rgb), "--model", w.rk, "--mask", "radial", "--acceleration", "4"],
     "rgb.nii.gz: NIfTI voxels of type"),
    ("NIfTI with a negative dimension",
     lambda w: ["recon", str(w.neg_dim), "--model", w.rk, "--mask", "radial",
                "--acceleration", "4"],
     "neg_dim.nii: the NIfTI header declares dimensions (32, -3, 3)"),
    ("pickle-bearing .npy as --mask-file",
     lambda w: ["recon", str(w.vol), "--model", w.rk, "--mask-file", str(w.objects)],
     "objects.npy: holds a NumPy object array (pickled Python objects); object arrays are "
     "refused"),
    ("pickle-bearing .npy in a study's masks.files",
     lambda w: ["study", str(w.study), "--override", f'masks.files=["{w.objects}"]', "--out",
                str(w.d / "s"), "--no-progress"],
     "objects.npy: holds a NumPy object array"),
    ("fastMRI recon matrix -20", lambda w: ["recon", str(w.recon_neg), "--model", w.ck, *M4],
     "recon_-20.h5: the ismrmrd_header's recon matrix -20 x 20 must be positive"),
    ("fastMRI recon matrix 0", lambda w: ["recon", str(w.recon_zero), "--model", w.ck, *M4],
     "recon_0.h5: the ismrmrd_header's recon matrix 0 x 20 must be positive"),
    ("all-zero k-space and target", lambda w: ["recon", str(w.zero_kt), "--model", w.ck, *M4],
     "zero_kt.h5: the k-space of every slice is all zero"),
    ("fastMRI kspace that is a group", lambda w: ["recon", str(w.group), "--model", w.ck],
     "kspace_group.h5: 'kspace' is an HDF5 group, not a dataset"),
    ("fastMRI 20000 x 320 x 320 size bomb", lambda w: ["recon", str(w.bomb), "--model", w.ck, *M4],
     "bomb.h5: 'reconstruction_esc' of shape (2, 20, 20) does not match the 20000 k-space "
     "slices"),
    ("ISMRMRD encoded matrix 65535^2", lambda w: ["recon", str(w.mrd_huge), "--no-progress"],
     "mrd_huge.h5: k-space of the encoded matrix 65535 x 65535 x 1"),
    ("ISMRMRD mixed trajectories", lambda w: ["recon", str(w.mrd_mixed), "--no-progress"],
     "mrd_mixed.h5: the image acquisitions mix trajectories"),
    ("twix truncated at 100 bytes, in info", lambda w: ["info", str(w.twix100)],
     "twix_100.dat: not a readable Siemens twix file"),
    ("compare with a block-CS checkpoint",
     lambda w: ["compare", str(w.image), "--mask", "radial", "--acceleration", "4", "--model",
                str(w.block_cs), "--output", str(w.d / "c.png")],
     "block_cs.safetensors: a ista_net_plus trained for natural-image block compressive "
     "sensing"),
    ("import-official with a state dict with wrong keys",
     lambda w: ["import-official", str(w.wrong_keys), "--output", str(w.d / "w.safetensors")],
     "wrong_keys.pkl: cannot infer the architecture from the checkpoint keys"),
    *[(f"train --override {o}", _train_override(o), msg) for o, msg in [
        ("seed=-1", "tiny.toml: seed must be in [0, 2^63), got -1"),
        ("data.max_images=-1", "data.max_images must be >= 0, got -1"),
        ("data.num_workers=-1", "data.num_workers must be >= 0, got -1"),
        ("operator.ratio=0", "operator.ratio must be a finite number in (0, 1], got 0"),
        ("operator.ratio=1.5", "operator.ratio must be a finite number in (0, 1], got 1.5")]],
    ("train into a run folder on a full file-system",
     lambda w: ["train", TINY, *QUICK, "--override", 'evaluation.protocol="none"', "--run-dir",
                str(w.d / "full" / "r")],
     "{d}/full/r/" + MARKER + ": cannot write, no space left on device", _full_disk),
    ("study methods.lambdas = [] for l1-wavelet-fista",
     lambda w: ["study", str(w.study), "--override", "methods.lambdas=[]", "--out",
                str(w.d / "s"), "--no-progress"],
     "methods.lambdas is empty; l1-wavelet-fista need at least one regularisation weight"),
    # ---------------------------------------------------------------- also
    ("forged checkpoint declaring num_phases = 10^6 (no hang)",
     lambda w: ["recon", str(w.scan), "--model", str(w.phases), *M4],
     "phases.safetensors: cannot rebuild model: num_phases must be at most 1000, got 1000000"),
    ("train failing validation (fp16 on CPU) leaves no run folder",
     lambda w: ["train", TINY, *QUICK, "--override", 'training.precision="fp16"', "--device",
                "cpu", "--run-dir", str(w.d / "fp16")],
     "training.precision = 'fp16' needs CUDA; use 'bf16' on CPU (the device is cpu)"),
    ("train failing validation (missing evaluation folder) leaves no run folder",
     lambda w: ["train", TINY, *QUICK, "--override", f'evaluation.sets=["{w.d}/nope"]',
                "--run-dir", str(w.d / "noeval")],
     "evaluation.sets: {d}/nope: evaluation set not found"),
    ("recon onto a full file-system names the file",
     lambda w: ["recon", str(w.scan), "--model", w.ck, *M4, "--output", str(w.d / "o.h5")],
     "{d}/o.h5: cannot write, no space left on device", _full_disk),
    # ---------------------------------------------------------------- other input surfaces
    ("train --resume in a user's folder",
     lambda w: ["train", TINY, *QUICK, "--run-dir", str(w.protocol_dir), "--resume"],
     "user_protocol/last.state.pt: no training state to resume from"),
    ("train --run-dir is a file",
     lambda w: ["train", TINY, *QUICK, "--run-dir", str(w.user_png)],
     "user.png: exists and is not a folder"),
    ("study --out into an unrelated non-empty folder",
     lambda w: ["study", str(w.study), "--out", str(w.results_dir), "--no-progress"],
     "user_results: exists and is not a study folder of mri-unfold"),
    ("plot-log --output not a PNG",
     lambda w: ["plot-log", str(w.run), "--output", str(w.d / "curves.jpg")],
     "curves.jpg: must end with .png"),
    ("compare --output over an existing file",
     lambda w: ["compare", str(w.image), "--mask", "radial", "--acceleration", "4", "--output",
                str(w.user_png)], "user.png: exists; pass --overwrite"),
    ("compare with a pickle-bearing .npy image",
     lambda w: ["compare", str(w.objects), "--mask", "radial", "--acceleration", "4",
                "--output", str(w.d / "c.png")], "objects.npy: holds a NumPy object array"),
    ("demo --output holding an earlier comparison.png",
     lambda w: ["demo", "--output", str(w.d / "demo_done"), "--weights", str(w.d / "none")],
     "demo_done/comparison.png: exists; pass --overwrite"),
    ("eval --output is a non-empty folder",
     lambda w: ["eval", str(w.block_cs), "--images", str(w.d / "study" / "test"), "--output",
                str(w.results_dir)], "user_results: exists and is not an empty folder"),
    ("eval --max-images -1",
     lambda w: ["eval", str(w.block_cs), "--images", str(w.d / "study" / "test"),
                "--max-images", "-1"], "--max-images must be >= 0 (0 = all), got -1"),
    ("eval --ratio 0",
     lambda w: ["eval", str(w.block_cs), "--images", str(w.d / "study" / "test"), "--ratio",
                "0"], "--ratio must be in (0, 1], got 0.0"),
    ("masks --output ending with /",
     lambda w: ["masks", "--kind", "radial", "--shape", "32", "32", "--acceleration", "4",
                "--output", f"{w.d}/m.png/"], "m.png/: expected a .png file name"),
    ("recon --seed -1", lambda w: ["recon", str(w.scan), "--model", w.ck, *M4, "--seed", "-1"],
     "--seed must be >= 0, got -1"),
    ("recon --espirit-crop 1.5",
     lambda w: ["recon", str(w.scan), "--model", w.ck, *M4, "--espirit-crop", "1.5"],
     "--espirit-crop must be in [0, 1), got 1.5"),
    ("demo --seed -1", lambda w: ["demo", "--seed", "-1", "--output", str(w.d / "demo_new")],
     "--seed must be >= 0, got -1"),
    ("compare --slice of a 2-D image",
     lambda w: ["compare", str(w.image), "--slice", "3", "--mask", "radial", "--acceleration",
                "4", "--output", str(w.d / "c.png")], "--slice 3: {d}/brain.png is a 2-D image"),
    ("recon --output is the --mask-file, even with --overwrite",
     lambda w: ["recon", str(w.vol), "--model", w.rk, "--mask-file", str(w.radial), "--output",
                str(w.radial), "--overwrite"], "radial_mask.npy: is the input file"),
]


def _prepare(w):
    demo = w.d / "demo_done"
    if not demo.exists():
        hf.user_folder(demo, {"comparison.png": "an earlier figure"})


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_hostile_input(row, w, capsys, monkeypatch):
    name, argv, expect, *setup = row
    _prepare(w)
    if setup:
        setup[0](monkeypatch, w)
    before = _snapshot(w.d)
    checkpoints = {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in (w.ck, w.rk)}
    capsys.readouterr()
    t0 = time.perf_counter()
    code = main(argv(w))
    seconds = time.perf_counter() - t0
    err = capsys.readouterr().err.strip().splitlines()
    errors = [ln for ln in err if ln.startswith("mri-unfold: error: ")]
    assert code == 2, err
    assert len(errors) == 1 and expect.format(d=w.d) in errors[0], err
    assert not [ln for ln in err if "internal error" in ln]
    assert _snapshot(w.d) == before  # nothing written, nothing changed
    assert {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in checkpoints} == \
        checkpoints
    assert seconds < 60, f"{name}: took {seconds:.0f} s"


def test_the_table_covers_the_issue():
    """11 cases of lost data, 19 accepted silently (the singular noise covariance is
    regularised with a warning: tests/test_hostile_api.py), 25 internal errors and the
    "also" items, and further input surfaces."""
    assert len(ROWS) == 71
