#!/usr/bin/python3
"""Benchmark: rechunking a uint16 Zarr volume (blosc lz4, byte shuffle),
halo convert against python zarr + dask (threaded scheduler, same number of
threads), with cat and cp of the same bytes as the I/O ceiling. Three
cases: cubes into larger cubes ((64,256,256) -> (128,128,128)), planes, as
a microscope writes them, into cubes ((1,1024,1024) -> (64,256,256)), and a
sequence of uncompressed TIFF files of one plane each into the same cubes
(against dask.array stacking tifffile's reads of the files, the usual way
to read such a sequence with dask). All runs
are side by side in one invocation, in rounds of one run of each tool;
each figure is the median of --repeat rounds after a warm-up round, with
min and max.

usage: bench/convert.py [--gib 2] [--repeat 3] [--case cubes|planes|sequence|all]
                        [--dir /tmp/halo-bench] [--halo ./halo]
"""
import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import dask
import dask.array as da
import numcodecs
import numpy as np
import tifffile
import zarr

ap = argparse.ArgumentParser()
ap.add_argument("--gib", type=float, default=2.0)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--case", choices=["cubes", "planes", "sequence", "all"], default="all")
ap.add_argument("--dir", default="/tmp/halo-bench")
ap.add_argument("--halo", default=os.path.join(os.path.dirname(__file__), "..", "halo"))
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--delete-outputs", action="store_true",
                help="delete each output before the next run instead of moving it aside")
args = ap.parse_args()

os.makedirs(args.dir, exist_ok=True)
out = os.path.join(args.dir, "out.zarr")
nz = int(args.gib * (1 << 30) / (2 * 1024 * 1024))
shape = (nz, 1024, 1024)
nbytes = int(np.prod(shape)) * 2
compressor = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
CASES = {"cubes": ((64, 256, 256), (128, 128, 128)), "planes": ((1, 1024, 1024), (64, 256, 256)),
         "sequence": ("tiff", (64, 256, 256))}


def make_sequence():
    """The cubes' volume as one uncompressed TIFF file per plane."""
    src = os.path.join(args.dir, f"seq-{args.gib:g}g")
    if os.path.exists(os.path.join(src, f"plane_{nz - 1:05d}.tif")):
        return src
    z = zarr.open(make_source((64, 256, 256)), mode="r")
    print(f"making {src}: {nz} TIFF planes of 1024x1024 uint16", file=sys.stderr)
    os.makedirs(src, exist_ok=True)
    for z0 in range(0, nz, 64):
        slab = z[z0:z0 + 64]
        for k, plane in enumerate(slab):
            tifffile.imwrite(os.path.join(src, f"plane_{z0 + k:05d}.tif"), plane,
                             photometric="minisblack")
    return src


def make_source(chunks):
    if chunks == "tiff":
        return make_sequence()
    src = os.path.join(args.dir, f"src-{args.gib:g}g" + ("" if chunks == (64, 256, 256) else
                                                         "-" + "x".join(map(str, chunks))) + ".zarr")
    if os.path.exists(os.path.join(src, ".zarray")):
        return src
    print(f"making {src}: {shape} uint16, chunks {chunks}", file=sys.stderr)
    z = zarr.open(src, mode="w", shape=shape, chunks=chunks, dtype="<u2", compressor=compressor)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1024, 0:1024]
    base = (1000 + 800 * np.sin(yy / 40.0) * np.cos(xx / 55.0)).astype(np.float32)
    for z0 in range(0, nz, 64):
        n = min(64, nz - z0)
        # Gaussian noise of Poisson(100)'s spread: as compressible, and 4x
        # quicker to draw (the device's minutes are scarce).
        slab = rng.standard_normal(size=(n, 1024, 1024), dtype=np.float32)
        slab *= 10
        slab += base + 100
        z[z0:z0 + n] = slab.astype("<u2")
    return src


def run_halo(src, chunks, rechunk):
    subprocess.run([args.halo, "convert", src, out, "--chunks", ",".join(map(str, rechunk)),
                    "--overwrite", "--quiet", "--ncpu", str(args.threads), "--ncuda", "0"],
                   check=True)


def run_dask(src, chunks, rechunk):
    a = da.from_zarr(src).rechunk(rechunk)
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        a.to_zarr(out, compressor=compressor, overwrite=True)


def run_dask_tiff(src, chunks, rechunk):
    files = tifffile.TiffSequence(os.path.join(src, "*.tif")).files
    read = dask.delayed(tifffile.imread, pure=True)
    a = da.stack([da.from_delayed(read(f), shape[1:], "<u2") for f in files]).rechunk(rechunk)
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        a.to_zarr(out, compressor=compressor, overwrite=True)


def run_cat(src, chunks, rechunk):
    subprocess.run(f"find {src} -type f -exec cat {{}} + > /dev/null", shell=True, check=True)


def run_cp(src, chunks, rechunk):
    subprocess.run(["cp", "-r", src, out], check=True)


def run_codec_floor(src, chunks, rechunk):
    """The work both tools must do short of writing files: read and decode
    every input chunk and encode every output chunk, on the same threads,
    a slab of whole input and output chunks at a time."""
    numcodecs.blosc.use_threads = False
    store = zarr.open(src, mode="r").store
    depth = math.lcm(chunks[0], rechunk[0])
    slab = np.empty((depth,) + shape[1:], dtype="<u2")

    def decode(key):
        i = tuple(map(int, key.split(".")))
        o = [i[d] * chunks[d] - (z0 if d == 0 else 0) for d in range(3)]
        block = np.frombuffer(compressor.decode(store[key]), dtype="<u2").reshape(chunks)
        slab[o[0]:o[0] + chunks[0], o[1]:o[1] + chunks[1], o[2]:o[2] + chunks[2]] = block

    def encode(o):
        compressor.encode(np.ascontiguousarray(slab[o[0]:o[0] + rechunk[0], o[1]:o[1] + rechunk[1],
                                                    o[2]:o[2] + rechunk[2]]))

    with ThreadPoolExecutor(args.threads) as ex:
        for z0 in range(0, shape[0], depth):
            keys = [f"{z}.{y}.{x}" for z in range(z0 // chunks[0], (z0 + depth) // chunks[0])
                    for y in range(shape[1] // chunks[1]) for x in range(shape[2] // chunks[2])]
            list(ex.map(decode, keys))
            list(ex.map(encode, [(z, y, x) for z in range(0, depth, rechunk[0])
                                 for y in range(0, shape[1], rechunk[1])
                                 for x in range(0, shape[2], rechunk[2])]))


# Outputs are moved aside, not deleted, until the end: on an ext4 without
# a journal (these VMs' disks) every file created within a minute of
# others' deletion scans past the deleted inodes (the kernel's
# recently_deleted()), and 512 chunk files then cost 0.1-0.6 s of kernel
# time in whichever tool runs next (14 % of halo's samples under perf).
trash = os.path.join(args.dir, f".trash-{os.getpid()}")
kept = 0


def fresh():
    """Untimed, before every run: no output from the previous run to
    replace, and its dirty pages written back, so that no run pays for
    another's writeback, for unlinking its files, or for creating files
    beside freshly deleted ones."""
    global kept
    if os.path.exists(out):
        if args.delete_outputs or shutil.disk_usage(args.dir).free < 4 * stored:
            shutil.rmtree(out)
        else:
            os.makedirs(trash, exist_ok=True)
            os.rename(out, os.path.join(trash, str(kept)))
            os.sync()
            # Out of the page cache too, as deletion would: 14 GB of kept
            # outputs' pages made later runs reclaim memory as they wrote.
            for root, _, files in os.walk(os.path.join(trash, str(kept))):
                for f in files:
                    fd = os.open(os.path.join(root, f), os.O_RDONLY)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    os.close(fd)
            kept += 1
    os.sync()


def measure(tools, case):
    """Rounds of one run of every tool (the first round a warm-up), so that
    the machine's slow minutes fall on all tools alike."""
    times = {name: [] for name, _ in tools}
    for r in range(args.repeat + 1):
        for name, fn in tools:
            fresh()
            t = time.perf_counter()
            fn(*case)
            if r:
                times[name].append(time.perf_counter() - t)
    return {name: (statistics.median(t), min(t), max(t)) for name, t in times.items()}


for name in (CASES if args.case == "all" else [args.case]):
    chunks, rechunk = CASES[name]
    tiff = chunks == "tiff"
    tools = [("halo convert", run_halo),
             ("tifffile + dask threads" if tiff else "zarr + dask threads",
              run_dask_tiff if tiff else run_dask)] + \
        ([] if tiff else [("read+decode+encode", run_codec_floor)]) + \
        [("cat (read only)", run_cat), ("cp -r (read + write)", run_cp)]
    src = make_source(chunks)
    stored = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(src) for f in fs)
    try:
        results = measure(tools, (src, chunks, rechunk))
    finally:
        shutil.rmtree(trash, ignore_errors=True)

    # Check that halo wrote the same volume (sampled, to keep it quick);
    # the last run's output may be cp's copy of a TIFF folder.
    shutil.rmtree(out, ignore_errors=True)
    run_halo(src, chunks, rechunk)
    h = zarr.open(out, mode="r")
    first = zarr.open(make_source((64, 256, 256)) if tiff else src, mode="r")[:64]
    ok = h.chunks == rechunk and np.array_equal(h[:64], first)
    shutil.rmtree(out, ignore_errors=True)

    print(f"{name}: volume {shape} uint16 = {nbytes / 2**30:.2f} GiB decoded, "
          f"{stored / 2**30:.2f} GiB stored; "
          f"{'a TIFF file per plane' if tiff else f'chunks {chunks}'} -> {rechunk}; "
          f"{args.threads} threads; {args.repeat} runs after a warm-up")
    print(f"{'':24s} {'median s':>9s} {'min':>7s} {'max':>7s} {'MB/s decoded':>13s} {'halo speed-up':>14s}")
    hm = results["halo convert"][0]
    for tool, (med, lo, hi) in results.items():
        print(f"{tool:24s} {med:9.2f} {lo:7.2f} {hi:7.2f} {nbytes / med / 1e6:13.0f} {med / hm:13.2f}x")
    print(f"halo output equals the input (first 64 planes): {ok}\n", flush=True)
