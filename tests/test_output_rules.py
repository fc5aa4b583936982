"""Property tests of the output rules: an output that is an input (the same path, a symbolic
link or a hard link to it, in any spelling of the path) is always refused, with or without
--overwrite; an existing other file is refused unless --overwrite; a new file is accepted;
all-or-nothing writing leaves every target untouched when one writer fails."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mri_unfold.atomic import atomic_outputs
from mri_unfold.cli.common import check_new_outputs, same_file
from mri_unfold.errors import UserError

KINDS = ("same", "symlink", "hardlink", "dotted", "other_existing", "new")


def _make(folder: Path, kind: str) -> tuple[Path, Path]:
    """(input, output) for one kind of output."""
    src = folder / "in.h5"
    src.write_bytes(b"raw k-space")
    out = {"same": src, "symlink": folder / "link.h5", "hardlink": folder / "hard.h5",
           "dotted": folder / "sub" / ".." / "in.h5", "other_existing": folder / "old.h5",
           "new": folder / "new.h5"}[kind]
    (folder / "sub").mkdir(exist_ok=True)
    if kind == "symlink":
        os.symlink(src, out)
    elif kind == "hardlink":
        os.link(src, out)
    elif kind == "other_existing":
        out.write_bytes(b"an earlier result")
    return src, out


@settings(max_examples=60, deadline=None)
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True),
       overwrite=st.booleans())
def test_outputs_never_replace_inputs(kinds, overwrite):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = folder / "in.h5"
        pairs = [_make(folder, k) for k in kinds]
        outputs = [out for _, out in pairs]
        before = src.read_bytes()
        is_input = any(k in ("same", "symlink", "hardlink", "dotted") for k in kinds)
        duplicate = len({os.path.realpath(o) for o in outputs}) < len(outputs)
        blocked = any(k == "other_existing" for k in kinds) and not overwrite
        if is_input or duplicate or blocked:
            with pytest.raises(UserError):
                check_new_outputs(outputs, [src], overwrite)
        else:
            assert check_new_outputs(outputs, [src], overwrite) == outputs
        assert src.read_bytes() == before


@settings(max_examples=40, deadline=None)
@given(fail_at=st.integers(min_value=0, max_value=3), n=st.integers(min_value=1, max_value=4))
def test_all_or_nothing_writes(fail_at, n):
    with tempfile.TemporaryDirectory() as tmp:
        targets = [Path(tmp) / f"out{i}.nii.gz" for i in range(n)]
        targets[0].write_bytes(b"earlier")
        try:
            with atomic_outputs(targets) as tmps:
                for i, t in enumerate(tmps):
                    if i == fail_at:
                        raise OSError("disk full")
                    t.write_bytes(f"new {i}".encode())
        except OSError:
            failed = True
        else:
            failed = False
        assert failed == (fail_at < n)
        if failed:  # nothing replaced, no debris
            assert targets[0].read_bytes() == b"earlier"
            assert sorted(p.name for p in Path(tmp).iterdir()) == ["out0.nii.gz"]
        else:
            assert [t.read_bytes() for t in targets] == [f"new {i}".encode() for i in range(n)]


def test_same_file_spellings(tmp_path):
    a = tmp_path / "a.h5"
    a.write_bytes(b"x")
    os.symlink(a, tmp_path / "l.h5")
    assert same_file(a, tmp_path / "l.h5") and same_file(a, tmp_path / "." / "a.h5")
    assert not same_file(a, tmp_path / "b.h5")
