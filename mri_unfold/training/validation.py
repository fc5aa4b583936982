"""What the training loop validates on, and which score keeps ``best.safetensors``.

* Supervised runs: the protocol's evaluation (``evaluation.protocol`` on the first of
  ``evaluation.sets``, :func:`mri_unfold.evaluation.evaluate_set`); the score is
  ``evaluation.metric`` (PSNR or SSIM, higher is better).
* Self-supervised runs (``training.objective = "ssdu"``): the held-out k-space loss on the
  k-space files of ``data.val`` (:func:`.self_supervised.heldout_validation`, no reference
  needed); the score is minus that loss.  PSNR/SSIM are logged beside it when those files
  carry references.  Without ``data.val`` an SSDU run falls back to the protocol's
  evaluation, if it has one.
"""
from __future__ import annotations

from ..evaluation import evaluate_set
from .data import build_dataset
from .self_supervised import SelfSupervisedTask, heldout_validation

__all__ = ["Validation"]


class Validation:
    """One run's validation (module doc).

    Args:
        cfg: the validated protocol.
        task: the run's task (a :class:`~.self_supervised.SelfSupervisedTask` for SSDU).
        device: where the model runs.
    """

    def __init__(self, cfg: dict, task, device):
        self.cfg, self.task, self.device = cfg, task, device
        ecfg = cfg["evaluation"]
        self.heldout = isinstance(task, SelfSupervisedTask) and bool(cfg["data"]["val"])
        self.protocol = ecfg["protocol"] != "none" and bool(ecfg["sets"])
        self._val_data = None

    @property
    def enabled(self) -> bool:
        """Whether there is anything to validate on."""
        return self.heldout or self.protocol

    def _data(self):
        if self._val_data is None:
            self._val_data = build_dataset(self.cfg["data"], self.cfg["seed"],
                                           with_references=False, path=self.cfg["data"]["val"])
        return self._val_data

    def run(self, model) -> tuple[dict, dict, float]:
        """``(result, metrics to log, score)`` (higher score = better)."""
        ecfg = self.cfg["evaluation"]
        if self.heldout:
            res = heldout_validation(model, self.task.op, self._data(), self.task.settings,
                                     self.cfg["seed"], self.device,
                                     max_images=ecfg["max_images"])
            logged = {k: res[k] for k in ("kspace_loss", "psnr", "ssim") if k in res}
            return res, logged, -res["kspace_loss"]
        res = evaluate_set(model, self.task.op, ecfg["sets"][0], ecfg["protocol"], self.device,
                           max_images=ecfg["max_images"], progress=False,
                           data_cfg=self.cfg["data"])
        logged = {k: res[k] for k in ("psnr", "ssim") if k in res}
        return res, logged, res[ecfg["metric"]]
