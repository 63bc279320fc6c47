"""halo demo from start to end: it writes image, PSF and truth, deconvolves
into an OME-Zarr that zarr (and so napari) opens, and the error against the
truth falls; the image is the blurred truth with Poisson noise, the same on
every run."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import tifffile
import zarr

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import check, done, halo, path, skip  # noqa: E402

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


def error_vs_truth(x, t, background=10.0):
    """Relative L2 error of x (less the background) against the truth, x
    scaled by the least-squares factor first."""
    a = x.astype(np.float64) - background
    t = t.astype(np.float64)
    scale = (a * t).sum() / (a * a).sum()
    return float(np.sqrt(((scale * a - t) ** 2).sum() / (t * t).sum()))


# The printed figures, recomputed here from the files (the result itself,
# not halo's own arithmetic, must be nearer the truth).
e0, e1 = error_vs_truth(img[:], truth[:]), error_vs_truth(level0[:], truth[:])
check(m is not None and abs(float(m.group(1)) - e0) < 1e-3 and abs(float(m.group(2)) - e1) < 1e-3
      and e1 < 0.9 * e0, f"the deconvolved volume is nearer the truth: {e0:.3f} -> {e1:.3f}, "
      "as printed", r.stdout)
# The image is Poisson noise on the truth blurred by the PSF (periodic, its
# centre voxel at the origin) plus a background of 10: standardised by the
# blur computed here with numpy's FFT, the residual has mean 0 and std 1
# (a blur off by one voxel gives a std of about 1.5).
t = truth[:].astype(np.float64)
P = np.zeros(t.shape)
P[:psf.shape[0], :psf.shape[1], :psf.shape[2]] = psf
P = np.roll(P, [-(s // 2) for s in psf.shape], axis=(0, 1, 2))
blurred = np.fft.irfftn(np.fft.rfftn(t) * np.fft.rfftn(P), s=t.shape) + 10
z = (img[:].astype(np.float64) - blurred) / np.sqrt(blurred)
check(abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01,
      f"image = Poisson(truth * PSF + 10): residual mean {z.mean():.4f}, std {z.std():.4f}")
first = img[:]
r2 = halo("demo", d, "--iterations", "6", "--quiet", check_rc=0)
check(r2.returncode == 0 and r2.stdout == "", "a second run reuses the folder; --quiet is silent",
      r2.stdout + r2.stderr)
check(np.array_equal(zarr.open(os.path.join(d, "image.zarr"), mode="r")[:], first),
      "the second run writes the same image, voxel for voxel")

# A folder with a user's file of one of the demo's names is not the demo's.
u = path("demo-user")
shutil.rmtree(u, ignore_errors=True)
os.makedirs(u)
with open(os.path.join(u, "psf.tif"), "wb") as f:
    f.write(b"the user's own PSF")
r3 = halo("demo", u, "--iterations", "1", "--quiet", check_rc=0)
check(r3.returncode == 1 and r3.stderr.count("\n") == 1 and "psf.tif" in r3.stderr
      and open(os.path.join(u, "psf.tif"), "rb").read() == b"the user's own PSF"
      and sorted(os.listdir(u)) == ["psf.tif"],
      "demo refuses a folder holding a user's file of one of its names, and writes nothing",
      r3.stderr)
# A folder named through one that does not exist yet ("new/..") is the
# folder it names: a user's image.zarr there is seen and kept (the check
# missed it, and a failed run would have removed the folder's contents).
dx = path("demo-dotdot")
shutil.rmtree(dx, ignore_errors=True)
os.makedirs(os.path.join(dx, "image.zarr"))
open(os.path.join(dx, "image.zarr", "mine"), "w").write("the user's")
open(os.path.join(dx, "notes"), "w").write("the user's")
r7 = halo("demo", os.path.join(dx, "new", ".."), "--iterations", "1", "--quiet", check_rc=0)
check(r7.returncode == 1 and "image.zarr: already exists" in r7.stderr and
      open(os.path.join(dx, "image.zarr", "mine")).read() == "the user's" and
      open(os.path.join(dx, "notes")).read() == "the user's",
      "demo DIR spelled 'new/..' refuses a folder holding a user's image.zarr, keeps it",
      r7.stderr)
# --chunks is the run's: auto picks chunks (it wrote the sample files in
# zero-sized chunks and failed); Y,X is a usage error for the 3D sample.
r4 = halo("demo", path("demo-auto"), "--chunks", "auto", "--iterations", "1", check_rc=0)
check(r4.returncode == 0 and "chunks," in r4.stdout, "demo --chunks auto runs", r4.stderr)
r5 = halo("demo", path("demo-yx"), "--chunks", "128,128", check_rc=0)
check(r5.returncode == 2 and "Z,Y,X, N or auto" in r5.stderr and
      not os.path.exists(path("demo-yx")), "demo --chunks Y,X: usage error, nothing written",
      r5.stderr)
# One value is every axis's, as deconvolve takes it (the README says the
# demo takes deconvolve's --chunks; it was refused).
r6 = halo("demo", path("demo-n"), "--chunks", "96", "--iterations", "1", check_rc=0)
check(r6.returncode == 0 and "chunks 96x96x96," in r6.stdout, "demo --chunks N: NxNxN",
      r6.stdout + r6.stderr)
# A demo that fails takes back what it added: the folder it made (a full
# disk left one holding only its marker), or its files in a folder that was
# there; an earlier demo's folder keeps its files for the next run.
small = path("demo-small")
os.makedirs(small, exist_ok=True)
if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", small],
                  capture_output=True).returncode == 0:
    try:
        os.makedirs(os.path.join(small, "there"))
        for sub in ("new/d", "there"):
            r6 = halo("demo", os.path.join(small, sub), "--iterations", "1", "--quiet",
                      check_rc=0)
            left = os.listdir(os.path.join(small, sub.split("/")[0]))
            check(r6.returncode == 1 and r6.stderr.count("\n") == 1 and
                  "No space left" in r6.stderr and left == [],
                  f"demo on a full disk ({sub}): one error, nothing of its own left",
                  (r6.stderr, left))
    finally:
        subprocess.run(["umount", small])
else:
    skip("demo on a full disk", "cannot mount a small tmpfs here")
done()
