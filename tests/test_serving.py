"""The streaming server and client over the loopback interface: images bit-identical to
``mri-unfold recon`` on the same file with the same options (the shared twix scan, a
scanner-like ISMRMRD file), slices reconstructed while the scan is still streaming,
concurrent connections kept apart, the connection limit, uint16 images, and the ``serve`` /
``stream`` commands."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.cli import main
from mri_unfold.data.ismrmrd_writer import write_acquisitions
from mri_unfold.data.sources import get_source
from mri_unfold.data.twix_to_ismrmrd import twix_to_ismrmrd
from mri_unfold.errors import UserError
from mri_unfold.reconstruct import MaskSpec, reconstruct_kspace_file
from mri_unfold.serving import ReconSettings, load_scan, stream_scan
from mri_unfold.serving.protocol import encode_close, encode_config_file, encode_header

from raw_fixtures import multi_raid_twix, twix_path
from serving_fixtures import (LOOPBACK, SLICES, connect, read_all, running_server,
                              scanner_file, server_log, wait_for)

ROOT = Path(__file__).resolve().parents[1]
MODEL = "ista_net_plus_raw_sim"


@pytest.fixture(scope="module")
def network():
    return load_checkpoint(MODEL).model


@pytest.fixture(scope="module")
def scanner(tmp_path_factory):
    return scanner_file(tmp_path_factory.mktemp("scan") / "scanner.h5")


@pytest.fixture(scope="module")
def twix_mask(tmp_path_factory):
    """A 4x equispaced mask with 24 centre lines for the 160 x 160 twix slice."""
    m = np.zeros((160, 160), np.float32)
    m[:, ::4] = 1
    m[:, 68:92] = 1
    path = tmp_path_factory.mktemp("mask") / "mask4x.npy"
    np.save(path, m)
    return path


def _stream_and_recon(tmp_path, port, src, recon_args, out="x.npy"):
    """``stream SRC --output`` and ``recon SRC --output`` (same name in two folders)."""
    (tmp_path / "stream").mkdir(exist_ok=True)
    (tmp_path / "recon").mkdir(exist_ok=True)
    a, b = tmp_path / "stream" / out, tmp_path / "recon" / out
    assert main(["stream", str(src), "--to", f"{LOOPBACK}:{port}", "--output", str(a)]) == 0
    assert main(["recon", str(src), "--output", str(b), "--no-progress", *recon_args]) == 0
    return a, b


def test_twix_stream_equals_recon(tmp_path, capsys):
    with running_server(method="sense", label="sense") as server:
        a, b = _stream_and_recon(tmp_path, server.port, twix_path(), ["--method", "sense"])
        assert np.array_equal(np.load(a), np.load(b)) and np.load(a).shape == (1, 160, 160)
        a, b = _stream_and_recon(tmp_path, server.port, twix_path(), ["--method", "sense"],
                                 "x.nii.gz")
    sa, sb = nib.load(a), nib.load(b)
    assert np.array_equal(sa.get_fdata(), sb.get_fdata())
    np.testing.assert_allclose(sa.affine, sb.affine, atol=1e-5)
    assert "".join(nib.aff2axcodes(sa.affine)) == "LAS"
    out = capsys.readouterr().out
    assert "1 images (1 slices of 160x160) for 160 acquisitions of" in out and "(twix)" in out


def test_twix_network_stream_equals_recon_at_batch_size_one(tmp_path, network, twix_mask):
    settings = ReconSettings(mask=MaskSpec(file=str(twix_mask)))
    with running_server(network, MODEL, settings=settings) as server:
        a, b = _stream_and_recon(tmp_path, server.port, twix_path(),
                                 ["--model", MODEL, "--mask-file", str(twix_mask),
                                  "--batch-size", "1"])
    got, want = np.load(a), np.load(b)
    assert np.array_equal(got, want) and float(got.max()) > 0


def test_scanner_file_streams_like_recon(tmp_path, network, scanner):
    """Noise scans (prewhitening), a skipped calibration line, partial Fourier, an asymmetric
    echo, 2x oversampling, 3 slices: the network (one slice per pass) and SENSE (any batch)."""
    with running_server(network, MODEL) as server:
        a, b = _stream_and_recon(tmp_path, server.port, scanner,
                                 ["--model", MODEL, "--batch-size", "1"])
        assert np.array_equal(np.load(a), np.load(b)) and np.load(a).shape == (SLICES, 48, 40)
    with running_server(method="sense", label="sense") as server:
        a, b = _stream_and_recon(tmp_path, server.port, scanner, ["--method", "sense"],
                                 "s.nii.gz")
    sa, sb = nib.load(a), nib.load(b)
    assert np.array_equal(sa.get_fdata(), sb.get_fdata())
    np.testing.assert_allclose(sa.affine, sb.affine, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(sa.affine[:3, :3], axis=0), [200 / 48, 5, 5],
                               rtol=1e-6)


def test_slices_are_sent_while_the_scan_is_streaming(scanner):
    scan = load_scan(scanner)
    with running_server() as server:                 # zero-filled: milliseconds per slice
        res = stream_scan(scan, LOOPBACK, server.port, interval_s=0.004, timeout_s=30)
    first = min(res.images, key=lambda im: im.received_s)
    assert int(first.head["slice"]) == 0
    assert first.received_s < res.sent_s[(0, 0, SLICES - 1)]   # before the last slice ended
    assert sorted(res.latencies_s) == [(0, 0, s) for s in range(SLICES)]
    assert all(0 < t < 5 for t in res.latencies_s.values())
    recon = res.result(scan).reconstruction
    offline = reconstruct_kspace_file(scanner, "ismrmrd", method="zero-filled", progress=False)
    assert np.array_equal(recon, offline.reconstruction)


def test_twix_converted_to_ismrmrd_reads_like_twix(tmp_path):
    noisy = multi_raid_twix(twix_path(), tmp_path / "mr.dat", tmp_path)
    for src in (twix_path(), noisy):
        xml, acqs = twix_to_ismrmrd(src)
        out = write_acquisitions(xml, acqs, tmp_path / "conv.h5")
        a, b = get_source("twix").read(src)[0], get_source("ismrmrd").read(out)[0]
        assert torch.equal(a.kspace, b.kspace) and torch.equal(a.mask, b.mask)
        assert a.metadata.fov_mm == b.metadata.fov_mm == (200.0, 200.0, 4.0)
        assert a.metadata.crop_size == b.metadata.crop_size == (160, 160)
        np.testing.assert_allclose(a.metadata.extras["affine"], b.metadata.extras["affine"],
                                   atol=1e-4)
    assert b.metadata.extras["prewhitened"] is True
    np.testing.assert_array_equal(a.metadata.extras["noise_covariance"],
                                  b.metadata.extras["noise_covariance"])
    flags = acqs.head["flags"]
    assert int((flags & np.uint64(1 << 18) > 0).sum()) == 160                 # noise scans
    assert int((flags & np.uint64(1 << 7) > 0).sum()) == 1                    # LAST_IN_SLICE
    assert b"<protocolName>gre</protocolName>" in xml.encode()


def test_concurrent_connections_are_kept_apart(tmp_path, scanner):
    other = scanner_file(tmp_path / "other.h5", seed=5)
    results, errors = {}, []

    def run(path, port):
        try:
            results[path] = stream_scan(load_scan(path), LOOPBACK, port, interval_s=0.001,
                                        timeout_s=60).result(load_scan(path)).reconstruction
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    with server_log() as lines, running_server(method="sense", label="sense") as server:
        threads = [threading.Thread(target=run, args=(p, server.port)) for p in (scanner, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        wait_for(lambda: server.served >= 2)
    assert not errors and len(results) == 2
    for path in (scanner, other):
        want = reconstruct_kspace_file(path, "ismrmrd", method="sense", progress=False)
        assert np.array_equal(results[path], want.reconstruction)
    assert not np.array_equal(results[scanner], results[other])
    done = [line for line in lines if " ok after " in line]
    assert len(done) == 2 and all("3 slices -> 3 images" in line for line in done)


def test_connections_beyond_the_limit_are_told_busy(scanner):
    scan = load_scan(scanner)
    with server_log() as lines, running_server(max_connections=1) as server:
        first = connect(server)
        first.sendall(encode_config_file("mri-unfold"))
        deadline = time.monotonic() + 10
        while server.active < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(UserError, match=r"refused the stream: mri-unfold: server busy: 1 "
                                            r"connections are being served"):
            stream_scan(scan, LOOPBACK, server.port, timeout_s=10)
        first.sendall(encode_header(scan.xml) + encode_close())
        reply = read_all(first)
        first.close()
        assert reply.endswith(b"\x04\x00")                    # CLOSE after zero slices
        res = stream_scan(scan, LOOPBACK, server.port, timeout_s=30)   # served again
        wait_for(lambda: any("closed: server busy" in line for line in lines))
    assert len(res.images) == SLICES
    assert any("closed: server busy" in line for line in lines)


def test_uint16_images_carry_their_rescale_slope(scanner):
    scan = load_scan(scanner)
    settings = ReconSettings(image_type="uint16", send_zero_filled=True)
    with running_server(settings=settings) as server:
        res = stream_scan(scan, LOOPBACK, server.port, timeout_s=30)
    result = res.result(scan, zero_filled=True)
    want = reconstruct_kspace_file(scanner, "ismrmrd", method="zero-filled", progress=False)
    im = res.images[0]
    slope = float(im.meta["RescaleSlope"])
    assert im.head["data_type"] == 1 and int(im.meta["WindowWidth"]) == 4095
    assert slope == pytest.approx(float(want.reconstruction[0].max()) / 4095, rel=1e-6)
    assert np.abs(result.reconstruction - want.reconstruction).max() <= 0.5 * slope * 1.0001
    assert np.abs(result.zero_filled - want.zero_filled).max() <= 0.5 * slope * 1.0001
    assert im.meta["SeriesDescription"] == ["mri-unfold", "zero-filled"]
    assert {int(i.head["image_series_index"]) for i in res.images} == {1, 2}


def test_serve_command_serves_until_interrupted(tmp_path, scanner):
    """The real command in its own process: one log line per connection, no file written."""
    cwd = tmp_path / "server_cwd"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mri_unfold", "serve", "--method", "zero-filled", "--port", "0",
         "--warm-up", "32x32"], cwd=cwd, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("mri-unfold serve: zero-filled on cpu listening on 127.0.0.1:")
        port = int(line.split("127.0.0.1:")[1].split()[0])
        out = tmp_path / "z.npy"
        for _ in range(2):
            assert main(["stream", str(scanner), "--to", f"127.0.0.1:{port}", "--output",
                         str(out), "--overwrite"]) == 0
        proc.send_signal(signal.SIGTERM)                    # docker stop / systemd
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    logged = [line for line in err.splitlines() if " ok after " in line]
    assert len(logged) == 2 and "config mri-unfold, 76 acquisitions (1 noise, 3 skipped)" \
        in logged[0]
    assert "warmed up on a 32x32 slice" in err
    want = reconstruct_kspace_file(scanner, "ismrmrd", method="zero-filled", progress=False)
    assert np.array_equal(np.load(out), want.reconstruction)
    assert list(cwd.iterdir()) == []


def test_stream_command_errors(tmp_path, scanner, capsys):
    def fails(args, message):
        assert main(args) == 2
        assert message in capsys.readouterr().err

    fails(["stream", str(scanner), "--to", "nowhere"], "--to nowhere: expected HOST:PORT")
    existing = tmp_path / "out.npy"
    existing.write_bytes(b"keep")
    fails(["stream", str(scanner), "--to", "127.0.0.1:9", "--output", str(existing)],
          "exists; pass --overwrite")
    assert existing.read_bytes() == b"keep"
    fails(["stream", str(scanner), "--to", "127.0.0.1:9", "--output", str(tmp_path / "a.txt")],
          "unsupported output")
    np.save(tmp_path / "k.npy", np.zeros((4, 4), np.complex64))
    fails(["stream", str(tmp_path / "k.npy"), "--to", "127.0.0.1:9"],
          "stream sends raw scanner data (ISMRMRD .h5 or Siemens twix .dat), this is array")
    fails(["stream", str(scanner), "--to", "127.0.0.1:9"], "127.0.0.1:9: cannot connect")
    fails(["stream", str(scanner), "--to", "127.0.0.1:9", "--save-zero-filled"],
          "--save-zero-filled needs --output")
    assert not (tmp_path / "a.txt").exists()


def test_serve_command_checks_before_listening(monkeypatch, capsys):
    bound = []

    class NoBind:  # the command must warn and validate without a real socket here
        def __init__(self, address, *a, **k):
            bound.append(address)
            self.port = address[1]

        def serve_forever(self, poll_interval=0.2):
            return None

        def server_close(self):
            return None

    import mri_unfold.cli.serve as serve_cmd
    monkeypatch.setattr(serve_cmd, "MRDServer", NoBind)
    assert main(["serve", "--method", "zero-filled", "--host", "0.0.0.0", "--warm-up",
                 "none"]) == 0
    err = capsys.readouterr().err
    assert "warning: --host 0.0.0.0: the server accepts connections from other machines" in err
    assert bound == [("0.0.0.0", 9002)]
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be in 0..65535, got 70000" in capsys.readouterr().err
    assert main(["serve", "--model", "ista_net_plus_radial20", "--warm-up", "none"]) == 2
    assert "works on real-valued images; k-space streams need a complex-domain network" in \
        capsys.readouterr().err
    assert main(["serve", "--warm-up", "8x8"]) == 2
    assert "--warm-up 8x8: expected HxW (each >= 16" in capsys.readouterr().err
    assert bound == [("0.0.0.0", 9002)]


def test_radial_stream_equals_recon(tmp_path):
    """Non-Cartesian scans: one group per slice, the stored trajectory, recon's gridding."""
    from test_noncartesian_ismrmrd import _write_radial

    path = _write_radial(tmp_path / "radial.h5")
    scan = load_scan(path)
    with running_server() as server:
        res = stream_scan(scan, LOOPBACK, server.port, timeout_s=30)
    want = reconstruct_kspace_file(path, "ismrmrd", method="zero-filled", progress=False)
    got = res.result(scan).reconstruction
    assert got.shape == (1, 32, 32) and np.array_equal(got, want.reconstruction)
    assert list(res.latencies_s) == [(0, 0, 0)]


def test_stream_writes_the_dicom_series_recon_writes(tmp_path):
    """``--format dicom``: the series of ``recon --format dicom`` for the same file and
    method — the same pixels, rescale, geometry and the scan's attributes."""
    import pydicom

    with running_server(method="sense", label="sense") as server:
        assert main(["stream", str(twix_path()), "--to", f"{LOOPBACK}:{server.port}",
                     "--format", "dicom", "--output", str(tmp_path / "streamed")]) == 0
    assert main(["recon", str(twix_path()), "--method", "sense", "--format", "dicom",
                 "--output", str(tmp_path / "offline"), "--no-progress"]) == 0
    a, b = (pydicom.dcmread(next((tmp_path / d).iterdir())) for d in ("streamed", "offline"))
    assert np.array_equal(a.pixel_array, b.pixel_array) and a.pixel_array.max() > 0
    for key in ("RescaleSlope", "Rows", "Columns", "PixelSpacing", "ImageOrientationPatient",
                "PatientName", "PatientID", "MagneticFieldStrength", "ManufacturerModelName"):
        assert a.get(key) == b.get(key), key
    np.testing.assert_allclose(np.float64(a.ImagePositionPatient),
                               np.float64(b.ImagePositionPatient), atol=1e-3)
    assert "streamed to 127.0.0.1" in a.SeriesDescription + str(a.get("ImageComments", ""))
