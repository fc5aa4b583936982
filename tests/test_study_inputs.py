"""Study protocols (strict keys, fingerprints), cells and shards, the statistics helpers, and
every bad input as one line with exit status 2 and nothing written."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from scipy import stats

from mri_unfold.cli import main
from mri_unfold.errors import InvalidValue, UserError
from mri_unfold.studies import (fingerprint, load_study, parse_shard, plan_cells, plan_masks,
                                shard_cells, validate_study)
from mri_unfold.studies.evaluate import score
from mri_unfold.studies.results import ci95, paired
from study_fixtures import STUDY, make_study, write_images


def _cfg(**sections):
    raw = {"data": {"test": "x"}, "masks": {"kinds": ["radial"], "accelerations": [4]}}
    for k, v in sections.items():
        raw[k] = raw.get(k, {}) | v if isinstance(v, dict) else v
    return validate_study(raw, "s.toml")


def test_defaults_and_strict_keys():
    cfg = _cfg()
    assert cfg["name"] == "s" and cfg["methods"]["classical"] == ["zero-filled"]
    assert cfg["masks"]["center_fractions"] == [0.0] and cfg["masks"]["seeds"] == [0]
    assert cfg["data"]["image_variable"] == "im_ori"     # the images source's own key
    with pytest.raises(UserError, match=r"s.toml: unknown key 'masks.kind' in masks; valid "
                                        r"keys: kinds, accelerations"):
        _cfg(masks={"kind": "radial"})
    with pytest.raises(UserError, match=r"masks.accelerations = 0.5: each value must be >= 1"):
        _cfg(masks={"accelerations": [0.5]})
    with pytest.raises(UserError, match=r"masks.kinds: 'spiral' is not one of random, "):
        _cfg(masks={"kinds": ["spiral"]})
    with pytest.raises(UserError, match=r"methods.classical: 'bm3d' is not one of zero-filled"):
        _cfg(methods={"classical": ["bm3d"]})
    with pytest.raises(UserError, match=r"masks.learned_dims needs network.model"):
        _cfg(masks={"learned_dims": [2]})
    with pytest.raises(UserError, match=r"data.kind = 'fastmri' gives k-space samples"):
        _cfg(data={"kind": "fastmri"})


def test_fingerprint_follows_the_settings_that_define_results():
    a = _cfg()
    assert fingerprint(a) == fingerprint(_cfg(report={"grid_image": 3}, description="x"))
    assert fingerprint(a) != fingerprint(_cfg(masks={"accelerations": [4, 6]}))
    assert fingerprint(a) != fingerprint(_cfg(seed=1))
    assert len(fingerprint(a)) == 16


def test_masks_and_cells_in_order_with_labels():
    cfg = _cfg(masks={"kinds": ["poisson", "random"], "accelerations": [4, 8],
                      "seeds": [0, 1], "learned_dims": [1]},
               methods={"classical": ["zero-filled", "l1-wavelet-fista"],
                        "checkpoints": ["/w/net.safetensors"]},
               network={"model": "ista_net_plus"}, data={"train": "t"})
    masks = plan_masks(cfg["masks"], {})
    assert [m.id for m in masks][:4] == ["poisson-s0_4x", "poisson-s1_4x", "poisson-s0_8x",
                                         "poisson-s1_8x"]
    assert [m.id for m in masks][-2:] == ["learned-1d_4x", "learned-1d_8x"]
    cells = plan_cells(masks, cfg)
    assert len(cells) == len(masks) * 4
    assert [c.method for c in cells[:4]] == ["zero-filled", "l1-wavelet-fista",
                                             "ckpt-net", "ista_net_plus"]
    learned = [c for c in cells if c.mask.learned]
    assert learned[0].method == "ista_net_plus"          # the mask is learned first
    for n in (1, 2, 3, 5):
        parts = [shard_cells(cells, k, n) for k in range(1, n + 1)]
        assert sorted(c.id for p in parts for c in p) == sorted(c.id for c in cells)
        for p in parts:                                  # a learned mask's cells together
            ids = {c.mask.id for c in p if c.mask.learned}
            assert all(sum(c.mask.id == i for c in p) == 4 for i in ids)
    assert shard_cells(cells, 1, 2)[0].family == "network"


@pytest.mark.parametrize("spec, want", [("1/1", (1, 1)), ("2/4", (2, 4)), (" 3 / 3 ", (3, 3))])
def test_parse_shard(spec, want):
    assert parse_shard(spec) == want


@pytest.mark.parametrize("spec, message", [("3/2", r"K must be between 1 and N \(got K=3, N=2\)"),
                                           ("0/2", "K must be between 1 and N"),
                                           ("1-2", "expected K/N")])
def test_parse_shard_errors(spec, message):
    with pytest.raises(InvalidValue, match=message):
        parse_shard(spec)


def test_ci95_and_paired_tests_against_scipy():
    v = [1.0, 2.0, 4.0, 7.0]
    mean, std, lo, hi = ci95(v)
    ref = stats.t.interval(0.95, 3, loc=np.mean(v), scale=stats.sem(v))
    assert (mean, std) == (3.5, pytest.approx(np.std(v, ddof=1)))
    assert (lo, hi) == (pytest.approx(ref[0]), pytest.approx(ref[1]))
    assert math.isnan(ci95([2.0])[1])
    rows = [{"cell": c, "image": f"i{i}", "psnr": p} for c, ps in
            (("a", [30.0, 31.0, 29.0, 33.0, 30.5]), ("b", [31.0, 31.5, 30.0, 34.5, 30.0]))
            for i, p in enumerate(ps)]
    p = paired(rows, "a", "b")
    assert p["diffs"] == [1.0, 0.5, 1.0, 1.5, -0.5] and p["mean"] == pytest.approx(0.7)
    assert p["p_ttest"] == pytest.approx(stats.ttest_rel([31, 31.5, 30, 34.5, 30],
                                                         [30, 31, 29, 33, 30.5]).pvalue)
    assert p["p_wilcoxon"] == pytest.approx(stats.wilcoxon([1.0, 0.5, 1.0, 1.5, -0.5]).pvalue)


def test_score_uses_the_volume_maximum_and_the_255_scale():
    t = torch.zeros(3, 1, 8, 8)
    t[0, 0, 2:6, 2:6], t[1, 0, 3:5, 3:5], t[2, 0, 1:7, 1:7] = 0.5, 1.0, 0.8
    r = (t[:, 0] + 0.05).clamp(max=2.0)
    rows = score(t, r, ["v1", "v1", "v2"])
    mse = 0.05 ** 2
    assert rows[0]["psnr"] == pytest.approx(10 * math.log10(1.0 / mse))   # volume v1 max 1
    assert rows[2]["psnr"] == pytest.approx(10 * math.log10(0.64 / mse))  # volume v2 max .8
    assert rows[0]["psnr255"] == pytest.approx(10 * math.log10(255 ** 2 / (255 * .05) ** 2))
    assert rows[0]["nmse"] == pytest.approx(64 * mse / (16 * 0.25))


def _replace(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


BAD = [
    ("unknown key", lambda r: _replace(STUDY, "val_images = 2", "val_images = 2\nvalimages = 1"),
     r"unknown key 'data.valimages' in data; valid keys: kind, train, test"),
    ("empty data set", lambda r: _replace(STUDY, 'test = "{root}/test"',
                                          'test = "{root}/empty"'),
     r"empty: no PNG/TIFF image files \(.png, .tif, .tiff\) found"),
    ("acceleration a kind cannot reach", lambda r: _replace(
        _replace(STUDY, "accelerations = [3, 5]", "accelerations = [12]"),
        'kinds = ["radial", "gaussian2d"]', 'kinds = ["random"]'),
     r"masks: kind 'random' cannot reach 12x on 32x32 k-space \(it gives 32.00x, more than "
     r"masks.tolerance = 0.1 off\)"),
    ("acceleration a kind cannot make", lambda r: _replace(STUDY, "accelerations = [3, 5]",
                                                           "accelerations = [3, 12]"),
     r"masks: 'radial' at 12x on 32x32 k-space: radial mask: cannot reach ratio=0.0833333"),
    ("mask file of the wrong shape", lambda r: _replace(
        STUDY, "learned_dims = [2]", 'learned_dims = [2]\nfiles = ["{root}/m16.npy"]'),
     r"m16.npy: mask of shape \(16, 16\) does not match the 32x32 images of the study"),
    ("learned budget below the centre", lambda r: _replace(
        STUDY, "learned_dims = [2]", "learned_dims = [2]\nlearned_center_fraction = 0.9"),
     r"learned mask 32x32 at ratio 0.333333: the budget of 341 points leaves"),
]


@pytest.mark.parametrize("what, text, message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, what, text, message):
    make_study(tmp_path)
    (tmp_path / "empty").mkdir()
    m16 = np.zeros((16, 16), np.float32)
    m16[6:10, :] = 1
    np.save(tmp_path / "m16.npy", m16)
    (tmp_path / "bad.toml").write_text(text(tmp_path).format(root=tmp_path.as_posix()))
    out = tmp_path / "out"
    assert main(["study", str(tmp_path / "bad.toml"), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mri-unfold: error: ") and len(err.splitlines()) == 1
    assert re.search(message, err), err
    assert not out.exists()


def test_bad_shard_spec_and_merging_other_studies(tmp_path, capsys):
    path = make_study(tmp_path)
    assert main(["study", str(path), "--shard", "3/2", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("mri-unfold: error: --shard shard '3/2': K must be between 1 and N "
                           "(got K=3, N=2)")
    assert not (tmp_path / "o").exists()
    a, b = tmp_path / "a", tmp_path / "b"
    for d, acc in ((a, "[3]"), (b, "[5]")):
        (d / "cells").mkdir(parents=True)
        cfg = load_study(path, [f"masks.accelerations={acc}", 'network.model=""',
                                "masks.learned_dims=[]"])
        (d / "study.json").write_text('{"name": "tiny", "fingerprint": "%s", "cells": []}'
                                      % fingerprint(cfg))
    assert main(["study", "merge", str(a), str(b), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds study 'tiny' (fingerprint" in err
    assert err.endswith("shards of different studies cannot be merged")
    assert not (tmp_path / "m").exists()
    write_images(tmp_path / "x", 1, seed=0)
    assert main(["study", "merge", str(tmp_path / "x")]) == 2
    assert "not a study folder (no study.json)" in capsys.readouterr().err


def test_a_folder_of_another_study_or_of_other_files_is_refused(tmp_path, capsys):
    path = make_study(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["study", str(path), "--out", str(other), "--no-progress",
                 "--override", 'network.model=""', "--override", "masks.learned_dims=[]"]) == 2
    assert "other: exists and is not a study folder" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    out = tmp_path / "out"
    base = ["study", str(path), "--out", str(out), "--no-progress", "--override",
            'network.model=""', "--override", "masks.learned_dims=[]"]
    assert main(base + ["--override", 'methods.classical=["zero-filled"]']) == 0
    before = (out / "results.csv").read_text()
    assert main(base + ["--override", "seed=1"]) == 2
    err = capsys.readouterr().err
    assert "out: holds study 'tiny' (fingerprint" in err and "choose another output" in err
    assert (out / "results.csv").read_text() == before
