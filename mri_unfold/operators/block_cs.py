"""Block-based compressive sampling of natural images (ISTA-Net / MADUN).

An image ``(N, 1, H, W)`` (H, W multiples of the block size ``B``) is cut into
non-overlapping ``B x B`` blocks; each block is vectorised **row-major** (``x[i, j]`` at
index ``i * B + j``, i.e. ``block.reshape(-1)``) and measured as ``y_b = Φ x_b`` with
``Φ`` of shape ``(M, B²)``.  Measurements are laid out as ``(N, M, H/B, W/B)``: the
measurement vector of block ``(r, c)`` sits at ``y[:, :, r, c]``.  This is exactly the
authors' ``x_blocks @ Phi.T`` (ISTA-Net) and their stride-``B`` convolution (MADUN).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.io
import torch

from .base import LinearOperator
from .registry import OperatorExample, register_operator
from .shapes import ShapeError

#: Measurement counts M of the papers' tables for B = 33 (ratio -> M).
PAPER_M = {0.01: 10, 0.04: 43, 0.10: 109, 0.25: 272, 0.30: 327, 0.40: 436, 0.50: 545}

PAD_CONVENTIONS = ("authors", "minimal")

#: Ways to apply Φ^TΦ in :meth:`GaussianBlockCS.normal` (see :func:`cheapest_normal_form`).
NORMAL_FORMS = ("auto", "gram", "two_step")


def cheapest_normal_form(m: int, n: int) -> str:
    """The cheaper way to apply ``Φ^TΦ`` per block for ``Φ`` of shape ``(M, N = B²)``.

    ``"gram"`` multiplies by the precomputed ``N x N`` matrix ``Φ^TΦ`` (``N²`` multiply-adds
    per block); ``"two_step"`` applies ``Φ`` then ``Φ^T`` (``2 M N``).  The Gram form wins
    when ``N < 2M``, i.e. above 50% sampling.
    """
    return "gram" if n < 2 * m else "two_step"


def measurements_for_ratio(ratio: float, block_size: int = 33) -> int:
    """Number of measurements M for a sampling ratio.

    Uses the papers' table for ``block_size == 33`` (1%→10, 4%→43, 10%→109, 25%→272,
    30%→327, 40%→436, 50%→545), ``round(ratio * B²)`` otherwise.
    """
    if not (0.0 < float(ratio) <= 1.0):
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    if block_size == 33:
        for r, m in PAPER_M.items():
            if abs(float(ratio) - r) < 1e-9:
                return m
    return max(1, int(round(float(ratio) * block_size * block_size)))


def gaussian_orthonormal_matrix(m: int, n: int, seed: int = 0) -> torch.Tensor:
    """Random ``(m, n)`` float32 matrix with orthonormal rows (Gaussian, then QR).

    Uses a private ``torch.Generator`` seeded with ``seed``; global RNG state is untouched.
    """
    if not (0 < m <= n):
        raise ValueError(f"need 0 < M <= B² for orthonormal rows, got M={m}, B²={n}")
    g = torch.Generator().manual_seed(int(seed))
    a = torch.randn(n, m, generator=g, dtype=torch.float64)
    q, r = torch.linalg.qr(a)  # q: (n, m) orthonormal columns
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)  # make unique
    return q.T.contiguous().to(torch.float32)


def load_mat_variable(path: str | Path, name: str) -> np.ndarray:
    """Read variable ``name`` from a MATLAB file (v5 via scipy, v7.3/HDF5 via h5py).

    v7.3 files store arrays column-major; the array is transposed back to MATLAB's
    orientation.

    Raises:
        FileNotFoundError / KeyError / ValueError with the file and variable named.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MATLAB file")
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            if name not in f:
                raise KeyError(f"{path}: variable {name!r} not found (has: {sorted(f.keys())})")
            return np.asarray(f[name]).T
    try:
        d = scipy.io.loadmat(path)
    except Exception as e:  # noqa: BLE001 - re-raised with context
        raise ValueError(f"{path}: not a readable MATLAB file ({e})") from e
    if name not in d:
        keys = sorted(k for k in d if not k.startswith("__"))
        raise KeyError(f"{path}: variable {name!r} not found (has: {keys})")
    return np.asarray(d[name])


def pad_to_blocks(x: torch.Tensor, block_size: int = 33, convention: str = "authors"):
    """Zero-pad an image on the right/bottom so both sides are multiples of ``block_size``.

    Args:
        x: ``(..., H, W)`` tensor.
        convention: ``"authors"`` pads by ``B - (side mod B)`` — a full extra block when the
            side is already a multiple, exactly as the ISTA-Net/MADUN test scripts do;
            ``"minimal"`` pads by ``(-side) mod B`` (nothing when already a multiple).
    Returns:
        ``(padded, (H, W))`` — crop back with :func:`crop_to`.
    """
    if convention not in PAD_CONVENTIONS:
        raise ValueError(f"convention must be one of {PAD_CONVENTIONS}, got {convention!r}")
    h, w = x.shape[-2:]
    if convention == "authors":
        ph, pw = block_size - h % block_size, block_size - w % block_size
    else:
        ph, pw = (-h) % block_size, (-w) % block_size
    return torch.nn.functional.pad(x, (0, pw, 0, ph)), (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop ``(..., H', W')`` to the top-left ``size = (H, W)`` (inverse of padding)."""
    return x[..., : size[0], : size[1]]


def image_to_blocks(x: torch.Tensor, b: int) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, C, H/b, W/b, b*b)`` with row-major vectorised blocks."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // b, b, w // b, b).permute(0, 1, 2, 4, 3, 5).reshape(
        n, c, h // b, w // b, b * b)


def blocks_to_image(v: torch.Tensor, b: int) -> torch.Tensor:
    """Inverse of :func:`image_to_blocks`: ``(N, C, hb, wb, b*b)`` -> ``(N, C, hb*b, wb*b)``."""
    n, c, hb, wb, _ = v.shape
    return v.reshape(n, c, hb, wb, b, b).permute(0, 1, 2, 4, 3, 5).reshape(n, c, hb * b, wb * b)


def compute_qinit(phi: torch.Tensor | np.ndarray, x_blocks: torch.Tensor | np.ndarray,
                  ridge: float = 0.0) -> torch.Tensor:
    """Least-squares linear initialiser ``Qinit`` (ISTA-Net Eq. 11–12).

    Solves ``min_Q ||Q Y - X||_F`` with ``X`` the training blocks (B² x N) and
    ``Y = Φ X`` (M x N): ``Q = X Y^T (Y Y^T)^{-1}``.

    Args:
        phi: ``(M, B²)`` sampling matrix.
        x_blocks: ``(N, B²)`` training blocks (row-major vectorised).
        ridge: optional Tikhonov term added to ``Y Y^T`` (0 = the paper's formula).
    Returns:
        ``(B², M)`` float32 tensor.
    """
    phi = torch.as_tensor(np.asarray(phi) if not torch.is_tensor(phi) else phi).double()
    xb = torch.as_tensor(np.asarray(x_blocks) if not torch.is_tensor(x_blocks) else x_blocks).double()
    if xb.ndim != 2 or xb.shape[1] != phi.shape[1]:
        raise ValueError(f"x_blocks must be (N, {phi.shape[1]}), got {tuple(xb.shape)}")
    X = xb.T
    Y = phi @ X
    yyt = Y @ Y.T
    if ridge:
        yyt = yyt + ridge * torch.eye(yyt.shape[0], dtype=yyt.dtype)
    q = torch.linalg.solve(yyt, (X @ Y.T).T).T  # X Y^T (Y Y^T)^{-1}; Y Y^T symmetric
    return q.to(torch.float32)


@register_operator("block_cs", examples=(
    OperatorExample("b33_r10", lambda: GaussianBlockCS(0.10, 33, seed=0), (1, 33, 66)),
    OperatorExample("b8_r25", lambda: GaussianBlockCS(0.25, 8, seed=1), (1, 16, 24)),
    OperatorExample("b5_r50_gram", lambda: GaussianBlockCS(0.5, 5, seed=2), (1, 15, 10)),
    OperatorExample("b4_r60_qinit", lambda: GaussianBlockCS(
        0.6, 4, seed=3, qinit=torch.eye(16)[:, :10]), (1, 8, 4))))
class GaussianBlockCS(LinearOperator):
    """Block-based CS with a Gaussian orthonormal-row matrix Φ ``(M, B²)``.

    Args:
        ratio: sampling ratio M / B² (the papers' table fixes M for B = 33).
        block_size: B (33 in the papers).
        seed: seed of the private generator drawing Φ.

    Shapes:
        ``forward``: real (or complex) ``(N, 1, H, W)``, H and W multiples of B ->
        ``(N, M, H/B, W/B)`` of the same dtype.  ``adjoint``: the reverse.

    Buffers: ``phi`` ``(M, B²)`` float32; ``qinit`` ``(B², M)`` float32 or ``None``.

    Declared: domain ``(1, *, *)`` real (complex images are measured as real and imaginary
    parts), range ``(M, *, *)``; image sides must be multiples of B.

    Attribute ``normal_form`` (``"auto"``, ``"gram"`` or ``"two_step"``) selects how
    :meth:`normal` applies ``Φ^TΦ``; ``"auto"`` takes :func:`cheapest_normal_form` of M.
    The Gram matrix is cached per device/dtype and rebuilt when ``phi`` changes; a ``phi``
    that requires grad always uses the two-step product.
    """

    complex_domain = False
    normal_form: str = "auto"

    def __init__(self, ratio: float = 0.25, block_size: int = 33, seed: int = 0, *,
                 _phi: torch.Tensor | None = None, qinit=None):
        super().__init__()
        self.block_size = int(block_size)
        n = self.block_size ** 2
        if _phi is None:
            m = measurements_for_ratio(ratio, self.block_size)
            _phi = gaussian_orthonormal_matrix(m, n, seed)
        _phi = torch.as_tensor(_phi, dtype=torch.float32)
        if _phi.ndim != 2 or _phi.shape[1] != n:
            raise ValueError(f"phi must have shape (M, {n}) for block size {block_size}, got "
                             f"{tuple(_phi.shape)}")
        self.register_buffer("phi", _phi.contiguous())
        self.register_buffer("qinit", None)
        if qinit is not None:
            self.set_qinit(qinit)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_matrix(cls, phi, qinit=None, block_size: int | None = None) -> "GaussianBlockCS":
        """Build from a given Φ ``(M, B²)`` (numpy array or tensor), e.g. the authors' ``phi``.

        ``block_size`` defaults to ``sqrt(B²)``; ``qinit`` (``(B², M)``) is optional.
        """
        phi_t = torch.as_tensor(np.asarray(phi, dtype=np.float32) if not torch.is_tensor(phi)
                                else phi.detach(), dtype=torch.float32)
        if phi_t.ndim != 2:
            raise ValueError(f"phi must be a 2-D (M, B²) matrix, got shape {tuple(phi_t.shape)}")
        if block_size is None:
            b = int(round(phi_t.shape[1] ** 0.5))
            if b * b != phi_t.shape[1]:
                raise ValueError(f"phi has {phi_t.shape[1]} columns, not a square block size")
            block_size = b
        return cls(block_size=block_size, _phi=phi_t, qinit=qinit)

    @classmethod
    def from_mat_files(cls, phi_path, qinit_path=None) -> "GaussianBlockCS":
        """Load the authors' ``phi_0_XX_1089.mat`` (``phi``) and optionally
        ``Initialization_Matrix_XX.mat`` (``Qinit``)."""
        phi = load_mat_variable(phi_path, "phi")
        q = load_mat_variable(qinit_path, "Qinit") if qinit_path is not None else None
        return cls.from_matrix(phi, qinit=q)

    def set_qinit(self, qinit) -> None:
        """Attach a linear initialiser ``Qinit`` of shape ``(B², M)`` as buffer ``qinit``."""
        q = torch.as_tensor(np.asarray(qinit, dtype=np.float32) if not torch.is_tensor(qinit)
                            else qinit.detach(), dtype=torch.float32)
        m, n = self.phi.shape
        if tuple(q.shape) != (n, m):
            raise ValueError(f"Qinit must have shape ({n}, {m}) to match phi, got {tuple(q.shape)}")
        self.qinit = q.to(self.phi.device).contiguous()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # A state_dict carrying ``qinit`` loads into an operator built without one.
        key = prefix + "qinit"
        if self.qinit is None and state_dict.get(key) is not None:
            try:
                self.set_qinit(state_dict[key])
            except ValueError as e:
                error_msgs.append(f"{key}: {e}")
                return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    # ------------------------------------------------------------------ properties
    @property
    def num_measurements(self) -> int:
        return int(self.phi.shape[0])

    @property
    def ratio(self) -> float:
        return self.num_measurements / self.block_size ** 2

    domain_shape = (1, None, None)

    @property
    def range_shape(self) -> tuple:
        return (self.num_measurements, None, None)

    def _mat(self, mat: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if like.is_complex():
            return mat.to(like.dtype)
        return mat if mat.dtype == like.dtype else mat.to(like.dtype)

    def _check_image(self, x: torch.Tensor) -> None:
        b = self.block_size
        self.check_domain(x, "x", lambda: f"{type(self).__name__} expects images (N, 1, H, W), "
                                          f"got {tuple(x.shape)}")
        if x.shape[-2] % b or x.shape[-1] % b:
            raise ShapeError(f"{type(self).__name__}: image sides {tuple(x.shape[-2:])} are not "
                             f"multiples of the block size {b}; pad with pad_to_blocks() first")

    # ------------------------------------------------------------------ Φ, Φ^T
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` -> ``(N, M, H/B, W/B)``: ``y_b = Φ x_b`` per block."""
        self._check_image(x)
        v = image_to_blocks(x, self.block_size)[:, 0]  # (N, hb, wb, B²)
        y = v @ self._mat(self.phi, x).T  # (N, hb, wb, M)
        return y.permute(0, 3, 1, 2).contiguous()

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``(N, M, H/B, W/B)`` -> ``(N, 1, H, W)``: ``x_b = Φ^T y_b`` per block."""
        self.check_range(y, "y", lambda: f"{type(self).__name__}.adjoint expects "
                                         f"(N, {self.num_measurements}, H/B, W/B), got "
                                         f"{tuple(y.shape)}")
        v = y.permute(0, 2, 3, 1) @ self._mat(self.phi, y)  # (N, hb, wb, B²)
        return blocks_to_image(v.unsqueeze(1), self.block_size)

    def resolved_normal_form(self) -> str:
        """The form :meth:`normal` uses now: ``"gram"`` or ``"two_step"``."""
        if self.normal_form not in NORMAL_FORMS:
            raise ValueError(f"normal_form must be one of {NORMAL_FORMS}, got "
                             f"{self.normal_form!r}")
        if self.phi.requires_grad:
            return "two_step"
        if self.normal_form == "auto":
            return cheapest_normal_form(*self.phi.shape)
        return self.normal_form

    def _gram(self, like: torch.Tensor) -> torch.Tensor:
        """Cached ``Φ^TΦ`` ``(B², B²)`` on ``like``'s device, in ``like``'s dtype."""
        phi = self.phi

        def gram():
            g = phi.detach().double()
            return self._mat(g.T @ g, like)

        return self._cached("_gram_cache", (phi.device, like.dtype), phi, gram)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``Φ^TΦ x`` per block, ``(N, 1, H, W)`` -> same; the form follows ``normal_form``."""
        if self.resolved_normal_form() == "two_step":
            return self.adjoint(self.forward(x))
        self._check_image(x)
        v = image_to_blocks(x, self.block_size)[:, 0] @ self._gram(x)  # Gram is symmetric
        return blocks_to_image(v.unsqueeze(1), self.block_size)

    def linear_init(self, y: torch.Tensor) -> torch.Tensor:
        """``Qinit y`` per block: ``(N, M, hb, wb)`` -> ``(N, 1, H, W)``."""
        if self.qinit is None:
            return super().linear_init(y)
        v = y.permute(0, 2, 3, 1) @ self._mat(self.qinit, y).T
        return blocks_to_image(v.unsqueeze(1), self.block_size)

    def extra_repr(self) -> str:
        return (f"M={self.num_measurements}, block_size={self.block_size}, "
                f"ratio={self.ratio:.4f}, qinit={'yes' if self.qinit is not None else 'no'}, "
                f"normal_form={self.normal_form!r}")
