"""The run folder of a training run: only ours, one writer at a time, no debris, a consistent
pair of checkpoint and training state, and a protocol that always says what was trained.

* :meth:`RunFolder.check` — before anything is built: the folder must be new, empty, or a run
  folder of ours (marked by :func:`mri_unfold.outputs.mark_folder`; a run written before
  markers existed is recognised by its training state when resumed); any other folder is
  refused and left untouched;
* :meth:`RunFolder.create` — once everything is validated and built: create the folder (and
  its parents), mark it, lock it and remove debris;
* :meth:`RunFolder.lock` — an exclusive ``flock`` on ``<parent>/.<name>.lock`` (released when
  the process ends, even when killed): a second ``train`` on the same folder is refused;
* :meth:`RunFolder.clean` — removes the temporary files of writers that were killed, and
  only those of the run's own files (:func:`mri_unfold.atomic.remove_partials`, the older
  ``.<file>.<random>`` names, and ``.tmpXXXXXX`` files of the safetensors library);
* :meth:`RunFolder.write_protocol` — ``protocol.toml`` is the configuration being trained;
  when a resumed run changes settings, the previous file is kept as
  ``protocol.before-step-<N>.toml``.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path

from ..atomic import atomic_write_text, remove_partials
from ..errors import UserError
from ..outputs import MARKER, FolderState, check_folder, mark_folder

__all__ = ["RunFolder", "RUN_FILES", "STATE_FILE"]

#: The files a run folder holds (temporary copies of them are debris after a kill).
RUN_FILES = ("last.state.pt", "last.safetensors", "best.safetensors", "log.jsonl", "log.csv",
             "protocol.toml", MARKER)
STATE_FILE = RUN_FILES[0]
_OLD_TEMPORARY = re.compile(r"^\.(%s)\.[A-Za-z0-9_]{8}.*$" % "|".join(map(re.escape, RUN_FILES)))
#: A temporary file of the safetensors library (written by versions before this check).
_SAFETENSORS_TEMPORARY = re.compile(r"^\.tmp[A-Za-z0-9]{6}$")


class RunFolder:
    """A training run's folder (it may not exist yet).

    Args:
        path: the folder.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock_fd: int | None = None

    def check(self, resume: bool) -> str:
        """Refuse a folder that is not ours, before anything is built or created.

        Returns:
            A :class:`~mri_unfold.outputs.FolderState` value (``new``, ``empty``, ``ours``).
        Raises:
            UserError: the path is a file, or an existing folder with files and no run
                marker (unless resumed and holding a training state: a run written before
                markers existed).  Nothing in it is changed.
        """
        legacy = resume and (self.path / STATE_FILE).is_file()
        return check_folder(self.path, "run", "run folder", legacy=legacy)

    def open(self, resume: bool) -> None:
        """:meth:`check` the folder and, when it exists, :meth:`lock` it."""
        if self.check(resume) != FolderState.NEW:
            self.lock()

    def create(self, resume: bool) -> list[Path]:
        """Create and mark the folder (with its parents), take it (:meth:`lock`) and remove
        the debris of killed writers; returns the removed files.

        Raises:
            UserError: another process holds the folder, or (without ``resume``) it started
                a run here since :meth:`check`.
        """
        created = [p for p in (self.path, *self.path.parents) if not p.exists()]
        if self.check(resume) == FolderState.NEW:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.lock()
            if not resume and (self.path / STATE_FILE).exists():  # another run got here first
                raise UserError(f"{self.path}: already holds a training run; pass --resume to "
                                "continue it or choose another --run-dir")
            mark_folder(self.path, "run")
        except BaseException:  # e.g. a full disk: leave no folder behind
            self.unlock()
            for p in created:  # deepest first
                with contextlib.suppress(OSError):
                    p.rmdir()
            raise
        return self.clean()

    @property
    def lock_path(self) -> Path:
        return self.path.parent / f".{self.path.name}.lock"

    def lock(self) -> None:
        """Take the folder for this process.

        Raises:
            UserError: another process holds it (names the folder and that process).
        """
        if self._lock_fd is not None:
            return
        if not self.path.parent.is_dir():
            raise UserError(f"{self.path}: the parent folder {self.path.parent} does not exist")
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(f"{self.path}: another training process (pid {holder}) is using this "
                            "run folder; wait for it to finish or choose another --run-dir"
                            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release the folder (and remove the lock file)."""
        if self._lock_fd is None:
            return
        self.lock_path.unlink(missing_ok=True)
        os.close(self._lock_fd)
        self._lock_fd = None

    def clean(self) -> list[Path]:
        """Remove the temporary files killed writers left in the folder (of the run's own
        files only: another file is never touched); returns them."""
        if not self.path.is_dir():
            return []
        removed = remove_partials(self.path, RUN_FILES)
        for p in self.path.iterdir():
            if p.is_file() and (_OLD_TEMPORARY.match(p.name) or _safetensors_debris(p)):
                p.unlink(missing_ok=True)
                removed.append(p)
        return removed

    def write_protocol(self, text: str, step: int) -> Path | None:
        """Write ``protocol.toml``; when it exists with other content (a resumed run with new
        settings), keep the old one as ``protocol.before-step-<step>.toml`` and return it."""
        target = self.path / "protocol.toml"
        kept = None
        if target.is_file() and target.read_text(encoding="utf-8") != text:
            kept = self.path / f"protocol.before-step-{step}.toml"
            os.replace(target, kept)
        atomic_write_text(target, text)
        return kept


def _safetensors_debris(p: Path) -> bool:
    """A ``.tmpXXXXXX`` file of the safetensors library, left by a kill while it wrote a
    checkpoint: empty, or starting with a safetensors header (8-byte length, then ``{``)."""
    if not _SAFETENSORS_TEMPORARY.match(p.name):
        return False
    with open(p, "rb") as f:
        head = f.read(9)
    return len(head) == 0 or (len(head) == 9 and head[8:9] == b"{"
                              and int.from_bytes(head[:8], "little") < 100_000_000)
