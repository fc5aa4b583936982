"""The training state ``<name>.state.pt``: everything needed to resume a run.

A ``torch.save`` of plain dicts/lists/numbers and tensors only (loaded with
``weights_only=True``, so nothing is unpickled): model and operator weights, optimizer, LR
scheduler, grad scaler, RNG states (torch CPU/CUDA), stage/epoch/batch/step counters, the
best validation score and the protocol.  Written atomically.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch

from ..atomic import atomic_write_bytes
from ..checkpoints import VERSION
from ..errors import UserError

__all__ = ["STATE_FORMAT", "rng_state", "restore_rng", "save_train_state", "load_train_state"]

STATE_FORMAT = "mri-unfold-train-state"


def rng_state() -> dict:
    """torch's CPU (and CUDA) RNG states."""
    st = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def restore_rng(st: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def save_train_state(path: str | Path, state: dict) -> None:
    """Atomically ``torch.save`` a tensors/plain-types-only training state (serialised in
    memory first, so that a full disk is an error naming ``path``, not torch's own)."""
    buf = io.BytesIO()
    torch.save({"format": STATE_FORMAT, "version": int(VERSION), **state}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_train_state(path: str | Path) -> dict:
    """Load a training state with ``weights_only=True``.

    Raises:
        FileNotFoundError / UserError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training state to resume from")
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt/foreign file, reported with its name
        raise UserError(f"{path}: unreadable training state ({type(e).__name__}: {e})") from e
    if not isinstance(st, dict) or st.get("format") != STATE_FORMAT:
        raise UserError(f"{path}: not an mri-unfold training state")
    return st
