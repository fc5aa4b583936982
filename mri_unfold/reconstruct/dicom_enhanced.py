"""One Enhanced MR Image (multi-frame) instance for a reconstructed series
(``mri-unfold recon --format dicom --dicom-enhanced``; :mod:`.dicom_writer` builds the rest).

A derived (``DERIVED\\SECONDARY``) Enhanced MR image needs the Enhanced MR Image module with
the MR Image Description macro, the Multi-frame Functional Groups and Dimension modules, the
Acquisition Context and Enhanced General Equipment modules; the acquisition-related
functional groups (timing, echo, coils, ...) are required only for ORIGINAL images.  Shared
by all frames: Pixel Measures, Plane Orientation, Pixel Value Transformation (the series'
slope/intercept), Frame VOI LUT, Frame Anatomy, MR Image Frame Type; per frame: Frame
Content (stack 1, position in the stack = slice number along the affine's slice axis, the
two dimension indices) and Plane Position.  Checked with dicom3tools' ``dciodvfy``.
"""
from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import EnhancedMRImageStorage, generate_uid

from .dicom_elements import code, ds_number, item, pixel_module

__all__ = ["enhanced_image"]

#: ``BodyPartExamined`` -> SNOMED CT anatomic region (code, meaning); anything else is
#: "Entire body".
_ANATOMY = {"HEAD": ("69536005", "Head"), "BRAIN": ("12738006", "Brain"),
            "KNEE": ("72696002", "Knee")}
_FRAME_TYPE = ["DERIVED", "PRIMARY", "OTHER", "NONE"]


def _anatomy(body_part: str) -> Dataset:
    value, meaning = _ANATOMY.get(str(body_part or "").upper(), ("38266002", "Entire body"))
    return item(AnatomicRegionSequence=[code(value, "SCT", meaning)], FrameLaterality="U")


def enhanced_image(common: Dataset, px, planes, thickness: float, meta) -> Dataset:
    """The Enhanced MR Image dataset of ``px`` (``SeriesPixels``: ``stored`` ``(S, H, W)``)
    on ``planes`` (``ImagePlanes``), with the ``common`` patient/study/series attributes and
    the file meta ``meta`` (its SOP instance UID is filled in).  Source images are not
    referenced (Enhanced MR source references need coded derivations)."""
    s = px.stored.shape[0]
    ds = Dataset()
    ds.update(common)
    for key in ("ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType",
                "EchoTime", "EchoTrainLength", "RepetitionTime", "InversionTime", "FlipAngle",
                "SequenceName", "ImagingFrequency", "ImagedNucleus",
                "InPlanePhaseEncodingDirection", "BurnedInAnnotation", "DerivationDescription",
                "Laterality"):
        if key in ds:
            del ds[key]  # single-frame MR attributes (the derivation is in the contributing
            # equipment's description; acquisition details would go in functional groups)
    ds.SOPClassUID, ds.SOPInstanceUID = EnhancedMRImageStorage, generate_uid()
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    ds.ImageType = _FRAME_TYPE
    ds.PixelPresentation, ds.VolumetricProperties = "MONOCHROME", "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.ComplexImageComponent, ds.AcquisitionContrast = "MAGNITUDE", "UNKNOWN"
    ds.BurnedInAnnotation, ds.LossyImageCompression = "NO", "00"
    ds.PresentationLUTShape = "IDENTITY"
    ds.ContentQualification = "RESEARCH"
    ds.ApplicableSafetyStandardAgency = "IEC"  # type 1; IEC 60601-2-33, what scanners follow
    for key in ("Manufacturer", "ManufacturerModelName", "DeviceSerialNumber",
                "SoftwareVersions"):
        if not ds.get(key):
            setattr(ds, key, "unknown")  # Enhanced General Equipment: type 1
    if "PatientPosition" not in ds:
        ds.PatientPosition = ""
    ds.InstanceNumber = 1
    ds.NumberOfFrames = s
    pixel_module(ds, *px.stored.shape[1:])
    ds.AcquisitionContextSequence = []
    org = generate_uid()
    ds.DimensionOrganizationSequence = [item(DimensionOrganizationUID=org)]
    ds.DimensionOrganizationType = "3D"
    content = Tag("FrameContentSequence")
    ds.DimensionIndexSequence = [
        item(DimensionOrganizationUID=org, DimensionIndexPointer=Tag("StackID"),
              FunctionalGroupPointer=content, DimensionDescriptionLabel="Stack"),
        item(DimensionOrganizationUID=org, DimensionIndexPointer=Tag("InStackPositionNumber"),
              FunctionalGroupPointer=content, DimensionDescriptionLabel="Slice")]
    shared = item(
        PixelMeasuresSequence=[item(
            PixelSpacing=[ds_number(v) for v in planes.pixel_spacing],
            SliceThickness=ds_number(thickness),
            SpacingBetweenSlices=ds_number(planes.slice_spacing))],
        PlaneOrientationSequence=[item(
            ImageOrientationPatient=[ds_number(v) for v in planes.orientation])],
        PixelValueTransformationSequence=[item(
            RescaleIntercept=ds_number(px.intercept), RescaleSlope=ds_number(px.slope),
            RescaleType="US")],
        FrameVOILUTSequence=[item(WindowCenter=ds_number(px.center),
                                  WindowWidth=ds_number(px.width),
                                  VOILUTFunction="LINEAR_EXACT" if px.width < 1 else "LINEAR")],
        FrameAnatomySequence=[_anatomy(common.get("BodyPartExamined"))],
        MRImageFrameTypeSequence=[item(
            FrameType=_FRAME_TYPE, PixelPresentation="MONOCHROME",
            VolumetricProperties="VOLUME", VolumeBasedCalculationTechnique="NONE",
            ComplexImageComponent="MAGNITUDE", AcquisitionContrast="UNKNOWN")])
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = [
        item(FrameContentSequence=[item(StackID="1", InStackPositionNumber=k + 1,
                                          DimensionIndexValues=[1, k + 1])],
              PlanePositionSequence=[item(
                  ImagePositionPatient=[ds_number(v) for v in planes.positions[k]])])
        for k in range(s)]
    ds.PixelData = px.stored.astype("<u2").tobytes()
    return ds
