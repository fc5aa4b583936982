"""``mri-unfold import-official PKL --output CKPT`` — authors' checkpoint -> our checkpoint
(weights, model config and the operator: Φ/Qinit for block CS, the mask for CS-MRI)."""
from __future__ import annotations

import re
from pathlib import Path

from ..checkpoints import save_checkpoint
from ..errors import UserError
from ..fft import LAYOUTS
from ..models.official import infer_arch, load_official, official_task, read_official
from ..training.config import validate_protocol
from ..training.tasks import build_task
from .common import add_command, check_new_outputs

NAME = "import-official"
HELP = "convert an authors' .pkl checkpoint to an mri-unfold checkpoint"
DESCRIPTION = ("Convert a released ISTA-Net/ISTA-Net+/MADUN checkpoint "
               "(net_params_*.pkl) into an mri-unfold .safetensors checkpoint "
               "that also stores the operator (Φ and Qinit, or the mask).")

EXAMPLES = """examples:
  # ISTA-Net+ at 25%: ratio read from the folder name, the authors' phi/Qinit from ../shared
  mri-unfold import-official \\
      ../shared/reference/ista_net_pytorch/model/CS_ISTA_Net_plus_layer_9_group_1_ratio_25_lr_0.0001/net_params_200.pkl \\
      --output ista_net_plus_25.safetensors
  # explicit matrices
  mri-unfold import-official net_params_200.pkl --arch ista_net --phi phi_0_10_1089.mat \\
      --qinit Initialization_Matrix_10.mat --output ista_net_10.safetensors
  # CS-MRI: the sampling mask (unshifted layout, as the authors' radial masks)
  mri-unfold import-official .../MRI_CS_ISTA_Net_plus_layer_9_group_1_ratio_20/net_params_200.pkl \\
      --mask ../shared/data/mri/masks/radial_20.mat --mask-layout unshifted \\
      --output ista_mri_20.safetensors"""


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("pkl", help="authors' net_params_*.pkl (a state dict; loaded weights_only)")
    p.add_argument("--output", required=True,
                   help="checkpoint to write (.safetensors); never an input, never an existing "
                        "file without --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.add_argument("--arch", help="architecture (default: inferred from the keys)")
    g = p.add_argument_group("block CS operator (natural images)")
    g.add_argument("--ratio", type=float,
                   help="sampling ratio, e.g. 0.25 (default: from 'ratio_XX' in the folder name)")
    g.add_argument("--phi", help="phi .mat file (default: the authors' phi_0_XX_1089.mat)")
    g.add_argument("--qinit", help="Qinit .mat file (default: Initialization_Matrix_XX.mat)")
    g.add_argument("--matrix-dir", help="folder of the authors' matrices (default: "
                                        "${shared}/reference/ista_net_pytorch/sampling_matrix)")
    m = p.add_argument_group("CS-MRI operator")
    m.add_argument("--mask", help="sampling mask file (.mat/.npy/.npz); makes an MRI checkpoint")
    m.add_argument("--mask-layout", "--layout", dest="layout", default="centered",
                   choices=LAYOUTS,
                   help="k-space layout of the mask file (default: centered; the authors' "
                        "radial_*.mat masks are unshifted, DC at [0, 0])")
    p.set_defaults(func=run)


def operator_config(args, pkl: Path) -> dict:
    """The operator table for the imported model (see mri_unfold.operators.build_operator)."""
    if args.mask:
        op = {"kind": "single_coil", "mask": str(args.mask), "layout": args.layout,
              "real_input": True}
    else:
        ratio = args.ratio
        if ratio is None:
            m = re.search(r"ratio_(\d+)", str(pkl.parent.name) + "/" + pkl.name)
            if not m:
                raise UserError(f"{pkl}: cannot tell the sampling ratio from the path; pass "
                                "--ratio (or --mask for a CS-MRI checkpoint)")
            ratio = int(m.group(1)) / 100
        op = {"kind": "block_cs", "ratio": float(ratio), "phi": args.phi or "authors",
              "qinit": args.qinit or ("authors" if not args.phi else "none")}
        if args.matrix_dir:
            op["matrix_dir"] = str(args.matrix_dir)
    # fill defaults and expand ${shared} through the protocol schema
    raw = {"data": {"train": "."}, "model": {"name": "x"}, "operator": op}
    return validate_protocol(raw, source="import-official")["operator"]


def run(args) -> int:
    pkl = Path(args.pkl)
    out, = check_new_outputs([args.output], [pkl, args.phi, args.qinit, args.mask],
                             args.overwrite)
    sd = read_official(pkl)
    try:
        found = infer_arch(sd)
        if args.arch and args.arch != found:
            raise UserError(f"{pkl}: holds an {found!r} checkpoint, not {args.arch!r} (--arch)")
        task = "mri" if args.mask else "cs"
        if official_task(pkl) == "mri" and not args.mask:
            raise UserError(f"{pkl}: a CS-MRI checkpoint needs --mask (the sampling mask file)")
        model = load_official(pkl, arch=found, task=task)
    except ValueError as e:  # keys or shapes of another network
        msg = str(e)
        raise UserError(msg if msg.startswith(str(pkl)) else f"{pkl}: {msg}") from e
    op_cfg = operator_config(args, pkl)
    t = build_task(op_cfg)
    if getattr(model, "init", None) == "linear" and getattr(t.op, "qinit", None) is None:
        raise UserError(f"{pkl}: the model starts from Qinit y; pass --qinit (or use the "
                        "authors' matrices)")
    save_checkpoint(out, model, t.op, t.operator_cfg,
                    info={"source": "import-official", "pkl": str(pkl.resolve())})
    print(f"wrote {out} ({found}, operator {op_cfg['kind']}"
          + (f", ratio {op_cfg['ratio']}" if op_cfg["kind"] == "block_cs" else "") + ")")
    return 0
