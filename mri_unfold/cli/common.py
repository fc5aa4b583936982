"""What every subcommand shares: its parser (help, description, examples epilog) and the
options common to all of them."""
from __future__ import annotations

import argparse
import contextlib

import numpy as np

from ..errors import UserError
from ..fft import LAYOUTS
from ..masks import MaskKeyError, MaskLayoutError
from ..outputs import check_new_outputs, same_file
from ..reconstruct import MaskSpec

__all__ = ["add_command", "add_common_options", "add_mask_options", "mask_spec", "RETAIN_HELP",
           "check_new_outputs", "same_file", "mask_flag_hints", "refuse_non_finite"]

RETAIN_HELP = ("return freed memory to the OS as glibc does by default. Without this flag "
               "the command keeps freed memory for reuse "
               "(mri_unfold.cpu_allocator.retain_freed_memory): 1.2-3x faster on CPU, and the "
               "process stays at its peak memory until it exits")


def refuse_non_finite(stacks, names=("reconstruction", "zero-filled image")) -> None:
    """Raise :class:`UserError` (nothing written yet) when an output array holds NaN/Inf."""
    for stack, name in zip(stacks, names):
        bad = int((~np.isfinite(stack)).sum())
        if bad:
            raise UserError(f"the {name} has {bad} non-finite values (NaN/Inf) — unusable "
                            "weights or data?; nothing was written")


def add_command(sub, name: str, *, help: str, description: str,  # noqa: A002 - argparse's name
                examples: str) -> argparse.ArgumentParser:
    """A subcommand parser whose epilog is the (pre-formatted) ``examples`` text."""
    return sub.add_parser(name, help=help, description=description, epilog=examples,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_common_options(p: argparse.ArgumentParser) -> None:
    """``--debug`` and ``--no-retain-memory`` (accepted before or after the subcommand)."""
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--no-retain-memory", action="store_true", help=RETAIN_HELP)


def add_mask_options(p: argparse.ArgumentParser) -> None:
    """``--mask KIND --acceleration R [--center-fraction F] [--seed S]`` or
    ``--mask-file FILE [--mask-layout L]``."""
    p.add_argument("--mask", metavar="KIND",
                   help="mask kind for mri_unfold.masks.make_mask (e.g. random, equispaced, "
                        "radial, poisson)")
    p.add_argument("--acceleration", type=float, metavar="R", help="acceleration for --mask")
    p.add_argument("--center-fraction", type=float, metavar="F",
                   help="fully sampled centre fraction for --mask")
    p.add_argument("--mask-file", metavar="FILE", help="mask file (.mat/.npy/.npz), (H, W)")
    p.add_argument("--mask-layout", choices=LAYOUTS, default="centered",
                   help="k-space layout of --mask-file (default: centered; the radial_*.mat "
                        "masks of the CS-MRI papers are unshifted)")
    p.add_argument("--mask-key", metavar="NAME",
                   help="variable of a --mask-file (.mat/.npz) holding several arrays")
    p.add_argument("--seed", type=int, default=0, help="mask seed (default 0)")


def mask_spec(args) -> MaskSpec | None:
    """The :class:`~mri_unfold.reconstruct.MaskSpec` of :func:`add_mask_options`' flags, or
    None when neither ``--mask`` nor ``--mask-file`` is given.

    Raises:
        UserError: both given, or ``--mask`` without ``--acceleration``.
    """
    if args.mask and args.mask_file:
        raise UserError("give either --mask KIND or --mask-file FILE, not both")
    if args.mask and args.acceleration is None:
        raise UserError(f"--mask {args.mask}: needs --acceleration R")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if not (args.mask or args.mask_file):
        return None
    return MaskSpec(kind=args.mask, acceleration=args.acceleration,
                    center_fraction=args.center_fraction, file=args.mask_file, seed=args.seed,
                    layout=args.mask_layout, key=args.mask_key)


@contextlib.contextmanager
def mask_flag_hints():
    """Add the option to use to mask-file errors: ``--mask-layout`` for a mask in the other
    k-space layout, ``--mask-key`` for a file holding several arrays."""
    try:
        yield
    except MaskLayoutError as e:
        raise UserError(f"{e} (--mask-layout)") from e
    except MaskKeyError as e:
        raise UserError(f"{e} (--mask-key NAME)") from e
