"""Typed k-space samples: what every MRI data source and transform produces.

A :class:`KSpaceSample` holds one 2-D slice:

* ``kspace`` — ``(C, H, W)`` complex64 tensor, centred layout (DC at ``(H//2, W//2)``, the
  fastMRI / :mod:`mri_unfold.fft` convention); ``C == 1`` for single-coil data.  Fully
  sampled when read from a fully sampled file, masked after
  :class:`~mri_unfold.data.transforms.ApplyMask`.
* ``mask`` — ``(H, W)`` float32 0/1 tensor in the same layout (all ones = fully sampled).
* ``target`` — ``(h, w)`` float32 magnitude image (fastMRI ``reconstruction_esc`` /
  ``reconstruction_rss``, already cropped to ``metadata.crop_size``) or ``None``.
* ``coil_maps`` — ``(C, H, W)`` complex64 sensitivities or ``None``.
* ``metadata`` — :class:`SampleMetadata`.
* ``image`` — ``(1, H, W)`` complex64 training target or ``None``: the coil-combined image of
  the fully sampled k-space in the same intensity scale as ``kspace`` (the image domain the
  networks reconstruct in; see :class:`~mri_unfold.data.transforms.AttachTrainingImage`).

This is the project's one sample type for k-space data: every k-space data source, the
training engine and the reconstruction pipeline use it.  :func:`collate_samples` (the one
collate) stacks samples of equal shapes into a :class:`SampleBatch` whose tensors have the
layouts the operators expect (:func:`mri_unfold.operators.kspace_operator`: k-space
``(N, C, H, W)``, per-sample masks ``(N, 1, H, W)`` and maps ``(N, C, H, W)``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from ..errors import UserError


@dataclass
class SampleMetadata:
    """Where a slice came from and how it was transformed.

    Attributes:
        fname: file name (no directory) — also the source of the per-volume mask seed.
        slice: slice index within the volume.
        max: the volume's target maximum (fastMRI attribute ``max``) or ``None``;
            divided by ``scale`` after normalisation.
        acquisition: fastMRI ``acquisition`` (e.g. ``"CORPD_FBK"``, ``"AXT2"``) or ``None``.
        crop_size: ``(h, w)`` size to centre-crop reconstructions to (target size / recon
            size from the ISMRMRD header).
        num_low_frequencies: width (columns) of the fully sampled centre, or ``None``.
        scale: the k-space and target were divided by this (1.0 = not normalised).
        norm: fastMRI attribute ``norm`` (k-space norm of the volume) or ``None``.
        patient_id: fastMRI attribute ``patient_id`` or ``None``.
        undersampled: True if the file's k-space was already undersampled (it carried a
            ``mask`` dataset) or a mask has been applied.
        mask_seed: the seed the mask was drawn with (``None`` for file or fixed masks).
        fov_mm: field of view ``(x, y[, z])`` in mm of the encoded image, when the file says.
        voxel_size_mm: voxel size ``(x, y[, z])`` in mm, when known.
        trajectory_type: ``"cartesian"``, ``"radial"``, ``"spiral"``, ``"other"``.
        extras: any other attributes (encoding/recon sizes, padding, an ``affine`` (4, 4)
            for NIfTI output, ...).
    """

    fname: str
    slice: int
    max: float | None = None
    acquisition: str | None = None
    crop_size: tuple[int, int] | None = None
    num_low_frequencies: int | None = None
    scale: float = 1.0
    norm: float | None = None
    patient_id: str | None = None
    undersampled: bool = False
    mask_seed: int | None = None
    fov_mm: tuple[float, ...] | None = None
    voxel_size_mm: tuple[float, ...] | None = None
    trajectory_type: str = "cartesian"
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class KSpaceSample:
    """One slice of (possibly masked) k-space with its mask, target and coil maps.

    Cartesian (``trajectory is None``): ``kspace`` ``(C, H, W)`` complex64; ``mask``
    ``(H, W)`` float32 0/1; ``coil_maps`` ``(C, H, W)`` complex64 or ``None``; ``image``
    ``(1, H, W)`` complex64 or ``None``; ``target`` ``(h, w)`` float32 or ``None``.

    Non-Cartesian (``trajectory`` given): ``kspace`` ``(C, K)`` complex64 at the ``K``
    trajectory points ``trajectory`` ``(K, 2)`` float32 (units of the NUFFT operator);
    ``mask`` ``(K,)`` 0/1 (the points kept by a retrospective undersampling); ``dcf``
    ``(K,)`` float32 density compensation or ``None``; ``image_shape`` ``(H, W)`` the image
    matrix (required); ``coil_maps`` ``(C, H, W)``, ``image`` ``(1, H, W)``.
    """

    kspace: torch.Tensor
    mask: torch.Tensor
    target: torch.Tensor | None
    coil_maps: torch.Tensor | None
    metadata: SampleMetadata
    image: torch.Tensor | None = None
    trajectory: torch.Tensor | None = None
    dcf: torch.Tensor | None = None
    image_shape: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        k, m = self.kspace, self.mask
        cartesian = self.trajectory is None
        ndim, layout = (3, "(C, H, W)") if cartesian else (2, "(C, K)")
        if not (torch.is_tensor(k) and k.ndim == ndim and k.is_complex()):
            raise ValueError(f"kspace must be a complex {layout} tensor, got "
                             f"{getattr(k, 'dtype', type(k).__name__)} "
                             f"{tuple(getattr(k, 'shape', ()))}")
        sampled = tuple(k.shape[1:])
        if not (torch.is_tensor(m) and tuple(m.shape) == sampled):
            raise ValueError(f"mask must be a {sampled} tensor matching the k-space, got "
                             f"{tuple(getattr(m, 'shape', ()))}")
        if cartesian:
            self.image_shape = tuple(int(s) for s in k.shape[-2:])
        else:
            self._check_noncartesian()
        hw = tuple(self.image_shape)
        if self.coil_maps is not None and tuple(self.coil_maps.shape) != (k.shape[0], *hw):
            raise ValueError(f"coil_maps shape {tuple(self.coil_maps.shape)} does not match "
                             f"the k-space coils and image size {(k.shape[0], *hw)}")
        if self.image is not None and tuple(self.image.shape) != (1, *hw):
            raise ValueError(f"image shape {tuple(self.image.shape)} does not match the k-space "
                             f"image size {(1, *hw)}")

    def _check_noncartesian(self) -> None:
        npts = self.kspace.shape[-1]
        t = self.trajectory
        if not (torch.is_tensor(t) and t.ndim == 2 and t.shape[0] == npts and t.shape[1] in (2, 3)):
            raise ValueError(f"trajectory must be a ({npts}, 2) tensor (one coordinate row per "
                             f"k-space sample), got {tuple(getattr(t, 'shape', ()))}")
        if self.dcf is not None and tuple(self.dcf.shape) != (npts,):
            raise ValueError(f"dcf must have shape ({npts},), got {tuple(self.dcf.shape)}")
        if self.image_shape is None or len(self.image_shape) != 2:
            raise ValueError("a non-Cartesian sample needs image_shape (H, W)")
        self.image_shape = tuple(int(s) for s in self.image_shape)

    @property
    def is_cartesian(self) -> bool:
        return self.trajectory is None

    @property
    def num_coils(self) -> int:
        return int(self.kspace.shape[0])

    @property
    def crop(self) -> tuple[int, int]:
        """Size ``(h, w)`` reconstructions are cropped to: ``metadata.crop_size`` clamped to
        the k-space size (the k-space size when unknown)."""
        h, w = self.image_shape
        c = self.metadata.crop_size or (h, w)
        return min(int(c[0]), h), min(int(c[1]), w)

    @property
    def scale(self) -> float:
        """The normalisation factor the k-space was divided by (``metadata.scale``)."""
        return float(self.metadata.scale)

    @property
    def where(self) -> str:
        """``"<file> slice <k>"``, for error messages."""
        return f"{self.metadata.fname} slice {self.metadata.slice}"

    def replace(self, **changes) -> "KSpaceSample":
        """A copy with some fields replaced (``metadata`` is copied, never shared)."""
        meta = changes.pop("metadata", None)
        if meta is None:
            meta = dataclasses.replace(self.metadata, extras=dict(self.metadata.extras))
        return dataclasses.replace(self, metadata=meta, **changes)


@dataclass
class SampleBatch:
    """Samples stacked along a batch dimension (see :func:`collate_samples`).

    Shapes: ``kspace`` ``(N, C, H, W)`` complex64; ``mask`` ``(N, 1, H, W)`` float32;
    ``target`` ``(N, 1, h, w)`` float32 or ``None``; ``coil_maps`` ``(N, C, H, W)`` or
    ``None``; ``image`` ``(N, 1, H, W)`` complex64 or ``None``; ``metadata`` a list of ``N``
    :class:`SampleMetadata`.  All samples share one crop size :attr:`crop`.
    Non-Cartesian: ``kspace`` ``(N, C, K)``, ``mask`` ``(N, 1, K)``, ``trajectory``
    ``(N, K, 2)``, ``dcf`` ``(N, K)`` or ``None``, one ``image_shape`` ``(H, W)``.
    """

    kspace: torch.Tensor
    mask: torch.Tensor
    target: torch.Tensor | None
    coil_maps: torch.Tensor | None
    metadata: list[SampleMetadata]
    image: torch.Tensor | None = None
    crop: tuple[int, int] | None = None
    trajectory: torch.Tensor | None = None
    dcf: torch.Tensor | None = None
    image_shape: tuple[int, int] | None = None

    def __len__(self) -> int:
        return int(self.kspace.shape[0])

    @property
    def scale(self) -> torch.Tensor:
        """``(N,)`` float64 normalisation factors (``metadata.scale``)."""
        return torch.tensor([m.scale for m in self.metadata], dtype=torch.float64)

    @property
    def names(self) -> list[str]:
        """``"<file>[<slice>]"`` per sample."""
        return [f"{m.fname}[{m.slice}]" for m in self.metadata]

    def select(self, idx) -> "SampleBatch":
        """The samples ``idx`` (a list of indices, repeats allowed) as a new batch."""
        ix = torch.as_tensor(list(idx), dtype=torch.long)

        def pick(t):
            return None if t is None else t[ix.to(t.device)]

        return dataclasses.replace(
            self, kspace=pick(self.kspace), mask=pick(self.mask), target=pick(self.target),
            coil_maps=pick(self.coil_maps), image=pick(self.image),
            trajectory=pick(self.trajectory), dcf=pick(self.dcf),
            metadata=[self.metadata[i] for i in ix.tolist()])

    def to(self, device) -> "SampleBatch":
        """Move all tensors to ``device`` (non-blocking where possible)."""
        mv = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return dataclasses.replace(self, kspace=mv(self.kspace), mask=mv(self.mask),
                                   target=mv(self.target), coil_maps=mv(self.coil_maps),
                                   image=mv(self.image), trajectory=mv(self.trajectory),
                                   dcf=mv(self.dcf))


class CollateError(UserError, ValueError):
    """Samples that cannot share a batch (different sizes, or fields missing in some)."""


def _stack_optional(samples: Sequence[KSpaceSample], name: str):
    values = [getattr(s, name) for s in samples]
    missing = sum(v is None for v in values)
    if missing == len(values):
        return None
    if missing:
        raise CollateError(f"collate_samples: {name} is None for some samples but not others")
    return torch.stack(values)


def collate_samples(samples: Sequence[KSpaceSample]) -> SampleBatch:
    """The one collate: stack samples of identical shapes (a ``DataLoader`` ``collate_fn``).

    Raises:
        CollateError (a ``UserError`` and ``ValueError``): empty list, different k-space
            shapes or crop sizes (naming the samples), or a field present in some samples
            and ``None`` in others.
    """
    if not samples:
        raise CollateError("collate_samples: no samples")
    if len({(tuple(s.kspace.shape), s.crop, s.image_shape, s.is_cartesian)
            for s in samples}) > 1:
        desc = ", ".join(f"{s.metadata.fname}[{s.metadata.slice}] k-space "
                         f"{tuple(s.kspace.shape)} crop {s.crop}" for s in samples[:4])
        raise CollateError(f"collate_samples: k-space shapes differ: slices of different sizes "
                           f"cannot share a batch ({desc}); crop them to one size "
                           "(CropToRecon, data.crop_to_recon = true) or use a batch size of 1 "
                           "(training.batch_size = 1)")
    target = _stack_optional(samples, "target")
    return SampleBatch(
        kspace=torch.stack([s.kspace for s in samples]),
        mask=torch.stack([s.mask for s in samples]).unsqueeze(1),
        target=None if target is None else target.unsqueeze(1),
        coil_maps=_stack_optional(samples, "coil_maps"),
        metadata=[s.metadata for s in samples],
        image=_stack_optional(samples, "image"),
        crop=samples[0].crop,
        trajectory=_stack_optional(samples, "trajectory"),
        dcf=_stack_optional(samples, "dcf"),
        image_shape=samples[0].image_shape,
    )
