"""Linear measurement operators Φ behind one interface (:class:`LinearOperator`)."""
from .base import LinearOperator
from .block_cs import (
    GaussianBlockCS,
    compute_qinit,
    crop_to,
    gaussian_orthonormal_matrix,
    load_mat_variable,
    measurements_for_ratio,
    pad_to_blocks,
)

__all__ = [
    "LinearOperator",
    "GaussianBlockCS",
    "compute_qinit",
    "crop_to",
    "gaussian_orthonormal_matrix",
    "load_mat_variable",
    "measurements_for_ratio",
    "pad_to_blocks",
]
try:  # Fourier operators live in their own module
    from .fourier import MultiCoilFourier, SingleCoilFourier  # noqa: F401

    __all__ += ["SingleCoilFourier", "MultiCoilFourier"]
except ImportError:  # pragma: no cover - during bootstrap only
    pass
