"""The client: stream a raw file to an ISMRMRD server and collect the images it returns.

:func:`load_scan` reads an ISMRMRD file's XML header and acquisitions as stored, or converts a
Siemens twix file on the fly (:func:`mri_unfold.data.twix_to_ismrmrd.twix_to_ismrmrd`: what
the ``twix`` reader uses, with ``ACQ_LAST_IN_SLICE`` flags).  :func:`stream_scan` connects,
sends CONFIG_FILE, HEADER, every acquisition in order and CLOSE from one thread while another
reads the server's images and texts (so neither side blocks on a full socket), and records
for each slice group the time its last acquisition was sent; the latency of an image is from
that moment to its arrival.  The server's ``ERR`` texts become one-line errors.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.ismrmrd_acquisitions import (Acquisitions, ScanEncoding, classify, group_keys,
                                         parse_header)
from ..data.scan_attributes import ismrmrd_attributes, twix_attributes
from ..data.sources import detect_source
from ..data.sources.ismrmrd_source import read_acquisitions
from ..data.sources.twix import read_twix_scan
from ..data.twix_to_ismrmrd import scan_to_ismrmrd
from ..errors import UserError
from ..reconstruct import ReconResult
from .images import RECON_SERIES, ZERO_FILLED_SERIES, ReceivedImage, received_image, volume_of
from .protocol import (MessageID, ProtocolError, StreamLimits, encode_acquisition, encode_close,
                       encode_config_file, encode_header, read_message, socket_reader)

__all__ = ["RawScan", "load_scan", "StreamResult", "stream_scan", "parse_address",
           "DEFAULT_CONFIG"]

#: The configuration name the client sends (servers of other software pick a reconstruction
#: by it; ``mri-unfold serve`` logs it).
DEFAULT_CONFIG = "mri-unfold"


@dataclass
class RawScan:
    """A raw file as ISMRMRD messages: ``xml`` header bytes, ``acquisitions``, the file's
    ``source`` kind (``"ismrmrd"`` or ``"twix"``), ``path``, and the DICOM ``attributes`` its
    header gives (patient, study, equipment: :mod:`mri_unfold.data.scan_attributes`, what
    ``recon`` puts in DICOM output)."""

    xml: bytes
    acquisitions: Acquisitions
    source: str
    path: Path
    attributes: dict = field(default_factory=dict)

    def slice_ends(self) -> dict[int, tuple]:
        """``{acquisition index: slice group}`` of the last image acquisition of each group
        (:func:`~mri_unfold.data.ismrmrd_acquisitions.group_keys`), in stream order."""
        hdr = parse_header(self.xml, str(self.path))
        trajectory = ScanEncoding.from_header(hdr, str(self.path)).trajectory
        _, image, _ = classify(self.acquisitions.head)
        keys = group_keys(self.acquisitions.head[image], trajectory)
        last = {tuple(int(v) for v in k): int(i) for i, k in zip(image, keys)}
        return {i: k for k, i in last.items()}


def load_scan(path: str | Path) -> RawScan:
    """An ISMRMRD or twix file as :class:`RawScan`.

    Raises:
        FileNotFoundError; UserError naming the file: another format, unreadable data.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: input file not found")
    kind = detect_source(path)
    if kind == "ismrmrd":
        _, xml, acqs = read_acquisitions(path)
        attributes = ismrmrd_attributes(parse_header(xml, str(path)))
    elif kind == "twix":
        twix = read_twix_scan(path)
        text, acqs = scan_to_ismrmrd(twix)
        xml, attributes = text.encode("utf-8"), twix_attributes(twix.measurement["hdr"])
    else:
        raise UserError(f"{path}: stream sends raw scanner data (ISMRMRD .h5 or Siemens twix "
                        f".dat), this is {kind or 'not a recognised format'}")
    return RawScan(xml, acqs, kind, path, attributes)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> ``(host, port)``.

    Raises:
        UserError: not ``HOST:PORT`` or a port outside 1..65535.
    """
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UserError(f"--to {text}: expected HOST:PORT (e.g. 127.0.0.1:9002)")
    return host, int(port)


@dataclass
class StreamResult:
    """What came back.

    Attributes:
        images: every image, in arrival order.
        texts: the server's TEXT messages.
        sent: acquisitions sent.
        seconds: from connecting to the server's CLOSE.
        sent_s: ``{slice group: time.perf_counter()}`` when its last acquisition was sent.
        latencies_s: ``{slice group: seconds}`` from sending its last acquisition to the
            arrival of its first image.
    """

    images: list[ReceivedImage] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    sent: int = 0
    seconds: float = 0.0
    sent_s: dict = field(default_factory=dict)
    latencies_s: dict = field(default_factory=dict)

    def result(self, scan: RawScan, zero_filled: bool = False) -> ReconResult:
        """The reconstruction as a :class:`~mri_unfold.reconstruct.ReconResult` (``recon``'s
        writers take it): ``(S, h, w)`` float32 in ``recon``'s slice order — the series
        ``mri-unfold serve`` sends the reconstruction in, or another server's first series —
        the zero-filled series when ``zero_filled`` (else an empty array), ``info["affine"]``
        and ``info["voxel_size_mm"]`` from the image geometry, ``info["scan_attributes"]``
        of the file and ``info["mrd_header"]`` the XML header sent.

        Raises:
            ProtocolError: no images, or no zero-filled series when asked for.
        """
        series = {im.order[0] for im in self.images}
        main = RECON_SERIES if RECON_SERIES in series or not series else min(series)
        recon, affine = volume_of(self.images, main)
        zf = volume_of(self.images, ZERO_FILLED_SERIES)[0] if zero_filled else \
            np.zeros((0,), np.float32)
        first = next(im for im in self.images if im.order[0] == main)
        fov = [float(v) for v in first.head["field_of_view"]]
        voxel = (fov[0] / recon.shape[1], fov[1] / recon.shape[2], fov[2]) if min(fov) > 0 \
            else None
        return ReconResult(recon, zf, info={
            "slices": len(recon), "crop_size": tuple(recon.shape[1:]), "affine": affine,
            "voxel_size_mm": voxel, "input": str(scan.path), "format": scan.source,
            "scan_attributes": scan.attributes,
            "mrd_header": scan.xml.decode("utf-8", errors="replace")})


def _group_of_image(image: ReceivedImage, partitions: int, cartesian: bool) -> tuple:
    h = image.head
    if not cartesian:
        return (0, 0, int(h["slice"]))
    return (int(h["repetition"]), int(h["contrast"]), int(h["slice"]) // partitions)


def _receive(sock: socket.socket, limits: StreamLimits, result: StreamResult,
             errors: list) -> None:
    read = socket_reader(sock)
    try:
        while True:
            msg = read_message(read, limits)
            if msg is None:
                raise ProtocolError("the server closed the connection without a close message")
            if msg.id == MessageID.CLOSE:
                return
            if msg.id == MessageID.IMAGE:
                result.images.append(received_image(msg, time.perf_counter()))
            elif msg.id == MessageID.TEXT:
                result.texts.append(msg.text)
            else:
                raise ProtocolError(f"unexpected {msg.id.name} message from the server")
    except (UserError, OSError) as e:
        errors.append(e)


def stream_scan(scan: RawScan, host: str, port: int, *, config: str = DEFAULT_CONFIG,
                timeout_s: float = 600.0, interval_s: float = 0.0,
                limits: StreamLimits | None = None) -> StreamResult:
    """Stream ``scan`` to ``host:port`` and collect the answer (module doc).

    ``interval_s`` paces the acquisitions as a scanner does (acquisition ``i`` is sent
    ``i * interval_s`` after the first); 0 sends them as fast as the connection takes them.

    Raises:
        UserError naming the server: cannot connect; the server's ``ERR`` text; a malformed
        answer; no answer within ``timeout_s`` of the last message.
    """
    limits = limits or StreamLimits(idle_timeout_s=timeout_s)
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as e:
        raise UserError(f"{where}: cannot connect ({e.strerror or e})") from e
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay per readout
    result, errors = StreamResult(), []
    ends = scan.slice_ends()
    sent_at = result.sent_s
    start = time.perf_counter()
    reader = threading.Thread(target=_receive, args=(sock, limits, result, errors), daemon=True)
    reader.start()
    acqs = scan.acquisitions
    try:
        sock.sendall(encode_config_file(config) + encode_header(scan.xml))
        first = time.perf_counter()
        for i in range(len(acqs)):
            if interval_s > 0:
                time.sleep(max(0.0, first + i * interval_s - time.perf_counter()))
            sock.sendall(encode_acquisition(acqs.head[i], acqs.data[i], acqs.traj[i]))
            result.sent += 1
            if i in ends:
                sent_at[ends[i]] = time.perf_counter()
        sock.sendall(encode_close())
    except OSError as e:
        errors.append(e)
    reader.join(timeout_s)
    sock.close()
    result.seconds = time.perf_counter() - start
    refused = [t for t in result.texts if t.startswith("ERR")]
    if refused:
        raise UserError(f"{where}: the server refused the stream: {refused[0][3:].strip()}")
    if reader.is_alive():
        raise UserError(f"{where}: no answer within {timeout_s:g} s")
    if errors:
        raise UserError(f"{where}: {' '.join(str(errors[0]).split()) or type(errors[0]).__name__}")
    hdr = ScanEncoding.from_header(parse_header(scan.xml, str(scan.path)), str(scan.path))
    for im in result.images:
        key = _group_of_image(im, hdr.encoding.partitions, hdr.trajectory == "cartesian")
        if key in sent_at and key not in result.latencies_s:
            result.latencies_s[key] = im.received_s - sent_at[key]
    return result
