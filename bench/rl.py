#!/usr/bin/python3
"""Benchmark of the RL kernel on one chunk: halo (one 128x256x256 float32
chunk, periodic, no halo, so the task is the codelet plus chunk I/O) against
scipy.fft float32 RL with workers = cores and a numpy RL in the seed's style
(numpy.fft, float64 inside). 15^3 PSF, 20 iterations. Runs go in rounds
of one run of each tool; each figure is the
median of --repeat rounds after a warm-up round, with min and max; ratios are
measured in this one run.

usage: bench/rl.py [--repeat 3] [--halo ./halo] [--sched dmda] [--deconwolf PATH]

--deconwolf PATH adds deconwolf (dw, a C + FFTW RL tool built separately;
nothing of it is in halo) in plain-RL periodic mode on the same image and
PSF, timed as a whole process like halo.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import numpy as np
import scipy.fft
import tifffile
import zarr

ap = argparse.ArgumentParser()
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--halo", default=os.path.join(os.path.dirname(__file__), "..", "halo"))
ap.add_argument("--sched", default="dmda")
ap.add_argument("--deconwolf", default=None)
ap.add_argument("--iterations", type=int, default=20)
ap.add_argument("--shape", default="128,256,256")
args = ap.parse_args()

shape = tuple(int(v) for v in args.shape.split(","))
iters = args.iterations
cores = os.cpu_count()
tmp = tempfile.mkdtemp()
rng = np.random.default_rng(0)
img = (rng.poisson(100, size=shape) + 10).astype(np.float32)
g = np.meshgrid(*[np.arange(15) - 7] * 3, indexing="ij")
psf = np.exp(-(g[0] ** 2 / 8 + g[1] ** 2 / 3 + g[2] ** 2 / 3)).astype(np.float32)
psf /= psf.sum()
src, psf_path, out = (os.path.join(tmp, n) for n in ("in.zarr", "psf.tif", "out.zarr"))
zarr.open(src, mode="w", shape=shape, chunks=shape, dtype="f4", compressor=None)[:] = img
tifffile.imwrite(psf_path, psf, photometric="minisblack")
img_tif = os.path.join(tmp, "image.tif")
tifffile.imwrite(img_tif, img, photometric="minisblack")


def otf(dtype, fft):
    pad = np.zeros(shape, dtype=dtype)
    pad[:15, :15, :15] = psf
    pad = np.roll(pad, (-7, -7, -7), axis=(0, 1, 2))
    return fft(pad)


H32 = otf(np.float32, lambda a: scipy.fft.rfftn(a, workers=cores))
H64 = otf(np.float64, np.fft.rfftn)


def run_halo():
    subprocess.run([args.halo, "deconvolve", src, psf_path, out, "--boundary", "periodic",
                    "--depth", "0,0,0", "--iterations", str(iters), "--overwrite", "--quiet",
                    "--ncuda", "0", "--sched", args.sched], check=True)


def run_deconwolf():
    subprocess.run([args.deconwolf, "--iter", str(iters), "--method", "rl", "--periodic",
                    "--threads", str(cores), "--overwrite", "--float", img_tif, psf_path],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_scipy():
    est = img.copy()
    for _ in range(iters):
        conv = scipy.fft.irfftn(scipy.fft.rfftn(est, workers=cores) * H32, s=shape, workers=cores)
        ratio = img / np.maximum(conv, np.float32(1e-12))
        est *= scipy.fft.irfftn(scipy.fft.rfftn(ratio, workers=cores) * np.conj(H32), s=shape,
                                workers=cores)
    return est


def run_numpy():
    est = img.astype(np.float64)
    for _ in range(iters):
        conv = np.fft.irfftn(np.fft.rfftn(est) * H64, s=shape)
        ratio = img / np.maximum(conv, 1e-12)
        est = est * np.fft.irfftn(np.fft.rfftn(ratio) * np.conj(H64), s=shape)
    return est


def measure(tools):
    """Rounds of one run of every tool (the first round a warm-up), so that
    the machine's slow minutes fall on all tools alike; a tool with fewer
    runs drops out of the later rounds."""
    times = {name: [] for name, _, _ in tools}
    for r in range(max(n for _, _, n in tools) + 1):
        for name, fn, n in tools:
            if r <= n:
                t0 = time.perf_counter()
                fn()
                if r:
                    times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(t), min(t), max(t)) for name, t in times.items()}


tools = [("halo (whole process)", run_halo, args.repeat)]
if args.deconwolf:
    tools.append(("deconwolf (whole process)", run_deconwolf, args.repeat))
tools += [("scipy.fft float32", run_scipy, args.repeat),
          ("numpy (seed style)", run_numpy, max(1, args.repeat // 2))]
res = measure(tools)
mvox = np.prod(shape) / 1e6
h = res["halo (whole process)"][0]
print(f"one chunk {shape} float32, PSF 15^3, {iters} iterations, {cores} cores, "
      f"halo --sched {args.sched}")
print(f"{'':25s} {'median s':>9s} {'min':>7s} {'max':>7s} {'Mvox*iter/s':>12s} {'halo speed-up':>14s}")
for name, (med, lo, hi) in res.items():
    print(f"{name:25s} {med:9.2f} {lo:7.2f} {hi:7.2f} {mvox * iters / med:12.1f} {med / h:13.2f}x")
got = zarr.open(out, mode="r")[:]
ref = run_scipy()
print(f"halo vs scipy result: max relative difference "
      f"{np.abs(got - ref).max() / np.abs(ref).max():.1e}")
shutil.rmtree(tmp)
