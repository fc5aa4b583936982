"""Measurement tasks: how a training batch becomes ``(y, op, target)``.

The training loop is the same for every model × operator × data set; what differs is
the *task*, chosen by the protocol's ``operator.kind`` from a registry:

* ``block_cs`` — natural-image block CS with a fixed Φ (Gaussian orthonormal for a seed,
  the authors' ``phi_0_XX_1089.mat``, or any ``.mat`` file), optional ``Qinit``;
* ``learned_block_cs`` — Φ is a parameter trained with the network (MADUN Table 4);
* ``single_coil`` — simulated single-coil MRI from image targets:
  ``SingleCoilFourier(mask, real_input=...)`` with a mask file or a ``make_mask`` kind;
* ``fastmri`` — fastMRI batches carrying their own masks and coil maps
  (:mod:`.fastmri_task`).

Other helpers register further kinds (e.g. fastMRI batches carrying their own masks and
coil maps) with :func:`register_task`.  A task factory is called as
``factory(operator_cfg, tensors=None, image_shape=None)`` and returns a :class:`Task`;
``tensors`` (the operator's ``state_dict`` saved in a checkpoint) rebuilds the exact
operator without the original files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..errors import UserError

_TASKS: dict[str, Callable[..., "Task"]] = {}


def register_task(kind: str):
    """Decorator registering a task factory under ``operator.kind = kind``."""

    def deco(fn):
        _TASKS[kind] = fn
        return fn

    return deco


def task_kinds() -> list[str]:
    return sorted(_TASKS)


def build_task(operator_cfg: dict, tensors: dict | None = None,
               image_shape: tuple[int, int] | None = None) -> "Task":
    """Build the task for ``operator_cfg["kind"]``.

    Raises:
        UserError: unknown kind (lists the registered ones) or unusable operator settings.
    """
    kind = operator_cfg.get("kind")
    if kind not in _TASKS:
        raise UserError(f"operator.kind = {kind!r} is not a known task; valid kinds: "
                        f"{', '.join(task_kinds())}")
    return _TASKS[kind](operator_cfg, tensors=tensors, image_shape=image_shape)


class Task:
    """One operator held for the whole run; ``prepare`` measures a batch of targets.

    Attributes:
        op: the :class:`~mri_unfold.operators.LinearOperator` (a module: moved with ``.to``,
            its parameters — e.g. a learned Φ — are optimised with the model).
        operator_cfg: the protocol's ``operator`` table (stored in checkpoints).
    """

    def __init__(self, op: torch.nn.Module, operator_cfg: dict):
        self.op = op
        self.operator_cfg = dict(operator_cfg)

    def to(self, device) -> "Task":
        self.op.to(device)
        return self

    def target_from_batch(self, batch) -> torch.Tensor:
        """The ground-truth image ``(N, 1, H, W)`` float32 of a batch (tensor or (x, ...))."""
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        if x.ndim == 3:
            x = x.unsqueeze(1)
        return x

    def prepare(self, batch, device=None):
        """``batch`` -> ``(y, op, target)`` with ``y = op(target)`` on ``device``."""
        x = self.target_from_batch(batch)
        if device is not None:
            x = x.to(device, non_blocking=True)
        if getattr(self.op, "complex_domain", False) and not x.is_complex():
            x = x.to(torch.complex64)
        return self.op(x), self.op, x

    def loss_inputs(self, x: torch.Tensor, target: torch.Tensor, aux: dict):
        """``(x, target, aux)`` as the loss sees them (identity; a task may crop, e.g. fastMRI
        to the recon size)."""
        return x, target, aux

    def operator_state(self) -> dict[str, torch.Tensor]:
        """Tensors that rebuild the operator (``op.state_dict()``, non-None entries)."""
        return {k: v.detach() for k, v in self.op.state_dict().items() if v is not None}


# ---------------------------------------------------------------------------- block CS
def _pct(ratio: float) -> str:
    return f"{round(ratio * 100):d}"


def authors_matrix_path(operator_cfg: dict, which: str) -> Path:
    """Path of the authors' ``phi_0_XX_1089.mat`` (``which="phi"``) or
    ``Initialization_Matrix_XX.mat`` (``which="qinit"``) for ``operator.ratio``.

    Raises:
        UserError: the file does not exist (names it and the ratios that do exist).
    """
    d = Path(operator_cfg["matrix_dir"])
    pct = _pct(operator_cfg["ratio"])
    name = f"phi_0_{pct}_1089.mat" if which == "phi" else f"Initialization_Matrix_{pct}.mat"
    p = d / name
    if not p.is_file():
        import re

        pat = r"phi_0_(\d+)_1089\.mat" if which == "phi" else r"Initialization_Matrix_(\d+)\.mat"
        have = sorted(int(m.group(1)) for f in (d.glob("*.mat") if d.is_dir() else [])
                      if (m := re.fullmatch(pat, f.name)))
        raise UserError(f"operator.ratio = {operator_cfg['ratio']}: no authors' matrix {name} in "
                        f"{d} (available ratios in %: {', '.join(map(str, have)) or 'none'}); "
                        "use operator.phi = \"gaussian\" for a seeded random matrix")
    return p


def _load_matrix(spec: str, operator_cfg: dict, which: str):
    from ..operators import load_mat_variable

    var = "phi" if which == "phi" else "Qinit"
    path = authors_matrix_path(operator_cfg, which) if spec == "authors" else Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"operator.{which} = {spec!r}: no such file")
    try:
        return torch.as_tensor(load_mat_variable(path, var), dtype=torch.float32)
    except KeyError as e:
        raise UserError(str(e.args[0])) from e


@register_task("block_cs")
def block_cs_task(cfg: dict, tensors=None, image_shape=None) -> Task:
    """Fixed Φ block CS (``GaussianBlockCS``); ``qinit="compute"`` is filled in by the trainer
    from training blocks (:meth:`BlockCSTask.compute_qinit`)."""
    from ..operators import GaussianBlockCS

    if tensors is not None:
        op = GaussianBlockCS.from_matrix(tensors["phi"], qinit=tensors.get("qinit"))
        return BlockCSTask(op, cfg)
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
    return BlockCSTask(op, cfg)


class BlockCSTask(Task):
    """Block CS task; can compute the least-squares ``Qinit`` from training blocks."""

    @property
    def needs_qinit(self) -> bool:
        return self.operator_cfg.get("qinit") == "compute" and getattr(self.op, "qinit", 1) is None

    def compute_qinit(self, images: torch.Tensor) -> None:
        """Set ``Qinit`` (ISTA-Net Eq. 11–12) from ``(N, 1, P, P)`` training images,
        P a multiple of the block size."""
        from ..operators import compute_qinit
        from ..operators.block_cs import image_to_blocks

        b = self.op.block_size
        blocks = image_to_blocks(images[..., : images.shape[-2] // b * b,
                                        : images.shape[-1] // b * b].float().cpu(), b)
        blocks = blocks.reshape(-1, b * b)
        m = self.op.num_measurements
        if len(blocks) < 2 * m:
            raise UserError(f"operator.qinit = 'compute' needs at least {2 * m} training blocks "
                            f"for M = {m}, the data give {len(blocks)}; use more data or "
                            "operator.qinit = \"authors\" / a .mat file")
        q = compute_qinit(self.op.phi.detach().cpu(), blocks)
        self.op.set_qinit(q)


@register_task("learned_block_cs")
def learned_block_cs_task(cfg: dict, tensors=None, image_shape=None) -> Task:
    """Jointly learned Φ (``LearnedBlockCS``, a parameter initialised Gaussian-orthonormal)."""
    try:
        from ..operators import LearnedBlockCS
    except ImportError as e:
        raise UserError("operator.kind = 'learned_block_cs' needs "
                        "mri_unfold.operators.LearnedBlockCS, which is not available") from e
    op = LearnedBlockCS(ratio=cfg["ratio"], block_size=cfg["block_size"], seed=cfg["seed"])
    if tensors is not None:
        op.load_state_dict(tensors, strict=False)
    return Task(op, cfg)


# ---------------------------------------------------------------------------- single-coil MRI
def _mask_for(cfg: dict, image_shape):
    spec = cfg["mask"]
    if any(spec.endswith(ext) for ext in (".mat", ".npy", ".npz")):
        from ..masks import load_mask

        if not Path(spec).is_file():
            raise FileNotFoundError(f"operator.mask = {spec!r}: no such mask file")
        mask = load_mask(spec, layout=cfg["layout"])  # returned in the centred layout
        return torch.as_tensor(mask, dtype=torch.float32), "centered"
    from ..masks import make_mask

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
    return torch.as_tensor(res.mask, dtype=torch.float32), "centered"


@register_task("single_coil")
def single_coil_task(cfg: dict, tensors=None, image_shape=None) -> Task:
    """Simulated single-coil MRI: image targets measured by ``SingleCoilFourier``.

    ``operator.mask`` is a mask file (layout ``operator.layout``) or a ``make_mask`` kind
    (centred layout, ``operator.ratio``, ``operator.seed``, ``operator.center_fraction``).
    """
    from ..operators import SingleCoilFourier

    if tensors is not None:
        mask, layout = tensors["mask"], cfg.get("_resolved_layout", cfg["layout"])
    else:
        mask, layout = _mask_for(cfg, image_shape)
    cfg = dict(cfg, _resolved_layout=layout)
    op = SingleCoilFourier(mask, layout=layout, real_input=cfg["real_input"])
    return Task(op, cfg)


# tasks defined in their own modules (imported for registration)
from . import fastmri_task  # noqa: E402,F401  (registers "fastmri")
