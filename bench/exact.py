#!/usr/bin/python3
"""Exact against overlap mode: throughput (whole process, median of --repeat
runs after a warm-up) on a volume in 8 chunks, and the difference of each
mode's result from whole-volume RL (exact mode on one chunk, which equals
the numpy definition in tests/test_exact.py) after 20, 50 and 100
iterations. reflect boundary.

usage: bench/exact.py [--halo ./halo] [--repeat 3]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import numpy as np
import tifffile
import zarr

ap = argparse.ArgumentParser()
ap.add_argument("--halo", default=os.path.join(os.path.dirname(__file__), "..", "halo"))
ap.add_argument("--repeat", type=int, default=3)
args = ap.parse_args()

tmp = tempfile.mkdtemp()
rng = np.random.default_rng(2)
shape, chunks, pshape = (64, 192, 192), (32, 96, 96), (9, 11, 13)
img = rng.poisson(50, size=shape).astype(np.float32)
for _ in range(200):
    img[tuple(rng.integers(0, s) for s in shape)] += 3000
g = np.meshgrid(*[np.arange(s) - s // 2 for s in pshape], indexing="ij")
psf = np.exp(-sum((x / (s / 4)) ** 2 for x, s in zip(g, pshape))).astype(np.float32)
src, psfp = os.path.join(tmp, "in.zarr"), os.path.join(tmp, "psf.tif")
zarr.open(src, mode="w", shape=shape, chunks=chunks, dtype="f4")[:] = img
tifffile.imwrite(psfp, psf, photometric="minisblack")


def run(out, iters, *opts):
    subprocess.run([args.halo, "deconvolve", src, psfp, os.path.join(tmp, out), "--iterations",
                    str(iters), "--quiet", "--overwrite", *opts], check=True,
                   stderr=subprocess.DEVNULL)
    return os.path.join(tmp, out)


modes = {
    "exact": ["--mode", "exact"],
    "overlap depth psf//2": ["--depth", ",".join(str(p // 2) for p in pshape)],
    "overlap depth psf": ["--depth", ",".join(map(str, pshape))],
}
times = {}
for name, opts in modes.items():
    run("t.zarr", 20, *opts)
    t = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        run("t.zarr", 20, *opts)
        t.append(time.perf_counter() - t0)
    times[name] = (statistics.median(t), min(t), max(t))
mvox = np.prod(shape) / 1e6
print(f"volume {shape} in {chunks} chunks, PSF {pshape}, reflect, 20 iterations, "
      f"{args.repeat} runs after a warm-up")
base = times["overlap depth psf//2"][0]
for name, (med, lo, hi) in times.items():
    print(f"{name:22s} {med:7.2f} s (min {lo:.2f}, max {hi:.2f})  {mvox * 20 / med:6.1f} Mvox*iter/s"
          f"  {base / med:5.2f}x the psf//2 overlap throughput")
print("max |mode - whole volume| / max |whole volume|:")
print(f"{'':22s} " + " ".join(f"{n:>9d}" for n in (20, 50, 100)))
errs = {name: [] for name in modes}
for iters in (20, 50, 100):
    whole = zarr.open(run("whole.zarr", iters, "--mode", "exact", "--chunks",
                          ",".join(map(str, shape))), mode="r")[:]
    for name, opts in modes.items():
        got = zarr.open(run("m.zarr", iters, *opts), mode="r")[:]
        errs[name].append(np.abs(got - whole).max() / np.abs(whole).max())
for name, e in errs.items():
    print(f"{name:22s} " + " ".join(f"{v:9.1e}" for v in e))
shutil.rmtree(tmp)
