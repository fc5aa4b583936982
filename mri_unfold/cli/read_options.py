"""Options that change how a raw k-space file is read (``recon`` and ``info``): the axis
order and layout of plain arrays, the variable name, prewhitening; and ``recon``'s coil
compression (``--coils N`` / ``--coil-energy E``, :class:`mri_unfold.data.CompressCoils`)."""
from __future__ import annotations

import argparse

from ..data import CompressCoils
from ..data.sources import get_source
from ..data.sources.arrays import AXIS_NAMES
from ..errors import InvalidValue, UserError

__all__ = ["add_read_options", "read_options", "add_coil_options", "coil_compression"]


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


def add_coil_options(p: argparse.ArgumentParser) -> None:
    """``--coils N`` / ``--coil-energy E`` (SVD coil compression, ``--geometric``)."""
    g = p.add_argument_group("coil compression (Cartesian k-space)")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--coils", type=int, metavar="N",
                   help="compress the coils to N virtual coils (SVD of the sampled k-space, "
                        "after the mask) before reconstructing; fewer coils, faster")
    x.add_argument("--coil-energy", type=float, metavar="E",
                   help="compress to the fewest virtual coils that keep a fraction E in "
                        "(0, 1] of the signal energy (e.g. 0.95)")
    g.add_argument("--geometric", action="store_true",
                   help="with --coils/--coil-energy: geometric coil compression (one matrix "
                        "per readout position) instead of one SVD matrix")


def coil_compression(args, kind: str, image_kinds: tuple[str, ...] = ("nifti", "dicom")):
    """The :class:`~mri_unfold.data.CompressCoils` of the flags, or ``None``.

    Raises:
        UserError: values out of range, or compression asked for an image input.
    """
    if args.coils is None and args.coil_energy is None:
        if args.geometric:
            raise UserError("--geometric needs --coils N or --coil-energy E")
        return None
    flag = f"--coils {args.coils}" if args.coils is not None else \
        f"--coil-energy {args.coil_energy}"
    if kind in image_kinds:
        raise UserError(f"{flag}: coil compression acts on multi-coil k-space; this input is "
                        f"a {kind} image")
    try:
        return CompressCoils(args.coils, energy=args.coil_energy, geometric=args.geometric)
    except InvalidValue as e:
        raise UserError(f"{flag}: {str(e).split(': ', 1)[-1]}") from e
