"""The sampling pattern of stored k-space, measured from the data itself.

Raw data say what was acquired by which samples are non-zero: an unacquired phase-encode
line, a zero-filled partial-Fourier region or an asymmetric echo are exact zeros in every
coil.  :func:`measured_mask` turns that into the ``(H, W)`` 0/1 mask of a
:class:`~mri_unfold.data.KSpaceSample` and :func:`sampling_pattern` summarises it
(acceleration, fully sampled centre) for ``mri-unfold info`` and the readers' metadata.

Layout: k-space ``(C, H, W)`` centred, ``H`` the readout (frequency-encoding) axis, ``W``
the phase-encoding axis — the fastMRI convention, in which 1-D Cartesian masks select
columns.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from .espirit import acs_width
from .fastmri_slices import num_low_frequencies_of

__all__ = ["measured_mask", "SamplingPattern", "sampling_pattern"]


def measured_mask(kspace: torch.Tensor) -> torch.Tensor:
    """The ``(H, W)`` float32 0/1 mask of the samples that hold data in any coil.

    When the sampled points form a product of sampled rows and sampled columns (Cartesian
    lines, possibly with a zero-filled asymmetric echo) the mask is exactly that product;
    otherwise (a 2-D pattern) it is the point-wise pattern.

    Args:
        kspace: ``(C, H, W)`` complex tensor.
    """
    sampled = (kspace != 0).any(dim=0)
    rows, cols = sampled.any(dim=1), sampled.any(dim=0)
    separable = rows[:, None] & cols[None, :]
    return (separable if bool((separable == sampled).all()) else sampled).to(torch.float32)


@dataclass(frozen=True)
class SamplingPattern:
    """Summary of a ``(H, W)`` mask.

    Attributes:
        kind: ``"fully sampled"``, ``"1-D lines"`` (whole phase-encode columns) or ``"2-D"``.
        acceleration: ``H * W / sampled points`` (inf for an empty mask).
        sampled_fraction: sampled points / ``H * W``.
        sampled_lines: phase-encode columns holding any sample, of ``lines``.
        lines: ``W``.
        acs_lines: width (columns) of the contiguous sampled block around the centre column.
        acs_square: side of the largest fully sampled centred square (ESPIRiT's
            calibration region).
        readout_samples: rows holding any sample (less than ``H`` for an asymmetric echo).
    """

    kind: str
    acceleration: float
    sampled_fraction: float
    sampled_lines: int
    lines: int
    acs_lines: int
    acs_square: int
    readout_samples: int

    def as_dict(self) -> dict:
        return asdict(self)


def sampling_pattern(mask) -> SamplingPattern:
    """Measure a ``(H, W)`` 0/1 mask (numpy or tensor; see :class:`SamplingPattern`)."""
    m = np.asarray(torch.as_tensor(mask).detach().cpu()) != 0
    if m.ndim != 2:
        raise ValueError(f"sampling_pattern expects an (H, W) mask, got shape {m.shape}")
    h, w = m.shape
    rows, cols = m.any(axis=1), m.any(axis=0)
    total = int(m.sum())
    if total == h * w:
        kind = "fully sampled"
    elif np.array_equal(m, rows[:, None] & cols[None, :]):
        kind = "1-D lines"
    else:
        kind = "2-D"
    return SamplingPattern(
        kind=kind, acceleration=float(h * w / total) if total else float("inf"),
        sampled_fraction=total / (h * w), sampled_lines=int(cols.sum()), lines=w,
        acs_lines=num_low_frequencies_of(m[h // 2] if rows[h // 2] else cols),
        acs_square=acs_width(m), readout_samples=int(rows.sum()))
