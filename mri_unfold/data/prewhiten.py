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

import warnings

import numpy as np
import torch

from ..errors import UserError
from .samples import KSpaceSample

__all__ = ["noise_covariance", "whitening_matrix", "regularised_covariance", "Prewhiten"]


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


#: A noise covariance whose smallest eigenvalue is below this fraction of its largest is
#: (nearly) singular: identical or dead channels.  Whitening it as it is would multiply the
#: data by up to the inverse square root of that ratio.
MIN_EIGENVALUE_RATIO = 1e-6
#: The diagonal loading of such a covariance, as a fraction of its mean eigenvalue.
DIAGONAL_LOADING = 1e-3


def regularised_covariance(cov) -> tuple[np.ndarray, float]:
    """``(cov, 0.0)`` for a well-conditioned covariance, else ``(cov + λ I, λ)`` with
    ``λ = DIAGONAL_LOADING × mean eigenvalue`` (diagonal loading), Hermitian either way.

    Raises:
        ValueError: not square, not finite, or no noise at all (all eigenvalues <= 0).
    """
    c = np.asarray(cov, np.complex128)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"noise covariance must be (C, C), got {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("noise covariance has NaN/Inf entries")
    h = (c + c.conj().T) / 2
    ev = np.linalg.eigvalsh(h)
    if ev[-1] <= 0:
        raise ValueError("noise covariance is zero (the noise scans hold no noise)")
    if ev[0] >= MIN_EIGENVALUE_RATIO * ev[-1]:
        return h, 0.0
    lam = DIAGONAL_LOADING * float(np.clip(ev, 0, None).mean())
    return h + lam * np.eye(len(h)), lam


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
    A singular or nearly singular covariance (identical or dead coils) is regularised by
    diagonal loading (:func:`regularised_covariance`), with a warning naming the file.

    Raises:
        UserError: a covariance whose size differs from the coil count, one with NaN/Inf
            entries or no noise at all (naming the file and slice).
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
            cov_used, lam = regularised_covariance(cov)
            w = torch.from_numpy(whitening_matrix(cov_used).astype(np.complex64))
        except ValueError as e:
            raise UserError(f"{sample.where}: {e}") from e
        if lam:
            ev = np.linalg.eigvalsh((cov + cov.conj().T) / 2)
            warnings.warn(f"{sample.metadata.extras.get('path', sample.metadata.fname)}: the noise "
                          f"covariance is singular or nearly so (smallest/largest eigenvalue "
                          f"{max(ev[0], 0) / ev[-1]:.1e}: identical or dead coils?); it was "
                          f"regularised by adding {lam:.3g} x I before whitening", stacklevel=2)
        w = w.to(sample.kspace.device)

        def apply(t):
            return None if t is None else torch.einsum("dc,c...->d...", w, t).contiguous()

        new = sample.replace(kspace=apply(sample.kspace), coil_maps=apply(sample.coil_maps))
        new.metadata.extras["prewhitened"] = True
        new.metadata.extras["noise_covariance"] = cov
        return new

    def __repr__(self) -> str:
        return "Prewhiten()" if self.covariance is None else f"Prewhiten({self.covariance.shape})"
