"""Issue 25's hostile inputs to the Python API, one row each (the exception type and a message
naming the file, key or argument), and the cases whose fix is not a refusal: a singular noise
covariance regularised with a warning, run folders that are ours (marked, resumed, cleaned of
a killed writer's debris and nothing else), new run folders created with their parents."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import hostile_files as hf  # noqa: E402
from test_operator_contract import _SlightlyScaledAdjoint  # noqa: E402
from test_training import image_dir, micro_cfg  # noqa: E402,F401  (fixture + helper)

from mri_unfold.checkpoints import load_checkpoint  # noqa: E402
from mri_unfold.cli import main  # noqa: E402
from mri_unfold.data import FastMRISliceDataset, NiftiVolume  # noqa: E402
from mri_unfold.data.prewhiten import regularised_covariance  # noqa: E402
from mri_unfold.errors import DataFileError, InvalidValue, UserError  # noqa: E402
from mri_unfold.masks import load_mask  # noqa: E402
from mri_unfold.models import build  # noqa: E402
from mri_unfold.operators import (MultiCoilFourier, NonCartesianFourier,  # noqa: E402
                                  OperatorContractError, check_operator)
from mri_unfold.outputs import MARKER, folder_kind  # noqa: E402
from mri_unfold.studies import validate_study  # noqa: E402
from mri_unfold.training.config import validate_protocol  # noqa: E402
from mri_unfold.training.loop import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _radial(n=64, k=128):
    t = np.linspace(-np.pi, np.pi, k, endpoint=False)
    return np.stack([t, 0.5 * t], -1)


#: (name, call(d, ckpt) -> None, exception type, message regex).
ROWS = [
    ("load_mask of a pickle-bearing .npy",
     lambda d, ck: load_mask(hf.pickled_npy(d), layout="centered"), DataFileError,
     r"objects.npy: holds a NumPy object array \(pickled Python objects\); object arrays are "
     r"refused"),
    ("MultiCoilFourier with NaN coil maps",
     lambda d, ck: MultiCoilFourier(np.ones((8, 8), np.float32), np.full((2, 8, 8), np.nan)),
     InvalidValue, r"coil_maps contain 128 NaN/Inf values"),
    ("NonCartesianFourier with an all-zero DCF",
     lambda d, ck: NonCartesianFourier(_radial(), (16, 16), dcf=np.zeros(128)), InvalidValue,
     r"dcf is zero everywhere"),
    ("NonCartesianFourier with every sample at k = 0",
     lambda d, ck: NonCartesianFourier(np.zeros((128, 2)), (16, 16)), InvalidValue,
     r"traj: all 128 samples are at k = 0"),
    ("check_operator with an adjoint scaled by 1 + 1e-7",
     lambda d, ck: check_operator(_SlightlyScaledAdjoint(256)), OperatorContractError,
     r"adjoint_ax: relative error 1.000e-07 > rtol 1.0e-10"),
    ("load_checkpoint with an int8 convolution weight (digest recomputed)",
     lambda d, ck: load_checkpoint(hf.int8_weight_checkpoint(ck, d / "int8.safetensors")),
     UserError, r"int8.safetensors: tensor 'model/phases\.0\.\w+' has data type torch.int8"),
    ("load_checkpoint declaring num_phases = 10^6 (digest recomputed)",
     lambda d, ck: load_checkpoint(hf.many_phases_checkpoint(ck, d / "phases.safetensors")),
     UserError, r"phases.safetensors: cannot rebuild model: num_phases must be at most 1000"),
    ("build with num_stages = 10^6",
     lambda d, ck: build("madun", num_stages=10 ** 6), ValueError,
     r"num_stages must be at most 1000, got 1000000"),
    ("protocol name escaping runs/",
     lambda d, ck: validate_protocol({"name": "../../x", "data": {"train": "."},
                                      "model": {"name": "ista_net"}}, source="p.toml"),
     UserError, r"p.toml: name = '../../x' must be a plain folder name"),
    ("study name that is an absolute path",
     lambda d, ck: validate_study({"name": "/tmp/x", "data": {"test": "."},
                                   "masks": {"kinds": ["radial"], "accelerations": [4]}},
                                  source="s.toml"),
     UserError, r"s.toml: name = '/tmp/x' must be a plain folder name"),
    ("FastMRISliceDataset with kspace as a group",
     lambda d, ck: FastMRISliceDataset(hf.kspace_group(d)), DataFileError,
     r"kspace_group.h5: 'kspace' is an HDF5 group, not a dataset"),
    ("FastMRISliceDataset with a recon matrix of 0",
     lambda d, ck: FastMRISliceDataset(hf.recon_matrix(d, "r0.h5", 0, 20)), DataFileError,
     r"r0.h5: the ismrmrd_header's recon matrix 0 x 20 must be positive"),
    ("NiftiVolume with a negative dimension",
     lambda d, ck: NiftiVolume(hf.patched_nifti(d, "neg.nii", 44, "<h", -3)), DataFileError,
     r"neg.nii: the NIfTI header declares dimensions"),
    ("a noise covariance of zeros",
     lambda d, ck: regularised_covariance(np.zeros((2, 2))), ValueError,
     r"noise covariance is zero"),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_hostile_api_call(row, tmp_path, recon_complex_ckpt):
    name, call, exc, pattern = row
    t0 = time.perf_counter()
    with pytest.raises(exc, match=pattern):
        call(tmp_path, recon_complex_ckpt)
    assert time.perf_counter() - t0 < 30, f"{name}: too slow"


def test_the_api_table_size():
    assert len(ROWS) == 14


def test_a_singular_noise_covariance_is_regularised_with_a_warning(tmp_path, capsys):
    """Both coils record the same noise up to 1e-6: whitening with that covariance as it is
    multiplied the image by 9e5 (measured before the fix).  Diagonal loading by 1e-3 of the
    mean eigenvalue bounds the gain of the direction without measured noise to about
    sqrt(1e3 / 2) = 22."""
    f = hf.ismrmrd_identical_coils(tmp_path)
    assert main(["recon", str(f), "--output", str(tmp_path / "white.npy"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    warnings = [ln for ln in err.splitlines() if ln.startswith("mri-unfold: warning: ")]
    assert len(warnings) == 1, err
    assert "mrd_singular_noise.h5: the noise covariance is singular or nearly so" in warnings[0]
    assert "regularised by adding" in warnings[0]
    assert main(["recon", str(f), "--output", str(tmp_path / "raw.npy"), "--no-progress",
                 "--no-prewhiten"]) == 0
    white, raw = np.load(tmp_path / "white.npy"), np.load(tmp_path / "raw.npy")
    assert np.isfinite(white).all()
    assert float(white.max() / raw.max()) == pytest.approx(20.36, rel=0.05)


def test_train_never_touches_a_folder_that_is_not_a_run(image_dir, tmp_path):
    user = hf.user_folder(tmp_path / "mine", {"protocol.toml": "my notes", "log.csv": "a\n",
                                              ".draft.partial-1": "draft"})
    before = {p.name: p.read_bytes() for p in user.iterdir()}
    with pytest.raises(UserError, match=r"mine: exists and is not a training run folder"):
        train(micro_cfg(image_dir, training__max_steps=1), user)
    assert {p.name: p.read_bytes() for p in user.iterdir()} == before
    assert not (tmp_path / ".mine.lock").exists()


def test_run_folders_are_created_with_their_parents_and_marked(image_dir, tmp_path):
    run = tmp_path / "runs" / "deep" / "micro"
    res = train(micro_cfg(image_dir, training__max_steps=1), run)
    assert res["step"] == 1 and folder_kind(run) == "run"
    assert json.loads((run / MARKER).read_text()) == {"kind": "run", "by": "mri-unfold"}
    # an empty folder is accepted too, and then marked
    empty = tmp_path / "empty"
    empty.mkdir()
    train(micro_cfg(image_dir, training__max_steps=1), empty)
    assert folder_kind(empty) == "run"


def test_the_default_run_folder_is_created_in_a_fresh_clone(tmp_path, monkeypatch, shared):
    """``mri-unfold train protocols/tiny.toml`` creates ``runs/tiny`` (and ``runs/``)."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(ROOT / "protocols" / "tiny.toml"), "--override",
                 "data.max_images=4", "--override", "training.max_steps=1", "--override",
                 'evaluation.protocol="none"', "--no-progress"]) == 0
    assert folder_kind(tmp_path / "runs" / "tiny") == "run"
    assert (tmp_path / "runs" / "tiny" / "last.safetensors").is_file()


def test_a_resumed_run_removes_only_a_killed_writers_debris(image_dir, tmp_path, capsys):
    cfg = micro_cfg(image_dir, training__max_steps=1)
    run = tmp_path / "r"
    train(cfg, run)
    # what a kill while writing left (older safetensors versions wrote .tmpXXXXXX files
    # next to the checkpoint), and files of the user's that must stay
    (run / ".tmpAb12Cd").write_bytes((40).to_bytes(8, "little") + b'{"__metadata__":{}}')
    (run / ".last.state.pt.partial-x1y2.pt").write_bytes(b"torn")
    mine = {".tmpnotes": b"mine", ".draft.partial-1": b"draft", "notes.txt": b"n"}
    for name, data in mine.items():
        (run / name).write_bytes(data)
    cfg["training"]["max_steps"] = 2
    assert train(cfg, run, resume=True)["step"] == 2
    names = sorted(p.name for p in run.iterdir())
    assert ".tmpAb12Cd" not in names and ".last.state.pt.partial-x1y2.pt" not in names
    assert {n: (run / n).read_bytes() for n in mine} == mine
    err = capsys.readouterr().err
    assert "removed .tmpAb12Cd, left by a killed run" in err


def test_training_writes_no_foreign_temporary_files(image_dir, tmp_path, monkeypatch):
    """Checkpoints are serialised in memory and written through the atomic helpers: the
    safetensors library's file writer (which makes its own .tmpXXXXXX next to the target, left
    behind by a kill) is never called, and at every step the run folder holds the run's files
    only."""
    import safetensors.torch

    def no_library_writer(*args, **kwargs):
        raise AssertionError("safetensors.torch.save_file was called")

    monkeypatch.setattr(safetensors.torch, "save_file", no_library_writer)
    seen: set[str] = set()

    def look(trainer):
        seen.update(p.name for p in trainer.run_dir.iterdir())

    train(micro_cfg(image_dir, training__max_steps=4, training__checkpoint_every=1),
          tmp_path / "r", on_step=look)
    assert seen == {MARKER, "protocol.toml", "log.csv", "log.jsonl", "last.state.pt",
                    "last.safetensors"}


def test_a_run_written_before_markers_resumes_and_gets_its_marker(image_dir, tmp_path):
    cfg = micro_cfg(image_dir, training__max_steps=1)
    run = tmp_path / "old"
    train(cfg, run)
    (run / MARKER).unlink()  # as written by an earlier version
    cfg["training"]["max_steps"] = 2
    with pytest.raises(UserError, match="old: exists and is not a training run folder"):
        train(cfg, run)  # not resumed: not recognisably ours
    assert train(cfg, run, resume=True)["step"] == 2
    assert folder_kind(run) == "run"


@pytest.mark.slow
def test_sigkill_and_resume_leave_no_temporary_file(tmp_path, shared):
    """The issue's scenario: SIGKILL at step 12 of the tiny protocol, resumed: the weights
    equal an uninterrupted run's and the folder holds only the run's files."""
    code = ("import os, signal, sys\n"
            "from mri_unfold.training.config import load_protocol\n"
            "from mri_unfold.training.loop import train\n"
            f"cfg = load_protocol({str(ROOT / 'protocols' / 'tiny.toml')!r}, "
            "['training.checkpoint_every=3', 'training.progress=false', "
            "'evaluation.max_images=1'])\n"
            "kill = sys.argv[2] == 'kill'\n"
            "def hook(t):\n"
            "    if kill and t.step == 12: os.kill(os.getpid(), signal.SIGKILL)\n"
            "train(cfg, sys.argv[1], resume=sys.argv[2] == 'resume', on_step=hook)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-c", code]
    assert subprocess.run(run + [str(tmp_path / "r"), "kill"], env=env).returncode == -9
    assert subprocess.run(run + [str(tmp_path / "r"), "resume"], env=env).returncode == 0
    assert subprocess.run(run + [str(tmp_path / "full"), "full"], env=env).returncode == 0
    names = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert names == sorted([MARKER, "best.safetensors", "last.safetensors", "last.state.pt",
                            "log.csv", "log.jsonl", "protocol.toml"])
    a = load_checkpoint(tmp_path / "r" / "last.safetensors").model.state_dict()
    b = load_checkpoint(tmp_path / "full" / "last.safetensors").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
