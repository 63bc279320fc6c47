"""halo bench --simulate: performance models recorded by real runs here
are replayed by halo-sim (StarPU on SimGrid). The simulated times follow
the times halo reports for the same runs (in process, as a simulation has
no start-up), shrink with more cores, are the same on every run, and a
GPU added to the models (one whose tasks take a tenth of a core's: this
machine has none to record) takes work off the CPUs; machines larger than
the recorded one are simulated; missing models and wrong options get one
line."""
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import HALO, check, done, halo, path, skip  # noqa: E402

SIM = os.path.join(os.path.dirname(os.path.abspath(HALO)), "halo-sim")
# Skipped only where the build was configured without it (make check says
# which): a build that should have made halo-sim and did not fails.
if os.environ.get("HALO_SIM_BUILT") == "0":
    skip("halo bench --simulate", "no halo-sim in this build (HALO_NO_SIMGRID=1)")
    done()
if not check(os.access(SIM, os.X_OK), f"halo-sim is built beside halo ({SIM})"):
    done()

models = path("sim-models")
shutil.rmtree(models, ignore_errors=True)
SHAPE = ["--size", "64,192,192", "--chunks", "32,96,96", "--psf", "7", "--iterations", "20"]
# Every measurement counts (see replayed).
env = dict(os.environ, STARPU_PERF_MODEL_DIR=models, STARPU_HISTORY_MAX_ERROR="100000")
real_dir = path("sim-real")
shutil.rmtree(real_dir, ignore_errors=True)
r = halo("bench", "deconvolve", *SHAPE, "--ncpu", "1,2", "--repeat", 2, "--warmup", 1,
         "--peers", "none", "--quiet", "--dir", real_dir, env=env, check_rc=0)
check(r.returncode == 0, "real runs record their models", r.stderr)
depth = re.search(r"depth (\d+,\d+,\d+)", r.stdout)
depth = depth.group(1) if depth else "8,8,8"


def replayed(ncpu):
    """Three runs of halo deconvolve on the bench's volume with ncpu
    workers, recording into a model folder of their own, and the
    simulation of that run from those models: the median of the seconds the
    runs report (in process: a simulation has no start-up) and the
    simulated seconds (and the simulation's stderr). The models hold
    exactly these runs' task times, so the machine's noise is in both.
    StarPU drops the first measurement of each task size and empties an
    entry whose next measurement is more than STARPU_HISTORY_MAX_ERROR
    (50 %) off: the otf task, once per run, was left with no measurement
    that way on this noisy machine. Here every measurement counts."""
    own = path(f"sim-models-{ncpu}cpu")
    shutil.rmtree(own, ignore_errors=True)
    secs = []
    for _ in range(3):
        r = halo("deconvolve", os.path.join(real_dir, "input.zarr"),
                 os.path.join(real_dir, "psf.tif"), path("sim-real-out.zarr"), "--chunks",
                 "32,96,96", "--depth", depth, "--iterations", "20", "--ncpu", ncpu,
                 "--ncuda", "0", "--overwrite",
                 env={"STARPU_PERF_MODEL_DIR": own, "STARPU_HISTORY_MAX_ERROR": "100000"})
        m = re.search(r"workers: ([0-9.]+) s,", r.stdout)
        if m:
            secs.append(float(m.group(1)))
    r, (_, sim) = simulate("--ncpu", ncpu, json_name=f"sim-{ncpu}cpu.json", model_dir=own)
    return (statistics.median(secs) if secs else None), sim.get((ncpu, 0)), r.stderr


hosts = [f[:-len(".platform.v4.xml")] for f in os.listdir(os.path.join(models, "bus"))
         if f.endswith(".platform.v4.xml")]
check(len(hosts) == 1, "one machine's models recorded", hosts)
host = hosts[0]


def bench_times(js):
    d = json.load(open(js))
    runs = d["workloads"][0]["runs"]
    return d, {(x["config"]["ncpu"], x["config"]["ncuda"]): x["median_s"] for x in runs}


def simulate(*args, json_name="sim.json", model_dir=models):
    js = path(json_name)
    r = halo("bench", "deconvolve", *SHAPE, "--simulate", model_dir, *args, "--quiet",
             "--json", js, check_rc=0)
    return r, (bench_times(js) if r.returncode == 0 else (None, {}))


r, (d, sim) = simulate("--ncpu", "1,2,8")
check(r.returncode == 0, "halo bench --simulate runs", r.stderr)
check("simulated by halo-sim" in r.stdout, "the table says the times are simulated", r.stdout)
if d:
    m = d["machine"]["simulated"]
    check(m["host"] == host and m["recorded_cpus"] == os.cpu_count() and m["cpus"] == 8 and
          m["gpus"] == 0, "JSON: the recorded and the simulated machine", m)
    # The larger of the kernel's figure and the NUMA nodes' (StarPU's, as
    # halo patches it).
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    numa = 0
    for f in glob.glob("/sys/devices/system/node/node*/meminfo"):
        for line in open(f):
            if line.split()[2:3] == ["MemTotal:"]:
                numa += int(line.split()[3]) * 1024
    ram = max(numa, ram)
    noted = json.load(open(os.path.join(models, "halo", host + ".json")))
    check(noted["ram_bytes"] == ram and m["recorded_ram_bytes"] == ram,
          "the recording notes this machine's memory, and the simulation uses it",
          (noted, m.get("recorded_ram_bytes"), ram))
    for n in (1, 2):
        real, replay, why = replayed(n)
        ratio = replay / real if real and replay else 0
        check(0.5 < ratio < 1.5, f"{n} CPU: the simulated time follows halo's own (in process)",
              (replay, real, why))
    check(sim[(1, 0)] > sim[(2, 0)] > sim[(8, 0)],
          "more simulated cores, less time", sim)
    # 8 chunks: 8 cores run all their RL at once
    check(sim[(8, 0)] < 0.5 * sim[(1, 0)], "8 simulated cores: at least 2x one core", sim)
    _, (_, again) = simulate("--ncpu", "1,2,8", json_name="sim2.json")
    check(again == sim, "a simulation gives the same times every run", (again, sim))
    check(any(abs(t * 100 - round(t * 100)) > 1e-6 for t in sim.values()),
          "simulated times keep more than centiseconds", sim)


def add_gpu(src, dst, speedup=10.0):
    """The recorded models with a GPU 0: a CUDA copy of every CPU
    measurement, speedup times faster, and CUDA0 with its PCIe links in
    the platform file."""
    shutil.copytree(src, dst)
    for root, _, files in os.walk(os.path.join(dst, "codelets")):
        for f in files:
            p = os.path.join(root, f)
            text = open(p).read()
            head, comb0 = text.split("####################\n# COMB_0\n", 1)
            comb0 = comb0.split("####################\n# COMB_1\n")[0]
            # device type 0 (CPU) -> 1 (CUDA)
            cuda = re.sub(r"(# device type \([^)]*\)\n)0\n", r"\g<1>1\n", comb0, count=1)
            cuda = cuda.replace("cpu0_impl0 (Comb0)", "cuda0_impl0 (Comb1)")
            rows = []
            for line in cuda.split("\n"):
                cols = line.split()
                if len(cols) == 8 and re.fullmatch(r"[0-9a-f]{8}", cols[0]):
                    mean, dev, s, s2 = (float(c) for c in cols[3:7])
                    cols[3:7] = [f"{mean / speedup:e}", f"{dev / speedup:e}",
                                 f"{s / speedup:e}", f"{s2 / speedup ** 2:e}"]
                    line = "\t".join(cols)
                rows.append(line)
            n = int(re.search(r"# number of combinations\n(\d+)", head).group(1))
            text = head.replace(f"# number of combinations\n{n}",
                                f"# number of combinations\n{n + 1}") + text[len(head):]
            text = (text.rstrip("\n") + "\n\n####################\n# COMB_%d\n" % n +
                    "\n".join(rows) + "\n")
            open(p, "w").write(text)
    plat = os.path.join(dst, "bus", host + ".platform.v4.xml")
    x = open(plat).read()
    x = x.replace('   <host id="RAM"',
                  '   <host id="CUDA0" speed="2000000000f">\n'
                  '     <prop id="memsize" value="17179869184"/>\n   </host>\n'
                  '   <host id="RAM"', 1)
    x = x.replace(" </AS>",
                  '   <link id="RAM-CUDA0" bandwidth="12000000000Bps" latency="0.00001s"/>\n'
                  '   <link id="CUDA0-RAM" bandwidth="12000000000Bps" latency="0.00001s"/>\n'
                  " </AS>", 1)
    open(plat, "w").write(x)


gpu_models = path("sim-models-gpu")
shutil.rmtree(gpu_models, ignore_errors=True)
add_gpu(models, gpu_models)
r, (d, g) = simulate("--ncpu", "2", "--ncuda", "0,1,4", json_name="sim-gpu.json",
                     model_dir=gpu_models)
check(r.returncode == 0, "a machine with a GPU is simulated", r.stderr)
if d:
    check(d["machine"]["simulated"]["recorded_gpus"] == 1 and
          d["machine"]["simulated"]["gpus"] == 4, "JSON: 1 GPU recorded, 4 simulated",
          d["machine"])
    check(g[(2, 1)] < 0.8 * g[(2, 0)], "a GPU 10x faster than a core shortens the run", g)
    check(g[(2, 4)] <= g[(2, 1)] * 1.01, "4 GPUs take no longer than 1", g)
    only = simulate("--ncpu", "0", "--ncuda", "1", json_name="sim-gpu0.json",
                    model_dir=gpu_models)
    check(only[0].returncode == 0 and (0, 1) in only[1][1],
          "--ncpu 0: the GPU with I/O workers", only[0].stderr)

# One line for each mistake, and nothing simulated.
r, _ = simulate("--ncuda", "1")
check(r.returncode == 1 and "without a GPU" in r.stderr and r.stderr.count("\n") == 1,
      "GPUs from models recorded without one: one line", r.stderr)
r = halo("bench", "deconvolve", "--simulate", path("no-such-models"), "--quiet", check_rc=1)
check("no StarPU performance models" in r.stderr and r.stderr.count("\n") == 1,
      "a folder without models: one line", r.stderr)
# halo-sim meets the missing model in StarPU's assertion (an abort): no
# core file where it ran (81 to 384 MB each), no lock or temporary output
# in a kept --dir.
kept = path("sim-kept")
shutil.rmtree(kept, ignore_errors=True)
r = subprocess.run(["sh", "-c", 'ulimit -c unlimited; cd "$1" && shift && exec "$@"', "sh",
                    path(""), HALO, "bench", "deconvolve", "--size", "64,192,192", "--chunks",
                    "16,96,96", "--psf", "7", "--iterations", "20", "--simulate", models,
                    "--quiet", "--dir", kept], capture_output=True, text=True)
left = [f for f in os.listdir(path("")) if f.startswith("core")] + \
    [f for f in os.listdir(kept) if ".halo-tmp" in f or ".halo-lock" in f] \
    if os.path.isdir(kept) else ["no --dir"]
check(r.returncode == 1 and "has no measurement of" in r.stderr and "--chunks" in r.stderr and
      r.stderr.count("\n") == 1 and not left,
      "a chunk shape never recorded: one line of advice; no core file, nothing left in --dir",
      (r.stderr, left))
r = halo("bench", "deconvolve", "--simulate", models, "--repeat", "3", check_rc=2)
check("takes no --repeat" in r.stderr and r.stderr.count("\n") == 1,
      "--simulate --repeat: refused (a simulation repeats itself exactly)", r.stderr)
r, _ = simulate("--ncpu", "200")
check(r.returncode == 1 and "workers in all" in r.stderr and r.stderr.count("\n") == 1,
      "more workers than halo-sim's StarPU has: one line", r.stderr)
broken = path("sim-models-broken")
shutil.rmtree(broken, ignore_errors=True)
shutil.copytree(models, broken)
rl_model = [os.path.join(root, f) for root, _, fs in os.walk(os.path.join(broken, "codelets"))
            for f in fs if f.startswith("halo_rl.")][0]
text = open(rl_model).read()
open(rl_model, "w").write(text[:len(text) // 2])  # cut inside its table
r, _ = simulate("--ncpu", "2", model_dir=broken)
check(r.returncode == 1 and "halo_rl is corrupt" in r.stderr and broken in r.stderr and
      r.stderr.count("\n") == 1, "a corrupt model file: one line naming it", r.stderr)
# A garbled record of the machine's memory was ignored without a word,
# though the chunks in flight it decides changed a prediction 3x.
rec = path("sim-models-ram")
for bad in ("{bad", '{"ram_bytes": "abc"}', '{"ram_bytes": -5}'):
    shutil.rmtree(rec, ignore_errors=True)
    shutil.copytree(models, rec)
    host_json = [os.path.join(rec, "halo", f) for f in os.listdir(os.path.join(rec, "halo"))]
    for f in host_json:
        open(f, "w").write(bad)
    r, _ = simulate("--ncpu", "2", model_dir=rec)
    check(host_json and r.returncode == 1 and r.stderr.count("\n") == 1 and
          host_json[0] in r.stderr, f"a recorded memory of {bad}: one line naming the file",
          r.stderr)
# A kept --dir must not lend the models of an earlier simulation.
keep = path("sim-keep")
shutil.rmtree(keep, ignore_errors=True)
simulate("--ncpu", "2", "--dir", keep)
os.remove(rl_model)
r, _ = simulate("--ncpu", "2", "--dir", keep, model_dir=broken)
check(r.returncode == 1 and "no measurement of the 'halo_rl'" in r.stderr,
      "a kept --dir holds no models of an earlier simulation", r.stderr)
plat = os.path.join(gpu_models, "bus", host + ".platform.v4.xml")
text = open(plat).read()
open(plat, "w").write(text.replace('latency="0.00001s"', 'latency="-1s"'))
r, _ = simulate("--ncuda", "1", model_dir=gpu_models)
check(r.returncode == 1 and "negative" in r.stderr and r.stderr.count("\n") == 1,
      "a GPU link of negative latency: one line", r.stderr)
r = halo("bench", "deconvolve", "--simulate", models, "--dir", os.path.join(models, "work"),
         "--quiet", check_rc=1)
check("only read" in r.stderr and not os.path.exists(os.path.join(models, "work")),
      "--dir inside the recorded models is refused, nothing written there", r.stderr)
r = halo("bench", "rl", "--simulate", models, check_rc=2)
check("deconvolve workload only" in r.stderr, "--simulate rl is refused", r.stderr)

# Models recorded on an H100 beside 16 Xeon cores (bench/models/README.md).
# There a GPU worker ran rl 311x faster than a CPU worker, so a run keeps
# the narrow window, max(24, workers + 4 + 4 x GPUs) = 24 chunks in flight,
# and runs as with --ncpu 0 (the GPU computes, 4 CPU workers read and
# write), as its rl kernel learns from the models before the first read.
H100 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "models", "h100")


def h100(ncpu, inflight=None, ncuda=1):
    js = path("sim-h100.json")
    r = halo("bench", "deconvolve", "--size", "256,1024,2048", "--chunks", "64,256,256",
             "--iterations", "20", "--simulate", H100, "--ncpu", ncpu, "--ncuda", ncuda,
             "--quiet", "--json", js, check_rc=0,
             env={"HALO_INFLIGHT": inflight} if inflight else None)
    return bench_times(js)[1].get((ncpu, ncuda)) if r.returncode == 0 else None


alone, both = h100(0), h100(15)
# Traced there: 1.74 s for the GPU with its I/O workers (in process).
check(alone and 0.5 < alone / 1.74 < 1.5, "H100 models: the GPU alone as traced there",
      alone)
# Without them 16 CPU workers took half the gathers and all the I/O: 1.43 s
# simulated, but on the H100 itself 2.80 s against the GPU alone's 2.36 s.
check(both and abs(both / alone - 1) < 0.05,
      "H100 models: with 15 CPU workers beside it, the GPU's run as with --ncpu 0",
      (both, alone))
narrow, wide = h100(15, "24"), h100(15, "72")
check(both == narrow != wide, "H100 models: a GPU 311x a CPU worker narrows the window to 24",
      (both, narrow, wide))
# With 4 I/O workers whatever the GPUs, 4 of them took 0.98 s (0.65 of one
# GPU's time): at least 4 per GPU now.
four = h100(0, ncuda=4)
check(four and alone and four < 0.5 * alone, "H100 models: I/O workers for 4 GPUs alone",
      (four, alone))
done()
