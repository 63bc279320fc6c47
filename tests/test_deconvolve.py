"""halo deconvolve against references the test computes itself: a float64
numpy Richardson-Lucy (PSF centre n//2 at the origin) on the whole volume,
and dask.array.map_overlap of that RL for chunked runs, for every boundary,
odd and even sizes, chunks that do not divide the shape, uint16 and float32
inputs. Errors are max |halo - ref| / max |ref|."""
import os
import pty
import re
import shutil
import signal
import sys
import time

import dask.array as da
import numpy as np
import tifffile
import zarr
from dask.array.overlap import ensure_minimum_chunksize

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import HALO, check, done, halo, interrupt, path  # noqa: E402

rng = np.random.default_rng(7)


def make_psf(shape, asym=False):
    grids = np.meshgrid(*[np.arange(s) - s // 2 for s in shape], indexing="ij")
    sig = [max(s / 4.0, 0.8) for s in shape]
    p = np.exp(-sum((g / s) ** 2 for g, s in zip(grids, sig)))
    if asym:
        p *= 1 + 0.5 * (grids[2] > 0) + 0.25 * (grids[0] < 0)
    return p / p.sum()


def rl(block, psf, iters):
    n = block.shape
    pad = np.zeros(n)
    pad[:psf.shape[0], :psf.shape[1], :psf.shape[2]] = psf
    pad = np.roll(pad, [-(p // 2) for p in psf.shape], axis=(0, 1, 2))
    H = np.fft.rfftn(pad)
    est = block.astype(np.float64).copy()
    img = block.astype(np.float64)
    for _ in range(iters):
        conv = np.fft.irfftn(np.fft.rfftn(est) * H, s=n)
        ratio = img / np.maximum(conv, 1e-12)
        est = est * np.fft.irfftn(np.fft.rfftn(ratio) * np.conj(H), s=n)
    return est


def dask_ref(img, psf, chunks, depth, boundary, iters):
    a = da.from_array(img.astype(np.float64), chunks=chunks)
    b = boundary
    if boundary.startswith("constant"):
        b = float(boundary.split("=")[1]) if "=" in boundary else 0.0
    return da.map_overlap(lambda x: rl(x, psf, iters), a, depth=depth, boundary=b, trim=True,
                          dtype=np.float64).compute(scheduler="sync")


def write_input(img, chunks, name="in.zarr"):
    p = path(name)
    shutil.rmtree(p, ignore_errors=True)
    z = zarr.open(p, mode="w", shape=img.shape, chunks=chunks, dtype=img.dtype)
    z[:] = img
    return p


def write_psf(psf, name="psf.tif"):
    p = path(name)
    tifffile.imwrite(p, psf.astype(np.float32), photometric="minisblack")
    return p


def run(inp, psfp, *opts):
    out = path("out.zarr")
    shutil.rmtree(out, ignore_errors=True)
    r = halo("deconvolve", inp, psfp, out, "--quiet", *opts, check_rc=0)
    return (zarr.open(out, mode="r")[:] if r.returncode == 0 else None), r


def rel(a, b):
    return float(np.abs(a.astype(np.float64) - b).max() / np.abs(b).max())


def specimen(shape, dtype):
    img = rng.random(shape) * 200 + 20
    img[tuple(s // 2 for s in shape)] += 3000
    return img.astype(dtype)


# 1. One chunk, periodic, depth 0: whole-volume FFT RL in float64.
shape, pshape = (16, 20, 23), (5, 7, 6)
img = specimen(shape, "float32")
psf = make_psf(pshape, asym=True)
out, r = run(write_input(img, shape), write_psf(psf), "--boundary", "periodic", "--depth",
             "0,0,0", "--iterations", "20")
ref = rl(img, psf, 20)
err = rel(out, ref) if out is not None else 1
check(err <= 1e-4, f"one chunk, periodic, depth 0 = whole-volume RL (rel {err:.2e})", r.stderr)
check(out is not None and out.dtype == np.float32, "output is float32 by default")

# 2. Chunked runs equal dask.array.map_overlap of the same RL.
cases = [
    # shape, chunks, psf, depth, boundary, dtype
    ((20, 24, 28), (10, 12, 14), (5, 5, 5), (5, 5, 5), "reflect", "float32"),
    ((21, 25, 27), (8, 10, 12), (4, 6, 5), (4, 6, 5), "reflect", "uint16"),
    ((19, 24, 26), (7, 9, 11), (5, 5, 7), (5, 6, 7), "periodic", "float32"),
    ((20, 23, 26), (9, 10, 12), (3, 5, 4), (3, 5, 4), "nearest", "uint16"),
    ((18, 22, 25), (8, 9, 10), (5, 5, 5), (4, 5, 5), "constant=7", "float32"),
    ((18, 22, 25), (9, 11, 12), (5, 4, 6), (3, 4, 5), "none", "float32"),
    ((16, 30, 30), (16, 15, 15), (5, 7, 7), (2, 3, 3), "reflect", "float32"),
    ((17, 20, 22), (6, 8, 9), (4, 4, 4), (6, 8, 9), "periodic", "float32"),
]
for shape, chunks, ps, depth, boundary, dtype in cases:
    img = specimen(shape, dtype)
    psf = make_psf(ps, asym=True)
    out, r = run(write_input(img, chunks), write_psf(psf), "--boundary", boundary, "--depth",
                 ",".join(map(str, depth)), "--iterations", "20")
    ref = dask_ref(img, psf, chunks, depth, boundary, 20)
    err = rel(out, ref) if out is not None else 1
    check(err <= 2e-4,
          f"{dtype} {shape} chunks {chunks} psf {ps} depth {depth} {boundary}: "
          f"map_overlap equal (rel {err:.2e})", r.stderr)

# The summary line names the boundary's constant too (it said "constant").
r = halo("deconvolve", write_input(specimen((8, 10, 12), "float32"), (8, 10, 12)),
         write_psf(make_psf((3, 3, 3))), path("const.zarr"), "--boundary", "constant=5.5",
         "--iterations", "1", "--overwrite", check_rc=0)
check(", boundary constant=5.5, 1 iteration on" in r.stdout, "summary: boundary constant=5.5",
      r.stdout)

# A TIFF output is written page by page, but overlap mode still computes
# on the input's chunks (or --chunks): the result is dask's with those.
img = specimen((12, 14, 16), "float32")
img[6, 7, 8] = 3000
psf = make_psf((3, 3, 3), asym=True)
tif = path("out.tif")
for chunks, opts in [((6, 7, 8), ()), ((5, 6, 7), ("--chunks", "5,6,7"))]:
    r = halo("deconvolve", write_input(img, (6, 7, 8)), write_psf(psf), tif, "--quiet",
             "--overwrite", "--depth", "3,3,3", "--iterations", "10", *opts, check_rc=0)
    err = rel(tifffile.imread(tif), dask_ref(img, psf, chunks, (3, 3, 3), "reflect", 10)) \
        if r.returncode == 0 else 1
    check(err <= 2e-4, f"TIFF output, chunks {chunks}: map_overlap equal (rel {err:.2e})",
          r.stderr)

# Chunks thinner than the depth merge before the PSF is measured against
# the haloed blocks, as dask does: (3,3,1) in z merges into (3,4), whose
# smallest haloed block (7) holds a 6-voxel PSF; 8 voxels do not fit.
img = specimen((7, 8, 8), "float32")
inp = write_input(img, (3, 8, 8))
for pz, ok in [(6, True), (8, False)]:
    psf = make_psf((pz, 1, 1))
    p = path(f"psf{pz}.zarr")
    zarr.open(p, mode="w", shape=psf.shape, chunks=psf.shape, dtype="f4")[:] = psf
    out, r = run(inp, p, "--depth", "2,0,0", "--iterations", "5")
    if ok:
        err = rel(out, dask_ref(img, psf, (3, 8, 8), (2, 0, 0), "reflect", 5)) \
            if out is not None else 1
        check(err <= 2e-4, f"merged chunks hold a {pz}-voxel PSF: map_overlap equal "
              f"(rel {err:.2e})", r.stderr)
    else:
        check(r.returncode == 1 and "larger than the smallest haloed chunk (7x8x8)" in r.stderr,
              f"a {pz}-voxel PSF exceeds the merged haloed blocks: refused", r.stderr)

# 3. In overlap mode the default depth is the PSF size grown until the
# haloed chunk has no prime factor above 7, the default boundary reflect,
# and --chunks rechunks before deconvolving.
def default_depth(chunks, ps):
    def smooth(m):
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        return m == 1
    depth = []
    for c, p in zip(chunks, ps):
        d = p
        while not smooth(c + 2 * d):
            d += 1
        depth.append(d)
    return tuple(depth)


shape, chunks, ps = (20, 26, 24), (10, 13, 12), (3, 5, 5)
img = specimen(shape, "float32")
psf = make_psf(ps)
out, r = run(write_input(img, (20, 8, 8)), write_psf(psf), "--chunks", "10,13,12",
             "--iterations", "10", "--mode", "overlap")
depth = default_depth(chunks, ps)
ref = dask_ref(img, psf, chunks, depth, "reflect", 10)
err = rel(out, ref) if out is not None else 1
check(depth == (3, 6, 6) and err <= 2e-4,
      f"defaults (depth {depth} from PSF {ps}, reflect) after --chunks (rel {err:.2e})",
      r.stderr)
check(zarr.open(path("out.zarr"), mode="r").chunks == chunks, "--chunks sets the output chunks")

# --chunks longer than an axis is one chunk of the axis's length: the
# default depth is grown from that (24 + 2x8 = 40), not from the number
# given (28 + 2x7 = 42 made 38 = 2 x 19 on the real chunk).
img = specimen((8, 8, 24), "float32")
psf = make_psf((1, 1, 7))
src = write_input(img, (8, 8, 24))
a, ra = run(src, write_psf(psf), "--chunks", "8,8,28", "--iterations", "20", "--mode", "overlap")
b, rb = run(src, write_psf(psf), "--chunks", "8,8,24", "--iterations", "20", "--mode", "overlap")
ref = dask_ref(img, psf, (8, 8, 24), default_depth((8, 8, 24), (1, 1, 7)), "reflect", 20)
check(a is not None and b is not None and np.array_equal(a, b) and rel(a, ref) <= 2e-4,
      "--chunks longer than the volume: the depth of the chunk it makes",
      (ra.stderr, rb.stderr, rel(a, ref) if a is not None else None))

# Without --mode, a volume that fits the memory budget runs in exact mode
# (the summary says so, and why), and an explicit --depth means overlap
# mode.
inp = write_input(img, chunks)
out_path = path("mode.zarr")
for opts, want in [((), ", exact (the working set fits the memory budget), boundary"),
                   (("--depth", "2,2,2"), ", overlap depth 2,2,2 (--depth given), boundary")]:
    shutil.rmtree(out_path, ignore_errors=True)
    r = halo("deconvolve", inp, write_psf(psf), out_path, "--iterations", "3", *opts)
    check(r.returncode == 0 and want in r.stdout and "mode" not in r.stderr,
          f"mode chosen and said: {want}", r.stdout + r.stderr)
# A NaN found during the run is its one line, without the mode's notice
# before it.
nan = img.astype(np.float32)
nan[1, 2, 3] = np.nan
r = halo("deconvolve", write_input(nan, chunks, "nan.zarr"), write_psf(psf), path("nan_out.zarr"),
         "--iterations", "3", check_rc=1)
check(r.returncode == 1 and len(r.stderr.splitlines()) == 1 and "holds NaN" in r.stderr,
      "a NaN in the input: one line", r.stderr)
# The budget is weighed against exact mode's own working set: 64x128x128
# (three float32 volumes, 12.6 MB, and a haloed block per chunk, 8 MB)
# takes exact mode within 40 MB (a rule that counted 256 bytes per haloed
# voxel chose overlap).
big = write_input(np.full((64, 128, 128), 100, np.uint16), (32, 64, 64), "budget.zarr")
for mem, want in [("40M", "exact (the working set fits the memory budget)"),
                  ("14M", "(the working set exceeds the memory budget)")]:
    r = halo("deconvolve", big, write_psf(make_psf((5, 5, 5))), out_path, "--iterations", "1",
             "--memory", mem, "--overwrite")
    check(r.returncode == 0 and want in r.stdout, f"--memory {mem}: {want}", r.stdout + r.stderr)
# --chunks auto under a budget that not even its smallest chunks fit says so.
r = halo("deconvolve", big, write_psf(make_psf((3, 3, 3))), out_path, "--iterations", "1",
         "--memory", "200K", "--mode", "overlap", "--chunks", "auto", "--overwrite")
check("warning: --chunks auto: even its smallest chunks (16x16x16) need more memory" in r.stderr,
      "--chunks auto under too small a budget warns", r.stderr)
r = halo("deconvolve", inp, write_psf(psf), out_path, "--overwrite", "--mode", "exact",
         "--depth", "2,2,2")
check(r.returncode == 1 and "--depth applies to overlap mode" in r.stderr,
      "--mode exact with --depth is an error", r.stderr)

# A 2D image takes a 2D PSF, and --chunks/--depth as Y,X (references: the
# same image as one plane).
img2 = specimen((40, 44), "float32")
psf2 = make_psf((1, 5, 7), asym=True)
p2 = path("psf2d.tif")
tifffile.imwrite(p2, psf2[0].astype(np.float32), photometric="minisblack")
out, r = run(write_input(img2, (40, 44), "in2d.zarr"), p2, "--boundary", "periodic", "--depth",
             "0,0", "--iterations", "10")
err = rel(out, rl(img2[None], psf2, 10)[0]) if out is not None else 1
check(err <= 1e-4 and out.shape == (40, 44), f"2D image, 2D PSF = 2D RL (rel {err:.2e})",
      r.stderr)
out, r = run(write_input(img2, (40, 44), "in2d.zarr"), p2, "--chunks", "20,22", "--depth", "3,4",
             "--iterations", "10")
ref = da.map_overlap(lambda b: rl(b, psf2, 10), da.from_array(img2[None].astype(np.float64),
                     chunks=(1, 20, 22)), depth=(0, 3, 4), boundary="reflect", trim=True,
                     dtype=np.float64).compute(scheduler="sync")[0]
err = rel(out, ref) if out is not None else 1
check(err <= 2e-4, f"2D image in 20x22 chunks, depth 3,4: map_overlap equal (rel {err:.2e})",
      r.stderr)
r = halo("deconvolve", path("in2d.zarr"), p2, path("out2d.zarr"), "--chunks", "20,22", "--depth",
         "3,4", "--iterations", "1", "--overwrite", check_rc=0)
check("chunks 20x22, overlap depth 3,4 (--depth given), " in r.stdout,
      "2D: the summary gives the depth as --depth takes it (Y,X)", r.stdout)

# FFTW wisdom: kept in $XDG_CACHE_HOME/halo/fftw-wisdom-f32 by the first
# run, and runs that share it plan alike, so their results are identical
# (FFTW_MEASURE's timings may pick other algorithms: float32 rounding).
xdg = path("xdg")
shutil.rmtree(xdg, ignore_errors=True)
os.makedirs(xdg)
wisdom = os.path.join(xdg, "halo", "fftw-wisdom-f32")
img = specimen((24, 40, 36), "float32")
src, pw = write_input(img, (12, 20, 18), "wis.zarr"), write_psf(make_psf((5, 5, 5)))
outs = []
for k in range(2):
    o = path(f"wis-{k}.zarr")
    r = halo("deconvolve", src, pw, o, "--iterations", 5, "--quiet", "--overwrite",
             env={"XDG_CACHE_HOME": xdg}, check_rc=0)
    outs.append(zarr.open(o, mode="r")[:] if r.returncode == 0 else None)
    if k == 0:
        made = os.path.isfile(wisdom) and open(wisdom).read().startswith("(fftw-")
check(made and outs[1] is not None and np.array_equal(outs[0], outs[1]),
      "FFTW wisdom kept in $XDG_CACHE_HOME/halo, and runs sharing it give identical results")

# A --memory below what one task's buffers need: StarPU may hold them
# anyway (it could never allocate them and spun forever before).
img = specimen((48, 96, 96), "float32")
out, r = run(write_input(img, (48, 96, 96), "tight.zarr"), write_psf(make_psf((5, 5, 5))),
             "--memory", "1M", "--iterations", "2", "--mode", "overlap")
check(out is not None and r.returncode == 0 and np.isfinite(out).all(),
      "--memory below one task's buffers: the run completes", r.stderr)
# and says so, as halo run does (a wide volume held 2.5 GB under 1G, unsaid)
check("MiB of chunks shared by neighbouring chunks (halos, rechunks) stay resident" in r.stderr
      and "more than --memory 1 MiB" in r.stderr, "--memory below what stays resident: a warning",
      r.stderr)

# Planning 7.6 million chunks takes seconds (a 20000x40000x40000 array,
# no chunk stored, refused for memory afterwards): SIGTERM stops it there
# (it ran on to the end, 15 s at most, when the watchdog ended it).
vast = path("vast.zarr")
zarr.open(vast, mode="w", shape=(20000, 40000, 40000), chunks=(128, 256, 512), dtype="u2")
interrupt(["deconvolve", vast, write_psf(make_psf((3, 3, 3)), "psf_vast.tif"),
           path("vast_out.zarr"), "--mode", "overlap", "--chunks", "64,256,256", "--memory", "8G"],
          2, "vast_out", 4, sig=signal.SIGTERM)

# 4. Zeros in the image give no NaN or Inf.
img = np.zeros((12, 14, 16), dtype="float32")
img[6, 7, 8] = 100
out, r = run(write_input(img, (6, 7, 8)), write_psf(make_psf((3, 3, 3))), "--iterations", "15")
check(out is not None and np.isfinite(out).all(), "zeros in the image: all finite", r.stderr)

# RL that diverges is refused in one line, and nothing is written: on
# negative values (numpy's float64 RL of them leaves float32's range too)
# and on a voxel 1e11 times the rest (float32's rounding). A run gave
# infinities, or with --dtype uint16 their zeros.
neg = (rng.poisson(60, (16, 32, 32)) - 60).astype(np.int16)
with np.errstate(all="ignore"):
    check(not (np.abs(rl(neg, make_psf((3, 3, 3)), 20)) < 3.4e38).all(),
          "negative values: numpy's float64 RL leaves float32's range too")
spike = specimen((12, 14, 16), "float32")
spike[2, 3, 4] = 1e13
psf3 = write_psf(make_psf((3, 3, 3)))
for img, chunks, what in [(neg, (8, 16, 16), "negative values"),
                          (spike, (6, 7, 8), "a voxel 1e11 times the rest")]:
    src = write_input(img, chunks)
    for mode in ["exact", "overlap"]:
        for out, opts in [("div.zarr", []), ("div.zarr", ["--dtype", "uint16"]),
                          ("div.tif", [])]:
            out = path(out)
            r = halo("deconvolve", src, psf3, out, "--mode", mode, *opts, check_rc=0)
            lines = r.stderr.strip().splitlines()
            check(r.returncode == 1 and len(lines) == 1 and
                  lines[0].startswith(f"halo: {out}: RL's result at the voxel ") and
                  "RL diverged in float32, as it does on negative values" in lines[0] and
                  not os.path.exists(out),
                  f"RL diverging on {what}, {mode} mode, {os.path.basename(out)} {opts}: "
                  "refused in one line", r.stderr)

# 5. --dtype uint16 rounds and saturates the float result.
img = specimen((12, 14, 16), "uint16")
psf = make_psf((3, 3, 3))
out, r = run(write_input(img, (6, 7, 8)), write_psf(psf), "--dtype", "uint16",
             "--iterations", "5", "--mode", "overlap")
ref = dask_ref(img, psf, (6, 7, 8), default_depth((6, 7, 8), (3, 3, 3)), "reflect", 5)
expect = np.clip(np.rint(ref), 0, 65535)
check(out is not None and out.dtype == np.uint16 and np.abs(out - expect).max() <= 1,
      "--dtype uint16: rounded result", r.stderr)

# --chunks auto: the chunks it picks, as stored, give the dask result. With
# --depth 7 a chunk of 32 would be 46 = 2 x 23 with its halo: auto takes 31
# (45 = 3^2 x 5) where that adds no chunk, as on 60 voxels.


def smooth(n):
    for p in (2, 3, 5, 7):
        while n % p == 0:
            n //= p
    return n == 1


img = specimen((40, 60, 72), "uint16")
psf = make_psf((5, 5, 5))
out, r = run(write_input(img, (40, 60, 72), "auto.zarr"), write_psf(psf, "apsf.tif"),
             "--chunks", "auto", "--depth", "7,7,7", "--ncpu", "2", "--memory", "16M",
             "--iterations", "3")
chunks = zarr.open(path("out.zarr"), mode="r").chunks if out is not None else None
n = int(np.prod([-(-s // c) for s, c in zip(img.shape, chunks)])) if chunks else 0
check(chunks is not None and n >= 4 and 31 in chunks and
      all(c == s or smooth(c + 14) and c >= 28 and -(-s // c) == -(-s // (-(-c // 8) * 8))
          for c, s in zip(chunks, img.shape)),
      f"--chunks auto: {chunks}, {n} chunks for 2 workers, FFT-friendly with their halo, "
      "no more chunks than multiples of 8 give")
check(r.stderr.count("warning") == 0, "--chunks auto: no FFT-size warning", r.stderr)
if chunks:
    err = rel(out, dask_ref(img, psf, chunks, (7, 7, 7), "reflect", 3))
    check(err <= 1e-4, f"--chunks auto equals dask with those chunks (rel {err:.2e})")

# Chunks that --depth makes FFT-unfriendly are run, with one warning per axis.
out, r = run(path("auto.zarr"), path("apsf.tif"), "--chunks", "20,33,36", "--depth", "5,5,5",
             "--iterations", "1")
warn = [x for x in r.stderr.splitlines() if "warning" in x]
check(out is not None and warn == [
    "halo: warning: a chunk with its halo is 43 voxels along y (prime factor 43), which FFTs "
    "are slow on; --depth 6 along y makes it 45",
    "halo: warning: a chunk with its halo is 46 voxels along x (prime factor 23), which FFTs "
    "are slow on; --depth 6 along x makes it 48"], "FFT-unfriendly haloed chunks: a warning "
      "per axis with the --depth that avoids it", r.stderr)
# Chunks thinner than the halo are merged first (as dask does): the warning
# is about the merged blocks, and advises no --depth (which changes the
# merging). It named 13 = 3 + 2 x 5 for blocks of 6 (16, fine).
def largest_prime(n):
    p, big = 2, 1
    while p * p <= n:
        while n % p == 0:
            n, big = n // p, p
        p += 1
    return n if n > 1 else big


for depth in (5, 7):
    first = ensure_minimum_chunksize(depth, (3,) * 13 + (1,))[0]
    out, r = run(path("auto.zarr"), path("apsf.tif"), "--chunks", "3,60,72", "--depth",
                 f"{depth},0,0", "--iterations", "1")
    warn = [x for x in r.stderr.splitlines() if "warning" in x]
    n = first + 2 * depth
    want = [] if smooth(n) else [
        f"halo: warning: a block of merged chunks with its halo is {n} voxels along z "
        f"(prime factor {largest_prime(n)}), which FFTs are slow on"]
    check(out is not None and warn == want, f"chunks of 3 merged for --depth {depth}: blocks of "
          f"{first}, haloed {n}: {'no warning' if not want else 'a warning'}", r.stderr)

# One channel of a two-channel volume (c, z, y, x): --channel picks it.
two = (rng.random((2, 12, 14, 16)) * 1000 + 10).astype(np.float32)
psf = make_psf((5, 5, 5))
for c in (0, 1):
    out, r = run(write_input(two, (1, 12, 14, 16), "two.zarr"), write_psf(psf), "--channel",
                 str(c), "--boundary", "periodic", "--depth", "0,0,0", "--iterations", "4")
    ref = rl(two[c], psf, 4)
    err = rel(out, ref) if out is not None else float("inf")
    check(err <= 1e-4, f"--channel {c} of a c, z, y, x volume = RL of that channel "
          f"(rel {err:.2e})", r.stderr)
# The output says what made it: "halo" in a Zarr's attributes, in an
# OME-Zarr's multiscales metadata.
import json  # noqa: E402
for name in ("made.zarr", "made.ome.zarr"):
    out = path(name)
    shutil.rmtree(out, ignore_errors=True)
    # Given relative to the folder it runs in, recorded absolute.
    os.chdir(os.path.dirname(path("two.zarr")))
    r = halo("deconvolve", "two.zarr", "./psf.tif", out, "--channel", "1",
             "--iterations", "2", "--mode", "overlap", "--depth", "2", "--quiet", check_rc=0)
    attrs = json.load(open(os.path.join(out, ".zattrs"))) if r.returncode == 0 else {}
    made = (attrs["multiscales"][0]["metadata"] if name.endswith(".ome.zarr") else attrs
            ).get("halo") if attrs else None
    check(made == {"command": "deconvolve", "input": path("two.zarr"), "psf": path("psf.tif"),
                   "iterations": 2, "mode": "overlap", "boundary": "reflect", "channel": 1,
                   "depth": [2, 2, 2]}, f"{name}: its parameters in its attributes, paths "
          "absolute", made)
# An OME-Zarr input's channel keeps its name and colour (its omero entry)
# in an OME-Zarr output, without the input's contrast window.
import zarr  # noqa: E402
src = path("om.ome.zarr")
shutil.rmtree(src, ignore_errors=True)
g = zarr.open_group(src, mode="w")
g.create_dataset("0", data=two, chunks=(1, 12, 14, 16))
g.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "c", "type": "channel"}] + [
    {"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"], "datasets": [
    {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1, 1]}]}]}]
g.attrs["omero"] = {"channels": [
    {"label": "DAPI", "color": "0000FF", "window": {"min": 0, "max": 1, "start": 0, "end": 1}},
    {"label": "GFP", "color": "00FF00", "window": {"min": 0, "max": 9, "start": 1, "end": 5}}]}
r = halo("deconvolve", src, path("psf.tif"), path("om_out.ome.zarr"), "--channel", "1",
         "--iterations", "2", "--quiet", "--overwrite", check_rc=0)
om = json.load(open(path("om_out.ome.zarr/.zattrs"))).get("omero") if r.returncode == 0 else None
check(om == {"channels": [{"label": "GFP", "color": "00FF00"}]},
      "an OME-Zarr's channel 1 deconvolved: its name and colour, not its window", om)
# One value of --depth and --chunks is every axis's (it was "needs 2 values").
img = (rng.random((12, 16, 20)) * 100 + 1).astype(np.float32)
inp, psfp = write_input(img, (12, 16, 20), "one.zarr"), write_psf(make_psf((3, 3, 3)))
a, r1 = run(inp, psfp, "--mode", "overlap", "--depth", "3", "--chunks", "6", "--iterations", "2")
b, r2 = run(inp, psfp, "--mode", "overlap", "--depth", "3,3,3", "--chunks", "6,6,6",
            "--iterations", "2")
check(a is not None and b is not None and np.array_equal(a, b) and
      zarr.open(path("out.zarr"), mode="r").chunks == (6, 6, 6),
      "--depth 3 --chunks 6 = --depth 3,3,3 --chunks 6,6,6", r1.stderr + r2.stderr)
# IN and PSF swapped: the image deconvolved the PSF without a word.
a, r = run(psfp, inp, "--iterations", "1")
check(a is not None and "halo: warning: the PSF " + inp + " (12x16x20) is larger than the "
      "image " + psfp + " (3x3x3): are they the other way round?" in r.stderr,
      "IN and PSF swapped: a warning", r.stderr)
a, r = run(inp, psfp, "--iterations", "1")
check(a is not None and "other way round" not in r.stderr, "... and none the right way round",
      r.stderr)
a, r = run(inp, write_psf(make_psf((12, 16, 20)), "whole_psf.tif"), "--iterations", "1")
check(a is not None and "other way round" not in r.stderr,
      "... nor for a PSF as large as the image (one computed for it)", r.stderr)
# The image as its own PSF (tab completion's slip) ran without a word.
link = path("in_link.zarr")
if not os.path.lexists(link):
    os.symlink(inp, link)
for psf_as in [inp, link]:
    a, r = run(inp, psf_as, "--iterations", "1")
    check(a is None and r.returncode == 1 and
          r.stderr == f"halo: {psf_as}: PSF is the same as IN (halo deconvolve IN PSF OUT)\n",
          f"the image as its own PSF{' (a link to it)' if psf_as == link else ''}: refused in "
          "one line", r.stderr)
# --chunks longer than the volume: reckoned as written, one chunk of the
# volume (1024^3 chose overlap mode for a 12x16x20 image, or refused exact).
r = halo("deconvolve", inp, psfp, path("big_chunks.zarr"), "--chunks", "1024", "--iterations", "1",
         "--overwrite", check_rc=0)
check(r.returncode == 0 and "chunks 12x16x20, exact" in r.stdout,
      "--chunks 1024 on a 12x16x20 image: one chunk of it, exact mode", r.stdout)
# A 2D image's voxel size is said with two values, as halo info says it.
flat = path("flat.tif")
tifffile.imwrite(flat, (img[0] * 10).astype(np.uint16), resolution=(1e4, 2e4),
                 resolutionunit="CENTIMETER")
r = halo("deconvolve", flat, write_psf(make_psf((3, 3)), "flat_psf.tif"), path("flat_out.zarr"),
         "--iterations", "1", "--overwrite", check_rc=0)
check(r.returncode == 0 and "flat.tif's voxel size (0.5x1 micrometer) is not kept" in r.stderr,
      "a 2D image's voxel size note: two values", r.stderr)

# Progress on a terminal: "label: done/total unit, rate unit/s, ETA
# h:mm:ss", redrawn in place at most five times a second, the count rising
# to the total, the line cleared before the summary; from the second line
# on the ETA follows the rate since the first count (the start, StarPU's
# and FFTW's, held up the first alone: exact mode's first lines said 2:17
# for a 5 s run). Nothing of it without a terminal, and no escape
# sequence on TERM=dumb.
def on_tty(args, env):
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(HALO, [HALO, *map(str, args)], env)
    out, t0 = b"", time.time()
    while True:
        try:
            got = os.read(fd, 65536)
        except OSError:
            break
        if not got:
            break
        out += got
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace"), time.time() - t0


img = specimen((64, 128, 128), "float32")
src = write_input(img, (32, 64, 64), "tty_in.zarr")
args = ["deconvolve", src, write_psf(make_psf((7, 7, 7)), "tty_psf.tif"), path("tty_out.zarr"),
        "--mode", "exact", "--iterations", "120", "--overwrite"]
frame = re.compile(r"\r(deconvolve \(exact\): (\d+)/(\d+) chunk-iterations, ([0-9.e+-]+) "
                   r"chunk-iterations/s, ETA (--:--:--|(\d+):(\d\d):(\d\d)))(\x1b\[K)?")
for term in ["xterm", "dumb"]:
    rc, out, took = on_tty(args, dict(os.environ, TERM=term))
    frames = frame.findall(out)
    done_ = [int(f[1]) for f in frames]
    etas = [int(f[5]) * 3600 + int(f[6]) * 60 + int(f[7]) for f in frames if f[5]]
    summary = re.sub(r"^\x1b\[K", "", out.rstrip().rsplit("\r", 1)[-1])
    check(rc == 0 and len(frames) >= 3 and all(int(f[2]) == 8 * 120 for f in frames) and
          done_ == sorted(done_) and done_[-1] == 960 and
          all((f[4] == "--:--:--") == (f[1] == "0") for f in frames) and
          all(bool(f[8]) == (term != "dumb") for f in frames) and
          ("\x1b" in out) == (term != "dumb") and summary.startswith("deconvolve: ") and
          summary.endswith("Mvox*iter/s"),
          f"progress on a terminal (TERM={term}): {len(frames)} lines, the count rising to "
          "960, the ETA once a count is in, then the summary", repr(out[-600:]))
    check(etas[1:] and max(etas[1:]) <= 3 * took + 1,
          f"TERM={term}: from the second line on the ETA is within the run ({etas[:6]}..., "
          f"the run {took:.1f} s)", etas)
r = halo(*args, check_rc=0)
check(r.returncode == 0 and "chunk-iterations" not in r.stderr and "\r" not in r.stderr,
      "no progress line without a terminal", r.stderr)
done()
