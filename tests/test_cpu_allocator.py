"""mri_unfold.cpu_allocator: glibc keeps freed memory after retain_freed_memory().

Each case runs in a child process: the setting is process-wide and cannot be undone."""
from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import torch
{setup}
def rss():
    import os
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
base = rss()
a = torch.ones(16 * 2 ** 20)   # 64 MiB of float32
a.add_(1)
del a
print((rss() - base) / 2 ** 20)
"""


def _retained_mb(setup: str) -> float:
    res = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], capture_output=True,
                         text=True, check=True, timeout=120)
    return float(res.stdout.strip().splitlines()[-1])


def test_default_allocator_returns_a_freed_64_mib_tensor_to_the_os():
    assert _retained_mb("") < 8


def test_retain_freed_memory_keeps_it_resident_and_reports_its_settings():
    setup = ("from mri_unfold.cpu_allocator import retain_freed_memory, allocator_settings\n"
             "assert allocator_settings() is None\n"
             "assert retain_freed_memory() is True and retain_freed_memory() is True\n"
             "s = allocator_settings()\n"
             "assert s['M_MMAP_MAX'] == 0 and s['M_TRIM_THRESHOLD'] == 2 ** 31 - 1, s\n"
             "assert s['libc'].startswith('glibc '), s\n")
    assert _retained_mb(setup) >= 63


def test_cli_applies_the_setting_unless_no_retain_memory(monkeypatch, tmp_path, capsys):
    from mri_unfold import cli, cpu_allocator

    calls = []
    monkeypatch.setattr(cpu_allocator, "retain_freed_memory",
                        lambda warn=True: calls.append(warn) or True)
    missing = str(tmp_path / "missing.h5")
    assert cli.main(["recon", missing, "--model", "m.safetensors"]) == 2
    assert calls == [False]  # on by default, silently skipped without glibc
    for argv in (["--no-retain-memory", "recon", missing, "--model", "m.safetensors"],
                 ["recon", missing, "--model", "m.safetensors", "--no-retain-memory"]):
        assert cli.main(argv) == 2
    assert calls == [False]
    assert "missing.h5" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_subprocess_runs_with_the_setting_applied():
    code = ("import sys\n"
            "from mri_unfold import cli, cpu_allocator\n"
            "rc = cli.main(['plot-log', 'nope.csv'])\n"
            "print(rc, cpu_allocator.allocator_settings()['M_MMAP_MAX'])\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert res.stdout.split() == ["2", "0"], res.stdout + res.stderr


def test_without_glibc_or_when_mallopt_refuses_nothing_is_applied(monkeypatch):
    import warnings


    from mri_unfold import cpu_allocator

    monkeypatch.setattr(cpu_allocator, "_applied", None)
    monkeypatch.setattr(cpu_allocator, "_libc", lambda: None)
    with pytest.warns(RuntimeWarning, match=r"the C library is not glibc \(no mallopt\); "
                                            r"allocator unchanged"):
        assert cpu_allocator.retain_freed_memory() is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cpu_allocator.retain_freed_memory(warn=False) is False

    class Refusing:
        @staticmethod
        def mallopt(param, value):
            return 0 if param == cpu_allocator.M_MMAP_MAX else 1

    monkeypatch.setattr(cpu_allocator, "_libc", lambda: Refusing)
    with pytest.warns(RuntimeWarning, match=r"mallopt rejected \['M_MMAP_MAX'\]"):
        assert cpu_allocator.retain_freed_memory() is False
    assert cpu_allocator.allocator_settings() is None
