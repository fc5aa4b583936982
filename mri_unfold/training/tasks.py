"""Measurement tasks: how a training batch becomes ``(y, op, target)``.

The training loop is the same for every model × operator × data set; the *task* is what
differs, chosen by ``operator.kind``:

* a fixed operator (``block_cs``, ``learned_block_cs``, ``single_coil``, ... — any kind of
  the operator registry, built by :func:`mri_unfold.operators.build_operator`) measures
  image targets: :class:`ImageTask`, ``y = op(x)``;
* ``kspace`` (alias ``fastmri``): the batch carries its own k-space, masks and coil maps
  (a :class:`~mri_unfold.data.SampleBatch`); :class:`KSpaceTask` builds one operator for the
  batch with :class:`~mri_unfold.operators.KSpaceOperatorFactory` — the same factory the
  evaluation and ``mri-unfold recon`` use — and trains on the complex training image,
  centre-cropped to the recon size.
"""
from __future__ import annotations

import torch

from ..data.samples import SampleBatch
from ..errors import UserError
from ..image_ops import center_crop
from ..operators import KSPACE_OPERATOR_KINDS, build_operator, fit_qinit

__all__ = ["Task", "ImageTask", "KSpaceTask", "build_task"]


class Task:
    """One run's measurement: :attr:`op` (an operator or a k-space operator factory) and the
    protocol's operator table :attr:`operator_cfg` (stored in checkpoints)."""

    def __init__(self, op, operator_cfg: dict):
        self.op = op
        self.operator_cfg = dict(operator_cfg)

    @property
    def complex_domain(self) -> bool:
        """Whether the networks reconstruct complex images."""
        return bool(self.op.complex_domain)

    def to(self, device) -> "Task":
        self.op = self.op.to(device)
        return self

    def prepare(self, batch, device=None, step: int = 0):  # pragma: no cover - abstract
        """``batch`` -> ``(y, op, target)`` on ``device`` (``step``: the optimizer step, for
        tasks that draw per-step randomness)."""
        raise NotImplementedError

    def loss_inputs(self, x: torch.Tensor, target: torch.Tensor, aux: dict):
        """``(x, target, aux)`` as the loss sees them (identity by default)."""
        return x, target, aux

    def operator_state(self) -> dict[str, torch.Tensor]:
        """Tensors that rebuild the operator (its ``state_dict``; none for a factory)."""
        if not isinstance(self.op, torch.nn.Module):
            return {}
        return {k: v.detach() for k, v in self.op.state_dict().items() if v is not None}


class ImageTask(Task):
    """A fixed operator measuring image targets ``(N, 1, H, W)``."""

    def prepare(self, batch, device=None, step: int = 0):
        """Image batch (tensor ``(N, [1,] H, W)`` or ``(x, ...)``) -> ``(y, op, x)``; complex
        operators get the image as complex64."""
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if device is not None:
            x = x.to(device, non_blocking=True)
        if self.op.complex_domain and not x.is_complex():
            x = x.to(torch.complex64)
        return self.op(x), self.op, x

    def check_item(self, item) -> None:
        """Refuse data the operator cannot measure: complex images for a real-domain
        operator (e.g. ``data.values = "complex"`` with ``operator.real_input = true``).

        Raises:
            UserError: naming both settings.
        """
        x = item[0] if isinstance(item, (list, tuple)) else item
        if torch.is_tensor(x) and x.is_complex() and not self.op.complex_domain:
            raise UserError(f"the data gives complex images but operator {type(self.op).__name__}"
                            " measures real ones; set operator.real_input = false (or take "
                            "magnitude data, e.g. data.values = \"magnitude\")")

    @property
    def needs_qinit(self) -> bool:
        """``operator.qinit = "compute"`` and no Qinit attached yet."""
        return (self.operator_cfg.get("qinit") == "compute"
                and getattr(self.op, "qinit", 1) is None)

    def compute_qinit(self, images: torch.Tensor) -> None:
        """Attach the least-squares ``Qinit`` fitted to ``(N, 1, P, P)`` training images."""
        fit_qinit(self.op, images)


class KSpaceTask(Task):
    """Batches of k-space samples that carry their own masks and coil maps."""

    def prepare(self, batch: SampleBatch, device=None, step: int = 0):
        """``SampleBatch`` -> ``(y (N, C, H, W), op, target (N, 1, h, w) complex64)``;
        non-Cartesian batches: ``y`` ``(N, C, K)`` density-weighted (the factory's
        ``measurements``) and a :class:`~mri_unfold.operators.NonCartesianFourier`."""
        if device is not None:
            batch = batch.to(device)
        if batch.image is None:
            raise UserError("k-space batch has no training image (needs fully sampled k-space)")
        op = self.op.for_batch(batch)
        return (self.op.measurements(batch), op,
                center_crop(batch.image, batch.crop).contiguous())

    def loss_inputs(self, x, target, aux):
        """Centre-crop ``x`` ``(N, 1, H, W)`` and ``aux["phases"]`` to ``target``'s size: the
        loss is computed on the complex image inside the evaluated region."""
        size = tuple(target.shape[-2:])
        if tuple(x.shape[-2:]) == size:
            return x, target, aux
        aux = dict(aux or {})
        if aux.get("phases"):
            aux["phases"] = [center_crop(p, size) for p in aux["phases"]]
        return center_crop(x, size), target, aux


def build_task(operator_cfg: dict, tensors: dict | None = None,
               image_shape: tuple[int, int] | None = None) -> Task:
    """The task of ``operator_cfg["kind"]`` (module doc).

    Args:
        tensors: a stored operator ``state_dict`` (resume) that rebuilds the exact operator.
        image_shape: the training images' ``(H, W)`` (generated masks need it).
    Raises:
        UserError: unknown kind (lists the registered ones) or unusable operator settings.
    """
    if operator_cfg.get("kind") in KSPACE_OPERATOR_KINDS:   # (a learned mask: its logits)
        return KSpaceTask(build_operator(operator_cfg, tensors=tensors, image_shape=image_shape),
                          operator_cfg)
    return ImageTask(build_operator(operator_cfg, tensors=tensors, image_shape=image_shape),
                     operator_cfg)
