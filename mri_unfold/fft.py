"""The project's one FFT convention.

All transforms are **orthonormal** (``norm="ortho"``, so ``F^H F = I``) and act on the
last two dimensions (:func:`fft2`, :func:`ifft2`) or on chosen ones (:func:`fftn`,
:func:`ifftn`: 3-D k-space, 1-D along a readout).  Two layouts of k-space exist:

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


def _transform_n(t: torch.Tensor, layout: str, dft, dims: tuple[int, ...]) -> torch.Tensor:
    _check_layout(layout)
    if layout == "unshifted":
        return dft(t, dim=dims, norm="ortho")
    return torch.fft.fftshift(dft(torch.fft.ifftshift(t, dim=dims), dim=dims, norm="ortho"),
                              dim=dims)


def fftn(x: torch.Tensor, dims: tuple[int, ...] = (-3, -2, -1),
         layout: str = "centered") -> torch.Tensor:
    """Orthonormal DFT over ``dims`` (default the last three: 3-D k-space) in the given
    layout; ``dims=(-2, -1)`` is :func:`fft2` and ``dims=(d,)`` a 1-D transform (e.g. along
    the readout)."""
    return _transform_n(x, layout, torch.fft.fftn, tuple(dims))


def ifftn(k: torch.Tensor, dims: tuple[int, ...] = (-3, -2, -1),
          layout: str = "centered") -> torch.Tensor:
    """Orthonormal inverse DFT over ``dims`` (the exact adjoint of :func:`fftn`)."""
    return _transform_n(k, layout, torch.fft.ifftn, tuple(dims))
