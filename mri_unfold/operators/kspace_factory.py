"""The one operator factory for k-space data: per-batch masks and coil maps -> one operator.

Training batches, the ``fastmri`` evaluation and ``mri-unfold recon`` all turn a batch of
k-space samples (:class:`~mri_unfold.data.SampleBatch`: masks ``(N, 1, H, W)``, maps
``(N, C, H, W)`` or none) into its operator through :class:`KSpaceOperatorFactory`
(:func:`~mri_unfold.operators.kspace_operator`), so the three agree by construction.
Non-Cartesian batches (trajectories ``(N, K, 2)``, DCF ``(N, K)``) get a
:class:`~mri_unfold.operators.NonCartesianFourier`; :meth:`KSpaceOperatorFactory.measurements`
gives the batch's k-space in that operator's (density-weighted) range.  It is
also what a checkpoint of a k-space model stores as its operator: the model's image domain
(complex, or real with ``real_input``) and the k-space layout, not a fixed Φ.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .factory import kspace_operator
from .noncartesian import NonCartesianFourier, density_weights
from .registry import register_operator

__all__ = ["KSpaceOperatorFactory", "KSPACE_OPERATOR_KINDS", "IMAGE_DOMAINS"]

#: ``operator.kind`` values whose operator comes with the k-space data (``fastmri`` is the
#: name protocols and checkpoints have used since the first fastMRI support;
#: ``learned_kspace_mask`` learns the mask with the network, :mod:`.learned_kspace_mask`).
KSPACE_OPERATOR_KINDS = ("kspace", "fastmri", "learned_kspace_mask")


@dataclass(frozen=True)
class KSpaceOperatorFactory:
    """Builds ``SingleCoilFourier`` / ``MultiCoilFourier`` for batches of k-space samples.

    Attributes:
        layout: k-space layout of the data (``"centered"``, the fastMRI convention).
        real_input: the networks reconstruct real images (``SingleCoilFourier(real_input)``;
            single-coil only).

    Call: ``factory(mask, coil_maps=None)`` with per-sample masks ``(N, 1, H, W)`` /
    ``(N, H, W)`` and maps ``(N, C, H, W)`` -> one operator holding them all.
    """

    layout: str = "centered"
    real_input: bool = False

    @property
    def complex_domain(self) -> bool:
        """Whether the operators' image domain is complex (2 CNN channels)."""
        return not self.real_input

    def __call__(self, mask: torch.Tensor, coil_maps: torch.Tensor | None = None, *,
                 trajectory: torch.Tensor | None = None, dcf: torch.Tensor | None = None,
                 image_shape: tuple[int, int] | None = None):
        """The operator of per-sample ``mask`` (and ``coil_maps``); with ``trajectory``
        ``(N, K, 2)`` (radians) a :class:`~mri_unfold.operators.NonCartesianFourier`
        (``mask`` ``(N, 1, K)`` or ``(N, K)``, ``dcf`` ``(N, K)``, ``image_shape`` ``(H, W)``).
        Parameters equal across the batch are stored once (one NUFFT plan and Toeplitz
        kernel for the batch)."""
        if trajectory is not None:
            if image_shape is None:
                raise ValueError("a non-Cartesian batch needs image_shape (H, W)")
            m = None if mask is None else mask.reshape(mask.shape[0], -1)
            return NonCartesianFourier(_shared(trajectory), tuple(image_shape),
                                       None if coil_maps is None else _shared(coil_maps),
                                       dcf=None if dcf is None else _shared(dcf),
                                       mask=None if m is None or bool(m.all()) else _shared(m),
                                       real_input=self.real_input)
        return kspace_operator(mask, coil_maps, layout=self.layout, real_input=self.real_input)

    def for_batch(self, batch, idx=None):
        """The operator of a :class:`~mri_unfold.data.SampleBatch` (or of its samples
        ``idx``, a list of indices)."""
        def pick(t):
            return t if t is None or idx is None else t[idx]

        return self(pick(batch.mask), pick(batch.coil_maps), trajectory=pick(batch.trajectory),
                    dcf=pick(batch.dcf), image_shape=batch.image_shape)

    def measurements(self, batch, idx=None) -> torch.Tensor:
        """The batch's k-space in the range of :meth:`for_batch`'s operator: ``kspace`` as is
        for Cartesian data, density-weighted ``√(dcf ⊙ mask) ⊙ k`` ``(N, C, K)`` for
        non-Cartesian data (:class:`~mri_unfold.operators.NonCartesianFourier`)."""
        k = batch.kspace if idx is None else batch.kspace[idx]
        if batch.trajectory is None:
            return k
        pick = (lambda t: t) if idx is None else (lambda t: None if t is None else t[idx])
        w = density_weights(pick(batch.dcf), pick(batch.mask), k)
        return k if w is None else k * w.sqrt().unsqueeze(1)

    def to(self, device) -> "KSpaceOperatorFactory":
        """The factory holds no tensors: returns itself (operators follow their inputs)."""
        return self


def _shared(t: torch.Tensor) -> torch.Tensor:
    """``t`` ``(N, ...)``, or its first entry ``(1, ...)`` when all ``N`` are equal."""
    return t[:1] if t.shape[0] > 1 and bool((t == t[:1]).all()) else t


#: ``operator.image_domain`` of the k-space kinds: the networks' images.
IMAGE_DOMAINS = ("complex", "real")


def kspace_from_config(cfg: dict, tensors=None, image_shape=None) -> KSpaceOperatorFactory:
    """``operator.kind = "kspace"`` (or ``"fastmri"``): the operator comes with each batch of
    k-space samples (centred layout); ``operator.image_domain`` is ``"complex"`` (default) or
    ``"real"`` (real-valued images, single-coil: the CS-MRI setting of ISTA-Net+); nothing
    else is configured or stored.

    Raises:
        ValueError: an unknown image domain.
    """
    domain = cfg.get("image_domain", "complex")
    if domain not in IMAGE_DOMAINS:
        raise ValueError(f"operator.image_domain must be one of {', '.join(IMAGE_DOMAINS)}, "
                         f"got {domain!r}")
    return KSpaceOperatorFactory(real_input=domain == "real")


for _kind in KSPACE_OPERATOR_KINDS[:2]:
    register_operator(_kind, from_config=kspace_from_config)
