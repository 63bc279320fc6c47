"""TIFF I/O against python3-tifffile, both directions: tifffile writes
(strips or tiles, classic or BigTIFF, ImageJ metadata), halo converts to
Zarr, python compares; halo writes TIFF, tifffile reads it back."""
import glob
import json
import os
import shutil
import struct
import sys
import warnings
import zlib

import numpy as np
import tifffile
import zarr

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import check, done, halo, path  # noqa: E402

rng = np.random.default_rng(99)


def sample(dtype, shape):
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) > 0.5
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt) * 100
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt.newbyteorder("="))


def convert(src, dst, *opts):
    if os.path.isdir(dst):
        shutil.rmtree(dst)
    elif os.path.exists(dst):
        os.remove(dst)
    return halo("convert", src, dst, "--quiet", *opts, check_rc=0)


# 1. tifffile writes every supported sample type, strips and tiles,
# classic and BigTIFF; halo reads them all.
shape = (7, 45, 70)
for dt in ["uint8", "uint16", "uint32", "uint64", "int64", "float16", "float32", "float64"]:
    for layout in ["strips", "tiles", "bigtiff"]:
        data = sample(dt, shape)
        src, dst = path(f"in_{dt}_{layout}.tif"), path("tif_out.zarr")
        kw = {"tile": (16, 32)} if layout == "tiles" else {}
        tifffile.imwrite(src, data, bigtiff=layout == "bigtiff", photometric="minisblack",
                         rowsperstrip=8 if layout == "strips" else None, **kw)
        r = convert(src, dst, "--chunks", "3,20,33")
        got = zarr.open(dst, mode="r")[:] if r.returncode == 0 else None
        check(got is not None and got.dtype == np.dtype(dt) and np.array_equal(got, data),
              f"TIFF {dt} {layout}: values", r.stderr)

# 2. A single page is a 2D image.
data = sample("uint16", (33, 50))
src, dst = path("page.tif"), path("page.zarr")
tifffile.imwrite(src, data)
convert(src, dst)
got = zarr.open(dst, mode="r")
check(got.shape == (33, 50) and np.array_equal(got[:], data), "single-page TIFF is 2D",
      got.shape)
shutil.rmtree(dst)
r = halo("convert", src, dst, check_rc=0)
check(r.returncode == 0 and ": 33x50 uint16, chunks 33x50, 1 chunk in " in r.stdout,
      "the summary line gives a 2D image's shape in 2D", r.stdout)

# 3. ImageJ metadata gives the voxel size, carried into OME-Zarr.
data = sample("uint16", (6, 20, 24))
src, dst = path("imagej.tif"), path("imagej.ome.zarr")
tifffile.imwrite(src, data, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                 metadata={"spacing": 0.8, "unit": "micron", "axes": "ZYX"})
r = convert(src, dst)
ms = json.load(open(os.path.join(dst, ".zattrs")))["multiscales"][0] if r.returncode == 0 else {}
scale = ms.get("datasets", [{}])[0].get("coordinateTransformations", [{}])[0].get("scale")
check(scale is not None and np.allclose(scale, [0.8, 0.25, 0.25], rtol=1e-5),
      "ImageJ spacing and resolution become the OME scale", scale)
check(len(ms.get("axes", [])) == 3 and all(a.get("unit") == "micrometer" for a in ms["axes"]),
      "ImageJ unit 'micron' becomes 'micrometer'", ms.get("axes"))
# A size the file does not store while it stores another (an ImageJ stack
# without spacing, an OME-TIFF with PhysicalSizeX alone, a sequence of
# planes with their pixel size) is taken as ImageJ takes it, and said: an
# OME-Zarr of a sequence showed a 10:1 anisotropy nothing had stated.
os.makedirs(path("noz-seq"), exist_ok=True)
for i in range(3):
    tifffile.imwrite(path(f"noz-seq/p{i}.tif"), data[i], resolution=(1e5, 1e5),
                     resolutionunit="CENTIMETER")
tifffile.imwrite(path("noz-ij.tif"), data, imagej=True, resolution=(4, 4),
                 metadata={"unit": "micron", "axes": "ZYX"})
tifffile.imwrite(path("noz.ome.tif"), data, metadata={"axes": "ZYX", "PhysicalSizeX": 0.2})
for name, line, missing in [
        ("noz-seq", "1x0.1x0.1 micrometer (z: not stored, 1 taken)", ["z"]),
        ("noz-ij.tif", "1x0.25x0.25 micrometer (z: not stored, 1 taken)", ["z"]),
        ("noz.ome.tif", "1x0.2x0.2 micrometer (z: not stored, 1 taken; y: not stored, x's "
         "taken)", ["z", "y"]),
        ("imagej.tif", "0.8x0.25x0.25 micrometer\n", [])]:
    r = halo("info", path(name), check_rc=0)
    j = halo("info", path(name), "--json", check_rc=0)
    got = json.loads(j.stdout).get("voxel_not_stored") if j.returncode == 0 else None
    check("voxel       " + line in r.stdout and got == missing,
          f"{name}: halo info says which voxel sizes the file does not store", (r.stdout, got))
r = halo("convert", path("noz-seq"), path("noz.ome.zarr"), "--overwrite", check_rc=0)
check(r.returncode == 0 and "noz-seq stores no z spacing; the output's voxel is 1x0.1x0.1 "
      "micrometer, taken as ImageJ takes it" in r.stderr,
      "a sequence of planes into OME-Zarr: a note on its z spacing", r.stderr)
# PhysicalSizeZ alone: the pixel size is the one taken.
tifffile.imwrite(path("zonly.ome.tif"), data, metadata={"axes": "ZYX", "PhysicalSizeZ": 2.0})
r = halo("info", path("zonly.ome.tif"), check_rc=0)
check("voxel       2x1x1 micrometer (y: not stored, 1 taken; x: not stored, 1 taken)" in r.stdout,
      "an OME-TIFF with PhysicalSizeZ alone: y and x not stored", r.stdout)
r = halo("convert", path("zonly.ome.tif"), path("zonly.tif"), "--overwrite", check_rc=0)
check("zonly.ome.tif stores no pixel size; the output's voxel is 2x1x1 micrometer" in r.stderr,
      "... and into a TIFF, a note on its pixel size", r.stderr)
# halo run says it too, of a source whose steps reach an OME-Zarr store.
with open(path("noz.json"), "w") as f:
    json.dump({"steps": [{"name": "a", "op": "from_tiff", "path": path("noz-ij.tif")},
                         {"name": "o", "op": "to_zarr", "input": "a", "ome": True,
                          "path": path("noz-run.ome.zarr"), "overwrite": True}]}, f)
r = halo("run", path("noz.json"), check_rc=0)
check(r.returncode == 0 and "noz-ij.tif stores no z spacing" in r.stderr,
      "halo run into an OME-Zarr: the same note", r.stderr)
r = halo("convert", src, path("z-stored.ome.zarr"), "--overwrite", check_rc=0)
check(r.returncode == 0 and "z spacing" not in r.stderr, "... none where the file stores it",
      r.stderr)
# A plain Zarr has no place for it: a note says so (it was lost silently).
r = halo("convert", src, path("imagej.zarr"), check_rc=0)
check(r.returncode == 0 and r.stderr.strip() == f"halo: note: {src}'s voxel size (0.8x0.25x0.25 "
      "micrometer) is not kept: a plain Zarr has no place for it (--ome, an OUT ending in "
      ".ome.zarr, or a TIFF keeps it)", "to a plain Zarr, a note that the voxel size is not kept",
      r.stderr)
# Older ImageJ files spell micro in Latin-1 (one byte 0xB5), as tifffile
# reads it ('µm').
raw = open(src, "rb").read()
open(path("latin1.tif"), "wb").write(raw.replace(b"unit=micron\n", b"unit=\xb5m\n\n\n\n\n"))
check(tifffile.TiffFile(path("latin1.tif")).imagej_metadata.get("unit") == "\u00b5m",
      "the Latin-1 file as tifffile reads it")
r = halo("info", path("latin1.tif"), "--json", check_rc=0)
check(r.returncode == 0 and json.loads(r.stdout)["unit"] == "micrometer",
      "ImageJ unit 'µm' in Latin-1 becomes 'micrometer'", r.stdout + r.stderr)
# ResolutionUnit: ImageJ without a unit takes it from the tag (inches not
# at 72 dpi, a writer's default); another TIFF's resolution counts in
# centimetres (micrometres out) for a single plane only (a stack's z
# would be made up), not in inches.
flat = sample("uint16", (3, 4, 5))
ij = {"axes": "ZYX", "spacing": 2}
cases = [(flat, dict(imagej=True, resolution=(100, 200), resolutionunit="CENTIMETER", metadata=ij),
          [2, 0.005, 0.01], "centimeter"),
         (flat, dict(imagej=True, resolution=(72, 72), resolutionunit="INCH", metadata=ij),
          [2, 1, 1], None),
         (flat, dict(imagej=True, resolution=(300, 300), resolutionunit="INCH", metadata=ij),
          [2, 1 / 300, 1 / 300], "inch"),
         (flat[0], dict(photometric="minisblack", resolution=(1000, 2000), resolutionunit="CENTIMETER"),
          [5, 10], "micrometer"),
         (flat, dict(photometric="minisblack", resolution=(1000, 2000), resolutionunit="CENTIMETER"),
          [1, 1, 1], None),
         (flat, dict(photometric="minisblack", resolution=(72, 72), resolutionunit="INCH"),
          [1, 1, 1], None)]
for i, (arr, kw, want, unit) in enumerate(cases):
    tifffile.imwrite(path(f"resunit{i}.tif"), arr, **kw)
    r = convert(path(f"resunit{i}.tif"), path(f"resunit{i}.ome.zarr"))
    ms = json.load(open(path(f"resunit{i}.ome.zarr/.zattrs")))["multiscales"][0] \
        if r.returncode == 0 else {}
    scale = ms.get("datasets", [{}])[0].get("coordinateTransformations", [{}])[0].get("scale")
    units = {a.get("unit") for a in ms.get("axes", [])}
    check(scale is not None and np.allclose(scale, want, rtol=1e-6) and
          (units == {unit} if unit else units.isdisjoint({"inch", "centimeter"})),
          f"ResolutionUnit: {kw.get('resolutionunit')} {kw['resolution']}, "
          f"imagej={kw.get('imagej', False)}, {arr.ndim}D", (scale, ms.get("axes"), r.stderr))
check(np.array_equal(zarr.open(os.path.join(dst, "0"), mode="r")[:], data),
      "ImageJ TIFF values")

# ImageJ stores a stack over 4 GiB with one directory, its pages following
# the first (tifffile's truncate=True): read in either byte order.
for order in ["<", ">"]:
    data = sample("uint16", (6, 20, 30)).astype(order + "u2")
    src = path(f"contig{order == '>'}.tif")
    tifffile.imwrite(src, data, imagej=True, truncate=True, byteorder=order,
                     metadata={"axes": "ZYX", "spacing": 0.5, "unit": "um"})
    r = convert(src, path("contig.zarr"))
    got = zarr.open(path("contig.zarr"), mode="r")[:] if r.returncode == 0 else None
    check(got is not None and np.array_equal(got, data.astype("u2")),
          f"ImageJ contiguous stack, byte order '{order}': all 6 pages", r.stderr)
# The same from tifffile's own description (shape), not ImageJ's (only the
# first page was read before).
data = sample("float32", (5, 12, 7))
tifffile.imwrite(path("shaped-contig.tif"), data, truncate=True, photometric="minisblack")
r = convert(path("shaped-contig.tif"), path("shaped-contig.zarr"))
check(r.returncode == 0 and np.array_equal(zarr.open(path("shaped-contig.zarr"), mode="r")[:],
                                           data),
      "tifffile's truncate=True without ImageJ: all 5 pages", r.stderr)
raw = open(src, "rb").read()
open(path("contig_cut.tif"), "wb").write(raw[:-100])
r = convert(path("contig_cut.tif"), path("cut.zarr"))
check(r.returncode == 1 and "contig_cut.tif: truncated" in r.stderr, "truncated contiguous stack",
      r.stderr)
# tifffile's and ImageJ's stacks keep each page's directory beside its
# pixels: cut short, the chain breaks, which libtiff words as "Error
# fetching directory count"; cut to 100 bytes, the first directory.
for imagej in [False, True]:
    whole = path("dirs.tif")
    tifffile.imwrite(whole, sample("uint16", (32, 64, 64)), imagej=imagej)
    raw = open(whole, "rb").read()
    for size, needle in [(len(raw) - 50000, f"truncated or corrupt: a page's directory lies past "
                          f"the file's end ({len(raw) - 50000} bytes)"),
                         (100, "not a readable TIFF, truncated or corrupt (100 bytes)")]:
        open(path("dirs_cut.tif"), "wb").write(raw[:size])
        r = halo("info", path("dirs_cut.tif"), check_rc=1)
        check(r.stderr.startswith(f"halo: {path('dirs_cut.tif')}: {needle}") and
              len(r.stderr.splitlines()) == 1,
              f"{'an ImageJ' if imagej else 'a tifffile'} stack cut to {size} bytes: truncated",
              r.stderr)

# OME-TIFF: physical sizes and unit become the voxel size.
data = sample("uint16", (6, 16, 16))
tifffile.imwrite(path("one.ome.tif"), data, metadata={
    "axes": "ZYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 0.5,
    "PhysicalSizeXUnit": "nm"})
r = convert(path("one.ome.tif"), path("one.ome.zarr"))
ms = json.load(open(path("one.ome.zarr/.zattrs")))["multiscales"][0] if r.returncode == 0 else {}
# Y and Z have OME's default unit, micrometres: in x's nanometres they are
# 1000x larger (all three were taken as nanometres).
check(ms and ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [500, 200, 0.1]
      and ms["axes"][2]["unit"] == "nanometer"
      and np.array_equal(zarr.open(path("one.ome.zarr/0"), mode="r")[:], data),
      "OME-TIFF: PhysicalSize* and units, per axis, carried into OME-Zarr", (ms, r.stderr))
check(ms and "method" not in ms["metadata"], "OME: no downsampling method without a pyramid",
      ms.get("metadata"))
# An OME-Zarr whose axes have different units: one unit, sizes converted.
g = zarr.open_group(path("mixu.ome.zarr"), mode="w")
g.create_dataset("0", data=data)
g.attrs["multiscales"] = [{"version": "0.4", "axes": [
    {"name": "z", "type": "space", "unit": "micrometer"},
    {"name": "y", "type": "space", "unit": "nanometer"},
    {"name": "x", "type": "space", "unit": "nanometer"}],
    "datasets": [{"path": "0", "coordinateTransformations": [
        {"type": "scale", "scale": [0.5, 100, 100]}]}]}]
r = halo("info", path("mixu.ome.zarr"), "--json", check_rc=0)
j = json.loads(r.stdout) if r.returncode == 0 else {}
check(j.get("voxel") == [500, 100, 100] and j.get("unit") == "nanometer",
      "OME-Zarr axes in different units: one unit (sizes exact)", j)
# A size not given stays 1, whatever its unit would have been.
tifffile.imwrite(path("noz.ome.tif"), data, metadata={
    "axes": "ZYX", "PhysicalSizeX": 100.0, "PhysicalSizeY": 100.0, "PhysicalSizeXUnit": "nm",
    "PhysicalSizeYUnit": "nm"})
r = halo("info", path("noz.ome.tif"), "--json", check_rc=0)
j = json.loads(r.stdout) if r.returncode == 0 else {}
check(j.get("voxel") == [1, 100, 100], "OME-TIFF without PhysicalSizeZ: z stays 1", j)
# An output named *.ome.tif is an OME-TIFF (Bio-Formats trusts the name):
# OME-XML with the voxel size in OME's unit symbols, any type, 2D or 3D;
# tifffile reads it as OME and halo reads the size back.
for name, src_data, opts in [("o3.ome.tif", data, []), ("o2.ome.tiff", data[0], []),
                              ("o3f.ome.tif", data, ["--dtype", "float64"])]:
    src = path("ome_src.zarr")
    shutil.rmtree(src, ignore_errors=True)
    zs = zarr.open(src, mode="w", shape=src_data.shape, chunks=src_data.shape, dtype=src_data.dtype)
    zs[:] = src_data
    g = zarr.open_group(path("ome_in.ome.zarr"), mode="w")
    g.create_dataset("0", data=src_data, chunks=src_data.shape)
    nd = src_data.ndim
    g.attrs["multiscales"] = [{"version": "0.4", "axes": [
        {"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"[3 - nd:]],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [500.0, 100.0, 100.0][3 - nd:]}]}]}]
    r = convert(path("ome_in.ome.zarr"), path(name), *opts)
    t = tifffile.TiffFile(path(name)) if r.returncode == 0 else None
    px = {}
    if t is not None and t.is_ome:
        import xml.etree.ElementTree as ET
        px = ET.fromstring(t.ome_metadata).find(".//{*}Pixels").attrib
    want = {"SizeX": str(src_data.shape[-1]), "SizeY": str(src_data.shape[-2]),
            "SizeZ": str(src_data.shape[0]) if nd == 3 else "1", "PhysicalSizeX": "100",
            "PhysicalSizeXUnit": "nm", "PhysicalSizeY": "100", "DimensionOrder": "XYZCT",
            "Type": "double" if opts else {"<u2": "uint16"}.get(src_data.dtype.str, "?")}
    if nd == 3:
        want.update(PhysicalSizeZ="500", PhysicalSizeZUnit="nm")
    back = halo("info", path(name), "--json", check_rc=0)
    vox = json.loads(back.stdout).get("voxel") if back.returncode == 0 else None
    check(t is not None and t.is_ome and all(px.get(k) == v for k, v in want.items()) and
          np.array_equal(t.asarray(), src_data) and
          vox == ([500, 100, 100] if nd == 3 else [100, 100]),
          f"{name}: an OME-TIFF (OME-XML, voxel size in nm), read back", (px, vox))
# OME's PixelType has no 64-bit integers or float16, and halo writes no
# bool TIFF: refused, in one line, nothing written.
for name, dt, msg in [("o64.ome.tif", "int64", "OME-TIFF has no int64 pixel type"),
                      ("o16.ome.tif", "float16", "OME-TIFF has no float16 pixel type"),
                      ("ob.tif", "bool", "halo writes no bool TIFF")]:
    r = convert(path("ome_in.ome.zarr"), path(name), "--dtype", dt)
    check(r.returncode == 1 and r.stderr.count("\n") == 1 and msg in r.stderr and
          not [f for f in os.listdir(path("")) if name.split(".")[0] in f],
          f"{dt} to {name}: refused, nothing written", r.stderr)
# ImageJ "cm" is NGFF's "centimeter"; "pixel" is no length: no unit.
for unit, want in [("cm", "centimeter"), ("pixel", None)]:
    tifffile.imwrite(path("unit.tif"), data, imagej=True,
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": unit})
    r = convert(path("unit.tif"), path("unit.ome.zarr"))
    got = json.load(open(path("unit.ome.zarr/.zattrs")))["multiscales"][0]["axes"][0].get("unit") \
        if r.returncode == 0 else None
    check(got == want, f"ImageJ unit {unit!r} -> {want!r}", (got, r.stderr))

# tifffile stores some 3D arrays in one page that is no plane of them: a
# last axis of 1 as one Z x Y page, a first axis of 3 or 4 as one RGB
# page of separate sample planes (a 3-plane PSF saved without
# photometric="minisblack" was refused). They read as tifffile reads them,
# strips or tiles, compressed or not.
layouts = [((1, 5, 1), "uint16", dict(photometric="minisblack")),
           ((5, 4, 1), "float32", {}), ((40, 7, 1), "int16", dict(compression="zlib")),
           ((3, 40, 50), "uint16", {}), ((4, 33, 20), "float64", dict(compression="zlib")),
           ((3, 32, 48), "int16", dict(tile=(16, 16))), ((3, 3, 3), "uint16", dict(planarconfig="separate"))]
for shape, dt, kw in layouts:
    p = path("onepage.tif")
    want = sample(dt, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tifffile.imwrite(p, want, **kw)
        got = tifffile.imread(p)
    r = convert(p, path("onepage.zarr"))
    check(r.returncode == 0 and got.shape == shape and np.array_equal(got, want) and
          np.array_equal(zarr.open(path("onepage.zarr"), mode="r")[:], want),
          f"tifffile's one-page {shape} {dt} {kw} reads as tifffile reads it", r.stderr)
# Interleaved samples (colour, or a last axis of 3 tifffile took for it)
# stay refused, with the way out named.
p = path("lastthree.tif")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    tifffile.imwrite(p, sample("float32", (3, 3, 3)))
r = halo("info", p, check_rc=0)
check(r.returncode == 1 and "3 samples per pixel" in r.stderr and "minisblack" in r.stderr and
      len(r.stderr.splitlines()) == 1, "a last axis of 3 stored as RGB: refused, saying how to save it",
      r.stderr)
# Two samples saved as minisblack: that advice would not help.
p = path("twosamples.tif")
tifffile.imwrite(p, np.zeros((30, 40, 2), np.uint8), photometric="minisblack", extrasamples=[2])
r = halo("info", p, check_rc=0)
check(r.returncode == 1 and "2 samples per pixel" in r.stderr and "minisblack" not in r.stderr and
      "split the channels" in r.stderr, "two samples in minisblack: refused, not told to use minisblack",
      r.stderr)

# Stacks of several channels or time points: ImageJ hyperstacks (planes
# c fastest, then z, then t) and OME-TIFFs (in their DimensionOrder) are
# read one channel at one time, as --channel and --time pick it; without
# them, refused rather than read as z.
a = sample("uint16", (2, 3, 2, 8, 8))  # t, z, c, y, x
tifffile.imwrite(path("hyper.tif"), a, imagej=True, metadata={"axes": "TZCYX", "spacing": 0.5,
                                                              "unit": "um"})
tifffile.imwrite(path("hyper_one_dir.tif"), a, imagej=True, truncate=True,
                 metadata={"axes": "TZCYX"})
tifffile.imwrite(path("hyper2d.tif"), a[0, 0], imagej=True, metadata={"axes": "CYX"})
tifffile.imwrite(path("chan.ome.tif"), a[0], metadata={"axes": "ZCYX"})
tifffile.imwrite(path("tc.ome.tif"), a.transpose(2, 0, 1, 3, 4), metadata={"axes": "CTZYX"})
cases = [("hyper.tif", lambda t, c: a[t, :, c], 2), ("hyper_one_dir.tif", lambda t, c: a[t, :, c], 2),
         ("hyper2d.tif", lambda t, c: a[0, 0, c], 1), ("chan.ome.tif", lambda t, c: a[0, :, c], 1),
         ("tc.ome.tif", lambda t, c: a[t, :, c], 2)]
for name, want, times in cases:
    for t in range(times):
        for c in range(2):
            opts = ["--channel", str(c)] + (["--time", str(t)] if times > 1 else [])
            r = convert(path(name), path("picked.zarr"), *opts)
            got = zarr.open(path("picked.zarr"), mode="r")[:] if r.returncode == 0 else None
            check(got is not None and np.array_equal(got, want(t, c)),
                  f"{name}: {' '.join(opts)} reads that one", r.stderr)
r = halo("info", path("hyper.tif"), "--json", check_rc=0)
i = json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr}
check(i.get("channels") == 2 and i.get("times") == 2 and i.get("shape") == [3, 8, 8] and
      i.get("voxel") == [0.5, 1, 1], "halo info of an ImageJ hyperstack: its counts, its slices", i)
# A hyperstack as the PSF: refused, naming the PSF's own options
# (--channel picks IN's channel); with them, the same as that PSF alone.
r = halo("deconvolve", path("picked.zarr"), path("hyper.tif"), path("psf_out.zarr"), check_rc=0)
check(r.returncode == 1 and r.stderr.strip().endswith(
      "2 channels (an ImageJ hyperstack) and 2 time points; halo reads one channel at one time "
      "(--psf-channel N and --psf-time N pick one)"),
      "a hyperstack PSF: refused, naming --psf-channel and --psf-time", r.stderr)
convert(path("hyper.tif"), path("psf_one.tif"), "--channel", "1", "--time", "1")
outs = {}
for name, psf, opts in [("one", "psf_one.tif", []),
                        ("picked", "hyper.tif", ["--psf-channel", "1", "--psf-time", "1"])]:
    r = halo("deconvolve", path("picked.zarr"), path(psf), path(f"psf_{name}.zarr"),
             "--iterations", "3", "--overwrite", "--quiet", *opts, check_rc=0)
    outs[name] = zarr.open(path(f"psf_{name}.zarr"), mode="r")[:] if r.returncode == 0 else None
check(outs["one"] is not None and outs["picked"] is not None and
      np.array_equal(outs["one"], outs["picked"]),
      "--psf-channel 1 --psf-time 1 of a hyperstack PSF: as that PSF extracted", r.stderr)
with open(path("psfpick.json"), "w") as f:
    json.dump({"steps": [
        {"name": "a", "op": "from_zarr", "path": path("picked.zarr")},
        {"name": "d", "op": "map_overlap", "kernel": "richardson_lucy", "input": "a", "depth": 2,
         "psf": path("hyper.tif"), "psf_channel": 1, "psf_time": 1, "iterations": 3},
        {"name": "o", "op": "to_zarr", "input": "d", "path": path("psfpick.zarr"),
         "overwrite": True}]}, f)
r = halo("run", path("psfpick.json"), "--quiet", check_rc=0)
ref = halo("deconvolve", path("picked.zarr"), path("psf_one.tif"), path("psf_ov.zarr"),
           "--iterations", "3", "--overwrite", "--quiet", "--mode", "overlap", "--depth", "2",
           check_rc=0)
check(r.returncode == 0 and ref.returncode == 0 and
      np.allclose(zarr.open(path("psfpick.zarr"), mode="r")[:],
                  zarr.open(path("psf_ov.zarr"), mode="r")[:], rtol=1e-5, atol=1e-6),
      "a pipeline's \"psf_channel\" and \"psf_time\": as that PSF extracted", r.stderr)
# Many channels: each slice is many pages on (TIFFSetDirectory walked
# the directory chain from the start for each: quadratic).
many = np.zeros((1, 40, 70, 4, 4), np.uint16)
many[0, :, 5] = np.arange(40)[:, None, None]
tifffile.imwrite(path("many.tif"), many, imagej=True, metadata={"axes": "TZCYX"})
r = convert(path("many.tif"), path("picked.zarr"), "--channel", "5")
check(r.returncode == 0 and np.array_equal(zarr.open(path("picked.zarr"), mode="r")[:],
                                           many[0, :, 5]),
      "a hyperstack of 70 channels: --channel 5", r.stderr)
tifffile.imwrite(path("vol.tif"), sample("uint16", (8, 32, 32)), tile=(4, 16, 16), volumetric=True)
for name, needle in [("hyper.tif", "2 channels (an ImageJ hyperstack) and 2 time points; halo "
                      "reads one channel at one time (--channel N and --time N pick one)"),
                     ("chan.ome.tif", "2 channels (an OME-TIFF); halo reads one channel at one "
                      "time (--channel N picks one)"),
                     ("vol.tif", "a volumetric (ImageDepth 8)")]:
    r = convert(path(name), path("refused.zarr"))
    check(r.returncode == 1 and f"{name}: {needle}" in r.stderr and
          not os.path.exists(path("refused.zarr")), f"{name}: refused, one line", r.stderr)

# 4. halo writes TIFF; tifffile reads it (pages in order, metadata kept).
for dt in ["uint16", "float32", "uint8"]:
    data = sample(dt, (37, 21, 30))
    src, dst = path(f"z_{dt}.zarr"), path(f"out_{dt}.tif")
    z = zarr.open(src, mode="w", shape=data.shape, chunks=(5, 8, 8), dtype=dt)
    z[:] = data
    r = convert(src, dst)
    got = tifffile.imread(dst) if r.returncode == 0 else None
    check(got is not None and got.dtype == np.dtype(dt) and np.array_equal(got, data),
          f"halo-written TIFF ({dt}, 37 pages) read by tifffile", r.stderr)

# Page data lie one after another, as ImageJ (which reads a stack whose
# description counts its images from the first page on) and tifffile
# (which does too when the directories allow) expect: 2 and 3 pages of any
# size, and the types ImageJ lacks (tifffile's JSON description instead).
for dt, shape in [("uint16", (2, 300, 400)), ("float32", (2, 4, 5)), ("float32", (3, 4, 5)),
                  ("float64", (2, 6, 7)), ("int32", (5, 6, 7)), ("int8", (2, 3, 3))]:
    data = sample(dt, shape)
    src, dst = path("few.zarr"), path("few.tif")
    zarr.open(src, mode="w", shape=shape, chunks=(1,) + shape[1:], dtype=dt)[:] = data
    r = convert(src, dst)
    if r.returncode:
        check(False, f"{dt} {shape} to TIFF", r.stderr)
        continue
    tf = tifffile.TiffFile(dst)
    offs = [p.dataoffsets[0] for p in tf.pages]
    page = int(np.prod(shape[1:])) * np.dtype(dt).itemsize
    check(np.array_equal(tf.asarray(), data) and
          offs == [offs[0] + k * page for k in range(shape[0])] and
          (tf.is_imagej if dt in ("uint16", "float32") else tf.is_shaped),
          f"{dt} {shape}: pages contiguous, read by tifffile", (offs, r.stderr))
    tf.close()

# A 2D array stays 2D and a 3D one of one plane 3D, for tifffile and for
# halo, whatever the type (uint32 2D came back 3D, uint16 (1, Y, X) 2D).
for dt in ["uint8", "uint16", "int16", "float32", "uint32", "int8", "int32", "float64", "int64",
           "uint64", "float16"]:
    for shape in [(13, 17), (1, 13, 17)]:
        data = sample(dt, shape)
        src, dst = path("nd.zarr"), path("nd.tif")
        zarr.open(src, mode="w", shape=shape, chunks=shape, dtype=dt)[:] = data
        r = convert(src, dst)
        got = tifffile.imread(dst) if r.returncode == 0 else None
        back = halo("info", dst, "--json", check_rc=0)
        hshape = json.loads(back.stdout).get("shape") if back.returncode == 0 else None
        check(got is not None and got.shape == shape and np.array_equal(got, data) and
              hshape == list(shape), f"{dt} {shape} to TIFF keeps its dimensions",
              (None if got is None else got.shape, hshape, r.stderr))

# The OME voxel size round-trips through TIFF's ImageJ metadata.
src = dst
back = path("back.ome.zarr")
data = sample("uint16", (4, 16, 16))
tifffile.imwrite(path("vox.tif"), data, imagej=True, resolution=(2.0, 2.0),
                 metadata={"spacing": 1.5, "unit": "micron", "axes": "ZYX"})
convert(path("vox.tif"), path("vox_out.tif"))
with tifffile.TiffFile(path("vox_out.tif")) as t:
    ij = t.imagej_metadata or {}
    xres = t.pages[0].tags["XResolution"].value
check(abs(float(ij.get("spacing", 0)) - 1.5) < 1e-6 and ij.get("unit") == "micron",
      "TIFF output keeps ImageJ spacing and unit", ij)
check(abs(xres[0] / xres[1] - 2.0) < 1e-4, "TIFF output keeps the x resolution", xres)
# The types ImageJ lacks keep X and Y resolution tags too, beside the JSON
# description, for readers of neither.
r = convert(path("vox.tif"), path("vox64.tif"), "--dtype", "float64")
with tifffile.TiffFile(path("vox64.tif")) as t:
    res = (t.pages[0].tags["XResolution"].value, t.pages[0].tags["YResolution"].value) \
        if "XResolution" in t.pages[0].tags else None
    shaped = t.is_shaped
back = halo("info", path("vox64.tif"), "--json", check_rc=0)
vox = json.loads(back.stdout).get("voxel") if back.returncode == 0 else None
check(r.returncode == 0 and shaped and res is not None and
      all(abs(v[0] / v[1] - 2.0) < 1e-4 for v in res) and np.allclose(vox, [1.5, 0.5, 0.5]),
      "float64 TIFF output: X and Y resolution beside the JSON description", (res, vox))
# Without a unit too (ImageJ "pixel", or none): y and x were written as 1.
tifffile.imwrite(path("px.tif"), data, imagej=True, resolution=(2.0, 4.0),
                 metadata={"spacing": 3.0, "unit": "pixel", "axes": "ZYX"})
convert(path("px.tif"), path("px_out.tif"))
r = halo("info", path("px_out.tif"), "--json", check_rc=0)
vox = json.loads(r.stdout).get("voxel") if r.returncode == 0 else None
check(vox is not None and np.allclose(vox, [3.0, 0.25, 0.5]),
      "TIFF output keeps y and x pixel sizes without a unit", (vox, r.stderr))
# ImageJ's origin (in pixels: voxel i lies at (i - origin) * size) is the
# position of voxel 0, and goes back out in pixels, or in tifffile's JSON
# description for the types ImageJ lacks.
tifffile.imwrite(path("at.tif"), data, imagej=True, resolution=(5.0, 5.0),
                 metadata={"spacing": 0.5, "unit": "um", "axes": "ZYX", "xorigin": 10,
                           "yorigin": -4, "zorigin": 2})
r = halo("info", path("at.tif"), "--json", check_rc=0)
at = json.loads(r.stdout).get("origin") if r.returncode == 0 else None
check(at is not None and np.allclose(at, [-1.0, 0.8, -2.0]),
      "ImageJ xorigin, yorigin, zorigin read as the position of voxel 0", (at, r.stderr))
for dtype, name in [("uint16", "at_out.tif"), ("float64", "at_out64.tif")]:
    convert(path("at.tif"), path(name), "--dtype", dtype)
    r = halo("info", path(name), "--json", check_rc=0)
    back = json.loads(r.stdout).get("origin") if r.returncode == 0 else None
    check(back is not None and np.allclose(back, at), f"{dtype} TIFF output keeps the origin",
          (back, r.stderr))
with tifffile.TiffFile(path("at_out.tif")) as t:
    ij = t.imagej_metadata or {}
check([ij.get(k) for k in ("xorigin", "yorigin", "zorigin")] == [10, -4, 2],
      "TIFF output writes ImageJ's origins in pixels", ij)
r = halo("info", path("vox.tif"), "--json", check_rc=0)
check(r.returncode == 0 and json.loads(r.stdout).get("origin") == [0, 0, 0] and "-0" not in r.stdout,
      "an ImageJ TIFF without origins: origin 0 (not -0)", r.stdout)
# A plain TIFF's dots per inch are no voxel size.
tifffile.imwrite(path("dpi.tif"), data, photometric="minisblack", resolution=(72, 72))
r = halo("info", path("dpi.tif"), "--json", check_rc=0)
check(r.returncode == 0 and json.loads(r.stdout).get("voxel") == [1, 1, 1],
      "a plain TIFF's 72 dpi is no voxel size", r.stdout)
# An OME-Zarr unit is read as NGFF's name, or none: a unit holding
# "\nchannels=2" went verbatim into the ImageJ description, and halo then
# refused its own TIFF as a hyperstack.
for unit, want in [("um", "micron"), ("um\nchannels=2", None)]:
    om = path("unit-in.ome.zarr")
    shutil.rmtree(om, ignore_errors=True)
    zarr.open(os.path.join(om, "0"), mode="w", shape=(2, 4, 4), dtype="<u2")[:] = 7
    open(os.path.join(om, ".zgroup"), "w").write('{"zarr_format": 2}')
    axes = [{"name": n, "type": "space", "unit": unit} for n in "zyx"]
    json.dump({"multiscales": [{"version": "0.4", "axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [2, 1, 1]}]}]}]},
        open(os.path.join(om, ".zattrs"), "w"))
    r = convert(om, path("unit-out.tif"))
    back = halo("info", path("unit-out.tif"), "--json", check_rc=0)
    ij = tifffile.TiffFile(path("unit-out.tif")).imagej_metadata if r.returncode == 0 else {}
    check(r.returncode == 0 and back.returncode == 0 and (ij or {}).get("unit") == want
          and "channels" not in (ij or {}), f"OME unit {unit!r} -> ImageJ unit {want!r}",
          (r.stderr, back.stderr, ij))

# 5. A float32 TIFF converted to uint16 Zarr rounds and saturates.
data = (rng.standard_normal((3, 10, 10)) * 40000).astype("float32")
tifffile.imwrite(path("f.tif"), data, photometric="minisblack")
convert(path("f.tif"), path("f.zarr"), "--dtype", "uint16")
expect = np.clip(np.rint(data.astype(np.float64)), 0, 65535).astype("uint16")
check(np.array_equal(zarr.open(path("f.zarr"), mode="r")[:], expect),
      "TIFF float32 -> Zarr uint16 rounds and saturates")

# A deflate last strip written full height (libtiff accepts it, for files
# in the wild): libtiff 4.5 decoded its last sample wrong (4.7e-41 for
# 1516.25); it is decoded whole and its rows kept.
p = path("lastfull.tif")
a = np.arange(37 * 41, dtype=np.float32).reshape(37, 41) + 0.25
tifffile.imwrite(p, a, compression="zlib", rowsperstrip=8)
with tifffile.TiffFile(p) as f:
    ot, ct = f.pages[0].tags["StripOffsets"], f.pages[0].tags["StripByteCounts"]
    fmt = {3: "<H", 4: "<I", 16: "<Q"}
    ofmt, cfmt = fmt[int(ot.dtype)], fmt[int(ct.dtype)]
tall = np.full((8, 41), 99, np.float32)
tall[:5] = a[32:]
data = zlib.compress(tall.tobytes())
b = bytearray(open(p, "rb").read())
struct.pack_into(ofmt, b, ot.valueoffset + 4 * struct.calcsize(ofmt), len(b))
struct.pack_into(cfmt, b, ct.valueoffset + 4 * struct.calcsize(cfmt), len(data))
open(p, "wb").write(bytes(b) + data)
r = convert(p, path("lastfull.zarr"))
check(r.returncode == 0 and np.array_equal(zarr.open(path("lastfull.zarr"), mode="r")[:], a),
      "a deflate last strip written full height: every value", r.stderr)
# One that inflates past a whole strip (8 KiB to 64 MiB here) is refused
# as it reaches that size: halo allocated all it decoded to.
data = zlib.compress(bytes(64 << 20), 9)
struct.pack_into(cfmt, b, ct.valueoffset + 4 * struct.calcsize(cfmt), len(data))
open(p, "wb").write(bytes(b) + data)
r = convert(p, path("lastfull.zarr"))
check(r.returncode == 1 and p + ": page 0" in r.stderr and
      "its deflate data decode to more than a whole strip" in r.stderr and
      r.stderr.count("\n") == 1, "a deflate strip that inflates past a whole strip: refused",
      r.stderr)
# ... whose RowsPerStrip says 2^31 (the strip was sized from it, not from
# the image's height): the same.
p = path("bomb.tif")
tifffile.imwrite(p, np.zeros((64, 64), np.uint8), compression="zlib", rowsperstrip=64)
with tifffile.TiffFile(p) as f:
    tags = f.pages[0].tags
    rt, ot, ct = tags["RowsPerStrip"], tags["StripOffsets"], tags["StripByteCounts"]
    fmt = {3: "<H", 4: "<I", 16: "<Q"}
b = bytearray(open(p, "rb").read())
data = zlib.compress(bytes(64 << 20), 9)
struct.pack_into("<I", b, rt.offset + 8, 1 << 31)  # its value, in the entry
struct.pack_into(fmt[int(ot.dtype)], b, ot.offset + 8, len(b))
struct.pack_into(fmt[int(ct.dtype)], b, ct.offset + 8, len(data))
open(p, "wb").write(bytes(b) + data)
r = convert(p, path("bomb.zarr"))
check(r.returncode == 1 and "its deflate data decode to more than a whole strip" in r.stderr,
      "... with RowsPerStrip 2^31: refused too", r.stderr)

# OME-XML as XML allows it: white space other than one space after the
# element name and around '=', single quotes, a namespace prefix (a
# newline after <Pixels hid the channel count and the voxel size).
def info(f):
    r = halo("info", f, "--json", check_rc=0)
    return json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr}


head = '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0">'
pix = ('{open}\n  ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" SizeX="16" SizeY="16" '
       'SizeZ = \'{z}\' SizeC="{c}" SizeT="1"\t PhysicalSizeX=\'0.1\' PhysicalSizeXUnit=\'nm\' '
       'PhysicalSizeY="0.1" PhysicalSizeYUnit="nm" PhysicalSizeZ="0.5" PhysicalSizeZUnit="um">'
       '<TiffData IFD="0" PlaneCount="{n}"/>{close}</Image></OME>')


def ome_info(name, pages, z, c=1, n=None, opn="<Pixels", cls="</Pixels>"):
    """halo info of a TIFF of `pages` pages whose OME-XML is pix's."""
    tifffile.imwrite(path(name), np.zeros((pages, 16, 16), "u2"), photometric="minisblack",
                     metadata=None, description=head + pix.format(open=opn, close=cls, z=z, c=c,
                                                                  n=pages if n is None else n))
    return info(path(name))


for opn, cls in [("<Pixels", "</Pixels>"), ("<ome:Pixels", "</ome:Pixels>")]:
    i = ome_info("ws.ome.tif", 3, 3, opn=opn, cls=cls)
    check(i.get("shape") == [3, 16, 16] and i.get("unit") == "nanometer" and
          np.allclose(i.get("voxel", 0), [500, 0.1, 0.1]),
          f"OME-XML with {opn} and white space, single quotes: shape and voxel size (in nm)", i)
i = ome_info("ws2c.ome.tif", 6, 3, c=2)
check(i.get("channels") == 2 and i.get("shape") == [3, 16, 16],
      "... two channels behind a newline: 2 channels of 3 planes, not 6 planes", i)
# A '>' or another attribute's name inside a value comes before the sizes
# (the search stopped at the first '>' and read no voxel size).
i = ome_info("gt.ome.tif", 3, 3, opn='<Pixels Name="a>b SizeZ=\'9\' PhysicalSizeZ=\'7\'"')
check(i.get("shape") == [3, 16, 16] and np.allclose(i.get("voxel", 0), [500, 0.1, 0.1]),
      "OME-XML with '>' and attribute names inside a value: the sizes after it", i)
# One in-plane size alone, as tifffile writes what it is given: pixels
# are square (y was 1 um beside x's 0.1).
tifffile.imwrite(path("xonly.ome.tif"), np.zeros((3, 16, 16), "u2"),
                 metadata={"axes": "ZYX", "PhysicalSizeX": 0.1, "PhysicalSizeZ": 0.3})
i = info(path("xonly.ome.tif"))
check(np.allclose(i.get("voxel", 0), [0.3, 0.1, 0.1]) and i.get("unit") == "micrometer",
      "OME-TIFF with PhysicalSizeX and no PhysicalSizeY: square pixels", i)
# A SizeZ the file does not have: cut short, or one file of several.
check("says 8 planes but the file has 4" in ome_info("short.ome.tif", 4, 8, n=8).get("error", ""),
      "an OME-TIFF of 4 pages whose OME-XML says 8 planes is refused")
# ImageJ names the z unit where it differs from x's (zunit=): 0.5 um of z
# beside 100 nm of y and x is 500 nm, not 0.5.
tifffile.imwrite(path("zunit.tif"), np.zeros((4, 16, 16), "u2"), photometric="minisblack",
                 metadata=None, resolution=(1 / 100, 1 / 100), resolutionunit="NONE",
                 description="ImageJ=1.53t\nimages=4\nslices=4\nunit=nm\nzunit=micron\n"
                             "spacing=0.5\nloop=false\n")
i = info(path("zunit.tif"))
check(np.allclose(i.get("voxel", 0), [500, 100, 100]) and i.get("unit") == "nanometer",
      "ImageJ's zunit: the z spacing in x's unit", i)

# OME-TIFF's TiffData maps planes to pages: pages stored z by z per
# channel, planes declared channel-fastest (XYCZT) with one TiffData per
# plane. The planes were taken in DimensionOrder's sequence (wrong z and
# channel); tifffile reads the series as the mapping says.
Z, C = 3, 2
vol = sample("uint16", (C, Z, 6, 7))
td = "".join(f'<TiffData IFD="{c * Z + z}" FirstZ="{z}" FirstC="{c}" PlaneCount="1"/>'
             for c in range(C) for z in range(Z))
mapped = (head + f'<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="7" '
          f'SizeY="6" SizeZ="{Z}" SizeC="{C}" SizeT="1">{td}</Pixels></Image></OME>')


def write_mapped(name, xml):
    tifffile.imwrite(path(name), vol.reshape(C * Z, 6, 7), photometric="minisblack",
                     metadata=None, description=xml)
    return path(name)


f = write_mapped("mapped.ome.tif", mapped)
with tifffile.TiffFile(f) as t:
    oracle = t.series[0].asarray()  # (Z, C, Y, X)
for c in range(C):
    r = convert(f, path("mapped.zarr"), "--channel", str(c))
    got = zarr.open(path("mapped.zarr"), mode="r")[:] if r.returncode == 0 else None
    check(got is not None and np.array_equal(got, vol[c]) and np.array_equal(got, oracle[:, c]),
          f"OME-TIFF TiffData mapping: channel {c} as tifffile reads it", r.stderr)
for what, xml, want in [
        ("a plane in no TiffData", mapped.replace('<TiffData IFD="5" FirstZ="2" FirstC="1" '
                                                  'PlaneCount="1"/>', ""),
         "puts the plane at z 2, channel 1, time point 0 in no page"),
        ("a plane in another file", mapped.replace(
            'IFD="5" FirstZ="2" FirstC="1" PlaneCount="1"/>',
            'IFD="5" FirstZ="2" FirstC="1" PlaneCount="1"><UUID FileName="b.ome.tif">'
            'urn:uuid:1</UUID></TiffData>'), "puts planes in another file (b.ome.tif)"),
        ("a plane in the file of another UUID (no FileName)", mapped.replace(
            "<OME ", '<OME UUID="urn:uuid:1" ').replace(
            'IFD="5" FirstZ="2" FirstC="1" PlaneCount="1"/>',
            'IFD="5" FirstZ="2" FirstC="1" PlaneCount="1"><UUID>urn:uuid:2</UUID></TiffData>'),
         "puts planes in another file (urn:uuid:2)"),
        ("a SizeX other than the pages'", mapped.replace('SizeX="7"', 'SizeX="8"'),
         "its OME-XML says SizeY 6 and SizeX 8, its pages are 6x7"),
        ("a page past the file's", mapped.replace('IFD="5"', 'IFD="9"'),
         "puts a plane in page 9, but the file has 6"),
        ("a FirstC past SizeC", mapped.replace('FirstC="1"', 'FirstC="2"', 1),
         "has a TiffData at channel 2 of 2")]:
    r = convert(write_mapped("badmap.ome.tif", xml), path("badmap.zarr"), "--channel", "0")
    check(r.returncode == 1 and want in r.stderr and r.stderr.count("\n") == 1
          and not os.path.exists(path("badmap.zarr")),
          f"OME-TIFF TiffData with {what}: refused in one line", r.stderr)

# A FileName of this file written otherwise ("./", a space, its case)
# names it too.
named = mapped.replace('IFD="5" FirstZ="2" FirstC="1" PlaneCount="1"/>',
                       'IFD="5" FirstZ="2" FirstC="1" PlaneCount="1"><UUID FileName=" ./NAMED.ome.TIF">'
                       'urn:uuid:7</UUID></TiffData>')
r = convert(write_mapped("named.ome.tif", named), path("named.zarr"), "--channel", "1")
got = zarr.open(path("named.zarr"), mode="r")[:] if r.returncode == 0 else None
check(got is not None and np.array_equal(got, vol[1]),
      "OME-TIFF TiffData naming this file as ' ./NAMED.ome.TIF': read from it", r.stderr)
# A TiffData whose UUID is the file's own reads from this file.
own = mapped.replace("<OME ", '<OME UUID="urn:uuid:1" ').replace(
    'IFD="5" FirstZ="2" FirstC="1" PlaneCount="1"/>',
    'IFD="5" FirstZ="2" FirstC="1" PlaneCount="1"> <UUID> urn:uuid:1 </UUID></TiffData>')
r = convert(write_mapped("own.ome.tif", own), path("own.zarr"), "--channel", "1")
got = zarr.open(path("own.zarr"), mode="r")[:] if r.returncode == 0 else None
check(got is not None and np.array_equal(got, vol[1]),
      "OME-TIFF TiffData naming this file's own UUID: read from it", r.stderr)

# The pixel size is the resolution's rational as stored (libtiff hands it
# back as a float32: 249.99998812563774 for 250 nm).
tifffile.imwrite(path("res.tif"), np.zeros((3, 16, 16), "u2"), imagej=True,
                 resolution=(1 / 250, 1 / 250), metadata={"unit": "nm", "spacing": 500, "axes": "ZYX"})
with tifffile.TiffFile(path("res.tif")) as tf:
    num, den = tf.pages[0].tags["XResolution"].value
i = info(path("res.tif"))
check(i.get("voxel", [0])[1:] == [den / num, den / num] and i.get("unit") == "nanometer",
      f"ImageJ resolution {num}/{den}: pixel size {den / num!r}, exactly", i)

# An OME-TIFF without PhysicalSize has no unit (it claimed micrometres).
tifffile.imwrite(path("nounit.ome.tif"), np.zeros((3, 16, 16), "u2"), metadata={"axes": "ZYX"})
i = info(path("nounit.ome.tif"))
check(i.get("unit") == "" and i.get("voxel") == [1, 1, 1],
      "OME-TIFF without PhysicalSize: voxel 1, no unit", i)

# tifffile's (Z, Y, X, 1): pages of one sample, read as (Z, Y, X) (it was
# refused as 'not a page per plane').
data = sample("uint16", (4, 9, 11, 1))
tifffile.imwrite(path("zyx1.tif"), data)
r = convert(path("zyx1.tif"), path("zyx1.zarr"))
got = zarr.open(path("zyx1.zarr"), mode="r")[:] if r.returncode == 0 else None
check(got is not None and np.array_equal(got, tifffile.imread(path("zyx1.tif"))[..., 0]),
      "tifffile's (Z, Y, X, 1) reads as (Z, Y, X)", r.stderr)

# Reduced-resolution pages (NewSubfileType 1: thumbnails, pyramid levels)
# among or after the full ones are left out, as tifffile leaves them out of
# its first series; a file that starts with one is refused in one line.
data = sample("uint16", (4, 24, 20))
for name, where in [("reduced-between", "between"), ("reduced-after", "after"),
                    ("reduced-first", "first")]:
    with tifffile.TiffWriter(path(name + ".tif")) as tw:
        if where == "first":
            tw.write(data[0, ::4, ::4], subfiletype=1, metadata=None)
        for p in data:
            tw.write(p, metadata=None, contiguous=False)
            if where == "between":
                tw.write(p[::2, ::2], subfiletype=1, metadata=None, contiguous=False)
        if where == "after":
            tw.write(data[0, ::4, ::4], subfiletype=1, metadata=None)
    r = convert(path(name + ".tif"), path(name + ".zarr"))
    got = zarr.open(path(name + ".zarr"), mode="r")[:] if r.returncode == 0 else None
    if where == "first":
        check(r.returncode == 1 and "page 0 is 6x5" in r.stderr and "reduced-resolution" in
              r.stderr and r.stderr.count("\n") == 1, "a TIFF whose first page is a thumbnail: "
              "refused in one line", r.stderr)
        continue
    with tifffile.TiffFile(path(name + ".tif")) as tf:
        oracle = tf.series[0].asarray()
    check(got is not None and np.array_equal(got, data) and np.array_equal(oracle, data),
          f"reduced-resolution pages {where} the full ones: left out, as tifffile does",
          r.stderr)
    i = info(path(name + ".tif"))
    check(i.get("reduced_pages") == (4 if where == "between" else 1),
          f"halo info counts the reduced-resolution pages left out ({where})", i)
# An OME-TIFF with a thumbnail after its planes, and one whose TiffData
# counts the thumbnail's page between its planes.
ome = tifffile.OmeXml()
ome.addimage("uint16", (4, 24, 20), (4, 1, 1, 24, 20, 1), axes="ZYX")
xml = ome.tostring()
with tifffile.TiffWriter(path("thumb.ome.tif")) as tw:
    for i, p in enumerate(data):
        tw.write(p, metadata=None, description=xml if i == 0 else None, contiguous=False)
    tw.write(data[0, ::4, ::4], subfiletype=1, metadata=None)
r = convert(path("thumb.ome.tif"), path("thumb.zarr"))
got = zarr.open(path("thumb.zarr"), mode="r")[:] if r.returncode == 0 else None
check(got is not None and np.array_equal(got, data),
      "OME-TIFF with a thumbnail page after its planes: the planes", r.stderr)
td = "".join(f'<TiffData IFD="{z + (z >= 2)}" FirstZ="{z}" PlaneCount="1"/>' for z in range(4))
for name, xml_td in [("thumbmid", xml.replace('<TiffData IFD="0" PlaneCount="4"/>', td)),
                     ("thumbin", xml)]:
    with tifffile.TiffWriter(path(name + ".ome.tif")) as tw:
        for i, p in enumerate(data):
            if i == 2:
                tw.write(data[0, ::4, ::4], subfiletype=1, metadata=None)
            tw.write(p, metadata=None, description=xml_td if i == 0 else None,
                     contiguous=False)
    r = convert(path(name + ".ome.tif"), path(name + ".zarr"))
    if name == "thumbin":
        check(r.returncode == 1 and r.stderr.strip().endswith(
              "puts a plane in page 2, a reduced-resolution page"),
              "OME-TIFF whose TiffData counts a thumbnail's page as a plane: refused", r.stderr)
        continue
    got = zarr.open(path(name + ".zarr"), mode="r")[:] if r.returncode == 0 else None
    check('IFD="3"' in xml_td and got is not None and np.array_equal(got, data),
          "OME-TIFF whose TiffData skips a thumbnail's page: the planes", r.stderr)

# A sequence of TIFF files, one plane or stack each, read in natural order
# (z2 before z10) from their folder or a quoted pattern, as tifffile's
# imread of a pattern reads them.
seq = path("seq")
shutil.rmtree(seq, ignore_errors=True)
os.makedirs(seq)
planes = sample("uint16", (12, 9, 11))
for z in range(12):
    tifffile.imwrite(os.path.join(seq, f"plane_z{z}.tif"), planes[z], imagej=True,
                     resolution=(10, 10), metadata={"spacing": 2.5, "unit": "um"})
# tifffile's order (its imread of a pattern scrambled the planes here, in
# its threads: read file by file)
order = tifffile.TiffSequence(os.path.join(seq, "plane_z*.tif")).files
oracle = np.stack([tifffile.imread(f) for f in order])
check(np.array_equal(oracle, planes), "tifffile's natural order of the files (the oracle)")
for src in [seq, os.path.join(seq, "plane_z*.tif")]:
    r = convert(src, path("seq.zarr"))
    got = zarr.open(path("seq.zarr"), mode="r")[:] if r.returncode == 0 else None
    check(got is not None and np.array_equal(got, oracle),
          f"TIFF sequence from {'its folder' if src == seq else 'a pattern'}: every plane, "
          "in natural order", r.stderr)
i = info(seq)
r = halo("info", seq, check_rc=0)
check(i.get("files") == 12 and i.get("shape") == [12, 9, 11] and
      np.allclose(i.get("voxel", 0), [2.5, 0.1, 0.1]) and i.get("unit") == "micrometer" and
      "tiff sequence of 12 files, 3D" in r.stdout,
      "halo info of a sequence: its files, shape, and the first file's voxel size", (i, r.stdout))
# Stacks of several pages, concatenated; a folder holding a Zarr is a Zarr.
stacks = path("stacks")
shutil.rmtree(stacks, ignore_errors=True)
os.makedirs(stacks)
parts = [sample("float32", (n, 6, 5)) for n in (3, 1, 2)]
for k, part in enumerate(parts):
    tifffile.imwrite(os.path.join(stacks, f"t{k}.tiff"), part, photometric="minisblack")
open(os.path.join(stacks, "notes.txt"), "w").write("not a TIFF")
r = convert(stacks, path("stacks.zarr"))
got = zarr.open(path("stacks.zarr"), mode="r")[:] if r.returncode == 0 else None
check(got is not None and np.array_equal(got, np.concatenate(parts)),
      "TIFF sequence of stacks (3, 1 and 2 pages): concatenated along z", r.stderr)
# Refused in one line: a file of another plane size (named), a pattern
# matching nothing, an OUT the pattern would take in on the next run.
tifffile.imwrite(os.path.join(stacks, "t3.tif"), sample("float32", (6, 6)))
for what, src, out, want in [
        ("a file of another plane size", stacks, "stacks.zarr",
         "t3.tif: planes of 6x6 float32, where"),
        ("a pattern matching nothing", os.path.join(seq, "nothing_*.tif"), "none.zarr",
         "no such file, and no TIFF file matches it as a pattern"),
        ("OUT matching the pattern", os.path.join(seq, "plane_z*.tif"),
         os.path.join("seq", "plane_z99.tif"), "OUT lies inside IN")]:
    r = convert(src, path(out))
    check(r.returncode == 1 and want in r.stderr and r.stderr.count("\n") == 1 and
          not os.path.exists(path(out)), f"TIFF sequence with {what}: refused in one line",
          r.stderr)
# A pattern the shell expanded: the files, where one path was meant.
files = sorted(glob.glob(os.path.join(seq, "*.tif")))
r = halo("convert", *files, path("expanded.zarr"), check_rc=2)
check(r.returncode == 2 and "quote their pattern" in r.stderr and r.stderr.count("\n") == 1,
      "an expanded pattern: a hint to quote it", r.stderr)

done()
