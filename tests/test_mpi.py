"""halo under mpirun (StarPU-MPI): every rank starts with its rank and the
number of ranks, on its own share of the node's cores and memory; `halo run` and `halo deconvolve` (overlap and exact modes)
on 2 and 3 ranks, with chunk grids that do not divide among them, give the
single-process result; every input chunk is read once, by its owner; the
bytes StarPU-MPI moves between each pair of ranks are recomputed here from
the chunk grid and the block distribution: for `run`, the source chunks
other ranks' halos need; in exact mode, per half-iteration, only the halo
slabs (and each PSF spectrum once); a corrupt chunk on rank 1 fails every
rank with one line naming the rank, step and chunk, and leaves nothing. Skipped, saying so,
when this halo was built without StarPU-MPI or mpirun is missing."""
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import tifffile
import zarr

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import HALO, check, done, halo, path, skip  # noqa: E402

# OpenMPI refuses root unless told, and must not look for other hosts.
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_btl="self,vader")
if "ASAN_OPTIONS" in ENV:
    # The sanitizer job: Open MPI never frees much of what MPI_Init takes,
    # from components whose one-frame stacks no suppression can name.
    # Memory errors are still caught; leaks are checked by every other test.
    ENV["ASAN_OPTIONS"] += ":detect_leaks=0"


def mpirun(n, *args, timeout=300, outdir=None):
    """Runs halo on n ranks; with outdir, each rank's stdout goes to a file
    of its own (ranks print at the same time)."""
    extra = ["--output-filename", outdir] if outdir else []
    return subprocess.run(["mpirun", *extra, "-np", str(n), HALO, *map(str, args)], env=ENV,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def rank_outputs(outdir):
    """stdout of each rank, by rank, from mpirun --output-filename."""
    out = {}
    for root, _, files in os.walk(outdir):
        if "stdout" in files and os.path.basename(root).startswith("rank."):
            with open(os.path.join(root, "stdout")) as f:
                out[int(os.path.basename(root)[5:])] = f.read()
    return out


info = json.loads(halo("info", "--json").stdout)
if not info["starpu"]["mpi"] or not shutil.which("mpirun"):
    skip("halo under mpirun", "no StarPU-MPI or no mpirun")
    done()
check({k: info["mpi"].get(k) for k in ("rank", "ranks")} == {"rank": 0, "ranks": 1},
      "without mpirun: one rank", info["mpi"])
# halo info on several ranks: rank 0 prints every rank's description, in
# rank order (one JSON document; each rank printed its own, interleaved).
for n in (2, 3):
    outdir = path(f"mpi-info-{n}")
    shutil.rmtree(outdir, ignore_errors=True)
    r = mpirun(n, "info", "--json", "--ncpu", 1, outdir=outdir)
    outs = rank_outputs(outdir) if r.returncode == 0 else {}
    docs = json.loads(outs.get(0, "[]"))
    check([d["mpi"]["rank"] for d in docs] == list(range(n)) and
          all(d["mpi"]["ranks"] == n and d["mpi"]["host"] for d in docs) and
          all(not outs.get(k) for k in range(1, n)),
          f"mpirun -np {n} halo info --json: rank 0 prints one array of every rank's, in order",
          r.stdout[-2000:] + r.stderr[-2000:])
r = mpirun(3, "info")
check(r.returncode == 0 and re.findall(r"^MPI: rank (\d) of 3", r.stdout, re.M) == ["0", "1", "2"],
      "mpirun -np 3 halo info: every rank's, in rank order", r.stdout[-2000:] + r.stderr[-2000:])


# Ranks on one node split its cores and memory: StarPU alone bound every
# rank's first worker to the node's first core and gave each the budget of
# the whole node. A user's own binding stays.
def rank_infos(tag, *args, env=None):
    r = subprocess.run(["mpirun", "-np", "2", HALO, "info", "--json", *map(str, args)],
                       env=dict(ENV, **(env or {})), capture_output=True, text=True,
                       timeout=300, stdin=subprocess.DEVNULL)
    return r, json.loads(r.stdout) if r.returncode == 0 else []


def cpu_pus(doc):
    return [w["bindid"] for w in doc["workers"]["list"] if w["kind"] == "cpu"]


whole = info["workers"]["list"][0]["memory_bytes"]
cores = info["topology"]["cores"]
r, docs = rank_infos("default")
pus = [cpu_pus(d) for d in docs]
check(len(docs) == 2 and all(pus) and (cores < 2 or not set(pus[0]) & set(pus[1])),
      f"mpirun -np 2 on {cores} cores: each rank's CPU workers on cores of its own", pus or r.stderr)
mem = [d["workers"]["list"][0]["memory_bytes"] / whole for d in docs]
check(len(mem) == 2 and all(0.45 < m < 0.55 for m in mem),
      "mpirun -np 2: each rank's StarPU main memory is half of one process's", mem)
r = mpirun(1, "info", "--json")
one = json.loads(r.stdout)[0] if r.returncode == 0 else {}  # an array under mpirun, always
check(one.get("workers", {}).get("cpu") == info["workers"]["cpu"],
      "mpirun -np 1: as many CPU workers as one process (no core kept for talking to no one)",
      (one.get("workers"), r.stderr[-500:]))
r, docs = rank_infos("cpuid", "--ncpu", 1, env={"STARPU_WORKERS_CPUID": "0"})
check([cpu_pus(d) for d in docs] == [[0], [0]], "STARPU_WORKERS_CPUID=0 binds both ranks to PU 0",
      [cpu_pus(d) for d in docs] or r.stderr)
# Commands that cannot use several ranks yet say so instead of running
# the same work twice.
src = path("mpi-in.zarr")
shutil.rmtree(src, ignore_errors=True)
zarr.open(src, mode="w", shape=(4, 8, 8), chunks=(2, 4, 4), dtype="u2")[:] = 7
# A volume is described once, not once per rank.
r = mpirun(2, "info", src, "--json")
check(r.returncode == 0 and r.stdout.count('"shape"') == 1, "mpirun -np 2 halo info VOLUME: once",
      r.stdout[-1500:] + r.stderr[-1500:])
r = mpirun(2, "convert", src, path("mpi-out.zarr"), "--overwrite")
lines = [l for l in r.stderr.splitlines() if l.startswith("halo: ")]
check(r.returncode != 0 and len(lines) == 1 and "does not run on 2 ranks yet" in lines[0] and
      not os.path.exists(path("mpi-out.zarr")),
      "a command without MPI support refuses several ranks with one line", r.stderr[-1500:])
# Every rank checks the same options and files: a failure before the run
# is said once (it was once per rank, as many as mpirun let through).
for what, args in [("a missing PSF", ["deconvolve", src, path("no-psf.tif"), path("mpi-x.zarr")]),
                   ("an unknown option", ["deconvolve", "--bogus", "3", src, src, src]),
                   ("an unknown command", ["bogus"]),
                   ("a bad value", ["run", path("no.json"), "--ncpu", "-1"])]:
    r = mpirun(3, *args)
    lines = [l for l in r.stderr.splitlines() if l.startswith("halo")]
    check(r.returncode != 0 and len(lines) == 1 and "rank" not in lines[0],
          f"mpirun -np 3, {what}: one line", r.stderr[-1500:])
def rank1_reads(arg, value, *args):
    """mpirun -np 2 halo ARGS, where rank 1 finds value as argument arg
    (1-based, after halo) instead."""
    wrap = path("mpi-rank1.sh")
    with open(wrap, "w") as f:
        f.write(f"#!/bin/sh\nn=0; for a; do n=$((n + 1)); [ \"$OMPI_COMM_WORLD_RANK$PMI_RANK\" = 1 ]"
                f" && [ $n = {arg} ] && a={value}; set -- \"$@\" \"$a\"; shift; done\n"
                f"exec {HALO} \"$@\"\n")
    os.chmod(wrap, 0o755)
    return subprocess.run(["mpirun", "-np", "2", wrap, *map(str, args)], env=ENV,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


# A failure of one rank's own is said by that rank, naming it.
tifffile.imwrite(path("mpi-psf0.tif"), np.ones((3, 3, 3), np.float32), photometric="minisblack")
r = rank1_reads(3, path("no-psf.tif"), "deconvolve", src, path("mpi-psf0.tif"), path("mpi-x.zarr"))
lines = [l for l in r.stderr.splitlines() if l.startswith("halo")]
check(r.returncode != 0 and len(lines) == 1 and
      lines[0].startswith("halo: rank 1: ") and "no-psf.tif" in lines[0],
      "mpirun -np 2, rank 1's PSF missing: one line naming rank 1", r.stderr[-1500:])
# Nothing left beside OUT: rank 0 took the output's lock before the ranks
# met, and mpirun ended it holding the lock.
left = [f for f in os.listdir(path("")) if "mpi-x.zarr" in f]
check(left == [], "mpirun -np 2, rank 1's PSF missing: nothing left beside OUT", left)
def rank1_in(folder, *args, env1=""):
    """mpirun -np 2 halo ARGS from folder "a", rank 1 from folder (with
    env1's assignments): the same command line, other files behind its
    relative paths (a stale copy on one node)."""
    wrap = path("mpi-rank1-cd.sh")
    with open(wrap, "w") as f:
        f.write(f"#!/bin/sh\n[ \"$OMPI_COMM_WORLD_RANK$PMI_RANK\" = 1 ] && cd {folder}"
                f"{' && export ' + env1 if env1 else ''}\nexec {HALO} \"$@\"\n")
    os.chmod(wrap, 0o755)
    return subprocess.run(["mpirun", "-np", "2", wrap, *map(str, args)], env=ENV,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                          cwd=path("a"))


def beside(name):
    return [f for f in os.listdir(path("")) if name in f]


# Rank 1 reading another IN (a stale copy on its node): StarPU-MPI aborted
# on another shape, and another type was mixed into the output.
for d in ("a", "b"):
    shutil.rmtree(path(d), ignore_errors=True)
    os.makedirs(path(d))
    tifffile.imwrite(path(f"{d}/psf.tif"), np.ones((3, 3, 3), np.float32),
                     photometric="minisblack")
    with open(path(f"{d}/p.json"), "w") as f:
        json.dump({"steps": [{"name": "raw", "op": "from_zarr", "path": "in.zarr"},
                             {"name": "o", "op": "to_zarr", "input": "raw",
                              "path": path("mpi-z.zarr"), "overwrite": True}]}, f)
zarr.open(path("a/in.zarr"), mode="w", shape=(8, 16, 16), chunks=(4, 8, 8), dtype="u2")[:] = 1
for name, shape, dt in [("another shape", (8, 16, 12), "u2"), ("another type", (8, 16, 16), "f4")]:
    shutil.rmtree(path("b/in.zarr"), ignore_errors=True)
    zarr.open(path("b/in.zarr"), mode="w", shape=shape, chunks=(4, 8, 8), dtype=dt)[:] = 1
    r = rank1_in(path("b"), "deconvolve", "in.zarr", "psf.tif", path("mpi-y.zarr"),
                 "--iterations=2")
    lines = [l for l in r.stderr.splitlines() if l.startswith("halo")]
    check(r.returncode != 0 and len(lines) == 1 and "rank 1: its IN or PSF differs" in lines[0]
          and beside("mpi-y.zarr") == [], f"mpirun -np 2, rank 1's IN of {name}: one line, "
          "nothing left", (r.stderr[-1500:], beside("mpi-y.zarr")))
    # The same through halo run: rank 1's pipeline reads the other volume.
    r = rank1_in(path("b"), "run", "p.json", "--quiet")
    lines = [l for l in r.stderr.splitlines() if l.startswith("halo")]
    check(r.returncode != 0 and len(lines) == 1 and 'rank 1: step "raw"' in lines[0] and
          "in.zarr: differs from rank 0's" in lines[0] and beside("mpi-z.zarr") == [],
          f"halo run on 2 ranks, rank 1's source of {name}: one line naming it, nothing left",
          (r.stderr[-1500:], beside("mpi-z.zarr")))
shutil.rmtree(path("b/in.zarr"), ignore_errors=True)
shutil.copytree(path("a/in.zarr"), path("b/in.zarr"))
# The same inputs on each node's own disk, OUT relative (a folder the ranks
# do not share): rank 1 wrote its chunks into a temporary output of its
# own, left behind, and rank 0 committed the rest, saying it succeeded.
for args, said in [(("deconvolve", "in.zarr", "psf.tif", "mpi-local.zarr", "--iterations=2"),
                    "halo: rank 1: mpi-local.zarr: "),
                   (("run", "local.json", "--quiet"),
                    'halo: local.json: rank 1: step "o": ./mpi-local.zarr: ')]:
    for d in ("a", "b"):
        with open(path(f"{d}/local.json"), "w") as f:
            json.dump({"steps": [{"name": "raw", "op": "from_zarr", "path": "in.zarr"},
                                 {"name": "o", "op": "to_zarr", "input": "raw",
                                  "path": "mpi-local.zarr"}]}, f)
    r = rank1_in(path("b"), *args)
    lines = [l for l in r.stderr.splitlines() if l.startswith("halo")]
    left = [f for d in ("a", "b") for f in os.listdir(path(d)) if "mpi-local" in f]
    check(r.returncode != 0 and lines == [
        said + "this rank does not see the output rank 0 is writing; under mpirun the ranks "
        "write into one output, on a filesystem they share"] and
        left == [], f"halo {args[0]} on 2 ranks, OUT in a folder they do not share: one line, "
        "nothing left", (r.stderr[-1500:], left))

# Other options on one rank hung (--iterations, --mode), aborted in
# StarPU-MPI (--chunks) or wrote a mixed output (OUT, --dtype); so did a
# pipeline whose steps differ.
for arg, value in [(5, "--iterations=3"), (5, "--chunks=2,8,8"), (4, path("mpi-y2.zarr"))]:
    r = rank1_reads(arg, value, "deconvolve", path("a/in.zarr"), path("a/psf.tif"),
                    path("mpi-y.zarr"), "--iterations=2")
    lines = [l for l in r.stderr.splitlines() if l.startswith("halo")]
    check(r.returncode != 0 and lines == ["halo: rank 1: its command line differs from rank "
                                          "0's: every rank must run the same command"] and
          beside("mpi-y.zarr") == [] and beside("mpi-y2.zarr") == [],
          f"mpirun -np 2, rank 1 given {os.path.basename(value)}: one line, nothing left",
          r.stderr[-1500:])
with open(path("b/p.json"), "w") as f:
    json.dump({"steps": [{"name": "raw", "op": "from_zarr", "path": "in.zarr"},
                         {"name": "s", "op": "map_blocks", "input": "raw", "kernel": "scale",
                          "scale": 2},
                         {"name": "o", "op": "to_zarr", "input": "s",
                          "path": path("mpi-z.zarr"), "overwrite": True}]}, f)
r = rank1_in(path("b"), "run", "p.json", "--quiet")
lines = [l for l in r.stderr.splitlines() if l.startswith("halo")]
check(r.returncode != 0 and lines == ["halo: rank 1: p.json: its command line or this file "
                                      "differs from rank 0's: every rank must run the same "
                                      "command on the same file"] and beside("mpi-z.zarr") == [],
      "halo run on 2 ranks, rank 1's pipeline of other steps: one line, nothing left",
      r.stderr[-1500:])
# Each rank chose the mode from its own memory: exact on one, overlap on
# the other, and both waited forever. Exact mode holds 1.5 MiB of this
# volume per rank: over rank 1's limit of 1 MiB.
for d in ("a", "b"):
    zarr.open(path(f"{d}/big.zarr"), mode="w", shape=(64, 64, 64), chunks=(32, 32, 32),
              dtype="u2")[:] = 1
r = rank1_in(path("b"), "deconvolve", "big.zarr", "psf.tif", path("mpi-y.zarr"),
             "--iterations=2", env1="STARPU_LIMIT_CPU_MEM=1")
lines = [l for l in r.stderr.splitlines() if l.startswith("halo: ")]
check(r.returncode != 0 and lines == ["halo: rank 1: from its memory it chose the overlap "
                                      "mode, and rank 0 the exact; give --mode to choose for "
                                      "all"] and beside("mpi-y.zarr") == [],
      "mpirun -np 2, the ranks' memory choosing two modes: one line, nothing left",
      r.stderr[-1500:])
# A rank whose StarPU finds fewer GPUs than asked: the other waited for it
# in its next collective, forever.
if not info["workers"]["cuda"]:
    try:
        r = rank1_in(path("b"), "run", "p.json", "--quiet", env1="STARPU_NCUDA=1")
        lines = [l for l in r.stderr.splitlines() if l.startswith("halo: ")]
        check(r.returncode != 0 and lines == ["halo: rank 1: STARPU_NCUDA=1: StarPU found 0 "
                                              "GPUs to run on"],
              "mpirun -np 2, rank 1 finding no GPU it asked for: one line", r.stderr[-1500:])
    except subprocess.TimeoutExpired:
        check(False, "mpirun -np 2, rank 1 finding no GPU it asked for: ends (it hung)")

demo = path("mpi-demo")
shutil.rmtree(demo, ignore_errors=True)
r = mpirun(2, "demo", demo, "--quiet")
lines = [l for l in r.stderr.splitlines() if l.startswith("halo: ")]
check(r.returncode != 0 and len(lines) == 1 and "demo runs in one process" in lines[0] and
      not os.path.exists(demo), "demo under mpirun: refuses before writing its sample", r.stderr)

# --- halo run on several ranks --------------------------------------------
SHAPE, RAW, RE, DEPTH = (40, 48, 56), (20, 24, 28), (16, 24, 20), 2
rng = np.random.default_rng(3)
src = path("mpi-src.zarr")
shutil.rmtree(src, ignore_errors=True)
zs = zarr.open(src, mode="w", shape=SHAPE, chunks=RAW, dtype="u2")
zs[...] = rng.integers(0, 1000, SHAPE, dtype=np.uint16)


def pipeline(name, source):
    steps = [
        {"name": "raw", "op": "from_zarr", "path": source},
        {"name": "re", "op": "rechunk", "input": "raw", "chunks": list(RE)},
        {"name": "f", "op": "astype", "input": "re", "dtype": "float32"},
        {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "f", "depth": DEPTH,
         "boundary": "reflect", "size": 3},
        {"name": "s", "op": "map_blocks", "kernel": "scale", "input": "u", "scale": 0.5,
         "offset": 1},
        {"name": "out", "op": "to_zarr", "input": "s", "path": path(name + ".zarr"),
         "overwrite": True},
        {"name": "total", "op": "sum", "input": "s"},
        {"name": "peak", "op": "max", "input": "u"}]
    p = path(name + ".json")
    with open(p, "w") as f:
        json.dump({"steps": steps}, f)
    shutil.rmtree(path(name + ".zarr"), ignore_errors=True)
    return p


r = mpirun(2, "run", pipeline("mpi-dry", src), "--dry-run")
check(r.returncode == 0 and r.stdout.count("\nplan: ") == 1,
      "run --dry-run on 2 ranks: the plan printed once", r.stdout[-1500:] + r.stderr[-1500:])
# graph and trace read files alike on every rank: said once.
r = mpirun(2, "graph", "stats", pipeline("mpi-g", src))
check(r.returncode == 0 and r.stdout.count("tasks:") == 1, "mpirun -np 2 halo graph stats: once",
      r.stdout[-1500:] + r.stderr[-1500:])
r = halo("run", pipeline("mpi-1", src), "--json", check_rc=0)
ref = json.loads(r.stdout) if r.returncode == 0 else {}
ref_out = zarr.open(path("mpi-1.zarr"), mode="r")[:] if r.returncode == 0 else None


def owners(n, grid=RAW):
    """The block distribution of runtime/distribution.c over a chunk grid
    (run: the source's, the plan's largest array; exact mode: the output's):
    owner(origin, dims) -> rank."""
    nc = [-(-s // c) for s, c in zip(SHAPE, grid)]
    best = None  # (chunks on the busiest rank, area of the cuts, grid)
    for p0 in range(n, 0, -1):
        for p1 in range(n // p0, 0, -1):
            if n % p0 or (n // p0) % p1:
                continue
            p = (p0, p1, n // p0 // p1)
            if not all(p[a] <= nc[a] for a in range(3)):
                continue
            load = np.prod([-(-nc[a] // p[a]) for a in range(3)])
            area = sum((p[a] - 1) * SHAPE[(a + 1) % 3] * SHAPE[(a + 2) % 3] for a in range(3))
            if best is None or (load, area) < best[:2]:
                best = (load, area, p)
    fits = best is not None and not 5 * -(-int(np.prod(nc)) // n) < 4 * best[0]
    p = best[2] if fits else (1, 1, 1)

    def owner(origin, dims):
        # the grid's chunk at the block's centre
        k = [min((o + d // 2) // c, m - 1) for o, d, c, m in zip(origin, dims, grid, nc)]
        if not fits:  # runs of the flattened chunk grid
            flat = (k[0] * nc[1] + k[1]) * nc[2] + k[2]
            return flat * n // (nc[0] * nc[1] * nc[2])
        # rank block j holds chunks [j * nc // p, (j + 1) * nc // p)
        c = [((k[a] + 1) * p[a] - 1) // nc[a] for a in range(3)]
        return (c[0] * p[1] + c[1]) * p[2] + c[2]
    return owner


def blocks(chunk):
    for j in itertools.product(*[range(-(-s // c)) for s, c in zip(SHAPE, chunk)]):
        o = [a * c for a, c in zip(j, chunk)]
        yield j, o, [min(c, s - a) for a, c, s in zip(o, chunk, SHAPE)]


def reflect(g, n):
    r = g % (2 * n)
    return r if r < n else 2 * n - 1 - r


def slab_bytes(owner, out_grid, src_grid, halos, elbytes, reps):
    """Bytes from rank to rank when each haloed block of out_grid is cut,
    axis by axis, into runs that one chunk of src_grid fills (reflect at
    the faces), and a cell crosses ranks when its source chunk belongs to
    another rank than the block (runtime/gather_cells.c). halos:
    (before, after(size of the chunk along the axis)) per gather of a
    block; reps: how many times each gather happens."""
    moved = {}
    for _, o, d in blocks(out_grid):
        me = owner(o, d)
        for before, after in halos:
            runs = []
            for a in range(3):
                lo, hd = o[a] - before, d[a] + before + after(d[a])
                ax, prev = [], None
                for t in range(hd):
                    m = reflect(lo + t, SHAPE[a])
                    if prev is None or m // src_grid[a] != prev // src_grid[a]:
                        ax.append([m, 0])
                    ax[-1][1] += 1
                    prev = m
                runs.append(ax)
            for cz, cy, cx in itertools.product(*runs):
                so = [(v[0] // src_grid[a]) * src_grid[a] for a, v in enumerate((cz, cy, cx))]
                sd = [min(src_grid[a], SHAPE[a] - so[a]) for a in range(3)]
                src_rank = owner(so, sd)
                if src_rank != me:
                    k = (src_rank, me)
                    moved[k] = moved.get(k, 0) + cz[1] * cy[1] * cx[1] * elbytes * reps
    return moved


def expected_bytes(n):
    """halo run: each float32 haloed block of map_overlap gathers the parts
    of the uint16 source chunks it needs (converted where they live)."""
    return slab_bytes(owners(n), RE, RAW, [(DEPTH, lambda d: DEPTH)], 4, 1)


def comm_stats(text):
    """STARPU_COMM_STATS lines: {(src, dst): bytes}."""
    out = {}
    for line in text.splitlines():
        if line.startswith("[starpu_comm_stats][") and ":" in line.split("]")[1]:
            pair = line.split("][")[1].split("]")[0]
            a, b = (int(v) for v in pair.split(":"))
            val = float(line.split("\t")[1].split()[0])
            if val > 0:
                out[(a, b)] = int(val)
    return out


for n in (2, 3):
    name = f"mpi-{n}"
    ENV["STARPU_COMM_STATS"] = "1"
    r = mpirun(n, "run", pipeline(name, src), "--json")
    del ENV["STARPU_COMM_STATS"]
    got = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
    check(r.returncode == 0 and got.get("results") == ref.get("results"),
          f"run on {n} ranks: the scalar results of one process", (got, ref, r.stderr[-1500:]))
    out = zarr.open(path(name + ".zarr"), mode="r")[:] if r.returncode == 0 else None
    check(out is not None and ref_out is not None and np.array_equal(out, ref_out),
          f"run on {n} ranks: the output equals one process's, voxel for voxel")
    check(got.get("chunks_read") == ref.get("chunks_read") == 8,
          f"run on {n} ranks: every input chunk read once, by one rank", (got, ref))
    moved, want = comm_stats(r.stderr), expected_bytes(n)
    check(moved == want and want, f"run on {n} ranks: StarPU-MPI moved exactly the chunks the other "
          f"ranks' halos need", (moved, want))
    check(not [f for f in os.listdir(os.path.dirname(path("x"))) if f.startswith(f".{name}.zarr")],
          f"run on {n} ranks: no temporary output left")

# --trace on several ranks: one trace, a process per rank, each task of the
# run in it once, and the bytes sent between ranks those StarPU-MPI counted.
tr = path("mpi-trace.json")
if os.path.exists(tr):
    os.remove(tr)
# A user's file where a rank would write its part of the trace is kept.
part = path("mpi-trace.rank1.json")
with open(part, "w") as f:
    f.write("my notes\n")
r = mpirun(2, "run", pipeline("mpi-t", src), "--quiet", "--trace", tr)
check(r.returncode == 1 and "mpi-trace.rank1.json', where rank 1 writes its part" in r.stderr
      and open(part).read() == "my notes\n" and not os.path.exists(tr),
      "mpirun --trace: a user's FILE.rank1.json refused and kept", r.stderr[-1500:])
os.remove(part)
ENV["STARPU_COMM_STATS"] = "1"
r = mpirun(2, "run", pipeline("mpi-t", src), "--quiet", "--trace", tr)
del ENV["STARPU_COMM_STATS"]
doc = json.load(open(tr)) if r.returncode == 0 and os.path.exists(tr) else {"traceEvents": []}
tasks = [e for e in doc["traceEvents"] if e.get("ph") == "X" and e.get("cat") != "transfer"]
one = path("mpi-trace-1.json")
halo("run", pipeline("mpi-t1", src), "--quiet", "--trace", one, check_rc=0)
ref_tasks = [e for e in json.load(open(one))["traceEvents"] if e.get("ph") == "X"]


def per_codelet(evs):
    """Tasks per codelet, gathers aside (on several ranks a haloed block is
    gathered from slabs, so there are more)."""
    out = {}
    for e in evs:
        if e["name"] != "gather":
            out[e["name"]] = out.get(e["name"], 0) + 1
    return out


check(per_codelet(tasks) == per_codelet(ref_tasks) and
      len({e["args"]["id"] for e in tasks}) == len(tasks) and
      {e["args"]["rank"] for e in tasks} == {0, 1},
      "--trace on 2 ranks: one trace with each read, filter, reduction and write task once, "
      "from both ranks", (per_codelet(tasks), per_codelet(ref_tasks)))
procs = {e["args"]["name"] for e in doc["traceEvents"]
         if e.get("ph") == "M" and e.get("name") == "process_name"}
check({"rank 0: CPU cores", "rank 1: CPU cores"} <= procs and
      not os.path.exists(path("mpi-trace.rank0.json")) and
      not os.path.exists(path("mpi-trace.rank1.json")),
      "--trace on 2 ranks: a process per rank; the per-rank parts are gone", procs)
sent = doc.get("otherData", {}).get("mpi", {}).get("bytes_sent", [])
got = {(a, b): v for a, row in enumerate(sent) for b, v in enumerate(row) if v}
check(got == comm_stats(r.stderr) == expected_bytes(2) and got,
      "--trace on 2 ranks: bytes sent between ranks = StarPU-MPI's count = the halo volume",
      (got, comm_stats(r.stderr), expected_bytes(2)))
flows = {}
for e in doc["traceEvents"]:
    if e.get("cat") == "mpi":
        flows.setdefault(e["id"], {})[e["ph"]] = e
by_pair = {}
order_ok = True
for f in flows.values():
    if "s" in f and "f" in f:
        k = (f["s"]["pid"] // 100000, f["f"]["pid"] // 100000)
        by_pair[k] = by_pair.get(k, 0) + f["s"]["args"]["bytes"]
        order_ok &= f["f"]["ts"] >= f["s"]["ts"] - 1000  # clocks lined up to ~1 ms
check(by_pair == got and order_ok and doc["otherData"]["mpi"].get("flows") == len(flows),
      "--trace on 2 ranks: a flow per MPI transfer, from the task that wrote the data on one "
      "rank to the task that read it on the other; their bytes add up to the bytes sent",
      (by_pair, got))
r = halo("trace", "summary", tr, "--json", check_rc=0)
summ = json.loads(r.stdout) if r.returncode == 0 else {}
check(summ.get("mpi_bytes_sent") == sent and len(summ.get("workers", [])) == len(
      {(e["args"]["rank"], e["args"]["worker"]) for e in tasks}),
      "trace summary: bytes between ranks, and each rank's workers apart", summ.get("workers"))
r = halo("trace", "summary", tr, check_rc=0)
check("rank 0 -> 1" in r.stdout, "trace summary prints the bytes between ranks", r.stdout)

# --trace-fxt: each rank keeps and converts its own FxT trace.
fxt = path("mpi-fxt")
shutil.rmtree(fxt, ignore_errors=True)
r = mpirun(2, "run", pipeline("mpi-f", src), "--quiet", "--trace-fxt", fxt)
check(r.returncode == 0 and all(os.path.exists(os.path.join(fxt, f"rank{k}", "paje.trace"))
                                for k in (0, 1)),
      "--trace-fxt on 2 ranks: a Paje trace per rank in DIR/rankR", r.stderr[-1500:])

# deconvolve (overlap mode) on several ranks: the single-process result
tifffile.imwrite(path("mpi-psf.tif"), np.exp(-np.sum(np.square(np.meshgrid(
    *[np.arange(5) - 2] * 3, indexing="ij")), axis=0) / 3).astype(np.float32),
    photometric="minisblack")
dec = ["deconvolve", src, path("mpi-psf.tif"), None, "--iterations", 4, "--chunks",
       ",".join(map(str, RE)), "--overwrite", "--quiet", "--mode", "overlap"]
dec[3] = path("mpi-dec-1.zarr")
r1 = halo(*dec, check_rc=0)
for n in (2, 3):
    dec[3] = path(f"mpi-dec-{n}.zarr")
    r = mpirun(n, *[a for a in dec if a != "--quiet"], "--ncpu", 1)
    check(f"on {n} CPU + 0 CUDA workers over {n} ranks:" in r.stdout,
          f"deconvolve on {n} ranks: the summary counts every rank's workers", r.stdout)
    ok = r.returncode == 0 and r1.returncode == 0
    a = zarr.open(path("mpi-dec-1.zarr"), mode="r")[:] if ok else None
    b = zarr.open(dec[3], mode="r")[:] if ok else None
    diff = float(np.abs(a - b).max() / np.abs(a).max()) if ok else None
    check(ok and diff <= 1e-6, f"deconvolve --mode overlap on {n} ranks: the single-process "
          f"result ({diff})",
          r.stderr[-1500:])

# A TIFF input is one chunk: its rechunked chunks are what the ranks share
# (rank 0 ran every RL task, the others idled).
tifffile.imwrite(path("mpi-in.tif"), zs[...], photometric="minisblack")
tr = path("mpi-tiff-trace.json")
dec[1], dec[3] = path("mpi-in.tif"), path("mpi-dec-tif.zarr")
r = mpirun(2, *dec, "--trace", tr)
ok = r.returncode == 0 and r1.returncode == 0
evs = json.load(open(tr))["traceEvents"] if ok else []
rl_ranks = sorted(e["args"]["rank"] for e in evs if e.get("ph") == "X" and e["name"] == "rl")
b = zarr.open(dec[3], mode="r")[:] if ok else None
# 3x2x3 chunks: cut across y (9 and 9), not across z's 3 (6 and 12).
check(ok and rl_ranks == [0] * 9 + [1] * 9 and np.array_equal(a, b),
      "deconvolve of a TIFF (one chunk) on 2 ranks: each rank runs the RL tasks of its block; "
      "the single-process result", (rl_ranks, r.stderr[-1500:]))
dec[1] = src
# Nor when the work is on a smaller array (a projection) than the input.
proj = path("mpi-proj.json")
json.dump({"steps": [{"name": "a", "op": "from_tiff", "path": path("mpi-in.tif")},
                     {"name": "p", "op": "max", "input": "a", "axis": 0},
                     {"name": "c", "op": "rechunk", "input": "p", "chunks": [16, 16]},
                     {"name": "u", "op": "map_overlap", "input": "c", "kernel": "uniform",
                      "depth": 1},
                     {"name": "o", "op": "to_zarr", "input": "u", "path": path("mpi-proj.zarr"),
                      "overwrite": True}]}, open(proj, "w"))
ref = None
if halo("run", proj, "--quiet", check_rc=0).returncode == 0:
    ref = zarr.open(path("mpi-proj.zarr"), mode="r")[:]
r = mpirun(2, "run", proj, "--quiet", "--trace", tr)
evs = json.load(open(tr))["traceEvents"] if r.returncode == 0 else []
ranks = {e["args"]["rank"] for e in evs if e.get("ph") == "X" and e["name"] == "uniform"}
out = zarr.open(path("mpi-proj.zarr"), mode="r")[:] if r.returncode == 0 else None
check(ranks == {0, 1} and ref is not None and np.array_equal(out, ref),
      "run on 2 ranks, the filter on a projection of a TIFF: both ranks filter; one process's "
      "result", (ranks, r.stderr[-1500:]))

# Projections that follow a store's walk: each rank adds the chunks it
# makes to columns that may be the other rank's. numpy's results.
fol = path("mpi-follow.json")
steps = [{"name": "a", "op": "from_zarr", "path": src},
         {"name": "o", "op": "to_zarr", "input": "a", "path": path("mpi-fol.zarr"),
          "overwrite": True}]
for fn, ax in [("max", 0), ("sum", 2)]:
    steps += [{"name": f"{fn}{ax}", "op": fn, "input": "a", "axis": ax},
              {"name": f"o{fn}{ax}", "op": "to_zarr", "input": f"{fn}{ax}",
               "path": path(f"mpi-{fn}{ax}.zarr"), "overwrite": True}]
json.dump({"steps": steps}, open(fol, "w"))
r = mpirun(2, "run", fol, "--quiet")
ok = r.returncode == 0
vol = zs[...]
check(ok and np.array_equal(zarr.open(path("mpi-fol.zarr"), mode="r")[:], vol) and
      np.array_equal(zarr.open(path("mpi-max0.zarr"), mode="r")[:], vol.max(axis=0)) and
      np.array_equal(zarr.open(path("mpi-sum2.zarr"), mode="r")[:], vol.sum(axis=2)),
      "run on 2 ranks, a store and its projections along z and x: numpy's", r.stderr[-1500:])

# The exact mode on several ranks: the single-process result, and only the
# halo slabs cross ranks (plus the PSF spectra, computed by rank 0).
PSF, IT = 5, 3


def smooth(n):
    while True:
        r = n
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return n
        n += 1


def exact_bytes(n):
    """Exact mode: per half-iteration, the slabs of each chunk's haloed
    block (FFT-sized: the chunk, the PSF, more halo up to a smooth size)
    that chunks of other ranks fill, and nothing else (each rank reads its
    own image chunks and computes its own PSF spectra)."""
    c = PSF // 2

    def pad(d):
        return smooth(d + PSF - 1) - (d + PSF - 1)
    halos = [(PSF - 1 - c, lambda d: c + pad(d)), (c, lambda d: PSF - 1 - c + pad(d))]
    return slab_bytes(owners(n, RE), RE, RE, halos, 4, IT)


tifffile.imwrite(path("mpi-psf5.tif"), np.exp(-np.sum(np.square(np.meshgrid(
    *[np.arange(PSF) - PSF // 2] * 3, indexing="ij")), axis=0) / 3).astype(np.float32),
    photometric="minisblack")
ex = ["deconvolve", src, path("mpi-psf5.tif"), None, "--mode", "exact", "--iterations", IT,
      "--chunks", ",".join(map(str, RE)), "--overwrite", "--quiet"]
ex[3] = path("mpi-ex-1.zarr")
r1 = halo(*ex, check_rc=0)
for n in (2, 3):
    ex[3] = path(f"mpi-ex-{n}.zarr")
    ENV["STARPU_COMM_STATS"] = "1"
    r = mpirun(n, *ex, "--trace", path(f"mpi-ex-{n}.trace.json"))
    del ENV["STARPU_COMM_STATS"]
    ok = r.returncode == 0 and r1.returncode == 0
    a = zarr.open(path("mpi-ex-1.zarr"), mode="r")[:] if ok else None
    b = zarr.open(ex[3], mode="r")[:] if ok else None
    diff = float(np.abs(a - b).max() / np.abs(a).max()) if ok else None
    check(ok and diff <= 1e-6, f"deconvolve --mode exact on {n} ranks: the single-process "
          f"result ({diff})", r.stderr[-1500:])
    moved, want = comm_stats(r.stderr), exact_bytes(n)
    check(moved == want and want, f"exact mode on {n} ranks: only the halo slabs crossed ranks",
          (moved, want))
    r = halo("trace", "summary", path(f"mpi-ex-{n}.trace.json"), "--json", check_rc=0)
    sent = json.loads(r.stdout).get("mpi_bytes_sent", []) if r.returncode == 0 else []
    got = {(a, b): v for a, row in enumerate(sent) for b, v in enumerate(row) if v}
    check(got == want, f"exact mode on {n} ranks: trace summary's bytes between ranks are the "
          f"slabs", (got, want))
# --memory is per rank: exact mode over it alone runs on 2 ranks, each
# holding its own blocks (the whole volume's figure refused it).
ex[3] = path("mpi-ex-mem.zarr")
r = halo(*ex, "--memory", "1K")
m = re.search(r"holds about ([0-9.]+) (KiB|MiB|GiB)", r.stderr)
mem = f"{float(m.group(1)) * {'KiB': 1 << 10, 'MiB': 1 << 20, 'GiB': 1 << 30}[m.group(2)] * 0.8 / 1024:.0f}K" \
    if m else "1K"
r1 = halo(*ex, "--memory", mem)
r2 = mpirun(2, *ex, "--memory", mem)
check(m and r1.returncode == 1 and "more than --memory" in r1.stderr and r2.returncode == 0,
      f"exact mode within --memory {mem} per rank on 2 ranks, over it in one process",
      (r1.stderr, r2.stderr[-1500:]))

# HALO_SYNC=1: each rank flushes its own writes (its node's, on a cluster)
# before rank 0 commits; only rank 0's node was flushed. Rank 1 under strace.
def rank1_syncs(args, env1):
    wrap, log = path("mpi-rank1-strace.sh"), path("mpi-rank1.strace")
    if os.path.exists(log):
        os.remove(log)
    with open(wrap, "w") as f:
        f.write(f"#!/bin/sh\n[ \"$OMPI_COMM_WORLD_RANK$PMI_RANK\" = 1 ] && exec env {env1} strace -f "
                f"-qq -e trace=syncfs -o {log} {HALO} \"$@\"\nexec {HALO} \"$@\"\n")
    os.chmod(wrap, 0o755)
    r = subprocess.run(["mpirun", "-np", "2", wrap, *map(str, args)], env=ENV,
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    calls = open(log).read().count("syncfs(") if os.path.exists(log) else None
    return r, calls


if shutil.which("strace"):
    for what, args in [("exact mode", ex), ("run", ["run", pipeline("mpi-sync", src), "--quiet"])]:
        out = path("mpi-ex-sync.zarr") if what == "exact mode" else path("mpi-sync.zarr")
        if what == "exact mode":
            args = [*ex[:3], out, *ex[4:]]
        r0, calls0 = rank1_syncs(args, "HALO_SYNC=0")
        r, calls = rank1_syncs(args, "HALO_SYNC=1")
        ok = r.returncode == 0 and os.path.isdir(out)
        check(r0.returncode == 0 and calls0 == 0 and ok and calls and calls > 0,
              f"HALO_SYNC=1 on rank 1, {what}: rank 1 flushes its writes (syncfs calls without "
              f"it, with it: {calls0}, {calls})", r.stderr[-1500:])
else:
    skip("HALO_SYNC=1 on rank 1", "no strace")

# A rechunk only a store reads is assembled in the write task in one
# process; under mpirun a gather task brings the parts across ranks.
rs = path("mpi-rs.json")
with open(rs, "w") as f:
    json.dump({"steps": [{"name": "raw", "op": "from_zarr", "path": src},
                         {"name": "re", "op": "rechunk", "input": "raw", "chunks": list(RE)},
                         {"name": "out", "op": "to_zarr", "input": "re", "path": path("mpi-rs.zarr"),
                          "dtype": "float32", "overwrite": True}]}, f)
r = mpirun(2, "run", rs, "--quiet")
got = zarr.open(path("mpi-rs.zarr"), mode="r") if r.returncode == 0 else None
check(got is not None and got.chunks == RE and np.array_equal(got[...], zs[...].astype(np.float32)),
      "rechunk and store on 2 ranks: the input, in the new chunks", r.stderr[-1500:])

# A corrupt chunk that rank 1 owns stops every rank; nothing is written.
bad = path("mpi-bad.zarr")
shutil.rmtree(bad, ignore_errors=True)
shutil.copytree(src, bad)
with open(os.path.join(bad, "1.1.1"), "wb") as f:
    f.write(b"garbage")
r = mpirun(2, "run", pipeline("mpi-badout", bad), "--quiet")
lines = [l for l in r.stderr.splitlines() if l.startswith("halo: ")]
check(r.returncode != 0 and len(lines) == 1 and "rank 1" in lines[0] and 'step "raw"' in lines[0]
      and "1.1.1" in lines[0], "a corrupt chunk on rank 1: one line naming rank, step and chunk",
      r.stderr[-1500:])
check(not [f for f in os.listdir(os.path.dirname(path("x"))) if "mpi-badout" in f and
           not f.endswith(".json")], "a failed run on several ranks leaves no output")
# The same behind a projection (max along z) and a sum: the other rank's
# walk stopped short, and it reported that instead ("internal error: step
# ... 0 of 9 chunks made"), as the first rank failing.
proj_bad = path("mpi-proj-bad.json")
json.dump({"steps": [{"name": "raw", "op": "from_zarr", "path": bad},
                     {"name": "rc", "op": "rechunk", "input": "raw", "chunks": [12, 7, 9]},
                     {"name": "mx", "op": "max", "input": "rc", "axis": 0},
                     {"name": "s", "op": "sum", "input": "rc"},
                     {"name": "o", "op": "to_zarr", "input": "mx",
                      "path": path("mpi-proj-bad.zarr"), "overwrite": True}]},
          open(proj_bad, "w"))
r = mpirun(2, "run", proj_bad, "--quiet")
lines = [l for l in r.stderr.splitlines() if l.startswith("halo: ")]
check(r.returncode != 0 and len(lines) == 1 and 'rank 1: step "raw"' in lines[0] and
      "1.1.1" in lines[0] and "internal error" not in lines[0],
      "a corrupt chunk on rank 1 behind a projection and a sum: rank 1's own error",
      r.stderr[-1500:])
ex[1], ex[3] = bad, path("mpi-ex-bad.zarr")
r = mpirun(3, *ex)
lines = [l for l in r.stderr.splitlines() if l.startswith("halo: ")]
# More ranks than cores (CI's 2): they slowed each other 30-fold, unsaid.
crowd = ("halo: warning: 3 ranks on this node's %d cores: ranks that share a core wait on each "
         "other's spinning workers; run %d at most" % (os.cpu_count(), os.cpu_count()))
if os.cpu_count() < 3:
    check(lines[:1] == [crowd], "3 ranks on 2 cores: a warning, once", r.stderr[-1500:])
lines = [l for l in lines if l != crowd]
check(r.returncode != 0 and len(lines) == 1 and "rank " in lines[0] and "1.1.1" in lines[0] and
      not [f for f in os.listdir(os.path.dirname(path("x"))) if "mpi-ex-bad" in f],
      "exact mode on 3 ranks, a corrupt chunk: one line naming rank and chunk; nothing left",
      r.stderr[-1500:])

# Ctrl-C on mpirun: it sends the ranks SIGTERM, then SIGKILL a second
# later.
folder = os.path.dirname(path("x"))


def interrupted(n, args, name, sig):
    """mpirun -np n halo ARGS (writing NAME), signalled a second after the
    ranks have begun writing it: (exit status, what is left of NAME, the
    'halo' lines on stderr, stderr's end)."""
    p = subprocess.Popen(["mpirun", "-np", str(n), HALO, *args], env=ENV,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        if p.poll() is not None or [f for f in os.listdir(folder) if name + ".halo-tmp" in f]:
            break
        time.sleep(0.1)
    time.sleep(1)
    p.send_signal(sig)
    err = p.communicate(timeout=120)[1]
    left = [f for f in os.listdir(folder) if name.split(".")[0] in f]
    return p.returncode, left, [l for l in err.splitlines() if l.startswith("halo")], err[-800:]


# A traced run leaves neither output nor trace parts cut short.
ex[1], ex[3] = src, path("mpi-int.zarr")
ex[ex.index("--iterations") + 1] = "100000"
rc, left, lines, tail = interrupted(2, [*ex, "--trace", path("mpi-int.json")], "mpi-int.zarr",
                                    signal.SIGINT)
check(rc != 0 and lines == ["halo: interrupted; no output was written"] and not left,
      "Ctrl-C on a traced mpirun: one line naming no rank (every rank's); nothing left, no "
      "trace parts", (rc, left, tail))
# In overlap mode the ranks ask each other only every 16 output chunks:
# with long chunks mpirun's SIGKILL came first and the temporary output
# stayed (half the runs, every run on one rank). Under mpirun the
# watchdog removes it after 0.6 s.
dec[3] = path("mpi-int2.zarr")
dec[dec.index("--iterations") + 1] = "100000"
for n in (1, 2):
    rc, left, lines, tail = interrupted(n, dec, "mpi-int2.zarr", signal.SIGTERM)
    check(rc != 0 and lines == ["halo: interrupted; no output was written"] and not left,
          f"SIGTERM to mpirun -np {n} in overlap mode, mid-chunk: one line, nothing left",
          (rc, left, tail))
done()
