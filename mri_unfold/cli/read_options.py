"""Options that change how a raw k-space file is read (``recon`` and ``info``): the axis
order and layout of plain arrays, the variable name, prewhitening."""
from __future__ import annotations

import argparse

from ..data.sources import get_source
from ..data.sources.arrays import AXIS_NAMES

__all__ = ["add_read_options", "read_options"]


#: (flag, argparse keywords, help) of each option.
_FLAGS = (
    ("--axes", {"default": "auto", "metavar": "A,B,.."},
     f"plain arrays (.npy/.mat/.h5): the axis order, names from {', '.join(AXIS_NAMES)} "
     "(default auto: 2-D readout,phase; 4-D slice,coil,readout,phase; 3-D is ambiguous)"),
    ("--kspace-layout", {"choices": ("centered", "unshifted"), "default": "centered"},
     "plain arrays: k-space centre at n//2 (centered, default) or at 0"),
    ("--variable", {"default": "kspace"},
     "plain arrays: the MATLAB variable / HDF5 dataset (default kspace)"),
    ("--no-prewhiten", {"action": "store_true"},
     "ISMRMRD/twix: keep the coils as stored (default: prewhiten with the file's noise scans "
     "when it has them)"),
)


def add_read_options(p: argparse.ArgumentParser) -> None:
    """``--axes``, ``--kspace-layout``, ``--variable``, ``--no-prewhiten``."""
    g = p.add_argument_group("reading raw k-space")
    for flag, extra, text in _FLAGS:
        g.add_argument(flag, help=text, **extra)


def read_options(args, kind: str) -> dict:
    """The options of source ``kind`` set by :func:`add_read_options`' flags."""
    given = {"axes": args.axes, "layout": args.kspace_layout, "variable": args.variable,
             "prewhiten": not args.no_prewhiten}
    own = get_source(kind).options
    return {k: v for k, v in given.items() if k in own}
