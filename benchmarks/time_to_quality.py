"""Time to quality: validation PSNR against training wall-clock time, one run per variant.

Trains a protocol from its seeded initialisation with the engine (``mri_unfold.training``)
for ``--minutes`` of training time (``training.max_seconds``), validating every
``--val-every`` steps on the first ``--val-images`` images of the protocol's evaluation set
(the engine's own validation, fp32 eager).  Validation time is measured and **not** counted
as training time, so variants with different step costs compare at equal training
wall-clock.  Writes ``RUN_DIR/time_to_quality.json``; ``plot`` draws several of them, and
also the validation curves of plain ``mri-unfold train`` run folders (from ``log.jsonl``).

    python benchmarks/time_to_quality.py run protocols/zoo/ttq_ista_net_plus_radial20.toml \\
        --variant fast --minutes 30 --run-dir runs/ttq_fast
    python benchmarks/time_to_quality.py run ... --variant fp32 --run-dir runs/ttq_fp32
    python benchmarks/time_to_quality.py plot runs/ttq_fp32 runs/ttq_fast --out curve.png
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mri_unfold.atomic import atomic_write_text  # noqa: E402
from mri_unfold.figures import line_plot  # noqa: E402
from mri_unfold.training.config import load_protocol  # noqa: E402
from mri_unfold.training.loop import Trainer  # noqa: E402
from mri_unfold.training.zoo_export import run_time  # noqa: E402

#: variant -> protocol overrides (fp32: the plain engine step; fast: the measured fast path)
VARIANTS = {
    "fp32": ["training.precision=\"fp32\"", "training.compile=false",
             "training.channels_last=false"],
    "fast": ["training.precision=\"bf16\"", "training.compile=true",
             "training.channels_last=true"],
    "protocol": [],
}


def run_variant(protocol: str, variant: str, minutes: float, run_dir: str, val_every: int,
                val_images: int, overrides: list[str]) -> dict:
    """Train (module doc); returns and writes ``{"points": [{"step", "train_s", "psnr",
    "ssim"}], ...}`` (point 0: the initial weights)."""
    cfg = load_protocol(protocol, [*VARIANTS[variant], f"training.max_seconds={minutes * 60}",
                                   f"evaluation.max_images={val_images}", "evaluation.every=0",
                                   "training.progress=false", *overrides])
    out = {"protocol": protocol, "variant": variant, "minutes": minutes,
           "overrides": [*VARIANTS[variant], *overrides], "points": [],
           "loadavg_start": os.getloadavg()}
    spent = {"val": 0.0}

    def validate(tr: Trainer) -> None:
        t0 = time.perf_counter()
        res = tr.validate()
        spent["val"] += time.perf_counter() - t0
        train_s = time.perf_counter() - tr.started[0] - spent["val"] if tr.step else 0.0
        out["points"].append({"step": tr.step, "train_s": round(train_s, 1),
                              "psnr": res["psnr"], "ssim": res["ssim"]})
        atomic_write_text(Path(run_dir) / "time_to_quality.json", json.dumps(out, indent=1))

    trainer = Trainer(cfg, run_dir, progress=False)
    trainer.started = (time.perf_counter(), 0)
    validate(trainer)

    def on_step(tr: Trainer) -> None:
        if tr.step % val_every == 0:
            validate(tr)
            tr.tcfg["max_seconds"] = minutes * 60 + spent["val"]  # validation not counted

    trainer.on_step = on_step
    trainer.run()
    if not out["points"] or out["points"][-1]["step"] != trainer.step:
        validate(trainer)
    out["loadavg_end"] = os.getloadavg()
    atomic_write_text(Path(run_dir) / "time_to_quality.json", json.dumps(out, indent=1))
    return out


def curve(run_dir: str) -> tuple[str, list[tuple[float, float]]]:
    """``(label, [(training minutes, validation PSNR)])`` of one run folder: its
    ``time_to_quality.json`` (a run of this script, validation time excluded; the JSON file
    itself is accepted too, e.g. a copy kept in ``benchmarks/results/``) or else the
    validations in the engine's ``log.jsonl`` (any ``mri-unfold train`` run, timed by
    :func:`run_time`, which counts the engine's validations: the label says so)."""
    path = Path(run_dir)
    ttq_file = path if path.suffix == ".json" else path / "time_to_quality.json"
    if ttq_file.is_file():
        res = json.loads(ttq_file.read_text())
        name = Path(res["protocol"]).stem if ttq_file == path else path.name
        return (f"{name} ({res['variant']})",
                [(p["train_s"] / 60, p["psnr"]) for p in res["points"]])
    if not (path / "log.jsonl").is_file():
        raise FileNotFoundError(f"{run_dir}: neither time_to_quality.json nor log.jsonl (expected "
                                "a run folder of this script or of `mri-unfold train`)")
    vals = run_time(path)["validations"]
    return f"{path.name} (validations included)", [(sec / 60, psnr) for _, sec, psnr in vals]


def plot(run_dirs: list[str], out: str, title: str) -> Path:
    """Validation PSNR vs training minutes of each run folder (:func:`curve`) as a PNG."""
    return line_plot([(label, [m for m, _ in pts], [v for _, v in pts])
                      for label, pts in map(curve, run_dirs)], out,
                     xlabel="training wall-clock (min; validation excluded unless the label "
                            "says)", ylabel="validation PSNR (dB)", title=title)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("protocol")
    r.add_argument("--variant", choices=list(VARIANTS), default="fast")
    r.add_argument("--minutes", type=float, default=30.0)
    r.add_argument("--run-dir", required=True)
    r.add_argument("--val-every", type=int, default=25, help="steps between validations")
    r.add_argument("--val-images", type=int, default=10)
    r.add_argument("--override", action="append", default=[])
    g = sub.add_parser("plot")
    g.add_argument("run_dirs", nargs="+")
    g.add_argument("--out", required=True)
    g.add_argument("--title", default="time to quality")
    a = p.parse_args(argv)
    if a.cmd == "run":
        res = run_variant(a.protocol, a.variant, a.minutes, a.run_dir, a.val_every,
                          a.val_images, a.override)
        for pt in res["points"]:
            print(f"step {pt['step']:5d}  {pt['train_s'] / 60:6.1f} min  PSNR {pt['psnr']:.2f}")
        return 0
    print(plot(a.run_dirs, a.out, a.title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
