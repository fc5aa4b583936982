"""The ``fastmri`` task: batches of fastMRI slices that carry their own masks and coil maps.

``operator.kind = "fastmri"`` (with ``data.kind = "fastmri"``, see
:mod:`mri_unfold.training.fastmri_data`).  For every batch
(:class:`~mri_unfold.training.fastmri_data.FastMRIBatch`) :meth:`FastMRITask.prepare` builds

* the operator: ``SingleCoilFourier(mask)`` (complex images, centred layout) for
  single-coil data, ``MultiCoilFourier(mask, coil_maps)`` with the batch's ESPIRiT maps for
  multi-coil data;
* ``y`` = the batch's masked, normalised k-space ``(N, C, H, W)``;
* the target = the complex coil-combined image of the fully sampled k-space,
  **centre-cropped to the recon size** ``(N, 1, h, w)`` complex64.

**Loss.**  :meth:`FastMRITask.loss_inputs` centre-crops the network output (and the
per-phase outputs) to the same recon size, so ``training.loss`` (``l1``, ``mse_sym``,
``per_phase``) is computed on the *complex* image inside the evaluated region.  The
fastMRI evaluation compares magnitudes (``|x|`` vs the RSS / ESC target) in the same crop;
since ``||a| − |b|| ≤ |a − b|`` the complex loss bounds the magnitude error pixel by pixel,
and it also fixes the phase the next data-consistency step sees.

``task.op`` — the operator held for the whole run — is only a *prototype*: a 1×1
complex ``SingleCoilFourier`` that tells the models (``materialize``) and
``mri-unfold recon`` (``complex_domain``) that the networks work on complex images; the
real operators are built per batch.
"""
from __future__ import annotations

import torch

from ..image_ops import center_crop
from ..operators import MultiCoilFourier, SingleCoilFourier
from .tasks import Task, register_task

__all__ = ["FastMRITask", "fastmri_task", "batch_operator"]


def batch_operator(mask: torch.Tensor, coil_maps: torch.Tensor | None) -> torch.nn.Module:
    """Operator of a batch: ``mask`` ``(N, 1, H, W)``, ``coil_maps`` ``(N, C, H, W)`` or None.

    Returns ``SingleCoilFourier(mask)`` (complex domain, centred layout) without maps, else
    ``MultiCoilFourier(mask, coil_maps)``; buffers live on ``mask``'s device.
    """
    if coil_maps is None:
        return SingleCoilFourier(mask, layout="centered")
    return MultiCoilFourier(mask, coil_maps, layout="centered")


class FastMRITask(Task):
    """Per-batch Fourier operators for fastMRI batches (module doc)."""

    def prepare(self, batch, device=None):
        """``FastMRIBatch`` -> ``(y (N, C, H, W), op, target (N, 1, h, w) complex64)``."""
        if device is not None:
            batch = batch.to(device)
        if batch.image is None:
            raise ValueError("fastMRI batch has no training image (fully sampled k-space)")
        op = batch_operator(batch.mask, batch.coil_maps)
        return batch.kspace, op, center_crop(batch.image, batch.crop).contiguous()

    def loss_inputs(self, x, target, aux):
        """Centre-crop ``x`` ``(N, 1, H, W)`` and ``aux["phases"]`` to ``target``'s size."""
        size = tuple(target.shape[-2:])
        if tuple(x.shape[-2:]) == size:
            return x, target, aux
        aux = dict(aux or {})
        if aux.get("phases"):
            aux["phases"] = [center_crop(p, size) for p in aux["phases"]]
        return center_crop(x, size), target, aux


@register_task("fastmri")
def fastmri_task(cfg: dict, tensors=None, image_shape=None) -> Task:
    """``operator.kind = "fastmri"``: see :class:`FastMRITask` (no operator settings)."""
    proto = SingleCoilFourier(torch.ones(1, 1), layout="centered")
    return FastMRITask(proto, cfg)
