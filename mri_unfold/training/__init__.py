"""Training engine: protocols, the training loop, checkpoints, evaluation, logs.

* :func:`load_protocol` — TOML experiment file -> validated dict (:mod:`.config`);
* :func:`train` — the one loop for every model × operator × data set (:mod:`.loop`);
* :func:`save_checkpoint` / :func:`load_checkpoint` / :func:`load_model` — our checkpoint
  format (:mod:`.checkpoint`);
* :func:`register_task` — plug in a new measurement task kind (:mod:`.tasks`);
* :func:`evaluate_set` — CS-NI / CS-MRI evaluation of a folder (:mod:`.evaluate`).
"""
from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .config import load_protocol, validate_protocol
from .tasks import Task, build_task, register_task

__all__ = ["load_protocol", "validate_protocol", "train", "Trainer", "load_checkpoint",
           "load_model", "save_checkpoint", "Task", "build_task", "register_task",
           "evaluate_set"]


def __getattr__(name):  # lazy: the loop pulls in models/losses/data
    if name in ("train", "Trainer"):
        from . import loop

        return getattr(loop, name)
    if name == "evaluate_set":
        from .evaluate import evaluate_set

        return evaluate_set
    raise AttributeError(name)
