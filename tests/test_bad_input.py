"""Bad input to halo convert: one line "halo: FILE: PROBLEM" on stderr,
exit 1 (2 for a bad option), nothing written at OUT, inputs unchanged. Also
--overwrite, OUT == IN, a full disk and an interrupted run."""
import hashlib
import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import time

import numcodecs
import numpy as np
import zarr

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import HALO, TMP, check, done, halo, interrupt, path, skip  # noqa: E402


def digest(p):
    h = hashlib.sha256()
    if os.path.isfile(p):
        h.update(open(p, "rb").read())
        return h.hexdigest()
    for root, dirs, files in sorted(os.walk(p)):
        dirs.sort()
        for f in sorted(files):
            h.update(f.encode())
            if os.path.isfile(os.path.join(root, f)):  # not a FIFO: reading it would block
                h.update(open(os.path.join(root, f), "rb").read())
    return h.hexdigest()


def good_array(name, shape=(6, 8, 10), chunks=(3, 4, 5), **kw):
    p = path(name)
    shutil.rmtree(p, ignore_errors=True)
    z = zarr.open(p, mode="w", shape=shape, chunks=chunks, dtype="<u2", **kw)
    z[:] = np.arange(np.prod(shape)).reshape(shape) % 60000
    return p


def edit_zarray(p, **changes):
    f = os.path.join(p, ".zarray")
    meta = json.load(open(f))
    meta.update(changes)
    json.dump(meta, open(f, "w"))


def pipeline_file(name, image, psf):
    """A pipeline deconvolving a TIFF image with psf into name.zarr."""
    p = path(name + ".json")
    json.dump({"steps": [
        {"name": "a", "op": "from_tiff", "path": image},
        {"name": "d", "op": "map_overlap", "kernel": "richardson_lucy", "input": "a", "depth": 2,
         "psf": psf, "iterations": 1},
        {"name": "o", "op": "to_zarr", "input": "d", "path": path(name + ".zarr"),
         "overwrite": True}]}, open(p, "w"))
    return p


def expect_error(name, src, needle, *opts, code=1, out_name="bad_out.zarr"):
    out = path(out_name)
    shutil.rmtree(out, ignore_errors=True)
    before = digest(src) if os.path.exists(src) else None
    r = halo("convert", src, out, *opts)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == code, f"{name}: exit {code}", f"exit {r.returncode}: {r.stderr}")
    check(len(lines) == 1 and lines[0].startswith("halo: ") and needle in lines[0],
          f"{name}: one line naming '{needle}'", r.stderr)
    leftovers = [f for f in os.listdir(os.path.dirname(out)) if "bad_out" in f]
    check(not leftovers, f"{name}: nothing written", leftovers)
    if before is not None:
        check(digest(src) == before, f"{name}: input unchanged")


expect_error("missing input", path("no-such.zarr"), "no-such.zarr: no such file")
os.makedirs(path("empty.zarr"), exist_ok=True)
expect_error("not a Zarr", path("empty.zarr"), "not a Zarr array")
# '-' (standard input or output to many tools) is refused, not a folder
# named '-' written or read in the current one.
expect_error("'-' as IN", "-", "-: halo reads volumes from files, not from standard input")
r = subprocess.run([HALO, "convert", good_array("dash.zarr"), "-"], cwd=path(""),
                   capture_output=True, text=True, stdin=subprocess.DEVNULL)
check(r.returncode == 1 and r.stderr.strip() == "halo: -: halo writes volumes to files, not to "
      "standard output; name a file" and not os.path.exists(path("-")),
      "'-' as OUT: one line, nothing written", r.stderr)

# A newline in a file name: the summary stays one line too, as errors do.
nl = path("new\nline")
os.makedirs(nl, exist_ok=True)
r = halo("convert", good_array("new\nline/in.zarr"), os.path.join(nl, "out.zarr"))
check(r.returncode == 0 and r.stdout.count("\n") == 1 and "new?line/in.zarr -> " in r.stdout,
      "a newline in IN and OUT: the summary is one line, with '?' for it", r.stdout)
shutil.rmtree(nl)

p = good_array("malformed.zarr")
open(os.path.join(p, ".zarray"), "w").write('{"zarr_format": 2, "shape": [6, 8,')
expect_error("malformed .zarray", p, ".zarray: malformed JSON")

p = good_array("noshape.zarr")
meta = json.load(open(os.path.join(p, ".zarray")))
del meta["shape"]
json.dump(meta, open(os.path.join(p, ".zarray"), "w"))
expect_error("missing field", p, "field 'shape' is missing")
# compressor, filters and fill_value may be null but, as python zarr
# requires, present (a missing compressor read blosc chunks as raw bytes).
for field in ["compressor", "filters", "fill_value"]:
    p = good_array(f"no_{field}.zarr")
    meta = json.load(open(os.path.join(p, ".zarray")))
    del meta[field]
    json.dump(meta, open(os.path.join(p, ".zarray"), "w"))
    expect_error(f"missing {field}", p, f"field '{field}' is missing")

p = good_array("complex.zarr")
edit_zarray(p, dtype="<c8")
expect_error("unsupported dtype", p, "unsupported dtype '<c8'")

p = good_array("structured.zarr")
edit_zarray(p, dtype=[["a", "<u2"]])
expect_error("structured dtype", p, "field 'dtype'")

p = good_array("snappy.zarr")
edit_zarray(p, compressor={"id": "snappy"})
expect_error("unknown compressor", p, "compressor 'snappy' is not supported (blosc, zlib, gzip, "
             "zstd, lz4, lzma, bz2)")
p = good_array("lzma-raw.zarr", compressor=numcodecs.LZMA(
    format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}]))
expect_error("lzma raw format", p, "field 'compressor': lzma's raw format (3) is not supported "
             "(1, .xz, and 2, .lzma, are)")

# numcodecs' Zlib, GZip, Zstd, LZ4, LZMA and BZ2 chunks that are damaged, cut short
# or of another size: one line each, checksums checked to the end.
raw = (np.arange(60, dtype="<u2") * 1000).tobytes()
for comp in [numcodecs.GZip(level=1), numcodecs.Zlib(level=1), numcodecs.Zstd(level=1),
             numcodecs.LZ4(), numcodecs.LZMA(preset=1), numcodecs.BZ2(level=1)]:
    cid = comp.codec_id
    p = good_array(f"{cid}-bad.zarr", compressor=comp)
    chunk = os.path.join(p, "1.0.1")
    blob = bytearray(comp.encode(raw))
    flipped = bytearray(blob)
    # numcodecs' zstd frames and lz4 blocks carry no checksum: a byte
    # flipped in the data reads as other values, for python too. halo's
    # zstd frames carry one (below). Their headers are checked.
    flipped[{"zstd": 0, "lz4": 5}.get(cid, len(blob) // 2)] ^= 0x55
    open(chunk, "wb").write(bytes(flipped))
    expect_error(f"{cid} chunk with a byte flipped", p, "1.0.1: chunk fails to decompress "
                 f"(corrupt {cid} data")
    cut = bytes(blob[:len(blob) - 3])
    open(chunk, "wb").write(cut)
    expect_error(f"{cid} chunk cut short", p, "1.0.1: chunk " + (
        f"fails to decompress (corrupt {cid} data" if cid in ("zstd", "lz4")
        else f"is cut short (truncated {cid} data)"))
    open(chunk, "wb").write(comp.encode(raw[:20]))
    expect_error(f"{cid} chunk of the wrong size", p,
                 "1.0.1: chunk decompresses to 20 bytes, expected 120")
    open(chunk, "wb").write(comp.encode(raw + raw))
    expect_error(f"{cid} chunk too large", p, "1.0.1: chunk decompresses to " + (
        "240 bytes, expected 120" if cid in ("zstd", "lz4") else "more than 120 bytes, its size"))
# A zlib stream with a preset dictionary, which Zarr has no place for.
import zlib  # noqa: E402
p = good_array("zdict.zarr", compressor=numcodecs.Zlib(level=1))
zc = zlib.compressobj(zdict=b"dictionary")
open(os.path.join(p, "0.0.0"), "wb").write(zc.compress(raw) + zc.flush())
expect_error("zlib chunk with a preset dictionary", p,
             "0.0.0: chunk needs a preset dictionary, which Zarr has no place for")
# halo writes zstd frames with their checksum: python reads them, and a
# byte flipped anywhere is found.
p, q = good_array("zstd-sum.zarr", compressor=numcodecs.Zstd(level=3)), path("zstd-sum2.zarr")
r = halo("convert", p, q, check_rc=0)
blob = bytearray(open(os.path.join(q, "1", "0", "1"), "rb").read())
check(r.returncode == 0 and blob[4] & 4 and numcodecs.Zstd().decode(bytes(blob)) ==
      np.ascontiguousarray(zarr.open(p, mode="r")[3:6, 0:4, 5:10]).tobytes(),
      "halo's zstd chunks carry a checksum; python reads them", r.stderr)
blob[len(blob) // 2] ^= 0x55
open(os.path.join(q, "1", "0", "1"), "wb").write(bytes(blob))
expect_error("a byte flipped in a zstd chunk halo wrote", q, "1/0/1: chunk fails to decompress "
             "(corrupt zstd data: Restored data doesn't match checksum)")
shutil.rmtree(q)
p = good_array("gzip-junk.zarr", compressor=numcodecs.GZip(level=1))
open(os.path.join(p, "0.0.0"), "wb").write(numcodecs.GZip(level=1).encode(raw) + b"junk")
expect_error("gzip chunk followed by junk", p, "0.0.0: chunk fails to decompress (corrupt gzip "
             "data: incorrect header check)")

p = good_array("forder.zarr")
edit_zarray(p, order="K")
expect_error("order K", p, "field 'order' is not \"C\" or \"F\"")
edit_zarray(p, order=1)
expect_error("order not a string", p, "field 'order' is not \"C\" or \"F\"")
p = good_array("compstr.zarr")
edit_zarray(p, compressor="blosc")
expect_error("compressor not an object", p, "field 'compressor' is not an object or null")
edit_zarray(p, compressor={"id": 5})
expect_error("compressor without an id string", p, "field 'compressor' has no 'id' string")

p = good_array("delta.zarr", filters=[numcodecs.Delta(dtype="<u2")])
expect_error("filters", p, "filter 'delta'")

p = good_array("corrupt.zarr")
open(os.path.join(p, "1.0.1"), "wb").write(b"\x02\x01garbage that is not blosc" * 3)
expect_error("corrupt chunk", p, f"halo: {p}/1.0.1: chunk is not valid blosc data")

p = good_array("short.zarr")
blob = numcodecs.Blosc().encode(np.zeros(10, dtype="<u2").tobytes())
open(os.path.join(p, "0.1.0"), "wb").write(blob)
expect_error("chunk of the wrong size", p, "0.1.0: chunk decompresses to 20 bytes, expected 120")

p = good_array("rawshort.zarr", compressor=None)
open(os.path.join(p, "0.0.0"), "wb").write(b"\0" * 7)
expect_error("uncompressed chunk of the wrong size", p, "0.0.0: chunk holds 7 bytes")

p = good_array("huge.zarr")
edit_zarray(p, shape=[4096, 4096, 4096], chunks=[2048, 2048, 1024])
expect_error("chunk over 2 GiB", p, "more than blosc's limit of 2 GiB")
edit_zarray(p, shape=[2**62, 4, 4], chunks=[1, 4, 4])
expect_error("too many chunks", p, "more than halo's limit")
edit_zarray(p, shape=[100, 100, 100], chunks=[2**40] * 3)
expect_error("chunk size overflowing 64 bits", p, "more than blosc's limit")

p = good_array("empty-axis.zarr", shape=(0, 4, 4), chunks=(2, 2, 2))
expect_error("an axis of length 0", p, "empty-axis.zarr: the array is empty")

# TIFF: truncated and multi-channel.
import tifffile  # noqa: E402

t = path("trunc.tif")
tifffile.imwrite(t, np.arange(5 * 64 * 64, dtype="<u2").reshape(5, 64, 64))
data = open(t, "rb").read()
open(t, "wb").write(data[: len(data) // 2])
expect_error("truncated TIFF", t, "trunc.tif")
# One that halo wrote (its last strip cut short): refused as it is opened,
# naming the page and strip (libtiff's "Read error ... at scanline
# 4294967295" came once the pages before were read).
t = path("trunc-halo.tif")
r = halo("convert", good_array("for-tiff.zarr"), t, "--quiet", "--overwrite", check_rc=0)
data = open(t, "rb").read()
open(t, "wb").write(data[: len(data) - 100])
expect_error("truncated TIFF written by halo", t,
             "page 5, strip 0, holds 60 bytes of the 160 its pixels need (truncated or corrupt)")
# Deflate strips and tiles damaged inside (zeros over the second half, or
# bytes flipped) decoded to garbage without an error: libtiff stops once
# a strip is full. Their checksums are checked; intact ones read as written.
deflate = np.arange(9 * 70 * 90, dtype="<u2").reshape(9, 70, 90)
for kind, opts in [("strips", {}), ("tiles", {"tile": (32, 32)}),
                   ("strips with a predictor", {"predictor": 2}),
                   ("3-row strips", {"rowsperstrip": 3})]:
    t = path("deflate.tif")
    tifffile.imwrite(t, deflate, compression="zlib", **opts)
    r = halo("convert", t, path("deflate.zarr"), "--overwrite", "--quiet", check_rc=0)
    check(r.returncode == 0 and np.array_equal(zarr.open(path("deflate.zarr"), mode="r")[:], deflate),
          f"deflate TIFF in {kind}: read as written", r.stderr)
    with tifffile.TiffFile(t) as f:
        o, n = f.pages[4].dataoffsets[-1], f.pages[4].databytecounts[-1]
    for damage in ["zeros", "flipped"]:
        b = bytearray(open(t, "rb").read())
        if damage == "zeros":
            b[o + n // 2:o + n] = bytes(n - n // 2)
        else:
            for i in range(n // 3, n // 3 + 20):
                b[o + i] ^= 0x5A
        bad = path(f"deflate-{damage}.tif")
        open(bad, "wb").write(bytes(b))
        expect_error(f"deflate TIFF in {kind}, {damage} inside a strip", bad,
                     "page 4 is unreadable or truncated: ")  # libtiff's word or the checksum's
# An output named as a format halo does not write was written as a Zarr
# folder under that name.
for ext in [".h5", ".n5", ".nii.gz"]:
    expect_error(f"an output named {ext}", good_array("for-h5.zarr"),
                 f"halo writes Zarr (a folder), OME-Zarr (*.ome.zarr) and TIFF (*.tif), not {ext} files",
                 out_name="bad_out" + ext)
t = path("rgb.tif")
tifffile.imwrite(t, np.zeros((16, 16, 3), dtype="u1"), photometric="rgb")
expect_error("RGB TIFF", t, "single-channel")
t = path("text.tif")
open(t, "w").write("not a tiff at all\n")
expect_error("not a TIFF", t, "text.tif")
t = path("four.tif")
tifffile.imwrite(t, np.zeros((2, 4, 8, 8), dtype="f4"), photometric="minisblack")
expect_error("4D tifffile array (its pages read as one stack before)", t,
             "a 4D image (2x4x8x8); halo reads 2D and 3D volumes")

t = path("mixed-spp.tif")
with tifffile.TiffWriter(t) as w:
    w.write(np.zeros((8, 8), "u1"), photometric="minisblack")
    w.write(np.zeros((8, 8, 3), "u1"), photometric="rgb")
expect_error("a later page with three samples per pixel", t, "page 1 has 3 samples per pixel")
t = path("two-series.tif")
tifffile.imwrite(t, np.zeros((2, 8, 8), "<u2"), photometric="minisblack")
tifffile.imwrite(t, np.zeros((8, 8), "<u2"), photometric="minisblack", append=True)
expect_error("two tifffile series (they read as one 3-page volume before)", t,
             "its description says 2 pages but the file has 3")
t = path("ij-wrap.tif")
tifffile.imwrite(t, np.zeros((16, 16), "u1"), photometric="minisblack", metadata=None,
                 description="ImageJ=1.11a\nimages=4294967296\nslices=4294967296\n")
expect_error("ImageJ's image count times the page size wrapping around 2^64", t,
             "truncated: its description says 4294967296 pages of 256 bytes")
t = path("ij-slices.tif")
tifffile.imwrite(t, np.zeros((5, 8, 8), "u1"), photometric="minisblack", metadata=None,
                 description="ImageJ=1.11a\nimages=5\nslices=7\n")
expect_error("ImageJ slices that are not its images (tifffile reads 7 planes)", t,
             "says 7 slices but 5 images")
# Integer fills must be values of the type (-5 read as 0, 1.5 as 2 before).
# 64-bit types' fills one past their range (2^63 and 2^64 saturated
# once, a double rounding their largest values to them).
for fill, dt in [(-5, "<u2"), (1.5, "<u2"), ("NaN", "<u2"), (200, "|i1"), (2**63, "<i8"),
                 (-2**63 - 1, "<i8"), (2**64, "<u8"), (2.0**64, "<u8"), (2.0**63, "<i8"),
                 (-1, "<u8")]:
    p = good_array(f"fill-{dt[1:]}-{fill}.zarr")
    edit_zarray(p, fill_value=fill, dtype=dt)
    expect_error(f"fill_value {fill} for {dt}", p, "field 'fill_value' is not a value of type")
p = good_array("fifo.zarr")
os.remove(os.path.join(p, "0.0.0"))
os.mkfifo(os.path.join(p, "0.0.0"))
expect_error("a FIFO in a chunk's place (halo waited for a writer forever)", p,
             "0.0.0: not a regular file")
p = good_array("overlong.zarr", compressor=None)
with open(os.path.join(p, "0.0.0"), "ab") as f:
    f.write(b"\0" * 1000)
expect_error("a chunk file longer than any chunk, refused unread", p,
             "0.0.0: holds 1120 bytes, more than a chunk of its array can (120)")
# Zarr v3: what halo does not understand is refused, not guessed.
v3 = path("v3bad.zarr")


def v3_array(**changes):
    shutil.rmtree(v3, ignore_errors=True)
    os.makedirs(v3)
    meta = {"zarr_format": 3, "node_type": "array", "shape": [2, 2, 2], "data_type": "uint16",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 2, 2]}},
            "chunk_key_encoding": {"name": "default"}, "fill_value": 0,
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}]}
    meta.update(changes)
    json.dump({k: v for k, v in meta.items() if v is not None},
              open(os.path.join(v3, "zarr.json"), "w"))
    return v3


expect_error("v3 endian 'BIG' (read as little before)",
             v3_array(codecs=[{"name": "bytes", "configuration": {"endian": "BIG"}}]),
             "field 'codecs.bytes.endian' is not")
expect_error("v3 without fill_value", v3_array(fill_value=None), "field 'fill_value' is missing")
expect_error("OME-Zarr 0.5 group without multiscales",
             v3_array(node_type="group", attributes={"ome": {"version": "0.5"}}),
             "zarr.json: a Zarr group without OME-Zarr multiscales, and without an array at "
             "its top level")
expect_error("v3 crc32c before a compressor", v3_array(codecs=[
    {"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"},
    {"name": "zstd", "configuration": {"level": 1}}]), "codec 'zstd' is not supported here")
expect_error("v3 extension that must be understood", v3_array(my_ext={"x": 1}),
             "field 'my_ext' is an extension halo does not understand")
p = v3_array(my_ext={"must_understand": False})
r = halo("info", p)
check(r.returncode == 0, "v3 extension with must_understand false is ignored", r.stderr)
expect_error("v3 storage_transformers as an object", v3_array(storage_transformers={}),
             "field 'storage_transformers' is not a list")
# OME-Zarr scales must be positive and finite (an infinite one wrote 2 of 3 scales).
om = path("bad-scale.ome.zarr")
shutil.rmtree(om, ignore_errors=True)
zarr.open(os.path.join(om, "0"), mode="w", shape=(2, 4, 4), chunks=(2, 4, 4), dtype="<u2")
open(os.path.join(om, ".zgroup"), "w").write('{"zarr_format": 2}')
tr = [{"type": "scale", "scale": [1e300, 1, 1]}]
json.dump({"multiscales": [{"datasets": [{"path": "0", "coordinateTransformations": tr}],
                            "coordinateTransformations": tr}]},
          open(os.path.join(om, ".zattrs"), "w"))
expect_error("OME scales multiplying to infinity", om,
             ".zattrs: a multiscales scale is not a positive, finite number",
             out_name="bad_out.ome.zarr")
# Metadata that does not describe the array: refused, not read by position
# (x, y, z relabelled z, y, x; a 2-value scale left z at 1).
zyx = [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]
for what, ms, needle in [
        ("axes x, y, z", {"axes": zyx[::-1], "datasets": [{"path": "0"}]},
         "axis 3 is 'z' where halo reads 'x'"),
        ("a scale of 2 values", {"axes": zyx, "datasets": [{"path": "0", "coordinateTransformations":
                                                            [{"type": "scale", "scale": [0.5, 0.5]}]}]},
         "a scale of 2 values for 3 axes"),
        ("a translation of 2 values", {"axes": zyx, "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1, 1, 1]}, {"type": "translation", "translation": [5, 5]}]}]},
         "a translation of 2 values for 3 axes"),
        ("a translation that is no number", {"axes": zyx, "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1, 1, 1]}, {"type": "translation", "translation": [0, "a", 0]}]}]},
         "a multiscales translation is not a finite number"),
        ("a translation scaled to infinity", {"axes": zyx, "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1, 1, 1]}, {"type": "translation", "translation": [0, 1e300, 0]}]}],
            "coordinateTransformations": [{"type": "scale", "scale": [1, 1e10, 1]}]},
         "a multiscales translation is not a finite number"),
        # Other transformations, or a list that is not one, were passed
        # over: a wrong voxel size and origin, unsaid.
        ("an affine transformation", {"axes": zyx, "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [2, 2, 2]},
            {"type": "affine", "affine": [[3, 0, 0, 5], [0, 3, 0, 5], [0, 0, 3, 5]]}]}]},
         "a coordinate transformation of type 'affine': halo reads inline scale and translation lists"),
        ("transformations as an object", {"axes": zyx, "datasets": [{"path": "0", "coordinateTransformations":
                                                                    {"type": "scale", "scale": [2, 2, 2]}}]},
         "coordinateTransformations is not a list"),
        ("a unit that is a number", {"axes": [dict(zyx[0], unit=5)] + zyx[1:], "datasets": [{"path": "0"}]},
         "axis 0's unit is not a string"),
        ("no datasets", {"axes": zyx, "datasets": []}, "multiscales has no dataset"),
        ("a dataset outside the group", {"axes": zyx, "datasets": [{"path": "../x.zarr"}]},
         "dataset path '../x.zarr' leaves the group"),
        ("4 axes for a 3D array", {"axes": [{"name": "c", "type": "channel"}] + zyx,
                                   "datasets": [{"path": "0"}]}, "4 axes for the 3D array 0"),
        # Two channels of a 2D image were read as two z planes.
        ("channels c, y, x", {"axes": [{"name": "c", "type": "channel"}] + zyx[1:],
                              "datasets": [{"path": "0"}]}, "2 channels (axis 0, from 0); halo reads one channel at one time (--channel N picks one)"),
        ("0.3 time points t, y, x", {"axes": ["t", "y", "x"], "datasets": [{"path": "0"}]},
         "2 time points (axis 0, from 0); halo reads one channel at one time (--time N picks one)")]:
    json.dump({"multiscales": [dict(ms, version="0.4")]}, open(os.path.join(om, ".zattrs"), "w"))
    expect_error(f"OME-Zarr: {what}", om, needle, out_name="bad_out.ome.zarr")
json.dump({"multiscales": {"axes": zyx, "datasets": [{"path": "0"}]}},
          open(os.path.join(om, ".zattrs"), "w"))
expect_error("OME-Zarr: multiscales as an object", om, ".zattrs: multiscales is not a list of "
             "objects", out_name="bad_out.ome.zarr")
json.dump({"multiscales": [{"version": "0.4", "axes": zyx, "datasets": [{"path": "0", "coordinateTransformations": [
    {"type": "scale", "scale": [2, 2, 2]}, {"type": "identity"}]}]}]}, open(os.path.join(om, ".zattrs"), "w"))
r = halo("info", om, "--json")
check(r.returncode == 0 and json.loads(r.stdout)["voxel"] == [2, 2, 2],
      "OME-Zarr: an identity transformation changes nothing", r.stderr)
# OME-NGFF 0.3 lists the axes as names; a scale given by "path" is refused
# (it was passed over: voxel size 1, silently).
json.dump({"multiscales": [{"version": "0.3", "axes": ["z", "y", "x"], "datasets": [{"path": "0"}]}]},
          open(os.path.join(om, ".zattrs"), "w"))
r = halo("info", om)
check(r.returncode == 0 and "4x4" in r.stdout, "OME-Zarr 0.3: axes as names are read", r.stderr)
json.dump({"multiscales": [{"version": "0.4", "axes": zyx, "datasets": [{"path": "0", "coordinateTransformations":
                                                                      [{"type": "scale", "path": "s"}]}]}]},
          open(os.path.join(om, ".zattrs"), "w"))
expect_error("OME-Zarr: a scale given by path", om,
             "a scale given by path (a file of values): halo reads them inline only",
             out_name="bad_out.ome.zarr")

# Bad option values are errors (exit 1); unknown options are usage errors (2).
p = good_array("ok.zarr")
expect_error("unknown compressor", p, "--compressor: unknown 'brotli'", "--compressor", "brotli",
             code=1)
expect_error("bad chunks", p, "--chunks", "--chunks", "4,0,4")
expect_error("chunks arity", p, "--chunks", "--chunks", "4,4,4,4")
expect_error("unknown dtype", p, "--dtype", "--dtype", "complex64")
expect_error("pyramid without OME", p, "--pyramid", "--pyramid", "2")
expect_error("unknown option", p, "--frobnicate", "--frobnicate", code=2)
# Options that would be ignored are refused.
flat = good_array("flat.zarr", shape=(8, 10), chunks=(4, 5))
expect_error("three chunk sizes for a 2D input", flat, "the input is 2D; give Y,X",
             "--chunks", "9,4,5")
expect_error("big-endian --dtype", p, "halo writes little-endian", "--dtype", ">u2")
expect_error("--clevel without compression", p, "apply to compressed output", "--compressor", "none",
             "--clevel", "3")
expect_error("--clevel on a kept lz4", good_array("lz4-kept.zarr", compressor=numcodecs.LZ4(3)),
             "--clevel: the output keeps the input's lz4, which has an acceleration (3), not a "
             "level", "--clevel", "5")
expect_error("pyramid levels past 1x1", p, "8x10 plane halves to 1x1 after 4 levels",
             "--ome", "--pyramid", "5")
expect_error("--memory 0", p, "no memory at all", "--memory", "0")
expect_error("hex --memory", p, "is not a size", "--memory", "0x10G")

# OUT exists: refused without --overwrite and left untouched; replaced with it.
out = good_array("existing.zarr", shape=(2, 2, 2), chunks=(2, 2, 2))
before = digest(out)
r = halo("convert", p, out)
check(r.returncode == 1 and "already exists" in r.stderr and digest(out) == before,
      "existing OUT: refused, untouched", r.stderr)
r = halo("convert", p, out, "--overwrite", "--quiet")
check(r.returncode == 0 and zarr.open(out, mode="r").shape == (6, 8, 10),
      "--overwrite replaces OUT", r.stderr)
check(not [f for f in os.listdir(os.path.dirname(out)) if ".halo-" in f],
      "no temporary names left beside OUT")

# --overwrite replaces what halo writes, never a folder of other files or
# a file that is not a TIFF.
for name, make in [("notes", lambda q: (os.makedirs(q), open(os.path.join(q, "f"), "w").write("x"))),
                   ("notes.txt", lambda q: open(q, "w").write("keep me"))]:
    q = path(name)
    make(q)
    before_q = digest(q)
    r = halo("convert", p, q, "--overwrite")
    check(r.returncode == 1 and "is not a Zarr array or group, nor a TIFF" in r.stderr and
          digest(q) == before_q, f"--overwrite refuses to replace {name}, which halo did not write",
          r.stderr)

# Nor a symbolic link: renaming over it would replace the link, dangling,
# looping or naming a Zarr.
for name, target in [("dangling", "nowhere"), ("loop", "loop"), ("link.zarr", out)]:
    q = path(name)
    if os.path.lexists(q):
        os.unlink(q)
    os.symlink(target, q)
    r = halo("convert", p, q, "--overwrite")
    check(r.returncode == 1 and "is a symbolic link" in r.stderr and os.path.islink(q)
          and os.readlink(q) == target, f"--overwrite refuses to replace the {name} link",
          r.stderr)

# OUT == IN.
before = digest(p)
r = halo("convert", p, p, "--overwrite")
check(r.returncode == 1 and "same as IN" in r.stderr and digest(p) == before,
      "OUT equal to IN is refused", r.stderr)
# Without a writable home StarPU would abort: its models go under TMPDIR.
tmpdir = path("tmp-home")
os.makedirs(tmpdir, exist_ok=True)
env = dict(os.environ, HOME=os.path.join(p, ".zarray"), TMPDIR=tmpdir)
for name in ["STARPU_HOME", "XDG_CACHE_HOME"]:  # StarPU looks at these before HOME
    env.pop(name, None)
r = subprocess.run([HALO, "convert", p, path("home_out.zarr"),
                    "--quiet"], capture_output=True, text=True, env=env)
check(r.returncode == 0 and r.stderr == "" and
      os.path.isdir(os.path.join(tmpdir, f"halo-starpu-{os.getuid()}", ".starpu")),
      "HOME not a writable folder: runs, StarPU's files under TMPDIR", r.stderr[-300:])

# StarPU's folder under TMPDIR must be this user's own: a link there (a
# link swapped in after a check sent another user's models elsewhere) is
# passed over for /tmp's, and nothing is written where it points.
tmpdir2 = path("tmp-home2")
shutil.rmtree(tmpdir2, ignore_errors=True)
os.makedirs(tmpdir2)
elsewhere = path("tmp-elsewhere")
shutil.rmtree(elsewhere, ignore_errors=True)
os.makedirs(elsewhere)
os.symlink(elsewhere, os.path.join(tmpdir2, f"halo-starpu-{os.getuid()}"))
env = dict(os.environ, HOME=os.path.join(p, ".zarray"), TMPDIR=tmpdir2)
for name in ["STARPU_HOME", "XDG_CACHE_HOME", "STARPU_PERF_MODEL_DIR"]:
    env.pop(name, None)
r = subprocess.run([HALO, "convert", p, path("home_out2.zarr"), "--quiet", "--overwrite"],
                   capture_output=True, text=True, env=env)
check(r.returncode == 0 and os.listdir(elsewhere) == [],
      "a link for StarPU's folder under TMPDIR is not followed", r.stderr[-300:])
# An unusable XDG_CACHE_HOME gives way to the user's STARPU_HOME (it went
# to TMPDIR, whatever STARPU_HOME said).
own = path("own-starpu-home")
shutil.rmtree(own, ignore_errors=True)
os.makedirs(own)
env = dict(os.environ, XDG_CACHE_HOME=os.path.join(p, ".zarray"), STARPU_HOME=own)
env.pop("STARPU_PERF_MODEL_DIR", None)
r = subprocess.run([HALO, "convert", p, path("home_out3.zarr"), "--quiet", "--overwrite"],
                   capture_output=True, text=True, env=env)
check(r.returncode == 0 and os.path.isdir(os.path.join(own, ".starpu", "sampling")),
      "an unusable XDG_CACHE_HOME gives way to STARPU_HOME", r.stderr[-300:])
# Outputs follow the umask: a group's shared folder under umask 002 gets
# group-writable folders and files (0755 and 0644 were fixed). So do
# StarPU's model files, written beside and renamed (they were 0644).
umask_home = path("umask-starpu-home")
shutil.rmtree(umask_home, ignore_errors=True)
os.makedirs(umask_home)
env = dict(os.environ, STARPU_HOME=umask_home)
for name in ["XDG_CACHE_HOME", "STARPU_PERF_MODEL_DIR"]:
    env.pop(name, None)
r = subprocess.run([HALO, "convert", p, path("umask_out.zarr"), "--quiet", "--overwrite"],
                   capture_output=True, text=True, env=env, preexec_fn=lambda: os.umask(0o002))
modes = {oct(os.stat(os.path.join(d, n)).st_mode & 0o777)
         for d, ds, fs in os.walk(path("umask_out.zarr")) for n in ds + fs}
check(r.returncode == 0 and modes == {"0o775", "0o664"}, "outputs follow the umask (002)",
      (r.stderr, modes))
models = {os.path.relpath(os.path.join(d, n), umask_home): oct(os.stat(os.path.join(d, n)).st_mode & 0o777)
          for d, _, fs in os.walk(umask_home) for n in fs}
check(any("halo_write" in n for n in models) and
      set(models.values()) == {"0o664"}, "StarPU's model files follow the umask (002)", models)

# A STARPU_PERF_MODEL_DIR that cannot hold the models: one line (StarPU
# aborted with a backtrace).
r = halo("convert", p, path("pmd_out.zarr"), "--quiet",
         env={"STARPU_PERF_MODEL_DIR": os.path.join(p, ".zarray")})
check(r.returncode == 1 and r.stderr.count("\n") == 1 and
      "STARPU_PERF_MODEL_DIR=" in r.stderr and "not a folder" in r.stderr,
      "STARPU_PERF_MODEL_DIR not a folder: one line, exit 1", r.stderr[-300:])
# An empty one is StarPU's "/" (as root it made /codelets and /bus): unset.
r = halo("convert", p, path("pmd_out.zarr"), "--quiet", "--overwrite",
         env={"STARPU_PERF_MODEL_DIR": ""})
check(r.returncode == 0 and not os.path.exists("/codelets") and not os.path.exists("/bus"),
      "an empty STARPU_PERF_MODEL_DIR is the default, not /", r.stderr[-300:])

# An empty bus calibration file (a disk that filled while StarPU wrote it)
# made every later start assert, until the user found and deleted it.
bus_home = path("bus-home")
shutil.rmtree(bus_home, ignore_errors=True)
os.makedirs(bus_home)
env = {k: v for k, v in os.environ.items()
       if k not in ("XDG_CACHE_HOME", "STARPU_HOME", "STARPU_PERF_MODEL_DIR")}
env["HOME"] = bus_home
r = subprocess.run([HALO, "convert", p, path("bus_out.zarr"), "--quiet", "--overwrite"],
                   capture_output=True, text=True, env=env, timeout=120)
bus = os.path.join(bus_home, ".starpu", "sampling", "bus")
emptied = [f for f in os.listdir(bus) if f.endswith(".affinity")] if os.path.isdir(bus) else []
for f in emptied:
    open(os.path.join(bus, f), "w").close()
r = subprocess.run([HALO, "convert", p, path("bus_out.zarr"), "--quiet", "--overwrite"],
                   capture_output=True, text=True, env=env, timeout=120)
check(emptied and r.returncode == 0 and
      all(os.path.getsize(os.path.join(bus, f)) > 0 for f in emptied),
      "an empty bus calibration file: measured again (StarPU asserted)", (emptied, r.stderr[-300:]))

# OUT inside IN would change IN; replacing OUT around IN would delete it.
for out, where in [(os.path.join(p, "sub.zarr"), "inside"), (os.path.dirname(p), "around")]:
    r = halo("convert", p, out, "--overwrite")
    check(r.returncode == 1 and f"OUT lies {where} IN" in r.stderr and digest(p) == before,
          f"OUT {where} IN is refused, IN untouched", r.stderr)

# A full disk: a 1 MiB tmpfs, when this machine lets us mount one.
mnt = path("small-fs")
os.makedirs(mnt, exist_ok=True)
mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt],
                         capture_output=True).returncode == 0
if mounted:
    try:
        big = good_array("big.zarr", shape=(64, 128, 128), chunks=(16, 64, 64),
                         compressor=None)
        r = halo("convert", big, os.path.join(mnt, "out.zarr"), "--compressor", "none")
        lines = r.stderr.strip().splitlines()
        out = os.path.join(mnt, "out.zarr")
        check(r.returncode == 1 and len(lines) == 1 and "No space left" in lines[0] and
              lines[0].startswith(f"halo: {out}/") and ".halo-" not in lines[0],
              "disk full: one line naming OUT's chunk, exit 1", r.stderr)
        check(os.listdir(mnt) == [], "disk full: nothing left on the full disk", os.listdir(mnt))
        tif = os.path.join(mnt, "out.tif")
        r = halo("convert", big, tif)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 1 and len(lines) == 1 and "No space left" in lines[0] and
              lines[0].startswith(f"halo: {tif}: ") and os.listdir(mnt) == [],
              "disk full writing TIFF: says so (not libtiff's 'Write error'), nothing left",
              r.stderr)
        # A full HOME: StarPU's first bus calibration asserted (exit 134).
        # halo takes its private folder in TMPDIR instead.
        os.makedirs(os.path.join(mnt, "home"))
        with open(os.path.join(mnt, "filler"), "wb") as f:
            try:
                f.write(b"\0" * (2 << 20))
            except OSError:
                pass
        tmpd = path("full-home-tmp")
        shutil.rmtree(tmpd, ignore_errors=True)
        os.makedirs(tmpd)
        env = {k: v for k, v in os.environ.items()
               if k not in ("XDG_CACHE_HOME", "STARPU_HOME", "STARPU_PERF_MODEL_DIR")}
        env.update(HOME=os.path.join(mnt, "home"), TMPDIR=tmpd)
        r = subprocess.run([HALO, "convert", p, path("full-home.zarr"), "--quiet", "--overwrite"],
                           capture_output=True, text=True, env=env, timeout=120)
        check(r.returncode == 0 and os.path.isdir(os.path.join(
            tmpd, f"halo-starpu-{os.getuid()}", ".starpu", "sampling")),
              "a full HOME: StarPU's models go to TMPDIR (StarPU asserted)", r.stderr[-300:])
        # A --trace on a read-only filesystem says so (it listed guesses).
        if subprocess.run(["mount", "-o", "remount,ro", mnt]).returncode == 0:
            r = halo("convert", p, path("ro-out.zarr"), "--trace", os.path.join(mnt, "t.json"))
            check(r.returncode == 1 and r.stderr.strip() == f"halo: --trace: "
                  f"'{os.path.join(mnt, 't.json')}' cannot be written: Read-only file system",
                  "--trace on a read-only filesystem: says so", r.stderr)
    finally:
        subprocess.run(["umount", mnt])
else:
    skip("disk full", "cannot mount a small tmpfs here")
    skip("disk full: nothing left", "cannot mount a small tmpfs here")

# A file over `ulimit -f`: one line naming it, nothing left (SIGXFSZ
# killed halo silently, leaving its lock and temporary output).
import resource  # noqa: E402

fsz = good_array("fsz.zarr", shape=(16, 64, 64), chunks=(8, 64, 64), compressor=None)
fsz_dir = path("fsz-out")
shutil.rmtree(fsz_dir, ignore_errors=True)
os.makedirs(fsz_dir)
r = subprocess.run([HALO, "convert", fsz, os.path.join(fsz_dir, "o.zarr"), "--compressor", "none"],
                   capture_output=True, text=True, timeout=120,
                   preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384)))
lines = r.stderr.strip().splitlines()
check(r.returncode == 1 and len(lines) == 1 and "File too large" in lines[0] and
      os.path.join(fsz_dir, "o.zarr") in lines[0] and os.listdir(fsz_dir) == [],
      "a file over ulimit -f: one line naming it, exit 1, nothing left",
      f"{r.returncode} {r.stderr} {os.listdir(fsz_dir)}")
r = subprocess.run([HALO, "convert", fsz, os.path.join(fsz_dir, "o.tif")],
                   capture_output=True, text=True, timeout=120,
                   preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384)))
lines = r.stderr.strip().splitlines()
check(r.returncode == 1 and len(lines) == 1 and "File too large" in lines[0] and
      os.listdir(fsz_dir) == [], "a TIFF over ulimit -f: says so (libtiff's 'Write error'), "
      "nothing left", f"{r.returncode} {r.stderr} {os.listdir(fsz_dir)}")

# A trace that cannot be written once the outputs are in place: exit 1,
# and the line says the run itself succeeded (a rerun to the same OUT then
# fails as "already exists"), the trace's temporary gone.
r = subprocess.run([HALO, "convert", fsz, os.path.join(fsz_dir, "t.zarr"), "--chunks", "4,8,8",
                    "--compressor", "none", "--trace", os.path.join(fsz_dir, "t.json"),
                    "--quiet"], capture_output=True, text=True, timeout=120,
                   preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192)))
check(r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot write the trace: File too "
      "large (the run itself succeeded)" in r.stderr and os.listdir(fsz_dir) == ["t.zarr"],
      "a trace over ulimit -f after the output is written: says the run succeeded",
      (r.stderr, os.listdir(fsz_dir)))
shutil.rmtree(os.path.join(fsz_dir, "t.zarr"), ignore_errors=True)

# Address-space limits over what halo's libraries take: each run either
# succeeds or is refused in one line, nothing left (in a band 30 % wide
# StarPU or FFTW asserted, with a backtrace, or hung). ASan's shadow
# memory cannot live under such a limit.
if "ASAN_OPTIONS" not in os.environ:
    tifffile.imwrite(path("as_psf.tif"), np.ones((5, 5, 5), np.float32), photometric="minisblack")
    as_in = good_array("as.zarr", shape=(64, 128, 128), chunks=(16, 64, 64))
    as_dir = path("as-out")
    bad = []
    for mb in range(340, 660, 40):
        shutil.rmtree(as_dir, ignore_errors=True)
        os.makedirs(as_dir)
        for mode in ("exact", "overlap"):
            r = subprocess.run([HALO, "deconvolve", as_in, path("as_psf.tif"),
                                os.path.join(as_dir, "o.zarr"), "--iterations", "2", "--mode",
                                mode, "--quiet", "--overwrite"], capture_output=True, text=True,
                               timeout=120, preexec_fn=lambda: resource.setrlimit(
                                   resource.RLIMIT_AS, (mb << 20, mb << 20)))
            # refused for the limit, or for the budget it leaves
            ok = (r.returncode == 0 and os.listdir(as_dir) == ["o.zarr"]) or (
                r.returncode == 1 and r.stderr.count("\n") == 1 and
                ("the address-space limit (ulimit -v, or a batch system's vmem) of " in r.stderr
                 or "--mode exact holds about" in r.stderr) and os.listdir(as_dir) == [])
            if not ok:
                bad.append((mb, mode, r.returncode, r.stderr[-300:], os.listdir(as_dir)))
    check(not bad, "ulimit -v from 340 to 620 MB: each run succeeds or is refused in one line",
          bad)

# SIGINT during a run: exits non-zero soon, leaves no OUT.
big = good_array("slow.zarr", shape=(128, 256, 256), chunks=(8, 64, 64))
out = path("interrupted.zarr")
interrupt(["convert", big, out, "--compressor", "zstd", "--clevel", "9", "--chunks", "4,32,32",
           "--ncpu", "1", "--quiet"], 1.0, "interrupted", 5)
# SIGTERM sent twice at once, as timeout(1) sends it (to the process, then
# its group): one request, not an impatient second (it left the temporary
# output behind in about one run in three).
interrupt(["convert", big, out, "--compressor", "zstd", "--clevel", "9", "--chunks", "4,32,32",
           "--ncpu", "1", "--quiet"], 1.0, "interrupted", 5, sig=signal.SIGTERM, twice=True)
# SIGHUP (the terminal closed) stops a run as Ctrl-C does.
interrupt(["convert", big, out, "--compressor", "zstd", "--clevel", "9", "--chunks", "4,32,32",
           "--ncpu", "1", "--quiet"], 1.0, "interrupted", 5, sig=signal.SIGHUP)

# A SIGINT ignored as the run starts (a script's background job) stays
# ignored: StarPU's own handler, installed as it started, had replaced it,
# so a Ctrl-C to the script ended the job.
# halo run installed its handlers only once StarPU had started: the same.
tifffile.imwrite(path("ign_psf.tif"), np.ones((3, 3, 3), np.float32), photometric="minisblack")
with open(path("ign.json"), "w") as f:
    json.dump({"steps": [{"name": "a", "op": "from_zarr", "path": big}] + [
        {"name": f"u{i}", "op": "map_overlap", "input": f"u{i - 1}" if i else "a",
         "kernel": "uniform", "depth": 2} for i in range(40)] + [
        {"name": "o", "op": "to_zarr", "input": "u39", "path": out}]}, f)
for cmd in (["deconvolve", big, path("ign_psf.tif"), out, "--iterations", "200"],
            ["run", path("ign.json")]):
    proc = subprocess.Popen([HALO, *cmd, "--ncpu", "1", "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    t0 = time.time()
    while proc.poll() is None and time.time() - t0 < 60 and \
            not [f for f in os.listdir(TMP) if "interrupted.zarr" in f]:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    left = [f for f in os.listdir(TMP) if "interrupted.zarr" in f]
    check(alive and proc.returncode == 1 and "interrupted" in err and not left,
          f"{cmd[0]}: a SIGINT ignored from the start stays ignored; SIGTERM still ends the "
          "run, nothing left", (alive, proc.returncode, err, left))

# An output name too long for the lock and temporary names beside it (a
# 250-byte name failed with "File name too long", and a 233-byte one ran
# without a lock): refused up front, nothing written.
longdir = path("longname")
shutil.rmtree(longdir, ignore_errors=True)
os.makedirs(longdir)
r = halo("convert", good_array("long_src.zarr"), os.path.join(longdir, "a" * 240 + ".zarr"))
check(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and
      "the name is too long for the temporary names halo writes" in r.stderr and
      os.listdir(longdir) == [], "an output name too long for halo's temporary names: refused",
      (r.stderr, os.listdir(longdir)))
r = halo("convert", good_array("long_src.zarr"), os.path.join(longdir, "a" * 200 + ".zarr"))
check(r.returncode == 0 and os.listdir(longdir) == ["a" * 200 + ".zarr"],
      "... a 205-byte name is written, with nothing beside it", (r.stderr, os.listdir(longdir)))

# Pages that differ only in their sign say so (both read "16-bit" before).
mixed = path("mixed_sign.tif")
with tifffile.TiffWriter(mixed) as tw:
    tw.write(np.zeros((8, 6), np.uint16), photometric="minisblack")
    tw.write(np.zeros((8, 6), np.int16), photometric="minisblack")
expect_error("pages of one size and depth, one signed", mixed,
             "page 1 is 8x6, 16-bit signed; page 0 is 8x6, 16-bit unsigned (height x width)")

# A signal in a run's first milliseconds, before StarPU has started, left
# the output's lock file behind: at each delay, the run either finished or
# left nothing.
early = []
tifffile.imwrite(path("early_psf.tif"), np.ones((3, 3, 3), np.float32), photometric="minisblack")
for cmd in (["convert", big, out, "--chunks", "16,64,64"],
            ["deconvolve", big, path("early_psf.tif"), out, "--iterations", "1"]):
    for delay in (0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.06):
        proc = subprocess.Popen([HALO, *cmd, "--quiet"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        left = [f for f in os.listdir(TMP) if "interrupted.zarr" in f]
        if left and proc.returncode != 0:
            early.append((cmd[0], delay, proc.returncode, left))
        shutil.rmtree(out, ignore_errors=True)
check(not early, "SIGTERM in a run's first milliseconds: no lock or temporary left", early)

# HALO_FFTW_WISDOM naming something that is not FFTW's wisdom: a user's
# file (it was replaced by wisdom), a folder (a DIR.tmp was left beside
# it), /dev/full (FFTW's reader read its zeros forever). Each is left
# alone, with a warning, and the run goes on.
mine = path("my-notes.txt")
with open(mine, "w") as f:
    f.write("not wisdom\n")
wdir = path("wisdom-dir")
shutil.rmtree(wdir, ignore_errors=True)
os.makedirs(wdir)
wimg = good_array("wimg.zarr", shape=(8, 16, 16), chunks=(8, 16, 16))
tifffile.imwrite(path("w_psf.tif"), np.ones((3, 3, 3), np.float32), photometric="minisblack")
for target, what in [(mine, "a user's file"), (wdir, "a folder"), ("/dev/full", "/dev/full")]:
    r = halo("deconvolve", wimg, path("w_psf.tif"), path("w_out.zarr"), "--iterations", "2",
             "--overwrite", "--quiet", timeout=60, env={"HALO_FFTW_WISDOM": target})
    left = [n for n in os.listdir(TMP) if n.startswith(os.path.basename(target) + ".")]
    check(r.returncode == 0 and "is not an FFTW wisdom file" in r.stderr and not left and
          (target != mine or open(mine).read() == "not wisdom\n"),
          f"HALO_FFTW_WISDOM naming {what}: left alone, with a warning", (r.stderr, left))

# A run that does not wind down after a signal (FFTW's patient planning
# does not look at it for seconds; a StarPU waiting for memory it cannot
# get never does) is ended after HALO_INTERRUPT_GRACE seconds, its
# temporary output removed (it ignored SIGTERM until a SIGKILL, and left
# it behind).
stuckimg = good_array("stuck.zarr", shape=(64, 256, 256), chunks=(64, 256, 256))
tifffile.imwrite(path("stuck_psf.tif"), np.ones((3, 3, 3), np.float32), photometric="minisblack")
wisdom = path("fresh.wisdom")
if os.path.exists(wisdom):
    os.remove(wisdom)
proc = subprocess.Popen([HALO, "deconvolve", stuckimg, path("stuck_psf.tif"), out,
                         "--iterations", "1", "--quiet", "--depth", "0,0,0"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        env={**os.environ, "HALO_FFTW_PLANNER": "patient",
                             "HALO_FFTW_WISDOM": wisdom, "HALO_INTERRUPT_GRACE": "1"})
# Signalled once its output is begun (then planning): a fixed second was,
# on a loaded machine under ASan, before halo handled signals at all.
t0 = time.time()
while proc.poll() is None and time.time() - t0 < 60 and \
        not [f for f in os.listdir(TMP) if "interrupted.zarr" in f]:
    time.sleep(0.05)
time.sleep(0.5)
if proc.poll() is None:
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    took = time.time() - t0
    check(proc.returncode == 1 and "did not wind down in time" in err and took < 3 and
          not [f for f in os.listdir(TMP) if "interrupted.zarr" in f],
          f"a run still busy {took:.1f} s after SIGTERM is ended, nothing left",
          (proc.returncode, err))
else:
    proc.communicate()
    skip("a run still busy after SIGTERM is ended", "the run finished before the signal")

# A second SIGINT kills at once (FFTW's patient planning does not look at
# the first for seconds); the next run to the same OUT removes what the
# killed one left.
slowimg = good_array("plan.zarr", shape=(64, 256, 256), chunks=(64, 256, 256))
tifffile.imwrite(path("plan_psf.tif"), np.ones((3, 3, 3), np.float32), photometric="minisblack")
proc = subprocess.Popen([HALO, "deconvolve", slowimg, path("plan_psf.tif"), out, "--iterations",
                         "1", "--quiet", "--depth", "0,0,0"], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, env={**os.environ, "HALO_FFTW_PLANNER": "patient"})
time.sleep(1.0)
if proc.poll() is None:
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    check(proc.returncode == -signal.SIGINT and time.time() - t0 < 2,
          "a second SIGINT kills at once", proc.returncode)
    halo("convert", p, out, "--quiet", check_rc=0)
    check(not [f for f in os.listdir(TMP) if "interrupted.zarr.halo" in f],
          "the next run to that OUT removes what the killed run left")
    shutil.rmtree(out, ignore_errors=True)
else:
    proc.communicate()
    skip("a second SIGINT kills at once", "the run finished before the signal")
    skip("the next run removes what the killed run left", "the run finished first")

# ---- halo deconvolve ----
img = good_array("dimg.zarr", shape=(12, 16, 16), chunks=(6, 8, 8))


def psf_file(name, data):
    p = path(name)
    tifffile.imwrite(p, np.asarray(data, dtype=np.float32), photometric="minisblack")
    return p


good_psf = psf_file("good_psf.tif", np.ones((3, 3, 3)))


def expect_deconv_error(name, inp, psf, needle, *opts, code=1):
    out = path("bad_out.zarr")
    shutil.rmtree(out, ignore_errors=True)
    before = digest(inp)
    r = halo("deconvolve", inp, psf, out, *opts)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == code, f"deconvolve {name}: exit {code}", f"exit {r.returncode}: {r.stderr}")
    check(len(lines) == 1 and lines[0].startswith("halo: ") and needle in lines[0],
          f"deconvolve {name}: one line naming '{needle}'", r.stderr)
    check(not [f for f in os.listdir(os.path.dirname(out)) if "bad_out" in f],
          f"deconvolve {name}: nothing written")
    check(digest(inp) == before, f"deconvolve {name}: input unchanged")


expect_deconv_error("2D PSF", img, psf_file("psf2d.tif", np.ones((5, 5))), "must be 3D")
# NaN or infinity in the image: refused in both modes (exact mode gave
# finite garbage around it, overlap mode all NaN).
nan_img = path("nan_img.zarr")
shutil.rmtree(nan_img, ignore_errors=True)
zn = zarr.open(nan_img, mode="w", shape=(12, 16, 16), chunks=(6, 8, 8), dtype="f4")
zn[:] = 1
zn[7, 3, 12] = np.inf
expect_deconv_error("an infinity in the image, exact mode", nan_img, good_psf,
                    "nan_img.zarr: the voxel at 7,3,12 (z,y,x) holds an infinity (in float32), "
                    "which RL cannot deconvolve", "--mode", "exact")
zn[7, 3, 12] = np.nan
expect_deconv_error("a NaN in the image, exact mode", nan_img, good_psf,
                    "nan_img.zarr: the voxel at 7,3,12 (z,y,x) holds NaN, which RL cannot "
                    "deconvolve", "--mode", "exact")
expect_deconv_error("a NaN in the image, overlap mode", nan_img, good_psf,
                    "nan_img.zarr: the voxel at 7,3,12 (z,y,x) holds NaN, which RL cannot "
                    "deconvolve", "--mode", "overlap")
# A NaN fill value where an edge chunk passes the array's end is no voxel
# of the image: overlap mode refused such an array, exact mode ran.
nan_fill = path("nan_fill.zarr")
shutil.rmtree(nan_fill, ignore_errors=True)
zf = zarr.open(nan_fill, mode="w", shape=(10, 10, 10), chunks=(4, 4, 4), dtype="f4",
               fill_value=np.nan)
zf[:] = 1
for mode in ("overlap", "exact"):
    shutil.rmtree(path("nan_fill_out.zarr"), ignore_errors=True)
    r = halo("deconvolve", nan_fill, good_psf, path("nan_fill_out.zarr"), "--mode", mode,
             "--iterations", 2, "--quiet")
    check(r.returncode == 0, f"a NaN fill beyond the array's end, {mode} mode: runs", r.stderr)
# NaN does not pass a cast to integers: RL behind astype uint16 runs, as
# numpy would (it was refused); behind astype float64 it is still refused.
for dt, ok in [("uint16", True), ("float64", False)]:
    pipe = path(f"nan_cast_{dt}.json")
    with open(pipe, "w") as f:
        json.dump({"steps": [
            {"name": "a", "op": "from_zarr", "path": nan_img},
            {"name": "c", "op": "astype", "input": "a", "dtype": dt},
            {"name": "d", "op": "map_overlap", "kernel": "richardson_lucy", "input": "c",
             "psf": good_psf, "depth": 2, "iterations": 2},
            {"name": "m", "op": "max", "input": "d"}]}, f)
    r = halo("run", pipe, "--quiet")
    check(r.returncode == 0 if ok else
          r.returncode == 1 and "holds NaN, which RL cannot" in r.stderr,
          f"a NaN behind astype {dt}, then RL: {'runs' if ok else 'refused'}", r.stderr)
# Values whose sums over an RL task's FFT pass float32's range: refused
# (all NaN, or all 0 in an integer output, came out with exit 0).
zn[:] = 1
zn[7, 3, 12] = 2e37
for mode in ("exact", "overlap"):
    expect_deconv_error(f"values that overflow RL's FFTs, {mode} mode", nan_img, good_psf,
                        "nan_img.zarr: the chunk at 6,0,8 (z,y,x) holds values up to 2e+37: "
                        "Richardson-Lucy's float32 FFTs of", "--mode", mode)
# A boundary constant pads the image in those FFTs too: checked alike
# (3e38 gave all NaN in overlap mode, infinities in exact mode, exit 0).
for mode in ("exact", "overlap"):
    expect_deconv_error(f"a boundary constant that overflows RL's FFTs, {mode} mode", img,
                        good_psf, "the boundary constant holds values up to 3e+38: "
                        "Richardson-Lucy's float32 FFTs of", "--mode", mode, "--boundary",
                        "constant=3e38")
# --memory beyond what the process may use: said. Under an address-space
# limit the budgets come from the room left under it (StarPU asserted).
r = halo("deconvolve", img, good_psf, path("mem_out.zarr"), "--memory", "100T", "--overwrite",
         "--quiet", "--iterations", "1")
check(r.returncode == 0 and "warning: --memory 100 TiB is more than the" in r.stderr,
      "--memory above the machine's memory: a warning", r.stderr)
# convert and run --dry-run said nothing.
mem_pipe = path("mem_pipe.json")
with open(mem_pipe, "w") as f:
    json.dump({"steps": [{"name": "a", "op": "from_zarr", "path": img},
                         {"name": "o", "op": "to_zarr", "input": "a",
                          "path": path("mem_run.zarr"), "overwrite": True}]}, f)
for argv in (["convert", img, path("mem_conv.zarr"), "--overwrite", "--quiet"],
             ["run", mem_pipe, "--dry-run"]):
    r = halo(*argv, "--memory", "100T")
    check(r.returncode == 0 and r.stderr.count("warning: --memory 100 TiB is more than the") == 1,
          f"{argv[0]}{' --dry-run' if 'run' == argv[0] else ''}: --memory above the machine's "
          "memory: a warning", r.stderr)
if "ASAN_OPTIONS" in os.environ or json.loads(halo("info", "--json").stdout)["workers"]["cuda"]:
    # The sanitizer's shadow memory and CUDA's context take terabytes of
    # address space.
    skip("under ulimit -v, a --memory above the room left", "ASan or CUDA maps terabytes")
else:
    r = subprocess.run(["sh", "-c", 'ulimit -v 1500000 && exec "$@"', "sh", HALO, "deconvolve",
                        img, good_psf, path("mem_out.zarr"), "--memory", "2G", "--overwrite",
                        "--quiet", "--iterations", "1"], capture_output=True, text=True,
                       timeout=300)
    check(r.returncode == 0 and "warning: --memory 2 GiB is more than the" in r.stderr,
          "under ulimit -v, a --memory above the room left: a warning, and the run completes",
          r.stderr)
# A background-subtracted PSF dips below zero: clipped, with a warning (the
# output was infinities).
g = np.exp(-np.sum(np.square(np.meshgrid(*[np.arange(7) - 3] * 3, indexing="ij")), axis=0) / 3)
g = (g - 0.05).astype(np.float32)
said = f"{np.count_nonzero(g < 0)} negative values in the PSF (down to {g.min() / g.max():.3g} " \
       "of its peak) set to 0"
neg_in = good_array("negpsf_in.zarr", shape=(12, 16, 16), chunks=(6, 8, 8))
for mode in ("exact", "overlap"):
    out, clipped = path("negpsf.zarr"), path("negpsf-clipped.zarr")
    r = halo("deconvolve", neg_in, psf_file("negpsf.tif", g), out, "--mode", mode,
             "--iterations", "5", "--overwrite", "--quiet")
    q = halo("deconvolve", neg_in, psf_file("negpsf-clipped.tif", g.clip(0, None)), clipped,
             "--mode", mode, "--iterations", "5", "--overwrite", "--quiet")
    res = zarr.open(out, mode="r")[:] if r.returncode == 0 else np.array([np.nan])
    ref = zarr.open(clipped, mode="r")[:] if q.returncode == 0 else None
    check(r.returncode == 0 and said in r.stderr and np.isfinite(res).all() and
          ref is not None and np.array_equal(res, ref),
          f"a PSF with negative values, {mode} mode: clipped with a warning; the result of the "
          "PSF clipped by hand", r.stderr)
# A PSF sampled at another spacing than the image (both files say theirs):
# a warning, in the image's unit (a pipeline's naming its file and step);
# the same spacing in another unit, or a PSF without one, says nothing.
img_um = path("spaced.tif")
tifffile.imwrite(img_um, np.random.default_rng(0).random((12, 16, 16)).astype(np.float32),
                 imagej=True, resolution=(10, 10),
                 metadata={"spacing": 0.5, "unit": "um", "axes": "ZYX"})
for name, res, meta, warned in [
        ("psf_z.tif", (10, 10), {"spacing": 0.2, "unit": "um"}, True),
        ("psf_nm.tif", (0.01, 0.01), {"spacing": 500, "unit": "nm"}, False),
        ("psf_bare.tif", None, {}, False)]:
    psf_path = path(name)
    tifffile.imwrite(psf_path, g.clip(0, None), imagej=True, resolution=res,
                     metadata=dict(meta, axes="ZYX"))
    for cmd in (["deconvolve", img_um, psf_path, path("spaced_out.zarr")],
                ["run", pipeline_file("spaced", img_um, psf_path)]):
        r = halo(*cmd, "--overwrite", "--quiet", "--iterations", "1", check_rc=0) \
            if cmd[0] == "deconvolve" else halo(*cmd, "--quiet", check_rc=0)
        where = "" if cmd[0] == "deconvolve" else f'{cmd[1]}: step "d": '  # a pipeline's step
        want = f"warning: {where}{psf_path}: the PSF's voxels are 0.2x0.1x0.1 micrometer, the " \
               "image's 0.5x0.1x0.1 micrometer"
        check(r.returncode == 0 and (want in r.stderr) == warned and
              ("voxels are" in r.stderr) == warned,
              f"halo {cmd[0]}, a PSF {'sampled otherwise' if warned else 'as the image'} "
              f"({name}): {'a warning' if warned else 'nothing said'}", r.stderr)
# The threshold is 1 %: a z spacing of 0.5025 (0.5 % off) says nothing,
# 0.51 (2 %) a warning.
for zs, warned in ((0.5025, False), (0.51, True)):
    psf_path = path(f"psf_{zs}.tif")
    tifffile.imwrite(psf_path, g.clip(0, None), imagej=True, resolution=(10, 10),
                     metadata={"spacing": zs, "unit": "um", "axes": "ZYX"})
    r = halo("deconvolve", img_um, psf_path, path("spaced_out.zarr"), "--overwrite", "--quiet",
             "--iterations", "1", check_rc=0)
    check(r.returncode == 0 and ("voxels are" in r.stderr) == warned,
          f"a PSF's z spacing {zs} against the image's 0.5: "
          f"{'a warning' if warned else 'nothing said'} (1 % is the threshold)", r.stderr)
thin = good_array("thin.zarr", shape=(1, 16, 16), chunks=(1, 8, 8))
expect_deconv_error("--depth deeper than the volume, naming the input", thin, good_psf,
                    "thin.zarr: a depth of 2 on axis 0 is deeper than the volume (1)",
                    "--depth", "2,1,1")
expect_deconv_error("... with --boundary none too, in one line (its advice, once)", thin,
                    good_psf, "thin.zarr: a depth of 2 on axis 0 is deeper than the volume (1)",
                    "--depth", "2,1,1", "--boundary", "none")
expect_deconv_error("overlap mode on a volume thinner than the PSF", thin,
                    psf_file("psf5.tif", np.ones((5, 3, 3))),
                    "larger than the smallest haloed chunk (3x", "--mode", "overlap")
expect_deconv_error("PSF larger than a haloed chunk", img,
                    psf_file("psf_big.tif", np.ones((3, 3, 41))), "larger than the smallest haloed chunk",
                    "--depth", "1,1,1")
expect_deconv_error("PSF all zeros", img, psf_file("psf0.tif", np.zeros((3, 3, 3))),
                    "sums to 0")
expect_deconv_error("PSF negative sum", img, psf_file("psfneg.tif", -np.ones((3, 3, 3))),
                    "must be positive")
nan = np.ones((3, 3, 3))
nan[1, 1, 1] = np.nan
expect_deconv_error("NaN in the PSF", img, psf_file("psfnan.tif", nan), "NaN")
cplx = good_array("cimg.zarr", shape=(6, 8, 8), chunks=(6, 8, 8))
edit_zarray(cplx, dtype="<c8")
expect_deconv_error("image of unknown dtype", cplx, good_psf, "unsupported dtype '<c8'")
expect_deconv_error("missing PSF", img, path("nopsf.tif"), "nopsf.tif: no such file")
expect_deconv_error("iterations < 1", img, good_psf, "--iterations", "--iterations", "0")
expect_deconv_error("depth arity", img, good_psf, "--depth", "--depth", "1,2")
expect_deconv_error("negative depth", img, good_psf, "--depth", "--depth", "1,-2,1")
expect_deconv_error("chunks arity", img, good_psf, "--chunks", "--chunks", "4,4")
expect_deconv_error("chunks zero", img, good_psf, "--chunks", "--chunks", "4,0,4")
expect_deconv_error("unknown boundary", img, good_psf, "unknown 'wrap'", "--boundary", "wrap")
expect_deconv_error("infinite constant boundary", img, good_psf, "the constant must be a finite float32",
                    "--boundary", "constant=inf")
expect_deconv_error("a constant float32 cannot hold (it filled the result with inf)", img,
                    good_psf, "finite float32 number", "--boundary", "constant=1e300")
expect_deconv_error("--trace into a missing folder", img, good_psf,
                    "--trace: 'no-such-dir/t.json' cannot be written", "--trace",
                    "no-such-dir/t.json")
# A float64 PSF of huge values normalises like any other (its sum overflowed
# to inf, and the result was all zeros).
huge, ones = path("huge_psf.zarr"), path("ones_psf.zarr")
for p_, v in [(huge, 1e308), (ones, 1.0)]:
    z = zarr.open(p_, mode="w", shape=(3, 3, 3), chunks=(3, 3, 3), dtype="f8")
    z[:] = v
outs = []
for p_ in (huge, ones):
    o = path(os.path.basename(p_) + ".out.zarr")
    halo("deconvolve", img, p_, o, "--iterations", "2", "--quiet", "--overwrite", check_rc=0)
    outs.append(zarr.open(o, mode="r")[:] if os.path.exists(o) else None)
check(outs[0] is not None and outs[1] is not None and np.array_equal(outs[0], outs[1])
      and outs[1].max() > 0, "a PSF of 1e308s deconvolves as a PSF of ones")

# A trace must not be written over (or into) a file the run reads or writes.
psf_before = open(good_psf, "rb").read()
expect_deconv_error("--trace onto the PSF", img, good_psf, "which this run reads or writes",
                    "--trace", good_psf)
check(open(good_psf, "rb").read() == psf_before, "deconvolve --trace onto the PSF: PSF kept")
# Nor over a file of the user's that is not a trace (notes were replaced by
# a trace, silently); a trace of an earlier run is replaced.
notes = path("notes.txt")
open(notes, "w").write("my notes\n")
expect_deconv_error("--trace onto a file that is not a trace", img, good_psf,
                    "exists and is not a halo trace", "--trace", notes)
check(open(notes).read() == "my notes\n", "deconvolve --trace onto notes: notes kept")
# Another profiler's Chrome trace begins as halo's does: its producer decides.
chrome = path("chrome.json")
other = '{"displayTimeUnit":"ns","traceEvents":[{"ph":"X","name":"p","pid":1,"tid":1,"ts":0,"dur":5}]}\n'
open(chrome, "w").write(other)
expect_deconv_error("--trace onto another tool's Chrome trace", img, good_psf,
                    "exists and is not a halo trace", "--trace", chrome)
check(open(chrome).read() == other, "deconvolve --trace onto a Chrome trace: kept")
trace = path("again.json")
for i in range(2):
    r = halo("deconvolve", img, good_psf, path("traced.zarr"), "--iterations", "1", "--quiet",
             "--overwrite", "--trace", trace)
check(r.returncode == 0 and json.load(open(trace))["traceEvents"],
      "--trace replaces a trace of an earlier run", r.stderr)
expect_deconv_error("--trace inside the input", img, good_psf, "lies inside",
                    "--trace", os.path.join(img, ".zarray"))
expect_deconv_error("--trace-fxt inside the output", img, good_psf, "lies inside",
                    "--trace-fxt", path("bad_out.zarr/fxt"))
gpus = json.loads(halo("info", "--json").stdout)["workers"]["cuda"]
if gpus:
    skip("deconvolve --ncpu 0 without a GPU", "this machine has a GPU")
else:
    expect_deconv_error("--ncpu 0 without a GPU", img, good_psf, "--ncpu 0 runs on GPUs alone",
                        "--ncpu", "0")
# StarPU aborts on settings it cannot read or use; halo says what is wrong.
for var, val, needle in [("STARPU_NCPU", "abc", "STARPU_NCPU='abc': not a number of workers (0 to 256)"),
                         ("STARPU_NCUDA", "-3", "STARPU_NCUDA='-3': not a number of workers (0 to 16)"),
                         # Each of StarPU's numeric variables, in tables
                         # halo searches: the first, the last, one between,
                         # a decimal, a per-device one, and its lists.
                         ("STARPU_LIMIT_CPU_MEM", "abc", "STARPU_LIMIT_CPU_MEM='abc': StarPU "
                          "needs a whole number, 0 or more there"),
                         ("STARPU_BACKOFF_MAX", "1x", "STARPU_BACKOFF_MAX='1x': StarPU needs "
                          "a whole number, 0 or more there"),
                         ("STARPU_WORKER_TREE", "-1", "STARPU_WORKER_TREE='-1': StarPU needs "
                          "a whole number, 0 or more there"),
                         ("STARPU_MIN_PRIO", "x", "STARPU_MIN_PRIO='x': StarPU needs a whole "
                          "number, 0 or more there"),
                         ("STARPU_SCHED_ALPHA", "fast", "STARPU_SCHED_ALPHA='fast': StarPU "
                          "needs a number there"),
                         ("STARPU_LIMIT_CUDA_0_MEM", "lots", "STARPU_LIMIT_CUDA_0_MEM='lots': "
                          "StarPU needs a whole number, 0 or more there"),
                         ("STARPU_WORKERS_CPUID", "abc", "STARPU_WORKERS_CPUID='abc': StarPU "
                          "needs a list of CPU numbers (0,2,4 or 0-7) there"),
                         ("HALO_INFLIGHT", "abc", "HALO_INFLIGHT='abc': not a number of "
                          "chunks (1 to 1048576)"),
                         ("HALO_FFTW_PLANNER", "slow", "HALO_FFTW_PLANNER='slow': not "
                          "estimate, measure or patient"),
                         ("HALO_HUGEPAGES", "yes", "HALO_HUGEPAGES='yes': not 0 or 1"),
                         ("HALO_SYNC", "2", "HALO_SYNC='2': not 0 or 1"),
                         ("HALO_CUFFT_CALLBACKS", "yes", "HALO_CUFFT_CALLBACKS='yes': not 0, "
                          "load, store or 1"),
                         ("HALO_CUDA_GRAPHS", "on", "HALO_CUDA_GRAPHS='on': not 0 or 1")]:
    r = halo("info", env={var: val})
    check(r.returncode == 1 and r.stderr.strip() == "halo: " + needle,
          f"{var}={val}: one line, exit 1 (StarPU aborted, or halo ignored it)", r.stderr)
# HALO_SYNC=1: the output flushed to the disk before it takes its name,
# replacing an old one.
synced = good_array("sync_in.zarr")
for k in range(2):
    r = halo("convert", synced, path("synced.zarr"), "--overwrite", "--chunks", "2,4,4",
             env={"HALO_SYNC": "1"})
check(r.returncode == 0 and np.array_equal(zarr.open(path("synced.zarr"), mode="r")[:],
                                           zarr.open(synced, mode="r")[:]) and
      not [f for f in os.listdir(TMP) if "synced.zarr." in f],
      "HALO_SYNC=1: an output replaced, whole, nothing beside it", r.stderr)
# Well-formed values are StarPU's to use; an option wins over its variable
# (README), junk in it included, without StarPU's warnings.
r = halo("info", "--json", env={"STARPU_SCHED_ALPHA": "1.5", "STARPU_WORKERS_CPUID": "0-1",
                                "STARPU_LIMIT_CUDA_0_MEM": "1000"})
check(r.returncode == 0 and not r.stderr, "well-formed STARPU_* numbers and lists pass",
      r.stderr)
r = halo("info", "--json", "--ncpu", "1", "--ncuda", "0", "--sched", "eager",
         env={"STARPU_NCPU": "abc", "STARPU_NCUDA": "x", "STARPU_SCHED": "nope"})
info = json.loads(r.stdout) if r.returncode == 0 else {}
check(r.returncode == 0 and not r.stderr and info["workers"]["cpu"] == 1 and
      info["starpu"]["scheduler"] == "eager",
      "--ncpu, --ncuda and --sched win over junk in STARPU_NCPU, STARPU_NCUDA and STARPU_SCHED",
      r.stderr)
# RL keeps a PSF spectrum per haloed shape all run long: with boundary
# none, 27 shapes in 3x3x3 chunks, 121 MB here beyond the chunks' 49 MB.
# Under a StarPU limit set by hand between the two, StarPU waited forever.
spectra = good_array("spectra.zarr", shape=(64, 512, 512), chunks=(22, 171, 171))
r = halo("deconvolve", spectra, psf_file("psf9.tif", np.ones((9, 9, 9))), path("bad_out.zarr"),
         "--mode", "overlap", "--boundary", "none", "--iterations", "1",
         env={"STARPU_LIMIT_CPU_MEM": "150"}, timeout=120)
check(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and
      "PSF spectra" in r.stderr and "limit of 150 MiB" in r.stderr and
      not os.path.exists(path("bad_out.zarr")),
      "RL's PSF spectra over a hand-set StarPU limit: one line, nothing written", r.stderr)
r = halo("info", env={"XDG_CACHE_HOME": "/proc"})
check(r.returncode == 0 and "workers:" in r.stdout,
      "an unusable XDG_CACHE_HOME falls back to a private folder (StarPU aborted)", r.stderr)
# A PSF that is a folder (no volume: neither Zarr nor TIFF files) is named
# as such, not as OUTPUT's parent.
os.makedirs(path("psf_dir"), exist_ok=True)
r = halo("deconvolve", img, path("psf_dir"), path("psf_dir/out.zarr"))
check(r.returncode == 1 and "not a Zarr array" in r.stderr and "lies" not in r.stderr,
      "deconvolve with a folder for PSF: says it is no volume", r.stderr)
r = halo("deconvolve", img, good_psf, img, "--overwrite")
check(r.returncode == 1 and "OUT is the same as IN" in r.stderr,
      "deconvolve OUT equal to IN refused", r.stderr)
before = open(good_psf, "rb").read() if os.path.isfile(good_psf) else None
r = halo("deconvolve", img, good_psf, good_psf, "--overwrite")
check(r.returncode == 1 and "same as PSF" in r.stderr and before is not None
      and open(good_psf, "rb").read() == before, "deconvolve OUTPUT equal to PSF refused, PSF kept",
      r.stderr)
r = halo("deconvolve", img, good_psf, path("small_depth.zarr"), "--depth", "0,0,0", "--quiet",
         "--iterations", "2")
r2 = halo("deconvolve", img, good_psf, path("small_depth.zarr"), "--depth", "0,0,0")
check(r2.returncode == 1 and len(r2.stderr.strip().splitlines()) == 1 and "already exists" in r2.stderr,
      "a run refused (OUT exists) prints its error alone, not the depth warning first", r2.stderr)
check(r.returncode == 0 and "warning" in r.stderr and "less than half the PSF" in r.stderr,
      "depth < psf//2 prints a warning", r.stderr)
r = halo("deconvolve", img, good_psf, path("neg_const.zarr"), "--boundary", "constant=-1",
         "--quiet", "--iterations", "1")
check(r.returncode == 0 and "warning: --boundary constant=-1 is negative" in r.stderr,
      "a negative constant boundary prints a warning", r.stderr)
# An empty path (an unset variable) is named, not taken for the folder.
for argv in [("convert", "", path("empty_out.zarr")), ("deconvolve", img, good_psf, ""),
             ("info", ""), ("run", "")]:
    r = halo(*argv)
    check(r.returncode == 2 and "is an empty path" in r.stderr and
          len(r.stderr.splitlines()) == 1, f"{argv[0]}: an empty path named", r.stderr)

# Results lost to a full disk are an error, not exit 0.
with open("/dev/full", "w") as full:
    r = subprocess.run([HALO, "info", img], stdout=full, stderr=subprocess.PIPE, text=True)
check(r.returncode == 1 and "halo: standard output: No space left on device" in r.stderr,
      "stdout on a full disk: exit 1, one line", r.stderr)

done()
