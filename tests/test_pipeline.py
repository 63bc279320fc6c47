"""halo run against python3-dask: every pipeline here is also computed by
dask.array (2022.12 semantics) in this test, and the outputs are compared
value by value and dtype by dtype: rechunk, astype, each map_blocks kernel,
fused chains, map_overlap with each boundary (and with a depth larger than
a chunk), Richardson-Lucy against a numpy RL through dask's map_overlap,
reductions to scalars and along each axis. Also: pipeline errors name the
file, step and field; a failing chunk leaves no output; each input chunk is
read exactly once; halo graph's counts match the chunk grids."""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import warnings

import dask.array as da
import numpy as np
import scipy.ndimage as ndi
import tifffile
import zarr

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import HALO, check, done, halo, interrupt, path, skip  # noqa: E402

warnings.filterwarnings("ignore", category=RuntimeWarning)  # NaN from sqrt(-1): expected
rng = np.random.default_rng(11)
NP = {"uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
      "int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
      "float32": np.float32, "float64": np.float64}
NPX = dict(NP, float16=np.float16, bool=np.bool_)  # stored, not computed on


def write_zarr(a, chunks, name):
    p = path(name)
    shutil.rmtree(p, ignore_errors=True)
    z = zarr.open(p, mode="w", shape=a.shape, chunks=chunks, dtype=a.dtype)
    z[...] = a
    return p


def pipeline(name, steps):
    p = path(name + ".json")
    with open(p, "w") as f:
        json.dump({"steps": steps}, f)
    return p


def run(p, *opts):
    return halo("run", p, "--quiet", *opts, check_rc=0)


def run_json(p, *opts):
    """halo run --json's object, or {} (and a failed check) when it failed."""
    r = run(p, "--json", *opts)
    if not check(r.returncode == 0, f"halo run {os.path.basename(p)} --json", r.stderr):
        return {}
    return json.loads(r.stdout)


def same(out, ref, what, rtol=0.0):
    """Output zarr equals ref in shape, dtype and values (within rtol)."""
    got = zarr.open(out, mode="r")[...]
    if got.shape != ref.shape or got.dtype != ref.dtype:
        return check(False, what, f"got {got.shape} {got.dtype}, want {ref.shape} {ref.dtype}")
    if rtol == 0.0:
        ok = np.array_equal(got, ref, equal_nan=True)
        return check(ok, what, f"max diff {np.nanmax(np.abs(got.astype(float) - ref)):.3g}")
    # NaN and infinities where the reference has them, the same ones; the
    # tolerance over the finite rest (nanmax passed a NaN anywhere).
    g, r = got.astype(np.float64), ref.astype(np.float64)
    fin = np.isfinite(r)
    if not np.array_equal(np.isfinite(g), fin) or not np.array_equal(g[~fin], r[~fin],
                                                                      equal_nan=True):
        return check(False, what, f"non-finite values differ: {int((np.isfinite(g) != fin).sum())} "
                     "places")
    scale = max(float(np.abs(r[fin]).max()) if fin.any() else 0.0, 1e-30)
    err = float(np.abs(g[fin] - r[fin]).max()) / scale if fin.any() else 0.0
    return check(err <= rtol, f"{what} (rel {err:.1e})")


# Inputs: shapes that no chunking divides.
u16 = rng.integers(0, 4000, (23, 37, 41), dtype=np.uint16)
f32 = (rng.standard_normal((23, 37, 41)) * 50).astype(np.float32)
i16 = rng.integers(-3000, 3000, (23, 37, 41), dtype=np.int16)
pu16 = write_zarr(u16, (7, 16, 16), "u16.zarr")
pf32 = write_zarr(f32, (7, 16, 16), "f32.zarr")
pi16 = write_zarr(i16, (5, 20, 9), "i16.zarr")
du16 = da.from_zarr(pu16)
df32 = da.from_zarr(pf32)
di16 = da.from_zarr(pi16)
# 64-bit integers with values a double cannot hold (2^53 + 1 and beyond)
i64 = rng.integers(-2**62, 2**62, (23, 37, 41), dtype=np.int64)
i64[0, 0, :4] = [2**63 - 1, -2**63, 2**53 + 1, -(2**53 + 1)]
u64 = rng.integers(0, 2**64 - 1, (23, 37, 41), dtype=np.uint64, endpoint=True)
u64[0, 0, :4] = [2**64 - 1, 2**63 + 1, 2**53 + 1, 0]
di64 = da.from_zarr(write_zarr(i64, (7, 16, 16), "i64.zarr"))
du64 = da.from_zarr(write_zarr(u64, (5, 20, 9), "u64.zarr"))
pi64, pu64 = path("i64.zarr"), path("u64.zarr")

# 1. rechunk, to any chunking (irregular edges, -1 for a whole axis), with
# the chunks dask gives for the same request.
for chunks in [[10, 20, 20], [23, 1, 41], [4, -1, 7], [100, 100, 100]]:
    want = du16.rechunk(tuple(chunks)).chunksize
    out = path("re.zarr")
    run(pipeline("re", [
        {"name": "a", "op": "from_zarr", "path": pu16},
        {"name": "r", "op": "rechunk", "input": "a", "chunks": chunks},
        {"name": "o", "op": "to_zarr", "input": "r", "path": out, "overwrite": True}]))
    same(out, du16.rechunk(want).compute(), f"rechunk to {chunks}: values")
    check(zarr.open(out, mode="r").chunks == want, f"rechunk to {chunks}: stored chunks",
          zarr.open(out, mode="r").chunks)

# A rechunk's chunks are submitted in tiles of one input chunk's worth
# (here 2x2x2 of 4x8x8 in 7x16x16; cut at the edges), each chunk once, so
# that the chunks reading the same inputs run one after another.
out, trace = path("re.zarr"), path("re-trace.json")
run(pipeline("re", [
    {"name": "a", "op": "from_zarr", "path": pu16},
    {"name": "r", "op": "rechunk", "input": "a", "chunks": [4, 8, 8]},
    {"name": "o", "op": "to_zarr", "input": "r", "path": out, "overwrite": True}]),
    "--trace", trace)
with open(trace) as f:
    ev = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X" and e["name"] == "write"]
got = [tuple(e["args"]["chunk"]) for e in sorted(ev, key=lambda e: e["args"]["id"])]
grid, tile = (6, 5, 6), (2, 2, 2)
# Each tile's chunks one after another (whichever axis the walk takes
# innermost), every chunk once.
tiles = [tuple(c // t for c, t in zip(chunk, tile)) for chunk in got]
runs = [t for i, t in enumerate(tiles) if i == 0 or t != tiles[i - 1]]
check(sorted(got) == sorted(np.ndindex(*grid)) and len(runs) == len(set(runs)) == 3 * 3 * 3,
      "a rechunk's chunks are written tile by tile, each once", got[:12])
same(out, u16, "rechunk in tiles: values")
# So an input chunk is held while its tile is written, not until the next
# row: a row of 16 input chunks (2 deep) in C order, one tile's 2 here.
wide = path("wide.zarr")
zw = zarr.open(wide, mode="w", shape=(16, 64, 4096), chunks=(8, 32, 256), dtype="u2")
r = halo("run", pipeline("wide", [
    {"name": "a", "op": "from_zarr", "path": wide},
    {"name": "r", "op": "rechunk", "input": "a", "chunks": [16, 16, 128]},
    {"name": "o", "op": "to_zarr", "input": "r", "path": path("wide-out.zarr"),
     "overwrite": True}]), "--dry-run")
m = re.search(r"([0-9.]+) KiB shared by neighbouring chunks", r.stdout + r.stderr)
check(m and abs(float(m.group(1)) - 2 * 8 * 32 * 256 * 2 / 1024) < 0.5,
      "a wide rechunk holds one tile's input chunks, not a row's", (r.stdout + r.stderr)[-300:])
# Two outputs that walk one input in different orders (y bands, x bands),
# a step of each at a time: an input chunk stays from the first band that
# reads it, in either walk, to the last. Worked out here from the chunks'
# extents alone; halo counted each walk's hold apart (256 MiB where 352
# were held, measured 452 MiB peak RSS on a 512 MiB input).
two = path("two_walks.zarr")
zarr.open(two, mode="w", shape=(8, 64, 64), chunks=(2, 16, 16), dtype="u2")
steps = [[(slice(None), slice(2 * s, 2 * s + 2), slice(None)) for s in range(32)],
         [(slice(None), slice(None), slice(2 * s, 2 * s + 2)) for s in range(32)]]
span = {}
for walk in steps:
    for s, (_, ys, xs) in enumerate(walk):
        for cy in range(4):
            for cx in range(4):
                y = range(64)[ys]
                x = range(64)[xs]
                if y[0] // 16 <= cy <= y[-1] // 16 and x[0] // 16 <= cx <= x[-1] // 16:
                    lo, hi = span.get((cy, cx), (s, s))
                    span[(cy, cx)] = (min(lo, s), max(hi, s))
most = max(sum(4 for lo, hi in span.values() if lo <= s <= hi and lo < hi) for s in range(32))
r = halo("run", pipeline("two_walks", [
    {"name": "a", "op": "from_zarr", "path": two},
    {"name": "y", "op": "rechunk", "input": "a", "chunks": [8, 2, 64]},
    {"name": "x", "op": "rechunk", "input": "a", "chunks": [8, 64, 2]},
    {"name": "oy", "op": "to_zarr", "input": "y", "path": path("two_y.zarr"), "overwrite": True},
    {"name": "ox", "op": "to_zarr", "input": "x", "path": path("two_x.zarr"), "overwrite": True}]),
         "--dry-run")
m = re.search(r"([0-9.]+) KiB shared by neighbouring chunks", r.stdout)
check(most == 44 and m and float(m.group(1)) == most * 2 * 16 * 16 * 2 / 1024,
      f"two outputs walking one input in different orders hold it over both walks ({most} "
      "chunks)", r.stdout[-300:])

# 2. astype: float to int truncates, int to int wraps, as numpy.
for src, dt in [(pf32, "int16"), (pf32, "uint8"), (pi16, "uint8"), (pi16, "float64"),
                (pu16, "int8"), (pf32, "float64")]:
    out = path("as.zarr")
    run(pipeline("as", [
        {"name": "a", "op": "from_zarr", "path": src},
        {"name": "t", "op": "astype", "input": "a", "dtype": dt},
        {"name": "o", "op": "to_zarr", "input": "t", "path": out, "overwrite": True}]))
    ref = da.from_zarr(src)
    if dt == "uint8" and ref.dtype == np.float32:
        # numpy leaves out-of-range float to int undefined: compare where defined
        ref = da.clip(ref, 0, 255)
        run(pipeline("as", [
            {"name": "a", "op": "from_zarr", "path": src},
            {"name": "c", "op": "map_blocks", "kernel": "clip", "input": "a", "lo": 0, "hi": 255},
            {"name": "t", "op": "astype", "input": "c", "dtype": dt},
            {"name": "o", "op": "to_zarr", "input": "t", "path": out, "overwrite": True}]))
    same(out, ref.astype(NP[dt]).compute(), f"astype {ref.dtype} -> {dt}")

def astype_each(name, values, dtypes, what):
    """A pipeline's astype of values (1D) to each of dtypes equals numpy's."""
    src, out = path(name + ".zarr"), path(name + "_as.zarr")
    zarr.open(src, mode="w", shape=(1, 1, values.size), chunks=(1, 1, 8),
              dtype=values.dtype)[:] = values[None, None]
    for dt in dtypes:
        run(pipeline(name, [
            {"name": "a", "op": "from_zarr", "path": src},
            {"name": "t", "op": "astype", "input": "a", "dtype": dt},
            {"name": "o", "op": "to_zarr", "input": "t", "path": out, "overwrite": True}]))
        with np.errstate(invalid="ignore"):
            want = values.astype(NPX[dt])
        got = zarr.open(out, mode="r")[:].ravel() if os.path.exists(out) else None
        check(got is not None and np.array_equal(got, want, equal_nan=True) and
              got.dtype == want.dtype, f"astype {values.dtype} -> {dt} {what}",
              f"{got} vs {want}")


# Values C leaves undefined (NaN, infinities, out of range) convert as
# numpy 1.24 does on x86, to every integer type.
edge = np.array([300.0, -1.0, 70000.0, 3e9, -3e9, 2.0**32, 1e19, -1e19, 1e30, np.nan, np.inf,
                 -np.inf, 2.7, -2.7, 65535.5, -0.5], dtype=np.float64)
astype_each("edge", edge, ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32",
                           "int64", "float16", "bool"],
            "of NaN, infinities and out-of-range values as numpy on x86")
# float16's casts go through double in numpy: uint32 gets NaN and -inf as
# 0, where float32's give 2147483648.
astype_each("half", np.array([np.nan, -np.inf, np.inf, -1, 65504, -65504, 3e4, 2.5], np.float16),
            NP, "as numpy")

# 3. Each map_blocks kernel, with numpy's result types.
unary = [("scale", {"scale": 0.37, "offset": -2.5}, lambda a: a * 0.37 + -2.5),
         ("clip", {"lo": -10, "hi": 700}, lambda a: da.clip(a, -10, 700)),
         ("clip", {"lo": 0.5, "hi": 99.5}, lambda a: da.clip(a, 0.5, 99.5)),
         ("clip", {"lo": -2**63, "hi": 2**63 - 1}, lambda a: da.clip(a, -2**63, 2**63 - 1)),
         ("abs", {}, abs), ("sqrt", {}, da.sqrt), ("log1p", {}, da.log1p)]
for kernel, params, f in unary:
    for src, ref in [(pu16, du16), (pf32, df32), (pi16, di16), (pi64, di64), (pu64, du64)]:
        out = path("k.zarr")
        run(pipeline("k", [
            {"name": "a", "op": "from_zarr", "path": src},
            dict({"name": "k", "op": "map_blocks", "kernel": kernel, "input": "a"}, **params),
            {"name": "o", "op": "to_zarr", "input": "k", "path": out, "overwrite": True}]))
        with np.errstate(invalid="ignore"):
            want = f(ref).compute()
        if want.dtype == np.float16:  # numpy's sqrt of 8-bit ints: float32 in halo
            want = want.astype(np.float32)
        same(out, want, f"{kernel}{params or ''} of {ref.dtype}",
             rtol=1e-6 if want.dtype.kind == "f" else 0.0)

# clip returns the bound where a value equals it, as numpy does: the sign
# of a zero comes from the bound (halo kept the value's).
zeros = np.array([[0.0, -0.0, 0.5, -0.5, np.nan, 1.0]], np.float64)
for dt in ("float32", "float64"):
    src = write_zarr(zeros.astype(dt), (1, 4), f"zeros_{dt}.zarr")
    for lo, hi in [(-0.0, 0.5), (0.0, 0.0), (-0.0, -0.0), (0.0, 0.5)]:
        out = path("zclip.zarr")
        run(pipeline("zclip", [
            {"name": "a", "op": "from_zarr", "path": src},
            {"name": "k", "op": "map_blocks", "kernel": "clip", "input": "a", "lo": lo, "hi": hi},
            {"name": "o", "op": "to_zarr", "input": "k", "path": out, "overwrite": True}]))
        got = zarr.open(out, mode="r")[...]
        want = np.clip(zeros.astype(dt), lo, hi)
        check(got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True) and
              np.array_equal(np.signbit(got), np.signbit(want)),
              f"clip({lo}, {hi}) of {dt} signed zeros: numpy's signs", (got, want))

binary = [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
          ("div", lambda a, b: a / b), ("maximum", da.maximum), ("minimum", da.minimum)]
pairs = [(pu16, du16, pi16, di16), (pf32, df32, pu16, du16), (pi16, di16, pi16, di16),
         (pi64, di64, pu16, du16), (pu64, du64, pu64, du64), (pu64, du64, pi16, di16)]
for kernel, f in binary:
    for pa, ra, pb, rb in pairs:
        out = path("b.zarr")
        run(pipeline("b", [
            {"name": "a", "op": "from_zarr", "path": pa},
            {"name": "b", "op": "from_zarr", "path": pb},
            {"name": "k", "op": "map_blocks", "kernel": kernel, "inputs": ["a", "b"]},
            {"name": "o", "op": "to_zarr", "input": "k", "path": out, "overwrite": True}]))
        with np.errstate(divide="ignore", invalid="ignore"):
            want = f(ra, rb).compute()
        same(out, want, f"{kernel} of {ra.dtype} and {rb.dtype} (chunks unified)",
             rtol=1e-6 if want.dtype.kind == "f" else 0.0)

# numpy's result types for every pair of halo's types (from the DOT labels).
names = list(NP)
steps = [{"name": n, "op": "from_zarr", "path": write_zarr(np.ones((2, 3), NP[n]), (2, 3), n + ".zarr")}
         for n in names]
want = {}
for x in names:
    for y in names:
        for kernel, f in [("add", np.add), ("div", np.true_divide), ("maximum", np.maximum)]:
            t = f(np.ones(1, NP[x]), np.ones(1, NP[y])).dtype
            want[f"{kernel}_{x}_{y}"] = str(t)
            steps.append({"name": f"{kernel}_{x}_{y}", "op": "map_blocks", "kernel": kernel,
                          "inputs": [x, y]})
# clip's bounds as numpy 1.x casts Python scalars: value-based, and a
# float (even 0.0) beside integers gives float64.
bounds = [(0, 100), (0.0, 100.0), (-1, 5), (0, 70000), (0, 65504), (0.5, 2), (0, 1e39),
          (-3000000000, 5), (0, 2**40), (-1, 2**62), (-2**63, 2**63 - 1), (0, 2**63 - 1)]
for x in names:
    for k, (lo, hi) in enumerate(bounds):
        t = np.clip(np.ones(1, NP[x]), lo, hi).dtype
        want[f"clip{k}_{x}"] = str(t)
        steps.append({"name": f"clip{k}_{x}", "op": "map_blocks", "kernel": "clip", "input": x,
                      "lo": lo, "hi": hi})
steps.append({"name": "o", "op": "sum", "input": "uint8"})
r = halo("graph", "dot", pipeline("types", steps), check_rc=0)
got = {}
for line in r.stdout.splitlines():
    if "map_blocks" in line:
        parts = line.split('label="')[1].split("\\n")
        got[parts[0]] = parts[2].split()[1]
bad = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
check(not bad and len(got) == len(want), f"numpy's result types for {len(want)} kernel/type/bound cases",
      bad)

# 4. A fused chain runs as one task per chunk and equals dask step by step.
chain = [
    {"name": "a", "op": "from_zarr", "path": pu16},
    {"name": "f", "op": "astype", "input": "a", "dtype": "float32"},
    {"name": "s", "op": "map_blocks", "kernel": "scale", "input": "f", "scale": 0.01, "offset": 1},
    {"name": "l", "op": "map_blocks", "kernel": "log1p", "input": "s"},
    {"name": "m", "op": "map_blocks", "kernel": "mul", "inputs": ["l", "f"]},
    {"name": "c", "op": "map_blocks", "kernel": "clip", "input": "m", "lo": 0, "hi": 5000},
    {"name": "o", "op": "to_zarr", "input": "c", "path": path("chain.zarr"), "overwrite": True}]
pc = pipeline("chain", chain)
run(pc)
fa = du16.astype(np.float32)
same(path("chain.zarr"), da.clip(da.log1p(fa * 0.01 + 1) * fa, 0, 5000).compute(),
     "fused chain astype+scale+log1p+mul+clip", rtol=1e-6)
r = halo("graph", "stats", pc, "--json", check_rc=0)
st = json.loads(r.stdout or "{}")
nchunks = 4 * 3 * 3
check(st.get("plan_nodes") == 3 and st.get("tasks_by_kind", {}).get("elementwise") == nchunks,
      "the chain is fused: read, one elementwise task per chunk, write", st)
check(st.get("tasks") == 3 * nchunks and st.get("edges") == 2 * nchunks,
      "graph stats: tasks and edges from the chunk grid", st)

# 5. map_overlap with each boundary, a kernel scipy also runs.
def uniform_ref(ref, size, depth, boundary):
    return da.map_overlap(lambda b: ndi.uniform_filter(b, size, mode="reflect"), ref,
                          depth=depth, boundary=boundary, trim=True,
                          dtype=np.float32).compute()


for boundary, dask_boundary in [("reflect", "reflect"), ("periodic", "periodic"),
                                ("nearest", "nearest"), ("constant", 7.5), ("none", "none"),
                                (-3, -3)]:
    step = {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "f", "size": 5,
            "depth": [2, 3, 2], "boundary": boundary}
    if boundary == "constant":
        step["constant"] = 7.5
    out = path("ov.zarr")
    r = run(pipeline("ov", [
        {"name": "a", "op": "from_zarr", "path": pu16},
        {"name": "f", "op": "astype", "input": "a", "dtype": "float32"}, step,
        {"name": "o", "op": "to_zarr", "input": "u", "path": out, "overwrite": True}]))
    same(out, uniform_ref(du16.astype(np.float32), 5, {0: 2, 1: 3, 2: 2}, dask_boundary),
         f"map_overlap uniform, boundary {boundary}", rtol=2e-6)
    check("warning" not in r.stderr, f"... depth equal to the reach: no warning ({boundary})",
          r.stderr)

# An astype to float16 before map_overlap rounds as dask's does (the plan
# skipped it as a float cast, and 2049 stayed 2049 where float16 gives
# 2048); to float64 and float32 it may be skipped.
# (Below float16's largest, 65504: its infinities are checked apart, below.)
big = rng.integers(0, 65504, (23, 37, 41), dtype=np.uint16)
big[0, 0, :3] = [2049, 4097, 65000]
pbig = write_zarr(big, (7, 16, 16), "big_u16.zarr")
for casts in (["float16"], ["float16", "float64"], ["float64", "float32"]):
    cast_steps = [{"name": "a", "op": "from_zarr", "path": pbig}]
    ref = da.from_zarr(pbig)
    for k, dt in enumerate(casts):
        cast_steps.append({"name": f"c{k}", "op": "astype", "input": cast_steps[-1]["name"], "dtype": dt})
        ref = ref.astype(dt)
    out = path("f16ov.zarr")
    run(pipeline("f16ov", cast_steps + [
        {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": f"c{len(casts) - 1}",
         "size": 3, "depth": 1, "boundary": "nearest"},
        {"name": "o", "op": "to_zarr", "input": "u", "path": out, "overwrite": True}]))
    same(out, uniform_ref(ref.astype(np.float32), 3, 1, "nearest"),
         f"astype {' then '.join(casts)}, then map_overlap: as dask rounds", rtol=2e-6)
# Infinities through the uniform filter: inf where a window holds one, as
# the windowed mean is. (scipy's running sums give NaN along the rest of
# the row once an inf has passed: no oracle here.)
inf_u16 = big.copy()
inf_u16[3, 5, :4] = 65535
inf_u16[9, 20, 30] = 65535
pinf = write_zarr(inf_u16, (7, 16, 16), "inf_u16.zarr")
run(pipeline("infov", [
    {"name": "a", "op": "from_zarr", "path": pinf},
    {"name": "c", "op": "astype", "input": "a", "dtype": "float16"},
    {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "c", "size": 3, "depth": 1,
     "boundary": "nearest"},
    {"name": "o", "op": "to_zarr", "input": "u", "path": path("infov.zarr"), "overwrite": True}]))
with np.errstate(over="ignore"):
    f16 = inf_u16.astype(np.float16).astype(np.float64)
windows = np.lib.stride_tricks.sliding_window_view(np.pad(f16, 1, mode="edge"), (3, 3, 3))
same(path("infov.zarr"), windows.mean(axis=(-1, -2, -3)).astype(np.float32),
     "astype float16 (65535 is inf), then map_overlap: inf where a window holds one, as the "
     "windowed mean", rtol=2e-6)
# A constant boundary of -1 on uint64 pads with 2^64 - 1, as numpy wraps
# it (it padded with 0).
zu64 = write_zarr(np.zeros((6, 8, 8), np.uint64), (3, 4, 4), "zeros_u64.zarr")
out = path("u64pad.zarr")
run(pipeline("u64pad", [
    {"name": "a", "op": "from_zarr", "path": zu64},
    {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "a", "size": 3, "depth": 1,
     "boundary": -1},
    {"name": "o", "op": "to_zarr", "input": "u", "path": out, "overwrite": True}]))
same(out, da.map_overlap(lambda b: ndi.uniform_filter(b.astype(np.float32), 3, mode="reflect"),
                        da.from_zarr(zu64), depth=1, boundary=-1, trim=True,
                        dtype=np.float32).compute(),
     "uint64 with a constant boundary of -1: padded with 2^64 - 1, as dask pads", rtol=2e-6)

# A uniform filter whose depth covers its radius, into a TIFF (16-page
# chunks) from 40-plane chunks, computes in 16-plane slabs (5 of them, a
# third the memory) across the input's chunks, and equals dask's on the
# input's chunks; through a cast too.
thick = rng.integers(0, 4000, (80, 24, 20), dtype=np.uint16)
pthick = write_zarr(thick, (40, 12, 10), "thick.zarr")
for boundary, dask_boundary, cast in [("reflect", "reflect", None), ("none", "none", None),
                                      ("constant", 7.5, "uint16")]:
    step = {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "f", "size": 3,
            "depth": 1, "boundary": boundary}
    if boundary == "constant":
        step["constant"] = 7.5
    steps = [{"name": "a", "op": "from_zarr", "path": pthick},
             {"name": "f", "op": "astype", "input": "a", "dtype": "float32"}, step]
    if cast:
        steps.append({"name": "c", "op": "astype", "input": "u", "dtype": cast})
    steps.append({"name": "o", "op": "to_tiff", "input": steps[-1]["name"],
                  "path": path("thin.tif"), "overwrite": True})
    pt = pipeline("thin", steps)
    ts = json.loads(halo("graph", "stats", pt, "--json", check_rc=0).stdout or "{}")
    check(ts.get("tasks_by_kind", {}).get("map_overlap") == 2 * 5 * 2 * 2,
          f"uniform into a TIFF ({boundary}): 16-plane slabs, 2 tasks each", ts)
    run(pt)
    want = uniform_ref(da.from_zarr(pthick).astype(np.float32), 3, 1, dask_boundary)
    want = want.astype(cast) if cast else want
    got = tifffile.imread(path("thin.tif"))
    check(got.dtype == want.dtype and np.array_equal(got, want),
          f"... and equals dask's on the input's chunks ({boundary}{', ' + cast if cast else ''})",
          got.dtype)

# A rechunk reads through one cast to a float type, converting as it
# assembles: a TIFF of astype float32 held the float32 layer beside the
# uint16 one. Not where a store would then convert again in the same step
# (float64 2.5000001 through float32 2.5 stored as uint16 is 2, not 3).
pc32 = pipeline("cast-tiff", [
    {"name": "a", "op": "from_zarr", "path": pthick},
    {"name": "f", "op": "astype", "input": "a", "dtype": "float32"},
    {"name": "o", "op": "to_tiff", "input": "f", "path": path("cast.tif"), "overwrite": True}])
ts = json.loads(halo("graph", "stats", pc32, "--json", check_rc=0).stdout or "{}")
check(ts.get("plan_nodes") == 3 and ts.get("tasks_by_kind", {}).get("elementwise", 0) == 0,
      "astype float32 into a TIFF: read, rechunk (converting), write", ts)
run(pc32)
got = tifffile.imread(path("cast.tif"))
check(got.dtype == np.float32 and np.array_equal(got, thick.astype(np.float32)),
      "... and the TIFF equals numpy's astype", got.dtype)
halves = np.resize(np.array([2.5000001, 3.4999999, -0.5, 70000.2, 1.5], np.float64), (6, 10, 9))
phalves = write_zarr(halves, (3, 5, 9), "halves.zarr")
out = path("halves_out.zarr")
run(pipeline("halves", [
    {"name": "a", "op": "from_zarr", "path": phalves},
    {"name": "f", "op": "astype", "input": "a", "dtype": "float32"},
    {"name": "o", "op": "to_zarr", "input": "f", "path": out, "chunks": [2, 4, 4],
     "dtype": "uint16", "overwrite": True}]))
same(out, np.clip(np.rint(halves.astype(np.float32)), 0, 65535).astype(np.uint16),
     "float64 -> astype float32 -> rechunked uint16 store: rounded from float32, once each")

# Chained overlaps widen the region an output chunk needs, they do not
# multiply it: six in a row on a 0.1 MB array ran (the estimate grew 27x
# per step, to 300 GB, and the run was refused).
steps = [{"name": "u0", "op": "from_zarr", "path": pf32}]
ref = df32
for i in range(1, 7):
    steps.append({"name": f"u{i}", "op": "map_overlap", "kernel": "uniform", "input": f"u{i - 1}",
                  "size": 3, "depth": 1})
    ref = da.map_overlap(lambda b: ndi.uniform_filter(b, 3, mode="reflect"), ref, depth=1,
                         boundary="reflect", trim=True, dtype=np.float32)
out = path("ov6.zarr")
p6 = pipeline("ov6", steps + [{"name": "o", "op": "to_zarr", "input": "u6", "path": out,
                               "overwrite": True}])
dry = halo("run", p6, "--dry-run", check_rc=0)
per = re.search(r"memory: ([0-9.]+) MiB per output chunk", dry.stdout + dry.stderr)
check(per is not None and float(per.group(1)) < 10, "six chained overlaps: memory per output chunk",
      dry.stdout + dry.stderr)
r = run(p6)
if check(r.returncode == 0, "six chained overlaps run", r.stderr):
    same(out, ref.compute(), "... and equal dask's six map_overlaps", rtol=2e-6)

# The estimate is never under what a run holds: fine chunks, an overlap
# and coarser rechunks, where two 30-wide blocks span 12 blocks of 5 but
# the axis's mean step (its last block short) counted 11: 4.2 MB per output
# chunk where its 20 x 12 x 12 overlap blocks come to 4.7 MB.
zarr.open(path("fine.zarr"), mode="w", shape=(40, 96, 96), chunks=(40, 96, 96), dtype="f4")
pfine = pipeline("fine", [
    {"name": "s", "op": "from_zarr", "path": path("fine.zarr")},
    {"name": "a", "op": "rechunk", "input": "s", "chunks": [1, 5, 5]},
    {"name": "b", "op": "map_overlap", "kernel": "uniform", "input": "a", "size": 3, "depth": 1},
    {"name": "c", "op": "rechunk", "input": "b", "chunks": [10, 30, 30]},
    {"name": "d", "op": "rechunk", "input": "c", "chunks": [20, 60, 60]},
    {"name": "o", "op": "to_zarr", "input": "d", "path": path("fine_out.zarr"), "overwrite": True}])
dry = halo("run", pfine, "--dry-run", check_rc=0)
per = re.search(r"memory: ([0-9.]+) MiB per output chunk", dry.stdout + dry.stderr)
check(per is not None and float(per.group(1)) * (1 << 20) >= 4.6e6,
      "the memory estimate covers blocks that advance unevenly", dry.stdout + dry.stderr)

# Straight on uint16, dask pads in uint16: a constant 5.5 pads 5, -1 pads 65535.
for boundary in [5.5, -1]:
    out = path("ovu.zarr")
    run(pipeline("ovu", [
        {"name": "a", "op": "from_zarr", "path": pu16},
        {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "a", "size": 5,
         "depth": 2, "boundary": boundary},
        {"name": "o", "op": "to_zarr", "input": "u", "path": out, "overwrite": True}]))
    ref = da.map_overlap(lambda b: ndi.uniform_filter(b.astype(np.float32), 5, mode="reflect"),
                         du16, depth=2, boundary=boundary, trim=True,
                         dtype=np.float32).compute()
    same(out, ref, f"map_overlap on uint16, constant {boundary}: padded in uint16 as dask does",
         rtol=2e-6)

# Arrays with different chunks meet in their common blocks, as in dask, so
# a map_overlap after them sees the same blocks (u16 in 7x16x16, i16 in
# 5x20x9).
out = path("mix.zarr")
r = run(pipeline("mix", [
    {"name": "a", "op": "from_zarr", "path": pu16},
    {"name": "b", "op": "from_zarr", "path": pi16},
    {"name": "s", "op": "map_blocks", "kernel": "add", "inputs": ["a", "b"]},
    {"name": "f", "op": "astype", "input": "s", "dtype": "float32"},
    {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "f", "size": 7, "depth": 1,
     "boundary": "reflect"},
    {"name": "o", "op": "to_zarr", "input": "u", "path": out, "overwrite": True}]))
same(out, uniform_ref((du16 + di16).astype(np.float32), 7, 1, "reflect"),
     "mixed chunks unified as dask does, then map_overlap (seams where blocks meet)", rtol=2e-6)
check('step "u": depth 1 along axis 0 is less than the uniform filter\'s reach of 3: values '
      "near the chunks' edges depend on the chunks" in r.stderr and r.stderr.count("\n") == 1,
      "a depth short of the kernel's reach is warned of, once", r.stderr)

# A halo deeper than the chunks: dask merges blocks first, so does halo.
out = path("deep.zarr")
r = run_json(pipeline("deep", [
    {"name": "a", "op": "from_zarr", "path": pi16},
    {"name": "f", "op": "astype", "input": "a", "dtype": "float32"},
    {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "f", "size": 13,
     "depth": [6, 6, 6], "boundary": "periodic"},
    {"name": "o", "op": "to_zarr", "input": "u", "path": out, "overwrite": True}]))
same(out, uniform_ref(di16.astype(np.float32), 13, 6, "periodic"),
     "map_overlap with depth > chunk (blocks merged as dask does)", rtol=2e-6)
check(r.get("chunks_read") == 5 * 2 * 5, "every input chunk is read exactly once", r)
# An OME-Zarr pyramid reads back the levels it wrote: not input chunks.
r = run_json(pipeline("pyr", [
    {"name": "a", "op": "from_zarr", "path": pi16},
    {"name": "o", "op": "to_zarr", "input": "a", "path": path("pyr.ome.zarr"), "pyramid": 2,
     "overwrite": True}]))
check(r.get("chunks_read") == 5 * 2 * 5 and r.get("bytes_read") == 5 * 2 * 5 * (5 * 20 * 9 * 2),
      "... a pyramid's reads of the levels it wrote are not counted as input", r)
# Under a tight --memory the pyramid's pass keeps within StarPU's limit: a
# level's chunk reads 2x2 of the level before, and counting one let 30 MB
# of chunks into flight under 16 MB; StarPU waited for memory forever.
pyr_big = np.random.default_rng(5).integers(0, 60000, (64, 512, 512), dtype=np.uint16)
pbig = write_zarr(pyr_big, (16, 128, 128), "pyr-big.zarr")
try:
    r = halo("run", pipeline("pyr-tight", [
        {"name": "a", "op": "from_zarr", "path": pbig},
        {"name": "o", "op": "to_zarr", "input": "a", "path": path("pyr-tight.ome.zarr"),
         "pyramid": 1, "overwrite": True}]), "--memory", "16M", "--quiet", timeout=120)
    ok = r.returncode == 0 and np.array_equal(zarr.open(path("pyr-tight.ome.zarr/0"))[...], pyr_big)
    check(ok and zarr.open(path("pyr-tight.ome.zarr/1")).shape == (64, 256, 256),
          "a pyramid under --memory 16M completes", r.stderr)
except subprocess.TimeoutExpired:
    check(False, "a pyramid under --memory 16M completes", "hung for 120 s")
    for f in os.listdir(path("")):  # what the killed run left
        if f.startswith("pyr-tight.ome.zarr.halo-"):
            shutil.rmtree(path(f))

# 6. Richardson-Lucy through map_overlap equals dask.map_overlap of numpy RL.
def rl(block, psf, iters):
    pad = np.zeros(block.shape)
    pad[:psf.shape[0], :psf.shape[1], :psf.shape[2]] = psf
    pad = np.roll(pad, [-(p // 2) for p in psf.shape], axis=(0, 1, 2))
    H = np.fft.rfftn(pad)
    img = block.astype(np.float64)
    est = img.copy()
    for _ in range(iters):
        conv = np.fft.irfftn(np.fft.rfftn(est) * H, s=block.shape)
        ratio = img / np.maximum(conv, 1e-12)
        est = est * np.fft.irfftn(np.fft.rfftn(ratio) * np.conj(H), s=block.shape)
    return est.astype(np.float32)


g = np.meshgrid(*[np.arange(5) - 2] * 3, indexing="ij")
psf = np.exp(-sum(x ** 2 for x in g) / 2.0)
psf /= psf.sum()
tifffile.imwrite(path("psf.tif"), psf.astype(np.float32))
img = (ndi.gaussian_filter(rng.random((20, 30, 26)), 1) * 1000 + 10).astype(np.uint16)
pimg = write_zarr(img, (10, 16, 13), "img.zarr")
out = path("rl.zarr")
run(pipeline("rl", [
    {"name": "raw", "op": "from_zarr", "path": pimg},
    {"name": "f", "op": "astype", "input": "raw", "dtype": "float32"},
    {"name": "decon", "op": "map_overlap", "kernel": "richardson_lucy", "input": "f",
     "psf": "psf.tif", "iterations": 6, "depth": 4, "boundary": "reflect"},
    {"name": "o", "op": "to_zarr", "input": "decon", "path": "rl.zarr", "overwrite": True}]))
ref = da.map_overlap(lambda b: rl(b, psf, 6), da.from_array(img.astype(np.float32),
                                                             chunks=(10, 16, 13)),
                     depth=4, boundary="reflect", trim=True, dtype=np.float32).compute()
same(out, ref, "map_overlap richardson_lucy (relative paths) equals dask + numpy RL", rtol=1e-4)
# RL that diverges (on negative values) is refused in one line, also where
# the store gathers its chunks from RL's (each source checked where the
# chunk takes it: a whole source per chunk made a run 7 times slower).
neg = write_zarr((rng.poisson(60, (20, 30, 26)) - 60).astype(np.float32), (10, 16, 13),
                 "neg.zarr")
for chunks in [None, [4, 8, 8]]:
    r = halo("run", pipeline("rl_neg", [
        {"name": "raw", "op": "from_zarr", "path": neg},
        {"name": "decon", "op": "map_overlap", "kernel": "richardson_lucy", "input": "raw",
         "psf": "psf.tif", "iterations": 20, "depth": 4},
        {"name": "o", "op": "to_zarr", "input": "decon", "path": path("rl_neg.zarr"),
         **({"chunks": chunks} if chunks else {})}]), check_rc=1)
    lines = r.stderr.splitlines()
    check(len(lines) == 1 and lines[0].startswith(
        f'halo: {path("rl_neg.json")}: step "o": {path("rl_neg.zarr")}: RL\'s result at the '
        "voxel ") and "RL diverged in float32" in lines[0] and
        not os.path.exists(path("rl_neg.zarr")),
        f"RL diverging, stored {'in chunks of its own' if chunks else 'as computed'}: "
        "refused in one line", r.stderr)
r = halo("run", path("rl.json"), "--memory", "64K")
check(r.returncode == 0 and "104 KiB of chunks shared by neighbouring chunks" in r.stderr and
      "more than --memory 64 KiB" in r.stderr,
      "a budget below what halos need: a warning, and the run completes", r.stderr)
r = halo("run", path("rl.json"), "--memory", "64K", "--dry-run")
check(r.returncode == 0 and "KiB of chunks shared by neighbouring chunks" in r.stderr,
      "--dry-run gives the same warning", r.stderr)

# 7. Reductions: scalars, and along each axis (a maximum projection first).
for src, ref in [(pu16, du16), (pf32, df32)]:
    steps = [{"name": "a", "op": "from_zarr", "path": src}]
    for fn in ["sum", "min", "max", "mean"]:
        steps.append({"name": fn, "op": fn, "input": "a"})
    for axis in range(3):
        for fn in ["max", "min", "sum", "mean"]:
            steps.append({"name": f"{fn}{axis}", "op": fn, "input": "a", "axis": axis})
            steps.append({"name": f"o{fn}{axis}", "op": "to_zarr", "input": f"{fn}{axis}",
                          "path": path(f"{fn}{axis}.zarr"), "overwrite": True})
    res = run_json(pipeline("red", steps)).get("results", {})
    for fn in ["sum", "min", "max", "mean"]:
        want = float(getattr(ref, fn)().compute())
        got = res.get(fn, float("nan"))
        check(abs(got - want) <= 1e-6 * max(abs(want), 1), f"{fn} of {ref.dtype}",
              f"{got} vs {want}")
    for axis in range(3):
        for fn in ["max", "min", "sum", "mean"]:
            want = getattr(ref, fn)(axis=axis).compute()
            same(path(f"{fn}{axis}.zarr"), want, f"{fn} along axis {axis} of {ref.dtype}",
                 rtol=1e-6 if want.dtype.kind == "f" else 0.0)

# NaN along an axis wins, as in numpy, in every chunk along it, and int8's
# negative values convert on the way in.
nans = f32.copy()
nans[3, 5, :] = np.nan
nans[:, 30, 40] = np.nan
nans[20, :, 7] = np.nan
i8 = rng.integers(-128, 128, (23, 37, 41), dtype=np.int8)
mask = rng.random((23, 37, 41)) > 0.7
for name, arr in [("nan", nans), ("i8", i8), ("mask", mask), ("i64", i64), ("u64", u64)]:
    src = write_zarr(arr, (7, 16, 16), f"{name}.zarr")
    steps = [{"name": "a", "op": "from_zarr", "path": src}]
    for axis in range(3):
        for fn in ["max", "min", "sum", "mean"]:
            steps += [{"name": f"{fn}{axis}", "op": fn, "input": "a", "axis": axis},
                      {"name": f"o{fn}{axis}", "op": "to_zarr", "input": f"{fn}{axis}",
                       "path": path(f"{name}-{fn}{axis}.zarr"), "overwrite": True}]
    r = run(pipeline(name, steps))
    check(r.returncode == 0, f"reductions along each axis of {name}.zarr", r.stderr)
    for axis in range(3):
        for fn in ["max", "min", "sum", "mean"]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exact = arr.dtype.kind in "iub" and fn != "mean"  # numpy's own, sums wrapping
                want = getattr(np, fn)(arr if exact else arr.astype(np.float64), axis=axis)
            kind = np.float64 if fn == "mean" and arr.dtype.kind in "iub" else want.dtype \
                if exact else arr.dtype
            same(path(f"{name}-{fn}{axis}.zarr"), want.astype(kind),
                 f"{fn} along axis {axis} of {name}.zarr",
                 rtol=0 if exact or fn in ("min", "max") else 1e-6)

# Projections along each axis beside a store and a sum of the same
# filtered array: the projections follow the walk of the store and the
# sum, each chunk added to its column as the walk makes it (walked on
# their own they held the whole volume, 129 kB, where the store alone
# holds 54 kB, --dry-run says), and every output is still numpy's.
steps = [{"name": "a", "op": "from_zarr", "path": pu16},
         {"name": "c", "op": "rechunk", "input": "a", "chunks": [4, 8, 8]},
         {"name": "f", "op": "map_overlap", "input": "c", "kernel": "uniform", "depth": 1},
         {"name": "of", "op": "to_zarr", "input": "f", "path": path("beside-f.zarr"),
          "overwrite": True},
         {"name": "total", "op": "sum", "input": "f"}]
for axis in range(3):
    steps += [{"name": f"mip{axis}", "op": "max", "input": "f", "axis": axis},
              {"name": f"omip{axis}", "op": "to_zarr", "input": f"mip{axis}",
               "path": path(f"beside-mip{axis}.zarr"), "overwrite": True}]
p = pipeline("beside", steps)
filt = ndi.uniform_filter(u16.astype(np.float32), 3, mode="reflect")
res = run_json(p).get("results", {})
same(path("beside-f.zarr"), filt, "a filtered volume stored beside its projections", rtol=1e-6)
for axis in range(3):
    same(path(f"beside-mip{axis}.zarr"), filt.max(axis=axis), f"... the projection along {axis}",
         rtol=1e-6)
check(abs(res.get("total", 0) - float(filt.sum(dtype=np.float64))) <= 1e-5 * float(filt.sum()),
      "... and the sum", res)
dry = [re.search(r"([\d.]+) KiB shared", run(q, "--dry-run").stdout)
       for q in [p, pipeline("alone", steps[:4])]]
check(None not in dry and float(dry[0].group(1)) < 1.5 * float(dry[1].group(1)),
      "... which hold less than 1.5 times the chunks the store alone holds, not the volume "
      "(--dry-run)", [d and d.group(0) for d in dry])

# Projections with no other output to follow: their input is walked
# for them, column by column, and they follow that walk; stored through
# a rechunk, as a Zarr (the store gathers) and as a TIFF (whole planes:
# every column goes into one).
steps = [{"name": "a", "op": "from_zarr", "path": pu16},
         {"name": "z", "op": "max", "input": "a", "axis": 0},
         {"name": "rz", "op": "rechunk", "input": "z", "chunks": [20, 9]},
         {"name": "oz", "op": "to_zarr", "input": "rz", "path": path("walks-z.zarr"),
          "overwrite": True},
         {"name": "x", "op": "sum", "input": "a", "axis": -1},
         {"name": "ox", "op": "to_tiff", "input": "x", "path": path("follows-x.tif"),
          "overwrite": True},
         {"name": "y", "op": "min", "input": "a", "axis": 1},
         {"name": "oy", "op": "to_zarr", "input": "y", "path": path("follows-y.zarr"),
          "overwrite": True}]
r = run(pipeline("follows", steps))
check(r.returncode == 0 and zarr.open(path("walks-z.zarr"), mode="r").chunks == (20, 9),
      "projections along each axis, stored through rechunks", r.stderr)
same(path("walks-z.zarr"), u16.max(axis=0), "... a maximum")
check(r.returncode == 0 and np.array_equal(tifffile.imread(path("follows-x.tif")),
                                           u16.sum(axis=2)),
      "... a sum that follows it (axis -1, numpy's last), as a TIFF")
same(path("follows-y.zarr"), u16.min(axis=1), "... a minimum that follows it")
# The maximum along z of a filtered volume as a TIFF, the only output: one
# TIFF chunk needs every column, and walked by its store the whole
# filtered volume was made at once (2.7 GB of RSS for 512 MiB at
# --memory 256M); walked column by column, a column's chunks at a time.
cols = rng.integers(0, 4000, (32, 64, 64), dtype=np.uint16)
lone = pipeline("lone", [
    {"name": "a", "op": "from_zarr", "path": write_zarr(cols, (16, 16, 16), "cols.zarr")},
    {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "a", "size": 3, "depth": 1},
    {"name": "m", "op": "max", "input": "u", "axis": 0},
    {"name": "o", "op": "to_tiff", "input": "m", "path": path("lone.tif"), "overwrite": True}])
dry = halo("run", lone, "--dry-run", check_rc=0).stdout
mem = re.search(r"memory: ([0-9.]+) (B|KiB|MiB) per output chunk in flight, ([0-9.]+) (B|KiB|MiB) "
                r"shared", dry)
unit = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20}
held = float(mem.group(1)) * unit[mem.group(2)] + float(mem.group(3)) * unit[mem.group(4)] if mem else 0
check(mem is not None and held < cols.size * 4 * 0.6,
      "a lone projection of a filtered volume: a fraction of the filtered volume held (--dry-run)",
      dry)
run(lone)
check(np.array_equal(tifffile.imread(path("lone.tif")),
                     ndi.uniform_filter(cols.astype(np.float32), 3, mode="reflect").max(axis=0)),
      "... and it equals scipy's")
# An input walked for its projection while a filter of it, projected
# along another axis, walks too: its chunks were made in two orders, and
# one made twice was added twice (a sum along z off by up to 12814, exit
# 0). Only an input that projections alone read is walked.
out_sa, out_mu = path("two-sa.zarr"), path("two-mu.zarr")
run(pipeline("twowalks", [
    {"name": "a", "op": "from_zarr", "path": write_zarr(cols[:, :32, :32], (8, 8, 8), "c32.zarr")},
    {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "a", "size": 3, "depth": 1},
    {"name": "sa", "op": "sum", "input": "a", "axis": 0},
    {"name": "mu", "op": "max", "input": "u", "axis": 2},
    {"name": "oa", "op": "to_zarr", "input": "sa", "path": out_sa, "overwrite": True},
    {"name": "ou", "op": "to_zarr", "input": "mu", "path": out_mu, "overwrite": True}]))
same(out_sa, cols[:, :32, :32].sum(axis=0),
     "a projection of an input beside a projection of its filter: the input's")
same(out_mu, ndi.uniform_filter(cols[:, :32, :32].astype(np.float32), 3, mode="reflect").max(axis=2),
     "... and the filter's")

# Scalars print as numpy prints them: every digit a float64 needs, float32
# results as float32, integer sums as integers; NaN and the infinities
# (JSON strings in --json, which has no such numbers).
zarr.open(path("digits.zarr"), mode="w", shape=(1, 1, 2), chunks=(1, 1, 2),
          dtype="f8")[:] = [[[123456789.123456, 1.0]]]
zarr.open(path("f32s.zarr"), mode="w", shape=(1, 1, 3), chunks=(1, 1, 3),
          dtype="f4")[:] = [[[0.1, 0.2, 0.3]]]
zarr.open(path("round.zarr"), mode="w", shape=(1, 1, 3), chunks=(1, 1, 3),
          dtype="f8")[:] = [[[250.0, 1e6, -100.0]]]
zarr.open(path("tiny.zarr"), mode="w", shape=(1, 1, 2), chunks=(1, 1, 2),
          dtype="f4")[:] = [[[1e-5, 3e20]]]
zarr.open(path("infs.zarr"), mode="w", shape=(1, 1, 4), chunks=(1, 1, 4),
          dtype="f4")[:] = [[[1, np.inf, -np.inf, 2]]]
# float32 values whose shortest digits end before the decimal point
# (123456792 printed whole), and one just under 1e-4 once a float32.
zarr.open(path("big32.zarr"), mode="w", shape=(1, 1, 3), chunks=(1, 1, 3),
          dtype="f4")[:] = [[[123456789.0, 3e10, -2.5e15]]]
zarr.open(path("edge32.zarr"), mode="w", shape=(1, 1, 2), chunks=(1, 1, 2),
          dtype="f4")[:] = [[[1e-4, 1e-4]]]
# Powers of two, where the nearest decimal of a length may not read back
# while its neighbour does (2^-24: 5.960464477539063e-08, not ...0625).
zarr.open(path("pow2.zarr"), mode="w", shape=(1, 1, 1), chunks=(1, 1, 1),
          dtype="f8")[:] = 2.0 ** -24
zarr.open(path("pow2_32.zarr"), mode="w", shape=(1, 1, 1), chunks=(1, 1, 1),
          dtype="f4")[:] = np.full((1, 1, 1), 0x0F800000, np.uint32).view(np.float32)
# float16 (printed with float16's digits) and bool (True, False; a sum
# of bools is an int64) as numpy types and prints them
zarr.open(path("f16s.zarr"), mode="w", shape=(1, 1, 3), chunks=(1, 1, 2),
          dtype="f2")[:] = [[[0.1, 1.5, 100.25]]]
zarr.open(path("bools.zarr"), mode="w", shape=(1, 2, 3), chunks=(1, 1, 2),
          dtype="b1")[:] = [[[True, False, True], [False, False, True]]]
# 64-bit integers at their extremes: exact, and sums wrap as numpy's
zarr.open(path("ext64.zarr"), mode="w", shape=(1, 2, 3), chunks=(1, 1, 2),
          dtype="i8")[:] = [[[2**63 - 1, -2**63, 2**53 + 1], [2**62, 2**62 + 3, -5]]]
zarr.open(path("extu64.zarr"), mode="w", shape=(1, 2, 3), chunks=(1, 1, 2),
          dtype="u8")[:] = [[[2**64 - 1, 2**63 + 1, 2**53 + 1], [2**63, 7, 0]]]
for src, arr in [("digits.zarr", None), ("f32s.zarr", None), ("infs.zarr", None),
                 ("round.zarr", None), ("tiny.zarr", None), ("big32.zarr", None),
                 ("edge32.zarr", None), ("pow2.zarr", None), ("pow2_32.zarr", None),
                 ("f16s.zarr", None), ("bools.zarr", None), ("ext64.zarr", None),
                 ("extu64.zarr", None), (pu16, du16)]:
    a = arr.compute() if arr is not None else zarr.open(path(src), mode="r")[:]
    steps = [{"name": "a", "op": "from_zarr", "path": path(src) if arr is None else src}]
    steps += [{"name": fn, "op": fn, "input": "a"} for fn in ["sum", "min", "max", "mean"]]
    p_ = pipeline("digits", steps)
    with np.errstate(invalid="ignore"):
        want = {fn: str(getattr(a, fn)()) for fn in ["sum", "min", "max", "mean"]}
    text = run(p_).stdout
    got = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    check(got == want, f"scalars of {os.path.basename(src)} print as numpy's", f"{got} vs {want}")
    res = run_json(p_).get("results", {})
    jwant = {k: v if v in ("nan", "inf", "-inf") else v == "True" if v in ("True", "False")
             else int(v) if v.lstrip("-").isdigit() else float(v) for k, v in want.items()}
    check(res == jwant and all(type(res[k]) is bool for k in res if type(jwant[k]) is bool),
          f"... and in --json", f"{res} vs {jwant}")

# A chain that only feeds reductions to scalars runs inside them.
steps = [{"name": "a", "op": "from_zarr", "path": pi16},
         {"name": "f", "op": "astype", "input": "a", "dtype": "float32"},
         {"name": "s", "op": "map_blocks", "kernel": "scale", "input": "f", "scale": 0.25,
          "offset": -3}]
for fn in ["sum", "min", "max", "mean"]:
    steps.append({"name": fn, "op": fn, "input": "s"})
pf = pipeline("fusedred", steps)
rj = run_json(pf)
check(rj.get("chunks_written") == 0 and rj.get("chunks_read") == 50,
      "reductions to scalars write no chunks (their partial results are none)", rj)
res = rj.get("results", {})
ref = di16.astype(np.float32) * 0.25 + -3.0
for fn in ["sum", "min", "max", "mean"]:
    want = float(getattr(ref, fn)().compute())
    got = res.get(fn, float("nan"))
    check(abs(got - want) <= 1e-6 * max(abs(want), 1), f"{fn} of a fused chain", f"{got} vs {want}")
one = pipeline("fusedred1", steps[:3] + [{"name": "sum", "op": "sum", "input": "s"}])
fst = json.loads(halo("graph", "stats", one, "--json", check_rc=0).stdout or "{}")
check(fst.get("plan_nodes") == 2 and fst.get("tasks") == 2 * 50,
      "a chain read only by one reduction runs inside its task (read + reduce per chunk)", fst)
got = run_json(one).get("results", {}).get("sum", float("nan"))
want = float(ref.sum().compute())
check(abs(got - want) <= 1e-6 * abs(want), "... with the same sum", f"{got} vs {want}")
fst = json.loads(halo("graph", "stats", pf, "--json", check_rc=0).stdout or "{}")
check(fst.get("tasks_by_kind", {}).get("elementwise") == 50,
      "a chain four reductions read is computed once per chunk", fst)

# A chain longer than one elementwise program (cut into several fused
# steps) before a scalar reduction: every step counts (the reduction took
# in only the first cut's steps).
steps = [{"name": "a", "op": "from_zarr", "path": pi16},
         {"name": "s0", "op": "astype", "input": "a", "dtype": "float32"}]
for i in range(1, 21):
    steps.append({"name": f"s{i}", "op": "map_blocks", "kernel": "add",
                  "inputs": [f"s{i - 1}", "s0" if i % 3 == 0 else f"s{i - 1}"]} if i % 2 else
                 {"name": f"s{i}", "op": "map_blocks", "kernel": "scale", "input": f"s{i - 1}",
                  "offset": 1})
steps.append({"name": "sum", "op": "sum", "input": "s20"})
ref = di16.astype(np.float32)
x = {0: ref}
for i in range(1, 21):
    x[i] = x[i - 1] + (x[0] if i % 3 == 0 else x[i - 1]) if i % 2 else x[i - 1] + 1
got = run_json(pipeline("longchain", steps)).get("results", {}).get("sum", float("nan"))
want = float(x[20].sum().compute())
check(abs(got - want) <= 1e-5 * abs(want), "a 20-step chain into a scalar sum", f"{got} vs {want}")

# A pipeline 1000 steps deep (submission recurses once a step: it
# overflowed the stack at about 900 and died with no message).
a = np.arange(120, dtype=np.uint16).reshape(4, 5, 6)
steps = [{"name": "r0", "op": "from_zarr", "path": write_zarr(a, (2, 2, 2), "deep.zarr")}]
for i in range(1, 1001):
    steps.append({"name": f"r{i}", "op": "rechunk", "input": f"r{i - 1}",
                  "chunks": [2 + i % 2, 2, 3 - i % 2]})
steps.append({"name": "s", "op": "sum", "input": "r1000"})
got = run_json(pipeline("deep", steps)).get("results", {}).get("s")
check(got == int(a.sum()), "a pipeline 1000 steps deep", got)

# 8. TIFF in and out, 2D arrays.
tifffile.imwrite(path("in.tif"), u16)
run(pipeline("tif", [
    {"name": "a", "op": "from_tiff", "path": "in.tif"},
    {"name": "s", "op": "map_blocks", "kernel": "scale", "input": "a", "scale": 2.0},
    {"name": "o", "op": "to_tiff", "input": "s", "path": "out.tif", "overwrite": True}]))
got = tifffile.imread(path("out.tif"))
check(got.dtype == np.float64 and np.array_equal(got, u16 * 2.0), "from_tiff -> scale -> to_tiff",
      got.dtype)
# A scale beyond float32's range makes float32 float64, as numpy's
# value-based casting does (it gave float32 inf).
run(pipeline("bigscale", [
    {"name": "a", "op": "from_tiff", "path": "in.tif"},
    {"name": "f", "op": "astype", "input": "a", "dtype": "float32"},
    {"name": "s", "op": "map_blocks", "kernel": "scale", "input": "f", "scale": 1e39},
    {"name": "o", "op": "to_tiff", "input": "s", "path": "big.tif", "overwrite": True}]))
got, want = tifffile.imread(path("big.tif")), u16.astype(np.float32) * 1e39
check(got.dtype == want.dtype == np.float64 and np.array_equal(got, want),
      "scale 1e39 of float32 is float64, as in numpy", got.dtype)
# numpy's cut is |v| < 3.4e38, a little inside float32's range.
for v in [3.4e38, 3.3999999999999996e38]:
    p = pipeline("edgescale", [
        {"name": "a", "op": "from_tiff", "path": "in.tif"},
        {"name": "f", "op": "astype", "input": "a", "dtype": "float32"},
        {"name": "s", "op": "map_blocks", "kernel": "scale", "input": "f", "scale": v},
        {"name": "c", "op": "map_blocks", "kernel": "clip", "input": "f", "lo": 0, "hi": v},
        {"name": "o", "op": "to_tiff", "input": "s", "path": "edge_s.tif", "overwrite": True},
        {"name": "q", "op": "to_tiff", "input": "c", "path": "edge_c.tif", "overwrite": True}])
    run(p)
    f32 = u16.astype(np.float32)
    for name, want in [("s", f32 * v), ("c", np.clip(f32, 0, v))]:
        got = tifffile.imread(path(f"edge_{name}.tif"))
        check(got.dtype == want.dtype and np.array_equal(got, want),
              f"{'scale' if name == 's' else 'clip'} of float32 by {v!r}: {want.dtype}, as in numpy",
              got.dtype)
img2 = rng.integers(0, 255, (45, 61), dtype=np.uint8)
p2 = write_zarr(img2, (16, 20), "img2.zarr")
run(pipeline("two", [
    {"name": "a", "op": "from_zarr", "path": p2},
    {"name": "f", "op": "astype", "input": "a", "dtype": "float32"},
    {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "f", "size": 3, "depth": 1,
     "boundary": "nearest"},
    {"name": "o", "op": "to_zarr", "input": "u", "path": "two.zarr", "chunks": [30, 30],
     "overwrite": True}]))
same(path("two.zarr"), uniform_ref(da.from_zarr(p2).astype(np.float32), 3, 1, "nearest"),
     "2D: map_overlap uniform, stored in other chunks", rtol=2e-6)
# to_zarr's chunks take -1 for the whole axis, as rechunk's do (refused).
run(pipeline("whole", [{"name": "a", "op": "from_zarr", "path": pu16},
                       {"name": "o", "op": "to_zarr", "input": "a", "path": "whole.zarr",
                        "chunks": [-1, 16, -1], "overwrite": True}]))
z = zarr.open(path("whole.zarr"), mode="r")
check(z.chunks == (23, 16, 41) and np.array_equal(z[:], u16), "to_zarr chunks -1: the whole axis",
      z.chunks)

# 9. Errors name the file, the step and the field; exit 1; nothing written.
base = [{"name": "a", "op": "from_zarr", "path": pu16}]
bad = [
    ([{"name": "d", "op": "map_overlap", "kernel": "uniform", "input": "a", "depth": 1,
       "boundary": "wrap"}], 'step "d": unknown boundary "wrap"'),
    ([{"name": "d", "op": "rechunk", "input": "a", "chunks": [4, 0, 4]}],
     'step "d": field "chunks" (a list) must hold sizes from 1 to 2147483647, or -1 for the '
     'whole axis'),
    ([{"name": "d", "op": "to_zarr", "input": "a", "path": "bad0.zarr", "chunks": 0}],
     'step "d": field "chunks" must hold sizes from 1 to 2147483647, or -1 for the whole axis'),
    ([{"name": "d", "op": "rechunk", "input": "nope", "chunks": 4}],
     'step "d": field "input": no earlier step is named "nope"'),
    ([{"name": "", "op": "astype", "input": "a", "dtype": "float32"}],
     'step 2: an empty "name"'),
    ([{"name": 5, "op": "astype", "input": "a", "dtype": "float32"}],
     'step 2: a non-string "name"'),
    ([{"name": "d", "op": "astype", "input": "a", "dtype": "complex64"}],
     'step "d": unknown dtype "complex64"'),
    ([{"name": "d", "op": "to_zarr", "input": "a", "path": "big.zarr", "dtype": ">f4"}],
     'step "d": dtype ">f4": halo writes little-endian arrays; give the type without \'>\''),
    ([{"name": "d", "op": "map_blocks", "kernel": "scale", "input": "a", "sacle": 2}],
     'step "d": unknown field "sacle"'),
    ([{"name": "d", "op": "map_overlap", "kernel": "richardson_lucy", "input": "a", "depth": 1,
       "iterations": "ten", "psf": "psf.tif"}], 'step "d": field "iterations" must be an integer'),
    ([{"name": "d", "op": "map_overlap", "kernel": "richardson_lucy", "input": "a", "depth": 0,
       "psf": "missing.tif"}], f'step "d": {path("missing.tif")}: no such file or directory'),
    ([{"name": "d", "op": "frobnicate", "input": "a"}], 'step "d": unknown op "frobnicate"'),
    ([{"name": "a", "op": "abs", "input": "a"}], 'step "a": a step of this name comes earlier'),
    ([{"name": "d", "op": "map_blocks", "kernel": "add", "inputs": ["a", "b"]}],
     'step "d": field "inputs": no earlier step is named "b"'),
    ([{"name": "d", "op": "to_zarr", "input": "a", "path": pu16, "overwrite": True}],
     f'writing {pu16} would change the input of step "a"'),
    ([{"name": "d", "op": "map_overlap", "kernel": "richardson_lucy", "input": "a", "depth": 5,
       "psf": "psf.tif"}, {"name": "o", "op": "to_tiff", "input": "d", "path": "psf.tif",
                           "overwrite": True}],
     "which would change this step's psf"),
    ([{"name": "d", "op": "map_blocks", "kernel": "abs", "input": "a"}], "nothing to compute"),
    ([{"name": "h", "op": "astype", "input": "a", "dtype": "float16"},
      {"name": "k", "op": "map_blocks", "kernel": "sqrt", "input": "h"}],
     'step "k": kernel sqrt of float16: halo\'s kernels take no float16 or bool arrays; add an '
     'astype step'),
    ([{"name": "h", "op": "astype", "input": "a", "dtype": "bool"},
      {"name": "k", "op": "map_blocks", "kernel": "add", "inputs": ["a", "h"]}],
     'step "k": kernel add of bool'),
    ([{"name": "s", "op": "sum", "input": "a"}, {"name": "t", "op": "astype", "input": "s",
                                                 "dtype": "float32"}],
     'step "t": astype: its input "s" is a scalar'),
    ([{"name": "s", "op": "sum", "input": "a"}, {"name": "t", "op": "sum", "input": "s"}],
     'step "t": sum: its input "s" is a scalar'),
    ([{"name": "s", "op": "max", "input": "a"},
      {"name": "t", "op": "map_blocks", "kernel": "add", "inputs": ["s", "a"]}],
     'step "t": add: its input "s" is a scalar'),
    ([{"name": "d", "op": "map_overlap", "kernel": "uniform", "input": "a", "size": 3,
       "depth": 4294967297}], 'step "d": field "depth" must hold integers from 0 to 2147483647'),
    ([{"name": "two\nlines", "op": "map_blocks", "kernel": "abs", "input": "a"}],
     "step 2: a name may not hold control characters, quotes or backslashes"),
    ([{"name": 'a"b', "op": "map_blocks", "kernel": "abs", "input": "a"}],
     "step 2: a name may not hold control characters, quotes or backslashes"),
]
# A plane of more than 2^32 voxels (metadata only: nothing is written).
zarr.open(path("wide.zarr"), mode="w", shape=(1, 70000, 70000), chunks=(1, 10000, 10000),
          dtype="u1", fill_value=1)
bad.append(([{"name": "w", "op": "from_zarr", "path": path("wide.zarr")},
             {"name": "r", "op": "rechunk", "input": "w", "chunks": [-1, -1, -1]},
             {"name": "s", "op": "sum", "input": "r"}],
            'step "r": rechunk: chunks of 70000x70000 voxels per plane, more than 2^32'))
# A chunk of 2^32 voxels or more, which StarPU sizes in 32 bits (the
# buffer wrapped to a few bytes and the gather wrote gigabytes past it):
# one rechunked, one with its halo, and RL's
# spectrum (2 x 1024 x 2048 x 1024 floats) of a haloed 1024x2048x2047,
# itself under 2^32. Metadata only: nothing is written.
zarr.open(path("deep.zarr"), mode="w", shape=(4, 32768, 32768), chunks=(1, 16384, 16384),
          dtype="u1", fill_value=1)
zarr.open(path("rl-big.zarr"), mode="w", shape=(1022, 2046, 2045), chunks=(512, 1024, 1024),
          dtype="u1", fill_value=1)
tifffile.imwrite(path("psf3.tif"), np.full((3, 3, 3), 1 / 27, np.float32),
                 photometric="minisblack")
cannot = "2^32 or more, which StarPU's chunk buffers cannot hold; rechunk smaller"
for src, steps, msg in [
        ("deep", [{"name": "r", "op": "rechunk", "input": "w", "chunks": [-1, -1, -1]},
                  {"name": "s", "op": "max", "input": "r"}],
         'step "r": chunks of 4x32768x32768 voxels, '),
        ("deep", [{"name": "r", "op": "rechunk", "input": "w", "chunks": [2, -1, -1]},
                  {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "r",
                   "depth": 1},
                  {"name": "s", "op": "max", "input": "u"}],
         'step "u": chunks of 4x32770x32770 (with their halo) voxels, '),
        ("rl-big", [{"name": "r", "op": "rechunk", "input": "w", "chunks": [-1, -1, -1]},
                    {"name": "f", "op": "astype", "input": "r", "dtype": "float32"},
                    {"name": "d", "op": "map_overlap", "kernel": "richardson_lucy", "input": "f",
                     "depth": 1, "psf": path("psf3.tif"), "iterations": 1},
                    {"name": "s", "op": "max", "input": "d"}],
         'step "d": chunks of 1024x2048x2047 (with their halo) voxels, ')]:
    bad.append(([{"name": "w", "op": "from_zarr", "path": path(src + ".zarr")}, *steps],
                msg + cannot))
# More chunks than the walk keeps track of (a rechunk as a Zarr source).
zarr.open(path("huge.zarr"), mode="w", shape=(1024, 1024, 1024), chunks=(64, 256, 256),
          dtype="u2")
bad.append(([{"name": "h", "op": "from_zarr", "path": path("huge.zarr")},
             {"name": "r", "op": "rechunk", "input": "h", "chunks": [1, 1, 1]},
             {"name": "s", "op": "sum", "input": "r"}],
            'step "r": 1.07e+09 chunks of 1x1x1, more than halo\'s limit of 268435456'))
# Two outputs at one path spelled two ways, or one inside the other: found
# before anything runs (the first failed after computing it all).
bad.append(([{"name": "o1", "op": "to_zarr", "input": "a", "path": path("dup.zarr")},
             {"name": "o2", "op": "to_zarr", "input": "a", "path": "./dup.zarr"}],
            'steps "o1" and "o2" both write'))
bad.append(([{"name": "o1", "op": "to_zarr", "input": "a", "path": path("dup.zarr")},
             {"name": "o2", "op": "to_zarr", "input": "a", "path": path("dup.zarr/in.zarr")}],
            "one inside the other"))
# A store's step as another step's input: it holds no array (StarPU
# aborted on the never-written data).
bad.append(([{"name": "o1", "op": "to_zarr", "input": "a", "path": path("st.zarr")},
             {"name": "t", "op": "to_tiff", "input": "o1", "path": path("st.tif")}],
            'step "t": to_tiff: its input "o1" writes'))
bad.append(([{"name": "o1", "op": "to_zarr", "input": "a", "path": path("st.zarr")},
             {"name": "m", "op": "map_blocks", "kernel": "abs", "input": "o1"}],
            'step "m": abs: its input "o1" writes'))
# Two inputs whose common blocks are too many.
zarr.open(path("huge3.zarr"), mode="w", shape=(1024, 1024, 1024), chunks=(3, 3, 3), dtype="u2")
zarr.open(path("huge2.zarr"), mode="w", shape=(1024, 1024, 1024), chunks=(2, 2, 2), dtype="u2")
bad.append(([{"name": "h3", "op": "from_zarr", "path": path("huge3.zarr")},
             {"name": "h2", "op": "from_zarr", "path": path("huge2.zarr")},
             {"name": "c", "op": "map_blocks", "kernel": "add", "inputs": ["h3", "h2"]},
             {"name": "s", "op": "sum", "input": "c"}],
            'step "c": 3.19e+08 chunks (the inputs\' common blocks), more than halo\'s limit'))
# An output there already, without "overwrite".
os.makedirs(path("there.zarr"), exist_ok=True)
bad.append(([{"name": "o", "op": "to_zarr", "input": "a", "path": path("there.zarr")}],
            "there.zarr: already exists"))
# Blosc's settings with no blosc (convert refused them; a pipeline took them).
bad.append(([{"name": "o", "op": "to_zarr", "input": "a", "path": path("nc.zarr"),
              "compressor": "none", "clevel": 3}], '"clevel" and "shuffle" apply to compressed'))
# A constant beside another boundary, an axis on a scalar.
bad.append(([{"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "a", "depth": 1,
              "boundary": "reflect", "constant": 5}],
            '"constant" applies to boundary "constant", not "reflect"'))
bad.append(([{"name": "s", "op": "sum", "input": "a"},
             {"name": "t", "op": "max", "input": "s", "axis": 0}],
            '"axis": the input is a scalar'))
# An "ome": false that the name contradicts, a TIFF store named as Zarr
# (each was written against what it said), a boundary of the wrong kind,
# and a 2D operand named in 2D.
bad.append(([{"name": "o", "op": "to_zarr", "input": "a", "path": path("no.ome.zarr"),
              "ome": False}], 'field "ome" is false but'))
bad.append(([{"name": "o", "op": "to_zarr", "input": "a", "path": path("o.tif"), "ome": True}],
            'field "path": "' + path("o.tif") + '" is a TIFF name; use to_tiff'))
bad.append(([{"name": "o", "op": "to_zarr", "input": "a", "path": path("t.h5")}],
            'field "path": ' + path("t.h5") + ': halo writes Zarr (a folder), OME-Zarr (*.ome.zarr) '
            'and TIFF (*.tif), not .h5 files'))
bad.append(([{"name": "o", "op": "to_tiff", "input": "a", "path": path("t.zarr")}],
            'field "path": "' + path("t.zarr") + '" is a Zarr name; use to_zarr'))
bad.append(([{"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "a", "depth": 1,
              "boundary": True}], 'field "boundary" must be a name or a number'))
bad.append(([{"name": "m", "op": "max", "input": "a", "axis": 0},
             {"name": "d", "op": "map_blocks", "kernel": "sub", "inputs": ["a", "m"]}],
            "kernel sub: shapes differ (23x37x41 and 37x41)"))
for steps, want in bad:
    p = pipeline("bad", base + steps)
    r = halo("run", p, "--quiet")
    line = r.stderr.strip()
    check(r.returncode == 1 and line.startswith(f"halo: {p}: ") and want in line
          and "\n" not in line, f"error: {want}", line)
    # --dry-run finds what the run refuses before computing, writing nothing.
    r = halo("run", p, "--dry-run")
    line = r.stderr.strip()
    check(r.returncode == 1 and line.startswith(f"halo: {p}: ") and want in line and
          not [f for f in os.listdir(path("")) if ".halo-" in f], "... and --dry-run says so", line)
r = halo("run", path("no-such-pipeline.json"))
check(r.returncode == 1 and r.stderr.strip() == f"halo: {path('no-such-pipeline.json')}: "
      "No such file or directory", "a missing pipeline file: named once", r.stderr)
# Top-level fields of the wrong kind (they were passed over).
for top, want in [({"version": "banana"}, '"version" is 1'), ({"version": 2}, '"version" is 1'),
                  ({"description": 5}, '"description" is not a string')]:
    p = path("badtop.json")
    with open(p, "w") as f:
        json.dump(dict(top, steps=base + [{"name": "m", "op": "max", "input": "a"}]), f)
    r = halo("run", p, "--quiet")
    check(r.returncode == 1 and want in r.stderr and len(r.stderr.splitlines()) == 1,
          f"top-level {top} refused", r.stderr)
for top, want in [({"steps": []}, '"steps" is empty: nothing to compute'),
                  ({"steps": {}}, '"steps": a list of steps')]:
    p = path("badtop.json")
    with open(p, "w") as f:
        json.dump(top, f)
    r = halo("run", p, "--quiet")
    check(r.returncode == 1 and want in r.stderr and len(r.stderr.splitlines()) == 1,
          f"{top} refused", r.stderr)
p = path("goodtop.json")
with open(p, "w") as f:
    json.dump({"version": 1.0, "description": "max", "steps": base + [{"name": "m", "op": "max", "input": "a"}]}, f)
r = halo("run", p, "--quiet")
check(r.returncode == 0, "version 1 (written 1.0) and a description are taken", r.stderr)
p = path("bad.json")
with open(p, "w") as f:
    f.write('{"steps": [\n  {"name": "a", "op": "from_zarr" "path": "x"}\n]}\n')
r = halo("run", p)
check(r.returncode == 1 and f"halo: {p}: line 2" in r.stderr, "malformed JSON: line and column",
      r.stderr)
r = halo("run", path(""))
check(r.returncode == 1 and "is a folder, not a pipeline file" in r.stderr, "a folder as PIPELINE",
      r.stderr)
r = halo("run", path("no-such.json"))
check(r.returncode == 1 and "no-such.json" in r.stderr, "missing pipeline file", r.stderr)
# graph dot writes its file whole or not at all.
p = pipeline("dot", base + [{"name": "d", "op": "map_blocks", "kernel": "abs", "input": "a"},
                            {"name": "o", "op": "sum", "input": "d"}])
for target in [path("no-such-dir/x.dot"), path("")]:
    r = halo("graph", "dot", p, "-o", target)
    check(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and
          not [f for f in os.listdir(path("")) if ".halo-tmp" in f],
          f"graph dot -o {os.path.basename(target.rstrip('/')) or 'a folder'}: one line, no file",
          r.stderr)
# -o replaces a graph of halo's, never a user's other file (it did, silently).
mydot = path("my.dot")
open(mydot, "w").write("my notes\n")
r = halo("graph", "dot", p, "-o", mydot, check_rc=0)
r2 = halo("graph", "dot", p, "-o", path("again.dot"), check_rc=0)
r3 = halo("graph", "dot", p, "-o", path("again.dot"), check_rc=0)
check(r.returncode == 1 and "is not a halo graph" in r.stderr and
      open(mydot).read() == "my notes\n" and r2.returncode == 0 and r3.returncode == 0,
      "graph dot -o replaces its own graph, not a user's file", (r.stderr, r3.stderr))
# Nor a device: a /dev/null (its twin here) would have been renamed over.
fake_null = path("fake-null")
if os.path.exists(fake_null):
    os.remove(fake_null)
try:
    os.mknod(fake_null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
except OSError:
    skip("graph dot -o a device is refused", "cannot make a device node here")
else:
    r = halo("graph", "dot", p, "-o", fake_null)
    check(r.returncode == 1 and "is not a halo graph" in r.stderr and
          stat.S_ISCHR(os.stat(fake_null).st_mode),
          "graph dot -o a device is refused, the device left as it is", r.stderr)
    os.remove(fake_null)
# --dry-run checks the workers as the run does.
r = halo("run", pipeline("dot", base + [{"name": "s", "op": "sum", "input": "a"}]), "--dry-run",
         "--ncpu", "0", "--ncuda", "0")
check(r.returncode == 1 and "no worker" in r.stderr, "--dry-run with no worker refused", r.stderr)
# Labels of long fused chains are cut at a character: DOT stays UTF-8.
long = base + [{"name": "é" * 30 + str(i), "op": "map_blocks", "kernel": "abs",
                "input": "a" if i == 0 else "é" * 30 + str(i - 1)} for i in range(6)]
long.append({"name": "s", "op": "sum", "input": "é" * 30 + "5"})
r = subprocess.run([HALO, "graph", "dot", pipeline("utf", long), "--tasks"], capture_output=True)
try:
    text = r.stdout.decode("utf-8")
except UnicodeDecodeError:
    text = None
check(r.returncode == 0 and text is not None and "digraph" in text,
      "graph dot of long non-ASCII step names is UTF-8", r.stderr)
# Nor over the pipeline or a file it reads or writes (an input's .zarray).
for target in [p, path("u16.zarr/.zarray")]:
    before = open(target, "rb").read()
    r = halo("graph", "dot", p, "-o", target)
    check(r.returncode == 1 and "-o would overwrite" in r.stderr and
          open(target, "rb").read() == before, f"graph dot -o {os.path.basename(target)} refused",
          r.stderr)
r = halo("run", "--frob", path("no-such.json"))
check(r.returncode == 2, "unknown option: usage error", r.stderr)

# An existing output is kept unless overwrite; a corrupt chunk stops the
# run with the step and chunk named and no output left behind.
out = path("keep.zarr")
write_zarr(u16, (7, 16, 16), "keep.zarr")
before = zarr.open(out, mode="r")[...]
r = halo("run", pipeline("keep", base + [{"name": "o", "op": "to_zarr", "input": "a",
                                            "path": out}]), "--quiet")
check(r.returncode == 1 and r.stderr.startswith("halo: ") and ".json: step \"o\"" in r.stderr
      and '"overwrite": true' in r.stderr, "an existing output without overwrite: error naming "
      "the pipeline, the step and the fix", r.stderr)
check(np.array_equal(zarr.open(out, mode="r")[...], before), "... and it is untouched")
cpath = write_zarr(u16, (7, 16, 16), "corrupt.zarr")
with open(os.path.join(cpath, "1.1.0"), "wb") as f:
    f.write(b"\x02\x01garbage that is not blosc" * 3)
out = path("never.zarr")
shutil.rmtree(out, ignore_errors=True)
shutil.rmtree(path("never2.zarr"), ignore_errors=True)
r = halo("run", pipeline("corrupt", [
    {"name": "raw", "op": "from_zarr", "path": cpath},
    {"name": "f", "op": "astype", "input": "raw", "dtype": "float32"},
    {"name": "o", "op": "to_zarr", "input": "f", "path": out},
    {"name": "o2", "op": "to_zarr", "input": "raw", "path": path("never2.zarr")}]), "--quiet")
check(r.returncode == 1 and 'step "raw"' in r.stderr and "1.1.0" in r.stderr,
      "a corrupt chunk: the step and chunk are named", r.stderr)
left = [n for n in os.listdir(path("")) if "never" in n]
check(not left, "a failed run leaves no output (not even a temporary)", left)

# SIGINT stops a run within a second or two, cleanly.
slow = write_zarr((rng.random((32, 128, 128)) * 1000).astype(np.uint16), (16, 32, 32), "slow.zarr")
out = path("interrupted.zarr")
shutil.rmtree(out, ignore_errors=True)
interrupt(["run", pipeline("slow", [
    {"name": "a", "op": "from_zarr", "path": slow},
    {"name": "d", "op": "map_overlap", "kernel": "richardson_lucy", "input": "a", "psf": "psf.tif",
     "iterations": 150, "depth": 4},
    {"name": "o", "op": "to_zarr", "input": "d", "path": out}]), "--ncpu", "1"],
          1.5, "interrupted", 2.5)

# 10. Dry run and graph output.
shutil.rmtree(path("chain.zarr"), ignore_errors=True)
r = halo("run", pc, "--dry-run", check_rc=0)
check("elementwise" in r.stdout and "f+s+l+m+c" in r.stdout and
      not [f for f in os.listdir(path("")) if "chain.zarr" in f and "long-chain" not in f],
      "--dry-run prints the plan and writes nothing", r.stdout)
r = halo("graph", "dot", pc, check_rc=0)
check(r.stdout.startswith("digraph") and r.stdout.count("->") == 7,
      "graph dot: one node per step, one edge per input", r.stdout)
r = halo("graph", "dot", pc, "--tasks", "-o", path("t.dot"), check_rc=0)
dot = open(path("t.dot")).read()
check(dot.count("elementwise (3,2,2)") == 1 and dot.count("->") == st.get("edges") and
      dot.count("[label=") == st.get("chunks"),
      "graph dot --tasks: chunk coordinates, every chunk and every edge", dot[:300])
# A 2D array's chunks by two indices (they had a leading 0), and unified
# chunks said to be irregular (the first chunk's shape stood for all).
a2, b2 = (write_zarr(np.arange(37 * 41, dtype=np.uint16).reshape(37, 41), c, f"dot2d-{i}.zarr")
          for i, c in enumerate([(10, 12), (7, 9)]))
p2 = pipeline("dot2d", [{"name": "a", "op": "from_zarr", "path": a2},
                        {"name": "b", "op": "from_zarr", "path": b2},
                        {"name": "s", "op": "map_blocks", "inputs": ["a", "b"], "kernel": "add"},
                        {"name": "o", "op": "to_zarr", "input": "s", "path": path("dot2d.zarr")}])
steps_dot = halo("graph", "dot", p2, check_rc=0).stdout
tasks_dot = halo("graph", "dot", p2, "--tasks", check_rc=0).stdout
check('[label="read (0,3)"]' in tasks_dot and "(0,0,3)" not in tasks_dot and
      "chunks 7x9 (irregular)" in steps_dot and "chunks 10x12\"" in steps_dot,
      "graph dot of 2D arrays: chunks by two indices; unified chunks marked irregular",
      steps_dot + tasks_dot[:400])
unused = pipeline("unused", chain[:-1] + [
    {"name": "x", "op": "map_overlap", "kernel": "uniform", "input": "f", "depth": 1},
    chain[-1]])
r = halo("graph", "stats", unused, "--json", check_rc=0)
check(json.loads(r.stdout or "{}").get("plan_nodes") == 3, "a step no output needs is culled",
      r.stdout)
r = halo("graph", "dot", unused, check_rc=0)
check("style=dashed" in r.stdout, "graph dot draws culled steps dashed")
# Stored chunks over blosc's 2 GiB (uint16 arrays with no chunk stored:
# nothing is read, the plan is counted), both once refused: to_zarr
# without chunks stores the input's in pieces (512x1024x1024 as float32,
# 2 GiB, in 4 pieces of 512x512x1024); TIFF has no blosc, and 1 GiB
# float32 pages go one at a time.
for name, shape, chunks, op, out, what in [
        ("huge", (1024, 1024, 1024), (512, 1024, 1024), "to_zarr", "pieces_out.zarr",
         "to_zarr stores chunks over blosc's 2 GiB in pieces"),
        ("pages", (4, 16384, 16384), (1, 16384, 16384), "to_tiff", "pages_out.tif",
         "to_tiff writes pages over 2 GiB together one at a time")]:
    src = path(name + "_u16.zarr")
    zarr.open(src, mode="w", shape=shape, chunks=chunks, dtype="<u2")
    pl = pipeline(name, [
        {"name": "raw", "op": "from_zarr", "path": src},
        {"name": "f", "op": "astype", "input": "raw", "dtype": "float32"},
        {"name": "out", "op": op, "input": "f", "path": path(out)}])
    r = halo("graph", "stats", pl, "--json", check_rc=0)
    check(json.loads(r.stdout or "{}").get("tasks_by_kind", {}).get("write") == 4, what,
          r.stdout + r.stderr)

# 11. A tight --memory. Chunks that neighbouring chunks share (a rechunk's
# planes, the chunks along a reduced axis) were once not counted: the walk
# let more chunks into flight than StarPU's limit held, and the run waited
# for memory forever. Now it finishes, with the same values.
big = rng.integers(0, 4000, (32, 256, 256), dtype=np.uint16)
tight = [
    ("rechunk of planes", write_zarr(big, (1, 256, 256), "planes.zarr"),
     {"op": "rechunk", "chunks": [32, 32, 32]}, big),
    ("max along z", write_zarr(big, (16, 32, 32), "cubes.zarr"),
     {"op": "max", "axis": 0}, big.max(axis=0)),
]
for what, src, step, ref in tight:
    out = path("tight.zarr")
    p = pipeline("tight", [{"name": "a", "op": "from_zarr", "path": src},
                           {"name": "b", "input": "a", **step},
                           {"name": "o", "op": "to_zarr", "input": "b", "path": out,
                            "overwrite": True}])
    try:
        r = halo("run", p, "--quiet", "--memory", "1M", timeout=60)
    except subprocess.TimeoutExpired:
        check(False, f"--memory 1M, {what}: finishes", "still running after 60 s")
        continue
    if check(r.returncode == 0, f"--memory 1M, {what}: finishes", r.stderr):
        same(out, ref, f"--memory 1M, {what}: values")
# Under a StarPU limit below the default budget, the chunks in flight keep
# within it (20 went into 6 MiB, and the run waited forever); 5 MiB is
# below what one output chunk may hold (64 filtered chunks), so: refused.
# (6 MiB was, until the write task assembled its chunk outside StarPU.)
small = rng.integers(0, 4000, (128, 128, 128), dtype=np.uint16)
out = path("tight.zarr")
p = pipeline("tight", [{"name": "a", "op": "from_zarr",
                        "path": write_zarr(small, (16, 16, 16), "small.zarr")},
                       {"name": "b", "op": "map_overlap", "kernel": "uniform", "input": "a",
                        "size": 3, "depth": 1},
                       {"name": "o", "op": "to_zarr", "input": "b", "path": out,
                        "chunks": [64, 64, 64], "overwrite": True}])
for mib, ok in [("5", 1), ("12", 0)]:
    what = f"STARPU_LIMIT_CPU_MEM={mib}: " + ("refused, one line" if ok else "runs within it")
    try:
        r = halo("run", p, "--quiet", env={"STARPU_LIMIT_CPU_MEM": mib}, timeout=60)
    except subprocess.TimeoutExpired:
        check(False, what, "still running after 60 s")
        continue
    if check(r.returncode == ok and len(r.stderr.splitlines()) == ok, what, r.stderr) and not ok:
        same(out, ndi.uniform_filter(small.astype(np.float32), 3, mode="reflect"),
             f"STARPU_LIMIT_CPU_MEM={mib}: values", rtol=1e-6)
# Under a StarPU limit too small for the shared chunks: one line, no hang,
# nothing written.
out = path("tight-convert.zarr")
shutil.rmtree(out, ignore_errors=True)
try:
    r = halo("convert", path("planes.zarr"), out, "--chunks", "32,32,32",
             env={"STARPU_LIMIT_CPU_MEM": "2"}, timeout=60)
    check(r.returncode == 1 and len(r.stderr.splitlines()) == 1
          and "more than StarPU's limit of 2 MiB" in r.stderr and not os.path.exists(out),
          "STARPU_LIMIT_CPU_MEM below a layer of shared chunks: one line, exit 1, no output",
          r.stderr)
except subprocess.TimeoutExpired:
    check(False, "STARPU_LIMIT_CPU_MEM below a layer of shared chunks: no hang")

# 12. A chain longer than one fused program holds (60 steps, 70 operations) is
# cut into several, not refused; the values are numpy's.
steps = [{"name": "a", "op": "from_zarr", "path": pu16}]
ref = u16.astype(np.float64)
prev = "a"
for i in range(60):
    if i % 6 == 5:
        steps.append({"name": f"r{i}", "op": "rechunk", "input": "a", "chunks": [7, 16, 16]})
        steps.append({"name": f"s{i}", "op": "map_blocks", "kernel": "add",
                      "inputs": [prev, f"r{i}"]})
        ref = ref + u16
    else:
        steps.append({"name": f"s{i}", "op": "map_blocks", "kernel": "scale", "input": prev,
                      "scale": 1.01, "offset": -0.5})
        ref = ref * 1.01 - 0.5
    prev = f"s{i}"
out = path("long-chain.zarr")
steps.append({"name": "o", "op": "to_zarr", "input": prev, "path": out, "overwrite": True})
if check(run(pipeline("long-chain", steps)).returncode == 0, "a chain of 60 elementwise steps runs"):
    same(out, ref, "a chain of 60 elementwise steps equals numpy")

# 13. A float32 sum over float32's range prints inf, as numpy's (it
# crashed: the float64 total was finite, its float32 was not).
big = write_zarr(np.array([[3e38, 3e38]], np.float32), (1, 2), "f32-over.zarr")
p = pipeline("f32-over", [{"name": "a", "op": "from_zarr", "path": big},
                          {"name": "s", "op": "sum", "input": "a"}])
r = halo("run", p, check_rc=0)
check(r.returncode == 0 and r.stdout.startswith("s: inf\n"),
      "a float32 sum over float32's range prints inf", (r.returncode, r.stdout, r.stderr))
check(run_json(p).get("results", {}).get("s") == "inf", "... and --json gives \"inf\"")

# 14. An integer constant boundary outside int32 pads as dask does, modulo
# the input type's range (4294967301 padded a uint16 array with 0, not 5).
u = np.arange(12, dtype=np.uint16).reshape(3, 4)
for dt, val in [("uint16", 4294967301), ("int32", 3000000000), ("uint8", -2147483649)]:
    a = u.astype(NP[dt])
    src = write_zarr(a, (2, 2), f"wrap-const-{dt}.zarr")
    out = path(f"wrap-const-{dt}-out.zarr")
    p = pipeline(f"wrap-const-{dt}", [
        {"name": "a", "op": "from_zarr", "path": src},
        {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "a", "depth": 1,
         "size": 3, "boundary": val},
        {"name": "o", "op": "to_zarr", "input": "u", "path": out, "overwrite": True}])
    pad = np.array(val, np.int64).astype(NP[dt])  # numpy's wrap, as np.pad in dask
    padded = np.pad(a.astype(np.float64), 1, constant_values=float(pad))
    ref = ndi.uniform_filter(padded, 3, mode="constant")[1:-1, 1:-1]
    if check(run(p).returncode == 0, f"constant boundary {val} on {dt} runs"):
        got = zarr.open(out, mode="r")[...].astype(np.float64)
        check(np.allclose(got, ref, rtol=1e-5), f"constant boundary {val} on {dt} pads with "
              f"{int(pad)}, as dask", np.abs(got - ref).max())

# 15. Where the voxels lie goes through a reduction along an axis (that
# axis's size and origin dropped): a maximum projection of an OME-Zarr in
# nanometers came out as 1 micrometer per pixel at the origin.
def ome_input(name, scale, unit, translation, seed):
    p = path(name)
    shutil.rmtree(p, ignore_errors=True)
    g = zarr.open_group(p, mode="w")
    g.create_dataset("0", data=np.random.default_rng(seed).integers(0, 100, (6, 8, 10))
                     .astype("u2"), chunks=(3, 4, 5))
    g.attrs["multiscales"] = [{"version": "0.4", "axes": [
        {"name": n, "type": "space", "unit": unit} for n in "zyx"], "datasets": [
        {"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": scale},
            {"type": "translation", "translation": translation}]}]}]
    return p


oa = ome_input("vox-a.ome.zarr", [2.0, 0.3, 0.4], "nanometer", [10.0, 20.0, 30.0], 3)
ob = ome_input("vox-b.ome.zarr", [5.0, 7.0, 9.0], "micrometer", [0.0, 0.0, 0.0], 4)
steps = [{"name": "a", "op": "from_zarr", "path": oa}, {"name": "b", "op": "from_zarr", "path": ob}]
for ax in range(3):
    steps += [{"name": f"m{ax}", "op": "max", "input": "a", "axis": ax},
              {"name": f"o{ax}", "op": "to_zarr", "input": f"m{ax}",
               "path": path(f"vox-m{ax}.ome.zarr"), "overwrite": True}]
steps += [{"name": "t", "op": "to_tiff", "input": "m0", "path": path("vox-m0.tif"),
           "overwrite": True},
          {"name": "ab", "op": "map_blocks", "inputs": ["a", "b"], "kernel": "add"},
          {"name": "oab", "op": "to_zarr", "input": "ab", "path": path("vox-ab.ome.zarr"),
           "overwrite": True}]
r = run(pipeline("voxels", steps))
check(r.returncode == 0, "reductions of an OME-Zarr input, written as OME-Zarr", r.stderr)
for ax in range(3):
    if r.returncode:
        break
    ms = json.load(open(path(f"vox-m{ax}.ome.zarr/.zattrs")))["multiscales"][0]
    tf = {t["type"]: t[t["type"]] for t in ms["datasets"][0]["coordinateTransformations"]}
    keep = [d for d in range(3) if d != ax]
    check(tf.get("scale") == [[2.0, 0.3, 0.4][d] for d in keep] and
          tf.get("translation") == [[10.0, 20.0, 30.0][d] for d in keep] and
          [a.get("unit") for a in ms["axes"]] == ["nanometer"] * 2,
          f"max along axis {ax}: the other axes' voxel size, origin and unit", ms)
if r.returncode == 0:
    with tifffile.TiffFile(path("vox-m0.tif")) as t:
        ij = t.imagej_metadata or {}
        xres = t.pages[0].tags["XResolution"].value
    check(ij.get("unit") in ("nm", "nanometer") and abs(xres[1] / xres[0] - 0.4) < 1e-6,
          "... and as a TIFF: the unit and the pixel width", (ij, xres))
want = ('halo: warning: step "ab" combines inputs of different voxel sizes ("a": 2x0.3x0.4 '
        'nanometer; "b": 5x7x9 micrometer); its outputs take the first\'s')
check(r.stderr.strip() == want, "two inputs of different voxel sizes: one warning", r.stderr)

done()
