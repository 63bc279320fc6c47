"""halo deconvolve --mode exact against whole-volume Richardson-Lucy as
defined by the exact mode: each convolution pads the volume by the boundary
rule (estimate: n-1-c before and c after; ratio: mirrored, and padded with
1 under a constant boundary), convolves circularly and crops. The reference
is numpy float64, computed here; errors are max |halo - ref| / max |ref|."""
import os
import shutil
import subprocess
import sys

import numpy as np
import tifffile
import zarr

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import HALO, check, done, halo, interrupt, path  # noqa: E402

rng = np.random.default_rng(11)
MODES = {"periodic": "wrap", "reflect": "symmetric", "nearest": "edge"}


def whole_rl(img, psf, iters, boundary, value):
    n = psf.shape
    c = [k // 2 for k in n]
    before = [k - 1 - cc for k, cc in zip(n, c)]

    def otf(shape):
        pad = np.zeros(shape)
        pad[:n[0], :n[1], :n[2]] = psf
        return np.fft.rfftn(np.roll(pad, [-k for k in c], axis=(0, 1, 2)))

    def pad(x, b, a, v):
        w = list(zip(b, a))
        if boundary == "constant":
            return np.pad(x, w, mode="constant", constant_values=v)
        return np.pad(x, w, mode=MODES[boundary])

    def crop(x, b):
        return x[b[0]:b[0] + img.shape[0], b[1]:b[1] + img.shape[1], b[2]:b[2] + img.shape[2]]

    im = img.astype(np.float64)
    est = im.copy()
    for _ in range(iters):
        p = pad(est, before, c, value)
        conv = crop(np.fft.irfftn(np.fft.rfftn(p) * otf(p.shape), s=p.shape), before)
        ratio = im / np.maximum(conv, 1e-12)
        p = pad(ratio, c, before, 1.0)
        est = est * crop(np.fft.irfftn(np.fft.rfftn(p) * np.conj(otf(p.shape)), s=p.shape), c)
    return est


def make_psf(shape):
    g = np.meshgrid(*[np.arange(s) - s // 2 for s in shape], indexing="ij")
    p = np.exp(-sum((x / 1.4) ** 2 for x in g)) * (1 + 0.4 * (g[2] > 0) + 0.2 * (g[0] < 0))
    return p / p.sum()


def run(img, chunks, psf, boundary, iters, *opts):
    src, psfp, out = path("ex_in.zarr"), path("ex_psf.tif"), path("ex_out.zarr")
    for p in (src, out):
        shutil.rmtree(p, ignore_errors=True)
    zarr.open(src, mode="w", shape=img.shape, chunks=chunks, dtype=img.dtype)[:] = img
    tifffile.imwrite(psfp, psf.astype(np.float32), photometric="minisblack")
    r = halo("deconvolve", src, psfp, out, "--mode", "exact", "--boundary", boundary,
             "--iterations", iters, "--quiet", *opts, check_rc=0)
    return (zarr.open(out, mode="r")[:] if r.returncode == 0 else None), r


def specimen(shape, dtype="float32"):
    img = rng.random(shape) * 100 + 10
    img[tuple(s // 2 for s in shape)] += 2000
    return img.astype(dtype)


cases = [
    # shape, chunks, psf, boundary, iterations
    ((17, 22, 25), (6, 8, 9), (5, 4, 6), "periodic", 100),
    ((17, 22, 25), (6, 8, 9), (5, 4, 6), "reflect", 100),
    ((16, 21, 20), (7, 7, 7), (3, 5, 5), "nearest", 100),
    ((16, 21, 20), (7, 7, 7), (4, 4, 3), "constant=5", 100),
    ((15, 18, 19), (15, 18, 19), (5, 5, 5), "reflect", 50),      # a single chunk
    ((14, 16, 18), (3, 4, 4), (5, 7, 6), "reflect", 40),         # chunks thinner than the PSF
]
for shape, chunks, ps, boundary, iters in cases:
    img = specimen(shape)
    psf = make_psf(ps)
    got, r = run(img, chunks, psf, boundary, iters)
    mode = boundary.split("=")[0]
    value = float(boundary.split("=")[1]) if "=" in boundary else 0.0
    ref = whole_rl(img, psf, iters, mode, value)
    err = float(np.abs(got - ref).max() / np.abs(ref).max()) if got is not None else 1.0
    check(err <= 1e-4, f"exact {shape} chunks {chunks} psf {ps} {boundary} {iters} it: "
          f"whole-volume RL (rel {err:.1e})", r.stderr)

# uint16 input, and results independent of --ncpu and the scheduler.
img = specimen((12, 15, 17), "uint16")
psf = make_psf((3, 5, 4))
a, _ = run(img, (5, 6, 7), psf, "reflect", 20, "--ncpu", "1", "--sched", "eager")
b, _ = run(img, (5, 6, 7), psf, "reflect", 20, "--ncpu", "2", "--sched", "dmda")
ref = whole_rl(img, psf, 20, "reflect", 0)
check(a is not None and b is not None and np.array_equal(a, b),
      "exact: same result on 1 CPU/eager and 2 CPUs/dmda")
check(a is not None and np.abs(a - ref).max() / np.abs(ref).max() <= 1e-4,
      "exact: uint16 input")
# A StarPU limit set by hand (STARPU_LIMIT_CPU_MEM, MB) under what exact
# mode holds at once (25 MB of volumes here) made StarPU wait forever for
# memory. Asked for: one line, nothing written. Chosen by halo: overlap,
# whose chunks fit.
src, psfp, out = path("lim_in.zarr"), path("lim_psf.tif"), path("lim_out.zarr")
shutil.rmtree(out, ignore_errors=True)
zarr.open(src, mode="w", shape=(32, 256, 256), chunks=(16, 64, 64),
          dtype="float32")[:] = specimen((32, 256, 256))
tifffile.imwrite(psfp, make_psf((5, 5, 5)).astype(np.float32), photometric="minisblack")
lim = {"STARPU_LIMIT_CPU_MEM": "20"}
r = halo("deconvolve", src, psfp, out, "--mode", "exact", "--iterations", 2, env=lim,
         timeout=120, check_rc=1)
check(r.returncode == 1 and "STARPU_LIMIT_CPU_MEM=20 (MiB)" in r.stderr and
      len(r.stderr.strip().splitlines()) == 1 and not os.path.exists(out),
      "exact mode over STARPU_LIMIT_CPU_MEM: one line, nothing written", r.stderr)
r = halo("deconvolve", src, psfp, out, "--iterations", 2, env=lim, timeout=120, check_rc=0)
check(r.returncode == 0 and "(the working set exceeds STARPU_LIMIT_CPU_MEM)" in
      r.stdout and zarr.open(out, mode="r").shape == (32, 256, 256),
      "over STARPU_LIMIT_CPU_MEM halo picks overlap mode, and it runs", r.stdout + r.stderr)
# So is --memory under it (StarPU's limit was raised to what exact mode
# holds: a 1 GiB volume held 8.5 GiB under --memory 1G), unless StarPU
# may swap to disk.
shutil.rmtree(out, ignore_errors=True)
r = halo("deconvolve", src, psfp, out, "--mode", "exact", "--iterations", 2, "--memory", "20M",
         timeout=120, check_rc=1)
check(r.returncode == 1 and "more than --memory (20 MiB)" in r.stderr and
      len(r.stderr.strip().splitlines()) == 1 and not os.path.exists(out),
      "exact mode over --memory: one line, nothing written", r.stderr)
# And without --memory, over the default budget: StarPU's bookkeeping
# for 1x1x1 chunks of 128x256x256 (about 16 KiB a handle, several per
# chunk: 1.6 TB) was not counted, and such a run met the OOM killer.
huge = path("lim_huge.zarr")
zarr.open(huge, mode="w", shape=(128, 256, 256), chunks=(64, 128, 128), dtype="float32")
r = halo("deconvolve", huge, psfp, out, "--mode", "exact", "--chunks", "1,1,1", timeout=60,
         check_rc=1)
check(r.returncode == 1 and "more than the default memory budget" in r.stderr and
      "TiB at once" in r.stderr and len(r.stderr.strip().splitlines()) == 1 and
      not os.path.exists(out),
      "exact mode over the default budget: one line, nothing written", r.stderr)
# A chunk whose FFT (with its halo, padded to a smooth size) holds 2^32
# voxels or more: StarPU sizes its blocks in 32 bits, and the buffer
# wrapped to a few bytes. Refused before anything is read. (A Zarr output
# stores such chunks in pieces of 2 GiB, and exact mode runs on those; a
# TIFF's are whole planes.)
deep, tif = path("lim_deep.zarr"), path("lim_deep.tif")
zarr.open(deep, mode="w", shape=(1040, 2048, 2048), chunks=(64, 512, 512), dtype="u1")
r = halo("deconvolve", deep, psfp, tif, "--mode", "exact", "--chunks", "1024,2048,2048",
         "--memory", "1T", timeout=60, check_rc=1)
last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
check(r.returncode == 1 and "with their halo, 2^32 or more, which StarPU's chunk buffers "
      "cannot hold; give smaller --chunks" in last and not os.path.exists(tif),
      "exact mode, chunks of 2^32 voxels with their halo: one line, nothing written", r.stderr)
# Limits between what the three volumes need and what the halo exchanges
# running ahead add (a haloed block per chunk): StarPU waited forever at
# 27-33 MiB here (24 MiB of volumes, 32 chunks). Each limit now runs or is
# one line.
shutil.rmtree(out, ignore_errors=True)
halo("deconvolve", src, psfp, out, "--mode", "exact", "--iterations", 2, check_rc=0)
free = zarr.open(out, mode="r")[:] if os.path.exists(out) else None
for mib in (27, 33, 48, 60):
    shutil.rmtree(out, ignore_errors=True)
    try:
        r = halo("deconvolve", src, psfp, out, "--mode", "exact", "--iterations", 2,
                 env={"STARPU_LIMIT_CPU_MEM": str(mib)}, timeout=60, check_rc=0)
        ok = r.returncode == 0 and np.array_equal(zarr.open(out, mode="r")[:], free)
        check(ok or (r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
                     and f"STARPU_LIMIT_CPU_MEM={mib} (MiB)" in r.stderr),
              f"exact mode under STARPU_LIMIT_CPU_MEM={mib}: the result without a limit, or "
              "refused", r.stderr)
    except subprocess.TimeoutExpired:
        check(False, f"exact mode under STARPU_LIMIT_CPU_MEM={mib}: runs or is refused (it hung)")
# To a TIFF, exact mode's chunks span whole planes: the check counts them
# so (it counted the Zarr chunks, picked exact mode, and StarPU waited
# forever).
wide, outt = path("lim_wide.zarr"), path("lim_out.tif")
zarr.open(wide, mode="w", shape=(8, 256, 256), chunks=(4, 32, 32),
          dtype="float32")[:] = specimen((8, 256, 256))
# At 11 MiB neither mode fits (a TIFF's overlap chunks are whole planes
# too): one line. At 20 MiB exact mode fits, runs, and gives the result
# of a run without a limit.
try:
    r = halo("deconvolve", wide, psfp, outt, "--iterations", 2, "--overwrite",
             env={"STARPU_LIMIT_CPU_MEM": "11"}, timeout=60, check_rc=1)
    check(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and
          "more than StarPU's limit of 11 MiB" in r.stderr and not os.path.exists(outt),
          "to a TIFF under STARPU_LIMIT_CPU_MEM=11, where no mode fits: one line", r.stderr)
    r = halo("deconvolve", wide, psfp, outt, "--iterations", 2, "--overwrite",
             env={"STARPU_LIMIT_CPU_MEM": "20"}, timeout=60, check_rc=0)
    ok = r.returncode == 0 and "exact (the working set fits" in r.stdout
    got = tifffile.imread(outt) if ok else None
    r = halo("deconvolve", wide, psfp, path("lim_free.tif"), "--iterations", 2, "--overwrite",
             "--mode", "exact", check_rc=0)
    check(ok and r.returncode == 0 and np.array_equal(got, tifffile.imread(path("lim_free.tif"))),
          "to a TIFF under STARPU_LIMIT_CPU_MEM=20: exact mode, the result without a limit",
          r.stdout + r.stderr)
except subprocess.TimeoutExpired:
    check(False, "to a TIFF under STARPU_LIMIT_CPU_MEM: runs or is refused (it hung)")
# A 2D image with a 3D PSF: its plane, reflected along z, is the volume
# exact mode deconvolves (numpy's pad of one plane); overlap mode, whose
# haloed chunks are one plane, refuses such a PSF.
img2, psf3 = specimen((40, 44)), make_psf((3, 5, 7))
got, r = run(img2, (20, 22), psf3, "reflect", 5)
want = whole_rl(img2[None], psf3, 5, "reflect", 0)[0]
err = float(np.abs(got - want).max() / np.abs(want).max()) if got is not None else 1
check(got is not None and got.shape == (40, 44) and err < 1e-5,
      f"a 2D image with a 3D PSF in exact mode: the reflected plane's RL (rel {err:.1e})", r.stderr)
r = halo("deconvolve", path("ex_in.zarr"), path("ex_psf.tif"), path("ex_ov.zarr"), "--mode",
         "overlap", "--quiet", check_rc=1)
check(r.returncode == 1 and r.stderr.endswith(
    "larger than the smallest haloed chunk (1x30x36); use --mode exact, which takes a 3D PSF on "
    "a 2D image\n"), "... and overlap mode refuses it, pointing to exact mode alone (not "
    "to --chunks or --depth, which cannot help)", r.stderr)
# boundary none has no whole-volume meaning.
_, r = run(img, (5, 6, 7), psf, "none", 5)
check(r.returncode == 1 and "none" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
      "exact with --boundary none is a one-line error", r.stderr)
# On a terminal the progress line counts each chunk's iterations as they
# end (it said "chunks" and "0.0 MB/s"; then it moved only after the second
# iteration), and ends at all of them. It fits the terminal's width: a
# longer one wraps, and each redraw left a row behind.
cmd = " ".join([HALO, "deconvolve", src, psfp, path("tty.zarr"), "--mode", "exact",
                "--iterations", "6", "--overwrite"])
r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                   timeout=120)
lines = [x for x in r.stdout.replace("\r", "\n").splitlines() if "deconvolve (exact):" in x]
total = 6 * zarr.open(path("tty.zarr"), mode="r").nchunks if r.returncode == 0 else -1
check(r.returncode == 0 and lines and f"{total}/{total} chunk-iterations" in lines[-1] and
      all("chunk-iterations/s" in x and "MB/s" not in x for x in lines),
      "exact mode's progress line counts chunk-iterations", lines)
r = subprocess.run(["script", "-qec", "stty cols 40; " + cmd, "/dev/null"], capture_output=True,
                   text=True, timeout=120)
lines = [x.replace("\x1b[K", "") for x in r.stdout.replace("\r", "\n").splitlines()
         if "deconvolve (exact)" in x]
check(r.returncode == 0 and lines and all(len(x) <= 39 for x in lines),
      "a 40-column terminal: the progress line is cut to 39 columns", lines)
# Ctrl-C: the halves queued ahead (2 to 3 iterations) ran on after it,
# 1.4 s here on this volume (longer than the whole grace on a large one);
# now well under a second on a quiet machine, but a shared one took 3.6 s,
# so the bound is what the run left to itself would exceed (its 100
# iterations take minutes). Under the sanitizer a running half alone takes
# seconds: no time bound.
slow = path("slow.zarr")
zarr.open(slow, mode="w", shape=(128, 512, 512), chunks=(16, 128, 128), dtype="float32",
          compressor=None)[:] = specimen((128, 512, 512))
g = np.mgrid[-7:8, -7:8, -7:8]
tifffile.imwrite(path("psf15.tif"), np.exp(-(g ** 2).sum(0) / 8.0).astype(np.float32),
                 photometric="minisblack")
interrupt(["deconvolve", slow, path("psf15.tif"), path("slow-out.zarr"), "--mode", "exact",
           "--iterations", "100", "--quiet"], 2.0, "slow-out",
          30 if "ASAN_OPTIONS" in os.environ else 10)
done()
