"""Shared fixtures.  Tests needing ../shared use the ``shared`` fixture, which fails
loudly (never skips) when the shared folder is missing."""
from __future__ import annotations

from pathlib import Path

import pytest

from mri_unfold.shared_data import SharedDataMissing, shared_root


@pytest.fixture(scope="session")
def shared() -> Path:
    try:
        return shared_root()
    except SharedDataMissing as e:  # fail, do not skip
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def golden_dir(shared) -> Path:
    d = shared / "reference" / "golden"
    if not d.is_dir():
        pytest.fail(f"golden reference folder missing: {d}", pytrace=False)
    return d


@pytest.fixture(scope="session")
def recon_complex_ckpt(tmp_path_factory) -> Path:
    """A tiny trained complex ISTA-Net+ checkpoint (tests/tiny_checkpoints.py), once per session."""
    import torch
    from tiny_checkpoints import complex_checkpoint

    with torch.random.fork_rng():
        return complex_checkpoint(tmp_path_factory.mktemp("ckpt") / "complex.safetensors")


@pytest.fixture(scope="session")
def recon_real_ckpt(tmp_path_factory) -> Path:
    """A tiny trained real-valued ISTA-Net+ checkpoint, once per session."""
    import torch
    from tiny_checkpoints import real_checkpoint

    with torch.random.fork_rng():
        return real_checkpoint(tmp_path_factory.mktemp("ckpt") / "real.safetensors")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module (tiny FFTs and convolutions are much slower when two
    threads fight over a loaded machine); the previous count is restored afterwards."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
