"""Evaluation protocols and the reproduction of the papers' published numbers.

* :mod:`.protocols` — the protocol registry and :func:`evaluate_set` (``mri-unfold eval``,
  validation during training);
* :mod:`.image_folder` — protocol ``mri`` (CS-MRI on image slices);
* :mod:`.fastmri` — protocol ``fastmri`` (per-volume metrics of k-space files);
* :mod:`.simulated` — protocol ``simulated_kspace`` (complex networks on simulated k-space
  of an image folder, e.g. brain_test);
* :mod:`.brain_cs` — the CS-MRI brain test protocol of the ISTA-Net+ release;
* :mod:`.reproduce` — ``python -m mri_unfold.evaluation.reproduce`` prints ours vs. published
  tables for the authors' released checkpoints.

The CS-NI natural-image protocol (``cs_ni``) is registered by the ``natural_cs`` plug-in.
"""
from .protocols import (evaluate_set, protocol_names, register_protocol, summary_table,
                        write_summary_csv)
from . import fastmri, image_folder, simulated  # noqa: E402,F401  (register the built-in protocols)

__all__ = ["evaluate_set", "protocol_names", "register_protocol", "summary_table",
           "write_summary_csv"]
