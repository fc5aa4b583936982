"""The ISMRMRD streaming message protocol (python-ismrmrd-server, Siemens FIRE / OpenRecon,
Gadgetron clients), written from its specification.

A connection carries messages; each starts with its ID, a little-endian ``uint16``:

======  ==============  ==================================================================
ID      message         what follows the ID
======  ==============  ==================================================================
1       CONFIG_FILE     1024 bytes: a null-terminated UTF-8 configuration name
2       CONFIG_TEXT     ``uint32`` length, then that many bytes of text (null-terminated)
3       HEADER          ``uint32`` length, then the ISMRMRD XML header (null-terminated)
4       CLOSE           nothing: the sender has sent everything
5       TEXT            ``uint32`` length, then that many bytes of text (null-terminated)
1008    ACQUISITION     340-byte acquisition header, trajectory ``float32``
                        (samples x trajectory dimensions), samples ``complex64``
                        (channels x samples)
1022    IMAGE           198-byte image header, ``uint64`` attribute length, the attributes
                        (ISMRMRD MetaContainer XML), pixels (channels x z x y x, the header's
                        data type)
1026    WAVEFORM        40-byte waveform header, ``uint32`` samples (channels x samples)
======  ==============  ==================================================================

All numbers are little-endian; the fixed headers are the ISMRMRD structures
(:func:`header_dtypes`: the ``ismrmrd`` package's record layout).  Text is sent with a
terminating null byte, counted in the length; readers cut at the first null byte.

:func:`read_message` checks every length against :class:`StreamLimits` **before** allocating
or reading the body and raises :class:`ProtocolError` (a one-line reason) for unknown IDs,
oversized or inconsistent messages and streams that end inside a message.  Nothing received is
ever unpickled or executed.
"""
from __future__ import annotations

import functools
import socket
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Callable

import numpy as np

from ..errors import UserError

__all__ = ["header_dtypes", "MessageID", "StreamLimits", "ProtocolError", "Message",
           "read_message", "ByteReader", "socket_reader", "bytes_reader", "encode_config_file",
           "encode_config_text", "encode_header", "encode_text", "encode_close",
           "encode_acquisition", "encode_image", "IMAGE_DTYPES", "CONFIG_FILE_BYTES"]

#: Size of a CONFIG_FILE message's name field.
CONFIG_FILE_BYTES = 1024
#: Image data types (header ``data_type``) -> numpy dtypes.
IMAGE_DTYPES = {1: np.dtype("<u2"), 2: np.dtype("<i2"), 3: np.dtype("<u4"), 4: np.dtype("<i4"),
                5: np.dtype("<f4"), 6: np.dtype("<f8"), 7: np.dtype("<c8"), 8: np.dtype("<c16")}


@functools.lru_cache(maxsize=None)
def header_dtypes() -> dict[str, np.dtype]:
    """The fixed ISMRMRD headers as numpy dtypes (``"acquisition"`` 340 bytes, ``"image"``
    198, ``"waveform"`` 40), from the ``ismrmrd`` package's record layout."""
    from ismrmrd.hdf5 import acquisition_header_dtype, image_header_dtype, waveform_header_dtype

    return {"acquisition": acquisition_header_dtype, "image": image_header_dtype,
            "waveform": waveform_header_dtype}


class MessageID(IntEnum):
    """Message IDs of the protocol (module doc)."""

    CONFIG_FILE = 1
    CONFIG_TEXT = 2
    HEADER = 3
    CLOSE = 4
    TEXT = 5
    ACQUISITION = 1008
    IMAGE = 1022
    WAVEFORM = 1026


class ProtocolError(UserError):
    """A malformed, oversized or truncated stream (the message is the one-line reason)."""


@dataclass(frozen=True)
class StreamLimits:
    """Sizes a connection may send, checked before anything is allocated.

    Attributes:
        max_text_bytes: a CONFIG_TEXT or TEXT message, or an image's attributes.
        max_header_bytes: the XML header.
        max_message_bytes: one acquisition, image or waveform (fixed header excluded).
        max_channels: channels of an acquisition or image.
        max_trajectory_dims: trajectory dimensions of an acquisition.
        max_buffered_bytes: k-space samples one connection holds at once (acquisitions of
            slices not yet reconstructed, noise scans).
        idle_timeout_s: seconds without data before the connection is closed.
    """

    max_text_bytes: int = 1 << 20
    max_header_bytes: int = 4 << 20
    max_message_bytes: int = 256 << 20
    max_channels: int = 1024
    max_trajectory_dims: int = 4
    max_buffered_bytes: int = 4 << 30
    idle_timeout_s: float = 300.0


@dataclass
class Message:
    """One received message.

    Attributes:
        id: its :class:`MessageID`.
        text: CONFIG_FILE / CONFIG_TEXT / TEXT: the text (cut at the first null byte).
        xml: HEADER: the XML bytes (cut at the first null byte).
        head: ACQUISITION / IMAGE / WAVEFORM: the fixed header (a numpy structured scalar).
        data: ACQUISITION ``(channels, samples)`` complex64; IMAGE ``(channels, z, y, x)`` of
            the header's data type; WAVEFORM ``(channels, samples)`` uint32.
        traj: ACQUISITION ``(samples, dims)`` float32.
        attributes: IMAGE: the MetaContainer XML text.
        nbytes: bytes the message took on the wire.
    """

    id: MessageID
    text: str = ""
    xml: bytes = b""
    head: np.void | None = None
    data: np.ndarray | None = None
    traj: np.ndarray | None = None
    attributes: str = ""
    nbytes: int = 2


#: ``read(n, what)`` -> exactly ``n`` bytes, or fewer only at the end of the stream.
ByteReader = Callable[[int, str], bytes]


def socket_reader(sock: socket.socket) -> ByteReader:
    """A :data:`ByteReader` on a connected socket (its timeout is the idle timeout)."""

    def read(n: int, what: str) -> bytes:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            try:
                k = sock.recv_into(view[got:], n - got)
            except socket.timeout as e:
                raise ProtocolError(f"no data for {sock.gettimeout():g} s while waiting for "
                                    f"{what} (idle timeout)") from e
            if k == 0:
                break
            got += k
        return bytes(buf[:got]) if got < n else bytes(buf)

    return read


def bytes_reader(data: bytes) -> ByteReader:
    """A :data:`ByteReader` over bytes in memory (tests, fixtures)."""
    pos = 0

    def read(n: int, what: str) -> bytes:
        nonlocal pos
        out = data[pos:pos + n]
        pos += len(out)
        return out

    return read


def _exact(read: ByteReader, n: int, what: str) -> bytes:
    out = read(n, what) if n else b""
    if len(out) < n:
        raise ProtocolError(f"the stream ended in the middle of {what} ({len(out)} of {n} "
                            "bytes)")
    return out


def _length(read: ByteReader, fmt: str, limit: int, what: str) -> int:
    size = struct.calcsize(fmt)
    n = struct.unpack(fmt, _exact(read, size, f"the length of {what}"))[0]
    if n > limit:
        raise ProtocolError(f"{what} of {n} bytes exceeds the limit of {limit} bytes")
    return n


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace")


def _fixed(read: ByteReader, dtype: np.dtype, what: str) -> np.void:
    return np.frombuffer(_exact(read, dtype.itemsize, f"the header of {what}"), dtype)[0].copy()


def _acquisition(read: ByteReader, limits: StreamLimits) -> Message:
    head = _fixed(read, header_dtypes()["acquisition"], "an acquisition")
    n, c = int(head["number_of_samples"]), int(head["active_channels"])
    d = int(head["trajectory_dimensions"])
    if c < 1 or c > limits.max_channels:
        raise ProtocolError(f"acquisition {int(head['scan_counter'])} has {c} channels "
                            f"(expected 1..{limits.max_channels})")
    if d > limits.max_trajectory_dims:
        raise ProtocolError(f"acquisition {int(head['scan_counter'])} has {d} trajectory "
                            f"dimensions (at most {limits.max_trajectory_dims})")
    size = n * d * 4 + n * c * 8
    if size > limits.max_message_bytes:
        raise ProtocolError(f"acquisition {int(head['scan_counter'])} of {size} bytes ({c} "
                            f"channels x {n} samples) exceeds the limit of "
                            f"{limits.max_message_bytes} bytes")
    what = f"acquisition {int(head['scan_counter'])}"
    traj = np.frombuffer(_exact(read, n * d * 4, what), "<f4").reshape(n, d)
    data = np.frombuffer(_exact(read, n * c * 8, what), "<c8").reshape(c, n)
    return Message(MessageID.ACQUISITION, head=head, data=data, traj=traj,
                   nbytes=2 + head.dtype.itemsize + size)


def _image(read: ByteReader, limits: StreamLimits) -> Message:
    head = _fixed(read, header_dtypes()["image"], "an image")
    dtype = IMAGE_DTYPES.get(int(head["data_type"]))
    if dtype is None:
        raise ProtocolError(f"image {int(head['image_index'])} has the unknown data type "
                            f"{int(head['data_type'])} (expected 1..8)")
    c = int(head["channels"])
    if c > limits.max_channels:
        raise ProtocolError(f"image {int(head['image_index'])} has {c} channels (at most "
                            f"{limits.max_channels})")
    shape = (c, *(int(v) for v in head["matrix_size"][::-1]))
    size = int(np.prod(shape)) * dtype.itemsize
    if size > limits.max_message_bytes:
        raise ProtocolError(f"image {int(head['image_index'])} of {size} bytes exceeds the "
                            f"limit of {limits.max_message_bytes} bytes")
    n_attr = _length(read, "<Q", limits.max_text_bytes, "image attributes")
    attributes = _text(_exact(read, n_attr, "image attributes"))
    data = np.frombuffer(_exact(read, size, "image data"), dtype).reshape(shape)
    return Message(MessageID.IMAGE, head=head, data=data, attributes=attributes,
                   nbytes=2 + head.dtype.itemsize + 8 + n_attr + size)


def _waveform(read: ByteReader, limits: StreamLimits) -> Message:
    head = _fixed(read, header_dtypes()["waveform"], "a waveform")
    c, n = int(head["channels"]), int(head["number_of_samples"])
    size = c * n * 4
    if size > limits.max_message_bytes:
        raise ProtocolError(f"waveform of {size} bytes exceeds the limit of "
                            f"{limits.max_message_bytes} bytes")
    data = np.frombuffer(_exact(read, size, "waveform data"), "<u4").reshape(c, n)
    return Message(MessageID.WAVEFORM, head=head, data=data,
                   nbytes=2 + head.dtype.itemsize + size)


def read_message(read: ByteReader, limits: StreamLimits) -> Message | None:
    """The next message, or None when the stream ends cleanly before a message ID.

    Raises:
        ProtocolError: an unknown ID, a length over ``limits``, inconsistent sizes, a stream
            that ends inside a message, an idle timeout.
    """
    raw = read(2, "a message ID")
    if len(raw) == 0:
        return None
    if len(raw) < 2:
        raise ProtocolError("the stream ended in the middle of a message ID")
    ident = struct.unpack("<H", raw)[0]
    if ident == MessageID.CONFIG_FILE:
        name = _text(_exact(read, CONFIG_FILE_BYTES, "a CONFIG_FILE message"))
        return Message(MessageID.CONFIG_FILE, text=name, nbytes=2 + CONFIG_FILE_BYTES)
    if ident in (MessageID.CONFIG_TEXT, MessageID.TEXT, MessageID.HEADER):
        kind = MessageID(ident)
        what = "the XML header" if kind == MessageID.HEADER else f"a {kind.name} message"
        limit = limits.max_header_bytes if kind == MessageID.HEADER else limits.max_text_bytes
        n = _length(read, "<I", limit, what)
        body = _exact(read, n, what)
        if kind == MessageID.HEADER:
            return Message(kind, xml=body.split(b"\x00", 1)[0], nbytes=6 + n)
        return Message(kind, text=_text(body), nbytes=6 + n)
    if ident == MessageID.CLOSE:
        return Message(MessageID.CLOSE)
    if ident == MessageID.ACQUISITION:
        return _acquisition(read, limits)
    if ident == MessageID.IMAGE:
        return _image(read, limits)
    if ident == MessageID.WAVEFORM:
        return _waveform(read, limits)
    raise ProtocolError(f"unknown message ID {ident} (expected one of "
                        f"{', '.join(str(int(m)) for m in MessageID)})")


def _id(ident: MessageID) -> bytes:
    return struct.pack("<H", int(ident))


def _with_length(ident: MessageID, text: str | bytes) -> bytes:
    body = (text.encode("utf-8") if isinstance(text, str) else bytes(text)) + b"\x00"
    return _id(ident) + struct.pack("<I", len(body)) + body


def encode_config_file(name: str) -> bytes:
    """A CONFIG_FILE message.  Raises ValueError for names of 1024 bytes or more."""
    raw = name.encode("utf-8")
    if len(raw) >= CONFIG_FILE_BYTES:
        raise ValueError(f"configuration name of {len(raw)} bytes (at most "
                         f"{CONFIG_FILE_BYTES - 1})")
    return _id(MessageID.CONFIG_FILE) + raw.ljust(CONFIG_FILE_BYTES, b"\x00")


def encode_config_text(text: str) -> bytes:
    """A CONFIG_TEXT message (null-terminated text)."""
    return _with_length(MessageID.CONFIG_TEXT, text)


def encode_header(xml: str | bytes) -> bytes:
    """A HEADER message (null-terminated XML)."""
    raw = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
    return _with_length(MessageID.HEADER, raw.split(b"\x00", 1)[0])


def encode_text(text: str) -> bytes:
    """A TEXT message (null-terminated text)."""
    return _with_length(MessageID.TEXT, text)


def encode_close() -> bytes:
    """A CLOSE message."""
    return _id(MessageID.CLOSE)


def encode_acquisition(head, data, traj=None) -> bytes:
    """An ACQUISITION message.

    Args:
        head: an acquisition header (structured scalar or 1-element array of
            :data:`ismrmrd.hdf5.acquisition_header_dtype` fields); ``number_of_samples``,
            ``active_channels`` and ``trajectory_dimensions`` are set from the arrays.
        data: ``(channels, samples)`` complex samples.
        traj: ``(samples, dims)`` trajectory, or None / empty.
    """
    d = np.ascontiguousarray(data, "<c8")
    t = np.zeros((d.shape[1], 0), "<f4") if traj is None or np.size(traj) == 0 else \
        np.ascontiguousarray(np.asarray(traj, "<f4").reshape(d.shape[1], -1))
    dtype = header_dtypes()["acquisition"]
    h = np.zeros(1, dtype)
    for name in dtype.names:
        h[name] = head[name]
    h["number_of_samples"], h["active_channels"] = d.shape[1], d.shape[0]
    h["trajectory_dimensions"] = t.shape[1]
    return _id(MessageID.ACQUISITION) + h.tobytes() + t.tobytes() + d.tobytes()


def encode_image(head, attributes: str, data: np.ndarray) -> bytes:
    """An IMAGE message: ``head`` (image header fields; ``matrix_size``, ``channels``,
    ``data_type`` and ``attribute_string_len`` are set from the arguments), the attribute
    XML and ``data`` ``(channels, z, y, x)`` of a type in :data:`IMAGE_DTYPES`."""
    arr = np.asarray(data)
    types = {v: k for k, v in IMAGE_DTYPES.items()}
    kind = types.get(arr.dtype.newbyteorder("<"))
    if kind is None or arr.ndim != 4:
        raise ValueError(f"image data must be (channels, z, y, x) of {sorted(map(str, types))},"
                         f" got {arr.dtype} {arr.shape}")
    attr = attributes.encode("utf-8")
    dtype = header_dtypes()["image"]
    h = np.zeros(1, dtype)
    for name in dtype.names:
        h[name] = head[name]
    h["matrix_size"] = arr.shape[:0:-1]
    h["channels"], h["data_type"], h["attribute_string_len"] = arr.shape[0], kind, len(attr)
    return (_id(MessageID.IMAGE) + h.tobytes() + struct.pack("<Q", len(attr)) + attr
            + np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).tobytes())
