"""Small building blocks of the DICOM datasets mri-unfold writes (:mod:`.dicom_writer`,
:mod:`.dicom_enhanced`): decimal strings, sequence items, codes, the image pixel module and
the file meta information."""
from __future__ import annotations

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.valuerep import DSfloat

from .. import __version__

__all__ = ["ds_number", "item", "code", "pixel_module", "file_meta"]


def ds_number(x: float) -> DSfloat:
    """A Decimal String value of at most 16 characters."""
    return DSfloat(float(x), auto_format=True)


def item(**attributes) -> Dataset:
    """A sequence item with the given attributes (keyword=value)."""
    ds = Dataset()
    for key, value in attributes.items():
        setattr(ds, key, value)
    return ds


def code(value: str, scheme: str, meaning: str) -> Dataset:
    """A coded entry (Code Sequence Macro item)."""
    return item(CodeValue=value, CodingSchemeDesignator=scheme, CodeMeaning=meaning)


def pixel_module(ds: Dataset, rows: int, cols: int) -> None:
    """Image Pixel attributes of unsigned 16-bit greyscale pixels (``MONOCHROME2``)."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(rows), int(cols)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0


def file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    """Part 10 file meta information (Explicit VR Little Endian)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"MRIUNFOLD_{__version__}"[:16]
    return meta
