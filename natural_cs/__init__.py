"""Natural-image block compressive sensing: data sets, data sources (``patches``,
``block_mat``) and the CS-NI evaluation protocol (``cs_ni``).

A plug-in of :mod:`mri_unfold` (it imports ``mri_unfold``, never the reverse): its parts are
registered by :mod:`natural_cs.plugin`, which ``mri_unfold`` loads through the entry point
group ``mri_unfold.plugins``.
"""
