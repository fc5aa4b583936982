"""mri-unfold compare: shared brain slice + the authors' radial_20 mask -> PNG + table."""
from __future__ import annotations

import matplotlib.image as mpimg

from mri_unfold.cli import main


def test_compare_on_brain_test_slice(shared, tmp_path, capsys):
    img = shared / "data" / "mri" / "brain_test" / "brain_test_01.png"
    mask = shared / "data" / "mri" / "masks" / "radial_20.mat"
    out = tmp_path / "cmp.png"
    assert main(["compare", str(img), "--mask-file", str(mask), "--mask-layout", "unshifted",
                 "--baseline", "zero-filled", "--baseline", "l1-wavelet",
                 "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "20.2% sampled" in text
    rows = {ln.split()[0]: float(ln.split()[1]) for ln in text.splitlines()
            if ln.startswith(("zero-filled", "l1-wavelet"))}
    assert abs(rows["zero-filled"] - 25.94) < 0.05  # |F^H B y| vs the 8-bit slice, range 1
    assert rows["l1-wavelet"] > rows["zero-filled"] + 1.0
    png = mpimg.imread(out)
    assert png.shape[:2] == (640, 900) and png[..., :3].std() > 0.1


def test_compare_bad_output_suffix(tmp_path, capsys):
    assert main(["compare", "x.png", "--mask", "radial", "--acceleration", "5",
                 "--output", str(tmp_path / "a.jpg")]) == 2
    assert "must end with .png" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
