"""Serve suite: inline reconstruction through ``mri-unfold serve``'s server, over the loopback
interface, against the offline ``recon`` path on the same file, in one process run.

The scan is a generated multi-slice ISMRMRD file as a scanner streams it (noise scans first,
then per slice equispaced 2x lines with 24 ACS lines, 2x readout oversampling, the last line
of each slice flagged ``ACQ_LAST_IN_SLICE``): full size 12 slices, 8 coils, 256 readout
samples (128 after oversampling removal) x 128 lines; ``--quick`` 3 slices, 2 coils, 64 x 32.
Per reconstruction (zero-filled, SENSE, the bundled ``ista_net_plus_raw_sim`` network) and a
warmed-up server:

* ``offline_ms_per_slice`` — ``reconstruct_kspace_file`` on the file (read, ESPIRiT,
  reconstruction; batches of 1 for the network, the server's batch), divided by the slices;
* ``paced_*`` — the scan streamed at a scanner's pace, one acquisition every
  ``ACQUISITION_INTERVAL_S`` (20 ms: a slice every 1.5 s at full size, longer than any
  reconstruction here, so no slice waits for another; ``--quick`` 5 ms): latency from
  sending a slice's last acquisition to receiving its image, median and max over the
  slices;
* ``burst_*`` — the scan streamed as fast as the server takes it: seconds from connecting to
  the server's CLOSE, slices per second, acquisitions per second, and the latency under that
  load (queued slices wait for the ones before them).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.data.ismrmrd_acquisitions import FLAGS, Acquisitions
from mri_unfold.data.ismrmrd_writer import write_acquisitions
from mri_unfold.data.simulate import birdcage_coil_maps
from mri_unfold.fft import fft2
from mri_unfold.reconstruct import reconstruct_kspace_file
from mri_unfold.serving import MRDServer, Reconstructor, load_scan, stream_scan

COLUMNS = ["case", "offline_ms_per_slice", "paced_latency_ms", "paced_latency_max_ms",
           "burst_s", "burst_slices_per_s", "burst_acq_per_s", "burst_latency_ms"]
#: Time between two acquisitions of the paced stream (a gradient echo's TR).
ACQUISITION_INTERVAL_S = 0.02
NETWORK = "ista_net_plus_raw_sim"


def _bit(name: str) -> np.uint64:
    return np.uint64(1) << np.uint64(FLAGS[name] - 1)


def scan_file(path: Path, slices: int, coils: int, readout: int, lines: int) -> Path:
    """The generated scan of the module doc (seeded)."""
    from ismrmrd.hdf5 import acquisition_header_dtype
    from ismrmrd import xsd

    rng = np.random.default_rng(0)
    keep = readout // 2
    y, x = np.mgrid[-1:1:readout * 1j, -1:1:lines * 1j]
    maps = birdcage_coil_maps(coils, (readout, lines))
    sampled = [j for j in range(lines) if j % 2 == 0 or abs(j - lines // 2) < 12]
    heads, data = [], []
    noise = (rng.standard_normal((coils, 256)) + 1j * rng.standard_normal((coils, 256))) * 1e-3
    h = np.zeros((), acquisition_header_dtype)
    h["flags"] = _bit("noise")
    heads.append(h.copy())
    data.append(noise.astype(np.complex64))
    for s in range(slices):
        obj = np.exp(-((2 * x) ** 2 + y ** 2) * (3 + s % 3)) * (1 + 0.3 * np.cos(4 * y + s))
        obj[:readout // 4] = 0
        obj[readout // 4 + keep:] = 0
        k = fft2(torch.from_numpy((maps * obj[None]).astype(np.complex64))).numpy()
        for j in sampled:
            h = np.zeros((), acquisition_header_dtype)
            h["version"], h["center_sample"] = 1, readout // 2
            h["idx"]["kspace_encode_step_1"], h["idx"]["slice"] = j, s
            h["read_dir"], h["phase_dir"], h["slice_dir"] = (1, 0, 0), (0, 1, 0), (0, 0, 1)
            h["position"] = (0, 0, 4.0 * s)
            h["flags"] = _bit("last_in_slice") if j == sampled[-1] else 0
            heads.append(h)
            data.append(np.ascontiguousarray(k[:, :, j]))
    space = lambda m, f: xsd.encodingSpaceType(  # noqa: E731
        matrixSize=xsd.matrixSizeType(x=m, y=lines, z=1),
        fieldOfView_mm=xsd.fieldOfViewMm(x=f, y=220.0, z=4.0))
    limit = lambda n, c: xsd.limitType(minimum=0, maximum=n - 1, center=c)  # noqa: E731
    enc = xsd.encodingType(encodedSpace=space(readout, 440.0), reconSpace=space(keep, 220.0),
                           encodingLimits=xsd.encodingLimitsType(
                               kspace_encoding_step_1=limit(lines, lines // 2),
                               slice=limit(slices, 0)),
                           trajectory=xsd.trajectoryType.CARTESIAN)
    xml = xsd.ToXML(xsd.ismrmrdHeader(
        encoding=[enc], experimentalConditions=xsd.experimentalConditionsType(
            H1resonanceFrequency_Hz=123_000_000)))
    acqs = Acquisitions(np.stack(heads), data, [np.zeros(0, np.float32)] * len(data))
    return write_acquisitions(xml, acqs, path)


def _latency_ms(res) -> tuple[float, float]:
    values = [v * 1e3 for v in res.latencies_s.values()]
    return statistics.median(values), max(values)


def run(args, device: torch.device, ceilings: dict) -> list[dict]:
    slices, coils, readout, lines = (3, 2, 64, 32) if args.quick else (12, 8, 256, 128)
    network = load_checkpoint(NETWORK, device=device).model
    cases = [("zero-filled", None, "zero-filled"), ("sense", None, "sense"),
             (NETWORK, network, None)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = scan_file(Path(tmp) / "scan.h5", slices, coils, readout, lines)
        scan = load_scan(path)
        n_acq = len(scan.acquisitions)
        for label, model, method in cases:
            rec = Reconstructor(model, label, method=method, device=device)
            rec.warm_up((keep := readout // 2, lines), coils)
            offline = float("inf")
            for _ in range(max(1, args.reps)):
                t0 = time.perf_counter()
                reconstruct_kspace_file(path, "ismrmrd", model, method=method, batch_size=1,
                                        device=device, progress=False)
                offline = min(offline, time.perf_counter() - t0)
            server = MRDServer(("127.0.0.1", 0), rec)
            server.start_in_thread()
            try:
                paced = stream_scan(scan, "127.0.0.1", server.port,
                                    interval_s=ACQUISITION_INTERVAL_S / (4 if args.quick else 1))
                burst = min((stream_scan(scan, "127.0.0.1", server.port)
                             for _ in range(max(1, args.reps))), key=lambda r: r.seconds)
            finally:
                server.shutdown()
                server.server_close()
            med, worst = _latency_ms(paced)
            rows.append({"case": f"{label}: {slices} slices, {coils} coils, {keep}x{lines}",
                         "offline_ms_per_slice": offline / slices * 1e3,
                         "paced_latency_ms": med, "paced_latency_max_ms": worst,
                         "burst_s": burst.seconds, "burst_slices_per_s": slices / burst.seconds,
                         "burst_acq_per_s": n_acq / burst.seconds,
                         "burst_latency_ms": _latency_ms(burst)[0]})
    return rows
