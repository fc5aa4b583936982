"""The ``natural_cs`` plug-in of mri-unfold (entry point group ``mri_unfold.plugins``):
importing it registers the ``patches`` and ``block_mat`` data sources and the ``cs_ni``
evaluation protocol."""
from . import evaluate, sources  # noqa: F401  (registration happens on import)
