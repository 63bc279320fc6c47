"""halo under mpirun (StarPU-MPI): every rank starts with its rank and the
number of ranks. Skipped, saying so, when this halo was built without
StarPU-MPI or mpirun is missing."""
import json
import os
import shutil
import subprocess
import sys

import zarr

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import HALO, check, done, halo, path, skip  # noqa: E402

# OpenMPI refuses root unless told, and must not look for other hosts.
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_btl="self,vader")


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
check(info["mpi"] == {"rank": 0, "ranks": 1}, "without mpirun: one rank", info["mpi"])
for n in (2, 3):
    outdir = path(f"mpi-info-{n}")
    shutil.rmtree(outdir, ignore_errors=True)
    r = mpirun(n, "info", "--json", "--ncpu", 1, outdir=outdir)
    docs = [json.loads(t) for t in rank_outputs(outdir).values()] if r.returncode == 0 else []
    check(sorted(d["mpi"]["rank"] for d in docs) == list(range(n)) and
          all(d["mpi"]["ranks"] == n for d in docs),
          f"mpirun -np {n}: each rank knows its rank and the number of ranks",
          r.stdout[-2000:] + r.stderr[-2000:])
# Commands that cannot use several ranks yet say so instead of running
# the same work twice.
src = path("mpi-in.zarr")
shutil.rmtree(src, ignore_errors=True)
zarr.open(src, mode="w", shape=(4, 8, 8), chunks=(2, 4, 4), dtype="u2")[:] = 7
r = mpirun(2, "convert", src, path("mpi-out.zarr"), "--overwrite")
lines = [l for l in r.stderr.splitlines() if l.startswith("halo: ")]
check(r.returncode != 0 and len(lines) == 2 and
      all("does not run on 2 ranks yet" in l for l in lines) and
      not os.path.exists(path("mpi-out.zarr")),
      "a command without MPI support refuses several ranks with one line", r.stderr[-1500:])
done()
