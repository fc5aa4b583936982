"""The run folder of a training run: one writer at a time, no debris, a consistent pair of
checkpoint and training state, and a protocol that always says what was trained.

* :meth:`RunFolder.lock` — an exclusive ``flock`` on ``<parent>/.<name>.lock`` (released when
  the process ends, even when killed): a second ``train`` on the same folder is refused;
* :meth:`RunFolder.clean` — removes the temporary files of writers that were killed
  (:func:`mri_unfold.atomic.remove_partials`, and the older ``.<file>.<random>`` names);
* :meth:`RunFolder.write_protocol` — ``protocol.toml`` is the configuration being trained;
  when a resumed run changes settings, the previous file is kept as
  ``protocol.before-step-<N>.toml``.
"""
from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

from ..atomic import atomic_write_text, remove_partials
from ..errors import UserError

__all__ = ["RunFolder", "RUN_FILES"]

#: The files a run folder holds (temporary copies of them are debris after a kill).
RUN_FILES = ("last.state.pt", "last.safetensors", "best.safetensors", "log.jsonl", "log.csv",
             "protocol.toml")
_OLD_TEMPORARY = re.compile(r"^\.(%s)\.[A-Za-z0-9_]{8}.*$" % "|".join(map(re.escape, RUN_FILES)))


class RunFolder:
    """A training run's folder (it may not exist yet).

    Args:
        path: the folder.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock_fd: int | None = None

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
        """Remove the temporary files killed writers left in the folder; returns them."""
        if not self.path.is_dir():
            return []
        removed = remove_partials(self.path)
        for p in self.path.iterdir():
            if p.is_file() and _OLD_TEMPORARY.match(p.name):
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
