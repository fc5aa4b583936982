"""2-D and 3-D NUFFT kernels with autograd: type 2 (image -> points) and type 1 (points ->
image).

Convention (the project's centred, orthonormal DFT extended to arbitrary frequencies):

* ``nufft2(x, omega)[n, c, k] = (H W)^(-1/2) Σ_{p, q} x[n, c, p, q]
  · exp(-i (ω_k0 (p - H//2) + ω_k1 (q - W//2)))`` — on the Cartesian grid
  ``ω = 2π (m - H//2) / H`` it is exactly :func:`mri_unfold.fft.fft2` (``"centered"``);
* ``nufft1(y, omega, (H, W))`` — its exact adjoint (sign ``+i``, same scaling).

``omega`` is in radians per pixel, ``[-π, π]``; ``omega[..., 0]`` goes with the rows
(``H``), ``omega[..., 1]`` with the columns (``W``).  In 3-D (``omega`` ``(..., K, 3)``) the
image is ``(X, Y, Z)``, the scaling ``(X Y Z)^(-1/2)`` and ``omega[..., d]`` goes with axis
``d`` (finufft's and torchkbnufft's 3-D transforms).

Backends (``backend=``):

* ``"finufft"`` — the Flatiron Institute NUFFT (CPU, exponential-of-semicircle kernel,
  accuracy ``eps`` relative to the ℓ2 norm of the input; plans cached per trajectory);
* ``"torchkbnufft"`` — Kaiser–Bessel interpolation in pure PyTorch (any device, CUDA
  included; its own accuracy, about 1e-3 relative with the default tables);
* ``"auto"`` — finufft for CPU tensors, torchkbnufft for CUDA tensors (finufft on a host
  copy when torchkbnufft is not installed).

Shapes and dtypes: ``x`` ``(N, C, H, W)`` (3-D: ``(N, C, X, Y, Z)``) complex64/complex128;
``omega`` ``(N | 1, K, 2 | 3)`` float32/float64 (cast to ``x``'s precision); ``y`` ``(N, C, K)``.  Both functions are
differentiable with respect to the complex data (the gradient of one is the other), not to
``omega``.
"""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import torch

__all__ = ["BACKENDS", "PlanCache", "nufft1", "nufft2", "resolve_backend", "default_eps"]

#: Selectable backends.
BACKENDS = ("auto", "finufft", "torchkbnufft")
#: finufft runs with torch's thread count from this many points x transforms on.
_THREADED_POINTS = 1 << 17


def default_eps(dtype: torch.dtype) -> float:
    """Requested finufft accuracy: 1e-6 in single precision, 1e-12 in double."""
    return 1e-12 if dtype in (torch.complex128, torch.float64) else 1e-6


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve_backend(backend: str, device: torch.device) -> str:
    """The concrete backend for ``device`` (``"auto"``: module doc).

    Raises:
        ValueError: an unknown backend name; ImportError: the backend is not installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        if device.type == "cuda" and _has("torchkbnufft"):
            return "torchkbnufft"
        return "finufft"
    if not _has(backend):
        raise ImportError(f"NUFFT backend {backend!r} is not installed (pip install {backend})")
    return backend


class PlanCache:
    """finufft plans per (type, sample, shape, dtype, number of transforms), for one
    trajectory.  Never copied (``deepcopy`` and pickling give an empty cache): plans hold C
    pointers."""

    def __init__(self):
        self.plans: dict = {}
        self.stamp = None

    def __deepcopy__(self, memo):
        return PlanCache()

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.__init__()

    def get(self, stamp, key, build):
        if stamp != self.stamp:
            self.plans.clear()
            self.stamp = stamp
        plan = self.plans.get(key)
        if plan is None:
            plan = self.plans[key] = build()
        return plan


def _stamp(omega: torch.Tensor):
    """Identity of ``omega``'s values: storage, shape, dtype, device and version (inference
    tensors have no version counter: compared by storage)."""
    version = -1 if omega.is_inference() else omega._version
    return (omega.data_ptr(), version, tuple(omega.shape), omega.dtype, omega.device)


def _finufft_run(kind: int, data: torch.Tensor, omega: torch.Tensor, shape, eps: float,
                 cache: PlanCache | None) -> torch.Tensor:
    """finufft type ``kind`` on host copies; ``data`` ``(N, C, H, W)`` or ``(N, C, K)``."""
    import finufft  # noqa: PLC0415  (optional heavy dependency, imported when used)

    device = data.device
    cdt = np.complex128 if data.dtype == torch.complex128 else np.complex64
    rdt = np.float64 if cdt is np.complex128 else np.float32
    arr = data.detach().resolve_conj().cpu().numpy().astype(cdt, copy=False)
    om = omega.detach().cpu().numpy().astype(rdt, copy=False)
    n, c = arr.shape[:2]
    shared = om.shape[0] == 1
    groups = [(slice(None), 0)] if shared else [(slice(i, i + 1), i) for i in range(n)]
    ntr = n * c if shared else c
    stamp = _stamp(omega)
    out = []
    # small transforms in one thread: an OpenMP team costs more than it saves below ~1e5
    # points (and much more on a busy machine)
    threads = max(1, torch.get_num_threads()) if om.shape[1] * ntr >= _THREADED_POINTS else 1
    for sel, i in groups:
        def build(i=i):
            plan = finufft.Plan(kind, tuple(shape), n_trans=ntr, eps=eps,
                                isign=-1 if kind == 2 else 1, dtype=np.dtype(cdt).name,
                                nthreads=threads)
            pts = [np.ascontiguousarray(om[i, :, d]) for d in range(om.shape[-1])]
            plan.setpts(*pts)
            plan._mri_unfold_pts = pts  # keep the point arrays alive with the plan
            return plan

        key = (kind, i, tuple(shape), cdt, ntr, eps)
        plan = cache.get(stamp, key, build) if cache is not None else build()
        block = np.ascontiguousarray(arr[sel].reshape(ntr, *arr.shape[2:]))
        res = plan.execute(block)
        out.append(res.reshape(-1, c, *res.shape[1:]))
    res = np.concatenate(out) if len(out) > 1 else out[0]
    return torch.from_numpy(res).to(device)


def _kb_run(kind: int, data: torch.Tensor, omega: torch.Tensor, shape) -> torch.Tensor:
    """torchkbnufft (unnormalised sums, our sign convention) on ``data``'s device."""
    import torchkbnufft as tkbn  # noqa: PLC0415  (optional dependency, imported when used)

    om = omega.to(device=data.device, dtype=data.real.dtype).transpose(1, 2)
    om = om.expand(data.shape[0], -1, -1) if om.shape[0] == 1 else om
    if kind == 2:
        fn = tkbn.KbNufft(im_size=tuple(shape)).to(device=data.device, dtype=data.real.dtype)
    else:
        fn = tkbn.KbNufftAdjoint(im_size=tuple(shape)).to(device=data.device,
                                                           dtype=data.real.dtype)
    return fn(data.contiguous(), om.contiguous())


def _raw(kind, data, omega, shape, eps, backend, cache):
    if resolve_backend(backend, data.device) == "torchkbnufft":
        return _kb_run(kind, data, omega, shape)
    return _finufft_run(kind, data, omega, shape, eps, cache)


class _Type2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, omega, eps, backend, cache):
        ctx.save_for_backward(omega)
        shape = tuple(x.shape[-omega.shape[-1]:])
        ctx.args = (shape, eps, backend, cache)
        scale = 1.0 / math.sqrt(math.prod(shape))
        return _raw(2, x, omega, shape, eps, backend, cache) * scale

    @staticmethod
    def backward(ctx, grad):
        (omega,) = ctx.saved_tensors
        shape, eps, backend, cache = ctx.args
        return _Type1.apply(grad, omega, shape, eps, backend, cache), None, None, None, None


class _Type1(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, omega, shape, eps, backend, cache):
        ctx.save_for_backward(omega)
        ctx.args = (eps, backend, cache)
        scale = 1.0 / math.sqrt(math.prod(shape))
        return _raw(1, y, omega, shape, eps, backend, cache) * scale

    @staticmethod
    def backward(ctx, grad):
        (omega,) = ctx.saved_tensors
        eps, backend, cache = ctx.args
        return _Type2.apply(grad, omega, eps, backend, cache), None, None, None, None, None


def nufft2(x: torch.Tensor, omega: torch.Tensor, *, eps: float | None = None,
           backend: str = "auto", cache: PlanCache | None = None) -> torch.Tensor:
    """Type 2 (forward) NUFFT: ``x`` ``(N, C, H, W)`` (or ``(N, C, X, Y, Z)``) complex ->
    ``(N, C, K)`` (module doc).

    Args:
        omega: ``(N | 1, K, 2)`` radians (``(N | 1, K, 3)`` for volumes).
        eps: finufft accuracy (default :func:`default_eps` of ``x``'s dtype).
        cache: plans reused across calls for the same ``omega`` tensor.
    """
    eps = default_eps(x.dtype) if eps is None else float(eps)
    return _Type2.apply(x, omega, eps, backend, cache)


def nufft1(y: torch.Tensor, omega: torch.Tensor, shape: tuple[int, ...], *,
           eps: float | None = None, backend: str = "auto",
           cache: PlanCache | None = None) -> torch.Tensor:
    """Type 1 (adjoint) NUFFT: ``y`` ``(N, C, K)`` complex -> ``(N, C, *shape)`` (module doc;
    ``shape`` ``(H, W)`` or ``(X, Y, Z)`` matching ``omega``'s last dimension)."""
    eps = default_eps(y.dtype) if eps is None else float(eps)
    return _Type1.apply(y, omega, tuple(int(s) for s in shape), eps, backend, cache)
