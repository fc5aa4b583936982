"""One connection of the server: ISMRMRD messages in, MRD images out.

Order of the messages (python-ismrmrd-server, FIRE / OpenRecon and Gadgetron clients): an
optional configuration (CONFIG_FILE name or CONFIG_TEXT, logged; nothing named in it is
opened, imported or run), the XML HEADER, optional TEXT messages (FIRE's JSON parameters,
logged), then ACQUISITIONs — WAVEFORMs anywhere are counted and dropped — and CLOSE.

Acquisitions are sorted as the file reader sorts them
(:func:`~mri_unfold.data.ismrmrd_acquisitions.classify`): noise scans are kept for the noise
covariance, calibration-only lines, navigators and the like are dropped, image acquisitions
are checked on arrival against the header (encoding limits, encoded matrix, readout length,
one channel count; :func:`~mri_unfold.data.raw_assembly.check_readouts`) and held per slice
group — (repetition, contrast, slice) for Cartesian scans, the slice for non-Cartesian ones.
A group is **complete** at its acquisition flagged ``ACQ_LAST_IN_SLICE`` (with the header's
last average, when it declares averages), at ``ACQ_LAST_IN_MEASUREMENT`` (every open group)
or at CLOSE.  A complete group goes through the file reader's assembly
(:func:`~mri_unfold.data.ismrmrd_acquisitions.image_slices`: partial Fourier, asymmetric
echo, oversampling removal, averages, 3-D partitions, prewhitening) and the reconstruction of
``recon`` (:class:`~mri_unfold.serving.reconstructor.Reconstructor`); its images are sent at
once and its samples freed.

The noise covariance is fixed when the first group completes (scanners send the noise scans
first); noise scans arriving later are counted and ignored.  An acquisition of a group that
is already complete is an error: its slice would differ from the file's.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np

from ..data.ismrmrd_acquisitions import (Acquisitions, ScanEncoding, classify, covariance_of,
                                         flag_set, group_keys, image_slices, parse_header,
                                         readouts_of)
from ..data.raw_assembly import check_readouts
from .images import RECON_SERIES, ZERO_FILLED_SERIES, slice_image
from .protocol import Message, MessageID, ProtocolError, StreamLimits, encode_close
from .reconstructor import Reconstructor

__all__ = ["StreamSession", "SessionCounts"]

_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class SessionCounts:
    """What a connection sent and got (for its log line)."""

    acquisitions: int = 0
    noise: int = 0
    late_noise: int = 0
    skipped: int = 0
    waveforms: int = 0
    texts: int = 0
    slices: int = 0
    images: int = 0
    latencies_s: list = field(default_factory=list)


@dataclass
class _Group:
    heads: list = field(default_factory=list)
    data: list = field(default_factory=list)
    traj: list = field(default_factory=list)
    nbytes: int = 0


class StreamSession:
    """The state of one connection (module doc).

    Args:
        reconstructor: the server's shared :class:`Reconstructor`.
        limits: the size limits (``max_buffered_bytes`` applies here).
    """

    def __init__(self, reconstructor: Reconstructor, limits: StreamLimits):
        self.reconstructor, self.limits = reconstructor, limits
        self.config: str | None = None
        self.scan: ScanEncoding | None = None
        self.name = "stream"
        self.counts = SessionCounts()
        self.closed = False
        self._noise: list[np.ndarray] = []
        self._covariance = None
        self._covariance_fixed = False
        self._pending: dict[tuple, _Group] = {}
        self._completed: set[tuple] = set()
        self._buffered = 0
        self._channels: int | None = None
        self._extras: dict = {}

    @property
    def pending_slices(self) -> int:
        """Slice groups received in part and not reconstructed."""
        return len(self._pending)

    def handle(self, msg: Message) -> list[bytes]:
        """Take one message; returns the messages to send back (images, then CLOSE after a
        CLOSE).

        Raises:
            ProtocolError / UserError: the one-line reason to close the connection.
        """
        if self.closed:
            raise ProtocolError(f"message {int(msg.id)} after the close message")
        if msg.id in (MessageID.CONFIG_FILE, MessageID.CONFIG_TEXT):
            if self.scan is not None:
                raise ProtocolError("a configuration message after the XML header")
            self.config = (msg.text[:100] if msg.id == MessageID.CONFIG_FILE
                           else f"text of {len(msg.text)} characters")
            return []
        if msg.id == MessageID.HEADER:
            return self._header(msg.xml)
        if msg.id == MessageID.TEXT:
            self.counts.texts += 1
            return []
        if msg.id == MessageID.WAVEFORM:
            self.counts.waveforms += 1
            return []
        if msg.id == MessageID.ACQUISITION:
            return self._acquisition(msg, time.perf_counter())
        if msg.id == MessageID.CLOSE:
            out = self._finish(sorted(self._pending), time.perf_counter())
            self.closed = True
            return out + [encode_close()]
        raise ProtocolError(f"{msg.id.name} messages are not accepted by this server (it "
                            "reconstructs raw acquisitions)")

    def _header(self, xml: bytes) -> list[bytes]:
        if self.scan is not None:
            raise ProtocolError("a second XML header")
        hdr = parse_header(xml, "the stream's XML header")
        self.scan = ScanEncoding.from_header(hdr, "the stream's XML header")
        info = hdr.measurementInformation
        ident = _NAME.sub("_", str(getattr(info, "measurementID", None) or ""))[:80].strip("._")
        self.name = ident or "stream"
        enc = self.scan.encoding
        self._extras = {"format": "ismrmrd",
                        "encoded_matrix": (enc.readout_full, enc.lines, enc.partitions)}
        return []

    def _hold(self, nbytes: int) -> None:
        if self._buffered + nbytes > self.limits.max_buffered_bytes:
            raise ProtocolError(f"the stream holds more than {self.limits.max_buffered_bytes} "
                                f"bytes of k-space not yet reconstructed ({self.pending_slices} "
                                "incomplete slices; no ACQ_LAST_IN_SLICE flags?)")
        self._buffered += nbytes

    def _acquisition(self, msg: Message, arrived: float) -> list[bytes]:
        if self.scan is None:
            raise ProtocolError("an acquisition before the XML header")
        number = self.counts.acquisitions
        self.counts.acquisitions += 1
        head = msg.head.reshape(1)
        noise, image, _ = classify(head)
        if noise.size:
            if self._covariance_fixed:
                self.counts.late_noise += 1
            else:
                self._hold(msg.data.nbytes)
                self._noise.append(msg.data)
                self.counts.noise += 1
            return []
        if image.size == 0:
            self.counts.skipped += 1
            return []
        channels = msg.data.shape[0]
        if self._channels is None:
            self._channels = channels
        elif channels != self._channels:
            raise ProtocolError(f"acquisition {number} has {channels} channels, the earlier "
                                f"image acquisitions {self._channels}")
        cartesian = self.scan.trajectory == "cartesian"
        key = tuple(int(v) for v in group_keys(head, self.scan.trajectory)[0])
        if key in self._completed:
            raise ProtocolError(f"acquisition {number} belongs to repetition {key[0]}, contrast "
                                f"{key[1]}, slice {key[2]}, which was already complete "
                                "(ACQ_LAST_IN_SLICE)")
        one = readouts_of(Acquisitions(head, [msg.data], [msg.traj]), np.zeros(1, int))
        one.number = np.array([number])
        check_readouts(one, self.scan.encoding, "the stream", placement=cartesian)
        self._hold(msg.data.nbytes + msg.traj.nbytes)
        group = self._pending.setdefault(key, _Group())
        group.heads.append(head)
        group.data.append(msg.data)
        group.traj.append(msg.traj)
        group.nbytes += msg.data.nbytes + msg.traj.nbytes
        return self._finish(self._complete(head[0], key), arrived)

    def _complete(self, head, key: tuple) -> list[tuple]:
        flags = head["flags"]
        if flag_set(flags, "last_in_measurement"):
            return sorted(self._pending)
        if flag_set(flags, "last_in_slice"):
            averages = self.scan.encoding.limits.get("average")
            if averages is None or int(head["idx"]["average"]) >= averages[1]:
                return [key]
        return []

    def _fix_covariance(self) -> None:
        if self._covariance_fixed:
            return
        self._covariance = covariance_of(self._noise, "the stream's noise scans")
        self._covariance_fixed = True
        self._buffered -= sum(n.nbytes for n in self._noise)
        self._noise = []

    def _finish(self, keys: list[tuple], arrived: float) -> list[bytes]:
        out: list[bytes] = []
        if not keys:
            return out
        self._fix_covariance()
        rec, settings = self.reconstructor, self.reconstructor.settings
        for key in keys:
            group = self._pending.pop(key)
            self._completed.add(key)
            acqs = Acquisitions(np.concatenate(group.heads), group.data, group.traj)
            samples = image_slices(acqs, np.arange(len(acqs)), self.scan, path=self.name,
                                   extras=self._extras, covariance=self._covariance,
                                   prewhiten=settings.prewhiten,
                                   first_index=self.counts.slices)
            result = rec.reconstruct(samples, self.name)
            series = [(RECON_SERIES, result.reconstruction)]
            if settings.send_zero_filled:
                series.append((ZERO_FILLED_SERIES, result.zero_filled))
            for k, sample in enumerate(samples):
                for number, stack in series:
                    self.counts.images += 1
                    out.append(slice_image(stack[k], sample, acqs.head[0],
                                           index=self.counts.images, series=number,
                                           label=rec.label, image_type=settings.image_type))
            self.counts.slices += len(samples)
            self._buffered -= group.nbytes
            self.counts.latencies_s.append(time.perf_counter() - arrived)
        return out

    def summary(self) -> str:
        """The connection's counts as text (its log line)."""
        c = self.counts
        lat = ""
        if c.latencies_s:
            lat = (f"; reconstruction latency median {np.median(c.latencies_s) * 1e3:.0f} ms, "
                   f"max {max(c.latencies_s) * 1e3:.0f} ms")
        late = f", {c.late_noise} late noise ignored" if c.late_noise else ""
        return (f"config {self.config or '-'}, {c.acquisitions} acquisitions ({c.noise} noise"
                f"{late}, {c.skipped} skipped), {c.waveforms} waveforms, {c.slices} slices -> "
                f"{c.images} images{lat}")
