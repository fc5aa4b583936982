"""The ``mri-unfold`` command line.

Each subcommand lives in its own module of this package and exposes

* ``NAME`` — the subcommand name,
* ``register(subparsers)`` — adds its parser (with help and examples),
* ``run(args) -> int`` — does the work and returns the exit code.

Errors: any :class:`UserError` (and the usual input errors: missing files, bad values)
is printed as one line ``mri-unfold: error: ...`` and the process exits with status 2;
``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import UserError

#: Subcommand modules in the order ``--help`` lists them.
_MODULES = ("demo", "train", "eval_cmd", "import_official", "recon", "compare", "plot_log",
            "masks_cmd")

EPILOG = """examples:
  mri-unfold demo                        # offline brain-MRI demo (zero-filled, L1-wavelet, ISTA-Net+)
  mri-unfold train protocols/tiny.toml   # train from an experiment file
  mri-unfold eval CKPT --images DIR      # evaluate a checkpoint
  mri-unfold recon scan.nii.gz --model CKPT --mask radial --acceleration 5
run 'mri-unfold COMMAND --help' for the options of each command."""


def _load_commands():
    mods = []
    for name in _MODULES:
        try:
            mods.append(importlib.import_module(f"{__name__}.{name}"))
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mri-unfold",
        description="Deep unfolding networks (ISTA-Net, ISTA-Net+, FISTA-Net, MADUN) for "
                    "compressive sensing and MRI reconstruction.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    from .. import __version__

    p.add_argument("--version", action="version", version=f"mri-unfold {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _load_commands():
        mod.register(sub)
    p.add_argument("--no-retain-memory", action="store_true", help=RETAIN_HELP)
    for cmd in sub.choices.values():  # every subcommand also accepts these after its name
        cmd.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
        cmd.add_argument("--no-retain-memory", action="store_true", help=RETAIN_HELP)
    return p


RETAIN_HELP = ("return freed memory to the OS as glibc does by default. Without this flag "
               "the command keeps freed memory for reuse "
               "(mri_unfold.cpu_allocator.retain_freed_memory): 1.2-3x faster on CPU, and the "
               "process stays at its peak memory until it exits")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False)) or "--debug" in argv
    if not (getattr(args, "no_retain_memory", False) or "--no-retain-memory" in argv):
        from .. import cpu_allocator

        cpu_allocator.retain_freed_memory(warn=False)  # a no-op without glibc
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("mri-unfold: interrupted", file=sys.stderr)
        return 130
    except (UserError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
            PermissionError, ValueError, KeyError, TypeError, OSError) as e:
        if debug:
            raise
        msg = str(e)
        if isinstance(e, KeyError) and len(e.args) == 1:
            msg = str(e.args[0])
        print(f"mri-unfold: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
