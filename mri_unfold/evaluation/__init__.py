"""Evaluation protocols and the reproduction of the papers' published numbers.

* :mod:`mri_unfold.evaluation.brain_cs` — the CS-MRI brain test protocol (ISTA-Net+ / MADUN);
* :mod:`mri_unfold.evaluation.reproduce` — ``python -m mri_unfold.evaluation.reproduce``
  prints ours vs. published tables for the authors' released checkpoints.

The CS-NI natural-image protocol lives in :mod:`natural_cs.evaluate`.
"""
