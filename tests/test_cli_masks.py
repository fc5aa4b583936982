"""``mri-unfold masks``: table values, PNG figure, .npy output, one-line errors with exit 2."""
from __future__ import annotations

import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from mri_unfold.cli import main
from mri_unfold.masks import make_mask, mask_stats


def _table(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    assert lines[0].split()[:3] == ["kind", "ratio", "accel"]
    rows = {}
    for ln in lines[1:]:
        if ln.startswith("wrote "):
            break
        rows[ln.split()[0]] = ln.split()
    return rows


def test_table_png_and_npy(tmp_path, capsys):
    png, npy = tmp_path / "masks.png", tmp_path / "npy"
    rc = main(["masks", "--kind", "radial", "--kind", "random2d", "--kind", "equispaced",
               "--shape", "64", "80", "--acceleration", "4", "--seed", "3",
               "--output", str(png), "--save-npy", str(npy)])
    out = capsys.readouterr().out
    assert rc == 0
    rows = _table(out)
    assert list(rows) == ["radial", "random2d", "equispaced"]
    for kind in rows:
        res = make_mask(kind, (64, 80), acceleration=4, seed=3)
        stats = mask_stats(res.mask)
        assert float(rows[kind][1]) == pytest.approx(res.ratio, abs=5e-5)
        assert float(rows[kind][2]) == pytest.approx(res.acceleration, abs=5e-4)
        assert float(rows[kind][-1]) == pytest.approx(stats["psr_db"], abs=5e-3)
        saved = np.load(npy / f"{kind}.npy")
        np.testing.assert_array_equal(saved, res.mask)
    assert rows["random2d"][1] == "0.2500"
    assert rows["equispaced"][3:5] == [str(mask_stats(
        make_mask("equispaced", (64, 80), acceleration=4, seed=3).mask)["acs_lines"]), "lines"]
    img = matplotlib.image.imread(png)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert img.shape[0] == 660 and img.shape[1] == 960  # 3 columns x 3.2 in, 6.6 in, 100 dpi
    assert img[..., :3].std() > 0.1  # not blank
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks.png", "npy"]


def test_bad_kind_exits_2_with_one_line_and_no_output(tmp_path):
    png = tmp_path / "m.png"
    r = subprocess.run([sys.executable, "-m", "mri_unfold", "masks", "--kind", "radial",
                        "--kind", "spiral", "--shape", "32", "32", "--acceleration", "4",
                        "--output", str(png)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "mri-unfold: error: unknown mask kind 'spiral'; valid kinds: random, equispaced, magic, "
        "random2d, gaussian2d, radial, poisson"]
    assert not png.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,msg", [
    (["--kind", "radial", "--shape", "32", "32"], "give either acceleration"),
    (["--kind", "radial", "--kind", "radial", "--shape", "32", "32", "--ratio", "0.3"],
     "--kind radial given more than once"),
    (["--kind", "random2d", "--shape", "32", "32", "--acceleration", "0.5"],
     "acceleration must be a finite number >= 1"),
    (["--kind", "radial", "--shape", "32", "32", "--ratio", "0.3", "--output", "x.jpg"],
     "expected a .png file name"),
])
def test_errors_exit_2(argv, msg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["masks", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg in err
    assert list(tmp_path.iterdir()) == []
