"""The ISMRMRD streaming protocol pinned byte by byte: every expected message below is packed by
hand with struct from the specification (IDs, little-endian lengths, the fixed header field
offsets), then checked against our encoder and decoder, against the ``ismrmrd`` package's own
serializer, and against hostile lengths that must be refused before anything is read."""
import io
import struct

import numpy as np
import pytest

from mri_unfold.serving.images import meta_xml, parse_meta
from mri_unfold.serving.protocol import (CONFIG_FILE_BYTES, MessageID, ProtocolError,
                                         StreamLimits, bytes_reader, encode_acquisition,
                                         encode_close, encode_config_file, encode_config_text,
                                         encode_header, encode_image, encode_text, header_dtypes,
                                         read_message)

LIMITS = StreamLimits()


def _acquisition_header(samples: int, channels: int, traj_dims: int) -> bytes:
    """The 340-byte ISMRMRD acquisition header, field by field at its offset."""
    b = bytearray(340)
    struct.pack_into("<H", b, 0, 1)                       # version
    struct.pack_into("<Q", b, 2, (1 << 7) | (1 << 21))    # flags: LAST_IN_SLICE, REVERSE
    struct.pack_into("<IIII", b, 10, 77, 5, 1234, 99)     # uid, scan_counter, time, physio[0]
    struct.pack_into("<HHH", b, 34, samples, channels, channels)
    struct.pack_into("<Q", b, 40, (1 << min(channels, 64)) - 1)  # channel_mask[0]
    struct.pack_into("<HHHHH", b, 168, 0, 0, samples // 2, 0, traj_dims)
    struct.pack_into("<f", b, 178, 2.5)                   # sample_time_us
    struct.pack_into("<3f", b, 182, 1.0, -2.0, 3.5)       # position
    struct.pack_into("<3f", b, 194, 1, 0, 0)              # read_dir
    struct.pack_into("<3f", b, 206, 0, 1, 0)              # phase_dir
    struct.pack_into("<3f", b, 218, 0, 0, 1)              # slice_dir
    struct.pack_into("<9H", b, 242, 17, 0, 1, 2, 3, 0, 4, 0, 0)  # line, par, ave, slice, ...
    struct.pack_into("<i", b, 276, -7)                    # user_int[0]
    struct.pack_into("<f", b, 308, 0.25)                  # user_float[0]
    return bytes(b)


def _image_header(x: int, y: int, data_type: int, attr_len: int) -> bytes:
    """The 198-byte ISMRMRD image header, field by field at its offset."""
    b = bytearray(198)
    struct.pack_into("<HHQI", b, 0, 1, data_type, 0, 77)  # version, type, flags, uid
    struct.pack_into("<3H", b, 16, x, y, 1)               # matrix_size
    struct.pack_into("<3f", b, 22, 200.0, 150.0, 5.0)     # field_of_view
    struct.pack_into("<H", b, 34, 1)                      # channels
    struct.pack_into("<3f", b, 36, 1.0, -2.0, 3.5)        # position
    struct.pack_into("<3f", b, 48, 1, 0, 0)
    struct.pack_into("<3f", b, 60, 0, 1, 0)
    struct.pack_into("<3f", b, 72, 0, 0, 1)
    struct.pack_into("<6H", b, 96, 0, 2, 1, 0, 3, 0)      # average, slice, contrast, ..., rep
    struct.pack_into("<HHH", b, 124, 1, 9, 1)             # image_type, index, series
    struct.pack_into("<I", b, 194, attr_len)
    return bytes(b)


def _read(data: bytes, limits=LIMITS):
    return read_message(bytes_reader(data), limits)


def test_fixed_header_layouts_are_the_ismrmrd_structures():
    d = header_dtypes()
    assert (d["acquisition"].itemsize, d["image"].itemsize, d["waveform"].itemsize) == \
        (340, 198, 40)
    assert [d["acquisition"].fields[n][1] for n in ("flags", "number_of_samples", "idx",
                                                     "user_float")] == [2, 34, 242, 308]
    assert [d["image"].fields[n][1] for n in ("matrix_size", "channels", "image_index",
                                               "attribute_string_len")] == [16, 34, 126, 194]
    assert [int(m) for m in MessageID] == [1, 2, 3, 4, 5, 1008, 1022, 1026]


def test_control_messages_byte_for_byte():
    assert encode_close() == b"\x04\x00"
    cfg = encode_config_file("invertcontrast")
    assert cfg == b"\x01\x00" + b"invertcontrast" + b"\x00" * (CONFIG_FILE_BYTES - 14)
    assert encode_config_text("<c/>") == b"\x02\x00\x05\x00\x00\x00<c/>\x00"
    assert encode_text("ERR x") == b"\x05\x00\x06\x00\x00\x00ERR x\x00"
    assert encode_header(b"<h/>") == b"\x03\x00\x05\x00\x00\x00<h/>\x00"
    assert _read(cfg).text == "invertcontrast" and _read(cfg).nbytes == 1026
    assert _read(b"\x05\x00\x06\x00\x00\x00ERR x\x00").text == "ERR x"
    head = _read(b"\x03\x00\x04\x00\x00\x00<h/>")          # Gadgetron: no terminator
    assert (head.id, head.xml) == (MessageID.HEADER, b"<h/>")
    assert _read(b"\x04\x00").id == MessageID.CLOSE and _read(b"") is None
    with pytest.raises(ValueError, match="configuration name of 1024 bytes"):
        encode_config_file("x" * 1024)


def test_acquisition_message_byte_for_byte():
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((2, 8)) + 1j * rng.standard_normal((2, 8))).astype("<c8")
    traj = rng.standard_normal((8, 2)).astype("<f4")
    wire = b"\xf0\x03" + _acquisition_header(8, 2, 2) + traj.tobytes() + data.tobytes()
    msg = _read(wire)
    assert msg.id == MessageID.ACQUISITION and msg.nbytes == len(wire) == 2 + 340 + 64 + 128
    h = msg.head
    assert (int(h["scan_counter"]), int(h["idx"]["kspace_encode_step_1"]),
            int(h["idx"]["slice"]), int(h["idx"]["repetition"]), int(h["center_sample"])) == \
        (5, 17, 2, 4, 4)
    assert np.array_equal(h["position"], np.float32([1.0, -2.0, 3.5]))
    assert int(h["user_int"][0]) == -7 and float(h["user_float"][0]) == 0.25
    assert np.array_equal(msg.data, data) and np.array_equal(msg.traj, traj)
    assert encode_acquisition(h, data, traj) == wire          # and back, bit for bit


def test_image_and_waveform_messages_byte_for_byte():
    pixels = np.arange(12, dtype="<f4").reshape(1, 1, 3, 4)      # (channels, z, y=3, x=4)
    attr = meta_xml({"DataRole": "Image", "ImageComment": ["mri-unfold", "sense"]}).encode()
    wire = (b"\xfe\x03" + _image_header(4, 3, 5, len(attr)) + struct.pack("<Q", len(attr))
            + attr + pixels.tobytes())
    msg = _read(wire)
    assert msg.id == MessageID.IMAGE and np.array_equal(msg.data, pixels)
    assert parse_meta(msg.attributes) == {"DataRole": "Image",
                                          "ImageComment": ["mri-unfold", "sense"]}
    assert (int(msg.head["slice"]), int(msg.head["repetition"]), int(msg.head["image_index"])) \
        == (2, 3, 9)
    assert encode_image(msg.head, msg.attributes, pixels) == wire
    wave = bytearray(40)                          # naturally aligned: flags at 8, 40 bytes
    struct.pack_into("<H", wave, 0, 1)
    struct.pack_into("<QIII", wave, 8, 0, 77, 3, 55)              # flags, uid, scan, time
    struct.pack_into("<HHfH", wave, 28, 5, 2, 400.0, 1)           # samples, channels, dt, id
    samples = np.arange(10, dtype="<u4")
    w = _read(b"\x02\x04" + bytes(wave) + samples.tobytes())
    assert w.id == MessageID.WAVEFORM and np.array_equal(w.data, samples.reshape(2, 5))
    assert int(w.head["channels"]) == 2 and int(w.head["number_of_samples"]) == 5


def test_interoperates_with_the_ismrmrd_package_serializer():
    import ismrmrd
    from ismrmrd.serialization import ProtocolDeserializer, ProtocolSerializer

    rng = np.random.default_rng(1)
    acq = ismrmrd.Acquisition.from_array(
        (rng.standard_normal((3, 16)) + 1j * rng.standard_normal((3, 16))).astype(np.complex64))
    acq.idx.kspace_encode_step_1, acq.idx.slice, acq.center_sample = 11, 1, 8
    img = ismrmrd.Image.from_array(rng.standard_normal((5, 6)).astype(np.float32),
                                   transpose=False)
    img.attribute_string = meta_xml({"WindowCenter": 100})
    buf = io.BytesIO()
    with ProtocolSerializer(buf) as ser:          # theirs -> ours
        ser.serialize(acq)
        ser.serialize(img)
    read = bytes_reader(buf.getvalue())
    a, i, c = (read_message(read, LIMITS) for _ in range(3))
    assert np.array_equal(a.data, acq.data) and int(a.head["idx"]["kspace_encode_step_1"]) == 11
    assert np.array_equal(i.data, img.data) and parse_meta(i.attributes) == {"WindowCenter": "100"}
    assert c.id == MessageID.CLOSE
    ours = encode_acquisition(a.head, a.data) + encode_image(i.head, i.attributes, i.data) + \
        encode_close()                           # ours -> theirs
    back = list(ProtocolDeserializer(io.BytesIO(ours)).deserialize())
    assert np.array_equal(back[0].data, acq.data) and back[0].idx.slice == 1
    assert np.array_equal(back[1].data, img.data)


class _Recording:
    """A reader that records every size asked for: lengths must be refused before a read."""

    def __init__(self, data: bytes):
        self.read, self.asked = bytes_reader(data), []

    def __call__(self, n, what):
        self.asked.append(n)
        return self.read(n, what)


@pytest.mark.parametrize("wire, message", [
    (struct.pack("<HI", 3, 0xFFFFFFFF), "the XML header of 4294967295 bytes exceeds the limit "
                                        "of 4194304 bytes"),
    (struct.pack("<HI", 5, 2_000_000), "a TEXT message of 2000000 bytes exceeds the limit"),
    (b"\xf0\x03" + _acquisition_header(60000, 1000, 0), "acquisition 5 of 480000000 bytes "
                                                         r"\(1000 channels x 60000 samples\)"),
    (b"\xf0\x03" + _acquisition_header(8, 2000, 0), "acquisition 5 has 2000 channels"),
    (b"\xf0\x03" + _acquisition_header(8, 0, 0), "acquisition 5 has 0 channels"),
    (b"\xf0\x03" + _acquisition_header(8, 2, 9), "acquisition 5 has 9 trajectory dimensions"),
    (b"\xfe\x03" + _image_header(4, 3, 13, 0), "image 9 has the unknown data type 13"),
    (b"\xfe\x03" + _image_header(4, 3, 5, 0) + struct.pack("<Q", 1 << 40),
     "image attributes of 1099511627776 bytes exceeds the limit"),
])
def test_lying_lengths_are_refused_before_reading(wire, message):
    rec = _Recording(wire)
    with pytest.raises(ProtocolError, match=message):
        read_message(rec, LIMITS)
    assert max(rec.asked) <= 340                    # nothing beyond the fixed header was read


@pytest.mark.parametrize("wire, message", [
    (struct.pack("<H", 999), r"unknown message ID 999 \(expected one of 1, 2, 3, 4, 5, 1008, "
                             r"1022, 1026\)"),
    (b"\x03", "the stream ended in the middle of a message ID"),
    (struct.pack("<HI", 5, 100) + b"x" * 10, r"ended in the middle of a TEXT message \(10 of "
                                              r"100 bytes\)"),
    (b"\xf0\x03" + _acquisition_header(8, 2, 0) + b"\x00" * 20,
     r"ended in the middle of acquisition 5 \(20 of 128 bytes\)"),
    (b"\x01\x00" + b"abc", r"CONFIG_FILE message \(3 of 1024 bytes\)"),
])
def test_malformed_and_truncated_messages(wire, message):
    with pytest.raises(ProtocolError, match=message):
        _read(wire)


def test_meta_attributes_refuse_entity_declarations():
    bomb = ('<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><ismrmrdMeta>&b;</ismrmrdMeta>')
    with pytest.raises(ProtocolError, match="declare a document type or entities"):
        parse_meta(bomb)
    with pytest.raises(ProtocolError, match=r"not ISMRMRD meta XML \(ParseError\)"):
        parse_meta("<ismrmrdMeta><meta>")
