"""Malformed, truncated and hostile streams close only their own connection, with a TEXT
``ERR`` reason to the client and one log line, and the server goes on serving.  Everything
runs over the loopback interface with socket timeouts; every loop is bounded."""
import ast
import socket
import struct
from pathlib import Path

import numpy as np
import pytest

from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.errors import UserError
from mri_unfold.serving import StreamLimits, load_scan, stream_scan
from mri_unfold.serving.protocol import (bytes_reader, encode_acquisition, encode_close,
                                         encode_config_file, encode_header, encode_image,
                                         header_dtypes, read_message)

from raw_fixtures import (cartesian_acqs, ismrmrd_xml, phantom_kspace, twix_path,
                          write_ismrmrd_acqs)
from serving_fixtures import (LOOPBACK, SLICES, connect, read_all, running_server,
                              scanner_file, server_log, text_message, wait_for)

ROOT = Path(__file__).resolve().parents[1]
LIMITS = StreamLimits(idle_timeout_s=1.0, max_buffered_bytes=40_000)


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    return load_scan(scanner_file(tmp_path_factory.mktemp("scan") / "scanner.h5"))


@pytest.fixture(scope="module")
def server():
    with running_server(limits=LIMITS) as s:
        yield s


def _acq(scan, i, **changes) -> bytes:
    head = scan.acquisitions.head[i].copy()
    for name, value in changes.items():
        if name in head["idx"].dtype.names:
            head["idx"][name] = value
        else:
            head[name] = value
    return encode_acquisition(head, scan.acquisitions.data[i])


def _start(scan) -> bytes:
    return encode_config_file("mri-unfold") + encode_header(scan.xml)


def _first_slice(scan) -> bytes:
    """The noise scan and the first slice's acquisitions (its last flagged LAST_IN_SLICE)."""
    return b"".join(_acq(scan, i) for i in range(27))


def _exchange(server, payload: bytes, *, half_close: bool = True) -> list:
    """Send ``payload`` (then end the sending side), read what the server sends until it
    closes, and parse it."""
    sock = connect(server, timeout=10)
    try:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        reply = read_all(sock)
    finally:
        sock.close()
    read, out = bytes_reader(reply), []
    for _ in range(100):
        msg = read_message(read, StreamLimits())
        if msg is None:
            break
        out.append(msg)
    return out


def _closed(lines: list) -> list:
    return [line for line in lines if " closed: " in line]


CASES = {
    "unknown message id": (lambda s: struct.pack("<H", 4242),
                           "unknown message ID 4242"),
    "lying header length": (lambda s: encode_config_file("x") + struct.pack("<HI", 3, 1 << 31),
                            "the XML header of 2147483648 bytes exceeds the limit"),
    "header XML bomb": (lambda s: encode_config_file("x") + text_message(
        3, b'<?xml version="1.0"?><!DOCTYPE b [<!ENTITY a "aaaaaaaaaaaaaaaa"><!ENTITY b '
           b'"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><ismrmrdHeader>&b;</ismrmrdHeader>'),
        "the stream's XML header: the ISMRMRD XML header declares a document type or entities"),
    "invalid XML header": (lambda s: text_message(3, b"<ismrmrdHeader><encoding>"),
                           "the ISMRMRD XML header is not valid"),
    "acquisition before the header": (lambda s: _acq(s, 1), "an acquisition before the XML "
                                                            "header"),
    "slice beyond the encoding limits": (
        lambda s: _start(s) + _acq(s, 2, slice=7),
        "acquisition 0 has slice counter 7, outside the header's encoding limits [0, 2]"),
    "line beyond the encoded matrix": (
        lambda s: _start(s) + _acq(s, 1) + _acq(s, 2, kspace_encode_step_1=900),
        "acquisition 1 has line counter 900, outside the header's encoding limits [0, 39]"),
    "readout beyond the encoded readout": (
        lambda s: _start(s) + _acq(s, 2, center_sample=2),
        "acquisition 0 has 90 samples centred at 2, which do not fit the encoded readout of "
        "96 samples"),
    "channel count changes": (
        lambda s: _start(s) + _acq(s, 2) + encode_acquisition(
            s.acquisitions.head[3], np.ones((3, 90), np.complex64)),
        "acquisition 1 has 3 channels, the earlier image acquisitions 2"),
    "a second header": (lambda s: _start(s) + encode_header(s.xml), "a second XML header"),
    "an image sent to the server": (
        lambda s: _start(s) + encode_image(_image_head(), "", np.zeros((1, 1, 2, 2), np.float32)),
        "IMAGE messages are not accepted by this server"),
    "acquisition of a completed slice": (
        lambda s: _start(s) + _first_slice(s) + _acq(s, 5),
        "acquisition 27 belongs to repetition 0, contrast 0, slice 0, which was already "
        "complete"),
    "disconnect mid-slice": (
        lambda s: _start(s) + b"".join(_acq(s, i) for i in range(10)),
        "the client disconnected without a close message (1 incomplete slices dropped)"),
    "disconnect mid-message": (
        lambda s: _start(s) + _acq(s, 1) + _acq(s, 2)[:200],
        "the stream ended in the middle of the header of an acquisition (198 of 340 bytes)"),
    "truncated acquisition samples": (
        lambda s: _start(s) + _acq(s, 2)[:-100],
        "the stream ended in the middle of acquisition 2 (1340 of 1440 bytes)"),
}


def _image_head():
    return np.zeros((), header_dtypes()["image"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_stream_closes_only_its_connection(server, scan, case):
    build, reason = CASES[case]
    before = server.served
    with server_log() as lines:
        reply = _exchange(server, build(scan))
        wait_for(lambda: server.served > before and _closed(lines))
    texts = [m.text for m in reply if m.text]
    assert len(texts) == 1 and texts[0].startswith("ERR mri-unfold: ")
    assert reason in texts[0], texts[0]
    assert reply[-1].id == 4                     # CLOSE
    closed = _closed(lines)
    assert len(closed) == 1 and reason in closed[0] and "\n" not in closed[0]
    res = stream_scan(scan, LOOPBACK, server.port, timeout_s=30)      # still serving
    assert len(res.images) == SLICES
    wait_for(lambda: server.served >= before + 2)


def test_idle_connection_times_out(server, scan):
    before = server.served
    with server_log() as lines:
        reply = _exchange(server, _start(scan), half_close=False)
        wait_for(lambda: server.served > before and _closed(lines))
    assert "ERR mri-unfold: no data for 1 s while waiting for a message ID (idle timeout)" in \
        reply[0].text
    assert "closed: no data for 1 s" in _closed(lines)[0]


def test_buffered_kspace_is_bounded(server, tmp_path):
    """A scan without ACQ_LAST_IN_SLICE flags holds every slice until CLOSE; beyond the
    buffer limit (40 kB here) the connection is closed instead of growing."""
    k = phantom_kspace(2, 32, 32)
    xml = ismrmrd_xml((32, 32, 1), (32, 32, 1), (100.0, 100.0, 5.0), (100.0, 100.0, 5.0),
                      {"kspace_encoding_step_1": (0, 31, 16), "slice": (0, 9, 0)}, coils=2)
    acqs = sum((cartesian_acqs(k, s) for s in range(10)), [])
    big = load_scan(write_ismrmrd_acqs(tmp_path / "noflags.h5", xml, acqs))
    reply = _exchange(server, encode_config_file("x") + encode_header(big.xml) + b"".join(
        encode_acquisition(big.acquisitions.head[i], big.acquisitions.data[i])
        for i in range(len(big.acquisitions))) + encode_close())
    assert "the stream holds more than 40000 bytes of k-space not yet reconstructed (3 " \
           "incomplete slices; no ACQ_LAST_IN_SLICE flags?)" in reply[0].text


def test_fully_sampled_data_for_a_network_is_refused_per_connection(scan):
    """Data the reconstruction refuses (here: a network and fully sampled k-space without a
    mask) closes that connection with the pipeline's own message."""
    net = load_checkpoint("ista_net_plus_raw_sim").model
    with running_server(net, "ista_net_plus_raw_sim") as srv:
        with pytest.raises(UserError, match="k-space is fully sampled; give a mask"):
            stream_scan(load_scan(twix_path()), LOOPBACK, srv.port, timeout_s=30)
        assert len(stream_scan(scan, LOOPBACK, srv.port, timeout_s=30).images) == SLICES


def test_serving_code_never_unpickles_imports_or_executes_input():
    banned_modules = {"pickle", "marshal", "shelve", "importlib", "subprocess", "dill",
                      "joblib", "runpy"}
    banned_builtins = {"eval", "exec", "compile", "__import__", "open", "breakpoint"}
    banned_methods = {"load", "loads", "system", "popen"}    # torch/np.load, os.system ...
    found = []
    for path in sorted((ROOT / "mri_unfold" / "serving").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                found += [f"{path.name}: import {n}" for n in names
                          if n.split(".")[0] in banned_modules]
            elif isinstance(node, ast.Call):
                f = node.func
                bad = (isinstance(f, ast.Name) and f.id in banned_builtins) or \
                    (isinstance(f, ast.Attribute) and f.attr in banned_methods)
                found += [f"{path.name}:{node.lineno} {ast.unparse(f)}()"] if bad else []
    assert found == []


def test_a_client_still_sending_gets_the_reason(tmp_path):
    """The server reads and drops what a client still sends after an error (bounded), so the
    error text reaches a client that is in the middle of several megabytes."""
    k = phantom_kspace(2, 256, 8)
    xml = ismrmrd_xml((256, 8, 1), (256, 8, 1), (200.0, 200.0, 5.0), (200.0, 200.0, 5.0),
                      {"kspace_encoding_step_1": (0, 7, 4), "slice": (0, 0, 0)}, coils=2)
    acqs = cartesian_acqs(k, 0) + cartesian_acqs(k, 1) * 400        # 8 MB after the error
    bad = load_scan(write_ismrmrd_acqs(tmp_path / "bad.h5", xml, acqs))
    with server_log() as lines, running_server() as srv:
        with pytest.raises(UserError, match="refused the stream: mri-unfold: the stream: "
                                            "acquisition 8 has slice counter 1, outside the "
                                            r"header's encoding limits \[0, 0\]"):
            stream_scan(bad, LOOPBACK, srv.port, timeout_s=30)
        wait_for(lambda: len(lines) >= 1)   # the server logs the close after the client saw it
    assert len(lines) == 1 and "closed: the stream: acquisition 8 has slice counter 1" in lines[0]
