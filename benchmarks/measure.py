"""Measurement helpers of the benchmarks: median timings, peak memory, FLOP counts, the
matmul ceiling, and the table / JSON output."""
from __future__ import annotations

import gc
import json
import os
import statistics
import threading
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from mri_unfold.atomic import atomic_write_text
from mri_unfold.cpu_allocator import allocator_settings
from mri_unfold.tables import Column, format_table


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, device: torch.device, warmup: int = 1, reps: int = 3) -> float:
    """Median wall time (s) of ``fn()`` over ``reps`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_rss_high_water_mark() -> bool:
    """Reset the kernel's peak-RSS counter (``VmHWM``) of this process (Linux >= 4.0:
    writing ``5`` to ``/proc/self/clear_refs``).  Returns whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_high_water_mark_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


class PeakMemory:
    """Peak memory of the code inside ``with``.

    * CUDA: ``torch.cuda.max_memory_allocated`` (reset at entry).
    * CPU: the process's resident set size.  The kernel's exact peak counter (``VmHWM``) is
      reset at entry and read at exit when the kernel allows it (``.method == "vmhwm"``);
      otherwise RSS is sampled every 2 ms by a thread (``.method == "sampled"``).

    ``.peak_mb`` is the peak; ``.delta_mb`` the peak above the value at entry.  On CPU the
    delta only means something in a fresh process (or with ``MALLOC_MMAP_THRESHOLD_`` set
    low, as :mod:`benchmarks.memory_probe` does): the C allocator keeps freed memory
    resident, so a second measurement in the same process reuses it and reads low.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mb = self.delta_mb = 0.0
        self.method = "cuda" if device.type == "cuda" else None

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        gc.collect()
        self._base = self._peak = _rss_bytes()
        if _reset_rss_high_water_mark():
            self.method = "vmhwm"
            return self
        self.method = "sampled"
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(0.002):
                self._peak = max(self._peak, _rss_bytes())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.method == "vmhwm":
            peak = max(_rss_high_water_mark_bytes(), self._base)
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, _rss_bytes())
        self.peak_mb = peak / 2 ** 20
        self.delta_mb = (peak - self._base) / 2 ** 20
        return False


def count_flops(fn) -> int:
    """FLOPs of one call of ``fn()`` (matmuls and convolutions, as counted by
    :class:`torch.utils.flop_counter.FlopCounterMode`; FFTs and elementwise ops are not)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def matmul_ceiling(device: torch.device, dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """Measured GFLOP/s of an ``n x n`` matrix multiply in ``dtype`` (the hardware ceiling
    the achieved rates are compared with)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    t = median_time(lambda: a @ b, device, warmup=2, reps=reps)
    return 2 * n ** 3 / t / 1e9


def conv_ceiling(device: torch.device, dtype: torch.dtype, channels: int = 32, side: int = 264,
                 reps: int = 5) -> dict:
    """Measured GFLOP/s of the networks' dominant convolution: 3x3, ``channels -> channels``,
    bias, padding 1, on one ``side x side`` image, in contiguous NCHW and channels-last.

    A 2048^2 matmul is a poor ceiling for these networks: oneDNN's direct 3x3 convolution
    (channels-last especially) outruns it on this CPU.  Returns
    ``{"nchw": GFLOP/s, "channels_last": GFLOP/s, "best": max of the two}``.
    """
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(1, channels, side, side, generator=g).to(device, dtype)
    w = torch.randn(channels, channels, 3, 3, generator=g).to(device, dtype)
    b = torch.randn(channels, generator=g).to(device, dtype)
    flops = 2 * channels * channels * 9 * side * side
    out = {}
    with torch.inference_mode():
        for name, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
            xf, wf = x.contiguous(memory_format=fmt), w.contiguous(memory_format=fmt)
            t = median_time(lambda: torch.nn.functional.conv2d(xf, wf, b, padding=1), device,
                            warmup=3, reps=reps)
            out[name] = flops / t / 1e9
    out["best"] = max(out["nchw"], out["channels_last"])
    return out


def environment(device: torch.device) -> dict:
    """What the numbers were measured on."""
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    return {"torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads(),
            "allocator": allocator_settings() or "default",
            "cpu_count": os.cpu_count(), "loadavg": [float(v) for v in load],
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def write_json(obj: dict, path: str | Path) -> Path:
    """Write ``obj`` as JSON atomically (temporary file in the same folder, then replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(obj, indent=1))


def benchmark_table(rows: list[dict], columns: list[str]) -> str:
    """Plain-text table of ``rows`` (dicts) over ``columns`` (floats to 4 significant digits,
    missing values blank, a rule under the heading): :func:`mri_unfold.tables.format_table`."""
    return format_table(rows, [Column(c, fmt=".4g", align="<", missing="") for c in columns],
                        sep="  ", rule=True)
