"""Atomic file output: the project's one way to write a file without ever leaving a partial one.

A writer gets a temporary path in the target's folder (same file-system, so the final
``os.replace`` is atomic); when the ``with`` block succeeds the temporary file replaces the
target, on any error it is removed and the target is left untouched.  The temporary name
keeps the target's suffixes (``.nii.gz``, ``.png``, ...) so writers that infer the format
from the name (nibabel, matplotlib, PIL) see the right one, and the file gets the normal
permissions of a new file (``0o666`` minus the umask), not ``mkstemp``'s ``0o600``.

Example:
    >>> import tempfile, pathlib
    >>> from mri_unfold.atomic import atomic_output, atomic_write_text
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_output(d / "a.png") as tmp:        # tmp: d/.a.png.<random>.png
    ...     _ = tmp.write_bytes(b"...")                   # e.g. fig.savefig(tmp)
    >>> atomic_write_text(d / "b.csv", "x,y\\n").read_text()
    'x,y\\n'
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
from glob import escape as glob_escape
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import DataFileError

__all__ = ["OutputPathError", "atomic_output", "atomic_outputs", "atomic_output_folders",
           "atomic_write_bytes", "atomic_write_text", "remove_partials", "PARTIAL_TAG"]

#: Part of every temporary name (``.<name>.partial-<random><suffix>``): what
#: :func:`remove_partials` recognises as debris of a killed writer.
PARTIAL_TAG = ".partial-"


class OutputPathError(DataFileError, OSError):
    """The output folder is missing or not writable (the message names the file).

    A :class:`~mri_unfold.errors.UserError` (one-line CLI message), a ``ValueError``
    (through :class:`~mri_unfold.errors.DataFileError`) and an ``OSError``.
    """


def _umask() -> int:
    """The process umask, read without changing it where possible (Linux ``/proc``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_file_mode() -> int:
    """``0o666`` minus the process umask (what ``open(path, "w")`` would give)."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``.

    Args:
        path: the file to write.  Its folder must exist.
        suffix: ending of the temporary name; default ``"".join(Path(path).suffixes)``
            (``".nii.gz"`` for ``vol.nii.gz``), so format-guessing writers work.

    Yields:
        ``Path`` of an existing, empty temporary file in ``path``'s folder (named
        ``.<name>.partial-<random><suffix>``).  Write it by name or open it (a writer may
        also delete and recreate it: the normal file mode is set again before the rename).

    Raises:
        OutputPathError: the folder is missing or not writable (names ``path``).
        Whatever the writer raises, after removing the temporary file (``path`` untouched).
    """
    with atomic_outputs([path], [suffix]) as (tmp,):
        yield tmp


def _temporary(path: Path, suffix: str | None) -> Path:
    folder = path.parent
    if suffix is None:
        suffix = "".join(path.suffixes)
    if not folder.is_dir():
        raise OutputPathError(f"{path}: output folder {folder} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}{PARTIAL_TAG}", suffix=suffix,
                                        dir=folder)
    except OSError as e:
        raise OutputPathError(f"{path}: cannot write to {folder} ({e})") from e
    os.close(fd)
    return Path(tmp_name)


@contextlib.contextmanager
def atomic_outputs(paths, suffixes=None) -> Iterator[tuple[Path, ...]]:
    """All-or-nothing output of several files: yield one temporary path per target; only when
    the ``with`` block succeeds are they all renamed into place (in order), otherwise every
    temporary file is removed and no target is touched.

    Args:
        paths: the files to write (their folders must exist).
        suffixes: per-path temporary-name endings (default: each target's suffixes).
    Raises:
        OutputPathError: a folder is missing or not writable, or the writing failed for lack
            of space (``ENOSPC``/``EDQUOT``, or any writer error while the file-system is
            full): the message names the file.
    """
    paths = [Path(p) for p in paths]
    if paths and all(_is_temporary(p) for p in paths):
        yield tuple(paths)  # already the temporary files of an enclosing atomic output
        return
    suffixes = list(suffixes) if suffixes is not None else [None] * len(paths)
    tmps: list[Path] = []
    try:
        for p, s in zip(paths, suffixes):
            tmps.append(_temporary(p, s))
        yield tuple(tmps)
        mode = _new_file_mode()
        for tmp in tmps:
            os.chmod(tmp, mode)
        for tmp, p in zip(tmps, paths):
            os.replace(tmp, p)
    except Exception as e:
        full = not isinstance(e, OutputPathError) and tmps and _no_space(e, paths[0].parent)
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        if full:
            raise OutputPathError(f"{paths[0] if len(paths) == 1 else ', '.join(map(str, paths))}"
                                  f": cannot write, no space left on device in "
                                  f"{paths[0].parent} ({e}); nothing was written") from e
        raise
    except BaseException:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise


def _is_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_outputs` (a writer given one by
    an enclosing atomic output writes it directly: that output renames it into place)."""
    return path.name.startswith(".") and PARTIAL_TAG in path.name and os.path.lexists(path)


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _no_space(e: BaseException, folder: Path) -> bool:
    """Whether a writer's error comes from a full file-system: an ``OSError`` saying so, or
    any error (a library's own write error) while ``folder``'s file-system has no free
    block left."""
    if isinstance(e, OSError) and (e.errno in _NO_SPACE or "No space left" in str(e)):
        return True
    if isinstance(e, OSError) and e.errno is not None:
        return False
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def remove_partials(folder: str | os.PathLike, names=None) -> list[Path]:
    """Delete the temporary files that killed writers left in ``folder``: those of the files
    ``names`` (``.<name>.partial-*``), or with ``names=None`` every name containing
    :data:`PARTIAL_TAG`; returns the removed paths."""
    removed = []
    patterns = [f".*{PARTIAL_TAG}*"] if names is None else [
        f".{glob_escape(n)}{PARTIAL_TAG}*" for n in names]
    for p in (p for pattern in patterns for p in Path(folder).glob(pattern)):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`); returns ``Path(path)``."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` verbatim (no newline translation) to ``path`` atomically.

    Returns ``Path(path)``.  Raises as :func:`atomic_output`.
    """
    with atomic_output(path) as tmp, open(tmp, "w", encoding=encoding, newline="") as f:
        f.write(text)
    return Path(path)


@contextlib.contextmanager
def atomic_output_folders(paths, replace: bool = False) -> Iterator[tuple[Path, ...]]:
    """All-or-nothing output of whole folders (a DICOM series is one file per image): yield
    one new empty temporary folder per target (``.<name>.partial-<random>`` next to it); only
    when the ``with`` block succeeds are they renamed into place, otherwise they are removed
    and no target is touched.

    Args:
        paths: the folders to write (their parent folders must exist).
        replace: an existing non-empty target is replaced (moved aside, the new folder renamed
            into place, then the old one deleted); without it such a target raises
            ``FileExistsError``.  An existing empty folder is always replaced.  Callers decide
            what may be replaced (e.g. only folders of their own files).
    Raises:
        OutputPathError: a parent folder is missing or not writable.  FileExistsError: a
        target exists and holds files (without ``replace``), or is not a folder.
    """
    paths = [Path(p) for p in paths]
    for p in paths:
        if p.exists() and (not p.is_dir() or (any(p.iterdir()) and not replace)):
            what = "not a folder" if not p.is_dir() else "not empty"
            raise FileExistsError(f"{p}: exists and is {what}")
    tmps: list[Path] = []
    try:
        for p in paths:
            if not p.parent.is_dir():
                raise OutputPathError(f"{p}: output folder {p.parent} does not exist")
            try:
                tmps.append(Path(tempfile.mkdtemp(prefix=f".{p.name}{PARTIAL_TAG}",
                                                  dir=p.parent)))
            except OSError as e:
                raise OutputPathError(f"{p}: cannot write to {p.parent} ({e})") from e
            os.chmod(tmps[-1], 0o777 & ~_umask())  # mkdtemp makes it 0o700
        yield tuple(tmps)
        old: list[Path] = []
        for tmp, p in zip(tmps, paths):
            if p.exists() and any(p.iterdir()):
                aside = Path(tempfile.mkdtemp(prefix=f".{p.name}{PARTIAL_TAG}old-", dir=p.parent))
                os.replace(p, aside / p.name)
                old.append(aside)
            os.replace(tmp, p)
        for aside in old:
            shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)
        raise

