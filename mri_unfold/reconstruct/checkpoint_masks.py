"""What a checkpoint says about the undersampling it was trained for, for ``recon`` and
``compare``: :func:`mask_of_checkpoint` (the Cartesian mask of a single-coil CS-MRI
checkpoint, reused on image inputs) and :func:`require_mri_checkpoint` (natural-image block
CS networks refused where MRI k-space is measured)."""
from __future__ import annotations

import numpy as np

from .. import masks
from ..errors import UserError
from .inputs import MaskSpec

__all__ = ["mask_of_checkpoint", "MASK_CHECKPOINT_KINDS", "BLOCK_CS_KINDS",
           "require_mri_checkpoint"]


#: Operator kinds whose checkpoints carry a Cartesian mask that recon can reuse.
MASK_CHECKPOINT_KINDS = ("single_coil", "learned_mask")
#: Operator kinds of natural-image block compressive sensing (their networks are not MRI's).
BLOCK_CS_KINDS = ("block_cs", "learned_block_cs", "overlap_block_cs")


def require_mri_checkpoint(ck, path, what: str) -> None:
    """Refuse a checkpoint trained for natural-image block CS where MRI k-space is measured;
    ``what`` ends the message (e.g. ``"it cannot reconstruct scan.h5"``).

    Raises:
        UserError naming ``path``.
    """
    kind = ck.operator_cfg.get("kind")
    if kind in BLOCK_CS_KINDS:
        raise UserError(f"{path}: a {ck.arch} trained for natural-image block compressive "
                        f"sensing (operator {kind}), not MRI; {what}")


def mask_of_checkpoint(operator_cfg: dict, op, shape: tuple[int, int]) -> MaskSpec:
    """The undersampling a checkpoint was trained with, for images of ``shape``: its stored
    mask when the sizes agree (in the centred layout; a learned mask's binarised mask), else
    the same generated mask kind (``operator.mask``, ``ratio``, ``seed``) at ``shape``.

    Raises:
        UserError: the checkpoint has no single-coil Cartesian mask (another task), or its
            mask is a file of another size.
    """
    kind = operator_cfg.get("kind")
    if kind not in MASK_CHECKPOINT_KINDS or getattr(op, "mask", None) is None:
        raise UserError(f"the checkpoint's operator ({kind!r}) has no Cartesian mask to reuse; "
                        "give a mask")
    stored = op.mask.detach().cpu().numpy().astype(np.float32)
    if stored.ndim == 2 and stored.shape == tuple(shape):
        centred = stored if op.layout == "centered" else masks.to_centered(stored)
        return MaskSpec(array=np.ascontiguousarray(centred))
    spec = str(operator_cfg.get("mask", ""))
    if spec in masks.KINDS:
        return MaskSpec(kind=spec, acceleration=1.0 / float(operator_cfg["ratio"]),
                        center_fraction=operator_cfg.get("center_fraction") or None,
                        seed=int(operator_cfg.get("seed", 0)))
    raise UserError(f"the checkpoint's mask is {stored.shape[-2:]}, the slices are "
                    f"{tuple(shape)}; give a mask for this size")
