"""Small raw-data files for the tests: ISMRMRD files with chosen encodings, and twix
variants (VB, multi-RAID with a noise measurement, no image scan) made from the shared
2-coil VD/VE file.  Everything is seeded; nothing is downloaded."""
from __future__ import annotations

import ctypes
from pathlib import Path

import h5py
import numpy as np

from mri_unfold.fft import fft2
from mri_unfold.shared_data import shared_root

import torch

TWIX = "data/raw/siemens_gre_2coil.dat"


def twix_path() -> Path:
    return shared_root() / TWIX


def phantom_kspace(coils: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """``(coils, h, w)`` complex64 centred k-space of a smooth object with smooth coil
    profiles (no exact zeros)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1:1:h * 1j, -1:1:w * 1j]
    obj = np.exp(-(x ** 2 + y ** 2) * 3) * (1 + 0.3 * np.cos(5 * x)) * np.exp(1j * 0.5 * x)
    maps = [np.exp(1j * rng.uniform(0, 6.28)) * (1.5 + np.cos(2 * x + k) * np.sin(y - k))
            for k in range(coils)]
    img = np.stack([m * obj for m in maps]).astype(np.complex64)
    return fft2(torch.from_numpy(img)).numpy()


# --- ISMRMRD -------------------------------------------------------------------------------

def ismrmrd_xml(enc, recon, enc_fov, recon_fov, limits: dict, trajectory: str = "cartesian",
                coils: int = 1) -> str:
    """An ISMRMRD header; ``limits`` maps limit names (kspace_encoding_step_1, slice, ...) to
    ``(min, max, center)``."""
    from ismrmrd import xsd

    space = lambda m, f: xsd.encodingSpaceType(  # noqa: E731
        matrixSize=xsd.matrixSizeType(x=m[0], y=m[1], z=m[2]),
        fieldOfView_mm=xsd.fieldOfViewMm(x=f[0], y=f[1], z=f[2]))
    lim = xsd.encodingLimitsType(**{k: xsd.limitType(minimum=a, maximum=b, center=c)
                                    for k, (a, b, c) in limits.items()})
    e = xsd.encodingType(encodedSpace=space(enc, enc_fov), reconSpace=space(recon, recon_fov),
                         encodingLimits=lim, trajectory=xsd.trajectoryType(trajectory))
    hdr = xsd.ismrmrdHeader(
        encoding=[e], experimentalConditions=xsd.experimentalConditionsType(
            H1resonanceFrequency_Hz=63500000),
        acquisitionSystemInformation=xsd.acquisitionSystemInformationType(receiverChannels=coils))
    return xsd.ToXML(hdr)


def write_ismrmrd_acqs(path: Path, xml: str | None, acqs: list[dict]) -> Path:
    """Write acquisitions: each dict has ``data`` ``(C, n)``, optional ``flags`` (ISMRMRD flag
    numbers), ``idx`` (counter name -> value), ``center_sample``, ``traj`` ``(n, d)``,
    ``position``/``read_dir``/``phase_dir``/``slice_dir``."""
    from ismrmrd.hdf5 import acquisition_dtype

    table = np.zeros(len(acqs), acquisition_dtype)
    for i, a in enumerate(acqs):
        hd = table["head"]
        c, n = a["data"].shape
        hd["version"][i], hd["scan_counter"][i] = 1, i
        hd["number_of_samples"][i], hd["active_channels"][i] = n, c
        hd["available_channels"][i] = c
        hd["center_sample"][i] = a.get("center_sample", n // 2)
        for f in a.get("flags", ()):
            hd["flags"][i] |= np.uint64(1 << (f - 1))
        for k, v in a.get("idx", {}).items():
            hd["idx"][k][i] = v
        for k in ("position", "read_dir", "phase_dir", "slice_dir"):
            if k in a:
                hd[k][i] = a[k]
        traj = a.get("traj")
        if traj is not None:
            hd["trajectory_dimensions"][i] = traj.shape[1]
            table["traj"][i] = np.asarray(traj, np.float32).ravel()
        else:
            table["traj"][i] = np.zeros(0, np.float32)
        table["data"][i] = np.ascontiguousarray(a["data"], np.complex64).view(np.float32).ravel()
    with h5py.File(path, "w") as f:
        g = f.create_group("dataset")
        if xml is not None:
            x = g.create_dataset("xml", shape=(1,), dtype=h5py.special_dtype(vlen=bytes))
            x[0] = xml.encode()
        g.create_dataset("data", data=table)
    return path


def cartesian_acqs(kspace: np.ndarray, slice_index: int = 0, lines=None, **extra) -> list[dict]:
    """One acquisition per phase-encode column ``j`` of ``kspace`` ``(C, H, W)``."""
    lines = range(kspace.shape[-1]) if lines is None else lines
    return [{"data": kspace[:, :, j], "idx": {"kspace_encode_step_1": j, "slice": slice_index},
             **extra} for j in lines]


# --- twix -------------------------------------------------------------------------------------

def _mdbs(path: Path) -> list:
    import twixtools

    return twixtools.read_twix(str(path), verbose=False, parse_pmu=False, keep_acqend=True,
                               parse_geometry=False)[-1]["mdb"]


def _measurement(path: Path) -> tuple[bytes, int, int]:
    """(file bytes, offset, length) of the single measurement of a VD file."""
    raw = path.read_bytes()
    entry = np.frombuffer(raw[8:8 + 152], np.dtype([("id", "<u4"), ("fid", "<u4"),
                                                    ("off", "<u8"), ("len", "<u8"),
                                                    ("pat", "S64"), ("prot", "S64")]))[0]
    return raw, int(entry["off"]), int(entry["len"])


def _flag_bit(name: str) -> int:
    from twixtools import mdh_def

    return 1 << mdh_def.mask_dict[name]


def flagged_twix(src: Path, out: Path, flag: str = "NOISEADJSCAN") -> Path:
    """A copy of a VD file whose readouts (all but ACQEND) carry only ``flag``."""
    from twixtools import mdh_def

    data = bytearray(src.read_bytes())
    off = mdh_def.Scan_header.EvalInfoMask.offset
    for m in _mdbs(src):
        if not m.is_flag_set("ACQEND"):
            data[m.mem_pos + off:m.mem_pos + off + 8] = np.uint64(_flag_bit(flag)).tobytes()
    out.write_bytes(bytes(data))
    return out


def multi_raid_twix(src: Path, out: Path, tmp: Path) -> Path:
    """A two-measurement VD file: measurement 0 = ``src``'s readouts flagged NOISEADJSCAN,
    measurement 1 = ``src``'s measurement."""
    noise_raw, off, length = _measurement(flagged_twix(src, tmp / "noise_only.dat"))
    raw, _, _ = _measurement(src)
    head = bytearray(raw[:off])
    entries = np.frombuffer(bytes(head[8:8 + 2 * 152]), np.uint8).copy()
    entries[152:] = entries[:152]
    head[4:8] = np.uint32(2).tobytes()
    e2 = np.frombuffer(entries.tobytes(), np.dtype([("id", "<u4"), ("fid", "<u4"), ("off", "<u8"),
                                                     ("len", "<u8"), ("pat", "S64"),
                                                     ("prot", "S64")])).copy()
    e2["off"][1] = off + length
    head[8:8 + 2 * 152] = e2.tobytes()
    out.write_bytes(bytes(head) + noise_raw[off:off + length] + raw[off:off + length])
    return out


def vb_twix(src: Path, out: Path) -> Path:
    """The measurement of a VD file rewritten in the VB layout (protocol block, then one
    VB17 header + samples per channel and readout, then ACQEND)."""
    from twixtools import mdh_def

    raw, off, _ = _measurement(src)
    hdr_len = int(np.frombuffer(raw[off:off + 4], "<u4")[0])
    parts = [raw[off:off + hdr_len]]
    copy = ("MeasUID", "ScanCounter", "TimeStamp", "PMUTimeStamp", "EvalInfoMask",
            "SamplesInScan", "UsedChannels", "Counter", "CutOff", "CenterCol",
            "ReadOutOffcentre", "TimeSinceLastRF", "CenterLin", "CenterPar", "SliceData")
    size = ctypes.sizeof(mdh_def.VB17_header)
    for m in _mdbs(src):
        if m.is_flag_set("ACQEND"):
            end = mdh_def.VB17_header(EvalInfoMask=_flag_bit("ACQEND"))
            end.FlagsAndDMALength = size
            parts.append(bytes(end) + b"\0" * 16)
            continue
        data = np.asarray(m.data, np.complex64)
        for ch in range(data.shape[0]):
            h = mdh_def.VB17_header()
            for name in copy:
                setattr(h, name, getattr(m.mdh, name))
            h.ChannelId = ch
            h.FlagsAndDMALength = size + data.shape[1] * 8
            parts.append(bytes(h) + data[ch].tobytes())
    out.write_bytes(b"".join(parts))
    return out
