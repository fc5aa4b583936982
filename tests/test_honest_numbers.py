"""Numbers a new user reads and trusts: the acceleration a mask really has, the noise
variances ``info`` prints, the demo saying when a model runs outside its training, studies
flagging learned masks that have not converged, a paired figure whose labels fit, and no
compiler messages a user cannot act on."""
from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from mri_unfold import fastpath
from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.cli import main
from mri_unfold.cli.demo import training_mismatch
from mri_unfold.masks import make_mask
from mri_unfold.operators import LearnedMaskFourier
from mri_unfold.studies.finalize import learned_mask_warnings
from mri_unfold.studies import plots
from mri_unfold.studies.report import markdown_summary

from raw_fixtures import multi_raid_twix, twix_path


def test_masks_say_what_acceleration_was_achieved(capsys):
    assert main(["masks", "--kind", "random", "--kind", "random2d", "--shape", "32", "32",
                 "--acceleration", "12"]) == 0
    notes = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("note:")]
    assert notes == ["note: random: asked for 12x, achieved 32.0x (1 of 32 columns) for a "
                     "32x32 k-space"]
    res = make_mask("random2d", (32, 32), acceleration=12, seed=0)
    assert res.shortfall() is None and abs(res.acceleration / 12 - 1) < 0.25
    assert make_mask("equispaced", (256, 256), acceleration=4, seed=0).shortfall() is None


def test_info_prints_small_noise_variances(tmp_path, capsys):
    path = multi_raid_twix(twix_path(), tmp_path / "noise.dat", tmp_path)
    assert main(["info", str(path)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines()
                if ln.startswith("noise_covariance_diagonal"))
    values = [float(v) for v in line.split(None, 1)[1].split(", ")]
    assert len(values) == 2 and all(1e-12 < v < 1e-8 for v in values), line
    assert main(["info", str(path), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)["details"]["noise_covariance_diagonal"]
    assert js == pytest.approx(values, rel=1e-3)


def test_demo_notes_a_model_trained_for_other_sampling():
    radial10 = load_checkpoint("ista_net_plus_radial10")
    assert training_mismatch("ISTA-Net+", radial10, 0.1) is None
    assert training_mismatch("ISTA-Net+", radial10, 0.2) == (
        "ISTA-Net+ was trained for 10% sampling; the demo runs it on 20% (--ratio 0.1 matches "
        "its training)")
    kspace = load_checkpoint("complex_ista_net_plus_1coil_4x")
    assert "trained for 'kspace' measurements, not the demo's 20% pseudo-radial mask" in \
        training_mismatch("c", kspace, 0.2)


@pytest.mark.slow
def test_demo_prints_the_note(tmp_path, capsys):
    assert main(["demo", "--model", "ista_net_plus_radial10", "--output", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "note: ISTA-Net+ (ours) was trained for 10% sampling; the demo runs it on 20% " \
           "(--ratio 0.1 matches its training)" in out, out
    assert (tmp_path / "d" / "comparison.png").is_file()


def test_learned_mask_separation_at_initialisation_and_when_decided():
    op = LearnedMaskFourier((64, 64), 1 / 6, dims=2, seed=0)
    beta = op.free_budget / op.n_free
    assert op.separation() == pytest.approx(beta, abs=0.02)      # a uniform random mask
    with torch.no_grad():                                          # decide: keep = +, drop = -
        keep = op.binarised()[~op.acs]
        op.logits[~op.acs] = torch.where(keep, 5.0, -5.0)
    assert op.separation() > 0.95


def _study_folder(tmp_path, separation: float):
    cell = tmp_path / "cells" / "learned-2d_6x__ista_net_plus"
    cell.mkdir(parents=True)
    (cell / "cell.json").write_text(json.dumps({"mask_separation": separation, "steps": 40}))
    record = {"cells": [{"id": cell.name, "mask": "learned-2d_6x", "method": "ista_net_plus",
                         "family": "network"}]}
    return {cell.name: tmp_path}, record


def test_studies_warn_about_unconverged_learned_masks(tmp_path):
    where, record = _study_folder(tmp_path, 0.18)
    notes = learned_mask_warnings(where, record)
    assert notes == ["the learned mask learned-2d_6x has not converged after 40 training steps: "
                     "its probabilities separate the kept samples from the dropped ones by "
                     "0.18 (1 = decided, about the sampled fraction at initialisation), so it "
                     "is close to uniform random sampling; train it longer (network.max_steps) "
                     "before ranking it"]
    record |= {"name": "s", "fingerprint": "f", "protocol": {"report": {"metric": "psnr"}}}
    md = markdown_summary(record, [], [], [], {"phases": {}, "families": {}}, notes)
    assert "## Warnings\n\n* **the learned mask learned-2d_6x has not converged" in md
    where, record = _study_folder(tmp_path / "ok", 0.8)
    assert learned_mask_warnings(where, record) == []


def test_paired_figure_labels_fit_the_figure(tmp_path, monkeypatch):
    figs = []
    monkeypatch.setattr(plots, "_save", lambda fig, out: figs.append(fig) or out)
    p = {"diffs": list(np.linspace(0.2, 2.5, 50)), "ci_low": 0.5, "ci_high": 0.9, "mean": 0.7,
         "metric": "psnr", "a": "poisson_10x__ista_net_plus", "b": "learned-2d_10x__ista_net_plus",
         "p_ttest": 1e-8, "p_wilcoxon": 1e-7, "label_a": "poisson", "label_b": "learned-2d"}
    long = dict(p, label_a="gaussian2d (a long file-mask name) 10x",
                label_b="learned-2d with a long description 10x")
    plots.paired_figure([(4.0, p), (10.0, long)], tmp_path / "paired.png")
    fig = figs[0]
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    height = fig.bbox.height
    for ax in fig.axes:
        box = ax.yaxis.label.get_window_extent(renderer)
        assert box.y0 >= 0 and box.y1 <= height and box.x0 >= 0, (box, height)
    assert fig.axes[0].get_ylabel() == "psnr difference: learned-2d − poisson"


def test_the_compiler_says_nothing_a_user_cannot_act_on(caplog):
    log = logging.getLogger("torch.utils.cpp_extension")
    with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        with fastpath.quiet_compiler():
            warnings.warn("Torchinductor does not support code generation for complex "
                          "operators. Performance may be worse than eager.")
            log.warning("No CUDA runtime is found, using CUDA_HOME='/usr/local'")
            warnings.warn("something else")
    assert [str(w.message) for w in seen] == ["something else"]
    assert "CUDA_HOME" not in caplog.text
    assert log.level == logging.NOTSET          # restored


@pytest.mark.slow
def test_compiling_a_complex_model_prints_no_compiler_messages(capfd):
    from mri_unfold.models import build
    from mri_unfold.operators import SingleCoilFourier

    model = build("ista_net_plus", num_phases=1, channels=2, image_channels=2, seed=0).eval()
    op = SingleCoilFourier(np.ones((16, 16), np.float32))
    fast = fastpath.accelerate(model, fastpath.FastPath(compile=True))
    y = op(torch.ones(1, 1, 16, 16, dtype=torch.complex64))
    with warnings.catch_warnings(record=True) as seen, torch.no_grad():
        warnings.simplefilter("always")
        fast(y, op)
    err = capfd.readouterr().err
    assert "Torchinductor" not in err and "CUDA_HOME" not in err
    assert not [w for w in seen if "complex operators" in str(w.message)]
