"""mri_unfold.atomic: the one atomic writer (temp file in the same folder + os.replace)."""
import os
import stat

import numpy as np
import pytest

from mri_unfold.atomic import OutputPathError, atomic_output, atomic_write_bytes, atomic_write_text
from mri_unfold.errors import DataFileError, UserError


def test_success_replaces_target_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.txt.") and tmp.is_file()
        assert target.read_text() == "old"  # not visible before the block ends
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_failure_removes_temp_and_keeps_target(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(tmp_path / "new.bin") as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    old = tmp_path / "old.txt"
    old.write_text("keep")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(old) as tmp:
            tmp.write_text("partial")
            raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["old.txt"] and old.read_text() == "keep"


def test_missing_folder_names_the_path(tmp_path):
    out = tmp_path / "missing" / "x.png"
    with pytest.raises(OutputPathError, match=r"missing/x\.png: output folder .*missing does "
                                              r"not exist") as e:
        with atomic_output(out):
            pytest.fail("must not be reached")
    assert isinstance(e.value, UserError) and isinstance(e.value, DataFileError)
    assert isinstance(e.value, ValueError) and isinstance(e.value, OSError)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder(tmp_path, monkeypatch):
    import tempfile

    def denied(*args, **kwargs):  # what mkstemp raises in a read-only folder (tests run as root)
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(OutputPathError, match=r"y\.csv: cannot write to .*Permission denied"):
        atomic_write_text(tmp_path / "y.csv", "a")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, suffix", [("vol.nii.gz", ".nii.gz"), ("fig.png", ".png"),
                                          ("noext", "")])
def test_default_suffix_is_the_full_suffix(tmp_path, name, suffix):
    with atomic_output(tmp_path / name) as tmp:
        prefix = f".{name}."
        assert tmp.name.startswith(prefix)
        random_part = tmp.name[len(prefix):]
        stem = random_part[:len(random_part) - len(suffix)]
        assert random_part.endswith(suffix) and "." not in stem
    with atomic_output(tmp_path / name, suffix=".tmp") as tmp:
        assert tmp.name.startswith(f".{name}.") and tmp.name.endswith(".tmp")


def test_format_guessing_writer_sees_the_suffix(tmp_path):
    from PIL import Image

    a = (np.arange(12, dtype=np.uint8) * 20).reshape(3, 4)
    with atomic_output(tmp_path / "img.png") as tmp:
        Image.fromarray(a).save(tmp)  # PIL picks the format from the temp name
    with Image.open(tmp_path / "img.png") as im:
        assert im.format == "PNG"
        np.testing.assert_array_equal(np.asarray(im), a)


def test_helpers_and_permissions(tmp_path):
    p = atomic_write_text(tmp_path / "t.csv", "a,b\r\n1,2\n")
    assert p == tmp_path / "t.csv" and p.read_bytes() == b"a,b\r\n1,2\n"  # verbatim
    q = atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert q.read_bytes() == b"\x00\x01"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(q.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0o600
