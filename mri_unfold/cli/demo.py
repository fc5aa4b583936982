"""``mri-unfold demo`` — offline brain-MRI demo: 20 % radial k-space, four reconstructions.

1. an axial slice of the MNI ICBM152 T1 template shipped in the ``nilearn`` wheel
   (:mod:`mri_unfold.demo_data`; 256 x 256, [0, 1]);
2. simulated single-coil k-space with a seeded pseudo-radial mask (``mri_unfold.masks``
   kind ``"radial"``, 20 % of k-space);
3. zero-filled, SigPy L1-wavelet and the best bundled networks for the demo's case (per
   architecture, the zoo model trained for this sampling ratio with the highest brain_test
   score: ISTA-Net+ and MADUN, :func:`mri_unfold.models.zoo.best_models`), or the
   models named with ``--model`` (zoo names or checkpoint paths), or every checkpoint of a
   ``--weights`` folder;
4. a PSNR/SSIM/NMSE table (printed and written as ``metrics.csv``) and the comparison
   figure ``comparison.png`` in the output folder.

Nothing is downloaded; missing bundled weights are reported, not fatal.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_outputs, atomic_write_text
from ..baselines import l1_wavelet, zero_filled
from ..checkpoints import Checkpoint, load_checkpoint
from ..device import resolve_device
from ..errors import UserError
from ..figures import comparison_grid, image_metrics
from ..masks import make_mask
from ..models.zoo import best_models, load_card, model_names, resolve_weights
from ..operators import SingleCoilFourier
from ..outputs import output_folder
from ..reconstruct import reconstruct_image, require_mri_checkpoint
from ..tables import METRIC_COLUMNS, format_table
from .demo_data import DEFAULT_SLICE, load_demo_slice, mni_template_path

from .common import add_command, check_new_outputs

NAME = "demo"
DEFAULT_OUTPUT = "mri-unfold-demo"
HELP = "offline brain-MRI reconstruction demo"
DESCRIPTION = ("Simulate 20%% radial k-space from a brain MR slice (MNI T1 "
               "template shipped with nilearn) and reconstruct it "
               "(zero-filled, L1-wavelet and the best bundled networks: ISTA-Net+, MADUN).")

EXAMPLES = """examples:
  mri-unfold demo                          # writes ./mri-unfold-demo/comparison.png + metrics.csv
  mri-unfold demo --overwrite              # again, replacing them
  mri-unfold demo --output /tmp/demo --slice 92 --seed 1
  mri-unfold demo --ratio 0.3                  # the bundled networks for 30 % sampling
  mri-unfold demo --model ista_net_plus_radial20 --model runs/mine/best.safetensors"""


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("--output", default=DEFAULT_OUTPUT, metavar="DIR",
                   help=f"output folder (default ./{DEFAULT_OUTPUT}/, created if needed)")
    p.add_argument("--slice", type=int, default=None, metavar="K",
                   help="axial slice index of the template (default 82, z = +10 mm)")
    p.add_argument("--ratio", type=float, default=0.2, help="sampled fraction (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="mask seed (default 0)")
    p.add_argument("--weights", default=None, metavar="DIR",
                   help="run every network checkpoint of this folder (default: the best bundled "
                        "models for the demo's ratio; list them with 'mri-unfold models')")
    p.add_argument("--model", action="append", default=[], metavar="NAME|CKPT",
                   help="run this bundled model (zoo name) or checkpoint (repeatable; instead "
                        "of the default selection)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda")
    p.add_argument("--overwrite", action="store_true",
                   help="replace comparison.png and metrics.csv of an earlier demo in --output")
    p.set_defaults(func=run)


def bundled_weights_dir() -> Path:
    """``mri_unfold/weights`` inside the installed package (may not exist)."""
    return Path(__file__).resolve().parent.parent / "weights"


def _networks(folder: Path, device) -> tuple[list[tuple[str, Checkpoint]], list[str]]:
    """Load every ``*.safetensors`` checkpoint of ``folder``: ([(label, checkpoint)], notes).

    The optional ``<stem>.json`` next to a checkpoint may give a display ``name``."""
    nets, notes = [], []
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        notes.append(f"no trained network weights found in {folder} — ran the classical "
                     "methods only (bundled ISTA-Net+ weights are added by training, see "
                     "docs/demo.md)")
    for f in files:
        label = f.stem
        side = f.with_suffix(".json")
        try:
            if side.is_file():
                label = str(json.loads(side.read_text()).get("name", label))
            ck = load_checkpoint(f, device=device)
            require_mri_checkpoint(ck, f, "the demo measures MRI k-space")
            nets.append((label, ck))
        except (UserError, OSError, json.JSONDecodeError) as e:
            notes.append(f"skipped {f.name}: {e}")
    return nets, notes


def _zoo_networks(specs: list[str], ratio: float,
                  device) -> tuple[list[tuple[str, Checkpoint]], list[str]]:
    """The zoo models (or checkpoint paths) ``specs``, default the best for ``ratio``."""
    names = specs or best_models(ratio)
    notes = [] if names else [f"no bundled network for {ratio:.0%} radial sampling (see "
                              "'mri-unfold models') — ran the classical methods only"]
    nets = []
    for spec in names:
        path = resolve_weights(spec)
        label = load_card(spec)["label"] if spec in model_names() else path.stem
        ck = load_checkpoint(path, device=device)
        require_mri_checkpoint(ck, spec, "the demo measures MRI k-space")
        nets.append((label, ck))
    return nets, notes


def _write_csv(rows: list[dict], path: Path) -> None:
    lines = ["method,psnr_db,ssim,nmse"]
    lines += [f"{r['method']},{r['psnr']:.4f},{r['ssim']:.6f},{r['nmse']:.6g}" for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def run(args) -> int:
    t0 = time.perf_counter()
    if not 0 < args.ratio <= 1:
        raise UserError(f"--ratio must be in (0, 1], got {args.ratio}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--output {out_dir}: exists and is not a folder")
    outputs = [out_dir / "comparison.png", out_dir / "metrics.csv"]
    if out_dir.is_dir():
        check_new_outputs(outputs, list(args.model), args.overwrite)
    device = resolve_device(args.device)
    k = DEFAULT_SLICE if args.slice is None else args.slice
    target = load_demo_slice(k)
    mask = np.asarray(make_mask("radial", target.shape, ratio=args.ratio, seed=args.seed).mask,
                      np.float32)
    print(f"image: axial slice {k} of {mni_template_path().name} (nilearn), "
          f"256x256, normalised to [0, 1]")
    print(f"k-space: simulated single-coil, pseudo-radial mask, {mask.mean():.1%} sampled "
          f"(seed {args.seed})")
    op_real = SingleCoilFourier(mask, real_input=True)
    y = op_real(torch.from_numpy(target)[None, None])
    recons = {"zero-filled": zero_filled(y, op_real)[0].numpy(),
              "L1-wavelet": l1_wavelet(y, op_real)[0].numpy()}
    if args.weights:
        if args.model:
            raise UserError("--weights and --model exclude each other")
        nets, notes = _networks(Path(args.weights), device)
    else:
        nets, notes = _zoo_networks(args.model, args.ratio, device)
    for label, ck in nets:
        recons[label] = reconstruct_image(ck.model, target, mask, complex_model=ck.complex_model,
                                          device=device)
    rows = [{"method": name, **image_metrics(target, r, data_range=1.0)}
            for name, r in recons.items()]
    print(format_table(rows, METRIC_COLUMNS))
    for note in notes:
        print(f"note: {note}")
    print("methods run: " + ", ".join(recons))
    with output_folder(out_dir), atomic_outputs(outputs) as (png, csv):  # both or neither
        comparison_grid(target, recons, mask, png,
                        title=f"MNI T1 slice {k}, {mask.mean():.0%} radial sampling")
        _write_csv(rows, csv)
    print(f"wrote {outputs[0]} and {outputs[1]} ({time.perf_counter() - t0:.1f} s)")
    return 0
