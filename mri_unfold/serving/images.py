"""MRD images: reconstructed slices as IMAGE messages (server) and received IMAGE messages back
as a volume (client).

An image carries what a scanner needs to store it as DICOM:

* the fixed header: ``matrix_size`` ``(x, y, 1)`` with ``x`` along the readout (our image
  rows, :mod:`mri_unfold.data.sampling`) and ``y`` along the phase encoding, the field of view
  of the reconstructed (recon-matrix) image, position (the slice centre; a 3-D partition's own
  centre) and the read / phase / slice directions of the slice's first acquisition (LPS),
  the patient table position, time stamps and the counters (contrast, phase, repetition,
  set; ``slice`` = slice x partitions + partition), ``image_type`` magnitude,
  ``image_index`` counting the connection's images from 1, ``image_series_index`` 1 for the
  reconstruction and 2 for the zero-filled image;
* the pixels: ``float32`` magnitudes exactly as ``mri-unfold recon`` writes them, or
  ``uint16`` scaled per image to ``0..4095`` with ``RescaleSlope`` (value = slope x pixel);
* meta attributes (ISMRMRD MetaContainer XML, what FIRE/OpenRecon copy into DICOM):
  ``DataRole`` Image, ``ImageProcessingHistory``, ``SeriesDescription`` /
  ``SequenceDescriptionAdditional`` / ``ImageComment`` naming the network or method,
  ``Keep_image_geometry`` 1, ``ImageRowDir`` / ``ImageColumnDir``, and for ``uint16``
  images ``RescaleSlope``, ``RescaleIntercept``, ``WindowCenter``, ``WindowWidth``.

The client reads images back (:func:`received_image`) and stacks them in the order of
``recon`` (repetition, contrast, slice) with the NIfTI affine of their geometry
(:func:`volume_of`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..data.geometry import SliceGeometry, stack_affine
from ..data.samples import KSpaceSample
from .protocol import IMAGE_DTYPES, Message, ProtocolError, encode_image, header_dtypes

__all__ = ["IMAGE_TYPES", "slice_image", "ReceivedImage", "received_image", "volume_of",
           "meta_xml", "parse_meta", "RECON_SERIES", "ZERO_FILLED_SERIES"]

#: Pixel types of the images a server sends.
IMAGE_TYPES = ("float32", "uint16")
RECON_SERIES, ZERO_FILLED_SERIES = 1, 2
_MAGNITUDE = 1
_USHORT_MAX = 4095
_DOCTYPE = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def meta_xml(meta: dict) -> str:
    """The MetaContainer XML of ``{name: value or list of values}``."""
    import ismrmrd

    return ismrmrd.Meta({k: ([str(x) for x in v] if isinstance(v, (list, tuple)) else str(v))
                         for k, v in meta.items()}).serialize()


def parse_meta(text: str) -> dict:
    """``{name: value or [values]}`` of MetaContainer XML (empty text -> ``{}``).

    Raises:
        ProtocolError: a document type or entity declaration, or not MetaContainer XML.
    """
    import ismrmrd

    if not text.strip():
        return {}
    if _DOCTYPE.search(text):
        raise ProtocolError("image attributes declare a document type or entities (refused)")
    try:
        return dict(ismrmrd.Meta.deserialize(text))
    except Exception as e:  # noqa: BLE001 - ElementTree / assertion errors of bad XML
        raise ProtocolError(f"image attributes are not ISMRMRD meta XML "
                            f"({type(e).__name__})") from e


def _dirs(head) -> list[str]:
    return [[f"{float(v):.9f}" for v in head[name]] for name in ("read_dir", "phase_dir")]


def slice_image(image: np.ndarray, sample: KSpaceSample, acquisition, *, index: int,
                series: int, label: str, image_type: str = "float32") -> bytes:
    """The IMAGE message of one reconstructed slice (module doc).

    Args:
        image: ``(h, w)`` float32 magnitude (rows along the readout), cropped to the recon
            matrix and in the data's intensity scale (a ``ReconResult`` row).
        sample: the slice as read (its voxel size, counters and partition).
        acquisition: the header of the slice's first acquisition (geometry, counters, time
            stamps).
        index / series: ``image_index`` and ``image_series_index``.
        label: the network or method, for the series description.
        image_type: ``"float32"`` or ``"uint16"`` (:data:`IMAGE_TYPES`).
    """
    h, w = image.shape
    ex = sample.metadata.extras
    voxel = sample.metadata.voxel_size_mm
    partitions = int(ex.get("encoded_matrix", (0, 0, 1))[2] or 1)
    partition = int(ex.get("partition", 0))
    head = np.zeros((), header_dtypes()["image"])
    for name in ("measurement_uid", "read_dir", "phase_dir", "slice_dir",
                 "patient_table_position", "acquisition_time_stamp", "physiology_time_stamp"):
        head[name] = acquisition[name]
    for name in ("contrast", "phase", "repetition", "set"):
        head[name] = acquisition["idx"][name]
    head["version"], head["image_type"] = 1, _MAGNITUDE
    head["slice"] = int(ex.get("slice_counter", acquisition["idx"]["slice"])) * partitions \
        + partition
    if voxel is not None:
        head["field_of_view"] = (voxel[0] * h, voxel[1] * w, voxel[2] if len(voxel) > 2 else 0)
        offset = (partition - partitions // 2) * (voxel[2] if len(voxel) > 2 else 0.0)
    else:
        offset = 0.0
    head["position"] = (np.asarray(acquisition["position"], np.float64)
                        + offset * np.asarray(acquisition["slice_dir"], np.float64))
    head["image_index"], head["image_series_index"] = index, series
    what = "zero-filled" if series == ZERO_FILLED_SERIES else label
    row, col = _dirs(acquisition)
    meta = {"DataRole": "Image", "ImageProcessingHistory": ["MRIUNFOLD"],
            "SeriesDescription": ["mri-unfold", what], "SequenceDescriptionAdditional": what,
            "ImageComment": ["mri-unfold", what], "Keep_image_geometry": 1,
            "ImageRowDir": row, "ImageColumnDir": col}
    pixels = np.ascontiguousarray(np.asarray(image, np.float32).T)[None, None]
    if image_type == "uint16":
        peak = float(np.max(image)) if image.size else 0.0
        slope = peak / _USHORT_MAX if peak > 0 else 1.0
        pixels = np.clip(np.rint(pixels / slope), 0, _USHORT_MAX).astype("<u2")
        meta.update({"RescaleSlope": repr(slope), "RescaleIntercept": 0,
                     "WindowCenter": _USHORT_MAX // 2, "WindowWidth": _USHORT_MAX})
    elif image_type != "float32":
        raise ValueError(f"image type must be one of {', '.join(IMAGE_TYPES)}, got "
                         f"{image_type!r}")
    return encode_image(head, meta_xml(meta), pixels)


@dataclass
class ReceivedImage:
    """One image a client received.

    Attributes:
        array: ``(h, w)`` float32 (rows along the readout); ``uint16`` pixels are scaled back
            with ``RescaleSlope`` / ``RescaleIntercept``.
        head: the image header (numpy structured scalar).
        meta: its meta attributes.
        received_s: ``time.perf_counter()`` when it arrived.
    """

    array: np.ndarray
    head: np.void
    meta: dict
    received_s: float

    @property
    def order(self) -> tuple[int, int, int, int]:
        """(series, repetition, contrast, slice): ``recon``'s slice order within a series."""
        h = self.head
        return (int(h["image_series_index"]), int(h["repetition"]), int(h["contrast"]),
                int(h["slice"]))


def received_image(msg: Message, received_s: float) -> ReceivedImage:
    """A received IMAGE message as :class:`ReceivedImage` (the first channel, ``z = 0``).

    Raises:
        ProtocolError: bad attributes; complex or multi-slice (``z > 1``) images.
    """
    head, data = msg.head, msg.data
    if data.dtype.kind == "c" or data.shape[1] != 1:
        raise ProtocolError(f"image {int(head['image_index'])}: expected a real 2-D image, got "
                            f"{IMAGE_DTYPES[int(head['data_type'])]} of (channels, z, y, x) "
                            f"{data.shape}")
    meta = parse_meta(msg.attributes)
    array = np.ascontiguousarray(data[0, 0].T)
    if array.dtype != np.float32:
        slope = float(meta.get("RescaleSlope", 1.0))
        array = (array.astype(np.float64) * slope
                 + float(meta.get("RescaleIntercept", 0.0))).astype(np.float32)
    return ReceivedImage(array, head, meta, received_s)


def volume_of(images: list[ReceivedImage], series: int = RECON_SERIES):
    """``(stack (S, h, w) float32, affine (4, 4) or None)`` of one series, in ``recon``'s
    order; the affine stacks the first repetition and contrast
    (:func:`~mri_unfold.data.geometry.stack_affine`).

    Raises:
        ProtocolError: no image of the series, images of different sizes.
    """
    chosen = sorted((im for im in images if im.order[0] == series), key=lambda im: im.order)
    if not chosen:
        raise ProtocolError(f"the server sent no image of series {series}")
    shapes = {im.array.shape for im in chosen}
    if len(shapes) != 1:
        raise ProtocolError(f"the server's images of series {series} have different sizes "
                            f"{sorted(shapes)}")
    stack = np.stack([im.array for im in chosen])
    first = [im for im in chosen if im.order[1:3] == chosen[0].order[1:3]]
    geoms = [SliceGeometry.from_arrays(im.head["read_dir"], im.head["phase_dir"],
                                       im.head["slice_dir"], im.head["position"]) for im in first]
    h, w = stack.shape[1:]
    fov = np.asarray(chosen[0].head["field_of_view"], np.float64)
    affine = None
    if fov[0] > 0 and fov[1] > 0:
        affine = stack_affine(geoms, (fov[0] / h, fov[1] / w, fov[2]), (h, w))
    return stack, affine
