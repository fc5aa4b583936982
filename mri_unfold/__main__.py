"""``python -m mri_unfold`` (also what ``torchrun -m mri_unfold`` runs)."""
import sys

from .cli import main

sys.exit(main())
