"""--trace and halo trace: a traced pipeline has every task exactly once
with consistent times (submit <= ready <= start <= end, a consumer starts
after its producers end), labelled with its step and chunk; the file parses
with python's json; summary, critical-path and compare equal what this test
recomputes from the JSON itself; bad input gets one line and exit 1."""
import json
import re
import stat
import os
import shutil
import subprocess
import signal
import sys
import time

import numpy as np
import tifffile
from PIL import Image
import zarr

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import HALO, check, done, halo, path  # noqa: E402

rng = np.random.default_rng(5)
src = path("tr-in.zarr")
shutil.rmtree(src, ignore_errors=True)
z = zarr.open(src, mode="w", shape=(20, 30, 40), chunks=(7, 16, 16), dtype="u2")
z[...] = rng.integers(0, 1000, z.shape, dtype=np.uint16)
steps = [
    {"name": "raw", "op": "from_zarr", "path": src},
    {"name": "re", "op": "rechunk", "input": "raw", "chunks": [10, 15, 20]},
    {"name": "f", "op": "astype", "input": "re", "dtype": "float32"},
    {"name": "s", "op": "map_blocks", "kernel": "scale", "input": "f", "scale": 0.5},
    {"name": "u", "op": "map_overlap", "kernel": "uniform", "input": "s", "depth": 1},
    {"name": "mip", "op": "max", "input": "u", "axis": 0},
    {"name": "total", "op": "sum", "input": "u"},
    {"name": "out", "op": "to_zarr", "input": "u", "path": path("tr-out.zarr"), "overwrite": True},
    {"name": "outmip", "op": "to_zarr", "input": "mip", "path": path("tr-mip.zarr"),
     "overwrite": True}]
pipe = path("tr.json")
with open(pipe, "w") as f:
    json.dump({"steps": steps}, f)


def traced(name, *opts):
    t = path(name)
    r = halo("run", pipe, "--json", "--trace", t, *opts, check_rc=0)
    ok = r.returncode == 0 and os.path.exists(t)
    return (json.loads(r.stdout) if ok else {}), (json.load(open(t)) if ok else {"traceEvents": []})


res, tr = traced("a.trace.json", "--sched", "dmda")
check(res.get("tasks", -1) > 0, "traced run", res)
ev = tr["traceEvents"]
tasks = [e for e in ev if e.get("ph") == "X"]
ids = [t["args"]["id"] for t in tasks]
check(len(tasks) == res.get("tasks") and sorted(ids) == list(range(1, len(ids) + 1)),
      f"every task exactly once ({len(tasks)} of {res.get('tasks')})")
by = {t["args"]["id"]: t for t in tasks}
eps = 0.01
bad = [t for t in tasks if not (0 <= t["args"]["submit"] <= t["args"]["ready"] + eps
                                and t["args"]["ready"] <= t["ts"] + eps and t["dur"] >= 0)]
check(not bad, "submit <= ready <= start <= end for every task", bad[:3])
late = [(t["args"]["id"], d) for t in tasks for d in t["args"]["deps"]
        if t["ts"] + eps < by[d]["ts"] + by[d]["dur"]]
check(not late, "every consumer starts after its producers end", late[:5])
check(sum(len(t["args"]["deps"]) for t in tasks) > len(tasks),
      "dependencies recorded (gathers read several chunks)")
names = {s["name"] for s in steps}
check(all(t["args"]["step"] in names for t in tasks) and all("chunk" in t["args"] for t in tasks),
      "each task is labelled with its step and chunk",
      {t["args"]["step"] for t in tasks} - names)
kinds = {t["name"] for t in tasks}
check({"read", "gather", "elementwise", "uniform", "reduce", "reduce_axis", "write"} <= kinds,
      "the codelets of the plan appear", kinds)
flows = [e for e in ev if e.get("ph") in "sf"]
check(len(flows) == 2 * sum(len(t["args"]["deps"]) for t in tasks),
      "a flow arrow (start and finish) per dependency")
meta = [e for e in ev if e.get("ph") == "M" and e["name"] == "thread_name"]
check(len(meta) == 2 and all("PU" in m["args"]["name"] for m in meta),
      "one track per worker, named with its PU", meta)
check(any(e.get("ph") == "C" and e["name"] == "tasks ready" for e in ev),
      "a tasks-ready counter")

# summary equals sums recomputed here.
r = halo("trace", "summary", path("a.trace.json"), "--json", check_rc=0)
s = json.loads(r.stdout or "{}")
ok = True
for g in s.get("codelets", []):
    mine = [t["dur"] for t in tasks if t["name"] == g["codelet"]]
    ok &= g["count"] == len(mine) and abs(g["total_us"] - sum(mine)) < 1e-3 * max(1, len(mine))
    ok &= abs(g["p50_us"] - float(np.percentile(mine, 50))) < 1e-3
    ok &= abs(g["p95_us"] - float(np.percentile(mine, 95))) < 1e-3
check(ok and sum(g["count"] for g in s.get("codelets", [])) == len(tasks),
      "summary: count, total, p50 and p95 per codelet equal the recomputed ones", s.get("codelets"))
makespan = max(t["ts"] + t["dur"] for t in tasks)
check(abs(s.get("makespan_us", -1) - makespan) < 1e-2, "summary: makespan",
      (s.get("makespan_us"), makespan))
busy = {}
for t in tasks:
    busy[t["tid"]] = busy.get(t["tid"], 0) + t["dur"]
check(s.get("workers") and set(busy) <= {w["worker"] for w in s["workers"]} and
      all(abs(w["busy_us"] - busy.get(w["worker"], 0)) < 1e-2 for w in s.get("workers", []))
      and all(abs(w["utilisation"] + w["idle_share"] - 1) < 1e-9 for w in s.get("workers", [])),
      "summary: busy time and utilisation per worker", s.get("workers"))
r = halo("trace", "summary", path("a.trace.json"), check_rc=0)
check("codelet" in r.stdout and "utilisation" in r.stdout, "summary as a table")

# critical path: this test's own longest chain.
cp = {}
for i in sorted(by):
    t = by[i]
    cp[i] = t["dur"] + max([cp[d] for d in t["args"]["deps"]], default=0)
r = halo("trace", "critical-path", path("a.trace.json"), "--json", check_rc=0)
c = json.loads(r.stdout or "{}")
check(abs(c.get("critical_path_us", -1) - max(cp.values())) < 1e-2,
      "critical path length equals the recomputed longest chain",
      (c.get("critical_path_us"), max(cp.values())))
chain = c.get("tasks", [])
check(len(chain) > 1 and
      all(chain[k]["id"] in by[chain[k + 1]["id"]]["args"]["deps"] for k in range(len(chain) - 1)),
      "the tasks on the path each depend on the one before")
check(c.get("makespan_us", 0) >= c.get("critical_path_us", 1) - 1e-6 and
      abs(c.get("work_bound_us", -1) - sum(t["dur"] for t in tasks) / 2) < 1e-2,
      "makespan above the path; work/workers bound recomputed")

# compare: two schedulers side by side.
res_b, tr_b = traced("b.trace.json", "--sched", "eager")
r = halo("trace", "compare", path("a.trace.json"), path("b.trace.json"), "--json", check_rc=0)
cmp = json.loads(r.stdout or "{}")
rows = {x["figure"]: x for x in cmp.get("figures", [])}
mb = max(t["ts"] + t["dur"] for t in tr_b["traceEvents"] if t.get("ph") == "X") if res_b else 0
check(cmp.get("scheduler_a") == "dmda" and cmp.get("scheduler_b") == "eager" and
      abs(rows.get("makespan_us", {}).get("b_over_a", -1) - mb / makespan) < 1e-3,
      "compare: dmda against eager, makespan ratio", rows.get("makespan_us"))
r = halo("trace", "compare", path("a.trace.json"), path("b.trace.json"), check_rc=0)
check("B/A" in r.stdout, "compare as a table")

# The HTML report, drawn by a real browser. "-o -" writes it to standard
# output, as graph dot's does, and "-o=FILE" is FILE.
r = halo("trace", "html", path("a.trace.json"), "-o", "-", check_rc=0)
check(r.stdout.startswith("<!DOCTYPE html>") and r.stdout.rstrip().endswith("</html>") and
      not os.path.exists("-"), "html -o -: the report on standard output", r.stdout[:80])
report = path("report.html")
if os.path.exists(report):
    os.remove(report)
r = halo("trace", "html", path("a.trace.json"), "-o=" + report, check_rc=0)
check(os.path.exists(report) and not os.path.exists(path("=report.html")) and
      not os.path.exists("=" + report), "html -o=FILE writes FILE", r.stderr)
r = halo("trace", "html", path("a.trace.json"), "-o", report, check_rc=0)
html = open(report).read() if r.returncode == 0 else ""
# -o replaces a report of halo's, never a user's other file (it did, silently).
r2 = halo("trace", "html", path("a.trace.json"), "-o", report, check_rc=0)
mine = path("mine.html")
open(mine, "w").write("<p>my page\n")
r3 = halo("trace", "html", path("a.trace.json"), "-o", mine, check_rc=0)
check(r2.returncode == 0 and r3.returncode == 1 and "is not a halo report" in r3.stderr and
      open(mine).read() == "<p>my page\n",
      "html -o replaces its own report, not a user's page", (r2.stderr, r3.stderr))
# An HTML5 page begins as halo's report does: halo's title marks its own.
page5 = "<!DOCTYPE html>\n<html><head><title>My notes</title></head><body>x</body></html>\n"
open(mine, "w").write(page5)
r3 = halo("trace", "html", path("a.trace.json"), "-o", mine)
check(r3.returncode == 1 and "is not a halo report" in r3.stderr and open(mine).read() == page5,
      "html -o: a user's HTML5 page is not replaced", r3.stderr)
check("innerHTML" not in html, "html: names from the trace are set as text, never parsed as markup")
check("<script>" in html and "http" not in html.split("<script>")[1],
      "html: one file, nothing fetched from the network")
chromium = shutil.which("chromium")
if chromium:
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--enable-logging=stderr", "--window-size=1280,900"]
    d = subprocess.run(base + ["--dump-dom", "file://" + report], capture_output=True, text=True,
                       timeout=120)
    check(f'data-drawn="{len(tasks)}"' in d.stdout,
          "html: the script ran to the end in Chromium (every task drawn)", d.stderr[-500:])
    check("Uncaught" not in d.stderr and "CONSOLE" not in d.stderr, "html: no console errors",
          d.stderr[-500:])
    shot = path("report.png")
    subprocess.run(base + ["--screenshot=" + shot, "file://" + report], capture_output=True,
                   timeout=120)
    img = np.asarray(Image.open(shot).convert("RGB")) if os.path.exists(shot) else np.zeros((1, 1, 3))
    # Task bars are filled with the report's palette (legend squares are
    # 100 px). Two colours, not more: on a loaded machine one slow write
    # can take most of the makespan and leave the other bars a pixel wide.
    palette = ["4e79a7", "f28e2b", "e15759", "76b7b2", "59a14f", "edc948", "b07aa1", "ff9da7"]
    px = img.reshape(-1, 3)
    seen = sum(int(np.count_nonzero(np.all(px == [int(c[i:i + 2], 16) for i in (0, 2, 4)],
                                            axis=1)) >= 300) for c in palette)
    check(seen >= 2, f"html: the Gantt is drawn ({seen} codelet colours in the screenshot)")
else:
    check(False, "html: chromium is installed (scripts/setup installs it)")

# Other commands trace too.
img = path("tr-img.zarr")
shutil.rmtree(img, ignore_errors=True)
zi = zarr.open(img, mode="w", shape=(16, 24, 24), chunks=(8, 12, 12), dtype="u2")
zi[...] = rng.integers(100, 200, zi.shape, dtype=np.uint16)
tifffile.imwrite(path("tr-psf.tif"), np.ones((3, 3, 3), np.float32), photometric="minisblack")
r = halo("deconvolve", img, path("tr-psf.tif"), path("tr-dec.zarr"), "--mode", "exact",
         "--iterations", "2", "--overwrite", "--quiet", "--trace", path("dec.trace.json"),
         check_rc=0)
steps_dec = {e["args"]["step"] for e in json.load(open(path("dec.trace.json")))["traceEvents"]
             if e.get("ph") == "X"} if r.returncode == 0 else set()
check({"exact forward", "exact backward"} <= steps_dec, "deconvolve --mode exact --trace", steps_dec)
r = halo("convert", img, path("tr-conv.zarr"), "--chunks", "4,24,24", "--overwrite", "--quiet",
         "--trace", path("conv.trace.json"), check_rc=0)
check(r.returncode == 0 and halo("trace", "summary", path("conv.trace.json")).returncode == 0,
      "convert --trace, then summary")


def kinds_of(trace):
    return {e["name"] for e in json.load(open(trace))["traceEvents"]
            if e.get("ph") == "X" and e.get("cat") != "transfer"}


# A rechunk that only a Zarr store reads is gathered by the write tasks, up
# to 16 MiB chunks; larger ones keep their gather tasks, as TIFF's do
# (written in order, one at a time). All give the input.
check(r.returncode == 0 and kinds_of(path("conv.trace.json")) == {"read", "write"},
      "convert: the write tasks gather their chunks", kinds_of(path("conv.trace.json")))
wide = path("tr-wide.zarr")
wide_data = rng.integers(0, 60000, (3, 1500, 1500), dtype=np.uint16)
zarr.open(wide, mode="w", shape=wide_data.shape, chunks=(1, 700, 1500), dtype="u2")[...] = wide_data
for chunks, dtype, want in [("2,1500,1500", "float32", {"read", "gather", "write"}),
                            ("2,1500,1300", "float32", {"read", "write"}),
                            ("3,1500,1500", "uint16", {"read", "write"})]:
    out = path("tr-wide-out.zarr")
    r = halo("convert", wide, out, "--chunks", chunks, "--dtype", dtype, "--overwrite", "--quiet",
             "--trace", path("wide.trace.json"), check_rc=0)
    got = kinds_of(path("wide.trace.json")) if r.returncode == 0 else set()
    same = r.returncode == 0 and np.array_equal(zarr.open(out, mode="r")[...],
                                                wide_data.astype(dtype))
    check(got == want and same, f"convert --chunks {chunks} --dtype {dtype}: tasks {sorted(want)}, "
          "output equals the input", (got, r.stderr))
r = halo("convert", wide, path("tr-wide.tif"), "--overwrite", "--quiet",
         "--trace", path("wide.trace.json"), check_rc=0)
got = kinds_of(path("wide.trace.json")) if r.returncode == 0 else set()
check(got == {"read", "gather", "write"} and r.returncode == 0 and
      np.array_equal(tifffile.imread(path("tr-wide.tif")), wide_data),
      "convert to TIFF: gather tasks apart, output equals the input", (got, r.stderr))

# Data transfers, one event each. StarPU's out-of-core swap is a second
# memory node on any machine: with a 2 MiB limit on RAM, chunks move to
# disk and back; the trace must hold exactly the transfers StarPU counted.
# One worker: StarPU 1.3 adds to its per-link counters without a lock
# (_starpu_bus_update_profiling_info), so two workers fetching at once can
# lose a count (CI saw it once); one thread makes them an exact oracle.
swimg = path("sw-img.zarr")
shutil.rmtree(swimg, ignore_errors=True)
zs = zarr.open(swimg, mode="w", shape=(32, 96, 96), chunks=(16, 48, 48), dtype="u2")
zs[...] = rng.integers(100, 200, zs.shape, dtype=np.uint16)
swtmp, swap = path("sw-tmp"), path("sw-swap")
for d in (swtmp, swap):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
env = dict(os.environ, TMPDIR=swtmp, STARPU_LIMIT_CPU_MEM="2", STARPU_DISK_SWAP=swap,
           STARPU_DISK_SWAP_BACKEND="unistd", STARPU_DISK_SWAP_SIZE="200")
args = ["deconvolve", swimg, path("tr-psf.tif"), None, "--mode", "exact", "--iterations", "2",
        "--ncpu", "1", "--overwrite", "--quiet"]
args[3] = path("sw-out.zarr")
p = subprocess.run([HALO, *args, "--trace", path("sw.trace.json")], env=env,
                   capture_output=True, text=True)
args[3] = path("sw-ref.zarr")
q = subprocess.run([HALO, *args], capture_output=True, text=True)
check(p.returncode == 0 and q.returncode == 0, "deconvolve with StarPU's disk swap, traced",
      p.stderr + q.stderr)
check(np.array_equal(zarr.open(path("sw-out.zarr"))[:], zarr.open(path("sw-ref.zarr"))[:]),
      "swapping to disk and back changes no voxel")
tr = json.load(open(path("sw.trace.json"))) if p.returncode == 0 else {"traceEvents": [],
                                                                        "otherData": {}}
ev = tr["traceEvents"]
xfer = [e for e in ev if e.get("cat") == "transfer"]
tasks_sw = {e["args"]["id"]: e for e in ev if e.get("ph") == "X" and e.get("cat") != "transfer"}
links = tr["otherData"].get("links", [])
per_link = {}
for e in xfer:
    k = (e["args"]["src"], e["args"]["dst"])
    n, b = per_link.get(k, (0, 0))
    per_link[k] = (n + 1, b + e["args"]["bytes"])
check(xfer and {(l["src"], l["dst"]): (l["transfers"], l["bytes"]) for l in links} == per_link,
      "one event per transfer: counts and bytes per link equal StarPU's totals",
      (per_link, links))
span = tr["otherData"].get("makespan_us", 0)
check(xfer and all(e["dur"] >= 0 and -1 <= e["ts"] and e["ts"] + e["dur"] <= span + 1000
                  for e in xfer),
      "transfers have consistent times inside the run")
tracks = {e["tid"]: e["args"]["name"] for e in ev
          if e.get("ph") == "M" and e.get("pid") == 1000 and e.get("name") == "thread_name"}
check(all(e["pid"] == 1000 and tracks.get(e["tid"], "").startswith(
    f"node {e['args']['src']}, ") and f"-> node {e['args']['dst']}, " in tracks[e["tid"]]
    for e in xfer) and any("disk" in n for n in tracks.values()),
    "transfers sit on one track per link, named after its memory nodes", tracks)

# Transfers on one link overlap (several requests at once, from two
# workers): each track's events must still nest, so the overlapping ones
# go to further tracks of the link (tid + 4096 each). Before, 4 runs in 5
# put partly overlapping events on one track.
env2 = dict(env, STARPU_LIMIT_CPU_MEM="4")
args2 = [a for a in args if a not in ("--ncpu", "1")]
args2[3] = path("sw-out2.zarr")
p2 = subprocess.run([HALO, *args2, "--trace", path("sw2.trace.json")], env=env2,
                    capture_output=True, text=True)
ev2 = json.load(open(path("sw2.trace.json")))["traceEvents"] if p2.returncode == 0 else []
by_track, bad = {}, []
for e in ev2:
    if e.get("cat") == "transfer":
        by_track.setdefault(e["tid"], []).append(e)
        if e["tid"] % 4096 != 64 * e["args"]["src"] + e["args"]["dst"]:
            bad.append(e)
for evs in by_track.values():
    evs.sort(key=lambda e: e["ts"])
    bad += [b for a, b in zip(evs, evs[1:]) if b["ts"] < a["ts"] + a["dur"] - 1e-3]
r2 = halo("trace", "summary", path("sw2.trace.json"), "--json", check_rc=0)
nlinks = len(json.loads(r2.stdout)["links"]) if r2.returncode == 0 else -1
check(p2.returncode == 0 and by_track and not bad and
      nlinks == len({t % 4096 for t in by_track}),
      f"two workers swapping: no two transfers overlap on a track ({len(by_track)} tracks); "
      f"the summary counts links, not tracks", (p2.stderr[-500:], bad[:2], nlinks))
named = [e for e in xfer if "producer" in e["args"]]
ok = all(e["args"]["producer"] in tasks_sw and
         tasks_sw[e["args"]["producer"]]["ts"] + tasks_sw[e["args"]["producer"]]["dur"]
         <= e["ts"] + 2 and e["name"] == tasks_sw[e["args"]["producer"]]["args"]["step"] and
         e["args"].get("chunk") == tasks_sw[e["args"]["producer"]]["args"].get("chunk")
         for e in named)
check(named and len(named) >= len(xfer) // 2 and ok,
      "transfers name the task whose data they carry, which ended before they began",
      (len(named), len(xfer)))
check(os.listdir(swtmp) == [], "the FxT trace halo recorded for the transfers is removed",
      os.listdir(swtmp))
r = halo("trace", "summary", path("sw.trace.json"), "--json", check_rc=0)
check(r.returncode == 0 and sum(c["count"] for c in json.loads(r.stdout)["codelets"])
      == len(tasks_sw), "summary counts tasks, not transfers")
r = halo("trace", "html", path("sw.trace.json"), "-o", path("sw.html"), check_rc=0)
check(r.returncode == 0 and f'"transfers":[[' in open(path("sw.html")).read(),
      "the HTML report carries the transfers for its link rows")
# A run stopped by the watchdog (Ctrl-C, and no wind-down within
# HALO_INTERRUPT_GRACE) left halo's FxT folder, which grew by gigabytes
# while a stuck StarPU flushed into it. Signalled once the folder is there.
p = subprocess.Popen([HALO, *args, "--trace", path("stuck.trace.json")],
                     env=dict(env, HALO_INTERRUPT_GRACE="0"), stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
t0 = time.time()
while p.poll() is None and not os.listdir(swtmp) and time.time() - t0 < 60:
    time.sleep(0.005)
seen = os.listdir(swtmp)
p.send_signal(signal.SIGINT)
_, err = p.communicate(timeout=120)
check(seen and p.returncode == 1 and "did not wind down in time" in err and
      os.listdir(swtmp) == [], "a run stopped by the watchdog leaves no FxT folder",
      (seen, p.returncode, err, os.listdir(swtmp)))

# A failed run's trace says so, and marks the tasks that did no work once
# the run had failed (they passed for ordinary 1 us writes).
badin = path("bad-in.zarr")
shutil.rmtree(badin, ignore_errors=True)
zb = zarr.open(badin, mode="w", shape=(16, 24, 24), chunks=(4, 12, 12), dtype="u2")
zb[...] = rng.integers(100, 200, zb.shape, dtype=np.uint16)
with open(os.path.join(badin, "1.1.1"), "w") as f:
    f.write("garbage")
r = halo("convert", badin, path("bad-out.zarr"), "--chunks", "2,6,6", "--overwrite", "--quiet",
         "--trace", path("failed.trace.json"), "--ncpu", "1")
ft = json.load(open(path("failed.trace.json"))) if os.path.exists(path("failed.trace.json")) \
    else {"traceEvents": [], "otherData": {}}
ftasks = [e for e in ft["traceEvents"] if e.get("ph") == "X"]
skipped = [e for e in ftasks if e["args"].get("skipped")]
failing = [e for e in ftasks if e["name"] == "read" and e["args"].get("chunk") == [1, 1, 1]]
check(r.returncode == 1 and ft["otherData"].get("outcome") == "failed" and
      "1.1.1" in ft["otherData"].get("error", "") and failing and skipped and
      all(e["ts"] >= failing[0]["ts"] for e in skipped),
      "a failed run's trace: outcome, error, and the skipped tasks, all after the failing one",
      (r.returncode, ft["otherData"], len(skipped)))
r = halo("trace", "summary", path("failed.trace.json"), "--json", check_rc=0)
got = json.loads(r.stdout) if r.returncode == 0 else {}
check(got.get("outcome") == "failed" and got.get("skipped_tasks") == len(skipped) and
      sum(c["count"] for c in got.get("codelets", [])) == len(ftasks) - len(skipped),
      "summary: the outcome, and the skipped tasks left out of the codelet figures", got)
r = halo("trace", "summary", path("failed.trace.json"), check_rc=0)
check(r.returncode == 0 and f"the run failed: {badin}/1.1.1: " in r.stdout and
      f"; {len(skipped)} tasks did no work after that" in r.stdout,
      "summary's text says the run failed, and why", r.stdout)
check(json.load(open(path("conv.trace.json")))["otherData"].get("outcome") == "ok",
      "a successful run's trace says ok")
# A run refused before it starts (an output that exists) leaves no trace,
# in run as in convert and deconvolve: run wrote a "failed" one of 0 tasks.
early = path("early.json")
json.dump({"steps": [{"name": "a", "op": "from_zarr", "path": badin},
                     {"name": "o", "op": "to_zarr", "input": "a", "path": badin + "-copy"}]},
          open(path("early-pipe.json"), "w"))
os.makedirs(badin + "-copy", exist_ok=True)
r = halo("run", path("early-pipe.json"), "--trace", early, check_rc=1)
check(r.returncode == 1 and "already exists" in r.stderr and not os.path.exists(early),
      "run refused before it starts: no trace", (r.stderr, os.path.exists(early)))
# compare says so too (its ratios read as if B were faster), and that the
# two traces ran different graphs.
r = halo("trace", "compare", path("a.trace.json"), path("failed.trace.json"), "--json",
         check_rc=0)
got = json.loads(r.stdout) if r.returncode == 0 else {}
check(got.get("outcome_a") == "ok" and got.get("outcome_b") == "failed" and
      got.get("skipped_tasks_b") == len(skipped) and "1.1.1" in (got.get("error_b") or "") and
      got.get("same_graph") is False and got.get("error_a", 0) is None,
      "compare --json: each run's outcome, and whether they ran one graph", got)
r = halo("trace", "compare", path("a.trace.json"), path("failed.trace.json"), check_rc=0)
check(f"B: the run failed: {badin}/1.1.1: " in r.stdout and "ran different task graphs" in
      r.stdout, "compare's text: B failed, and the graphs differ", r.stdout)
r = halo("trace", "compare", path("a.trace.json"), path("b.trace.json"), "--json", check_rc=0)
got = json.loads(r.stdout) if r.returncode == 0 else {}
check(got.get("same_graph") is True and {x["figure"]: x["a"] for x in got["figures"]}["tasks"]
      == len(tasks), "compare: one pipeline under two schedulers is one graph; tasks counted "
      "as an integer", got.get("same_graph"))

# A killed run's temporary trace (".NAME.halo-tmp-PID") is removed by the
# next run to write FILE; a live writer's stays.
gone = subprocess.Popen(["true"])
gone.wait()
dead = path(f".c2.trace.json.halo-tmp-{gone.pid}")
live = path(f".c2.trace.json.halo-tmp-{os.getpid()}")
for name in (dead, live):
    open(name, "w").write("{half")
r = halo("convert", img, path("tr-conv.zarr"), "--chunks", "4,24,24", "--overwrite", "--quiet",
         "--trace", path("c2.trace.json"))
check(r.returncode == 0 and not os.path.exists(dead) and os.path.exists(live),
      "a killed run's temporary trace is removed, a live one's kept", r.stderr)
os.remove(live)

# --trace in --trace-fxt's folder: refused before the run (it computed,
# then failed writing the trace over StarPU's folder).
for t in (path("fx-both"), path("fx-both/t.json")):
    shutil.rmtree(path("fx-both"), ignore_errors=True)
    r = halo("convert", img, path("fx-out.zarr"), "--trace", t, "--trace-fxt", path("fx-both"))
    check(r.returncode == 1 and "give them separate places" in r.stderr and
          r.stderr.count("\n") == 1 and not os.path.exists(path("fx-out.zarr")),
          f"--trace {os.path.basename(t)} with --trace-fxt fx-both: refused first", r.stderr)

# StarPU's own FxT trace, kept and converted to Paje for ViTE.
fxt = path("fxt")
shutil.rmtree(fxt, ignore_errors=True)
# A dry run records nothing: --trace with it is a usage error, not ignored.
for opt in ("--trace", "--trace-fxt"):
    r = halo("run", pipe, "--dry-run", opt, path("dry.trace"))
    check(r.returncode == 2 and f"--{opt[2:]} records a run and --dry-run runs nothing" in
          r.stderr and not os.path.exists(path("dry.trace")), f"run --dry-run {opt}: refused",
          r.stderr)
r = halo("run", pipe, "--quiet", "--trace-fxt", fxt, check_rc=0)
paje = open(os.path.join(fxt, "paje.trace"), errors="replace").read() \
    if os.path.exists(os.path.join(fxt, "paje.trace")) else ""
check(r.returncode == 0 and r.stdout.count("total:") == 1 and "PajeDefineContainerType" in paje
      and "uniform" in paje and any(n.startswith("prof_file_") for n in os.listdir(fxt)),
      "--trace-fxt keeps the FxT trace and its Paje conversion", r.stdout)
r = halo("run", pipe, "--quiet", "--trace-fxt", fxt)
check(r.returncode == 0, "--trace-fxt into its own folder again", r.stderr)
# A folder of the user's: StarPU's trace.html, dag.dot, ... replaced theirs.
mine = path("fxt-mine")
shutil.rmtree(mine, ignore_errors=True)
os.makedirs(mine)
open(os.path.join(mine, "dag.dot"), "w").write("digraph mine {}\n")
r = halo("run", pipe, "--quiet", "--trace-fxt", mine)
check(r.returncode == 1 and r.stderr.strip() == f"halo: --trace-fxt: '{mine}' holds files halo "
      "did not write; give a new or empty folder" and os.listdir(mine) == ["dag.dot"] and
      open(os.path.join(mine, "dag.dot")).read() == "digraph mine {}\n",
      "--trace-fxt into a user's folder: refused, their files kept", r.stderr)

# Bad input: one line, exit 1.
with open(path("a.trace.json")) as f:
    text = f.read()
with open(path("trunc.json"), "w") as f:
    f.write(text[: len(text) // 2])
with open(path("foreign.json"), "w") as f:
    json.dump({"traceEvents": [], "otherData": {"producer": "something else"}}, f)
# Hand-edited traces: a negative duration, and two tasks with one id.
doc = json.loads(text)
tasks = [e for e in doc["traceEvents"] if e.get("ph") == "X" and "deps" in e.get("args", {})]
tasks[0]["dur"] = -5
with open(path("negdur.json"), "w") as f:
    json.dump(doc, f)
tasks[0]["dur"] = 5
tasks[1]["args"]["id"] = tasks[0]["args"]["id"]
with open(path("dupid.json"), "w") as f:
    json.dump(doc, f)
tasks = [e for e in json.loads(text)["traceEvents"]
         if e.get("ph") == "X" and "deps" in e.get("args", {})]


def edited(name, edit):
    d = json.loads(text)
    edit(d, [e for e in d["traceEvents"] if e.get("ph") == "X" and "deps" in e.get("args", {})])
    with open(path(name), "w") as f:
        json.dump(d, f)


edited("huge.json", lambda d, t: t[0].update(ts=1e308, dur=1e308))
edited("nomakespan.json", lambda d, t: d["otherData"].pop("makespan_us"))
edited("baddeps.json", lambda d, t: t[-1]["args"].update(deps=[1, "x"]))
edited("badworker.json", lambda d, t: t[0]["args"].update(worker=1e30))
edited("badchunk.json", lambda d, t: t[0]["args"].update(chunk=[0, 1]))
# Finite but absurd: sums reached inf, which --json dropped without a word.
edited("hugedur.json", lambda d, t: t[0].update(dur=1.7e308))
edited("zeromakespan.json", lambda d, t: d["otherData"].update(makespan_us=0))
edited("negworker.json", lambda d, t: t[0]["args"].update(worker=-1))
# Times count from the first submission: none is negative.
edited("negts.json", lambda d, t: t[0].update(ts=-5000.0))
edited("negsubmit.json", lambda d, t: t[0]["args"].update(submit=-1.0))
# A task depends only on tasks submitted before it (smaller ids).
edited("selfdep.json", lambda d, t: t[-1]["args"].update(deps=[t[-1]["args"]["id"]]))
edited("cycle.json", lambda d, t: t[0]["args"].update(deps=[t[-1]["args"]["id"]]))
edited("strid.json", lambda d, t: t[0]["args"].update(id="1"))
for name, want in [("trunc.json", "not a trace"), ("foreign.json", "not a halo trace"),
                   ("missing.json", "No such file"), ("negdur.json", "negative duration"),
                   ("dupid.json", "two tasks have id"), ("huge.json", "lacks id, ts, dur"),
                   ("nomakespan.json", "no valid makespan_us"),
                   ("baddeps.json", "not a valid index"), ("badworker.json", "not a valid index"),
                   ("badchunk.json", "not a valid index"), ("hugedur.json", "beyond 31 years"),
                   ("zeromakespan.json", "ends before the last task"),
                   ("negworker.json", "not a valid index"),
                   ("negts.json", "negative time"), ("negsubmit.json", "negative time"),
                   ("selfdep.json", "not an earlier task"),
                   ("cycle.json", "not an earlier task"),
                   ("strid.json", "an id that is not an integer")]:
    r = halo("trace", "summary", path(name))
    line = r.stderr.strip()
    check(r.returncode == 1 and want in line and "\n" not in line and path(name) in line,
          f"trace summary of {name}: one line, exit 1", line)
# A task on a worker the trace names no thread for: its own row, and the
# critical path's work/workers bound counts it.
def stray(d, t):
    d["traceEvents"] = [e for e in d["traceEvents"] if e.get("ph") != "M"]
    t[0]["args"]["worker"] = 99


edited("stray.json", stray)
r = halo("trace", "summary", path("stray.json"))
check(r.returncode == 0 and "worker 99" in r.stdout, "trace summary: an unnamed worker's row",
      r.stdout[-600:])
r = halo("trace", "critical-path", path("stray.json"), "--json")
cj = json.loads(r.stdout) if r.returncode == 0 else {}
r = halo("trace", "critical-path", path("stray.json"))
work = re.search(r"\(([0-9.]+) ms of work on ([0-9]+) workers\)", r.stdout)
check(cj and work and cj["workers"] >= 2 and int(work.group(2)) == cj["workers"] and
      abs(float(work.group(1)) - cj["work_us"] / 1e3) < 2e-3,
      "trace critical-path without thread names: text and --json agree on work and workers",
      r.stdout[:300])
r = halo("trace", "summary", path("."))
check(r.returncode == 1 and "a folder, not a trace" in r.stderr, "trace summary of a folder",
      r.stderr)
# No tasks: no ratio (they read 0.0, as if the run had been instant).
edited("notasks.json", lambda d, t: d.update(
    traceEvents=[e for e in d["traceEvents"] if e.get("ph") != "X"]))
r = halo("trace", "critical-path", path("notasks.json"), "--json")
cj = json.loads(r.stdout) if r.returncode == 0 else {}
check(r.returncode == 0 and "makespan_over_path" in cj and cj["makespan_over_path"] is None and
      cj["makespan_over_bound"] is None, "critical-path of no tasks: ratios null", r.stdout)
r = halo("trace", "html", path("notasks.json"), "-o", path("notasks.html"))
check(r.returncode == 0, "html of no tasks", r.stderr)
# A missing or misplaced -o is named, not answered with the whole usage.
for args, want in [(["html", path("a.trace.json")], "html needs -o REPORT.html"),
                   (["summary", path("a.trace.json"), "-o", path("x.html")],
                    "-o applies to html only"),
                   (["summary"], "summary takes 1 trace, got 0")]:
    r = halo("trace", *args)
    check(r.returncode == 2 and want in r.stderr and len(r.stderr.strip().splitlines()) == 1,
          f"trace {' '.join(args[:1])}: usage error names the problem ({want})", r.stderr)
# Found by fuzzing: a thread id past int's range (an undefined cast, which
# the sanitizer build stops on), and a parser message quoting a control
# character (two lines on stderr).
edited("bigtid.json", lambda d, t: [e.update(tid=9.0072e15) for e in d["traceEvents"]
                                    if e.get("name") == "thread_name"])
for cmd in ("summary", "critical-path"):
    r = halo("trace", cmd, path("bigtid.json"))
    check(r.returncode in (0, 1) and r.stderr.count("\n") <= 1,
          f"trace {cmd} with a thread id past int's range", r.stderr)
# A worker name cut inside a UTF-8 character vanished from the JSON.
edited("utf8.json", lambda d, t: [e["args"].update(name="a" * 126 + "\u00e9") for e in
                                  d["traceEvents"] if e.get("name") == "thread_name"])
r = halo("trace", "summary", path("utf8.json"), "--json", check_rc=0)
ws = json.loads(r.stdout).get("workers", []) if r.returncode == 0 else []
check(ws and all(w.get("name", "").startswith("a" * 100) for w in ws),
      "a long worker name is cut at a character and kept", r.stdout[-300:] + r.stderr)
with open(path("ctrl.json"), "w") as f:
    f.write('{"displayTimeUnit": "ms", \x1e}')
r = halo("trace", "summary", path("ctrl.json"))
check(r.returncode == 1 and r.stderr.count("\n") == 1 and "\x1e" not in r.stderr,
      "a control character quoted by the JSON parser stays on one line", r.stderr)

# A codelet named longer than any fixed buffer, a task whose step is called
# "transfer" (a transfer's cat), and markup in a name.
long_name = "c" * 200


def odd_names(d, t):
    t[0]["name"] = long_name
    t[1]["cat"] = "transfer"
    t[2]["name"] = "a<!--<script></script>"


edited("odd.json", odd_names)
r = halo("trace", "summary", path("odd.json"), "--json", check_rc=0)
got = json.loads(r.stdout) if r.returncode == 0 else {}
counted = sum(c["count"] for c in got.get("codelets", []))
check(r.returncode == 0 and counted == len(tasks) and
      any(c["codelet"] == long_name for c in got.get("codelets", [])),
      "summary: a 200-character codelet keeps its name, a step named 'transfer' stays a task",
      (counted, len(tasks)))
r = halo("trace", "html", path("odd.json"), "-o", path("odd.html"), check_rc=0)
page = open(path("odd.html")).read() if r.returncode == 0 else ""
start = page.find("const D = ")
data = page[start:page.find("\n", start)] if start >= 0 else ""
check(r.returncode == 0 and "<" not in data and "\\u003c!--\\u003cscript" in data,
      "html: no '<' inside the page's data (a name with <!--<script is escaped)", data[:80])
fifo = path("report.fifo")
if not os.path.exists(fifo):
    os.mkfifo(fifo)
r = halo("trace", "html", path("a.trace.json"), "-o", fifo)
check(r.returncode == 1 and stat.S_ISFIFO(os.stat(fifo).st_mode) and "not a regular file" in
      r.stderr, "html -o a FIFO: refused, the FIFO left as it was", r.stderr)

# A step name of 62 bytes in 31 characters: whole in the trace, which
# stays UTF-8 (it used to be cut at 47 bytes, inside a character).
utf = "\u00e9" * 31
upipe = path("utf.json")
with open(upipe, "w") as f:
    json.dump({"steps": [steps[0], dict(steps[2], name=utf, input=steps[0]["name"]),
                         {"name": "o", "op": "to_zarr", "input": utf,
                          "path": path("utf-out.zarr"), "overwrite": True}]}, f)
r = halo("run", upipe, "--quiet", "--trace", path("utf.trace.json"), check_rc=0)
r2 = halo("trace", "summary", path("utf.trace.json"), check_rc=0) if r.returncode == 0 else r
named = {e["args"].get("step") for e in json.load(open(path("utf.trace.json")))["traceEvents"]
         if e.get("ph") == "X"} if r.returncode == 0 else set()
check(r2.returncode == 0 and utf in named, "a 62-byte UTF-8 step name is whole in the trace",
      r.stderr + r2.stderr)

r = halo("trace", "critical-path")
check(r.returncode == 2, "trace without a file: usage error")
r = halo("run", pipe, "--quiet", "--trace", path("no/such/dir/t.json"))
check(r.returncode == 1 and "no/such/dir/t.json" in r.stderr, "unwritable trace path: exit 1",
      r.stderr)

done()
