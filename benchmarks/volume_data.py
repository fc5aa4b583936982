"""Write the two test volumes of docs/volumes.md into a folder, from packages installed with
mri-unfold (nothing is downloaded):

* ``mni152_1mm.nii.gz`` — the MNI152 T1 template at 1 mm that nilearn ships
  (``nilearn.datasets.load_mni152_template(resolution=1)``, 197 x 233 x 189, values in [0, 1]);
* ``epi_example4d.nii.gz`` — the first volume of nibabel's ``example4d.nii.gz`` test file, a
  real acquired brain EPI (128 x 96 x 24, 2 x 2 x 2.2 mm, int16), header and affine kept;
* ``mni152_split/train.nii.gz`` and ``mni152_split/test.nii.gz`` — the template cut along
  its array axis 1 at index 116 (affines moved with the cut): the training and test
  ky-kz planes of ``protocols/study_kykz_masks.toml``.

Usage: ``python benchmarks/volume_data.py OUT_DIR`` (existing files are left alone).
"""
from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from nilearn.datasets import load_mni152_template

from mri_unfold.atomic import atomic_output


def write_volumes(out_dir: Path) -> list[Path]:
    """Write both volumes (module doc) into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    mni = out_dir / "mni152_1mm.nii.gz"
    if not mni.exists():
        with atomic_output(mni, ".nii.gz") as tmp:
            load_mni152_template(resolution=1).to_filename(str(tmp))
    epi = out_dir / "epi_example4d.nii.gz"
    if not epi.exists():
        src = nib.load(Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz")
        vol = np.asarray(src.dataobj)[..., 0]
        hdr = src.header.copy()
        hdr.set_data_shape(vol.shape)
        with atomic_output(epi, ".nii.gz") as tmp:
            nib.save(nib.Nifti1Image(vol, src.affine, hdr), str(tmp))
    split = out_dir / "mni152_split"
    split.mkdir(exist_ok=True)
    img = nib.load(mni)
    for name, sl in (("train", slice(0, 116)), ("test", slice(116, None))):
        part = split / f"{name}.nii.gz"
        if not part.exists():
            with atomic_output(part, ".nii.gz") as tmp:
                nib.save(img.slicer[:, sl, :], str(tmp))
    return [mni, epi, split / "train.nii.gz", split / "test.nii.gz"]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    for p in write_volumes(Path(sys.argv[1])):
        img = nib.load(p)
        print(f"{p}  {img.shape}  voxel {tuple(float(z) for z in img.header.get_zooms()[:3])} mm")
