"""``mri-unfold serve`` — reconstruct ISMRMRD streams from a scanner (or any client) inline.

A thin layer over :mod:`mri_unfold.serving`; see ``docs/serving.md``.
"""
from __future__ import annotations

import logging
import signal
import sys
import warnings
from pathlib import Path

from .. import masks
from ..device import resolve_device
from ..errors import UserError
from ..precision import PRECISIONS, needs_cuda
from ..reconstruct import METHODS
from ..serving import (IMAGE_TYPES, LOGGER, MRDServer, ReconSettings, Reconstructor,
                       StreamLimits, is_loopback)
from .common import add_command, add_mask_options, mask_flag_hints, mask_spec
from .recon import _network

NAME = "serve"
HELP = "serve a network at the scanner: an ISMRMRD streaming server (FIRE, Gadgetron clients)"
DESCRIPTION = ("Listen for ISMRMRD streams (python-ismrmrd-server / Siemens FIRE / Gadgetron "
               "clients), reconstruct each slice as soon as its last acquisition arrives, with "
               "a network or classical method as 'recon' does, and send MRD images back.")
EXAMPLES = """examples:
  mri-unfold serve --model ista_net_plus_raw_sim                 # 127.0.0.1:9002
  mri-unfold serve --method sense --port 9010 --send-zero-filled
  mri-unfold serve --model ckpt.safetensors --mask-file mask.npy --image-type uint16
  mri-unfold stream scan.h5 --to 127.0.0.1:9002 --output scan_recon.nii.gz
the server runs until Ctrl-C or SIGTERM; one log line per connection goes to stderr."""


def _matrix(text: str) -> tuple[int, int] | None:
    if text.lower() == "none":
        return None
    h, sep, w = text.lower().partition("x")
    if not sep or not h.isdigit() or not w.isdigit() or min(int(h), int(w)) < 16:
        raise UserError(f"--warm-up {text}: expected HxW (each >= 16, e.g. 128x128) or none")
    return int(h), int(w)


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("--model", metavar="NAME|CKPT",
                   help="the network: a bundled model name ('mri-unfold models') or a checkpoint")
    p.add_argument("--method", choices=METHODS,
                   help="without --model: a classical method (default zero-filled)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; "
                        "0.0.0.0 listens on every interface and prints a warning)")
    p.add_argument("--port", type=int, default=9002, help="TCP port (default 9002; 0: any free)")
    p.add_argument("--max-connections", type=int, default=4, metavar="N",
                   help="connections served at once (default 4); more are told 'busy'")
    p.add_argument("--idle-timeout", type=float, default=300.0, metavar="S",
                   help="close a connection after S seconds without data (default 300)")
    p.add_argument("--max-message-mb", type=float, default=256.0, metavar="MB",
                   help="largest acquisition / waveform message (default 256)")
    p.add_argument("--max-buffer-mb", type=float, default=4096.0, metavar="MB",
                   help="k-space one connection may hold before its slices complete "
                        "(default 4096)")
    add_mask_options(p)
    p.add_argument("--espirit-crop", type=float, default=0.95, metavar="C",
                   help="ESPIRiT eigenvalue crop (default 0.95)")
    p.add_argument("--no-prewhiten", action="store_true",
                   help="keep the coils as sent (default: prewhiten with the noise scans)")
    p.add_argument("--image-type", choices=IMAGE_TYPES, default="float32",
                   help="pixels sent: float32 (default, the values 'recon' writes) or uint16 "
                        "(0..4095 per image with RescaleSlope)")
    p.add_argument("--send-zero-filled", action="store_true",
                   help="also send each slice's zero-filled image (image series 2)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (default); bf16 / fp16 (CUDA) autocast for the network")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network (compiled during the warm-up for its "
                        "matrix; other matrices compile on their first slice)")
    p.add_argument("--warm-up", default="128x128", metavar="HxW",
                   help="reconstruct a synthetic 2-coil slice of this size at start "
                        "(default 128x128; none: skip)")
    p.set_defaults(func=run)


def _check(args) -> None:
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be in 0..65535, got {args.port}")
    if args.max_connections < 1:
        raise UserError(f"--max-connections must be >= 1, got {args.max_connections}")
    for flag, value in (("--idle-timeout", args.idle_timeout),
                        ("--max-message-mb", args.max_message_mb),
                        ("--max-buffer-mb", args.max_buffer_mb)):
        if not value > 0:
            raise UserError(f"{flag} must be > 0, got {value}")


def run(args) -> int:
    _check(args)
    warm = _matrix(args.warm_up)
    if not is_loopback(args.host):
        warnings.warn(f"--host {args.host}: the server accepts connections from other "
                      "machines; keep it on the scanner's private network or behind a "
                      "firewall (it has no authentication)", UserWarning)
    device = resolve_device(args.device)
    if needs_cuda(args.precision, device):
        raise UserError(f"--precision fp16 needs a CUDA device (running on {device})")
    with mask_flag_hints():
        mask = mask_spec(args)
        if args.mask_file:  # fail now, not on the first scan
            masks.load_mask(args.mask_file, layout=args.mask_layout, key=args.mask_key)
    model, label, cplx, _ = _network(args, device, "ismrmrd", Path("a k-space stream"))
    if model is not None and Path(args.model).suffix == "":  # a bundled model: its name
        label = args.model
    settings = ReconSettings(mask=mask, espirit_crop=args.espirit_crop,
                             prewhiten=not args.no_prewhiten, image_type=args.image_type,
                             send_zero_filled=args.send_zero_filled)
    rec = Reconstructor(model, label, method=None if model is not None else label,
                        complex_model=cplx, settings=settings, device=device)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s mri-unfold serve: %(message)s"))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    if warm is not None:
        LOGGER.info("warmed up on a %dx%d slice in %.2f s", *warm, rec.warm_up(warm))
    limits = StreamLimits(max_message_bytes=int(args.max_message_mb * 2 ** 20),
                          max_buffered_bytes=int(args.max_buffer_mb * 2 ** 20),
                          idle_timeout_s=args.idle_timeout)
    server = MRDServer((args.host, args.port), rec, limits=limits,
                       max_connections=args.max_connections)
    print(f"mri-unfold serve: {label} on {device} listening on {args.host}:{server.port} (up to "
          f"{args.max_connections} connections; Ctrl-C stops)", flush=True)
    previous = signal.signal(signal.SIGTERM, _stop)  # docker stop, systemd: as Ctrl-C
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        LOGGER.removeHandler(handler)
    return 0


def _stop(signum, frame):
    raise KeyboardInterrupt
