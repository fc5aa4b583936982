"""ISMRMRD radial k-space (trajectory stored in cycles per FOV, no DCF) through
``mri-unfold recon``: read by the ismrmrd source, prepared (radians, Pipe–Menon DCF,
normalisation) and reconstructed by gridding, against the image it was simulated from."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mri_unfold.cli import main
from mri_unfold.metrics import psnr
from mri_unfold.operators import NonCartesianFourier
from mri_unfold.reconstruct import reconstruct_kspace_file
from mri_unfold.trajectories import radial_trajectory

N, SPOKES, READOUT = 32, 60, 64


def _image():
    yy, xx = np.mgrid[:N, :N] / N
    return np.exp(-((yy - 0.5) ** 2 + (xx - 0.45) ** 2) / 0.04).astype(np.float32)


def _write_radial(path, coils=1):
    ismrmrd = pytest.importorskip("ismrmrd")
    from ismrmrd import xsd

    space = xsd.encodingSpaceType(matrixSize=xsd.matrixSizeType(x=N, y=N, z=1),
                                  fieldOfView_mm=xsd.fieldOfViewMm(x=200, y=200, z=5))
    limit = xsd.limitType(minimum=0, maximum=SPOKES - 1, center=0)
    zero = xsd.limitType(minimum=0, maximum=0, center=0)
    enc = xsd.encodingType(encodedSpace=space, reconSpace=space,
                           encodingLimits=xsd.encodingLimitsType(
                               kspace_encoding_step_1=limit, slice=zero),
                           trajectory=xsd.trajectoryType.RADIAL)
    hdr = xsd.ismrmrdHeader(encoding=[enc], experimentalConditions=xsd.experimentalConditionsType(
        H1resonanceFrequency_Hz=0), acquisitionSystemInformation=xsd.
        acquisitionSystemInformationType(receiverChannels=coils))
    traj = radial_trajectory(N, num_spokes=SPOKES, readout=READOUT, ordering="uniform")
    k = NonCartesianFourier(traj, (N, N))(
        __import__("torch").from_numpy(_image()).to(__import__("torch").complex64)[None, None])
    k = k[0].numpy().reshape(1, SPOKES, READOUT)
    k = np.repeat(k, coils, 0)
    cyc = (traj * N / (2 * math.pi)).reshape(SPOKES, READOUT, 2).astype(np.float32)
    ds = ismrmrd.Dataset(str(path), "dataset", create_if_needed=True)
    ds.write_xml_header(xsd.ToXML(hdr))
    for s in range(SPOKES):
        acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(k[:, s]), cyc[s])
        acq.idx.kspace_encode_step_1 = s
        ds.append_acquisition(acq)
    ds.close()
    return path


def test_ismrmrd_radial_is_gridded(tmp_path):
    path = _write_radial(tmp_path / "radial.h5")
    res = reconstruct_kspace_file(path, "ismrmrd", method="zero-filled", progress=False)
    rec = res.reconstruction[0]
    assert rec.shape == (N, N) and res.info["format"] == "ismrmrd"
    img = _image()
    scale = float((rec * img).sum() / (rec * rec).sum())     # intensity is normalised
    assert psnr(img, rec * scale, data_range=1.0) > 28


def test_recon_cli_on_ismrmrd_radial_and_its_errors(tmp_path, capsys):
    path = _write_radial(tmp_path / "radial.h5")
    out = tmp_path / "radial_recon.npy"
    assert main(["recon", str(path), "--method", "zero-filled", "--output", str(out),
                 "--no-progress"]) == 0
    assert np.load(out).shape[-2:] == (N, N)
    capsys.readouterr()
    multi = _write_radial(tmp_path / "radial4.h5", coils=4)
    code = main(["recon", str(multi), "--method", "sense", "--output",
                 str(tmp_path / "o.npy"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "coil maps are not estimated for non-Cartesian" \
        in err[0], err
