"""The bundled model zoo: trained networks inside the package, each with a JSON card.

Files (``mri_unfold/weights/``): ``<name>.safetensors`` — an mri-unfold checkpoint
(:mod:`mri_unfold.checkpoints` format: tensors ``model/…`` and ``operator/…``, metadata
``arch``, ``model_config``, ``operator``) — and ``<name>.json``, its card:

=====================  ===============================================================
key                    meaning
=====================  ===============================================================
``card_version``       1
``name``               the zoo name (= the file stem)
``label``              display name (demo, figures)
``architecture``       registered model name; ``model_config`` its ``build`` config
``task``               ``cs_mri_real`` (real-valued single-coil CS-MRI, image operator)
                       or ``kspace_complex`` (complex images from multi-/single-coil
                       k-space, the operator comes with the data)
``description``        one paragraph
``operator``           the operator table the checkpoint stores (``kind`` + settings)
``mask``, ``ratio``,   the sampling the network was trained for (``acceleration`` and
``acceleration``,      ``coils`` for k-space models)
``coils``
``protocol``           the training protocol (path in the repository)
``simulation_trained`` whether the training data were simulated k-space
``training``           ``steps``, ``epochs``, ``images_seen``, ``seconds`` (wall clock
                       of this project's CPU, all stages), ``machine``, ``notes``
``scores``             ``{set: {"protocol", "psnr", "ssim", ...}}`` re-measured from the
                       bundled file (``tests/test_zoo_scores.py``, marker ``full``)
``reference``          the authors' number for the same task where one exists
``file``               ``sha256`` and ``bytes`` of the ``.safetensors`` file
=====================  ===============================================================

:func:`pretrained` returns the network with its operator settings; :func:`resolve_weights`
turns a zoo name or a path into a checkpoint path (every command that takes a checkpoint
uses it through :func:`mri_unfold.checkpoints.load_checkpoint`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..errors import UserError
from ..operators import KSPACE_OPERATOR_KINDS, KSpaceOperatorFactory, build_operator
from .registry import build

__all__ = ["CARD_KEYS", "Pretrained", "zoo_dir", "model_names", "load_card", "list_cards",
           "best_models", "resolve_weights", "verify_file", "pretrained"]

#: Keys every card has (:func:`load_card` checks them).
CARD_KEYS = ("card_version", "name", "label", "architecture", "model_config", "task",
             "description", "operator", "protocol", "simulation_trained", "training", "scores",
             "file")
TASKS = ("cs_mri_real", "kspace_complex")


def zoo_dir() -> Path:
    """``mri_unfold/weights`` of the installed package."""
    return Path(__file__).resolve().parent.parent / "weights"


def model_names(folder: str | Path | None = None) -> list[str]:
    """Names of the zoo models (a ``.safetensors`` file with a ``.json`` card), sorted."""
    folder = Path(folder) if folder is not None else zoo_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.safetensors") if p.with_suffix(".json").is_file())


def load_card(name: str, folder: str | Path | None = None) -> dict:
    """The card of zoo model ``name``.

    Raises:
        UserError: not a zoo model (the message lists them), or a card that is not valid
            JSON / lacks keys of :data:`CARD_KEYS`.
    """
    folder = Path(folder) if folder is not None else zoo_dir()
    path = folder / f"{name}.json"
    if name not in model_names(folder):
        raise UserError(f"{name!r} is not a bundled model; bundled: "
                        f"{', '.join(model_names(folder)) or 'none'}")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a valid model card ({e})") from e
    missing = [k for k in CARD_KEYS if k not in card] if isinstance(card, dict) else CARD_KEYS
    if missing or card.get("task") not in TASKS or card.get("name") != name:
        raise UserError(f"{path}: not a valid model card (missing {list(missing)}, task "
                        f"{card.get('task') if isinstance(card, dict) else None!r}, or a name "
                        f"other than {name!r})")
    return card


def list_cards(folder: str | Path | None = None) -> list[dict]:
    """Every card of the zoo, sorted by name."""
    return [load_card(n, folder) for n in model_names(folder)]


def best_models(ratio: float, task: str = "cs_mri_real",
                folder: str | Path | None = None) -> list[str]:
    """For each architecture, the zoo model of ``task`` trained for sampling ``ratio`` with
    the highest ``brain_test`` PSNR (names sorted by architecture; empty when none fits)."""
    best: dict[str, tuple[float, str]] = {}
    for card in list_cards(folder):
        if card["task"] != task or abs(float(card.get("ratio", -1)) - ratio) > 1e-6:
            continue
        score = card["scores"].get("brain_test", {}).get("psnr", float("-inf"))
        arch = card["architecture"]
        if arch not in best or score > best[arch][0]:
            best[arch] = (score, card["name"])
    return [best[a][1] for a in sorted(best)]


def resolve_weights(spec: str | Path, folder: str | Path | None = None) -> Path:
    """A checkpoint path for ``spec``: an existing file as given, else the zoo model of that
    name.

    Raises:
        FileNotFoundError: neither a file nor a zoo name (the message lists the zoo).
    """
    path = Path(spec)
    if path.exists():
        return path
    folder = Path(folder) if folder is not None else zoo_dir()
    names = model_names(folder)
    if str(spec) in names:
        return folder / f"{spec}.safetensors"
    raise FileNotFoundError(f"{spec}: checkpoint file not found, and not a bundled model name "
                            f"(bundled: {', '.join(names) or 'none'})")


def verify_file(name: str, folder: str | Path | None = None) -> Path:
    """Check the weights file of ``name`` against its card's SHA-256; returns its path.

    Raises:
        UserError: the file differs from the one the card describes.
    """
    folder = Path(folder) if folder is not None else zoo_dir()
    card = load_card(name, folder)
    path = folder / f"{name}.safetensors"
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != card["file"]["sha256"]:
        raise UserError(f"{path}: SHA-256 {got[:12]}… differs from its card "
                        f"({card['file']['sha256'][:12]}…); the bundled file was modified")
    return path


@dataclass
class Pretrained:
    """A zoo model ready to use.

    Attributes:
        model: the network (float32, eval mode).
        operator_cfg: the operator settings it was trained with (the card's ``operator``).
        operator: the rebuilt image operator (``cs_mri_real``: a
            :class:`~mri_unfold.operators.SingleCoilFourier` with the training mask), or a
            :class:`~mri_unfold.operators.KSpaceOperatorFactory` for k-space models, whose
            masks and coil maps come with the data.
        card: the card (:func:`load_card`).
    """

    model: torch.nn.Module
    operator_cfg: dict
    operator: object
    card: dict = field(default_factory=dict)


def pretrained(name: str, device: str | torch.device = "cpu",
               folder: str | Path | None = None) -> Pretrained:
    """Load zoo model ``name`` (its file verified against the card).

    Example:
        >>> from mri_unfold.models import pretrained            # doctest: +SKIP
        >>> p = pretrained("ista_net_plus_radial20")            # doctest: +SKIP
        >>> x = p.model(p.operator(image), p.operator)          # doctest: +SKIP
    Raises:
        UserError: unknown name, modified file, weights not fitting the card's model.
    """
    path = verify_file(name, folder)
    card = load_card(name, folder)
    try:
        with safe_open(str(path), "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            stored_op = json.loads((f.metadata() or {}).get("operator") or "{}")
    except (SafetensorError, OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable weights ({e})") from e
    state = {k[len("model/"):]: v.float() for k, v in tensors.items() if k.startswith("model/")}
    model = build(card["architecture"], **card["model_config"])
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not fit the card's {card['architecture']!r} "
                        f"{card['model_config']}") from e
    op_cfg = dict(card["operator"])
    if op_cfg.get("kind") in KSPACE_OPERATOR_KINDS:
        op = KSpaceOperatorFactory()
    else:  # the file's own table (it knows the layout of the stored mask)
        op = build_operator(stored_op or op_cfg, tensors={
            k[len("operator/"):]: v for k, v in tensors.items() if k.startswith("operator/")})
        op = op.to(device)
    return Pretrained(model.to(device).eval(), op_cfg, op, card)
