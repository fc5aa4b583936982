"""The output rules every command follows, in one place.

* **Never an input**: an output that is one of the command's inputs (the same path, a
  symbolic or hard link to it) is refused, with or without ``--overwrite``.
* **Never an existing file without ``--overwrite``**, and never a folder given as a file
  (a name ending with ``/``, or an existing directory).
* **All-or-nothing**: the files are written through :func:`mri_unfold.atomic.atomic_outputs`
  only after everything was computed; a failure leaves no file and no partial one.
* **Folders a command fills** (a training run, a study) must be new, empty, or one of ours:
  :func:`mark_folder` leaves a small marker file (:data:`MARKER`) naming the folder's kind,
  and :func:`check_folder` refuses any other existing folder.  Nothing in a folder that is
  not ours is ever deleted, rewritten or appended to.

Every check happens before anything is computed or created, and raises
:class:`~mri_unfold.errors.UserError` naming the option and the path.

Example (a command that reads ``scan.h5`` and writes one file)::

    outs = check_new_outputs([args.output], [args.input], args.overwrite)  # before the work
    ...                                                                    # the work
    with atomic_outputs(outs) as (tmp,):                                   # at the end
        write(tmp)
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

from .atomic import atomic_write_text
from .errors import UserError

__all__ = ["check_output_path", "same_file", "check_new_outputs", "check_new_folder",
           "MARKER", "folder_kind", "check_folder", "mark_folder", "FolderState",
           "output_folder"]

#: The marker file of a folder mri-unfold fills (JSON ``{"kind": "run"}``, ``"study"``, ...).
MARKER = ".mri-unfold-folder.json"


def check_output_path(out: str | os.PathLike) -> Path:
    """Fail early (``UserError`` naming ``out``) if ``out`` cannot be written as a file: a
    name ending with a path separator, an existing directory, a missing or unwritable
    folder.  Returns ``Path(out)``."""
    text = os.fspath(out)
    if text.endswith((os.sep, "/")) or text in ("", ".", ".."):
        raise UserError(f"{text or repr(text)}: names a folder (give a file name)")
    out = Path(text)
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise UserError(f"{out}: is a directory (give a file name)")
    if not parent.is_dir():
        raise UserError(f"{out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UserError(f"{out}: folder {parent} is not writable")
    return out


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same inode (through symbolic or hard links)
    when both exist, else the same resolved path."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_new_outputs(outputs, inputs, overwrite: bool, option: str = "--output") -> list[Path]:
    """Refuse outputs that would destroy data, before anything is computed.

    Args:
        outputs: the files a command will write (``str`` or ``Path``; a string ending with
            ``/`` is refused as a folder name).
        inputs: the files it reads (input data, checkpoint, mask file, log; ``None`` entries
            are skipped).
        overwrite: whether existing outputs may be replaced (``--overwrite``).
        option: the option named in the messages.
    Returns:
        The outputs as ``Path`` objects.
    Raises:
        UserError: an output is an input (same inode), two outputs are one file, an output
            exists without ``overwrite``, or an output's folder is missing/unwritable.
    """
    ins = [Path(i) for i in inputs if i]
    outs = []
    for out in outputs:
        try:
            out = check_output_path(out)
        except UserError as e:
            raise UserError(f"{option} {e}") from e
        for src in ins:
            if same_file(out, src):
                raise UserError(f"{option} {out}: is the input file {src} (same file); refusing "
                                "to overwrite an input — choose another output name")
        for other in outs:
            if same_file(out, other):
                raise UserError(f"{option} {out}: two outputs would be the same file")
        if out.exists() and not overwrite:
            raise UserError(f"{option} {out}: exists; pass --overwrite to replace it")
        outs.append(out)
    return outs


def check_new_folder(folder: str | os.PathLike, option: str = "--output") -> Path:
    """A folder a command will create and fill completely (``eval --output``): it must not
    exist, or be an empty folder, and its parent must exist.  Returns ``Path(folder)``."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UserError(f"{option} {folder}: exists and is not an empty folder")
    if not folder.parent.is_dir():
        raise UserError(f"{option} {folder}: folder {folder.parent} does not exist")
    return folder


class FolderState:
    """What :func:`check_folder` found: ``NEW`` (missing), ``EMPTY`` or ``OURS``."""

    NEW, EMPTY, OURS = "new", "empty", "ours"


def folder_kind(folder: str | os.PathLike) -> str | None:
    """The kind written in ``folder``'s :data:`MARKER` (``"run"``, ``"study"``), or None when
    it has no readable marker."""
    try:
        kind = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def check_folder(folder: str | os.PathLike, kind: str, option: str, *,
                 legacy: bool = False) -> str:
    """Whether a command may fill ``folder`` with files of ``kind``: it is missing (it will
    be created, with its parents), empty, or marked as ours (:func:`mark_folder`).

    Args:
        folder: the folder.
        kind: ``"run"``, ``"study"``, ... (the marker must name the same kind).
        option: the option named in the message (``--run-dir``).
        legacy: the caller recognised the folder by its content (written before markers
            existed); it is then accepted as ours.
    Returns:
        A :class:`FolderState` value.
    Raises:
        UserError: ``folder`` is a file, or an existing non-empty folder that is not ours
            (the message says that nothing in it was changed).
    """
    folder = Path(folder)
    if not folder.exists():
        if folder.is_symlink():
            raise UserError(f"{option} {folder}: is a broken symbolic link")
        return FolderState.NEW
    if not folder.is_dir():
        raise UserError(f"{option} {folder}: exists and is not a folder")
    found = folder_kind(folder)
    if found == kind or (legacy and found is None):
        return FolderState.OURS
    if found is None and not any(folder.iterdir()):
        return FolderState.EMPTY
    name = _KIND_NAMES.get(kind, f"a {kind} folder")
    if found is not None:
        raise UserError(f"{option} {folder}: is {_KIND_NAMES.get(found, f'a {found} folder')} "
                        f"of mri-unfold, not {name}; choose another folder")
    raise UserError(f"{option} {folder}: exists and is not {name} of mri-unfold (it has files "
                    f"and no {MARKER} marker); choose a new or empty folder — nothing in it "
                    "was changed")


_KIND_NAMES = {"run": "a training run folder", "study": "a study folder"}


def mark_folder(folder: str | os.PathLike, kind: str) -> Path:
    """Create ``folder`` (and its parents) if needed and mark it as ours, of ``kind``.
    Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if folder_kind(folder) != kind:
        atomic_write_text(folder / MARKER, json.dumps({"kind": kind, "by": "mri-unfold"}) + "\n")
    return folder


@contextlib.contextmanager
def output_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Create ``folder`` (and missing parents) for the files written inside the ``with``
    block; when the block fails, the folders created here are removed again if they are
    empty (an existing folder is never removed).  Yields ``Path(folder)``."""
    folder = Path(folder)
    created = []
    p = folder
    while not p.exists():
        created.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        for p in created:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()
        raise
