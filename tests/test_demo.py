"""halo demo from start to end: it writes image, PSF and truth, deconvolves
into an OME-Zarr that zarr (and so napari) opens, and the error against the
truth falls."""
import json
import os
import re
import sys

import numpy as np
import tifffile
import zarr

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import check, done, halo, path  # noqa: E402

d = path("demo")
r = halo("demo", d, "--iterations", "6", check_rc=0)
check(r.returncode == 0, "halo demo exits 0", r.stderr)
m = re.search(r"image ([0-9.]+) -> deconvolved ([0-9.]+)", r.stdout)
check(m is not None and float(m.group(2)) < float(m.group(1)),
      "the error against the truth falls", r.stdout)
check(re.search(r"[0-9.]+ Mvox\*iter/s", r.stdout) is not None, "throughput is reported")
img = zarr.open(os.path.join(d, "image.zarr"), mode="r")
truth = zarr.open(os.path.join(d, "truth.zarr"), mode="r")
psf = tifffile.imread(os.path.join(d, "psf.tif"))
check(img.shape == (96, 256, 256) and img.dtype == np.uint16, "image: 96x256x256 uint16")
check(truth.shape == img.shape and truth[:].max() > 0, "truth written")
check(psf.ndim == 3 and abs(float(psf.sum()) - 1) < 1e-4, "PSF is 3D and sums to 1")
out = os.path.join(d, "deconvolved.ome.zarr")
ms = json.load(open(os.path.join(out, ".zattrs")))["multiscales"][0]
level0 = zarr.open(os.path.join(out, ms["datasets"][0]["path"]), mode="r")
check(level0.shape == img.shape and level0.dtype == np.float32, "result: OME-Zarr level 0")
check(np.isfinite(level0[:]).all() and level0[:].min() >= 0, "result is finite and non-negative")
r2 = halo("demo", d, "--iterations", "6", "--quiet", check_rc=0)
check(r2.returncode == 0 and r2.stdout == "", "a second run reuses the folder; --quiet is silent",
      r2.stdout + r2.stderr)
done()
