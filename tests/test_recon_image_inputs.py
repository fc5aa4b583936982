"""``recon`` on image volumes as a new user runs it: classical methods on NIfTI volumes (no
network needed), the spiral simulation's gridding, signed volumes refused, and
``--keep-dtype`` keeping the input's ``scl_slope``/``scl_inter``."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from mri_unfold.cli import main
from mri_unfold.metrics import quality


def _phantom_volume(n: int = 48, slices: int = 2) -> np.ndarray:
    """Smooth disc-limited objects ``(n, n, slices)`` float32 in [0, 100]."""
    yy, xx = np.mgrid[:n, :n] / n
    vol = []
    for k in range(slices):
        img = np.exp(-((yy - 0.5) ** 2 + (xx - 0.45 - 0.02 * k) ** 2) / 0.06) * \
            (1 + 0.3 * np.cos(6 * xx + k))
        vol.append(img * (((yy - 0.5) ** 2 + (xx - 0.5) ** 2) < 0.16))
    return (100 * np.stack(vol, -1) / np.max(vol)).astype(np.float32)


def _save(path, vol, dtype=None, slope=None):
    img = nib.Nifti1Image(vol if dtype is None else vol.astype(dtype), np.eye(4))
    if slope is not None:
        img.header.set_slope_inter(slope, 0.0)
    nib.save(img, str(path))
    return path


def _run(args, capsys):
    code = main(["recon", *map(str, args), "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def _metric_row(text: str, method: str) -> list[float]:
    line = next(ln for ln in text.splitlines() if ln.startswith(method + " "))
    return [float(v) for v in line.split()[1:]]


def test_classical_methods_on_a_nifti_volume(tmp_path, capsys):
    vol = _save(tmp_path / "vol.nii.gz", _phantom_volume())
    ref = _phantom_volume().transpose(2, 0, 1)
    psnrs = {}
    for method in ("zero-filled", "l1-wavelet", "sense"):
        out = tmp_path / f"{method}.nii.gz"
        code, text, err = _run([vol, "--method", method, "--mask", "radial", "--acceleration",
                                "3", "--output", out], capsys)
        assert code == 0, err
        assert f"method {method}" in text and "on cpu" in text
        rec = np.moveaxis(nib.load(str(out)).get_fdata(), -1, 0)
        psnrs[method] = quality(ref, rec)["psnr"]
        assert _metric_row(text, method)[0] == pytest.approx(psnrs[method], abs=0.01)
    assert psnrs["l1-wavelet"] > psnrs["zero-filled"] + 1
    # without --model or --method: zero-filled, as for k-space inputs
    code, text, err = _run([vol, "--mask", "radial", "--acceleration", "3", "--output",
                            tmp_path / "default.nii.gz"], capsys)
    assert code == 0 and "method zero-filled" in text, err


def test_fully_sampled_spiral_gridding_of_a_volume(tmp_path, capsys):
    """The spiral simulation's zero-filled image (gridding with the Pipe–Menon DCF) of fully
    sampled spiral k-space is the volume (it was a hazy 17 dB image)."""
    vol = _save(tmp_path / "vol.nii.gz", _phantom_volume(64, 1))
    code, text, err = _run([vol, "--method", "zero-filled", "--trajectory", "spiral",
                            "--acceleration", "1", "--output", tmp_path / "sp.nii.gz"], capsys)
    assert code == 0, err
    assert "spiral samples hitting" in text and "sampled fraction 1.000" not in text
    assert _metric_row(text, "zero-filled")[0] >= 35


def test_signed_volumes_are_refused_and_undershoot_is_not(tmp_path, capsys):
    signed = _phantom_volume() / 50 - 1                     # a -1 ... 1 map
    vol = _save(tmp_path / "tmap.nii.gz", (signed * 7.9).astype(np.float32))
    out = tmp_path / "o.nii.gz"
    code, _, err = _run([vol, "--mask", "radial", "--acceleration", "3", "--output", out],
                        capsys)
    assert code == 2 and not out.exists()
    assert err.strip() == (f"mri-unfold: error: {vol}: the volume has negative values (-7.9 to "
                           "7.9): a signed map (statistics, phase, a difference), not a "
                           "magnitude image; reconstructing it would write |value| and lose "
                           "the sign")
    under = _phantom_volume()
    under[0, 0, 0] = -0.5                                   # 0.5 % of the peak: undershoot
    vol = _save(tmp_path / "undershoot.nii.gz", under)
    code, _, err = _run([vol, "--mask", "radial", "--acceleration", "3", "--output", out], capsys)
    assert code == 0, err


def test_keep_dtype_keeps_the_scale_factor(tmp_path, capsys):
    vol = _phantom_volume() / 10                             # 0 ... 10 in 0.1 steps
    vol = np.round(vol * 10) / 10
    src = _save(tmp_path / "scaled.nii.gz", np.round(vol / 0.1), np.int16, slope=0.1)
    assert nib.load(str(src)).dataobj.slope == pytest.approx(0.1)
    out = tmp_path / "kept.nii.gz"
    code, text, err = _run([src, "--method", "zero-filled", "--mask", "radial", "--acceleration",
                            "2", "--keep-dtype", "--output", out], capsys)
    assert code == 0 and "int16 like the input" in text, err
    img = nib.load(str(out))
    assert img.get_data_dtype() == np.int16
    assert img.dataobj.slope == pytest.approx(0.1) and img.dataobj.inter == 0
    raw = np.asarray(img.dataobj.get_unscaled())
    values = img.get_fdata()
    assert np.allclose(values, raw * 0.1, atol=1e-6)
    flt = tmp_path / "float.nii.gz"
    assert _run([src, "--method", "zero-filled", "--mask", "radial", "--acceleration", "2",
                 "--output", flt], capsys)[0] == 0
    # the stored values are the float result rounded to the 0.1 steps (not to 1)
    assert np.abs(values - nib.load(str(flt)).get_fdata()).max() <= 0.05 + 1e-6
    assert len(np.unique(np.round(values % 1, 1))) > 5
