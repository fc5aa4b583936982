"""The data-source registry: ``data.kind`` names a registered :class:`DataSource`.

A data source only *reads*: it knows its file format (and recognises it by content,
:meth:`DataSource.detect`), owns its protocol keys (:attr:`DataSource.options`, validated
in its own module by :meth:`DataSource.check_options`) and opens a path as a
:class:`torch.utils.data.Dataset`.  What the items are is declared by :attr:`DataSource.yields`:

* ``"image"`` — ``(1, H, W)`` tensors (float32 real, or complex64), measured by the
  protocol's operator (block CS, simulated Fourier sampling, ...);
* ``"kspace"`` — :class:`~mri_unfold.data.samples.KSpaceSample` objects that carry their own
  mask and coil maps, stacked by :func:`~mri_unfold.data.samples.collate_samples`.

Adding a source is one module plus ``@register_source`` (see ``docs/architecture.md``).
Plug-in packages register theirs through :mod:`mri_unfold.plugins` (``natural_cs`` adds
``patches`` and ``block_mat``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch.utils.data import Dataset

from ...errors import UserError
from ...plugins import load_plugins, registered

__all__ = ["DataSource", "register_source", "source_kinds", "get_source", "detect_source",
           "YIELDS", "sources_with_option"]

#: What a source's items are.
YIELDS = ("image", "kspace")

_SOURCES: dict[str, type["DataSource"]] = {}


class DataSource:
    """Base class of a registered data kind (subclass it and decorate with
    :func:`register_source`).

    Class attributes:
        kind: the ``data.kind`` name.
        yields: ``"image"`` or ``"kspace"`` (:data:`YIELDS`).
        options: the source's own protocol keys, ``{key: (type, default)}``; the protocol
            table ``data`` accepts the common keys (``kind``, ``train``, ``val``,
            ``max_images``, ``num_workers``) plus these.
        choices: allowed values of string options, ``{key: (value, ...)}``.
        operator_kind: for k-space sources, the ``operator.kind`` that goes with them.
        description: one line for listings.
    """

    kind: ClassVar[str] = ""
    yields: ClassVar[str] = "image"
    options: ClassVar[dict[str, tuple[type, Any]]] = {}
    choices: ClassVar[dict[str, tuple]] = {}
    operator_kind: ClassVar[str] = "kspace"
    description: ClassVar[str] = ""

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        """Validate value ranges of the source's own options (types and choices are checked
        by the protocol loader).  Raise :class:`~mri_unfold.errors.UserError` naming
        ``where`` (the protocol file) and the key."""

    @classmethod
    def detect(cls, path: Path) -> bool:
        """Whether ``path`` holds this source's format, judged by content (not only the
        name).  Sources that cannot be recognised from one file return False."""
        return False

    @classmethod
    def files(cls, path: str | Path, max_items: int = 0) -> list[Path]:
        """The files of ``path`` this source reads: ``[path]`` for a file, else the files of
        the folder that :meth:`detect` recognises (sorted); the first ``max_items`` (0 = all).

        Raises:
            FileNotFoundError: ``path`` missing.  UserError: a folder without such files.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such {cls.kind} file or folder")
        found = [path] if path.is_file() else sorted(p for p in path.iterdir() if cls.detect(p))
        if not found:
            raise UserError(f"{path}: folder holds no {cls.kind} files")
        return found[:max_items] if max_items else found

    @classmethod
    def read(cls, path: str | Path, options: dict | None = None) -> Dataset:
        """k-space sources: the slices of one file exactly as stored, as
        :class:`~mri_unfold.data.KSpaceSample` items (``mask`` measured from the data, no
        undersampling, coil maps or normalisation) — what ``mri-unfold recon`` and ``info``
        start from.  ``options``: the source's own options that change how a file is read
        (e.g. the axis order of a plain array); missing keys take their defaults.  Image
        sources do not implement it."""
        raise NotImplementedError(f"data source {cls.kind!r} yields {cls.yields} items; it has "
                                  "no k-space reader")

    @classmethod
    def open(cls, path: str | Path, options: dict, *, seed: int = 0,
             patch_size: int | None = None, max_items: int = 0,
             for_training: bool = True) -> Dataset:
        """The data set of ``path`` (a file or folder).

        Args:
            options: the source's options (every key of :attr:`options`, defaults filled).
            seed: the protocol seed (random crops, patches, masks).
            patch_size: the training stage's patch size, for sources that cut patches.
            max_items: use only the first N files/volumes/images (0 = all).
            for_training: k-space sources attach the complex training image
                (``KSpaceSample.image``, needs fully sampled data); False for evaluation.
        """
        raise NotImplementedError(f"data source {cls.kind!r} does not implement open()")


def register_source(cls: type[DataSource]) -> type[DataSource]:
    """Class decorator: register ``cls`` under ``cls.kind``.

    Raises:
        ValueError: missing kind, an unknown ``yields``, or a kind registered twice by
            another class.
    """
    if not cls.kind:
        raise ValueError(f"{cls.__name__}: a data source needs a non-empty 'kind'")
    if cls.yields not in YIELDS:
        raise ValueError(f"{cls.__name__}: yields must be one of {YIELDS}, got {cls.yields!r}")
    other = _SOURCES.get(cls.kind)
    if other is not None and other.__qualname__ != cls.__qualname__:
        raise ValueError(f"data kind {cls.kind!r} is registered twice ({other.__name__}, "
                         f"{cls.__name__})")
    _SOURCES[cls.kind] = cls
    return cls


def source_kinds() -> list[str]:
    """Registered ``data.kind`` names (plug-ins included), sorted."""
    load_plugins()
    return sorted(_SOURCES)


def get_source(kind: str) -> type[DataSource]:
    """The source class of ``data.kind``.

    Raises:
        UserError: unknown kind (lists the registered ones).
    """
    source = registered(_SOURCES, kind)
    if source is None:
        raise UserError(f"data.kind = {kind!r} is not a registered data source; valid kinds: "
                        f"{', '.join(source_kinds())}")
    return source


def sources_with_option(key: str) -> list[str]:
    """The kinds whose own options include ``key`` (sorted)."""
    return [k for k in source_kinds() if key in _SOURCES[k].options]


def detect_source(path: str | Path) -> str | None:
    """The kind of the first registered source that recognises ``path`` by content, or None."""
    path = Path(path)
    for kind in source_kinds():
        if _SOURCES[kind].detect(path):
            return kind
    return None
