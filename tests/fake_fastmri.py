"""Build small fake fastMRI ``.h5`` files for tests (importable by any test module).

The files mimic the real layout: ``kspace`` ``(slices, [coils,] H, W)`` complex64 in the
centred layout, ``reconstruction_esc`` (single-coil, magnitude) or ``reconstruction_rss``
(multi-coil) ``(slices, rh, rw)`` float32 centre-cropped to the recon size, an ISMRMRD XML
header with encoding/recon matrix sizes and encoding limits, and the attributes ``max``,
``norm``, ``acquisition`` and ``patient_id``.  The image is a smooth synthetic phantom
(ellipses, slightly different per slice) times birdcage coil maps for multi-coil files.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

HEADER_TEMPLATE = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD" xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <studyInformation><studyTime>10:00:00</studyTime></studyInformation>
  <acquisitionSystemInformation>
    <systemVendor>SIEMENS</systemVendor><systemFieldStrength_T>2.89</systemFieldStrength_T>
    <receiverChannels>{coils}</receiverChannels>
  </acquisitionSystemInformation>
  <experimentalConditions><H1resonanceFrequency_Hz>123251815</H1resonanceFrequency_Hz></experimentalConditions>
  <encoding>
    <encodedSpace>
      <matrixSize><x>{enc_x}</x><y>{enc_y}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>280</x><y>140</y><z>4.5</z></fieldOfView_mm>
    </encodedSpace>
    <reconSpace>
      <matrixSize><x>{rec_x}</x><y>{rec_y}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>140</x><y>140</y><z>3</z></fieldOfView_mm>
    </reconSpace>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>{lim_max}</maximum><center>{lim_center}</center></kspace_encoding_step_1>
      <kspace_encoding_step_2><minimum>0</minimum><maximum>0</maximum><center>0</center></kspace_encoding_step_2>
      <slice><minimum>0</minimum><maximum>{last_slice}</maximum><center>0</center></slice>
    </encodingLimits>
    <trajectory>cartesian</trajectory>
  </encoding>
</ismrmrdHeader>
"""


def phantom(shape: tuple[int, int], slice_index: int = 0) -> np.ndarray:
    """A smooth complex test image ``(H, W)`` complex64 (ellipses + a gentle phase ramp)."""
    h, w = shape
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    s = 0.05 * slice_index
    img = 1.0 * (((xx / 0.7) ** 2 + (yy / 0.85) ** 2) < 1)
    img += 0.5 * ((((xx - 0.2 - s) / 0.2) ** 2 + ((yy + 0.1) / 0.3) ** 2) < 1)
    img += 0.3 * ((((xx + 0.25) / 0.15) ** 2 + ((yy - 0.3 + s) / 0.2) ** 2) < 1)
    phase = np.exp(1j * 0.4 * (xx + 0.5 * yy))
    return (img * phase).astype(np.complex64)


def coil_maps(num_coils: int, shape: tuple[int, int]) -> np.ndarray:
    """Birdcage sensitivities ``(C, H, W)`` complex64 normalised to ``Σ|S_c|² = 1``."""
    from mri_unfold.data.simulate import birdcage_coil_maps

    return birdcage_coil_maps(num_coils, shape)


def _fft2c(x: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))


def _center_crop(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h0 = (x.shape[-2] - size[0]) // 2
    w0 = (x.shape[-1] - size[1]) // 2
    return x[..., h0:h0 + size[0], w0:w0 + size[1]]


def write_fake_fastmri(path: str | Path, *, challenge: str = "singlecoil",
                       num_slices: int = 3, shape: tuple[int, int] = (40, 33),
                       recon_size: tuple[int, int] = (24, 24), num_coils: int = 4,
                       column_mask: np.ndarray | None = None, with_target: bool = True,
                       acquisition: str = "CORPD_FBK", patient_id: str = "abc123",
                       padding: int = 1) -> Path:
    """Write a fake fastMRI file and return its path.

    Args:
        challenge: ``"singlecoil"`` or ``"multicoil"`` (``num_coils`` coils).
        shape: k-space ``(H, W)`` (readout x phase-encoding; odd sizes allowed).
        recon_size: target ``(h, w)`` (ISMRMRD reconSpace x, y).
        column_mask: optional ``(W,)`` 0/1 mask: the k-space is stored undersampled with it
            and the file gets a ``mask`` dataset (like fastMRI test/challenge files).
        padding: columns on each side outside the encoding limits (zero in k-space).
    """
    path = Path(path)
    h, w = shape
    maps = coil_maps(num_coils, shape) if challenge == "multicoil" else None
    ks, targets = [], []
    for s in range(num_slices):
        img = phantom(shape, s)
        coil_imgs = img[None] * maps if maps is not None else img[None]
        k = _fft2c(coil_imgs)
        if padding:
            k[..., :padding] = 0
            k[..., w - padding:] = 0
        from_k = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)),
                                              norm="ortho"), axes=(-2, -1))
        mag = np.sqrt((np.abs(from_k) ** 2).sum(0))
        targets.append(_center_crop(mag, recon_size).astype(np.float32))
        if column_mask is not None:
            k = k * np.asarray(column_mask, np.float32)[None, None, :]
        ks.append(k if maps is not None else k[0])
    kspace = np.stack(ks).astype(np.complex64)
    target = np.stack(targets)
    center = w // 2 - padding
    header = HEADER_TEMPLATE.format(
        coils=num_coils if maps is not None else 1, enc_x=h, enc_y=w, rec_x=recon_size[0],
        rec_y=recon_size[1], lim_max=w - 2 * padding - 1, lim_center=center,
        last_slice=num_slices - 1)
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace)
        if with_target:
            key = "reconstruction_esc" if challenge == "singlecoil" else "reconstruction_rss"
            f.create_dataset(key, data=target)
        if column_mask is not None:
            f.create_dataset("mask", data=np.asarray(column_mask, bool))
        f.create_dataset("ismrmrd_header", data=header.encode())
        f.attrs["max"] = float(target.max())
        f.attrs["norm"] = float(np.linalg.norm(target))
        f.attrs["acquisition"] = acquisition
        f.attrs["patient_id"] = patient_id
    return path
