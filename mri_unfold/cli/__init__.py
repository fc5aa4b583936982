"""The ``mri-unfold`` command line.

Each subcommand lives in its own module of this package and exposes

* ``NAME`` — the subcommand name,
* ``register(subparsers)`` — adds its parser (with help and examples),
* ``run(args) -> int`` — does the work and returns the exit code.

Errors: a user error — :class:`~mri_unfold.errors.UserError` (bad files, arguments and
settings; every data-file error is one) or an operating-system error about a path (missing
file, permissions, a folder where a file is expected, a full disk) — is printed as one line
``mri-unfold: error: ...`` and the process exits with status 2.  Any other exception is a
bug: one line ``mri-unfold: internal error: ...`` with a hint to rerun with ``--debug``, exit
status 1.  ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from .. import __version__, cpu_allocator
from ..checkpoints import IntegrityNote
from ..errors import UserError
from . import (compare, demo, eval_cmd, import_official, info, masks_cmd, models_cmd,
               plot_log, recon, serve, stream, study, train, view)
from .common import add_common_options

#: Subcommand modules in the order ``--help`` lists them.
COMMANDS = (demo, models_cmd, train, eval_cmd, import_official, recon, info, compare,
            plot_log, masks_cmd, study, view, serve, stream)

EPILOG = """examples:
  mri-unfold demo                        # offline brain-MRI demo (zero-filled, L1-wavelet, ISTA-Net+)
  mri-unfold train protocols/tiny.toml   # train from an experiment file
  mri-unfold eval CKPT --images DIR      # evaluate a checkpoint
  mri-unfold recon scan.nii.gz --model CKPT --mask radial --acceleration 5
run 'mri-unfold COMMAND --help' for the options of each command."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mri-unfold",
        description="Deep unfolding networks (ISTA-Net, ISTA-Net+, FISTA-Net, MADUN) for "
                    "compressive sensing and MRI reconstruction.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"mri-unfold {__version__}")
    add_common_options(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMANDS:
        mod.register(sub)
    for cmd in sub.choices.values():  # every subcommand also accepts them after its name
        add_common_options(cmd)
    return p


#: Exceptions reported as the user's error (exit status 2).
USER_ERRORS = (UserError, FileNotFoundError, FileExistsError, IsADirectoryError,
               NotADirectoryError, PermissionError, OSError)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False)) or "--debug" in argv
    use_persistent_compile_cache()
    if not (getattr(args, "no_retain_memory", False) or "--no-retain-memory" in argv):
        cpu_allocator.retain_freed_memory(warn=False)  # a no-op without glibc
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("mri-unfold: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        if debug:
            raise
        print(f"mri-unfold: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - anything else is a bug: say so, exit 1
        if debug:
            raise
        print(f"mri-unfold: internal error: {type(e).__name__}: {_one_line(e)} (this is a bug "
              f"in mri-unfold; rerun with --debug for the traceback and report it)",
              file=sys.stderr)
        return 1


def use_persistent_compile_cache() -> Path:
    """Keep torch.compile's artefacts (inductor's FX-graph and autograd caches) in a user cache
    folder that survives reboots, ``$XDG_CACHE_HOME/mri-unfold/inductor`` (default
    ``~/.cache``), unless ``TORCHINDUCTOR_CACHE_DIR`` is set: a second run of the same model
    does not compile again.  Returns the folder."""
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(base / "mri-unfold" / "inductor")
    return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line on stderr: ``mri-unfold: note: ...`` for integrity notes,
    ``mri-unfold: warning: ...`` otherwise."""
    kind = "note" if issubclass(category, IntegrityNote) else "warning"
    print(f"mri-unfold: {kind}: {_one_line(message)}", file=sys.stderr)


def _one_line(e: BaseException) -> str:
    msg = str(e.args[0]) if isinstance(e, KeyError) and len(e.args) == 1 else str(e)
    return " ".join(msg.split()) or type(e).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
