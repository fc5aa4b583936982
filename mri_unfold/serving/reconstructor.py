"""The server's reconstruction: one network (or classical method), loaded once, shared by every
connection.

:meth:`Reconstructor.reconstruct` runs the slices of one completed slice group through
:func:`mri_unfold.reconstruct.reconstruct_raw_slices` — the function ``mri-unfold recon``
runs after reading a file (retrospective mask, ESPIRiT maps from the slice's own ACS,
normalisation, the network or method, crop to the recon matrix, scale back) — one slice per
forward pass, so a server's images are those of ``recon --batch-size 1`` bit for bit
(classical methods give the same images at any batch size; networks on a CPU only at the
same batch size, since oneDNN picks its kernels by batch size).

Reconstructions of concurrent connections run one at a time (a lock): the CPU threads or the
GPU serve one slice at a time, in the order slices complete, and no state is shared between
connections.  :meth:`Reconstructor.warm_up` runs a synthetic 2-coil slice through the whole
path once at start (library loading, oneDNN kernels, the compiled graph with ``--compile``).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.raw_samples import raw_sample
from ..data.simulate import birdcage_coil_maps
from ..errors import UserError
from ..fft import fft2
from ..reconstruct import MaskSpec, ReconResult, reconstruct_raw_slices
from .images import IMAGE_TYPES

__all__ = ["ReconSettings", "Reconstructor"]


@dataclass(frozen=True)
class ReconSettings:
    """How every connection's slices are reconstructed (``mri-unfold serve`` options).

    Attributes:
        mask: undersample retrospectively (as ``recon --mask/--mask-file``; generated masks
            are seeded by the stream's measurement ID where ``recon`` uses the file name);
            None keeps the scanner's sampling.
        espirit_crop: ESPIRiT eigenvalue crop.
        prewhiten: whiten the coils with the stream's noise scans.
        image_type: pixel type of the images sent (:data:`~mri_unfold.serving.images.IMAGE_TYPES`).
        send_zero_filled: also send the zero-filled (RSS) image of each slice (series 2).
    """

    mask: MaskSpec | None = None
    espirit_crop: float = 0.95
    prewhiten: bool = True
    image_type: str = "float32"
    send_zero_filled: bool = False

    def __post_init__(self):
        if self.image_type not in IMAGE_TYPES:
            raise UserError(f"image type must be one of {', '.join(IMAGE_TYPES)}, got "
                            f"{self.image_type!r}")
        if not 0.0 <= self.espirit_crop < 1.0:
            raise UserError(f"ESPIRiT crop must be in [0, 1), got {self.espirit_crop}")


class Reconstructor:
    """A network or classical method shared by a server's connections (module doc).

    Args:
        model: the network (eval mode, possibly wrapped by :func:`mri_unfold.fastpath.accelerate`)
            or None with ``method``.
        label: its name (bundled model, architecture or method), for logs and image series.
        method: a classical method of :data:`mri_unfold.reconstruct.METHODS` when ``model``
            is None.
        complex_model: whether the network reconstructs complex images (it must).
        settings: :class:`ReconSettings`.
        device: where the network runs.
    Raises:
        UserError: neither or both of ``model`` and ``method``; a real-image network.
    """

    def __init__(self, model: torch.nn.Module | None, label: str, *, method: str | None = None,
                 complex_model: bool = True, settings: ReconSettings | None = None,
                 device: str | torch.device = "cpu"):
        if (model is None) == (method is None):
            raise UserError("a server needs either a network or a classical method")
        if model is not None and not complex_model:
            raise UserError(f"{label} works on real-valued images; k-space streams need a "
                            "complex-domain network")
        self.model, self.label, self.method = model, label, method
        self.settings = settings or ReconSettings()
        self.device = device
        self._lock = threading.Lock()
        self.warm_up_s: float | None = None

    def reconstruct(self, samples, where: str | Path) -> ReconResult:
        """The :class:`~mri_unfold.reconstruct.ReconResult` of one slice group's samples (as
        read), one slice per forward pass, after the reconstructions already running.

        Raises:
            UserError naming ``where``: as :func:`~mri_unfold.reconstruct.reconstruct_raw_slices`
            (fully sampled data for a network without a mask, ESPIRiT failures ...).
        """
        with self._lock:
            return reconstruct_raw_slices(
                samples, where, self.model, method=self.method, mask=self.settings.mask,
                batch_size=1, device=self.device, progress=False,
                espirit_crop=self.settings.espirit_crop)

    def warm_up(self, matrix: tuple[int, int] = (128, 128), coils: int = 2) -> float:
        """Reconstruct one synthetic undersampled slice (a smooth object seen by ``coils``
        birdcage coils, every second line outside a 16-line centre left out) without a
        retrospective mask; returns the seconds it took (also in ``warm_up_s``)."""
        h, w = (int(v) for v in matrix)
        y, x = np.mgrid[-1:1:h * 1j, -1:1:w * 1j]
        obj = (np.exp(-(x ** 2 + y ** 2) * 4) * (1 + 0.2 * np.cos(6 * x))).astype(np.complex64)
        maps = birdcage_coil_maps(coils, (h, w))
        k = fft2(torch.from_numpy(maps * obj[None])).numpy()
        keep = np.zeros(w, bool)
        keep[::2] = True
        keep[w // 2 - 8:w // 2 + 8] = True
        k[:, :, ~keep] = 0
        sample = raw_sample(k, path="warm-up", index=0, fov_mm=(float(h), float(w), 1.0))
        start = time.perf_counter()
        with self._lock:
            reconstruct_raw_slices([sample], "warm-up", self.model, method=self.method,
                                   batch_size=1, device=self.device, progress=False,
                                   espirit_crop=self.settings.espirit_crop)
        self.warm_up_s = time.perf_counter() - start
        return self.warm_up_s
