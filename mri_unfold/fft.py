"""The project's one FFT convention.

All transforms are **orthonormal** (``norm="ortho"``, so ``F^H F = I``) and act on the
last two dimensions.  Two layouts of k-space exist:

* ``"centered"`` (default, fastMRI convention): the image centre and the k-space DC
  sample sit at index ``(H // 2, W // 2)``; implemented as
  ``fftshift(fft2(ifftshift(x)))``, exactly ``fastmri.fft2c``.
* ``"unshifted"``: DC at index ``[0, 0]`` (plain ``numpy.fft.fft2(x, norm="ortho")``,
  the layout of the radial masks of the CS-MRI papers).

Shapes: any ``(..., H, W)`` complex tensor in, same shape/dtype out.  Real input is
promoted to the matching complex dtype.
"""
from __future__ import annotations

import torch

LAYOUTS = ("centered", "unshifted")


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def _transform(t: torch.Tensor, layout: str, dft) -> torch.Tensor:
    """``dft`` (``torch.fft.fft2`` or ``ifft2``), orthonormal, in ``layout``: centred is
    ``fftshift(dft(ifftshift(t)))`` over the last two dims."""
    _check_layout(layout)
    if layout == "unshifted":
        return dft(t, norm="ortho")
    return torch.fft.fftshift(dft(torch.fft.ifftshift(t, dim=(-2, -1)), norm="ortho"),
                              dim=(-2, -1))


def fft2(x: torch.Tensor, layout: str = "centered") -> torch.Tensor:
    """Orthonormal 2-D DFT over the last two dims in the given k-space layout."""
    return _transform(x, layout, torch.fft.fft2)


def ifft2(k: torch.Tensor, layout: str = "centered") -> torch.Tensor:
    """Orthonormal inverse 2-D DFT (the exact adjoint of :func:`fft2`)."""
    return _transform(k, layout, torch.fft.ifft2)
