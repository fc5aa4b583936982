"""Run logs: every metric goes to ``log.jsonl`` (one JSON record per event) and ``log.csv``
(long format ``step,epoch,split,metric,value,time``).  Only the main rank writes.

A record is ``{"step": int, "epoch": int, "split": "train"|"val", "time": float, <metrics>}``.
"""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from ..atomic import OutputPathError, atomic_write_text
from ..errors import DataFileError

CSV_FIELDS = ("step", "epoch", "split", "metric", "value", "time")
_META = ("step", "epoch", "split", "time")


def read_jsonl(path: str | Path) -> list[dict]:
    """Records of a ``log.jsonl`` file (a torn last line, from a kill, is ignored).

    Raises:
        DataFileError: the file is not UTF-8 text, or a line other than the last is not a
            JSON record (names the file and the line).
    """
    out = []
    p = Path(path)
    if not p.is_file():
        return out
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataFileError(f"{p}: not a run log (not UTF-8 text: {e.reason} at byte "
                            f"{e.start})") from e
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:  # torn by a kill
                continue
            raise DataFileError(f"{p}: line {i + 1} is not a JSON record ({e.msg})") from e
        if not isinstance(rec, dict):
            raise DataFileError(f"{p}: line {i + 1} is not a JSON object")
        out.append(rec)
    return out


class RunLogger:
    """Appends metric records to ``run_dir/log.jsonl`` and ``run_dir/log.csv``.

    Args:
        run_dir: the run folder.
        enabled: False on non-main DDP ranks (then nothing is written).
        resume_step: when resuming from a checkpoint at this step, records logged after it
            (by the killed run) are dropped so the logs match the resumed trajectory.
        resume_val_step: the step of the last validation the resumed state includes;
            validation records after it (a validation the killed run logged but did not
            save, which the resumed run repeats) are dropped too.
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True, resume_step: int | None = None,
                 resume_val_step: int | None = None):
        self.dir = Path(run_dir)
        self.enabled = enabled
        self.jsonl = self.dir / "log.jsonl"
        self.csv = self.dir / "log.csv"
        if not enabled:
            return
        if resume_step is None:
            for p in (self.jsonl, self.csv):
                p.unlink(missing_ok=True)
        else:
            self._truncate(resume_step, resume_step if resume_val_step is None else
                           resume_val_step)
        if not self.csv.exists():
            atomic_write_text(self.csv, ",".join(CSV_FIELDS) + "\n")

    def _truncate(self, step: int, val_step: int) -> None:
        keep = [r for r in read_jsonl(self.jsonl)
                if int(r.get("step", 0)) <= (val_step if r.get("split") == "val" else step)]
        atomic_write_text(self.jsonl, "".join(json.dumps(r) + "\n" for r in keep))
        rows = [",".join(CSV_FIELDS)]
        for r in keep:
            rows += [",".join(map(str, row)) for row in self._csv_rows(r)]
        atomic_write_text(self.csv, "\n".join(rows) + "\n")

    @staticmethod
    def _csv_rows(rec: dict):
        for k, v in rec.items():
            if k not in _META and isinstance(v, (int, float)):
                yield (rec["step"], rec["epoch"], rec["split"], k, repr(float(v)),
                       f"{rec['time']:.3f}")

    def log(self, step: int, epoch: int, split: str, **metrics: float) -> dict:
        """Write one record; returns it."""
        rec = {"step": int(step), "epoch": int(epoch), "split": split, "time": time.time(),
               **{k: float(v) for k, v in metrics.items()}}
        if self.enabled:
            for path in (self.jsonl, self.csv):
                try:
                    with open(path, "a", newline="", encoding="utf-8") as f:
                        if path == self.jsonl:
                            f.write(json.dumps(rec) + "\n")
                        else:
                            csv.writer(f).writerows(self._csv_rows(rec))
                except OSError as e:  # a full disk: name the file
                    raise OutputPathError(f"{path}: cannot append to the run log "
                                          f"({e.strerror or e})") from e
        return rec
