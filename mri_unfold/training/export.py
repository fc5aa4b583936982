"""Export a trained checkpoint for distribution (e.g. the demo weights bundled in the wheel).

The exported file is an ordinary model checkpoint (:mod:`mri_unfold.checkpoints`):
the same ``model/`` and ``operator/`` tensors, with metadata made machine-independent —
every occurrence of this machine's shared-data root in the stored protocol/operator tables is
written back as ``${shared}`` — and ``info`` extended with the given notes.

Usage::

    python -m mri_unfold.training.export runs/demo/best.safetensors \\
        mri_unfold/weights/ista_net_plus_radial20.safetensors --note "brain_test 20%: ..."
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..checkpoints import digest, read_checkpoint_file, write_safetensors
from ..shared_data import SharedDataMissing, shared_root


def _portable(text: str) -> str:
    try:
        root = str(shared_root())
    except SharedDataMissing:
        return text
    return text.replace(root, "${shared}")


def export_checkpoint(src: str | Path, dst: str | Path, notes: dict | None = None) -> Path:
    """Copy checkpoint ``src`` to ``dst`` with portable metadata.

    Args:
        src: an mri-unfold ``.safetensors`` checkpoint.
        dst: output path (written atomically).
        notes: extra JSON-serialisable entries merged into the ``info`` metadata.
    Returns:
        ``Path(dst)``.
    """
    tensors, meta = read_checkpoint_file(src)
    meta = {k: _portable(v) for k, v in meta.items()}
    info = json.loads(meta.get("info", "{}"))
    info.update(notes or {})
    info["exported_from"] = Path(src).name
    meta["info"] = json.dumps(info)
    meta["sha256"] = digest(tensors, meta)
    return write_safetensors(dst, tensors, meta)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--note", action="append", default=[], metavar="KEY=VALUE",
                   help="extra info entries (repeatable)")
    a = p.parse_args(argv)
    notes = dict(n.split("=", 1) for n in a.note)
    print(export_checkpoint(a.src, a.dst, notes))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
