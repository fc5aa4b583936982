"""Operators from configuration and from data: the one place operators are built.

* :func:`build_operator` — the operator of a protocol's ``operator`` table, dispatched on
  ``operator.kind`` through the registry (:mod:`.registry`; the kinds defined here are
  ``block_cs``, ``learned_block_cs`` and ``single_coil``).  Given ``tensors`` (a
  checkpoint's stored operator ``state_dict``, legacy keys accepted) it rebuilds the exact
  operator without the original files.
* :func:`fit_qinit` — the least-squares ``Qinit`` of a block-CS operator from training
  images.
* :func:`kspace_operator` — one Fourier operator for a batch of k-space samples with their
  own masks (and coil maps): used by training, evaluation and reconstruction alike.

Configuration errors raise :class:`mri_unfold.errors.UserError` (and a missing file
``FileNotFoundError``); the messages name the ``operator.*`` key, never a CLI flag.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from ..errors import UserError
from ..masks import load_mask, make_mask
from .base import LinearOperator
from .block_cs import GaussianBlockCS, compute_qinit, image_to_blocks, load_mat_variable
from .fourier import MultiCoilFourier, SingleCoilFourier
from .learned_block_cs import LearnedBlockCS
from .noncartesian import NonCartesianFourier
from .registry import operator_kinds, register_operator, registered_operators

__all__ = ["build_operator", "fit_qinit", "kspace_operator", "authors_matrix_path"]


def build_operator(operator_cfg: dict, tensors: dict | None = None,
                   image_shape: tuple[int, int] | None = None) -> LinearOperator:
    """The operator for ``operator_cfg["kind"]``.

    Args:
        operator_cfg: the protocol's ``operator`` table (all keys of its kind resolved).
        tensors: a checkpoint's stored operator tensors (``op.state_dict()``), to rebuild
            the exact operator; legacy key names are accepted.
        image_shape: ``(H, W)`` of the training images (needed by generated masks).
    Raises:
        UserError: unknown kind (lists the valid ones) or unusable operator settings.
    """
    kind = operator_cfg.get("kind")
    kinds = operator_kinds()
    if kind not in kinds:
        raise UserError(f"operator.kind = {kind!r} is not a known operator; valid kinds: "
                        f"{', '.join(kinds)}")
    return registered_operators()[kind].from_config(operator_cfg, tensors=tensors,
                                                    image_shape=image_shape)


def kspace_operator(mask, coil_maps=None, *, layout: str = "centered",
                    real_input: bool = False) -> SingleCoilFourier | MultiCoilFourier:
    """One Fourier operator for a batch of k-space samples.

    Args:
        mask: bool or 0/1 masks ``(N, 1, H, W)`` or ``(N, H, W)`` (one per sample), or one
            shared ``(H, W)`` mask (also broadcastable forms such as ``(1, W)``).
        coil_maps: ``None`` (single-coil) or complex maps ``(N, C, H, W)`` (per sample) or
            ``(C, H, W)`` (shared).
        layout: k-space layout of ``mask`` (``"centered"`` or ``"unshifted"``).
        real_input: real-valued images (single-coil only).
    Returns:
        :class:`SingleCoilFourier` without maps, else :class:`MultiCoilFourier`; buffers on
        the device of ``mask`` / ``coil_maps``.
    Raises:
        ValueError: ``real_input`` with coil maps, or unusable masks or maps.
    """
    if coil_maps is None:
        return SingleCoilFourier(mask, layout=layout, real_input=real_input)
    if real_input:
        raise ValueError("real_input=True is for single-coil data; multi-coil images are "
                         "complex (give coil_maps=None for single-coil)")
    return MultiCoilFourier(mask, coil_maps, layout=layout)


def sampled_locations(op, batch: int) -> torch.Tensor:
    """The measured locations of a k-space operator as one bool mask per sample:
    ``(N, H, W)`` for :class:`SingleCoilFourier` / :class:`MultiCoilFourier` (a per-coil mask
    must be the same for every coil), ``(N, K)`` for :class:`NonCartesianFourier` (all points
    when it has no mask).

    Raises:
        TypeError: another operator.  ValueError: coils sampled differently.
    """
    if isinstance(op, NonCartesianFourier):
        k = op.num_samples
        m = torch.ones(1, k, dtype=torch.bool) if op.mask is None else op.mask.bool()
        return m.expand(batch, k).clone()
    if not isinstance(op, (SingleCoilFourier, MultiCoilFourier)):
        raise TypeError(f"{type(op).__name__} has no k-space sampling mask")
    h, w = op.domain_shape[-2:]
    m = op.mask.bool()
    m = m.reshape(-1, *m.shape[-3:]) if m.ndim >= 3 else m.reshape(1, 1, *m.shape[-2:])
    if m.shape[1] > 1:
        if not bool((m == m[:, :1]).all()):
            raise ValueError("the coils are sampled at different locations; a split needs one "
                             "mask for all coils")
        m = m[:, :1]
    return m[:, 0].expand(batch, h, w).clone()


def restricted(op, mask: torch.Tensor):
    """``op`` measuring only at ``mask`` (a subset of its locations; shapes as returned by
    :func:`sampled_locations`): the same kind of operator, same layout, coil maps,
    trajectory and density compensation.  Measurements of ``op`` restricted to the subset
    are ``y * mask`` (broadcast over coils), for the non-Cartesian operator too (its range is
    ``√(dcf ⊙ mask) ⊙ k``)."""
    if isinstance(op, NonCartesianFourier):
        return NonCartesianFourier(op.traj, op.image_shape, op.coil_maps, dcf=op.dcf,
                                   mask=mask, real_input=op.real_input, eps=op.eps,
                                   backend=op.backend, toeplitz=op.toeplitz)
    if isinstance(op, MultiCoilFourier):
        return MultiCoilFourier(mask.unsqueeze(1), op.coil_maps, op.layout)
    if isinstance(op, SingleCoilFourier):
        return SingleCoilFourier(mask.unsqueeze(1), op.layout, real_input=op.real_input)
    raise TypeError(f"{type(op).__name__} has no k-space sampling mask")


def fit_qinit(op: GaussianBlockCS, images: torch.Tensor) -> torch.Tensor:
    """Fit and attach ``Qinit`` (ISTA-Net Eq. 11–12) from training images.

    Args:
        op: a block-CS operator (``set_qinit`` is called on it).
        images: ``(N, 1, P, Q)`` training images; the sides are cut to multiples of the
            block size.
    Returns:
        The ``(B², M)`` float32 ``Qinit``.
    Raises:
        UserError: fewer than ``2 M`` training blocks.
    """
    b = op.block_size
    blocks = image_to_blocks(images[..., : images.shape[-2] // b * b,
                                    : images.shape[-1] // b * b].float().cpu(), b)
    blocks = blocks.reshape(-1, b * b)
    m = op.num_measurements
    if len(blocks) < 2 * m:
        raise UserError(f"operator.qinit = 'compute' needs at least {2 * m} training blocks "
                        f"for M = {m}, the data give {len(blocks)}; use more data or "
                        "operator.qinit = \"authors\" / a .mat file")
    q = compute_qinit(op.phi.detach().cpu(), blocks)
    op.set_qinit(q)
    return op.qinit


# ---------------------------------------------------------------------------- block CS
def authors_matrix_path(operator_cfg: dict, which: str) -> Path:
    """Path of the authors' ``phi_0_XX_1089.mat`` (``which="phi"``) or
    ``Initialization_Matrix_XX.mat`` (``which="qinit"``) for ``operator.ratio`` in
    ``operator.matrix_dir``.

    Raises:
        UserError: the file does not exist (names it and the ratios that do exist).
    """
    d = Path(operator_cfg["matrix_dir"])
    pct = f"{round(operator_cfg['ratio'] * 100):d}"
    name = f"phi_0_{pct}_1089.mat" if which == "phi" else f"Initialization_Matrix_{pct}.mat"
    p = d / name
    if not p.is_file():
        pat = r"phi_0_(\d+)_1089\.mat" if which == "phi" else r"Initialization_Matrix_(\d+)\.mat"
        have = sorted(int(m.group(1)) for f in (d.glob("*.mat") if d.is_dir() else [])
                      if (m := re.fullmatch(pat, f.name)))
        raise UserError(f"operator.ratio = {operator_cfg['ratio']}: no authors' matrix {name} in "
                        f"{d} (available ratios in %: {', '.join(map(str, have)) or 'none'}); "
                        "use operator.phi = \"gaussian\" for a seeded random matrix")
    return p


def _load_matrix(spec: str, operator_cfg: dict, which: str) -> torch.Tensor:
    var = "phi" if which == "phi" else "Qinit"
    path = authors_matrix_path(operator_cfg, which) if spec == "authors" else Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"operator.{which} = {spec!r}: no such file")
    try:
        return torch.as_tensor(load_mat_variable(path, var), dtype=torch.float32)
    except KeyError as e:
        raise UserError(str(e.args[0])) from e


def block_cs_from_config(cfg: dict, tensors=None, image_shape=None) -> GaussianBlockCS:
    """``operator.kind = "block_cs"``: fixed Φ (``phi``: ``"gaussian"`` for a seeded
    Gaussian orthonormal matrix, ``"authors"`` or a ``.mat`` path) and ``qinit``
    (``"none"``, ``"compute"`` — filled later by :func:`fit_qinit` —, ``"authors"`` or a
    ``.mat`` path)."""
    if tensors is not None:
        return GaussianBlockCS.from_matrix(tensors["phi"], qinit=tensors.get("qinit"))
    phi_spec = cfg["phi"]
    if phi_spec == "gaussian":
        op = GaussianBlockCS(ratio=cfg["ratio"], block_size=cfg["block_size"], seed=cfg["seed"])
    else:
        try:
            op = GaussianBlockCS.from_matrix(_load_matrix(phi_spec, cfg, "phi"))
        except ValueError as e:
            raise UserError(f"operator.phi = {phi_spec!r}: {e}") from e
    q = cfg["qinit"]
    if q not in ("none", "compute"):
        try:
            op.set_qinit(_load_matrix(q, cfg, "qinit"))
        except ValueError as e:
            raise UserError(f"operator.qinit = {q!r}: {e}") from e
    return op


def learned_block_cs_from_config(cfg: dict, tensors=None, image_shape=None) -> LearnedBlockCS:
    """``operator.kind = "learned_block_cs"``: Φ a parameter trained with the network,
    initialised Gaussian-orthonormal (``ratio``, ``block_size``, ``seed``)."""
    op = LearnedBlockCS(ratio=cfg["ratio"], block_size=cfg["block_size"], seed=cfg["seed"])
    if tensors is not None:
        op.load_state_dict(tensors, strict=False)
    return op


# ---------------------------------------------------------------------------- single-coil
def _mask_for(cfg: dict, image_shape) -> torch.Tensor:
    """The centred-layout float mask of ``operator.mask`` (a file or a ``make_mask`` kind)."""
    spec = cfg["mask"]
    if any(spec.endswith(ext) for ext in (".mat", ".npy", ".npz")):
        if not Path(spec).is_file():
            raise FileNotFoundError(f"operator.mask = {spec!r}: no such mask file")
        return torch.as_tensor(load_mask(spec, layout=cfg["layout"]), dtype=torch.float32)
    if image_shape is None:
        raise UserError(f"operator.mask = {spec!r}: a generated mask needs the image size "
                        "(set data.patch_size)")
    kw = {"ratio": cfg["ratio"], "seed": cfg["seed"]}
    if cfg["center_fraction"] > 0:
        kw["center_fraction"] = cfg["center_fraction"]
    try:
        res = make_mask(spec, tuple(image_shape), **kw)
    except ValueError as e:
        raise UserError(f"operator.mask = {spec!r}: {e}") from e
    return torch.as_tensor(res.mask, dtype=torch.float32)


def single_coil_from_config(cfg: dict, tensors=None, image_shape=None) -> SingleCoilFourier:
    """``operator.kind = "single_coil"``: simulated single-coil MRI of image targets.

    ``operator.mask`` is a mask file (layout ``operator.layout``, converted to the centred
    layout) or a ``make_mask`` kind (centred; ``operator.ratio``, ``operator.seed``,
    ``operator.center_fraction``); ``operator.real_input`` selects real images.  The
    operator's ``layout`` is the resolved one: checkpoints store it as ``_resolved_layout``
    with the config (:func:`mri_unfold.checkpoints.save_checkpoint`); a rebuild from
    ``tensors`` uses it, else ``"centered"`` — every mask built here is centred.
    """
    if tensors is not None:
        mask = tensors["mask"] if "mask" in tensors else tensors["sampling.mask"]
        layout = cfg.get("_resolved_layout", "centered")
    else:
        mask, layout = _mask_for(cfg, image_shape), "centered"
    return SingleCoilFourier(mask, layout=layout, real_input=cfg["real_input"])


register_operator("block_cs", from_config=block_cs_from_config)
register_operator("learned_block_cs", from_config=learned_block_cs_from_config)
register_operator("single_coil", from_config=single_coil_from_config)
