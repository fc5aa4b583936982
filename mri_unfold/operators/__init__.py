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

# Operators in their own modules (each module lists its public names in __all__).
import importlib as _importlib

for _mod in ("fourier", "learned_block_cs", "overlap_block_cs"):
    try:
        _m = _importlib.import_module(f"{__name__}.{_mod}")
    except ModuleNotFoundError as _e:  # module not written yet
        if _e.name != f"{__name__}.{_mod}":
            raise
        continue
    for _name in getattr(_m, "__all__", ()):
        globals()[_name] = getattr(_m, _name)
        __all__.append(_name)
