"""Mask-design studies: which mask, at which acceleration, gives the best reconstruction for
a method on a data set (``mri-unfold study``, ``docs/mask_design.md``).

* :mod:`.protocol` — the study TOML file (strict keys) and its fingerprint;
* :mod:`.cells` — masks × methods as cells, and how shards share them;
* :mod:`.data` — training / validation / test images from the data-source registry;
* :mod:`.masks` — the study's masks, made and checked up front;
* :mod:`.evaluate` — reconstructing and scoring (both metric conventions);
* :mod:`.work` — what a cell does (classical with a λ sweep, a checkpoint, a network trained
  through the engine, learned masks);
* :mod:`.runner` — running a study or a shard, resumably, in a study folder;
* :mod:`.results` — rows, per-cell statistics, paired tests; :mod:`.plots` — figures;
  :mod:`.report` — ``summary.md`` and ``report.html``; :mod:`.finalize` — combining the
  cells (of one folder or of several shards) into the results.
"""
from .cells import Cell, StudyMask, parse_shard, plan_cells, plan_masks, shard_cells
from .finalize import finalize
from .protocol import fingerprint, load_study, validate_study
from .runner import prepare_study, run_study

__all__ = ["load_study", "validate_study", "fingerprint", "Cell", "StudyMask", "plan_masks",
           "plan_cells", "parse_shard", "shard_cells", "prepare_study", "run_study",
           "finalize"]
