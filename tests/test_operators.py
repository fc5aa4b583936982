"""The operator suite: every operator (block CS and Fourier) against the same contract, then
golden/reference agreement, buffers, Qinit, padding, errors, and mri_unfold.image_ops."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mri_unfold.image_ops import center_crop, complex_center_crop, magnitude, rss
from mri_unfold.operators import (
    GaussianBlockCS,
    LinearOperator,
    MultiCoilFourier,
    SingleCoilFourier,
    compute_qinit,
    crop_to,
    load_mat_variable,
    pad_to_blocks,
)
from mri_unfold.operators.block_cs import blocks_to_image, image_to_blocks

MATRICES = ("reference", "ista_net_pytorch", "sampling_matrix")
GOLDEN_CS = "ista_net_cs_seed20211020.pt"
GOLDEN_MADUN = "madun_cs_seed20211020.pt"
GOLDEN_MRI = "ista_net_plus_mri_seed20211020.pt"


def _rng(seed):
    return np.random.default_rng(seed)


def _mask(shape, seed, p=0.4):
    return _rng(seed).random(shape) < p


def _maps(shape, seed):
    r = _rng(seed)
    return r.standard_normal(shape) + 1j * r.standard_normal(shape)


def _radial30(shared):
    return load_mat_variable(shared.joinpath("data", "mri", "masks", "radial_30.mat"),
                             "mask_matrix")


# name -> (factory(shared) -> operator, image shape (N, 1, H, W))
CASES = {
    "bcs_authors_phi25": (lambda s: GaussianBlockCS.from_mat_files(
        s.joinpath(*MATRICES, "phi_0_25_1089.mat")), (2, 1, 33, 66)),
    "bcs_b33_r10": (lambda s: GaussianBlockCS(0.10, 33, seed=0), (1, 1, 33, 33)),
    "bcs_b8_r25": (lambda s: GaussianBlockCS(0.25, 8, seed=1), (2, 1, 16, 24)),
    "bcs_b5_r50": (lambda s: GaussianBlockCS(0.5, 5, seed=2), (3, 1, 15, 10)),
    "sc_centered": (lambda s: SingleCoilFourier(_mask((7, 9), 1)), (2, 1, 7, 9)),
    "sc_unshifted": (lambda s: SingleCoilFourier(_mask((8, 5), 2), "unshifted"), (3, 1, 8, 5)),
    "sc_columns": (lambda s: SingleCoilFourier(_mask((1, 9), 3, 0.5)), (2, 1, 6, 9)),
    "sc_per_sample": (lambda s: SingleCoilFourier(torch.from_numpy(_mask((2, 1, 5, 7), 4))),
                      (2, 1, 5, 7)),
    "sc_centered_real": (lambda s: SingleCoilFourier(_mask((9, 7), 5), real_input=True),
                         (2, 1, 9, 7)),
    "sc_unshifted_real_radial30": (lambda s: SingleCoilFourier(
        _radial30(s), "unshifted", real_input=True), (1, 1, 256, 256)),
    "mc_shared_maps": (lambda s: MultiCoilFourier(_mask((7, 9), 6), _maps((3, 7, 9), 7)),
                       (2, 1, 7, 9)),
    "mc_per_sample_unshifted": (lambda s: MultiCoilFourier(
        _mask((1, 5), 8, 0.6), _maps((2, 4, 6, 5), 9), "unshifted"), (2, 1, 6, 5)),
    "mc_per_sample_masks_and_maps": (lambda s: MultiCoilFourier(
        torch.from_numpy(_mask((3, 6, 5), 10)), _maps((3, 2, 6, 5), 11)), (3, 1, 6, 5)),
}


_BUILT: dict[str, LinearOperator] = {}


@pytest.fixture(params=sorted(CASES))
def case(request, shared):
    """(operator, image shape); each test gets its own copy (tests may call ``.to``)."""
    factory, shape = CASES[request.param]
    if request.param not in _BUILT:
        _BUILT[request.param] = factory(shared)
    return copy.deepcopy(_BUILT[request.param]), shape


def _random_like(shape, dtype, seed):
    r = _rng(seed)
    a = r.standard_normal(shape)
    if dtype.is_complex:
        a = a + 1j * r.standard_normal(shape)
    return torch.from_numpy(a).to(dtype)


def _image(op, shape, seed, precision=64):
    if op.complex_domain:
        dtype = torch.complex128 if precision == 64 else torch.complex64
    else:
        dtype = torch.float64 if precision == 64 else torch.float32
    return _random_like(shape, dtype, seed)


def _inner(a, b):
    """Real inner product Re <a, b> (the operators' adjoint convention)."""
    return torch.sum(a.conj() * b).real.item() if a.is_complex() or b.is_complex() \
        else torch.sum(a * b).item()


# ---------------------------------------------------------------- the common contract
def test_is_linear_operator_with_domain_attributes(case):
    op, _ = case
    assert isinstance(op, LinearOperator)
    if isinstance(op, GaussianBlockCS):
        assert op.complex_domain is False and op.block_size in (5, 8, 33)
    elif isinstance(op, SingleCoilFourier):
        assert op.complex_domain is (not op.real_input) and op.block_size is None
    else:
        assert op.complex_domain is True and op.block_size is None


def test_dot_product_adjoint(case):
    op, shape = case
    x = _image(op, shape, seed=10)
    y_like = op(x)
    y = _random_like(tuple(y_like.shape), y_like.dtype, seed=11)
    lhs, rhs = _inner(op(x), y), _inner(x, op.adjoint(y))
    assert abs(lhs - rhs) / abs(lhs) < 1e-10
    assert op.adjoint(y).shape == x.shape and op.adjoint(y).dtype == x.dtype


def test_linearity(case):
    op, shape = case
    x1, x2 = _image(op, shape, seed=12), _image(op, shape, seed=13)
    a, b = (0.7 - 1.3j, -2.1 + 0.4j) if op.complex_domain else (0.7, -2.1)
    lhs = op(a * x1 + b * x2)
    rhs = a * op(x1) + b * op(x2)
    assert torch.allclose(lhs, rhs, rtol=0, atol=1e-12 * rhs.abs().max().item())


def test_normal_equals_adjoint_of_forward(case):
    op, shape = case
    x = _image(op, shape, seed=14)
    n = op.normal(x)
    ref = op.adjoint(op(x))
    assert n.shape == x.shape and n.dtype == x.dtype
    torch.testing.assert_close(n, ref, rtol=0, atol=1e-12)


def test_single_precision_follows_input(case):
    op, shape = case
    x64 = _image(op, shape, seed=15)
    x32 = x64.to(torch.complex64 if x64.is_complex() else torch.float32)
    y32, y64 = op(x32), op(x64)
    assert y32.dtype in (torch.float32, torch.complex64)
    assert y64.dtype in (torch.float64, torch.complex128)
    torch.testing.assert_close(y32.to(y64.dtype), y64, rtol=0, atol=1e-5)
    assert op.adjoint(y32).dtype == x32.dtype and op.normal(x32).dtype == x32.dtype


def test_gradient_through_closed_form_normal(case):
    op, shape = case
    x = _image(op, shape, seed=16).requires_grad_(True)
    w = _image(op, shape, seed=17)
    (g1,) = torch.autograd.grad(_real_sum(op.normal(x), w), x)
    (g2,) = torch.autograd.grad(_real_sum(op.adjoint(op(x)), w), x)
    torch.testing.assert_close(g1, g2, rtol=0, atol=1e-12)


def _real_sum(a, w):
    return (a.conj() * w).real.sum() if a.is_complex() else (a * w).sum()


# ---------------------------------------------------------------- block CS references
def _golden(golden_dir, name):
    return torch.load(golden_dir / name, weights_only=True)


def test_block_cs_from_matrix_matches_golden_x_blocks_phi_t(golden_dir):
    g = _golden(golden_dir, GOLDEN_CS)
    op = GaussianBlockCS.from_matrix(g["Phi"])
    xb = g["x_blocks"]  # (4, 1089): four row-major 33x33 blocks -> one 33x132 image
    img = blocks_to_image(xb.reshape(1, 1, 1, 4, 1089), 33)
    assert img.shape == (1, 1, 33, 132)
    torch.testing.assert_close(img[0, 0, :, 33:66].reshape(-1), xb[1], rtol=0, atol=0)
    y = op(img)  # (1, 272, 1, 4)
    assert y.shape == (1, 272, 1, 4)
    torch.testing.assert_close(y[0, :, 0, :].T, g["y"], rtol=1e-5, atol=1e-5)
    y64 = op(img.double())[0, :, 0, :].T
    ref64 = xb.double() @ g["Phi"].double().T
    torch.testing.assert_close(y64, ref64, rtol=0, atol=1e-12)


def test_block_cs_matches_madun_golden_y(golden_dir):
    g = _golden(golden_dir, GOLDEN_MADUN)
    op = GaussianBlockCS.from_matrix(g["Phi"])
    assert g["image"].shape == (1, 1, 66, 99)
    y = op(g["image"])
    assert y.shape == tuple(g["y"].shape) == (1, 272, 2, 3)
    torch.testing.assert_close(y, g["y"], rtol=1e-5, atol=1e-5)


def test_authors_phi_and_qinit_load_from_mat_files(shared):
    d = shared.joinpath(*MATRICES)
    op = GaussianBlockCS.from_mat_files(d / "phi_0_25_1089.mat",
                                        d / "Initialization_Matrix_25.mat")
    phi = load_mat_variable(d / "phi_0_25_1089.mat", "phi")
    q = load_mat_variable(d / "Initialization_Matrix_25.mat", "Qinit")
    assert op.phi.shape == (272, 1089) and op.qinit.shape == (1089, 272)
    assert op.block_size == 33 and op.num_measurements == 272
    np.testing.assert_allclose(op.phi.numpy(), phi.astype(np.float32), rtol=0, atol=0)
    # the authors' rows are orthonormal
    np.testing.assert_allclose(phi @ phi.T, np.eye(272), atol=1e-6)
    x = _random_like((1, 1, 33, 66), torch.float64, seed=20)
    y = op(x)
    v = op.linear_init(y)  # Qinit y per block
    phi32, q32 = (a.astype(np.float32).astype(np.float64) for a in (phi, q))  # stored float32
    ref = image_to_blocks(x, 33)[0, 0].numpy() @ phi32.T @ q32.T
    np.testing.assert_allclose(image_to_blocks(v, 33)[0, 0].numpy(), ref, rtol=0, atol=1e-9)


def test_compute_qinit_square_recovers_exactly():
    op = GaussianBlockCS(1.0, 4, seed=3)  # M == B² = 16: Φ invertible
    xb = _random_like((200, 16), torch.float64, seed=21)
    op.set_qinit(compute_qinit(op.phi, xb))
    x = _random_like((2, 1, 8, 12), torch.float64, seed=22)
    torch.testing.assert_close(op.linear_init(op(x)), x, rtol=0, atol=2e-5)  # float32 Q


def test_compute_qinit_matches_numpy_lstsq():
    op = GaussianBlockCS(0.25, 6, seed=4)  # M = 9 of 36
    xb = _rng(23).random((500, 36))
    q = compute_qinit(op.phi, xb)
    assert q.shape == (36, 9) and q.dtype == torch.float32
    y = xb @ op.phi.double().numpy().T  # (N, M)
    q_ref = np.linalg.lstsq(y, xb, rcond=None)[0].T  # min_Q ||Q Y - X||
    np.testing.assert_allclose(q.numpy(), q_ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"x_blocks must be \(N, 36\), got \(5, 35\)"):
        compute_qinit(op.phi, np.zeros((5, 35)))


@pytest.mark.parametrize("side,authors,minimal", [(66, 99, 66), (70, 99, 99), (33, 66, 33),
                                                 (1, 33, 33)])
def test_pad_to_blocks_conventions(side, authors, minimal):
    x = torch.arange(side * 5, dtype=torch.float64).reshape(1, 1, side, 5) + 1
    for conv, expect in (("authors", authors), ("minimal", minimal)):
        p, size = pad_to_blocks(x, 33, conv)
        assert p.shape == (1, 1, expect, 33) and size == (side, 5)
        assert p[..., side:, :].abs().sum() == 0 and p[..., 5:].abs().sum() == 0
        torch.testing.assert_close(crop_to(p, size), x, rtol=0, atol=0)
    with pytest.raises(ValueError, match="convention must be one of"):
        pad_to_blocks(x, 33, "matlab")


# ---------------------------------------------------------------- Fourier references
def test_real_input_normal_matches_numpy_and_ista_net_plus_golden(golden_dir):
    g = _golden(golden_dir, GOLDEN_MRI)
    mask, image = g["mask"], g["image"]
    assert mask.shape == (64, 48) and image.shape == (1, 1, 64, 48)
    op = SingleCoilFourier(mask, layout="unshifted", real_input=True)
    torch.testing.assert_close(op.normal(image), g["PhiTb"], rtol=1e-5, atol=1e-5)
    x = image.double()
    ref = np.real(np.fft.ifft2(mask.numpy() * np.fft.fft2(x.numpy())))
    np.testing.assert_allclose(op.normal(x).numpy(), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(op.adjoint(op(x)).numpy(), ref, rtol=0, atol=1e-12)


def test_centered_and_unshifted_layouts_agree_with_shifted_mask():
    m = _mask((7, 9), 30)
    x = _random_like((1, 1, 7, 9), torch.complex128, seed=31)
    ku = SingleCoilFourier(m, "unshifted")(x)
    kc = SingleCoilFourier(np.fft.fftshift(m), "centered")(x)
    # fft2c(x) = fftshift(fft2(ifftshift(x))): undo the image-domain shift by a phase-free roll
    kc_ref = torch.fft.fftshift(SingleCoilFourier(m, "unshifted")(
        torch.fft.ifftshift(x, dim=(-2, -1))), dim=(-2, -1))
    torch.testing.assert_close(kc, kc_ref, rtol=0, atol=1e-12)
    assert (ku != 0).sum() == (kc != 0).sum() == int(m.sum())


def test_multicoil_matches_sigpy_sense():
    import sigpy.mri

    maps = _maps((3, 7, 9), 40)
    mask = _mask((7, 9), 41).astype(np.float64)
    x = _random_like((7, 9), torch.complex128, seed=42).numpy()
    y = _random_like((3, 7, 9), torch.complex128, seed=43).numpy()
    sense = sigpy.mri.linop.Sense(maps, weights=mask)  # centred, orthonormal FFT; sqrt(w) = w
    op = MultiCoilFourier(mask, maps)
    np.testing.assert_allclose(op(torch.from_numpy(x)[None, None])[0].numpy(), sense(x),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(op.adjoint(torch.from_numpy(y)[None])[0, 0].numpy(),
                               sense.H(y), rtol=0, atol=1e-12)


def test_single_coil_equals_multicoil_with_unit_map():
    m = _mask((6, 7), 44)
    x = _random_like((2, 1, 6, 7), torch.complex128, seed=45)
    sc = SingleCoilFourier(m)
    mc = MultiCoilFourier(m, np.ones((1, 6, 7)))
    torch.testing.assert_close(mc(x), sc(x), rtol=0, atol=1e-14)
    torch.testing.assert_close(mc.normal(x), sc.normal(x), rtol=0, atol=1e-14)


def test_per_sample_and_column_masks_broadcast():
    masks = torch.from_numpy(_mask((2, 1, 5, 7), 46))
    x = _random_like((2, 1, 5, 7), torch.complex128, seed=47)
    y = SingleCoilFourier(masks)(x)
    for i in range(2):
        torch.testing.assert_close(y[i:i + 1], SingleCoilFourier(masks[i, 0])(x[i:i + 1]),
                                   rtol=0, atol=0)
    cols = _mask((1, 7), 48, 0.5)
    torch.testing.assert_close(SingleCoilFourier(cols)(x),
                               SingleCoilFourier(np.repeat(cols, 5, axis=0))(x), rtol=0, atol=0)


@pytest.mark.parametrize("make", [
    lambda m: SingleCoilFourier(m), lambda m: SingleCoilFourier(m, "unshifted", True),
    lambda m: MultiCoilFourier(m, _maps((2, 8, 6), 50))])
def test_masking_is_exact_positive_zero(make):
    m = _mask((8, 6), 51)
    op = make(torch.from_numpy(m.astype(np.float32)))  # float 0/1 mask is accepted
    x = _image(op, (3, 1, 8, 6), seed=52)
    k = op(x)
    unsampled = ~torch.from_numpy(m).expand_as(k)
    assert (k[unsampled] == 0).all() and (k[~unsampled] != 0).all()
    assert not torch.signbit(k.real[unsampled]).any()
    assert not torch.signbit(k.imag[unsampled]).any()
    naive = torch.fft.fft2(x, norm="ortho") * torch.from_numpy(m)  # what multiplication leaks
    assert torch.signbit(naive.real[~torch.from_numpy(m).expand_as(naive)]).any()


# ---------------------------------------------------------------- buffers
DEVICES = ["cpu", "meta"] + (["cuda"] if torch.cuda.is_available() else [])


def _fresh_twin(op):
    """A freshly constructed operator of the same kind/shapes but different data."""
    if isinstance(op, GaussianBlockCS):
        return GaussianBlockCS.from_matrix(torch.zeros_like(op.phi))
    if isinstance(op, SingleCoilFourier):
        return SingleCoilFourier(torch.ones_like(op.mask), op.layout, op.real_input)
    return MultiCoilFourier(torch.ones_like(op.mask), torch.zeros_like(op.coil_maps), op.layout)


def test_state_dict_round_trip_into_fresh_operator(case):
    op, shape = case
    twin = _fresh_twin(op)
    twin.load_state_dict(op.state_dict())
    x = _image(op, shape, seed=60)
    torch.testing.assert_close(twin(x), op(x), rtol=0, atol=0)
    assert set(twin.state_dict()) == set(op.state_dict())


def test_qinit_survives_state_dict_into_operator_built_without_it():
    op = GaussianBlockCS(0.25, 5, seed=5)
    op.set_qinit(compute_qinit(op.phi, _rng(61).random((100, 25))))
    fresh = GaussianBlockCS(0.25, 5, seed=6)
    assert fresh.qinit is None
    fresh.load_state_dict(op.state_dict())
    torch.testing.assert_close(fresh.qinit, op.qinit, rtol=0, atol=0)
    bad = {"phi": op.phi, "qinit": torch.zeros(3, 3)}
    with pytest.raises(RuntimeError, match=r"qinit: Qinit must have shape \(25, 6\)"):
        GaussianBlockCS(0.25, 5, seed=6).load_state_dict(bad)


@pytest.mark.parametrize("device", DEVICES)
def test_buffers_follow_to_dtype_and_device(case, device):
    op, shape = case
    op = op.to(torch.float64)
    if isinstance(op, GaussianBlockCS):
        assert op.phi.dtype == torch.float64
    elif isinstance(op, MultiCoilFourier):
        assert op.coil_maps_ri.dtype == torch.float64 and op.coil_maps.dtype == torch.complex128
        assert op.coil_maps.imag.abs().sum() > 0  # imaginary part kept
    else:
        assert op.mask.dtype == torch.bool
    op = op.to(device)
    assert all(b.device.type == device for b in op.buffers())
    x = _image(op, shape, seed=62).to(device)
    y = op(x)
    assert y.device.type == device and op.adjoint(y).device.type == device
    assert op.normal(x).shape == x.shape


# ---------------------------------------------------------------- errors
_M = _mask((6, 5), 70)


def _z(*shape, dtype=torch.complex128):
    return torch.zeros(*shape, dtype=dtype)


# (id, call raising, exception type, message pattern)
ERRORS = [
    ("bcs_sides", lambda: GaussianBlockCS(0.25, 8)(_z(1, 1, 16, 12, dtype=torch.float32)),
     ValueError, r"not multiples of the block size 8; pad with pad_to_blocks"),
    ("bcs_channels", lambda: GaussianBlockCS(0.25, 8)(_z(1, 2, 16, 16, dtype=torch.float32)),
     ValueError, r"expects images \(N, 1, H, W\), got \(1, 2, 16, 16\)"),
    ("bcs_adjoint", lambda: GaussianBlockCS(0.25, 8).adjoint(_z(1, 15, 2, 2, dtype=torch.float32)),
     ValueError, r"adjoint expects \(N, 16, H/B, W/B\), got \(1, 15, 2, 2\)"),
    ("bcs_phi", lambda: GaussianBlockCS.from_matrix(np.zeros((16, 63)), block_size=8),
     ValueError, r"phi must have shape \(M, 64\) for block size 8"),
    ("mask_values", lambda: SingleCoilFourier(np.where(_M, 1.0, 0.5)),
     ValueError, r"mask must be binary .* e.g. \[0.5\]"),
    ("mask_complex", lambda: SingleCoilFourier(_M.astype(np.complex64)),
     ValueError, r"mask must be real and binary"),
    ("mask_ndim", lambda: SingleCoilFourier(np.ones((1, 1, 1, 6, 5))),
     ValueError, r"mask must be \(H, W\) or broadcastable"),
    ("layout", lambda: SingleCoilFourier(_M, "shifted"), ValueError, r"layout must be one of"),
    ("sc_x_ndim", lambda: SingleCoilFourier(_M)(_z(6, 5)),
     ValueError, r"x must have shape \(N, 1, H, W\), got \(6, 5\)"),
    ("sc_x_size", lambda: SingleCoilFourier(_M)(_z(1, 1, 6, 6)),
     ValueError, r"mask of shape \(6, 5\) does not broadcast to the k-space shape \(1, 1, 6, 6\)"),
    ("sc_normal_size", lambda: SingleCoilFourier(_M).normal(_z(1, 1, 5, 6)),
     ValueError, r"mask of shape \(6, 5\) does not broadcast"),
    ("sc_x_dtype", lambda: SingleCoilFourier(_M)(_z(1, 1, 6, 5, dtype=torch.int64)),
     TypeError, r"x must be complex64/complex128 \(or float32/float64\), got torch.int64"),
    ("sc_y_shape", lambda: SingleCoilFourier(_M).adjoint(_z(1, 2, 6, 5)),
     ValueError, r"y must have shape \(N, 1, H, W\), got \(1, 2, 6, 5\)"),
    ("sc_real_input_dtype", lambda: SingleCoilFourier(_M, real_input=True)(_z(1, 1, 6, 5)),
     TypeError, r"real_input=True\) expects a real x .* got torch.complex128"),
    ("mc_maps_ndim", lambda: MultiCoilFourier(_M, np.ones((6, 5), complex)),
     ValueError, r"coil_maps must have shape \(C, H, W\) or \(N, C, H, W\), got \(6, 5\)"),
    ("mc_y_coils", lambda: MultiCoilFourier(_M, _maps((2, 3, 6, 5), 72)).adjoint(_z(2, 4, 6, 5)),
     ValueError, r"y must have shape \(N, 3, H, W\), got \(2, 4, 6, 5\)"),
    ("mc_x_batch", lambda: MultiCoilFourier(_M, _maps((2, 3, 6, 5), 72))(_z(3, 1, 6, 5)),
     ValueError, r"x of shape \(3, 1, 6, 5\) does not match coil_maps \(2, 3, 6, 5\)"),
    ("mc_x_size", lambda: MultiCoilFourier(_M, _maps((2, 3, 6, 5), 72))(_z(2, 1, 6, 4)),
     ValueError, r"x of shape \(2, 1, 6, 4\) does not match coil_maps"),
]


@pytest.mark.parametrize("call,exc,pattern", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_name_the_argument_and_expected_shape(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# ---------------------------------------------------------------- image_ops
def test_magnitude_and_rss_values():
    x = torch.tensor([[3 + 4j, -1j], [0j, -2 + 0j]], dtype=torch.complex128).reshape(1, 2, 1, 2)
    torch.testing.assert_close(magnitude(x), torch.tensor([[[[5.0, 1.0]], [[0.0, 2.0]]]],
                                                          dtype=torch.float64))
    r = rss(x)
    assert r.shape == (1, 1, 2) and r.dtype == torch.float64
    torch.testing.assert_close(r, torch.tensor([[[5.0, 5.0 ** 0.5]]], dtype=torch.float64))
    assert rss(x, keepdim=True).shape == (1, 1, 1, 2)
    a = _maps((2, 4, 5, 3), 80)
    np.testing.assert_allclose(rss(torch.from_numpy(a), dim=1).numpy(),
                               np.sqrt((np.abs(a) ** 2).sum(1)), rtol=1e-14)
    with pytest.raises(ValueError, match=r"rss: dim=4 is out of range for a tensor of shape "
                                         r"\(1, 2, 1, 2\)"):
        rss(x, dim=4)


@pytest.mark.parametrize("size,crop,start", [((7, 9), (3, 4), (2, 2)), ((8, 8), (3, 5), (2, 1)),
                                             ((5, 6), (5, 6), (0, 0)), ((6, 7), (1, 1), (2, 3))])
def test_center_crop_fastmri_semantics_odd_sizes(size, crop, start):
    x = torch.arange(size[0] * size[1]).reshape(1, *size) * (1 + 1j)
    c = center_crop(x, crop)
    torch.testing.assert_close(c, x[..., start[0]:start[0] + crop[0],
                                    start[1]:start[1] + crop[1]], rtol=0, atol=0)
    cc = complex_center_crop(torch.view_as_real(x), crop)
    torch.testing.assert_close(torch.view_as_complex(cc.contiguous()), c, rtol=0, atol=0)


def test_center_crop_errors():
    x = torch.zeros(1, 4, 5)
    with pytest.raises(ValueError, match=r"center_crop: crop shape \(5, 5\) must be positive and "
                                         r"no larger than the image size \(4, 5\)"):
        center_crop(x, (5, 5))
    with pytest.raises(ValueError, match=r"shape must be a pair \(h, w\), got 3"):
        center_crop(x, 3)
    with pytest.raises(ValueError, match=r"complex_center_crop: x must have shape \(\.\.\., H, W, "
                                         r"2\), got \(1, 4, 5\)"):
        complex_center_crop(x, (2, 2))


def test_multicoil_normal_closed_form_per_sample_centred_and_cache_refresh():
    """The shift-folded normal of MultiCoilFourier: per-sample maps on odd sizes (fftshift !=
    ifftshift), and its cached shifted maps follow in-place changes of the buffer."""
    g = torch.Generator().manual_seed(90)
    maps = torch.randn(2, 3, 7, 9, dtype=torch.complex128, generator=g)
    mask = torch.rand(7, 9, generator=g) < 0.5
    op = MultiCoilFourier(mask, maps).to(torch.float64)
    x = torch.randn(2, 1, 7, 9, dtype=torch.complex128, generator=g)
    assert op.layout == "centered"
    assert torch.allclose(op.normal(x), op.adjoint(op(x)), rtol=0, atol=1e-12)
    with torch.no_grad():
        op.coil_maps_ri.mul_(-2.0)  # in place: same storage, new version
    assert torch.allclose(op.normal(x), op.adjoint(op(x)), rtol=0, atol=1e-12)
    assert torch.allclose(op.normal(x), 4 * MultiCoilFourier(mask, maps).to(torch.float64).normal(x),
                          rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"coil_maps"):
        op.normal(torch.zeros(2, 1, 7, 8, dtype=torch.complex128))
    with pytest.raises(ValueError, match=r"coil_maps"):
        op.normal(torch.zeros(3, 1, 7, 9, dtype=torch.complex128))
