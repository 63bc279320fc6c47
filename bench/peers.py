#!/usr/bin/python3
"""The peers `halo bench` measures halo against, run on the same machine in
the same invocation. Each peer prints one JSON line:

  {"peer": "scipy", "label": "...", "available": true, "times_s": [...]}
  {"peer": "cupy", "available": false, "reason": "No module named 'cupy'"}

Times exclude the interpreter's start and imports (python is timed from
the first call of the work), and each run follows `--warmup` untimed runs.
rl's peers first run one untimed iteration (FFT plans, kernels, first
touch), as halo's rl does its warm-up in the same process.

  peers.py rl --shape Z,Y,X --psf N --iterations I [--threads T]
  peers.py deconvolve --input IN.zarr --psf PSF.tif --chunks Z,Y,X --depth Z,Y,X
                      --iterations I --out DIR [--compare HALO_OUT.zarr]
  peers.py convert --input IN.zarr --chunks Z,Y,X --out DIR

common: --repeat R --warmup W --threads T --only NAME,NAME

rl: the RL iterations on one float32 chunk (periodic), the seed's way:
numpy.fft (float64 inside), scipy.fft in float32 with workers = threads,
and CuPy (cupy.fft, float32) when cupy imports and sees a GPU; cufft: not
RL but its four cuFFT transforms an iteration alone, through CuPy, the
floor that the library sets under any GPU RL built on it.
deconvolve: the seed's whole pipeline, dask.array.map_overlap of a numpy
RL over a Zarr volume (uint16 -> float32, boundary reflect, depth as halo)
to a float32 Zarr, with dask's threaded scheduler on --threads threads;
with cupy, the same graph with the RL of each block on the GPU. Its Zarr
I/O is python zarr's, or tensorstore's where zarr does not import (the
GPU machines' python 3.12 has tensorstore; Debian's numcodecs is built
for 3.11): the label says which.
convert: rechunking a Zarr volume with python zarr + dask (threaded).
"""
import argparse
import json
import os
import shutil
import sys
import threading
import time


def ints(s):
    return tuple(int(v) for v in s.split(","))


def emit(peer, label, times=None, reason=None, **extra):
    d = {"peer": peer, "label": label, "available": reason is None}
    if reason is None:
        d["times_s"] = times
    else:
        d["reason"] = reason
    d.update(extra)
    print(json.dumps(d), flush=True)


def timed(fn, repeat, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def gaussian_psf(np, n):
    # The same PSF halo bench writes: sigma n/6 on each axis, sum 1.
    g = np.meshgrid(*[np.arange(n) - n // 2] * 3, indexing="ij")
    s = max(n / 6.0, 0.5)
    p = np.exp(-0.5 * sum((a / s) ** 2 for a in g))
    return p / p.sum()


def centred_otf(np, psf, shape, rfftn):
    # PSF zero-padded to shape and rolled so its centre voxel is the origin.
    pad = np.zeros(shape, dtype=psf.dtype)
    pad[tuple(slice(0, n) for n in psf.shape)] = psf
    pad = np.roll(pad, tuple(-(n // 2) for n in psf.shape), axis=(0, 1, 2))
    return rfftn(pad)


def rl_numpy(np, image, psf, iterations, H=None):
    """The seed's RL on one block: numpy.fft, so float64 inside. H: the
    OTF, when made beforehand (rl times the iterations alone, as halo's)."""
    shape = image.shape
    if any(p > s for p, s in zip(psf.shape, shape)):
        raise ValueError("PSF larger than the block")
    if H is None:
        H = centred_otf(np, psf.astype(np.float64), shape, np.fft.rfftn)
    img = image.astype(np.float64)
    est = img.copy()
    for _ in range(iterations):
        conv = np.fft.irfftn(np.fft.rfftn(est) * H, s=shape)
        ratio = img / np.maximum(conv, 1e-12)
        est *= np.fft.irfftn(np.fft.rfftn(ratio) * np.conj(H), s=shape)
    return est.astype(np.float32)


def rl_cupy(cp, image, psf, iterations):
    """The seed's GPU RL on one block: cupy.fft in float32."""
    shape = image.shape
    H = centred_otf(cp, cp.asarray(psf, dtype=cp.float32), shape, cp.fft.rfftn)
    img = cp.asarray(image, dtype=cp.float32)
    est = img.copy()
    for _ in range(iterations):
        conv = cp.fft.irfftn(cp.fft.rfftn(est) * H, s=shape)
        ratio = img / cp.maximum(conv, cp.float32(1e-12))
        est *= cp.fft.irfftn(cp.fft.rfftn(ratio) * cp.conj(H), s=shape)
    return est


def import_cupy():
    try:
        import cupy as cp
        cp.cuda.runtime.getDeviceCount()
        return cp, None
    except Exception as e:  # no module, no driver or no GPU
        return None, str(e).splitlines()[0] if str(e) else type(e).__name__


def peer_rl(a, want):
    import numpy as np
    shape = ints(a.shape)
    rng = np.random.default_rng(0)
    img = (rng.poisson(100, size=shape) + 10).astype(np.float32)
    psf = gaussian_psf(np, a.psf)
    if "numpy" in want:
        H = centred_otf(np, psf.astype(np.float64), shape, np.fft.rfftn)
        rl_numpy(np, img, psf, 1, H)
        t = timed(lambda: rl_numpy(np, img, psf, a.iterations, H), a.repeat, a.warmup)
        emit("numpy", "numpy.fft RL (seed style, float64)", t)
    if "scipy" in want:
        try:
            import scipy.fft
        except ImportError as e:
            emit("scipy", "scipy.fft float32", reason=str(e))
        else:
            H = centred_otf(np, psf.astype(np.float32), shape,
                            lambda x: scipy.fft.rfftn(x, workers=a.threads))

            def run(iterations=a.iterations):
                est = img.copy()
                for _ in range(iterations):
                    f = scipy.fft.rfftn(est, workers=a.threads)
                    conv = scipy.fft.irfftn(f * H, s=shape, workers=a.threads)
                    ratio = img / np.maximum(conv, np.float32(1e-12))
                    f = scipy.fft.rfftn(ratio, workers=a.threads)
                    est *= scipy.fft.irfftn(f * np.conj(H), s=shape, workers=a.threads)
            run(1)
            emit("scipy", f"scipy.fft float32, workers={a.threads}",
                 timed(run, a.repeat, a.warmup))
    gpu_peers = [p for p in ("cupy", "cufft") if p in want]
    cp, why = import_cupy() if gpu_peers else (None, None)
    dev = cp.asarray(img) if cp is not None else None

    def gpu_peer(peer, missing, label, work):
        """One GPU peer: work(iterations) on dev, timed to the end of its
        kernels, after one untimed iteration; missing labels it without
        CuPy or a GPU."""
        if cp is None:
            emit(peer, missing, reason=why)
            return

        def run(iterations=a.iterations):
            work(iterations)
            cp.cuda.Stream.null.synchronize()
        run(1)
        name = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
        emit(peer, f"{label} on {name}", timed(run, a.repeat, a.warmup))

    def transforms_only(iterations):
        x = dev
        for _ in range(2 * iterations):
            x = cp.fft.irfftn(cp.fft.rfftn(x), s=shape)

    if "cupy" in gpu_peers:
        gpu_peer("cupy", "CuPy (seed's GPU code)", "CuPy float32",
                 lambda it: rl_cupy(cp, dev, psf, it))
    if "cufft" in gpu_peers:
        # Not RL: the four transforms of each iteration and nothing else,
        # the time cuFFT itself takes (the floor under any GPU RL on it).
        gpu_peer("cufft", "cuFFT alone (4 transforms an iteration)",
                 "cuFFT alone via CuPy: 4 transforms an iteration, no RL,", transforms_only)


def import_dask(np):
    """dask and dask.array. Debian's dask 2022.12 reads names that numpy 2
    removed (a GPU machine's python may have numpy 2 and only such a dask
    carried to it): alias them to what replaced them, for the peer alone."""
    import sys
    import types
    for old, new in (("round_", "round"), ("in1d", "isin"), ("float_", "float64")):
        if not hasattr(np, old):
            setattr(np, old, getattr(np, new))
    if "numpy.compat" not in sys.modules:
        try:
            import numpy.compat  # noqa: F401
        except ImportError:
            compat = types.ModuleType("numpy.compat")
            compat.basestring = str
            sys.modules["numpy.compat"] = compat
    import dask
    import dask.array as da
    return dask, da


class ZarrIO:
    """Zarr arrays as dask arrays, through python zarr or, where zarr (and
    its numcodecs) cannot be installed, through tensorstore: the peer's
    graph is the same either way."""

    def __init__(self, da):
        self.da = da
        try:
            import zarr  # noqa: F401 (from_zarr and to_zarr need it)
            self.via = None
        except Exception as e:  # missing, or built for another numpy
            try:
                import tensorstore
            except ImportError:
                raise ImportError(str(e)) from None
            self.ts = tensorstore
            self.via = ("tensorstore " + getattr(tensorstore, "__version__", "")).strip()

    def _open(self, path, **kw):
        spec = {"driver": "zarr", "kvstore": {"driver": "file", "path": path}}
        spec.update(kw.pop("spec", {}))
        return self.ts.open(spec, **kw).result()

    def read(self, path):
        if self.via is None:
            return self.da.from_zarr(path)
        with open(os.path.join(path, ".zarray")) as f:
            chunks = tuple(json.load(f)["chunks"])
        return self.da.from_array(TsBlocks(self._open(path, read=True)), chunks=chunks,
                                  lock=False, fancy=False)

    def write(self, y, path):
        if self.via is None:
            return y.to_zarr(path)
        meta = {"shape": list(y.shape), "chunks": [c[0] for c in y.chunks],
                "dtype": y.dtype.str,
                "compressor": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1}}
        out = self._open(path, create=True, delete_existing=True,
                         spec={"metadata": meta})
        self.da.store(y, TsBlocks(out), lock=False)


class TsBlocks:
    """A tensorstore array as dask reads and stores blocks of it."""

    def __init__(self, store):
        import numpy as np
        self.store = store
        self.shape = tuple(store.shape)
        self.dtype = np.dtype(store.dtype.numpy_dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, index):
        return self.store[index].read().result()

    def __setitem__(self, index, value):
        self.store[index].write(value).result()


def zarr_max_rel_diff(dask, zio, np, a, b, threads):
    """max_rel_diff of two Zarr arrays block by block: the seed's volume is
    16 GB of float32 a side, too much to hold twice in float64."""
    x = zio.read(a).astype(np.float64)
    y = zio.read(b).astype(np.float64)
    with dask.config.set(scheduler="threads", num_workers=threads):
        d, m = dask.compute(abs(x - y).max(), abs(y).max())
    return float(d / max(m, 1e-30))


def peer_deconvolve(a, want):
    import numpy as np
    try:
        dask, da = import_dask(np)
        import tifffile
        zio = ZarrIO(da)
    except ImportError as e:
        for p in sorted(want & {"dask", "dask-cupy"}):
            emit(p, "dask.array map_overlap", reason=str(e))
        return
    psf = tifffile.imread(a.psf).astype(np.float64)
    psf /= psf.sum()
    depth = ints(a.depth)
    chunks = ints(a.chunks)
    os.makedirs(a.out, exist_ok=True)
    variants = []
    if "dask" in want:
        variants.append(("dask", f"dask.array map_overlap + numpy RL, {a.threads} threads",
                         lambda b: rl_numpy(np, b, psf, a.iterations)))
    if "dask-cupy" in want:
        cp, why = import_cupy()
        if cp is None:
            emit("dask-cupy", "dask.array map_overlap + CuPy RL", reason=why)
        else:
            # One block on the GPU at a time: the threads read, cast and
            # write beside it, but a dozen seed-sized blocks (each RL
            # holds about seven arrays of the haloed block) at once would
            # not fit in any GPU's memory.
            gpu = threading.Lock()

            def rl_gpu(b):
                with gpu:
                    return cp.asnumpy(rl_cupy(cp, b, psf, a.iterations))
            variants.append(("dask-cupy", "dask.array map_overlap + CuPy RL, one block "
                             f"on the GPU at a time, {a.threads} threads", rl_gpu))
    for peer, label, rl in variants:
        out = os.path.join(a.out, peer + ".zarr")

        def run():
            shutil.rmtree(out, ignore_errors=True)
            x = zio.read(a.input).rechunk(chunks).astype(np.float32)
            y = x.map_overlap(rl, depth=depth, boundary="reflect", dtype=np.float32)
            with dask.config.set(scheduler="threads", num_workers=a.threads):
                zio.write(y, out)
        times = timed(run, a.repeat, a.warmup)
        extra = {}
        if a.compare:
            # Not the peer's work: halo bench takes it off the process's time.
            t0 = time.perf_counter()
            extra["max_rel_diff"] = zarr_max_rel_diff(dask, zio, np, a.compare, out,
                                                      a.threads)
            extra["compare_s"] = time.perf_counter() - t0
        if zio.via:
            label += f", Zarr through {zio.via}"
        emit(peer, label, times, **extra)
        shutil.rmtree(out, ignore_errors=True)


def peer_convert(a, want):
    if "dask" not in want:
        return
    import numpy as np
    try:
        dask, da = import_dask(np)
        import zarr  # noqa: F401 (to_zarr needs it)
    except ImportError as e:
        emit("dask", "python zarr + dask rechunk", reason=str(e))
        return
    out = os.path.join(a.out, "dask-convert.zarr")
    os.makedirs(a.out, exist_ok=True)

    def run():
        shutil.rmtree(out, ignore_errors=True)
        with dask.config.set(scheduler="threads", num_workers=a.threads):
            da.from_zarr(a.input).rechunk(ints(a.chunks)).to_zarr(out)
    emit("dask", f"python zarr + dask rechunk, {a.threads} threads",
         timed(run, a.repeat, a.warmup))
    shutil.rmtree(out, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["rl", "deconvolve", "convert"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--only", default="numpy,scipy,cupy,cufft,dask,dask-cupy")
    ap.add_argument("--shape", default="64,256,256")
    ap.add_argument("--psf", default="15")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--input")
    ap.add_argument("--chunks")
    ap.add_argument("--depth")
    ap.add_argument("--out")
    ap.add_argument("--compare")
    a = ap.parse_args()
    want = set(a.only.split(","))
    try:
        import numpy  # noqa: F401
    except ImportError as e:
        for p in sorted(want):
            emit(p, p, reason=str(e))
        return 0
    if a.workload == "rl":
        a.psf = int(a.psf)
        peer_rl(a, want)
    elif a.workload == "deconvolve":
        peer_deconvolve(a, want)
    else:
        peer_convert(a, want)
    return 0


if __name__ == "__main__":
    sys.exit(main())
