"""``mri-unfold compare`` on a raw k-space file: one slice of a scan, several methods side by
side, scored against the scan's own fully sampled image.

The slice (``--slice``, default the middle one) is read as ``recon`` reads it, undersampled
with the mask of ``--mask``/``--mask-file`` (the same mask for every method: its seed is
``--seed``, never the file name) and reconstructed by each ``--baseline`` (any method
``recon --method`` takes) and each ``--model`` through the one pipeline
(:func:`mri_unfold.reconstruct.reconstruct_raw_slices`; ESPIRiT maps are estimated once and
shared).  The reference is the fully sampled RSS image, ``--reference sense`` or an image
file (:mod:`mri_unfold.reconstruct.reference`).  Output: the table, the comparison PNG and,
with ``--metrics``, the table as JSON/CSV.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ..atomic import atomic_outputs
from ..checkpoints import load_checkpoint
from ..data.sources import get_source
from ..errors import UserError
from ..figures import comparison_grid, image_metrics
from ..reconstruct import read_reference_file, reconstruct_raw_slices, require_mri_checkpoint
from ..reconstruct.reference import fully_sampled_reference
from ..tables import METRIC_COLUMNS, format_table
from .read_options import read_options
from .recon_scores import metrics_text

__all__ = ["compare_scan"]


def _slice(raw, index: int | None, path: Path) -> list:
    k = len(raw) // 2 if index is None else index
    if not 0 <= k < len(raw):
        raise UserError(f"--slice {k}: {path} has slices 0..{len(raw) - 1}")
    return [raw[k]]


def _reference(args, one, path, espirit_cache, shape=None):
    if args.reference not in (None, "rss", "sense"):
        return read_reference_file(args.reference, (1, *shape))[0], str(args.reference)
    how = args.reference or "rss"
    ref = fully_sampled_reference(one, path, how, espirit_cache=espirit_cache)[0]
    return ref, f"fully sampled {how.upper()}"


def compare_scan(args, path: Path, kind: str, spec, outputs: list[Path], device) -> int:
    """The module doc for k-space ``path`` of source ``kind``; ``outputs`` = ``[PNG,
    (--metrics file)]`` already checked as new."""
    if spec is None:
        raise UserError(f"{path}: give --mask KIND --acceleration R or --mask-file FILE to "
                        "undersample the scan")
    raw = get_source(kind).read(path, read_options(args, kind))
    one = _slice(raw, args.slice, path)
    if not one[0].is_cartesian:
        raise UserError(f"{path}: non-Cartesian k-space; compare undersamples Cartesian scans "
                        "with a mask (reconstruct radial/spiral files with recon)")
    recons = {}
    with tempfile.TemporaryDirectory(prefix="mri-unfold-espirit-") as cache:
        options = dict(mask=spec, espirit_cache=cache, device=device, progress=False)
        for method in args.baseline or ["zero-filled", "l1-wavelet"]:
            recons[method] = reconstruct_raw_slices(one, path, method=method, **options)
        for name in args.model:
            ck = load_checkpoint(name, device=device)
            require_mri_checkpoint(ck, name, f"it cannot reconstruct {path}")
            label = Path(name).stem
            recons[label] = reconstruct_raw_slices(one, path, ck.model,
                                                   complex_model=ck.complex_model, **options)
        shape = next(iter(recons.values())).reconstruction.shape[-2:]
        target, ref_label = _reference(args, one, path, cache, shape)
    images = {name: r.reconstruction[0] for name, r in recons.items()}
    rows = [{"method": name, **image_metrics(target, img)} for name, img in images.items()]
    mask = spec.make(tuple(one[0].mask.shape))
    first = next(iter(recons.values())).info
    print(f"{path} ({kind}) slice {args.slice if args.slice is not None else len(raw) // 2}: "
          f"{one[0].num_coils} coils, {shape[0]}x{shape[1]}, mask {spec.label}, "
          f"{first['sampled_fraction']:.1%} sampled, mask seed {first['mask_seed']}; "
          f"reference: {ref_label}")
    print(format_table(rows, METRIC_COLUMNS))
    with atomic_outputs(outputs) as tmps:
        comparison_grid(target, images, mask, tmps[0], target_title=ref_label,
                        title=f"{path.name}: {spec.label} mask, {first['sampled_fraction']:.1%} "
                              "sampled")
        if len(tmps) > 1:
            header = {"input": str(path), "reference": ref_label, "mask": spec.label,
                      "mask_seed": first["mask_seed"]}
            Path(tmps[1]).write_text(metrics_text(rows, tmps[1], header))
    for out in outputs:
        print(f"wrote {out}")
    return 0
