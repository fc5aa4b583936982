"""A Siemens twix file as ISMRMRD: the XML header and acquisition records that the ``ismrmrd``
reader (and the streaming server, :mod:`mri_unfold.serving`) turn into exactly the slices the
``twix`` reader gives.

What goes in (what the twix reader uses, :class:`~mri_unfold.data.sources.twix.TwixScan`):

* header: encoded matrix ``(readout samples, lines, partitions)`` with the readout field of
  view scaled by the oversampling factor, recon matrix ``(readout after oversampling
  removal, lines, partitions)`` with the twix field of view (``MeasYaps.sSliceArray``),
  encoding limits of lines, partitions and slices with the centre line / partition of the
  first image readout, the receiver channels, vendor, protocol name and Larmor frequency;
* acquisitions: first the ``NOISEADJSCAN`` readouts of every measurement
  (``ACQ_IS_NOISE_MEASUREMENT``), then the image scan of the last measurement in acquisition
  order, with the mdh counters (``Lin``, ``Par``, ``Sli``, ``Eco``, ``Phs``, ``Rep``, ``Set``,
  ``Seg``, ``Ave``), ``CenterCol`` as the centre sample, ``REFLECT`` as ``ACQ_IS_REVERSE``,
  the slice position and orientation (LPS, float32) and ``ACQ_FIRST/LAST_IN_SLICE`` on the
  first / last readout of each (repetition, contrast, slice) — what a streaming server needs
  to reconstruct a slice as soon as it is complete.

Readouts that are neither noise nor image scan (phase correction, reference-only lines,
navigators, feedback) are left out, as the twix reader leaves them out.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .ismrmrd_acquisitions import FLAGS, Acquisitions
from .sources.twix import TwixScan, read_twix_scan, readout_geometry

__all__ = ["twix_to_ismrmrd", "scan_to_ismrmrd", "header_xml"]

#: mdh counter -> ISMRMRD ``idx`` field.
_COUNTERS = {"Lin": "kspace_encode_step_1", "Par": "kspace_encode_step_2", "Sli": "slice",
             "Eco": "contrast", "Phs": "phase", "Rep": "repetition", "Set": "set",
             "Seg": "segment", "Ave": "average"}


def _bit(name: str) -> np.uint64:
    return np.uint64(1) << np.uint64(FLAGS[name] - 1)


def header_xml(scan: TwixScan, coils: int) -> str:
    """The ISMRMRD XML header of a twix scan (module doc)."""
    from ismrmrd import xsd

    enc = scan.encoding
    fov = scan.fov_mm
    hdr = scan.measurement["hdr"]
    if fov is None:  # no field of view in the header: oversampling from the matrices alone
        enc_fov, rec_fov = (float(enc.readout_full), 0.0, 0.0), (float(enc.readout_keep), 0.0,
                                                                 0.0)
    else:
        slab = fov[2] * enc.partitions
        enc_fov = (fov[0] * enc.readout_full / enc.readout_keep, fov[1], slab)
        rec_fov = (fov[0], fov[1], slab)

    def space(matrix, f):
        return xsd.encodingSpaceType(
            matrixSize=xsd.matrixSizeType(x=matrix[0], y=matrix[1], z=matrix[2]),
            fieldOfView_mm=xsd.fieldOfViewMm(x=f[0], y=f[1], z=f[2]))

    def limit(name: str, centre: int):
        lo, hi = enc.limits[name]
        return xsd.limitType(minimum=lo, maximum=hi, center=centre)

    encoding = xsd.encodingType(
        encodedSpace=space((enc.readout_full, enc.lines, enc.partitions), enc_fov),
        reconSpace=space((enc.readout_keep, enc.lines, enc.partitions), rec_fov),
        encodingLimits=xsd.encodingLimitsType(
            kspace_encoding_step_1=limit("line", enc.center_line),
            kspace_encoding_step_2=limit("partition", enc.center_partition),
            slice=limit("slice", 0)),
        trajectory=xsd.trajectoryType.CARTESIAN)
    dicom = hdr.get("Dicom", {})
    larmor = int(dicom.get("lFrequency") or 0)
    field = dicom.get("flMagneticFieldStrength")
    position = str(dicom.get("tPatientPosition") or "")
    positions = {p.value: p for p in xsd.patientPositionType}
    measurement = None
    if position in positions:  # the schema requires the patient position
        measurement = xsd.measurementInformationType(
            protocolName=scan.info.get("protocol") or None, patientPosition=positions[position])
    header = xsd.ismrmrdHeader(
        encoding=[encoding],
        experimentalConditions=xsd.experimentalConditionsType(H1resonanceFrequency_Hz=larmor),
        acquisitionSystemInformation=xsd.acquisitionSystemInformationType(
            systemVendor="SIEMENS", systemModel=dicom.get("ManufacturersModelName") or None,
            systemFieldStrength_T=float(field) if field else None, receiverChannels=coils),
        measurementInformation=measurement)
    return xsd.ToXML(header)


def _records(scan: TwixScan) -> Acquisitions:
    from ismrmrd.hdf5 import acquisition_header_dtype

    mdbs = scan.noise + scan.image
    head = np.zeros(len(mdbs), acquisition_header_dtype)
    data = [np.asarray(m.data) for m in mdbs]
    last: dict[tuple, int] = {}
    for i, m in enumerate(mdbs):
        h, mdh = head[i], m.mdh
        c, n = data[i].shape
        h["version"], h["measurement_uid"] = 1, mdh.MeasUID
        h["scan_counter"], h["acquisition_time_stamp"] = mdh.ScanCounter, mdh.TimeStamp
        h["physiology_time_stamp"][0] = mdh.PMUTimeStamp
        h["number_of_samples"], h["available_channels"], h["active_channels"] = n, c, c
        h["center_sample"] = mdh.CenterCol
        for src, dst in _COUNTERS.items():
            h["idx"][dst] = getattr(mdh.Counter, src)
        if i < len(scan.noise):
            h["flags"] |= _bit("noise")
            continue
        if m.is_flag_set("REFLECT"):
            h["flags"] |= _bit("reverse")
        g = readout_geometry(scan, m)  # the slab centre: readers add the partition offset
        if g is not None:
            h["read_dir"], h["phase_dir"], h["slice_dir"] = g.read_dir, g.phase_dir, g.slice_dir
            h["position"] = g.position
        key = (mdh.Counter.Rep, mdh.Counter.Eco, mdh.Counter.Sli)
        if key not in last:
            h["flags"] |= _bit("first_in_slice")
        last[key] = i
    for i in last.values():
        head[i]["flags"] |= _bit("last_in_slice")
    if scan.image:
        head[-1]["flags"] |= _bit("last_in_measurement")
    return Acquisitions(head, data, [np.zeros(0, np.float32)] * len(mdbs))


def scan_to_ismrmrd(scan: TwixScan) -> tuple[str, Acquisitions]:
    """``(XML header, acquisitions)`` of a read twix scan (module doc)."""
    acqs = _records(scan)
    return header_xml(scan, int(acqs.data[-1].shape[0])), acqs


def twix_to_ismrmrd(path: str | Path) -> tuple[str, Acquisitions]:
    """``(XML header, acquisitions)`` of a twix file (module doc).

    Raises:
        DataFileError naming the file: as :func:`~mri_unfold.data.sources.twix.read_twix`.
    """
    return scan_to_ismrmrd(read_twix_scan(path))
