"""halo bench on a tiny problem: every configuration of the matrix is
measured once per repeat, each figure in the JSON is recomputed here from
its own times (median, min, max, throughput, bandwidth by the traffic
model, speed-up over each peer), the peers present (numpy, scipy.fft, dask)
ran and dask's deconvolution equals halo's, the traces and the SVG plot
parse; bad options get one line."""
import json
import os
import shutil
import statistics
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import HALO, check, done, halo, path  # noqa: E402

if not os.path.exists(os.path.join(os.path.dirname(os.path.abspath(HALO)), "bench", "peers.py")):
    # an out-of-tree build (the sanitizer job): the peers are in the sources
    os.environ["HALO_BENCH_PEERS"] = os.path.join(os.environ["HALO_SRCDIR"], "bench", "peers.py")

work = path("bench-work")
shutil.rmtree(work, ignore_errors=True)
js, svg, trace = path("bench.json"), path("bench.svg"), path("bench-trace.json")
SHAPE, SIZE, PSF, IT, REPEAT = (8, 24, 20), (12, 40, 36), 5, 3, 2
r = halo("bench", "rl", "deconvolve", "convert", "--shape", "8,24,20", "--size", "12,40,36",
         "--psf", PSF, "--iterations", IT, "--repeat", REPEAT, "--warmup", 1,
         "--sched", "dmda,eager", "--ncpu", "1,all", "--json", js, "--plot", svg,
         "--trace", trace, "--dir", work, "--quiet", check_rc=0)
check(r.returncode == 0, "halo bench runs three workloads", r.stderr)


def wl_runs(doc, name):
    return next((w["runs"] for w in doc["workloads"] if w["name"] == name), [])

check(r.stderr == "", "--quiet: nothing on stderr", r.stderr)
for word in ("rl:", "deconvolve:", "convert:", "vs numpy", "vs scipy", "vs dask",
             "halo cpu=1 gpu=0", "halo cpu=all gpu=0 eager 6x20x18 overlap"):
    check(word in r.stdout, f"the table shows '{word}'", r.stdout)

d = json.load(open(js))
check(d["machine"]["topology"]["cores"] >= 1 and "workers" in d["machine"],
      "JSON: the machine (halo info) is recorded")
check(d["repeat"] == REPEAT and d["warmup"] == 1, "JSON: repeat and warm-up recorded")
# The runs here used eager: halo info's default scheduler is no run's.
check("scheduler" not in d["machine"]["starpu"] and
      all(x["config"].get("sched") for w in d["workloads"] for x in w["runs"]
          if x["tool"] == "halo"),
      "JSON: each run names its scheduler, the machine none", d["machine"]["starpu"])
cpu_peak = d["peak_bandwidth_gbs"]["cpu_copy_measured"]
check(cpu_peak > 0.1, "JSON: the measured CPU copy bandwidth is positive", cpu_peak)
wl = {w["name"]: w for w in d["workloads"]}
check(list(wl) == ["rl", "deconvolve", "convert"], "JSON: three workloads in order", list(wl))

# A small volume's throughput keeps three significant figures in the
# table ("0.0" Mvox*iter/s before): each run's row shows its JSON figure.
rows = {l.split("  ")[1].strip(): l for l in r.stdout.splitlines() if l.startswith("  halo ")}
small = [(x["label"], x["throughput"]) for x in wl_runs(d, "deconvolve")
         if x["tool"] == "halo" and x["available"]]
check(small and all(f"{t:#.3g}" in rows.get("halo " + lab, "").split() for lab, t in small
                    if t < 100),
      "the table's throughputs below 100: three significant figures", (small, list(rows)[:3]))
vox_rl = SHAPE[0] * SHAPE[1] * SHAPE[2]
vox = SIZE[0] * SIZE[1] * SIZE[2]
check(abs(wl["rl"]["work_per_run"] - vox_rl * IT / 1e6) < 1e-12, "rl: work = Mvox x iterations")
check(abs(wl["deconvolve"]["work_per_run"] - vox * IT / 1e6) < 1e-12, "deconvolve: work")
check(abs(wl["convert"]["work_per_run"] - vox * 2 / 1e6) < 1e-12, "convert: work = uint16 MB")
check(abs(wl["rl"]["model_bytes_per_run"] - 80 * vox_rl * IT) < 1e-6,
      "rl: the traffic model is 80 bytes per voxel and iteration")


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


expected_configs = {
    "rl": [(1, 0, None), (-1, 0, None)],
    "deconvolve": [(1, 0, "dmda"), (1, 0, "eager"), (-1, 0, "dmda"), (-1, 0, "eager")],
    "convert": [(1, 0, "dmda"), (1, 0, "eager"), (-1, 0, "dmda"), (-1, 0, "eager")],
}
for name, w in wl.items():
    runs = [x for x in w["runs"] if x["tool"] == "halo"]
    peers = {x["tool"]: x for x in w["runs"] if x["tool"] != "halo"}
    got = [(x["config"]["ncpu"], x["config"]["ncuda"],
            None if name == "rl" else x["config"]["sched"]) for x in runs]
    check(got == expected_configs[name], f"{name}: every configuration measured once", got)
    ok = True
    for x in w["runs"]:
        if not x["available"]:
            continue
        t = x["times_s"]
        ok &= len(t) == REPEAT and all(v > 0 for v in t)
        ok &= close(x["median_s"], statistics.median(t))
        ok &= close(x["min_s"], min(t)) and close(x["max_s"], max(t))
        ok &= close(x["throughput"], w["work_per_run"] / statistics.median(t))
        if name == "rl":
            # The model's bytes as each run moves them: the seed's numpy
            # RL in float64, twice float32's (no GPU here: no callbacks).
            scale = 2 if x["tool"] == "numpy" else 1
            gbs = scale * w["model_bytes_per_run"] / statistics.median(t) / 1e9
            ok &= close(x["bandwidth_gbs"], gbs)
            ok &= close(x["bandwidth_fraction"], gbs / x["peak_gbs"])
        if x["tool"] == "halo":
            for p, ratio in x["speedup_vs"].items():
                ok &= close(ratio, statistics.median(peers[p]["times_s"]) / x["median_s"])
            ok &= set(x["speedup_vs"]) == {p for p, v in peers.items() if v["available"]}
    check(ok, f"{name}: median, min, max, throughput and ratios recomputed from the times")
    for x in runs:
        tr = x.get("trace")
        ev = json.load(open(tr))["traceEvents"] if tr and os.path.exists(tr) else []
        cats = {e.get("name") for e in ev if e.get("ph") == "X"}
        want = {"rl": "rl", "deconvolve": "rl", "convert": "write"}[name]
        check(any(want in (c or "") for c in cats),
              f"{name} {x['label']}: its traced run has {want} tasks", sorted(cats)[:10])
        if name == "rl":  # after the warm-up: one task, no PSF spectrum (made in the warm-up)
            steps = [e for e in ev if e.get("ph") == "X" and e.get("cat") != "transfer"]
            check(len(steps) == 1, f"rl {x['label']}: the trace holds the timed run alone",
                  [e.get("name") for e in steps])

rl_peers = {x["tool"]: x for x in wl["rl"]["runs"] if x["tool"] != "halo"}
check(rl_peers["numpy"]["available"] and rl_peers["scipy"]["available"],
      "rl: the numpy and scipy.fft peers ran")
cupy = rl_peers.get("cupy")
check(cupy is not None and (cupy["available"] or cupy["reason"]),
      "rl: CuPy ran, or the reason it could not is given", cupy)
cufft = rl_peers.get("cufft")
check(cufft is not None and (cufft["available"] or cufft["reason"]),
      "rl: cuFFT alone ran, or the reason it could not is given", cufft)
dask = [x for x in wl["deconvolve"]["runs"] if x["tool"] == "dask"]
check(dask and dask[0]["available"] and dask[0]["max_rel_diff_vs_halo"] < 1e-5,
      "deconvolve: dask map_overlap of numpy RL gives halo's result",
      dask and dask[0].get("max_rel_diff_vs_halo"))
check([x["tool"] for x in wl["convert"]["runs"] if x["available"] and x["tool"] != "halo"]
      == ["dask"], "convert: the zarr + dask peer ran")

root = ET.parse(svg).getroot()
rects = [e for e in root.iter("{http://www.w3.org/2000/svg}rect") if e.get("class")]
bars = sum(1 + (w["name"] == "rl") for w in d["workloads"]
           for x in w["runs"] if x["available"])
check(len(rects) == bars, "SVG: one bar per run (and per rl run for bandwidth)",
      (len(rects), bars))
# Every text inside the canvas at DejaVu Sans's 12 px widths (about 6.9 px a
# character; bold titles 7.6): deconvolve's titles ran past 960 px.
texts = list(root.iter("{http://www.w3.org/2000/svg}text"))
width = float(root.get("width"))
over = [t.text for t in texts
        if (float(t.get("x")) + len(t.text or "") * (7.6 if t.get("font-weight") else 6.9)
            if t.get("text-anchor") != "end" else float(t.get("x"))) > width
        or (t.get("text-anchor") == "end" and float(t.get("x")) - len(t.text or "") * 6.9 < 0)]
check(texts and not over, "SVG: every label and title inside the canvas", over[:3])
check(os.path.isdir(os.path.join(work, "input.zarr")), "--dir keeps the generated volume")
# Each run keeps its own outputs only: a convert's stayed beside a later
# bench's volume of another size.
kept = path("bench-kept")
shutil.rmtree(kept, ignore_errors=True)
common = ["--size", "16,32,32", "--repeat", "1", "--warmup", "0", "--peers", "none", "--ncpu",
          "1", "--quiet", "--dir", kept]
r1 = halo("bench", "convert", *common, check_rc=0)
had = os.path.isdir(os.path.join(kept, "converted.zarr"))
r2 = halo("bench", "deconvolve", "--psf", "3", "--iterations", "1", *common, check_rc=0)
check(r1.returncode == 0 and r2.returncode == 0 and had and
      not os.path.exists(os.path.join(kept, "converted.zarr")) and
      os.path.isdir(os.path.join(kept, "out.zarr")),
      "--dir holds the last bench's outputs only", sorted(os.listdir(kept)))


def generated(shape):
    """The volume bench writes, voxel by voxel: 200 + 150 sin(.31z) sin(.23y)
    sin(.17x) plus 0..31 from a xorshift stream drawn over each stored
    (full-size) chunk in turn."""
    import math
    import numpy as np
    ch = ((shape[0] + 1) // 2, (shape[1] + 3) // 4, (shape[2] + 3) // 4)
    out, r, m = np.zeros(shape, np.uint16), 0x2545f4914f6cdd1d, (1 << 64) - 1
    for cz in range(-(-shape[0] // ch[0])):
        for cy in range(-(-shape[1] // ch[1])):
            for cx in range(-(-shape[2] // ch[2])):
                for z in range(cz * ch[0], (cz + 1) * ch[0]):
                    for y in range(cy * ch[1], (cy + 1) * ch[1]):
                        for x in range(cx * ch[2], (cx + 1) * ch[2]):
                            r ^= r >> 12
                            r ^= (r << 25) & m
                            r ^= r >> 27
                            if z < shape[0] and y < shape[1] and x < shape[2]:
                                v = 200 + 150 * math.sin(0.31 * z) * math.sin(0.23 * y) * \
                                    math.sin(0.17 * x)
                                out[z, y, x] = int(v + (r >> 59))
    return out


import zarr  # noqa: E402
import numpy  # noqa: E402
got = zarr.open(os.path.join(work, "input.zarr"), mode="r")
check(got.dtype == numpy.uint16 and numpy.array_equal(got[:], generated(SIZE)),
      "the generated volume is the documented structure plus noise, edge chunks included")

# 'all' naming a count also listed is one configuration.
dd = path("bench-dedup.json")
r = halo("bench", "deconvolve", "--size", "8,16,16", "--psf", 3, "--iterations", 1, "--repeat", 1,
         "--warmup", 0, "--ncpu", "1,1,all", "--ncuda", "0,all", "--peers", "none", "--json", dd,
         "--quiet", check_rc=0)
runs = json.load(open(dd))["workloads"][0]["runs"] if r.returncode == 0 else []
check([(x["config"]["ncpu"], x["config"]["ncuda"]) for x in runs] == [(1, 0), (-1, 0)],
      "--ncpu 1,1,all --ncuda 0,all on a machine without GPU: two configurations",
      r.stdout + r.stderr)

# With several chunk shapes the dask peer runs once for each, and each
# configuration's ratio is against the run of its own chunks; each dask
# result is compared with the output of halo's run of its chunks (the
# overlap one, dask's mode), named in the JSON.
mc = path("bench-multichunk.json")
r = halo("bench", "deconvolve", "--size", "16,32,32", "--psf", 5, "--iterations", 3,
         "--repeat", 1, "--warmup", 0, "--ncpu", 1, "--chunks", "8,16,16", "--chunks",
         "16,16,32", "--mode", "exact,overlap", "--peers", "dask", "--json", mc,
         "--dir", path("bench-multichunk"), check_rc=0)
runs = json.load(open(mc))["workloads"][0]["runs"] if r.returncode == 0 else []
dk = {tuple(x["config"]["chunks"]): x for x in runs if x["tool"] == "dask" and x["available"]}
check(set(dk) == {(8, 16, 16), (16, 16, 32)} and
      all(x["max_rel_diff_vs_halo"] < 1e-5 and x["compared_with"] ==
          f"cpu=1 gpu=0 dmda {'x'.join(map(str, c))} overlap" for c, x in dk.items()),
      "deconvolve, two chunk shapes: a dask run of each, equal to halo's overlap run of it",
      [(c, x.get("max_rel_diff_vs_halo"), x.get("compared_with")) for c, x in dk.items()])
halo_runs = [x for x in runs if x["tool"] == "halo"]
check(len(halo_runs) == 4 and len(dk) == 2 and
      all(abs(x["speedup_vs"]["dask"] - dk[tuple(x["config"]["chunks"])]["median_s"] /
              x["median_s"]) < 1e-9 for x in halo_runs),
      "each configuration's ratio is against dask with its chunks",
      [(x["config"], x.get("speedup_vs")) for x in halo_runs])
check(r.stdout.count("dask's result against halo cpu=1 gpu=0 dmda ") == 2 and
      "chunks 16x16x32" in r.stdout and r.stdout.count("unavailable") <= 1,
      "the table names each dask run's chunks and what it was compared with", r.stdout)
check(not os.path.exists(path("bench-multichunk/peers")),
      "--dir: the peers' folder goes with their outputs", os.listdir(path("bench-multichunk")))

# Options that no workload of the bench takes, and --peers with
# --simulate, are usage errors rather than ignored.
for args, want in [(["convert", "--mode", "exact"], "--mode applies to deconvolve"),
                   (["rl", "--depth", "1,1,1"], "--depth applies to deconvolve"),
                   (["deconvolve", "--shape", "8,8,8"], "--shape applies to rl"),
                   (["deconvolve", "--simulate", path("x"), "--peers", "dask"],
                    "--simulate takes no --peers")]:
    r = halo("bench", *args)
    check(r.returncode == 2 and want in r.stderr and r.stderr.count("\n") == 1,
          f"bench {' '.join(args[:2])}: '{want}'", r.stderr)
# A report that cannot be created is found before any run (root may
# write anywhere access() is asked about, /proc included).
r = halo("bench", "rl", "--shape", "4,8,8", "--psf", 3, "--iterations", 1, "--repeat", 1,
         "--warmup", 0, "--ncpu", 1, "--peers", "none", "--json", "/proc/halo-bench.json")
check(r.returncode == 1 and r.stdout == "" and "cannot be created" in r.stderr,
      "--json in /proc: refused before the runs", r.stdout + r.stderr)

# Peers can be switched off; a missing peers script is reported, not fatal.
r = halo("bench", "rl", "--shape", "4,8,8", "--psf", 3, "--iterations", 1, "--repeat", 1,
         "--warmup", 0, "--ncpu", 1, "--peers", "none", "--quiet", check_rc=0)
check(r.returncode == 0 and "numpy" not in r.stdout, "--peers none runs halo alone", r.stdout)
env = dict(os.environ, HALO_BENCH_PEERS="/nonexistent/peers.py")
import subprocess  # noqa: E402
p = subprocess.run([HALO, "bench", "rl", "--shape", "4,8,8", "--psf", "3", "--iterations", "1",
                    "--repeat", "1", "--warmup", "0", "--ncpu", "1", "--quiet"],
                   capture_output=True, text=True, env=env)
check(p.returncode == 0 and "unavailable: /nonexistent/peers.py: not found" in p.stdout,
      "a missing peers script is one 'unavailable' row", p.stdout + p.stderr)

# Rounds: every round runs halo and then the peers once, so each peer
# process is started warm-up + repeat times and reports one time a round.
log = path("peer-calls.txt")
fake = path("fake-peers.py")
with open(fake, "w") as f:
    f.write("import json, sys\n"
            f"open({log!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
            "print(json.dumps({'peer': 'numpy', 'label': 'fake', 'available': True,"
            " 'times_s': [10.0 + len(open(" + repr(log) + ").readlines())]}))\n")
p = subprocess.run([HALO, "bench", "rl", "--shape", "4,8,8", "--psf", "3", "--iterations", "1",
                    "--repeat", "3", "--warmup", "2", "--ncpu", "1", "--peers", "numpy",
                    "--json", path("rounds.json"), "--quiet"],
                   capture_output=True, text=True, env=dict(os.environ, HALO_BENCH_PEERS=fake))
calls = open(log).read().splitlines() if os.path.exists(log) else []
check(p.returncode == 0 and len(calls) == 5 and all("--repeat=1" in c for c in calls),
      "bench: the peers run once per round, warm-up rounds included", calls)
runs = {x["tool"]: x for x in json.load(open(path("rounds.json")))["workloads"][0]["runs"]} \
    if p.returncode == 0 else {}
check(runs.get("numpy", {}).get("times_s") == [13.0, 14.0, 15.0] and
      len(runs.get("halo", {}).get("times_s", [])) == 3,
      "bench: the warm-up rounds' times are dropped, one time kept per round", runs)

cores = d["machine"]["topology"]["cores"]
for args, rc, msg in [
        (["--ncpu", str(cores + 1)], 1, f"--ncpu {cores + 1}: this machine has {cores} cores"),
        (["--ncuda", "9"], 1, "--ncuda 9: this machine has"),
        (["--mode", "fast"], 1, "--mode: 'fast' is not overlap or exact"),
        (["--repeat", "0"], 1, "--repeat"),
        (["--chunks", "1,2"], 1, "--chunks"),
        (["--peers", "all,none"], 1, "--peers: 'all' stands alone, not in a list"),
        (["deconvolve", "--sched", "eager,lws,ws,prio,random,dm,dmda,dmdas,dmdar",
          "--ncpu", "1,all"] + [f"--chunks=8,8,{8 + k}" for k in range(15)], 1,
         "bench deconvolve: 270 configurations, more than 256"),
        (["sharpen"], 2, "unknown workload 'sharpen'"),
        (["--bogus"], 2, "unknown option '--bogus'")]:
    r = halo("bench", "rl", *args)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == rc and len(lines) == 1 and msg in lines[0] and
          lines[0].startswith("halo: "),
          f"bench {' '.join(args)}: exit {rc}, one line", r.stderr)
# Ctrl-C while bench writes its input volume: it stops at once (it wrote the
# whole volume, then ran a convert, before), says so, and leaves no work folder.
import signal  # noqa: E402
import time  # noqa: E402

tmp = path("bench-sigint")
shutil.rmtree(tmp, ignore_errors=True)
os.makedirs(tmp)
proc = subprocess.Popen([HALO, "bench", "convert", "--size", "256,1024,1024", "--repeat", "1",
                         "--warmup", "0", "--ncpu", "1", "--peers", "none"],
                        env=dict(os.environ, TMPDIR=tmp), stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
time.sleep(1.0)
t0 = time.time()
proc.send_signal(signal.SIGINT)
_, err = proc.communicate(timeout=120)
took = time.time() - t0
check(proc.returncode == 1 and "interrupted" in err and took < 2 and os.listdir(tmp) == [],
      f"bench: SIGINT stops it within {took:.1f} s, nothing left", (proc.returncode, err,
                                                                     os.listdir(tmp)))

# Found before any run (a trace name clash ended a bench after its warm-up,
# measurements lost; a report written over a trace, or a plot over the
# report, went unsaid), and lists with an empty item are refused.
clash = path("bench-clash")
shutil.rmtree(clash, ignore_errors=True)
os.makedirs(clash)
open(os.path.join(clash, "w-rl-cpu_1-gpu_0.json"), "w").write("my notes\n")
small = ["bench", "rl", "--shape", "8,16,16", "--psf", "3", "--iterations", "1", "--repeat", "1",
         "--warmup", "0", "--peers", "none", "--ncpu", "1", "--quiet"]
for extra, needle in [(["--trace", os.path.join(clash, "w.json")], "is not a halo trace"),
                      (["--trace", os.path.join(clash, "x.json"), "--json",
                        os.path.join(clash, "x-rl-cpu_1-gpu_0.json")], "is also the --json file"),
                      (["--json", os.path.join(clash, "r.svg"), "--plot",
                        os.path.join(clash, "r.svg")], "--json and --plot name one file"),
                      (["--sched", "dmda,"], "has an empty item"),
                      (["--peers", "numpy,"], "has an empty item"),
                      (["--json", os.path.join(clash, "w-rl-cpu_1-gpu_0.json")],
                       "is not a halo bench report")]:
    t0 = time.time()
    r = halo(*small, *extra, check_rc=0)
    check(r.returncode == 1 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1
          and sorted(os.listdir(clash)) == ["w-rl-cpu_1-gpu_0.json"] and time.time() - t0 < 5,
          f"bench refuses at once: {needle}", (r.stderr, os.listdir(clash)))
# A bad option leaves no --dir it made: the folder held the machine's
# description, and convert's generated inputs.
for extra, needle in [(["deconvolve", "--ncpu", "999"], "--ncpu 999: this machine has"),
                      (["convert", "--ncpu", "0"], "no configuration to run (it runs on CPU")]:
    made = os.path.join(clash, "made")
    r = halo("bench", *extra, "--dir", made, "--quiet")
    check(r.returncode == 1 and needle in r.stderr and not os.path.exists(made),
          f"bench refuses before any run, its --dir gone: {needle}", r.stderr)
# A plot replaces halo's own SVG only (any SVG begins as halo's does).
svg = os.path.join(clash, "mine.svg")
mine = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>\n'
open(svg, "w").write(mine)
r = halo(*small, "--plot", svg)
check(r.returncode == 1 and "is not a halo bench report" in r.stderr and open(svg).read() == mine,
      "bench --plot onto a user's SVG: refused, kept", r.stderr)
made = os.path.join(clash, "made-depth")
r = halo("bench", "deconvolve", "--size", "16,32,32", "--depth", "100,100,100", "--ncpu", "1",
         "--repeat", "1", "--peers", "none", "--dir", made)
check(r.returncode == 1 and r.stderr.strip() == "halo: --depth 100,100,100: deeper than the "
      "volume (16x32x32)" and not os.path.exists(made),
      "bench --depth deeper than the volume: refused before any run, no --dir left", r.stderr)
# Without a GPU, 'all' and the number of cores are one configuration.
info = json.loads(halo("info", "--json").stdout)
if not info["workers"]["cuda"]:
    cores = info["topology"]["cores"]
    rep = os.path.join(clash, "all.json")
    r = halo("bench", "rl", "--shape", "8,8,8", "--psf", "3", "--iterations", "1", "--repeat", "1",
             "--warmup", "0", "--peers", "none", "--ncpu", f"1,all,{cores}", "--quiet", "--json",
             rep, check_rc=0)
    runs = json.load(open(rep))["workloads"][0]["runs"] if r.returncode == 0 else []
    labels = sorted(x["label"] for x in runs)
    check(len(labels) == 2 and any("cpu=all" in x for x in labels),
          f"bench --ncpu 1,all,{cores} on {cores} cores and no GPU: two configurations", labels)
# A peers script that crashed or failed says so, unlike a peer that is not
# installed ("unavailable: ...").
for body, want in [("echo oops >&2; kill -SEGV $$", "oops; killed by signal 11"),
                   ("echo broken >&2; exit 3", "peers.py exited with status 3: broken")]:
    fake = os.path.join(clash, "py.sh")
    with open(fake, "w") as f:
        f.write(f"#!/bin/sh\n{body}\n")
    os.chmod(fake, 0o755)
    rep = os.path.join(clash, "peers.json")
    r = halo("bench", "convert", "--size", "16,32,32", "--ncpu", "1", "--repeat", "1",
             "--warmup", "0", "--peers", "dask", "--python", fake, "--quiet", "--json", rep,
             check_rc=0)
    runs = json.load(open(rep))["workloads"][0]["runs"] if r.returncode == 0 else []
    dask = [x for x in runs if x["tool"] == "dask"]
    check(dask and not dask[0]["available"] and want in dask[0].get("reason", ""),
          f"a peers script that {'crashed' if 'SEGV' in body else 'failed'}: said", dask)
# A 2D --input is refused before any run (its first run failed, naming a
# --chunks the user never gave), and leaves no --dir.
in2d = os.path.join(clash, "in2d.zarr")
zarr.open(in2d, mode="w", shape=(20, 24), chunks=(10, 12), dtype="u2")[:] = 1
made = os.path.join(clash, "made2d")
r = halo("bench", "convert", "--input", in2d, "--ncpu", "1", "--repeat", "1", "--peers", "none",
         "--dir", made)
check(r.returncode == 1 and r.stderr.strip() == f"halo: --input {in2d}: is 2D; bench runs on 3D "
      "volumes" and not os.path.exists(made), "bench --input of a 2D volume: one line", r.stderr)
# --input of another type: described as it is, and its MB/s counted in
# its bytes (it said uint16, at 2 bytes a voxel, whatever it held).
f32 = os.path.join(clash, "f32.zarr")
zarr.open(f32, mode="w", shape=(24, 40, 48), chunks=(12, 20, 24), dtype="f4")[:] = 1
rep = os.path.join(clash, "f32.json")
r = halo("bench", "convert", "--input", f32, "--ncpu", "1", "--repeat", "1", "--warmup", "0",
         "--peers", "none", "--quiet", "--json", rep, check_rc=0)
w = json.load(open(rep))["workloads"][0] if r.returncode == 0 else {}
check(w.get("about", "").startswith("rechunk float32 Zarr 24x40x48") and
      abs(w.get("work_per_run", 0) - 24 * 40 * 48 * 4 / 1e6) < 1e-9,
      "bench convert --input float32: described and counted as float32", w)
# The default depth is deconvolve's, no deeper than the volume: chunks
# larger than a 16-voxel axis were refused ("a depth of 20 on axis 0").
r = halo("bench", "deconvolve", "--size", "16,64,64", "--chunks", "100,100,100", "--iterations",
         "1", "--repeat", "1", "--warmup", "0", "--peers", "none", "--ncpu", "1", "--quiet",
         check_rc=0)
check(r.returncode == 0 and "depth 16,16,16" in r.stdout,
      "bench deconvolve: chunks larger than the volume run, the depth capped at it",
      (r.stdout, r.stderr))
# --dir reuses a bench's kept folder, never a user's files of its names
# (a user's psf.tif was replaced, a Zarr written into their input.zarr),
# nor writes a report over one of its own files.
ud = path("bench-userdir")
shutil.rmtree(ud, ignore_errors=True)
os.makedirs(ud)
with open(os.path.join(ud, "psf.tif"), "w") as f:
    f.write("thesis draft")
tiny = ["bench", "deconvolve", "--size", "8,16,16", "--psf", 3, "--iterations", "1", "--repeat",
        "1", "--warmup", "0", "--peers", "none", "--ncpu", "1", "--quiet"]
r = halo(*tiny, "--dir", ud, check_rc=0)
check(r.returncode == 1 and "psf.tif: already exists and is not from 'halo bench'" in r.stderr
      and open(os.path.join(ud, "psf.tif")).read() == "thesis draft",
      "bench --dir with a user's psf.tif: refused, the file kept", r.stderr)
kept = path("bench-kept")
shutil.rmtree(kept, ignore_errors=True)
r1 = halo(*tiny, "--dir", kept, check_rc=0)
r2 = halo(*tiny, "--dir", kept, check_rc=0)
r3 = halo(*tiny, "--dir", kept, "--json", os.path.join(kept, "psf.tif"), check_rc=0)
check(r1.returncode == 0 and r2.returncode == 0 and r3.returncode == 1 and
      "--dir keeps its psf.tif there" in r3.stderr,
      "bench --dir: a kept folder reused; a report named as one of its files refused",
      (r1.stderr, r2.stderr, r3.stderr))
# Such chunks are labelled as they run, ending at the volume's edge, and
# shapes that are then the same run once (three runs of one were made).
cl = path("bench-clamped.json")
r = halo("bench", "deconvolve", "--size", "8,16,16", "--psf", 3, "--chunks", "8,16,16",
         "--chunks", "100,100,100", "--chunks", "8,20,20", "--iterations", "1", "--repeat", "1",
         "--warmup", "0", "--peers", "none", "--ncpu", "1", "--json", cl, "--quiet", check_rc=0)
runs = json.load(open(cl))["workloads"][0]["runs"] if r.returncode == 0 else []
check([x["config"]["chunks"] for x in runs] == [[8, 16, 16]] and
      "8x16x16 overlap" in r.stdout and "100x100x100" not in r.stdout,
      "bench: chunks larger than the volume labelled as they run, one shape run once",
      (r.stdout, r.stderr))
done()
