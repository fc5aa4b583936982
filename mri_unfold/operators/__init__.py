"""Linear measurement operators Φ behind one interface (:class:`LinearOperator`).

* :mod:`.base` — :class:`LinearOperator` (declared domain/range, algebra ``@ + - * .H .N``)
  and the algebra's operators; :mod:`.shapes` — shape declarations and :class:`ShapeError`;
* :mod:`.parts` — sampling mask, FFT, coil expansion, real->complex embedding, identity;
* :mod:`.fourier` — single- and multi-coil Cartesian MRI built from the parts;
  :mod:`.fourier3d` — the 3-D Cartesian operator (3-D FFT, ky–kz mask, 3-D coil maps);
* :mod:`.noncartesian` — non-Cartesian MRI in 2-D and 3-D (density-weighted NUFFT, :mod:`.nufft`
  kernels with autograd, Toeplitz normal :mod:`.toeplitz`); :mod:`.stack_of_stars` — radial
  in-plane, Cartesian along kz; :mod:`.slice_stack` — a 3-D operator as a batch of 2-D
  slices (2-D networks with 3-D data consistency);
* :mod:`.block_cs`, :mod:`.learned_block_cs`, :mod:`.overlap_block_cs` — block CS;
* :mod:`.learned_mask` — single-coil MRI with a LOUPE-style mask learned with the network;
  :mod:`.learned_kspace_mask` — the same mask learned on (multi-coil) k-space batches;
* :mod:`.precision` — :class:`Fp32Operator` (full precision under autocast);
* :mod:`.contract` — :func:`check_operator`; :mod:`.registry` — :func:`register_operator`;
* :mod:`.factory` — :func:`build_operator` (protocol config), :func:`fit_qinit`,
  :func:`kspace_operator` (a batch's masks and coil maps); :mod:`.kspace_factory` —
  :class:`KSpaceOperatorFactory`, the same as an object (the operator of k-space models).
"""
from . import examples as _examples  # noqa: F401  (registers the algebra's examples)
from .base import Adjoint, Composed, LinearOperator, Normal, Scaled, Sum
from .block_cs import (
    GaussianBlockCS,
    compute_qinit,
    crop_to,
    gaussian_orthonormal_matrix,
    load_mat_variable,
    measurements_for_ratio,
    pad_to_blocks,
)
from .contract import OperatorContractError, OperatorReport, check_operator
from .factory import (authors_matrix_path, build_operator, fit_qinit, kspace_operator, restricted,
                      sampled_locations)
from .fourier import MultiCoilFourier, SingleCoilFourier
from .fourier3d import CartesianFourier3D
from .kspace_factory import KSPACE_OPERATOR_KINDS, KSpaceOperatorFactory
from .learned_block_cs import LearnedBlockCS
from .learned_mask import LearnedMaskFourier
from .learned_kspace_mask import LearnedKSpaceMask, LearnedMaskCoils
from .noncartesian import NonCartesianFourier, to_radians
from .stack_of_stars import StackOfStarsFourier
from .slice_stack import SliceStack
from .overlap_block_cs import OverlapBlockCS
from .parts import FFT2, CoilExpansion, Identity, RealToComplex, SamplingMask
from .precision import Fp32Operator
from .registry import (
    OperatorEntry,
    OperatorExample,
    operator_examples,
    operator_kinds,
    register_operator,
    registered_operators,
)
from .shapes import ShapeError

__all__ = [
    "LinearOperator", "Composed", "Sum", "Scaled", "Adjoint", "Normal", "ShapeError",
    "SamplingMask", "FFT2", "CoilExpansion", "RealToComplex", "Identity",
    "SingleCoilFourier", "MultiCoilFourier", "NonCartesianFourier", "to_radians",
    "CartesianFourier3D", "StackOfStarsFourier", "SliceStack",
    "GaussianBlockCS", "LearnedBlockCS", "OverlapBlockCS", "LearnedMaskFourier",
    "compute_qinit", "crop_to", "gaussian_orthonormal_matrix", "load_mat_variable",
    "measurements_for_ratio", "pad_to_blocks",
    "Fp32Operator",
    "check_operator", "OperatorReport", "OperatorContractError",
    "register_operator", "registered_operators", "operator_examples", "operator_kinds",
    "OperatorExample", "OperatorEntry",
    "build_operator", "fit_qinit", "kspace_operator", "authors_matrix_path", "restricted",
    "sampled_locations",
    "KSpaceOperatorFactory", "KSPACE_OPERATOR_KINDS", "LearnedKSpaceMask", "LearnedMaskCoils",
]
