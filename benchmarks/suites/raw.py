"""Raw-data suite: reading scanner k-space and coil compression, peers side by side.

* ``twix read + RSS`` / ``twix read + SENSE``: the 2-coil Siemens scan of ``../shared``
  read (:class:`mri_unfold.data.sources.twix.TwixSource`) and reconstructed fully sampled,
  end to end (ESPIRiT included for SENSE); peer: ``twixtools.map_twix`` + its own
  oversampling removal (read only).
* ``ISMRMRD read``: a generated 15-coil 320x320x16 ISMRMRD file (written with
  :func:`mri_unfold.data.ismrmrd_writer.write_ismrmrd`) read by our source (one HDF5 call,
  placement by counters) against the ``ismrmrd`` package's own loop
  (``Dataset.read_acquisition(i)`` for every acquisition, placed into an array).
* ``coil compression``: 15 -> 8 virtual coils on one 320x320 slice, SVD and geometric.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from mri_unfold.data.coil_compression import CompressCoils
from mri_unfold.data.ismrmrd_writer import write_ismrmrd
from mri_unfold.data.raw_samples import raw_sample
from mri_unfold.data.sources import get_source
from mri_unfold.reconstruct import reconstruct_kspace_file
from mri_unfold.shared_data import shared_root

from ..measure import median_time

COLUMNS = ["case", "ours_s", "peer", "peer_s", "peer_over_ours"]


def _ismrmrd_loop(path: Path) -> np.ndarray:
    """The ``ismrmrd`` package's acquisition loop, placing lines by their counters."""
    import ismrmrd

    with ismrmrd.Dataset(str(path), "dataset", create_if_needed=False) as d:
        first = d.read_acquisition(0)
        n = d.number_of_acquisitions()
        out = None
        for i in range(n):
            acq = first if i == 0 else d.read_acquisition(i)
            if out is None:
                out = np.zeros((16, acq.active_channels, acq.number_of_samples, 320),
                               np.complex64)
            out[acq.idx.slice, :, :, acq.idx.kspace_encode_step_1] = acq.data
    return out


def _twixtools_read(path: Path):
    import twixtools

    arr = twixtools.map_twix(str(path), verbose=False)[-1]["image"]
    arr.flags["remove_os"] = True
    return arr[:]


def run(args, device: torch.device, ceilings: dict) -> list[dict]:
    reps, warm = args.reps, args.warmup
    twix = shared_root() / "data/raw/siemens_gre_2coil.dat"
    rows = []
    t_rss = median_time(lambda: reconstruct_kspace_file(twix, "twix", method="zero-filled",
                                                         progress=False), device, warm, reps)
    t_sense = median_time(lambda: reconstruct_kspace_file(twix, "twix", method="sense",
                                                           progress=False), device, warm, reps)
    t_peer = median_time(lambda: _twixtools_read(twix), device, warm, reps)
    rows += [{"case": "twix 2-coil 160x160: read + RSS", "ours_s": t_rss,
              "peer": "twixtools read only", "peer_s": t_peer, "peer_over_ours": t_peer / t_rss},
             {"case": "twix 2-coil 160x160: read + ESPIRiT + SENSE", "ours_s": t_sense,
              "peer": "twixtools read only", "peer_s": t_peer,
              "peer_over_ours": t_peer / t_sense}]
    side, coils, slices = (32, 4, 2) if args.quick else (320, 15, 16)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        k = (rng.standard_normal((coils, side, side)) + 1j * rng.standard_normal(
            (coils, side, side))).astype(np.complex64)
        samples = [raw_sample(k * (s + 1), path=Path(tmp) / "gen", index=s)
                   for s in range(slices)]
        path = write_ismrmrd(samples, Path(tmp) / "gen.h5")
        ours = median_time(lambda: get_source("ismrmrd").read(path), device, warm, reps)
        if not args.quick:
            got = get_source("ismrmrd").read(path)
            ref = _ismrmrd_loop(path)
            assert all(torch.equal(got[s].kspace, torch.from_numpy(ref[s])) for s in range(16))
            peer = median_time(lambda: _ismrmrd_loop(path), device, warm, reps)
        else:
            peer = float("nan")
    rows.append({"case": f"ISMRMRD {coils}-coil {side}x{side}x{slices}: read", "ours_s": ours,
                 "peer": "ismrmrd read_acquisition loop", "peer_s": peer,
                 "peer_over_ours": peer / ours})
    one = samples[0]
    for geometric in (False, True):
        cc = CompressCoils(num_coils=min(8, coils), geometric=geometric)
        t = median_time(lambda: cc(one), device, warm, reps)
        rows.append({"case": f"coil compression {coils}->{min(8, coils)} {side}x{side} "
                             f"({'geometric' if geometric else 'SVD'})", "ours_s": t,
                     "peer": "", "peer_s": float("nan"), "peer_over_ours": float("nan")})
    return rows
