"""What the serving tests share: a scanner-like ISMRMRD file, servers on the loopback interface
in background threads, and hand-written protocol bytes.  Everything is seeded and bounded."""
from __future__ import annotations

import contextlib
import logging
import socket
import struct
import time
from pathlib import Path

import numpy as np

from mri_unfold.fft import fft2, ifft2
from mri_unfold.serving import MRDServer, ReconSettings, Reconstructor, StreamLimits

import torch

from raw_fixtures import cartesian_acqs, ismrmrd_xml, phantom_kspace, write_ismrmrd_acqs

LOOPBACK = "127.0.0.1"
#: ISMRMRD flag numbers used by the fixture.
NOISE, CALIBRATION, LAST_IN_SLICE, LAST_IN_MEASUREMENT = 19, 20, 8, 25
#: Scanner-like scan: coils, encoded readout (2x oversampled), recon readout, lines, slices.
COILS, READOUT, KEEP, LINES, SLICES = 2, 96, 48, 40, 3
CENTRE_LINE, FIRST_LINE, ECHO_CUT = 20, 4, 6


def scanner_file(path: Path, seed: int = 0, last_flags: bool = True) -> Path:
    """An ISMRMRD file as a scanner streams it: 64 noise samples per coil first, then per slice
    (3 slices, 2 coils, axial, 5 mm apart) a calibration-only line (skipped), then equispaced
    2x lines with 12 ACS lines, partial Fourier (lines below 4 not acquired), an asymmetric
    echo (the first 6 samples of each readout missing), 2x readout oversampling, and
    ``ACQ_LAST_IN_SLICE`` on each slice's last line (``last_flags``)."""
    rng = np.random.default_rng(seed)
    noise = (rng.standard_normal((COILS, 64)) + 1j * rng.standard_normal((COILS, 64))) * 0.01
    noise[1] += 0.4 * noise[0]                                   # correlated coils
    acqs = [{"data": noise.astype(np.complex64), "flags": [NOISE]}]
    lines = [j for j in range(FIRST_LINE, LINES)
             if j % 2 == 0 or abs(j - CENTRE_LINE) < 6]
    for s in range(SLICES):
        img = ifft2(torch.from_numpy(phantom_kspace(COILS, READOUT, LINES, seed=seed + s)))
        img[:, :READOUT // 4] = 0
        img[:, READOUT // 4 + KEEP:] = 0                         # object inside the recon FOV
        k = fft2(img).numpy()
        geo = {"read_dir": (1, 0, 0), "phase_dir": (0, 1, 0), "slice_dir": (0, 0, 1),
               "position": (1.5, -2.0, 5.0 * s - 5.0)}
        acqs.append({"data": k[:, :, CENTRE_LINE], "flags": [CALIBRATION],
                     "idx": {"kspace_encode_step_1": CENTRE_LINE, "slice": s}, **geo})
        for a in cartesian_acqs(k, s, lines, **geo):
            a["data"] = a["data"][:, ECHO_CUT:]
            a["center_sample"] = READOUT // 2 - ECHO_CUT
            acqs.append(a)
        if last_flags:
            acqs[-1]["flags"] = [LAST_IN_SLICE]
    limits = {"kspace_encoding_step_1": (0, LINES - 1, CENTRE_LINE),
              "slice": (0, SLICES - 1, 0)}
    xml = ismrmrd_xml((READOUT, LINES, 1), (KEEP, LINES, 1), (400.0, 200.0, 5.0),
                      (200.0, 200.0, 5.0), limits, coils=COILS)
    return write_ismrmrd_acqs(path, xml, acqs)


@contextlib.contextmanager
def running_server(model=None, label="zero-filled", method="zero-filled", *,
                   settings: ReconSettings | None = None, limits: StreamLimits | None = None,
                   max_connections: int = 4, warm_up: bool = False):
    """An :class:`MRDServer` on the loopback interface (a free port) in a background thread;
    yields it and stops it afterwards."""
    rec = Reconstructor(model, label, method=None if model is not None else method,
                        settings=settings)
    if warm_up:
        rec.warm_up((32, 32))
    server = MRDServer((LOOPBACK, 0), rec, limits=limits or StreamLimits(idle_timeout_s=20),
                       max_connections=max_connections)
    thread = server.start_in_thread()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def connect(server: MRDServer, timeout: float = 20.0) -> socket.socket:
    """A client socket connected to ``server`` over the loopback interface."""
    return socket.create_connection((LOOPBACK, server.port), timeout=timeout)


def read_all(sock: socket.socket, limit: int = 1 << 24) -> bytes:
    """Everything the server sends until it closes (at most ``limit`` bytes)."""
    out = bytearray()
    while len(out) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def text_message(ident: int, text: bytes) -> bytes:
    """ID, uint32 length and the bytes (no terminator added): a length-prefixed message."""
    return struct.pack("<HI", ident, len(text)) + text


class LogLines(logging.Handler):
    """Collects the formatted records of the ``mri_unfold.serving`` logger."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def server_log():
    """The serving logger's lines while the block runs."""
    handler = LogLines()
    logger = logging.getLogger("mri_unfold.serving")
    old = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def wait_for(condition, seconds: float = 20.0) -> bool:
    """Poll ``condition()`` until it holds or ``seconds`` pass (log lines follow the close a
    client saw); returns whether it held."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
