"""What a scan's header says about the patient, the study, the equipment and the sequence, as
DICOM attributes (keyword -> value), for writing results as DICOM.

* :func:`dicom_attributes` — copied from a DICOM input's header;
* :func:`ismrmrd_attributes` — from an ISMRMRD header's ``subjectInformation``,
  ``studyInformation``, ``measurementInformation``, ``acquisitionSystemInformation``,
  ``experimentalConditions`` and ``sequenceParameters``;
* :func:`twix_attributes` — from a Siemens twix header's ``Config``, ``Dicom`` and
  ``MeasYaps`` buffers (the names ``siemens_to_ismrmrd`` maps to the same ISMRMRD fields).

Values are strings or numbers in DICOM's formats (dates ``YYYYMMDD``, times ``HHMMSS``, ms,
MHz, T); absent or empty header fields are left out.  ``StudyInstanceUID`` and
``SeriesInstanceUID`` are never returned: a written series gets new ones.
"""
from __future__ import annotations

__all__ = ["dicom_attributes", "ismrmrd_attributes", "twix_attributes", "PATIENT", "STUDY",
           "EQUIPMENT", "ACQUISITION", "IDENTIFYING"]

#: Patient module attributes.
PATIENT = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
           "PatientAge", "PatientSize", "PatientWeight")
#: General Study attributes (the StudyInstanceUID is always new).
STUDY = ("StudyDate", "StudyTime", "StudyID", "StudyDescription", "ReferringPhysicianName",
         "AccessionNumber")
#: Frame of reference, series and equipment attributes.
EQUIPMENT = ("FrameOfReferenceUID", "PositionReferenceIndicator", "PatientPosition",
             "BodyPartExamined", "ProtocolName", "SeriesDate", "SeriesTime", "Manufacturer",
             "ManufacturerModelName", "InstitutionName", "InstitutionAddress", "StationName",
             "DeviceSerialNumber")
#: MR acquisition attributes a derived MR image may keep.
ACQUISITION = ("ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType",
               "SequenceName", "RepetitionTime", "EchoTime", "InversionTime", "FlipAngle",
               "EchoTrainLength", "MagneticFieldStrength", "ImagingFrequency", "ImagedNucleus",
               "InPlanePhaseEncodingDirection")
#: What ``--anonymize`` removes (names, identifiers, dates, places, people), following the
#: spirit of DICOM's basic de-identification profile (PS3.15 Annex E).
IDENTIFYING = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
               "PatientAge", "PatientSize", "PatientWeight", "StudyDate", "StudyTime",
               "StudyID", "ReferringPhysicianName", "AccessionNumber", "SeriesDate",
               "SeriesTime", "InstitutionName", "InstitutionAddress", "StationName",
               "DeviceSerialNumber", "FrameOfReferenceUID", "StudyDescription",
               "ProtocolName")


def dicom_attributes(ds) -> dict:
    """The attributes of :data:`PATIENT`, :data:`STUDY`, :data:`EQUIPMENT` and
    :data:`ACQUISITION` present (non-empty) in the pydicom dataset ``ds``."""
    out = {}
    for key in PATIENT + STUDY + EQUIPMENT + ACQUISITION:
        value = ds.get(key)
        if value not in (None, ""):
            out[key] = value
    return out


def _date(value) -> str | None:
    text = str(value or "").replace("-", "")
    return text[:8] if len(text) >= 8 and text[:8].isdigit() else None


def _time(value) -> str | None:
    text = str(value or "").replace(":", "")
    head = text.split(".")[0]
    return head[:6] if len(head) >= 4 and head[:6].isdigit() else None


def _put(out: dict, key: str, value) -> None:
    if value is None:
        return
    value = getattr(value, "value", value)  # enumerations
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return
    out[key] = value


def _first(values):
    return values[0] if isinstance(values, (list, tuple)) and values else None


def _mhz(hz):
    return float(hz) / 1e6 if hz else None


#: DICOM keyword -> (ISMRMRD header section, field, conversion).
_ISMRMRD = {
    "PatientName": ("subjectInformation", "patientName", None),
    "PatientID": ("subjectInformation", "patientID", None),
    "PatientBirthDate": ("subjectInformation", "patientBirthdate", _date),
    "PatientSex": ("subjectInformation", "patientGender", None),
    "PatientWeight": ("subjectInformation", "patientWeight_kg", None),
    "PatientSize": ("subjectInformation", "patientHeight_m", None),
    "StudyDate": ("studyInformation", "studyDate", _date),
    "StudyTime": ("studyInformation", "studyTime", _time),
    "StudyID": ("studyInformation", "studyID", None),
    "AccessionNumber": ("studyInformation", "accessionNumber", str),
    "ReferringPhysicianName": ("studyInformation", "referringPhysicianName", None),
    "StudyDescription": ("studyInformation", "studyDescription", None),
    "BodyPartExamined": ("studyInformation", "bodyPartExamined", None),
    "SeriesDate": ("measurementInformation", "seriesDate", _date),
    "SeriesTime": ("measurementInformation", "seriesTime", _time),
    "PatientPosition": ("measurementInformation", "patientPosition", None),
    "ProtocolName": ("measurementInformation", "protocolName", None),
    "SequenceName": ("measurementInformation", "sequenceName", None),
    "FrameOfReferenceUID": ("measurementInformation", "frameOfReferenceUID", None),
    "Manufacturer": ("acquisitionSystemInformation", "systemVendor", None),
    "ManufacturerModelName": ("acquisitionSystemInformation", "systemModel", None),
    "MagneticFieldStrength": ("acquisitionSystemInformation", "systemFieldStrength_T", None),
    "InstitutionName": ("acquisitionSystemInformation", "institutionName", None),
    "StationName": ("acquisitionSystemInformation", "stationName", None),
    "DeviceSerialNumber": ("acquisitionSystemInformation", "deviceSerialNumber", None),
    "ImagingFrequency": ("experimentalConditions", "H1resonanceFrequency_Hz", _mhz),
    "RepetitionTime": ("sequenceParameters", "TR", _first),
    "EchoTime": ("sequenceParameters", "TE", _first),
    "InversionTime": ("sequenceParameters", "TI", _first),
    "FlipAngle": ("sequenceParameters", "flipAngle_deg", _first),
}


def ismrmrd_attributes(hdr) -> dict:
    """DICOM attributes of an ISMRMRD header (an :mod:`ismrmrd.xsd` ``ismrmrdHeader``)."""
    out: dict = {}
    for key, (section, field, convert) in _ISMRMRD.items():
        value = getattr(getattr(hdr, section, None), field, None)
        if value is not None and convert is not None:
            value = convert(value)
        _put(out, key, value)
    return out


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def twix_attributes(hdr: dict) -> dict:
    """DICOM attributes of a twix measurement header (``twixtools``' parsed ``hdr``)."""
    config, dicom, yaps = (hdr.get(k) or {} for k in ("Config", "Dicom", "MeasYaps"))
    out: dict = {}
    _put(out, "PatientName", config.get("PatientName") or config.get("tPatientName"))
    _put(out, "PatientID", config.get("PatientID"))
    _put(out, "PatientBirthDate", _date(config.get("PatientBirthDay")))
    sex = _number(dicom.get("lPatientSex") or config.get("PatientSex"))
    if sex is not None:
        out["PatientSex"] = {1: "F", 2: "M"}.get(int(sex), "O")
    _put(out, "PatientWeight", _number(dicom.get("flUsedPatientWeight")))
    age = _number(dicom.get("flPatientAge"))
    if age is not None and 0 <= age < 1000:
        out["PatientAge"] = f"{int(age):03d}Y"
    _put(out, "StudyDescription", config.get("tStudyDescription"))
    _put(out, "FrameOfReferenceUID", config.get("FrameOfReference"))
    _put(out, "PatientPosition", config.get("PatientPosition") or dicom.get("tPatientPosition"))
    _put(out, "ProtocolName", config.get("ProtocolName") or dicom.get("tProtocolName"))
    _put(out, "Manufacturer", dicom.get("Manufacturer"))
    _put(out, "ManufacturerModelName", dicom.get("ManufacturersModelName"))
    _put(out, "InstitutionName", dicom.get("InstitutionName"))
    _put(out, "InstitutionAddress", dicom.get("InstitutionAddress"))
    serial = _number(dicom.get("DeviceSerialNumber"))
    _put(out, "DeviceSerialNumber", None if serial is None else str(int(serial)))
    _put(out, "MagneticFieldStrength", _number(dicom.get("flMagneticFieldStrength")))
    freq = _number(dicom.get("lFrequency"))
    _put(out, "ImagingFrequency", None if not freq else freq / 1e6)
    for key, name in (("alTR", "RepetitionTime"), ("alTE", "EchoTime"), ("alTI", "InversionTime")):
        value = _number(_first(yaps.get(key)))
        _put(out, name, None if value is None else value / 1000.0)  # µs -> ms
    _put(out, "FlipAngle", _number(_first(yaps.get("adFlipAngleDegree"))))
    return out
