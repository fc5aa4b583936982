"""A sampling mask learned with the network on k-space data (multi-coil): LOUPE for k-space
sources, e.g. the ky–kz mask of 3-D scans trained on readout positions.

``operator.kind = "learned_kspace_mask"`` is a k-space operator kind: every batch of fully
sampled :class:`~mri_unfold.data.KSpaceSample` slices (their own coil maps) becomes one
operator, as with ``"kspace"`` (:class:`~mri_unfold.operators.KSpaceOperatorFactory`), but
the mask is one :class:`~mri_unfold.operators.LearnedMaskFourier` (logits, ACS, budget,
straight-through training steps — see its module) shared by every batch and trained with
the network:

* :class:`LearnedKSpaceMask` — the factory (an ``nn.Module``: its logits are saved in
  checkpoints and optimised): :meth:`~LearnedKSpaceMask.for_batch` gives
  :class:`LearnedMaskCoils` ``M F S`` with the batch's maps, :meth:`~LearnedKSpaceMask.measurements`
  ``M ⊙ k`` of the batch's fully sampled k-space; :meth:`~LearnedKSpaceMask.training_step`
  is the training loop's per-step hook; :attr:`~LearnedKSpaceMask.mask` the binarised mask
  that ``recon`` uses;
* :class:`LearnedMaskCoils` — ``Φ = M F S`` (``M F`` without maps): at a fixed (binarised or
  sampled) mask a linear operator with the exact adjoint ``S^H F^H M``.

Shapes: images ``(N, 1, H, W)`` complex, k-space ``(N, C, H, W)``; maps ``(N, C, H, W)``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import InvalidValue
from ..fft import fft2, ifft2
from .base import LinearOperator
from .learned_mask import LearnedMaskFourier
from .parts import CoilExpansion, complex_dtype
from .registry import OperatorExample, register_operator

__all__ = ["LearnedKSpaceMask", "LearnedMaskCoils"]


class LearnedMaskCoils(LinearOperator):
    """``Φ = M F S`` with the mask of ``learned`` (module doc).

    Args:
        learned: the :class:`LearnedMaskFourier` owning the mask (not copied).
        coil_maps: ``(N, C, H, W)`` / ``(C, H, W)`` complex, or ``None`` (single coil).
    """

    complex_domain = True

    def __init__(self, learned: LearnedMaskFourier, coil_maps=None):
        super().__init__()
        self.learned = learned
        self.coils = None if coil_maps is None else CoilExpansion(coil_maps)
        hw = tuple(int(d) for d in learned.acs.shape)
        c = 1 if self.coils is None else self.coils.num_coils
        self.domain_shape, self.range_shape = (1, *hw), (c, *hw)
        self.batch_size = None if self.coils is None else self.coils.batch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x)
        x = x.to(complex_dtype(x, "x"))
        coil = x if self.coils is None else x * self.coils.maps_for(x)
        return self.learned.masked(fft2(coil))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        self.check_range(y, "y")
        y = y.to(complex_dtype(y, "y"))
        imgs = ifft2(self.learned.masked(y))
        if self.coils is None:
            return imgs
        return (self.coils.maps_for(imgs).conj() * imgs).sum(dim=1, keepdim=True)


class LearnedKSpaceMask(nn.Module):
    """The learned-mask operator factory of k-space batches (module doc).

    Args:
        shape: k-space ``(H, W)``; ``ratio``, ``acs`` and the other keyword arguments as
            :class:`LearnedMaskFourier` (``dims = 2``: one logit per point).
    """

    real_input = False
    complex_domain = True

    def __init__(self, shape, ratio: float, **options):
        super().__init__()
        self.learned = LearnedMaskFourier(shape, ratio, **options)

    @property
    def mask(self) -> torch.Tensor:
        """The binarised bool ``(H, W)`` mask (centred layout)."""
        return self.learned.mask

    layout = "centered"

    def training_step(self, step: int):
        """The training loop's per-step hook (:meth:`LearnedMaskFourier.training_step`)."""
        return self.learned.training_step(step)

    def _check(self, batch) -> None:
        if batch.trajectory is not None:
            raise InvalidValue("a learned k-space mask needs Cartesian k-space")
        if tuple(batch.kspace.shape[-2:]) != tuple(self.learned.acs.shape):
            raise InvalidValue(f"the learned mask is {tuple(self.learned.acs.shape)}, the batch's "
                               f"k-space {tuple(batch.kspace.shape[-2:])}")
        if not bool((batch.mask == 1).all()):
            raise InvalidValue("a learned k-space mask measures fully sampled k-space: the data "
                               "are already undersampled (data.mask = \"none\")")

    def for_batch(self, batch, idx=None) -> LearnedMaskCoils:
        """``M F S`` with the maps of the batch (of its samples ``idx``)."""
        self._check(batch)
        maps = batch.coil_maps
        return LearnedMaskCoils(self.learned,
                                None if maps is None else (maps if idx is None else maps[idx]))

    def measurements(self, batch, idx=None) -> torch.Tensor:
        """``M ⊙ k`` ``(N, C, H, W)`` of the batch's fully sampled k-space."""
        self._check(batch)
        k = batch.kspace if idx is None else batch.kspace[idx]
        return self.learned.masked(k)


def _maps(seed: int) -> torch.Tensor:
    return torch.randn(2, 3, 8, 7, dtype=torch.complex128,
                       generator=torch.Generator().manual_seed(seed))


register_operator("learned_mask_coils", examples=(
    OperatorExample("binarised_multi_coil", lambda: LearnedMaskCoils(
        LearnedMaskFourier((8, 7), 0.4, seed=1, acs=(2, 2)), _maps(2))),
    OperatorExample("step_sample_multi_coil", lambda: LearnedMaskCoils(
        LearnedMaskFourier((8, 7), 0.5, seed=3).use_sample(4), _maps(5))),
    OperatorExample("single_coil", lambda: LearnedMaskCoils(
        LearnedMaskFourier((6, 9), 0.3, seed=6)), (1, 6, 9)),
))(LearnedMaskCoils)


def learned_kspace_mask_from_config(cfg: dict, tensors=None, image_shape=None
                                    ) -> LearnedKSpaceMask:
    """``operator.kind = "learned_kspace_mask"``: ``ratio``, ``acs`` (``[rows, columns]``;
    empty: ``center_fraction``), ``seed``, ``mask_prob_slope``, ``mask_slope_start``,
    ``mask_slope_end``, ``mask_anneal_steps``; the k-space size is the training data's
    (``image_shape``), or the stored ACS's when rebuilding from a checkpoint's ``tensors``.

    Raises:
        InvalidValue: no size, bad settings (:class:`LearnedMaskFourier`).
    """
    shape = image_shape
    if tensors is not None and "learned.acs" in tensors:
        shape = tuple(tensors["learned.acs"].shape)
    if not shape or len(shape) != 2:
        raise InvalidValue("operator.kind = 'learned_kspace_mask' needs the k-space size of "
                           "the data")
    acs = cfg.get("acs") or None
    op = LearnedKSpaceMask(tuple(int(s) for s in shape), cfg["ratio"], dims=2,
                           center_fraction=cfg.get("center_fraction") or None,
                           acs=None if acs is None else tuple(int(a) for a in acs),
                           seed=cfg["seed"], prob_slope=cfg["mask_prob_slope"],
                           slope_start=cfg["mask_slope_start"], slope_end=cfg["mask_slope_end"],
                           anneal_steps=cfg["mask_anneal_steps"])
    if tensors is not None:
        op.load_state_dict({k: v for k, v in tensors.items()
                            if k in ("learned.logits", "learned.acs")})
    return op


register_operator("learned_kspace_mask", from_config=learned_kspace_mask_from_config)
