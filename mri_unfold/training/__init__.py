"""Training engine: protocols, the training loop, measurement tasks, logs, resumable state.

* :func:`load_protocol` — TOML experiment file -> validated dict (:mod:`.config`);
* :func:`train` / :class:`Trainer` — the one loop for every model × operator × data set
  (:mod:`.loop`);
* :func:`build_task` — how a batch becomes ``(y, op, target)`` (:mod:`.tasks`);
* :mod:`.state` — the resumable training state.

Model checkpoints live in :mod:`mri_unfold.checkpoints` and evaluation protocols in
:mod:`mri_unfold.evaluation` (both below this package; re-exported here for convenience).
"""
from ..checkpoints import load_checkpoint, load_model, save_checkpoint
from ..evaluation import evaluate_set
from .config import load_protocol, validate_protocol
from .loop import Trainer, train
from .tasks import Task, build_task

__all__ = ["load_protocol", "validate_protocol", "train", "Trainer", "load_checkpoint",
           "load_model", "save_checkpoint", "Task", "build_task", "evaluate_set"]
