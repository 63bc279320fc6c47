#!/usr/bin/python3
"""Benchmark: streaming with bounded memory. A uint16 Zarr volume of
--gib GiB (default 8) goes through the seed's pipeline, rechunk + astype
float32 + map_overlap Richardson-Lucy + astype uint16 + to_zarr, with
`halo run --memory M` (default 2G). Reports the peak RSS that
/usr/bin/time -v measures (goal: under 1.5 x M), the chunks read against
the chunks stored (goal: every input chunk read exactly once), and the
throughput. The volume is made once and kept in --dir.

usage: bench/memory.py [--gib 8] [--memory 2G] [--iterations 2] [--dir /tmp/halo-bench]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

import numcodecs
import numpy as np
import tifffile
import zarr

ap = argparse.ArgumentParser()
ap.add_argument("--gib", type=float, default=8.0)
ap.add_argument("--memory", default="2G")
ap.add_argument("--iterations", type=int, default=2)
ap.add_argument("--dir", default="/tmp/halo-bench")
ap.add_argument("--halo", default=os.path.join(os.path.dirname(__file__), "..", "halo"))
args = ap.parse_args()
os.makedirs(args.dir, exist_ok=True)

nz = int(args.gib * (1 << 30) / (2 * 2048 * 2048))
shape, chunks = (nz, 2048, 2048), (64, 256, 256)
src = os.path.join(args.dir, f"memory-{args.gib:g}g.zarr")
if not os.path.exists(os.path.join(src, ".zarray")):
    print(f"making {src}: {shape} uint16, chunks {chunks}", file=sys.stderr, flush=True)
    z = zarr.open(src, mode="w", shape=shape, chunks=chunks, dtype="<u2",
                  compressor=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=1))
    yy, xx = np.mgrid[0:2048, 0:2048]
    base = (800 + 600 * np.sin(yy / 50.0) * np.cos(xx / 70.0)).astype(np.uint16)
    noise = np.random.default_rng(0).integers(0, 64, (97, 2048, 2048), dtype=np.uint16)
    for z0 in range(0, nz, chunks[0]):
        n = min(chunks[0], nz - z0)
        z[z0:z0 + n] = base[None] + noise[np.arange(z0, z0 + n) % 97]
g = np.meshgrid(*[np.arange(9) - 4] * 3, indexing="ij")
psf = np.exp(-sum(x ** 2 for x in g) / 4.0)
tifffile.imwrite(os.path.join(args.dir, "memory-psf.tif"), (psf / psf.sum()).astype(np.float32))
out = os.path.join(args.dir, "memory-out.zarr")
shutil.rmtree(out, ignore_errors=True)
p = os.path.join(args.dir, "memory.json")
with open(p, "w") as f:
    json.dump({"steps": [
        {"name": "raw", "op": "from_zarr", "path": src},
        {"name": "chunked", "op": "rechunk", "input": "raw", "chunks": [64, 512, 512]},
        {"name": "f32", "op": "astype", "input": "chunked", "dtype": "float32"},
        {"name": "decon", "op": "map_overlap", "kernel": "richardson_lucy", "input": "f32",
         "psf": "memory-psf.tif", "iterations": args.iterations, "depth": [8, 8, 8],
         "boundary": "reflect"},
        {"name": "u16", "op": "astype", "input": "decon", "dtype": "uint16"},
        {"name": "out", "op": "to_zarr", "input": "u16", "path": out}]}, f)
print(subprocess.run([args.halo, "run", p, "--dry-run"], capture_output=True, text=True).stdout)
r = subprocess.run(["/usr/bin/time", "-v", args.halo, "run", p, "--json", "--memory", args.memory],
                   capture_output=True, text=True)
if r.returncode:
    sys.exit(r.stderr)
res = json.loads(r.stdout)
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) * 1024
wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", r.stderr).group(1)
stored = len([n for n in os.listdir(src) if not n.startswith(".")])
unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
budget = float(args.memory.rstrip("KMGTB")) * unit.get(args.memory.rstrip("B")[-1:].upper(), 1)
print(f"volume {shape} uint16 ({np.prod(shape) * 2 / (1 << 30):.1f} GiB), --memory {args.memory}, "
      f"RL {args.iterations} iterations, 9^3 PSF")
print(f"peak RSS {rss / (1 << 30):.2f} GiB = {rss / budget:.2f} x the budget (goal < 1.5)")
print(f"chunks read {res['chunks_read']} of {stored} stored "
      f"({'each exactly once' if res['chunks_read'] == stored else 'MISMATCH'})")
print(f"{res['tasks']} tasks in {res['seconds']:.1f} s (wall {wall}), "
      f"{np.prod(shape) * args.iterations / res['seconds'] / 1e6:.1f} Mvox*iter/s")
