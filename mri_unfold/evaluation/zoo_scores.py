"""The scores on a zoo model's card, measured the one way the card and its test share.

* ``cs_mri_real`` models (real-valued CS-MRI, radial): the ISTA-Net+ release's brain test
  (:func:`.brain_cs.evaluate_brain`: 50 ``brain_test`` PNGs, PSNR on the 255 scale) with the
  **authors'** mask ``masks/radial_<pct>.mat`` of the card's ratio — read from
  ``../shared`` at evaluation time only — and, for reference, with the network's own
  (training) mask; zero-filled ``Re Φ^H y`` alongside.
* ``kspace_complex`` models: evaluation protocol ``simulated_kspace``
  (:mod:`.simulated`) on ``brain_test`` with the card's coils / mask / acceleration.

:func:`measure_card_scores` returns the ``scores`` table of a card; the exporter writes it
and ``tests/test_zoo_scores.py`` re-measures it to ±0.01 dB.
"""
from __future__ import annotations

import numpy as np
import torch

from ..models.zoo import Pretrained
from ..operators import SingleCoilFourier
from ..shared_data import shared_root
from .brain_cs import evaluate_brain, radial_mask_operator
from .protocols import evaluate_set

__all__ = ["BRAIN_SET", "authors_mask_path", "measure_card_scores"]

#: The test set of every card score (inside ``../shared``).
BRAIN_SET = "data/mri/brain_test"


def authors_mask_path(ratio: float):
    """``../shared/data/mri/masks/radial_<pct>.mat`` for a ratio of 0.1 … 0.5."""
    return shared_root() / "data" / "mri" / "masks" / f"radial_{round(ratio * 100)}.mat"


class _ZeroFilled(torch.nn.Module):
    """``Re Φ^H y`` as a model (the baseline row of the brain test)."""

    def forward(self, y, op):
        return op.adjoint(y)


def _brain_real(p: Pretrained, device, limit) -> dict:
    folder = shared_root() / BRAIN_SET
    authors = radial_mask_operator(authors_mask_path(p.card["ratio"]))
    res = evaluate_brain(p.model, authors, folder, device=device, progress=False, limit=limit)
    own = p.operator
    if not (isinstance(own, SingleCoilFourier) and own.real_input):
        raise ValueError(f"{p.card['name']}: a cs_mri_real card needs a real-input "
                         f"SingleCoilFourier operator, got {type(own).__name__}")
    res_own = evaluate_brain(p.model, own, folder, device=device, progress=False, limit=limit)
    zf = evaluate_brain(_ZeroFilled(), authors, folder, device=device, progress=False,
                        limit=limit)
    n = len(res["images"])
    return {"brain_test": {"protocol": f"ISTA-Net+ brain test, authors' radial_"
                                       f"{round(p.card['ratio'] * 100)}.mat, PSNR on the 255 "
                                       "scale", "images": n,
                           "psnr": res["psnr"], "ssim": res["ssim"],
                           "zero_filled_psnr": zf["psnr"], "zero_filled_ssim": zf["ssim"]},
            "brain_test_own_mask": {"protocol": "the same with the network's own training "
                                                "mask", "images": n,
                                    "psnr": res_own["psnr"], "ssim": res_own["ssim"]}}


def _brain_kspace(p: Pretrained, device, limit) -> dict:
    data = dict(p.card["data"], kind="simulated_kspace")
    res = evaluate_set(p.model, p.operator, shared_root() / BRAIN_SET, "simulated_kspace",
                       device=device, max_images=limit or 0, progress=False, data_cfg=data)
    rows = res["rows"]
    trajectory = data.get("trajectory", "cartesian")
    sampling = (f"{trajectory} trajectory {data['acceleration']:g}x below Nyquist"
                if trajectory != "cartesian" else
                f"{data['mask']} mask {data['acceleration']:g}x")
    return {"brain_test": {"protocol": f"simulated_kspace: brain_test slices, smooth phase, "
                                       f"{data['coils']} birdcage coil(s), {sampling} "
                                       "(magnitude PSNR, per-slice data range)",
                           "images": len(rows),
                           "psnr": res["psnr"], "ssim": res["ssim"],
                           "zero_filled_psnr": float(np.mean([r["zf_psnr"] for r in rows])),
                           "zero_filled_ssim": float(np.mean([r["zf_ssim"] for r in rows]))}}


def measure_card_scores(p: Pretrained, device: str | torch.device = "cpu",
                        limit: int | None = None) -> dict:
    """The ``scores`` table of ``p``'s card, measured now (``limit``: first N slices)."""
    if p.card["task"] == "cs_mri_real":
        return _brain_real(p, device, limit)
    return _brain_kspace(p, device, limit)
