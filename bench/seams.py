#!/usr/bin/python3
"""Seam error of chunked (overlap-mode) deconvolution against whole-volume
RL, for halo depths psf//2, psf and 2*psf: a 40x48x56 volume in 20x24x28
chunks, a 9x11x13 PSF, reflect boundary, 50 iterations (as in the README).
The whole-volume reference is halo on one chunk with a 2*psf reflect halo.
Prints max |chunked - whole| / max |whole| per depth.

usage: bench/seams.py [--halo ./halo] [--iterations 50]
"""
import argparse
import os
import shutil
import subprocess
import tempfile

import numpy as np
import tifffile
import zarr

ap = argparse.ArgumentParser()
ap.add_argument("--halo", default=os.path.join(os.path.dirname(__file__), "..", "halo"))
ap.add_argument("--iterations", type=int, default=50)
args = ap.parse_args()

tmp = tempfile.mkdtemp()
rng = np.random.default_rng(3)
shape, chunks, pshape = (40, 48, 56), (20, 24, 28), (9, 11, 13)
img = rng.poisson(50, size=shape).astype(np.float32)
for _ in range(40):
    img[tuple(rng.integers(0, s) for s in shape)] += 2000
g = np.meshgrid(*[np.arange(s) - s // 2 for s in pshape], indexing="ij")
psf = np.exp(-sum((x / (s / 4)) ** 2 for x, s in zip(g, pshape))).astype(np.float32)
tifffile.imwrite(os.path.join(tmp, "psf.tif"), psf, photometric="minisblack")
z = zarr.open(os.path.join(tmp, "in.zarr"), mode="w", shape=shape, chunks=chunks, dtype="f4")
z[:] = img


def run(out, *opts):
    subprocess.run([args.halo, "deconvolve", os.path.join(tmp, "in.zarr"), os.path.join(tmp, "psf.tif"),
                    os.path.join(tmp, out), "--iterations", str(args.iterations), "--quiet",
                    "--overwrite", *opts], check=True, stderr=subprocess.DEVNULL)
    return zarr.open(os.path.join(tmp, out), mode="r")[:]


whole = run("whole.zarr", "--chunks", ",".join(map(str, shape)), "--depth",
            ",".join(str(2 * p) for p in pshape))
print(f"volume {shape}, chunks {chunks}, PSF {pshape}, reflect, {args.iterations} iterations")
for name, depth in [("psf//2", [p // 2 for p in pshape]), ("psf", list(pshape)),
                    ("2*psf", [2 * p for p in pshape])]:
    got = run("chunked.zarr", "--depth", ",".join(map(str, depth)))
    err = np.abs(got - whole).max() / np.abs(whole).max()
    print(f"depth {name:7s} {str(tuple(depth)):14s} max relative difference {err:.1e}")
shutil.rmtree(tmp)
