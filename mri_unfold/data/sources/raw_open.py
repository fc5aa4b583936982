"""What the raw k-space sources (``ismrmrd``, ``twix``, ``bart``, ``array``) share for
training and evaluation: their protocol keys and ``open``.

``open`` reads every file of a path with the source's ``read`` (slices exactly as stored)
and prepares each slice as the ``fastmri`` source does
(:func:`~mri_unfold.data.sources.fastmri.kspace_transform`): optional coil compression
(``compress_coils``), a seeded retrospective mask per file (``mask``, ``acceleration``,
``center_fraction``, ``mask_seed``), ESPIRiT maps from the masked data's own fully sampled
centre for multi-coil data (``espirit_crop``, ``espirit_cache``), normalisation, and for
training the complex image of the fully sampled slice.
"""
from __future__ import annotations

from ...errors import UserError
from ..coil_compression import CompressCoils
from ..samples import KSpaceSample
from ..transforms import ApplyMask, Compose
from .fastmri import FastMRISource, kspace_transform
from .prepared import PreparedSlices

__all__ = ["RAW_OPTIONS", "RAW_CHOICES", "check_raw_options", "open_raw"]

#: Protocol keys of every raw source: ``{key: (type, default)}``.
RAW_OPTIONS = {
    "mask": (str, "random"),            # make_mask kind, one mask per file (file-seeded)
    "acceleration": (float, 4.0),
    "center_fraction": (float, 0.08),   # 0 = the mask kind's default
    "mask_seed": (int, 0),
    "espirit_crop": (float, 0.95),
    "espirit_cache": (str, ""),
    "compress_coils": (int, 0),         # virtual coils after SVD compression (0 = keep all)
    "normalize": (str, "zero_filled_max"),  # zero_filled_max | none (keep the stored scale)
}
#: Allowed values of the string options of :data:`RAW_OPTIONS`.
RAW_CHOICES = {"normalize": ("zero_filled_max", "none")}


def check_raw_options(options: dict, where: str) -> None:
    """Range checks of :data:`RAW_OPTIONS` (UserError naming ``where`` and the key); the
    mask keys are checked as the ``fastmri`` source checks them."""
    FastMRISource.check_options(options, where)
    if options.get("normalize", "zero_filled_max") not in RAW_CHOICES["normalize"]:
        raise UserError(f"{where}: data.normalize = {options['normalize']!r} is not one of "
                        f"{', '.join(RAW_CHOICES['normalize'])}")
    if options.get("compress_coils", 0) < 0:
        raise UserError(f"{where}: data.compress_coils must be >= 0, got "
                        f"{options['compress_coils']}")


def open_raw(source, path, options: dict, *, max_items: int = 0,
             for_training: bool = True) -> PreparedSlices:
    """``source.open``: every file of ``path`` read and prepared (module doc).

    Raises:
        UserError / DataFileError naming the file: unreadable data, undersampled data where a
        training image is needed, no slices.
    """
    samples: list[KSpaceSample] = []
    for f in source.files(path, max_items):
        samples += list(source.read(f, options))
    if not samples:
        raise UserError(f"{path}: no slices in the selected {source.kind} files")
    steps = []
    if options.get("compress_coils"):
        steps.append(CompressCoils(num_coils=options["compress_coils"]))
    mask = ApplyMask(options["mask"], acceleration=options["acceleration"],
                     center_fraction=options["center_fraction"] or None,
                     base_seed=options["mask_seed"])
    prepare = kspace_transform(multicoil=samples[0].num_coils > 1 and
                               options.get("compress_coils", 0) != 1,
                               mask=mask, espirit_crop=options["espirit_crop"],
                               espirit_cache=options["espirit_cache"], with_image=for_training,
                               normalize=options.get("normalize", "zero_filled_max"))
    return PreparedSlices(samples, Compose(steps + [prepare]))
