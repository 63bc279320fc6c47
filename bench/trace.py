#!/usr/bin/python3
"""Benchmark: the cost of --trace. `halo demo` (whole process) and the
100,000-chunk pipeline of bench/graph.py, each run alternately without and
with --trace so that the machine's drift hits both alike; medians of
--repeat runs after a warm-up, with min and max, and the ratio traced /
untraced (goal for the demo: at most 1.03).

usage: bench/trace.py [--repeat 5] [--dir /tmp/halo-bench] [--halo ./halo]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import time

import zarr

ap = argparse.ArgumentParser()
ap.add_argument("--repeat", type=int, default=5)
ap.add_argument("--dir", default="/tmp/halo-bench")
ap.add_argument("--halo", default=os.path.join(os.path.dirname(__file__), "..", "halo"))
args = ap.parse_args()
os.makedirs(args.dir, exist_ok=True)
trace = os.path.join(args.dir, "bench.trace.json")

tiny = os.path.join(args.dir, "graph-tiny.zarr")
zarr.open(tiny, mode="w", shape=(320, 400, 400), chunks=(8, 8, 8), dtype="<u2", fill_value=3)
ptiny = os.path.join(args.dir, "graph-tiny.json")
with open(ptiny, "w") as f:
    json.dump({"steps": [
        {"name": "raw", "op": "from_zarr", "path": tiny},
        {"name": "s", "op": "map_blocks", "kernel": "scale", "input": "raw", "scale": 2.0},
        {"name": "total", "op": "sum", "input": "s"}]}, f)
workloads = {
    "demo": lambda extra: [args.halo, "demo", os.path.join(args.dir, "demo"), "--quiet", *extra],
    "100,000 tiny chunks": lambda extra: [args.halo, "run", ptiny, "--quiet", *extra],
}

for name, cmd in workloads.items():
    times = {"untraced": [], "traced": []}
    for i in range(args.repeat + 1):
        for mode, extra in [("untraced", []), ("traced", ["--trace", trace])]:
            shutil.rmtree(os.path.join(args.dir, "demo"), ignore_errors=True)
            t = time.perf_counter()
            subprocess.run(cmd(extra), check=True, capture_output=True)
            if i:  # the first round warms up
                times[mode].append(time.perf_counter() - t)
    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"{name}:")
    for m, v in times.items():
        print(f"  {m:9s} {med[m]:8.3f} s  (min {min(v):.3f}, max {max(v):.3f})")
    size = os.path.getsize(trace) / 1e6
    print(f"  traced / untraced (medians): {med['traced'] / med['untraced']:.3f}; "
          f"trace {size:.1f} MB")
os.remove(trace)
