"""Locate the project's shared data folder (papers, data sets, reference checkpoints).

The shared folder is never copied into the repository.  It is found, in order, at

1. the path in the environment variable ``MRI_UNFOLD_SHARED``;
2. ``../shared`` relative to the repository root (the folder holding ``pyproject.toml``
   of this project, searched upwards from the package source and from the working
   directory).

Example:
    >>> from mri_unfold.shared_data import shared_root
    >>> set11 = shared_root() / "data" / "natural" / "Set11"   # doctest: +SKIP
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MRI_UNFOLD_SHARED"


class SharedDataMissing(FileNotFoundError):
    """Raised when the shared data folder (or a file inside it) cannot be found."""


def _repo_roots() -> list[Path]:
    roots: list[Path] = []
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for cand in (start, *start.parents):
            pp = cand / "pyproject.toml"
            if pp.is_file() and 'name = "mri-unfold"' in pp.read_text(errors="ignore"):
                if cand not in roots:
                    roots.append(cand)
                break
    return roots


def shared_root() -> Path:
    """Return the shared data folder.

    Returns:
        Path: an existing directory.

    Raises:
        SharedDataMissing: when ``$MRI_UNFOLD_SHARED`` points nowhere or no ``../shared``
            exists next to the repository; the message says where it looked.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise SharedDataMissing(
                f"${ENV_VAR} is set to '{env}', which is not a directory; point it at the "
                "project's shared data folder (the one holding data/, reference/, papers/)")
        return p.resolve()
    tried = []
    for root in _repo_roots():
        cand = root.parent / "shared"
        tried.append(str(cand))
        if cand.is_dir():
            return cand.resolve()
    raise SharedDataMissing(
        "shared data folder not found: set $" + ENV_VAR + " or place it at ../shared next to "
        "the repository (looked in: " + (", ".join(tried) or "no repository root found") + ")")


def shared_path(*parts: str) -> Path:
    """Return ``shared_root()/parts...`` and check that it exists.

    Raises:
        SharedDataMissing: naming the missing path.
    """
    p = shared_root().joinpath(*parts)
    if not p.exists():
        raise SharedDataMissing(f"expected shared file or folder is missing: {p}")
    return p
