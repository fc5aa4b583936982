"""Noise prewhitening: decorrelate the receive channels with a measured noise covariance.

Receiver noise is correlated between coils (coupling, shared preamplifier noise).  From
noise-only samples ``n`` ``(C, N)`` (ISMRMRD ``ACQ_IS_NOISE_MEASUREMENT`` acquisitions,
Siemens ``NOISEADJSCAN`` readouts) the covariance is ``Ψ = n nᴴ / (N - 1)`` and the
whitening matrix ``W = L⁻¹`` with ``Ψ = L Lᴴ`` (Cholesky).  Whitened data ``W k`` have
identity noise covariance, so every later step (coil compression, SENSE, least-squares
reconstruction) weighs the coils correctly.

:class:`Prewhiten` is a transform ``KSpaceSample -> KSpaceSample``: it whitens the k-space
(and coil maps, if any: the coil maps of the whitened data are ``W S``), records
``extras["prewhitened"] = True`` and keeps the covariance in
``extras["noise_covariance"]``; it never modifies its input and refuses to whiten twice.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import UserError
from .samples import KSpaceSample

__all__ = ["noise_covariance", "whitening_matrix", "Prewhiten"]


def noise_covariance(noise) -> np.ndarray:
    """``(C, C)`` complex128 sample covariance of noise ``(C, N)`` (rows = coils).

    Raises:
        ValueError: fewer than 2 samples.
    """
    n = np.asarray(noise, np.complex128)
    if n.ndim != 2 or n.shape[1] < 2:
        raise ValueError(f"noise must be (coils, samples) with >= 2 samples, got {n.shape}")
    n = n - n.mean(axis=1, keepdims=True)
    return n @ n.conj().T / (n.shape[1] - 1)


def whitening_matrix(cov) -> np.ndarray:
    """``W = L⁻¹`` with ``cov = L Lᴴ``: ``W cov Wᴴ = I``.  ``(C, C)`` complex128.

    Raises:
        ValueError: ``cov`` not square or not positive definite (a dead channel).
    """
    c = np.asarray(cov, np.complex128)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"noise covariance must be (C, C), got {c.shape}")
    try:
        chol = np.linalg.cholesky((c + c.conj().T) / 2)
    except np.linalg.LinAlgError as e:
        raise ValueError("noise covariance is not positive definite (a channel without "
                         "noise?)") from e
    return np.linalg.inv(chol)


class Prewhiten:
    """Whiten a sample's coils (module doc).

    Args:
        covariance: ``(C, C)`` noise covariance; ``None`` takes the sample's
            ``extras["noise_covariance"]`` (set by the raw readers when the file has noise
            scans) and passes samples without one through unchanged.
    Raises:
        UserError: a covariance whose size differs from the coil count, or one that is not
            positive definite (naming the file and slice).
    """

    def __init__(self, covariance=None):
        self.covariance = None if covariance is None else np.asarray(covariance, np.complex128)

    def __call__(self, sample: KSpaceSample) -> KSpaceSample:
        cov = self.covariance
        if cov is None:
            cov = sample.metadata.extras.get("noise_covariance")
            if cov is None:
                return sample.replace()
        if sample.metadata.extras.get("prewhitened"):
            raise UserError(f"{sample.where}: k-space is already prewhitened")
        cov = np.asarray(cov, np.complex128)
        if cov.shape != (sample.num_coils,) * 2:
            raise UserError(f"{sample.where}: noise covariance {cov.shape} does not match the "
                            f"{sample.num_coils} coils")
        try:
            w = torch.from_numpy(whitening_matrix(cov).astype(np.complex64))
        except ValueError as e:
            raise UserError(f"{sample.where}: {e}") from e
        w = w.to(sample.kspace.device)

        def apply(t):
            return None if t is None else torch.einsum("dc,c...->d...", w, t).contiguous()

        new = sample.replace(kspace=apply(sample.kspace), coil_maps=apply(sample.coil_maps))
        new.metadata.extras["prewhitened"] = True
        new.metadata.extras["noise_covariance"] = cov
        return new

    def __repr__(self) -> str:
        return "Prewhiten()" if self.covariance is None else f"Prewhiten({self.covariance.shape})"
