"""``mri-unfold stream`` — send a raw file to an ISMRMRD server and save the images it returns.

A thin layer over :mod:`mri_unfold.serving.client`; the images are written by ``recon``'s
writers (every format ``recon`` writes: ``.h5``, NIfTI, ``.npy``, a DICOM series with
``--format dicom``), all-or-nothing.  See ``docs/serving.md``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..reconstruct import output_format, with_tag
from ..serving import DEFAULT_CONFIG, load_scan, parse_address, stream_scan
from . import recon_dicom as dcm
from .common import add_command, check_new_outputs
from .recon import write_outputs

NAME = "stream"
HELP = "stream an ISMRMRD or twix file to an ISMRMRD server and save the returned images"
DESCRIPTION = ("Send a raw scan (ISMRMRD .h5, or Siemens twix .dat converted on the fly) to an "
               "ISMRMRD streaming server ('mri-unfold serve', python-ismrmrd-server, "
               "Gadgetron) as a scanner would, and save the images it sends back.")
EXAMPLES = """examples:
  mri-unfold stream scan.h5 --to 127.0.0.1:9002 --output scan_recon.nii.gz
  mri-unfold stream meas.dat --to 127.0.0.1:9002 --output meas.h5 --save-zero-filled
  mri-unfold stream meas.dat --to 127.0.0.1:9002 --format dicom --output meas_series/
  mri-unfold stream scan.h5 --to 127.0.0.1:9002 --config invertcontrast   # python-ismrmrd-server
without --output (and without --format dicom) the images are only counted."""


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("input", metavar="INPUT", help="ISMRMRD .h5 or Siemens twix .dat file")
    p.add_argument("--to", required=True, metavar="HOST:PORT", help="the server")
    p.add_argument("--output", metavar="OUT",
                   help="save the images: .h5 (dataset 'reconstruction'), .nii/.nii.gz "
                        "(scanner geometry), .npy, or a folder with --format dicom; never an "
                        "input, never an existing file without --overwrite")
    p.add_argument("--format", choices=dcm.FORMATS, default="auto",
                   help="auto (default: from the --output name) or dicom (a DICOM MR series "
                        "with the scan's patient, study and geometry, as recon writes it)")
    p.add_argument("--dicom-enhanced", action="store_true",
                   help="--format dicom: one Enhanced MR multi-frame file")
    p.add_argument("--anonymize", action="store_true",
                   help="--format dicom: without names, IDs, dates and institution")
    p.add_argument("--save-zero-filled", action="store_true",
                   help="also save the zero-filled images (OUT stem + '_zero_filled'; the "
                        "server must send them: serve --send-zero-filled)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--config", default=DEFAULT_CONFIG, metavar="NAME",
                   help=f"configuration name sent first (default {DEFAULT_CONFIG}; "
                        "python-ismrmrd-server picks its module by it)")
    p.add_argument("--interval", type=float, default=0.0, metavar="MS",
                   help="send one acquisition every MS milliseconds, as a scanner does "
                        "(default 0: as fast as the server takes them)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="give up after S seconds without an answer (default 600)")
    p.set_defaults(func=run, model=None, mask_file=None)


def _outputs(args, src: Path) -> list[Path]:
    if not args.output:
        if args.save_zero_filled:
            raise UserError("--save-zero-filled needs --output")
        return []
    out = Path(args.output)
    if output_format(out) is None:
        raise UserError(f"--output {out}: unsupported output (expected .h5, .nii/.nii.gz or "
                        ".npy)")
    outs = [out] + ([with_tag(out, "_zero_filled")] if args.save_zero_filled else [])
    return check_new_outputs(outs, [src], args.overwrite)


def run(args) -> int:
    src = Path(args.input)
    host, port = parse_address(args.to)
    if not args.timeout > 0:
        raise UserError(f"--timeout must be > 0, got {args.timeout}")
    if args.interval < 0:
        raise UserError(f"--interval must be >= 0, got {args.interval}")
    to_dicom = dcm.wants_dicom_output(args, False)
    outputs = dcm.dicom_outputs(args, src, None) if to_dicom else _outputs(args, src)
    scan = load_scan(src)
    res = stream_scan(scan, host, port, config=args.config, timeout_s=args.timeout,
                      interval_s=args.interval / 1e3)
    for text in res.texts:
        print(f"server: {text}", file=sys.stderr)
    if not res.images:
        raise UserError(f"{args.to}: the server sent no images for {src}")
    result = res.result(scan, zero_filled=args.save_zero_filled)
    if to_dicom:
        label = res.images[0].meta.get("SequenceDescriptionAdditional") or "reconstruction"
        prov = dcm.provenance(args, None, f"{label} (streamed to {args.to})", result,
                              scan.source)
        dcm.write_dicom_outputs(result, outputs, args, prov)
    elif outputs:
        write_outputs(result, outputs, keep_dtype=False)
    for out, what in zip(outputs, ("", " (zero-filled)")):
        print(f"wrote {out}{what}")
    r = result.reconstruction
    lat = np.array(list(res.latencies_s.values())) * 1e3
    timing = (f"; latency from a slice's last acquisition to its image: median "
              f"{np.median(lat):.0f} ms, max {lat.max():.0f} ms" if lat.size else "")
    print(f"{args.to}: {len(res.images)} images ({r.shape[0]} slices of {r.shape[1]}x"
          f"{r.shape[2]}) for {res.sent} acquisitions of {src} ({scan.source}) in "
          f"{res.seconds:.2f} s{timing}")
    return 0
