"""halo info --json against independent views of the same machine: hwloc's
own command-line tool for the topology, the OS for the PU count, and
StarPU's worker counts against what was asked for."""
import ctypes
import json
import os
import subprocess

halo = os.environ["HALO"]
n = 0
failed = 0


def check(cond, what):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print(f"{'ok' if cond else 'not ok'} {n} - {what}", flush=True)


def info(*args):
    out = subprocess.run([halo, "info", "--json", *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def hwloc_count(kind):
    out = subprocess.run(["hwloc-calc", "--number-of", kind, "all"],
                         check=True, capture_output=True, text=True).stdout
    return int(out.strip())


d = info("--ncuda", "0")
topo = d["topology"]
cores, pus = hwloc_count("core"), hwloc_count("pu")
check(topo["cores"] == cores, f"cores: halo {topo['cores']}, hwloc-calc {cores}")
check(topo["pus"] == pus, f"PUs: halo {topo['pus']}, hwloc-calc {pus}")
check(topo["pus"] == len(os.sched_getaffinity(0)) or topo["pus"] == os.cpu_count(),
      f"PUs: halo {topo['pus']}, os {os.cpu_count()}")
check(topo["packages"] == hwloc_count("package"), "packages match hwloc-calc")
# Memory: the kernel's, and the NUMA nodes' as sysfs gives them (hwloc's
# source, and what StarPU caps main memory at).
ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
numa = 0
for node in os.listdir("/sys/devices/system/node"):
    f = os.path.join("/sys/devices/system/node", node, "meminfo")
    if node.startswith("node") and os.path.exists(f):
        numa += sum(int(line.split()[3]) * 1024 for line in open(f)
                    if line.split()[2:3] == ["MemTotal:"])
check(topo["ram_bytes"] == ram, f"RAM: halo {topo['ram_bytes']}, os {ram}")
check(numa == 0 or topo["numa_bytes"] == numa,
      f"NUMA nodes' memory: halo {topo['numa_bytes']}, sysfs {numa}")
# scripts/setup builds FFTW with AVX2 and AVX-512 (bookworm's stops at
# AVX): the library halo loads is that one, and it says so.
configured = os.path.join(os.path.dirname(os.path.abspath(halo)), ".halo-configured")
prefix = [w.split("=", 1)[1] for w in open(configured).read().split()
          if w.startswith("--with-fftw=")] if os.path.exists(configured) else []
if prefix and os.uname().machine == "x86_64":
    ldd = subprocess.run(["ldd", halo], capture_output=True, text=True).stdout
    loaded = [l.split()[2] for l in ldd.splitlines() if l.split()[:1] == ["libfftw3f.so.3"]]
    fftw = d["libraries"]["fftw"]
    check(loaded and loaded[0].startswith(prefix[0] + "/") and "-avx2" in fftw
          and "-avx512" in fftw, f"FFTW from {loaded}, {fftw}: scripts/setup's, with AVX2 and AVX-512")
# By default halo gives StarPU half the machine's memory, the larger of
# the two figures; STARPU_LIMIT_CPU_MEM (MiB) may ask for anything up to
# the larger, beyond the NUMA nodes' figure (halo's StarPU patch: on some
# VMs the NUMA nodes hold a fraction of the kernel's MemTotal).
main = [w["memory_bytes"] for w in d["workers"]["list"] if w["kind"] == "cpu"]
half = max(ram, topo["numa_bytes"]) // 2 >> 20 << 20
check(main and all(m == half for m in main),
      f"StarPU's main memory {main[:1]}, expected half of max(kernel, NUMA nodes) = {half}")
limit = (topo["numa_bytes"] + ram) // 2 // 2**20
out = subprocess.run([halo, "info", "--json", "--ncuda", "0"], capture_output=True, text=True,
                     env=dict(os.environ, STARPU_LIMIT_CPU_MEM=str(limit)))
main = [w["memory_bytes"] for w in json.loads(out.stdout)["workers"]["list"]
        if w["kind"] == "cpu"] if out.returncode == 0 else []
check(main and main[0] == limit * 2**20,
      f"STARPU_LIMIT_CPU_MEM={limit} (MiB): StarPU's main memory {main[:1]}")
text = subprocess.run([halo, "info", "--ncuda", "0"], capture_output=True, text=True,
                      env=dict(os.environ, STARPU_LIMIT_CPU_MEM="1024")).stdout
check("StarPU's main memory 1.0 GiB" in text, "halo info prints StarPU's main memory")
check(d["starpu"]["version"] == "1.3.10", f"StarPU version {d['starpu']['version']}")
check(d["starpu"]["fxt"] is True, "StarPU has FxT")
check(d["starpu"]["mpi"] is True, "StarPU has MPI")
check(d["starpu"]["scheduler"] == "dmda", "default scheduler is dmda")
# A lone process without GPU workers: one CPU worker per core.
check(d["workers"]["cpu"] == topo["cores"],
      f"a CPU worker per core ({d['workers']['cpu']} on {topo['cores']})")
check(d["workers"]["cuda"] == 0, "--ncuda 0 starts no CUDA worker")
kinds = [w["kind"] for w in d["workers"]["list"]]
check(kinds.count("cpu") == d["workers"]["cpu"], "worker list matches the CPU count")
# What is not known or not there is null, not 0.0 or "" (the text says "none").
try:
    ctypes.CDLL("libcuda.so.1")
    driver_here = True
except OSError:
    driver_here = False
check(all(w["peak_bandwidth_gbs"] is None for w in d["workers"]["list"] if w["kind"] == "cpu")
      and (d["libraries"]["cuda_driver"] if driver_here else d["libraries"]["cuda_driver"] is None),
      f"--json: a CPU worker's peak and an absent CUDA driver are null (driver here: "
      f"{driver_here}, said: {d['libraries']['cuda_driver']})")

d1 = info("--ncpu", "1", "--ncuda", "0", "--sched", "lws")
check(d1["workers"]["cpu"] == 1, f"--ncpu 1 gives {d1['workers']['cpu']} CPU worker")
check(d1["starpu"]["scheduler"] == "lws", "--sched lws is used")

# More CPU workers than cores: StarPU starts them, several to a core,
# and halo says so. CPUID's model name comes without its padding.
more = os.cpu_count() + 1
out = subprocess.run([halo, "info", "--json", "--ncuda", "0", "--ncpu", str(more)],
                     capture_output=True, text=True)
check(out.returncode == 0 and json.loads(out.stdout)["workers"]["cpu"] == more and
      out.stderr == f"halo: warning: --ncpu {more}: this machine has {more - 1} cores; the "
      "workers take turns on them\n", f"--ncpu {more}: a warning ({out.stderr!r})")
check(topo["cpu_model"] == topo["cpu_model"].strip(),
      f"the CPU model has no padding ({topo['cpu_model']!r})")

# Workers StarPU leaves unbound are not said to be bound to PU 0.
env = dict(os.environ, STARPU_WORKERS_NOBIND="1")
r = subprocess.run([halo, "info", "--ncuda", "0"], env=env, capture_output=True, text=True)
dn = json.loads(subprocess.run([halo, "info", "--json", "--ncuda", "0"], env=env,
                               capture_output=True, text=True).stdout)
check("not bound" in r.stdout and "bound to PU" not in r.stdout and
      all(w["bindid"] is None for w in dn["workers"]["list"]),
      "STARPU_WORKERS_NOBIND=1: workers not bound, bindid null")

env = dict(os.environ, STARPU_NCPU="1", STARPU_SCHED="eager")
d2 = json.loads(subprocess.run([halo, "info", "--json", "--ncuda", "0"], env=env,
                               check=True, capture_output=True, text=True).stdout)
check(d2["workers"]["cpu"] == 1, "STARPU_NCPU=1 is honoured without --ncpu")
check(d2["starpu"]["scheduler"] == "eager", "STARPU_SCHED is honoured without --sched")

# halo info VOLUME against python zarr's view of the same array.
import tempfile  # noqa: E402

import numcodecs  # noqa: E402
import numpy as np  # noqa: E402
import zarr  # noqa: E402

with tempfile.TemporaryDirectory(dir=os.environ.get("HALO_TEST_TMP")) as tmp:
    p = os.path.join(tmp, "v.zarr")
    z = zarr.open(p, mode="w", shape=(5, 11, 13), chunks=(2, 4, 13), dtype=">i2", fill_value=-3,
                  compressor=numcodecs.Blosc(cname="zstd", clevel=7, shuffle=2))
    v = json.loads(subprocess.run([halo, "info", p, "--json"], check=True, capture_output=True,
                                  text=True).stdout)
    check(v["format"] == "zarr" and v["shape"] == list(z.shape) and v["chunks"] == list(z.chunks)
          and v["nchunks"] == z.nchunks and v["dtype"] == "int16" and v["byte_order"] == ">"
          and v["compressor"] == {"id": "blosc", "cname": "zstd", "clevel": 7, "shuffle": "bit"}
          and v["fill_value"] == -3 and v["zarr_format"] == 2 and v["ome_version"] is None,
          f"halo info VOLUME --json matches python zarr: {v}")
    # The versions of Zarr and OME-Zarr, as the metadata gives them
    o = os.path.join(tmp, "v.ome.zarr")
    g = zarr.open_group(o, mode="w")
    g.create_dataset("0", shape=(2, 3, 4), dtype="<u2")
    g.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": a, "type": "space"}
                                                          for a in "zyx"],
                               "datasets": [{"path": "0", "coordinateTransformations": [
                                   {"type": "scale", "scale": [1, 1, 1]}]}]}]
    r = subprocess.run([halo, "info", o], capture_output=True, text=True)
    v = json.loads(subprocess.run([halo, "info", o, "--json"], capture_output=True,
                                  text=True).stdout)
    check(r.stdout.startswith(f"{o}: ome-zarr 0.4 (zarr v2), 3D\n") and
          v["ome_version"] == "0.4" and v["zarr_format"] == 2 and
          subprocess.run([halo, "info", p], capture_output=True,
                         text=True).stdout.startswith(f"{p}: zarr v2, 3D\n"),
          f"halo info: Zarr's and OME-Zarr's versions: {r.stdout.splitlines()[:1]}")
    # numcodecs' other compressors as their config (id and level).
    for comp in [numcodecs.Zstd(level=-3), numcodecs.GZip(level=9), numcodecs.Zlib(level=1),
                 numcodecs.LZ4(acceleration=3)]:
        q = os.path.join(tmp, f"{comp.codec_id}.zarr")
        zarr.open(q, mode="w", shape=(2, 3, 4), dtype="<u2", compressor=comp)
        r = subprocess.run([halo, "info", q], capture_output=True, text=True)
        v = json.loads(subprocess.run([halo, "info", q, "--json"], capture_output=True,
                                      text=True).stdout)
        (_, cid), (key, level) = comp.get_config().items()
        check(v["compressor"] == comp.get_config() and
              f"compressor  {cid}, {key} {level}\n" in r.stdout,
              f"halo info: a {comp.codec_id} compressor: {v['compressor']}")
    # A NaN fill, which JSON has no number for (nothing was printed, exit 0).
    q = os.path.join(tmp, "nan.zarr")
    zarr.open(q, mode="w", shape=(2, 3, 4), dtype="<f4", fill_value=np.nan)
    r = subprocess.run([halo, "info", q, "--json"], capture_output=True, text=True)
    v = json.loads(r.stdout) if r.returncode == 0 and r.stdout else {}
    check(v.get("fill_value") == "NaN" and isinstance(json.loads(subprocess.run(
          [halo, "info", p, "--json"], capture_output=True, text=True).stdout)["fill_value"], int),
          "a NaN fill is \"NaN\", as zarr writes it; an integer fill is an integer")
    # Chunks larger than the array are shown as stored (halo reads them
    # cropped).
    q = os.path.join(tmp, "big.zarr")
    zarr.open(q, mode="w", shape=(3, 4, 5), chunks=(10, 10, 10), dtype="<i2")[:] = 1
    r = subprocess.run([halo, "info", q], capture_output=True, text=True)
    v = json.loads(subprocess.run([halo, "info", q, "--json"], capture_output=True,
                                  text=True).stdout)
    check(v["chunks"] == [10, 10, 10] and v["nchunks"] == 1 and
          "chunks      10x10x10 (1 chunk)\n" in r.stdout,
          f"chunks larger than the array shown as stored: {v['chunks']}")
    # A TIFF's compression and byte order, as tifffile wrote them (halo
    # reads the values native).
    import tifffile  # noqa: E402
    q = os.path.join(tmp, "z.tif")
    tifffile.imwrite(q, np.arange(3 * 8 * 8, dtype="u2").reshape(3, 8, 8), compression="zlib",
                     byteorder=">")
    r = subprocess.run([halo, "info", q], capture_output=True, text=True)
    v = json.loads(subprocess.run([halo, "info", q, "--json"], capture_output=True,
                                  text=True).stdout)
    check(v["byte_order"] == ">" and v["compressor"] == {"tiff": "deflate"} and
          "compression deflate" in r.stdout and "compressor" not in r.stdout and
          "uint16 (big-endian)" in r.stdout, f"a TIFF's compression (once) and byte order: {v}")
    tifffile.imwrite(q, np.zeros((2, 8, 8), dtype="f4"))
    v = json.loads(subprocess.run([halo, "info", q, "--json"], capture_output=True,
                                  text=True).stdout)
    check(v["byte_order"] == "<" and v["compressor"] is None and v["zarr_format"] is None,
          f"an uncompressed little-endian TIFF: {v}")
    r = subprocess.run([halo, "info", os.path.join(tmp, "none.zarr")], capture_output=True,
                       text=True)
    check(r.returncode == 1 and r.stderr.startswith("halo: ") and "none.zarr" in r.stderr,
          "halo info of a missing volume: one line, exit 1")

print(f"1..{n}")
raise SystemExit(1 if failed else 0)
