"""``mri-unfold models`` — the bundled model zoo: names, tasks, scores and training time.

Without arguments a table of every bundled model (``mri_unfold/weights``, see
:mod:`mri_unfold.models.zoo`); ``mri-unfold models NAME`` prints that model's whole
card; ``--json`` prints the cards as JSON.  Any listed name works wherever a checkpoint path
does (``recon --model``, ``compare --model``, ``eval``, ``demo --model``).
"""
from __future__ import annotations

import json

from ..models.zoo import list_cards, load_card
from ..tables import Column, format_table
from .common import add_command

NAME = "models"
HELP = "list the bundled trained models (cards, scores, training time)"
DESCRIPTION = ("List the trained networks bundled with mri-unfold, with their task, score on "
               "brain_test next to the authors' where one exists, training time on this "
               "project's CPU and training protocol; with NAME, print that model's card.")
EXAMPLES = """examples:
  mri-unfold models                                  # the zoo table
  mri-unfold models ista_net_plus_radial20           # one card
  mri-unfold recon scan.nii.gz --model ista_net_plus_radial20 --mask radial --acceleration 5"""

COLUMNS = (Column("name", min_width=24, align="<"), Column("task", align="<"),
           Column("psnr", "brain_test PSNR", ".2f"), Column("ssim", "SSIM", ".4f"),
           Column("authors", "authors' PSNR", ".2f"), Column("hours", "train h", ".2f"),
           Column("protocol", align="<"))


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("name", nargs="?", metavar="NAME", help="show this model's card")
    p.add_argument("--json", action="store_true", help="print the card(s) as JSON")
    p.set_defaults(func=run)


def task_text(card: dict) -> str:
    """``"CS-MRI real, radial 20%"`` / ``"complex 8-coil, random 4x (sim.)"``."""
    if card["task"] == "cs_mri_real":
        return f"CS-MRI real, radial {card['ratio']:.0%}"
    coils = "1-coil" if card["coils"] == 1 else f"{card['coils']}-coil"
    sampling = card["data"].get("trajectory") or card["data"]["mask"]
    return (f"complex {coils}, {sampling} {card['acceleration']:g}x"
            + (" (sim.)" if card["simulation_trained"] else ""))


def card_row(card: dict) -> dict:
    """One table row of a card (hours include a warm start's own training)."""
    score = card["scores"].get("brain_test", {})
    t = card["training"]
    secs = t.get("seconds_including_warm_start", t.get("seconds"))
    return {"name": card["name"], "task": task_text(card), "psnr": score.get("psnr"),
            "ssim": score.get("ssim"), "authors": card.get("reference", {}).get("brain_test_psnr"),
            "hours": secs / 3600 if secs is not None else None, "protocol": card["protocol"]}


def run(args) -> int:
    cards = [load_card(args.name)] if args.name else list_cards()
    if args.json:
        print(json.dumps(cards[0] if args.name else cards, indent=1))
        return 0
    if args.name:
        card = cards[0]
        print(f"{card['name']}: {card['label']} — {task_text(card)}\n{card['description']}\n")
        for key in ("architecture", "model_config", "operator", "mask", "protocol",
                    "simulation_trained", "training", "scores", "reference", "file"):
            if key in card:
                print(f"{key}: {json.dumps(card[key])}")
        return 0
    if not cards:
        print("no bundled models")
        return 0
    print(format_table([card_row(c) for c in cards], COLUMNS))
    return 0
