#!/usr/bin/python3
"""Benchmark: the graph layer's overheads against dask.array, side by side
in one invocation.

1. Building: the graph of from_zarr -> astype -> map_overlap (depth 8) ->
   to_zarr over a 2048^3 uint16 array in 64^3 chunks (no chunk is read):
   `halo graph stats` (parse, build, lower; the whole process) against
   dask building the same pipeline and materialising its task graph.
2. Per-task cost: from_zarr -> x*2+1 -> sum over 100,000 chunks of 8^3
   (missing chunks read as the fill value, so almost no work per task):
   `halo run` (the whole process, StarPU start included) against dask's
   threaded scheduler with as many threads as halo has CPU workers.

Each figure is the median of --repeat runs after one warm-up, with min
and max; ratios are dask / halo.

usage: bench/graph.py [--repeat 3] [--dir /tmp/halo-bench] [--halo ./halo]
                      [--threads N] [--skip-dask-build]
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import dask.array as da
import numpy as np
import zarr

ap = argparse.ArgumentParser()
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--dir", default="/tmp/halo-bench")
ap.add_argument("--halo", default=os.path.join(os.path.dirname(__file__), "..", "halo"))
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--skip-dask-build", action="store_true",
                help="dask needs ~20 s and several GB to build the big graph")
args = ap.parse_args()
os.makedirs(args.dir, exist_ok=True)


def pipeline(name, steps):
    p = os.path.join(args.dir, name)
    with open(p, "w") as f:
        json.dump({"steps": steps}, f)
    return p


def timed(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), min(ts), max(ts)


def fmt(t):
    return f"{t[0]:8.3f} s  (min {t[1]:.3f}, max {t[2]:.3f})"


# 1. Building a big graph.
big = os.path.join(args.dir, "graph-2048.zarr")
zarr.open(big, mode="w", shape=(2048,) * 3, chunks=(64,) * 3, dtype="<u2")
pbig = pipeline("graph-big.json", [
    {"name": "raw", "op": "from_zarr", "path": big},
    {"name": "f", "op": "astype", "input": "raw", "dtype": "float32"},
    {"name": "sm", "op": "map_overlap", "kernel": "uniform", "input": "f", "depth": 8,
     "size": 3, "boundary": "reflect"},
    {"name": "out", "op": "to_zarr", "input": "sm", "path": "graph-out.zarr"}])
stats = json.loads(subprocess.run([args.halo, "graph", "stats", pbig, "--json"], check=True,
                                  capture_output=True, text=True).stdout)
t_halo = timed(lambda: subprocess.run([args.halo, "graph", "stats", pbig], check=True,
                                      capture_output=True), args.repeat)
print(f"build 2048^3 / 64^3 map_overlap: halo {stats['tasks']} tasks, {stats['edges']} edges")
print(f"  halo graph stats (whole process) {fmt(t_halo)}")
if not args.skip_dask_build:
    ntasks = []

    def dask_build():
        a = da.from_zarr(big).astype(np.float32)
        b = a.map_overlap(lambda x: x, depth=8, boundary="reflect", dtype=np.float32)
        d = b.to_zarr(os.path.join(args.dir, "graph-out-dask.zarr"), compute=False,
                      overwrite=True)
        ntasks.append(len(dict(d.__dask_graph__())))

    t_dask = timed(dask_build, max(1, args.repeat // 2))
    print(f"  dask build + materialise ({ntasks[-1]} tasks) {fmt(t_dask)}")
    print(f"  ratio dask/halo (median): {t_dask[0] / t_halo[0]:.0f}x")

# 2. Per-task cost on tiny chunks.
tiny = os.path.join(args.dir, "graph-tiny.zarr")
zarr.open(tiny, mode="w", shape=(320, 400, 400), chunks=(8, 8, 8), dtype="<u2", fill_value=3)
ptiny = pipeline("graph-tiny.json", [
    {"name": "raw", "op": "from_zarr", "path": tiny},
    {"name": "s", "op": "map_blocks", "kernel": "scale", "input": "raw", "scale": 2.0,
     "offset": 1},
    {"name": "total", "op": "sum", "input": "s"}])
out = {}


def halo_tiny():
    r = subprocess.run([args.halo, "run", ptiny, "--json", "--ncpu", str(args.threads),
                        "--ncuda", "0"], check=True, capture_output=True, text=True)
    out["halo"] = json.loads(r.stdout)


def dask_tiny():
    x = (da.from_zarr(tiny) * 2.0 + 1).sum()
    out["dask"] = float(x.compute(scheduler="threads", num_workers=args.threads))


t_halo = timed(halo_tiny, args.repeat)
t_dask = timed(dask_tiny, args.repeat)
nchunks = 40 * 50 * 50
assert out["halo"]["results"]["total"] == out["dask"], (out["halo"], out["dask"])
print(f"per-task cost, {nchunks} chunks of 8^3, {args.threads} threads/workers "
      f"(results equal: {out['dask']:.0f}):")
print(f"  halo run (whole process, {out['halo']['tasks']} StarPU tasks) {fmt(t_halo)}"
      f"  = {t_halo[0] / nchunks * 1e6:.1f} us per chunk")
print(f"  dask threaded (build + compute)                {fmt(t_dask)}"
      f"  = {t_dask[0] / nchunks * 1e6:.1f} us per chunk")
print(f"  ratio dask/halo (median): {t_dask[0] / t_halo[0]:.1f}x")
