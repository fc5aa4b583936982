"""Every bundled model's card scores, re-measured from the bundled file (±0.01 dB).

The card's ``scores`` were written by ``python -m mri_unfold.training.zoo_export`` with
:func:`mri_unfold.evaluation.zoo_scores.measure_card_scores`; this test measures them again
the same way (50 ``brain_test`` slices read from ``../shared``) and compares.
"""
from __future__ import annotations

import pytest

from mri_unfold.evaluation.zoo_scores import measure_card_scores
from mri_unfold.models import zoo

NAMES = zoo.model_names()


def test_the_zoo_is_not_empty():
    assert "ista_net_plus_radial20" in NAMES


@pytest.mark.full
@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_card_scores_are_remeasured(shared, name):
    p = zoo.pretrained(name)
    got = measure_card_scores(p)
    card = p.card["scores"]
    assert set(got) == set(card), name
    for table, scores in card.items():
        assert got[table]["images"] == scores["images"] == 50, (name, table)
        for key, value in scores.items():
            if key.endswith("psnr"):
                assert got[table][key] == pytest.approx(value, abs=0.01), (name, table, key)
            elif key.endswith("ssim"):
                assert got[table][key] == pytest.approx(value, abs=1e-4), (name, table, key)
