"""``mri-unfold demo`` — placeholder until the MRI demo lands (issue 5)."""
from __future__ import annotations

NAME = "demo"


def register(sub) -> None:
    p = sub.add_parser(NAME, help="offline brain-MRI reconstruction demo",
                       description="Simulate 20%% radial k-space from a brain MR slice and "
                                   "reconstruct it (zero-filled, L1-wavelet, ISTA-Net+).")
    p.set_defaults(func=run)


def run(args) -> int:
    print("mri-unfold demo: will simulate 20% radial k-space from a brain MR slice shipped with "
          "an installed package and compare zero-filled, L1-wavelet and ISTA-Net+ "
          "reconstructions (not yet implemented).")
    return 0
