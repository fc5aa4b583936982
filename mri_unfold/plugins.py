"""Plug-ins: packages that add data sources, operators, models or evaluation protocols.

A plug-in is a module named in the entry-point group :data:`GROUP` of an installed
distribution; importing it registers its parts with the registries of this package
(:func:`mri_unfold.data.sources.register_source`,
:func:`mri_unfold.evaluation.protocols.register_protocol`, ...).  The registries call
:func:`load_plugins` before they list their entries or report an unknown name, so
``mri_unfold`` never imports a plug-in statically (``natural_cs`` is one: it depends on
``mri_unfold``, not the reverse).

Declare one in ``pyproject.toml``::

    [project.entry-points."mri_unfold.plugins"]
    my_plugin = "my_package.mri_unfold_plugin"
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points

__all__ = ["GROUP", "load_plugins", "registered"]

GROUP = "mri_unfold.plugins"
_loaded: list[str] | None = None


def load_plugins() -> list[str]:
    """Import every plug-in module of the entry-point group :data:`GROUP` once.

    Returns:
        The module names imported (in entry-point order); later calls return the same list.
    Raises:
        ImportError: a declared plug-in module cannot be imported (the error names it).
    """
    global _loaded
    if _loaded is None:
        names: list[str] = []
        for ep in entry_points(group=GROUP):
            try:
                importlib.import_module(ep.value.split(":")[0])
            except ImportError as e:
                raise ImportError(f"mri-unfold plug-in {ep.name!r} ({ep.value}) cannot be "
                                  f"imported: {e}") from e
            names.append(ep.value)
        _loaded = names
    return list(_loaded)


def registered(table: dict, name: str):
    """``table[name]`` of a registry, loading the plug-ins first when ``name`` is missing;
    ``None`` when it is still missing."""
    if name not in table:
        load_plugins()
    return table.get(name)
