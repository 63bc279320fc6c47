"""Zarr I/O against python zarr 2.13, both directions: python writes, halo
converts (rechunking, casting), python reads halo's output and compares
value for value. Covers every dtype and byte order, every blosc compressor
and shuffle, numcodecs' Zlib, GZip, Zstd, LZ4, LZMA and BZ2, both
separators, edge chunks, missing chunks and fill values, arrays inside
groups, Zarr v3 input and OME-Zarr output."""
import glob
import json
from fractions import Fraction
import lzma
import os
import shutil
import sys

import numcodecs
import numpy as np
import zarr

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import check, done, halo, path  # noqa: E402

rng = np.random.default_rng(1234)


def sample(dtype, shape):
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) > 0.5
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt.newbyteorder("="))


def convert(src, dst, *opts):
    shutil.rmtree(dst, ignore_errors=True)
    return halo("convert", src, dst, "--quiet", *opts, check_rc=0)


def same(a, b):
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


# 1. Every dtype in both byte orders, chunks that do not divide the shape.
shape = (9, 14, 23)
for base in ["u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "f2", "f4", "f8", "b1"]:
    orders = ["|"] if base[1] == "1" else ["<", ">"]
    for order in orders:
        dt = order + base
        src, dst = path(f"dt_{base}{'be' if order == '>' else ''}.zarr"), path("dt_out.zarr")
        data = sample(dt, shape)
        z = zarr.open(src, mode="w", shape=shape, chunks=(4, 5, 7), dtype=dt)
        z[:] = data
        r = convert(src, dst, "--chunks", "3,6,10")
        out = zarr.open(dst, mode="r")
        check(r.returncode == 0 and same(out[:], data) and out.chunks == (3, 6, 10),
              f"dtype {dt}: rechunked copy equals python's data",
              f"rc={r.returncode} {r.stderr} chunks={out.chunks if r.returncode == 0 else None}")
        check(np.dtype(out.dtype).itemsize == np.dtype(dt).itemsize and
              np.dtype(out.dtype).kind == np.dtype(dt).kind,
              f"dtype {dt}: output dtype {out.dtype}")

# 2. Every compressor and shuffle, read and written.
data = sample("<u2", (12, 20, 30))
for cname in ["lz4", "lz4hc", "blosclz", "zstd", "zlib"]:
    for shuffle, sname in [(0, "none"), (1, "byte"), (2, "bit")]:
        src, dst = path(f"c_{cname}_{shuffle}.zarr"), path("c_out.zarr")
        z = zarr.open(src, mode="w", shape=data.shape, chunks=(5, 8, 16), dtype="<u2",
                      compressor=numcodecs.Blosc(cname=cname, clevel=7, shuffle=shuffle,
                                                 blocksize=0))
        z[:] = data
        r = convert(src, dst, "--compressor", cname, "--shuffle", sname, "--clevel", "3")
        meta = json.load(open(os.path.join(dst, ".zarray"))) if r.returncode == 0 else {}
        comp = meta.get("compressor") or {}
        check(r.returncode == 0 and same(zarr.open(dst, mode="r")[:], data),
              f"blosc {cname} shuffle {shuffle}: read and rewritten", r.stderr)
        check(comp.get("cname") == cname and comp.get("shuffle") == shuffle and
              comp.get("clevel") == 3, f"blosc {cname} shuffle {shuffle}: .zarray compressor",
              comp)

# A blosc compressor given by its id alone: numcodecs' defaults, as zarr
# reads it (lz4, level 5, byte shuffle), kept in the output.
src, dst = path("c_bare.zarr"), path("c_out.zarr")
zarr.open(src, mode="w", shape=data.shape, chunks=(5, 8, 16), dtype="<u2")[:] = data
meta = json.load(open(os.path.join(src, ".zarray")))
meta["compressor"] = {"id": "blosc"}
json.dump(meta, open(os.path.join(src, ".zarray"), "w"))
r = convert(src, dst)
comp = json.load(open(os.path.join(dst, ".zarray")))["compressor"] if r.returncode == 0 else {}
check(r.returncode == 0 and same(zarr.open(dst, mode="r")[:], zarr.open(src, mode="r")[:]) and
      comp.get("cname") == "lz4" and comp.get("clevel") == 5 and comp.get("shuffle") == 1,
      "blosc given as {\"id\": \"blosc\"} alone: numcodecs' defaults", r.stderr + str(comp))

# 2b. numcodecs' Zlib, GZip, Zstd (also Zarr v3's default) and LZ4:
# read, kept by default, level and all; python reads halo's chunks.
for dt in ["<u2", "<f4"]:
    data = sample(dt, (12, 20, 30))
    for comp in [numcodecs.Zlib(level=1), numcodecs.Zlib(level=9), numcodecs.GZip(level=5),
                 numcodecs.Zstd(level=1), numcodecs.Zstd(level=19), numcodecs.Zstd(level=-5),
                 numcodecs.LZ4(acceleration=1), numcodecs.LZ4(acceleration=30),
                 numcodecs.LZMA(preset=1), numcodecs.LZMA(format=lzma.FORMAT_ALONE, preset=2),
                 numcodecs.LZMA(check=lzma.CHECK_SHA256, preset=0),
                 numcodecs.LZMA(preset=3 | lzma.PRESET_EXTREME), numcodecs.BZ2(level=1),
                 numcodecs.BZ2(level=9)]:
        name = f"{comp.get_config()} {dt}"
        src, dst = path("nc.zarr"), path("nc_out.zarr")
        shutil.rmtree(src, ignore_errors=True)
        zarr.open(src, mode="w", shape=data.shape, chunks=(5, 8, 16), dtype=dt,
                  compressor=comp)[:] = data
        r = convert(src, dst, "--chunks", "4,9,11")
        out = zarr.open(dst, mode="r") if r.returncode == 0 else None
        check(out is not None and same(out[:], data) and
              out.compressor.get_config() == comp.get_config(),
              f"{name}: read, rechunked and written with the input's compressor",
              r.stderr or out.compressor)
# gzip asked for, and a level; another kind of compressor starts at level 5
# (a zstd input's 19 is not a blosc level).
shutil.rmtree(src, ignore_errors=True)
zarr.open(src, mode="w", shape=data.shape, chunks=(5, 8, 16), dtype=dt,
          compressor=numcodecs.Zstd(level=19))[:] = data
for opts, want in [(("--compressor", "gzip", "--clevel", "2"), numcodecs.GZip(level=2)),
                   (("--compressor", "gzip"), numcodecs.GZip(level=5)),
                   (("--compressor", "lz4"), numcodecs.Blosc("lz4", 5, 1)),
                   (("--compressor", "lzma"), numcodecs.LZMA(preset=5)),
                   (("--compressor", "bz2", "--clevel", "0"), numcodecs.BZ2(level=1)),
                   (("--clevel", "7"), numcodecs.Zstd(level=7))]:
    r = convert(src, dst, *opts)
    out = zarr.open(dst, mode="r") if r.returncode == 0 else None
    check(out is not None and same(out[:], data) and
          out.compressor.get_config() == want.get_config(),
          f"zstd input, {' '.join(opts)}: {want}", r.stderr or out.compressor)
r = convert(src, dst, "--shuffle", "bit")
check(r.returncode == 1 and "--shuffle applies to blosc; the output's compressor is zstd"
      in r.stderr, "zstd output and --shuffle: refused", r.stderr)
# What python's gzip and zlib read: gzip members one after another, zeros
# between and after them, anything after a zlib stream.
raw = np.ascontiguousarray(data[:5, :8, :16]).tobytes()
gz, zl = numcodecs.GZip(level=1), numcodecs.Zlib(level=1)
xz, bz = numcodecs.LZMA(preset=0), numcodecs.BZ2(level=1)
for comp, tail, blob in [
        (xz, "streams and junk", xz.encode(raw[:1000]) + xz.encode(raw[1000:]) + b"junk" * 3),
        (bz, "streams and junk", bz.encode(raw[:999]) + bz.encode(raw[999:]) + b"BZh9junk"),
        (gz, "members", gz.encode(raw[:1000]) + gz.encode(raw[1000:])),
        (gz, "members and zeros", gz.encode(raw[:999]) + bytes(3000) + gz.encode(raw[999:]) +
         bytes(9)),
        (gz, "zeros", gz.encode(raw) + bytes(5)),
        (zl, "xyz", zl.encode(raw) + b"xyz")]:
    shutil.rmtree(src, ignore_errors=True)
    zarr.open(src, mode="w", shape=data.shape, chunks=(5, 8, 16), dtype=dt,
              compressor=comp)[:] = data
    assert comp.decode(blob) == raw  # python's reading of it
    open(os.path.join(src, "0.0.0"), "wb").write(blob)
    r = convert(src, dst)
    check(r.returncode == 0 and same(zarr.open(dst, mode="r")[:], data),
          f"{comp.codec_id} chunk followed by {tail}: read as python reads it", r.stderr)
# Levels python reads (decoding takes none): an output that keeps the
# compressor gets the level clamped to the codec's range, else numcodecs'
# default, 1.
for cid, key, given, want in [("zlib", "level", None, 1), ("zlib", "level", 1.0, 1),
                              ("gzip", "level", "5", 1), ("zlib", "level", 12, 9),
                              ("zstd", "level", 23, 22), ("zstd", "level", -200000, -131072),
                              ("lz4", "acceleration", 2**31, 65537),
                              ("lz4", "acceleration", 0, 1)]:
    comp = numcodecs.get_codec({"id": cid})
    shutil.rmtree(src, ignore_errors=True)
    zarr.open(src, mode="w", shape=data.shape, chunks=(5, 8, 16), dtype=dt,
              compressor=comp)[:] = data
    meta = json.load(open(os.path.join(src, ".zarray")))
    meta["compressor"] = {"id": cid} if given is None else {"id": cid, key: given}
    json.dump(meta, open(os.path.join(src, ".zarray"), "w"))
    assert same(zarr.open(src, mode="r")[:], data)  # python reads it
    r = convert(src, dst)
    c = json.load(open(os.path.join(dst, ".zarray")))["compressor"] if r.returncode == 0 else {}
    check(same(zarr.open(dst, mode="r")[:], data) and c == {"id": cid, key: want},
          f"{cid} with {key} {given!r}: read; the output's {key} {want}", r.stderr or c)

# 3. No compressor, "." separator in, halo's "/" out; compressor none out.
src, dst = path("raw.zarr"), path("raw_out.zarr")
z = zarr.open(src, mode="w", shape=(7, 9, 11), chunks=(3, 4, 5), dtype="<f4", compressor=None,
              dimension_separator=".")
data = sample("<f4", (7, 9, 11))
z[:] = data
r = convert(src, dst, "--compressor", "none")
meta = json.load(open(os.path.join(dst, ".zarray")))
check(same(zarr.open(dst, mode="r")[:], data) and meta["compressor"] is None,
      "no compressor in and out, '.' separator in")
check(os.path.isdir(os.path.join(dst, "0")) and meta["dimension_separator"] == "/",
      "halo writes '/' chunk keys", meta)
# Without --compressor the output keeps the input's (none); --compressor
# then starts from blosc's defaults (level 5, byte shuffle).
for opts, want in [((), None), (("--compressor", "zstd"), ("zstd", 5, 1))]:
    r = convert(src, dst, *opts)
    c = json.load(open(os.path.join(dst, ".zarray")))["compressor"] if r.returncode == 0 else 0
    got = c and (c["cname"], c["clevel"], c["shuffle"])
    check(got == want and same(zarr.open(dst, mode="r")[:], data),
          f"uncompressed input, {' '.join(opts) or 'no --compressor'}: compressor {want}", c)
# Chunks of 16 MiB and more: where nothing but I/O is left to run (here
# the one read, and the last write), blosc gets the idle cores as threads.
big = sample("<u2", (32, 512, 1024))
src3, dst3 = path("big.zarr"), path("big_out.zarr")
zarr.open(src3, mode="w", shape=big.shape, chunks=big.shape, dtype="<u2",
          compressor=numcodecs.Blosc("lz4", 5, 1))[:] = big
r = convert(src3, dst3, "--chunks", "16,512,1024", "--compressor", "zstd")
check(r.returncode == 0 and same(zarr.open(dst3, mode="r")[:], big),
      "a 32 MiB chunk rechunked into two of 16 MiB, zstd: python reads them back", r.stderr)
src2 = path("slash.zarr")
z = zarr.open(src2, mode="w", shape=(7, 9, 11), chunks=(3, 4, 5), dtype="<f4",
              dimension_separator="/")
z[:] = data
convert(src2, dst)
check(same(zarr.open(dst, mode="r")[:], data), "'/' separator in")

# 4. Missing chunks read as fill_value (numbers, NaN, null).
for dt, fill in [("<u2", 7), ("<f4", float("nan")), ("<f8", -2.5), ("<i2", None)]:
    src, dst = path("fill.zarr"), path("fill_out.zarr")
    shutil.rmtree(src, ignore_errors=True)
    z = zarr.open(src, mode="w", shape=(8, 8, 8), chunks=(4, 4, 4), dtype=dt, fill_value=fill)
    z[0:4, 0:4, 0:4] = 3  # one chunk written, seven missing
    expect = np.full((8, 8, 8), 0 if fill is None else fill, dtype=dt)
    expect[0:4, 0:4, 0:4] = 3
    r = convert(src, dst)
    nfiles = len([f for f in os.listdir(src) if not f.startswith(".")])
    got = zarr.open(dst, mode="r")[:] if r.returncode == 0 else None
    check(nfiles == 1 and got is not None and same(got, expect),
          f"missing chunks read as fill_value {fill!r} ({dt})", f"{nfiles} chunk files; {r.stderr}")

# 5. An array inside a group; its attributes are kept.
root = path("group.zarr")
shutil.rmtree(root, ignore_errors=True)
g = zarr.open_group(root, mode="w")
arr = g.create_dataset("path/to/array", shape=(5, 6, 7), chunks=(2, 3, 4), dtype="<u2")
data = sample("<u2", (5, 6, 7))
arr[:] = data
arr.attrs["note"] = "kept"
arr.attrs["unit"] = "\u00b5m \U0001f52c"  # zarr 2.13 reads .zattrs as ASCII: escaped
dst = path("group_out.zarr")
convert(os.path.join(root, "path/to/array"), dst)
out = zarr.open(dst, mode="r")
check(same(out[:], data), "array inside a group is read")
# The group itself names the arrays at its top level (it said "not a Zarr
# array (no .zarray or zarr.json)", as if the data were missing).
g.create_dataset("raw", data=data)
g.create_dataset("beads", data=data)
for cmd in [("info", root), ("convert", root, path("g_out.zarr"))]:
    r = halo(*cmd, check_rc=1)
    check(r.stderr == f"halo: {root}/.zgroup: a Zarr group without OME-Zarr multiscales, "
          f"holding the arrays beads, raw: give the path of one, such as {root}/beads\n" and
          not os.path.exists(path("g_out.zarr")), f"halo {cmd[0]} of a plain group: its arrays "
          "named", r.stderr)
r = halo("info", os.path.join(root, "path"), check_rc=1)
check(r.stderr.endswith("path/.zgroup: a Zarr group without OME-Zarr multiscales, and without "
                        "an array at its top level\n"), "a group holding groups alone", r.stderr)
try:
    attrs = out.attrs.asdict()
except UnicodeDecodeError as e:
    attrs = e
check(attrs == {"note": "kept", "unit": "\u00b5m \U0001f52c"}, ".zattrs kept, non-ASCII too",
      attrs)
# Integers beyond int64 in .zattrs (python writes any) are kept digit for
# digit, and the others stay integers, in a plain array and in an
# OME-Zarr group (the group was taken for a plain array and refused, the
# array refused as malformed JSON; then the whole file was read as reals).
big = {"serial": 2**64 - 1, "low": -2**63 - 5, "edge": -2**63, "id": 12345678901234567,
       "n": 5, "deep": [1, {"x": 10**30}]}
arr.attrs.update(big)
convert(os.path.join(root, "path/to/array"), dst)
out = zarr.open(dst, mode="r")
got = out.attrs.asdict()
check(same(out[:], data) and all(got.get(k) == v and type(got.get(k)) is type(v)
                                 for k, v in big.items()),
      "integers over int64 in .zattrs: kept digit for digit, the others integers", got)
# Reals beyond double (python reads 1e400 as inf) were refused as malformed.
src_attrs = os.path.join(root, "path/to/array/.zattrs")
with open(src_attrs, "w") as f:
    f.write('{"d": 1e400, "m": -1.5E+999, "x": 2.5}')
convert(os.path.join(root, "path/to/array"), dst)
text = open(os.path.join(dst, ".zattrs")).read()
check("1e400" in text and "-1.5E+999" in text and
      zarr.open(dst, mode="r").attrs.asdict() == {"d": np.inf, "m": -np.inf, "x": 2.5},
      "reals beyond double in .zattrs: kept as written", text)
# Only numbers as JSON writes them are (1e400abc and 0x1p99999 were
# copied into a .zattrs python cannot read), and a string that looks
# like halo's mark stays a string.
for bad_num in ["1e400abc", "0x1p99999", "1.e400", "0099999999999999999999"]:
    with open(src_attrs, "w") as f:
        f.write('{"a": %s}' % bad_num)
    r = convert(os.path.join(root, "path/to/array"), dst)
    check(r.returncode == 1 and "malformed JSON" in r.stderr, f".zattrs with {bad_num}: refused",
          r.stderr)
with open(src_attrs, "w") as f:
    f.write('{"s": "\\u0000halo:1abc", "t": "\\u0000halo:12"}')
convert(os.path.join(root, "path/to/array"), dst)
got = zarr.open(dst, mode="r").attrs.asdict()
check(got == {"s": "\0halo:1abc", "t": "\0halo:12"}, "strings that look like halo's mark stay strings",
      got)
# A fill_value beyond int64 or double, as python reads it.
for fill, want in [("100000000000000000000", 1e20), ("1e400", np.inf)]:
    fv = path("bigfill.zarr")
    shutil.rmtree(fv, ignore_errors=True)
    os.makedirs(fv)
    with open(os.path.join(fv, ".zarray"), "w") as f:
        f.write('{"zarr_format": 2, "shape": [2, 3], "chunks": [2, 3], "dtype": "<f8", '
                '"compressor": null, "fill_value": %s, "filters": null, "order": "C"}' % fill)
    r = convert(fv, path("bigfill_out.zarr"))
    check(r.returncode == 0 and np.all(zarr.open(path("bigfill_out.zarr"), mode="r")[:] == want) and
          np.all(zarr.open(fv, mode="r")[:] == want), f"fill_value {fill}: read as python does",
          r.stderr)
arr.attrs.put({"note": "kept"})
# ... and in a Zarr v3 array's attributes, beside zarr_format (3 was read
# as 3.0 and refused).
v3 = path("v3_big.zarr")
os.makedirs(v3, exist_ok=True)
with open(os.path.join(v3, "zarr.json"), "w") as f:
    json.dump({"zarr_format": 3, "node_type": "array", "shape": [2, 3], "data_type": "uint16",
               "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 3]}},
               "chunk_key_encoding": {"name": "default"}, "fill_value": 9,
               "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
               "attributes": {"id": 2**64 - 1}}, f)
r = halo("info", v3, "--json", check_rc=0)
check(r.returncode == 0 and json.loads(r.stdout or "{}").get("shape") == [2, 3],
      "a Zarr v3 array with an integer over int64 in its attributes", r.stderr)
ome = path("serial.ome.zarr")
convert(path("group_out.zarr"), ome)
zarr.open_group(ome, mode="a").attrs["serial"] = 2**64 - 1
r = halo("info", ome, "--json", check_rc=0)
check(r.returncode == 0 and json.loads(r.stdout)["shape"] == [5, 6, 7],
      "... and in an OME-Zarr group's", r.stderr)
# A group's .zattrs that is not JSON is named (it was taken for absent).
with open(os.path.join(ome, ".zattrs"), "w") as f:
    f.write('{"multiscales": ')
r = halo("info", ome, check_rc=0)
check(r.returncode == 1 and r.stderr.startswith(f"halo: {ome}/.zattrs: malformed JSON"),
      "a group's malformed .zattrs is named", r.stderr)

# python zarr writes NaN and the infinities in .zattrs as bare tokens
# (python's json): read and kept as they were, strings that merely say
# "NaN" kept as strings. Attributes that are no JSON object are refused.
arr.attrs.put({"vmin": float("nan"), "vmax": float("inf"),
               "l": [float("-inf"), "NaN", 'a"NaN', 1.5, "Infinity"]})
r = convert(os.path.join(root, "path/to/array"), dst)
got = zarr.open(dst, mode="r").attrs.asdict() if r.returncode == 0 else {}
check(r.returncode == 0 and np.isnan(got["vmin"]) and got["vmax"] == np.inf and
      got["l"][0] == -np.inf and got["l"][1:] == ["NaN", 'a"NaN', 1.5, "Infinity"],
      ".zattrs with NaN, Infinity and -Infinity kept", f"{r.stderr} {got}")
for bad in ["[1, 2]", '"text"', "null"]:
    open(os.path.join(root, "path/to/array/.zattrs"), "w").write(bad)
    r = convert(os.path.join(root, "path/to/array"), dst)
    check(r.returncode == 1 and r.stderr.count("\n") == 1 and
          ".zattrs: not a JSON object" in r.stderr and not os.path.exists(dst),
          f".zattrs {bad} refused in one line", r.stderr)
os.remove(os.path.join(root, "path/to/array/.zattrs"))
# A bare NaN as .zarray's fill_value (python zarr writes "NaN"; a bare one
# is python's json too): missing chunks read as it. A bare token where it
# is no JSON is named as written.
p = path("barenan.zarr")
zarr.open(p, mode="w", shape=(4, 5, 6), chunks=(2, 5, 6), dtype="<f4", fill_value=np.nan)[:2] = 1
text = open(os.path.join(p, ".zarray")).read()
open(os.path.join(p, ".zarray"), "w").write(text.replace('"NaN"', "NaN"))
r = convert(p, dst)
got = zarr.open(dst, mode="r")[:] if r.returncode == 0 else None
check(got is not None and np.all(got[:2] == 1) and np.all(np.isnan(got[2:])),
      ".zarray with a bare NaN fill_value: missing chunks read NaN", r.stderr)
open(os.path.join(p, ".zattrs"), "w").write("[NaN NaN]")
r = convert(p, dst)
check(r.returncode == 1 and "near 'NaN'" in r.stderr and "halo:" not in r.stderr[5:],
      "a JSON error next to a bare NaN quotes it as written", r.stderr)

# 6. 2D arrays stay 2D.
src, dst = path("img.zarr"), path("img_out.zarr")
data = sample("<u2", (37, 41))
z = zarr.open(src, mode="w", shape=data.shape, chunks=(16, 16), dtype="<u2")
z[:] = data
convert(src, dst, "--chunks", "10,20")
out = zarr.open(dst, mode="r")
check(out.shape == (37, 41) and out.chunks == (10, 20) and same(out[:], data),
      "2D array: shape, chunks and values", (out.shape, out.chunks))

# zarr keeps chunks larger than the array (and leading axes of length 1):
# each stored chunk holds more than the array, and halo reads the part
# inside it.
for shape, chunks in [((5, 11, 13), (8, 16, 16)), ((5, 11, 13), (2, 16, 4)),
                      ((11, 13), (16, 16)), ((1, 5, 12, 13), (2, 3, 16, 5))]:
    data = sample("<u2", shape)
    z = zarr.open(src, mode="w", shape=shape, chunks=chunks, dtype="<u2")
    z[:] = data
    r = convert(src, dst)
    got = zarr.open(dst, mode="r")[:] if r.returncode == 0 else None
    check(got is not None and np.array_equal(got.reshape(shape), data),
          f"chunks {chunks} larger than the array {shape}: values", r.stderr)
# Such a chunk is read and decoded whole: the memory plan counts it, and
# says so where it is over --memory (5 MB, and as much for the file, for
# a 0.1 MB array; it went unsaid).
z = zarr.open(src, mode="w", shape=(8, 60, 50), chunks=(16, 400, 400), dtype="<u2")
z[:] = sample("<u2", (8, 60, 50))
r = halo("convert", src, dst, "--overwrite", "--memory", "4M", check_rc=0)
check(r.returncode == 0 and "9.77 MiB of it reads and decodes a stored chunk of the input, larger "
      "than the array, whole" in r.stderr and same(zarr.open(dst, mode="r")[:], z[:]),
      "a stored chunk larger than the array is counted, and named when over --memory", r.stderr)

# 7. Casting: round to nearest (ties to even), saturate, NaN -> 0.
src, dst = path("cast.zarr"), path("cast_out.zarr")
vals = np.array([-5.0, -0.5, 0.49, 0.5, 1.5, 2.5, 65534.6, 65535.4, 7e4, np.nan, np.inf],
                dtype="<f4")
data = np.resize(vals, (3, 4, 11)).astype("<f4")
z = zarr.open(src, mode="w", shape=data.shape, chunks=(2, 2, 5), dtype="<f4")
z[:] = data
for target, lo, hi in [("uint16", 0, 65535), ("int8", -128, 127), ("uint8", 0, 255)]:
    convert(src, dst, "--dtype", target)
    expect = np.clip(np.nan_to_num(np.rint(data.astype(np.float64)), nan=0, posinf=hi,
                                   neginf=lo), lo, hi).astype(target)
    got = zarr.open(dst, mode="r")[:]
    check(got.dtype == np.dtype(target) and np.array_equal(got, expect),
          f"float32 -> {target}: nearest, saturating", f"got {got.ravel()[:11]}\nwant {expect.ravel()[:11]}")

# Between integer types exactly, 64-bit values a double would round
# (2^53 + 1) too, saturating; from and to float64 as numpy rounds.
i64 = np.array([2**63 - 1, -2**63, 2**53 + 1, -(2**53 + 1), -1, 0, 70000, 255], dtype="<i8")
u64 = np.array([2**64 - 1, 2**63 + 1, 2**53 + 1, 0, 1, 70000, 255, 2**63 - 1], dtype="<u8")
for data, target, want in [
        (i64, "uint64", np.clip(i64, 0, None).astype(np.uint64)),
        (u64, "int64", np.minimum(u64, 2**63 - 1).astype(np.int64)),
        (i64, "int32", np.clip(i64, -2**31, 2**31 - 1).astype(np.int32)),
        (u64, "uint8", np.minimum(u64, 255).astype(np.uint8)),
        (u64, "float64", u64.astype(np.float64)), (i64, "float32", i64.astype(np.float32)),
        (np.array([1e30, -1.0, 2.5, 9.3e18, 2.0**64], "<f8"), "uint64",
         np.array([2**64 - 1, 0, 2, 9300000000000000000, 2**64 - 1], np.uint64)),
        (np.array([1e30, -1e30, -2.5, 2.0**63, -2.0**63], "<f8"), "int64",
         np.array([2**63 - 1, -2**63, -2, 2**63 - 1, -2**63], np.int64)),
        # float16 and bool as numpy's astype makes them (to nearest even,
        # inf past 65504; true where not 0, NaN too)
        (np.array([0.1, 65519.0, 65520.0, -1e9, np.nan, 2.0**-25, 3e-8], "<f8"), "float16",
         np.array([0.1, 65519.0, 65520.0, -1e9, np.nan, 2.0**-25, 3e-8]).astype(np.float16)),
        (np.array([0.0, -0.0, np.nan, 0.1, -3.0], "<f4"), "bool",
         np.array([False, False, True, True, True])),
        (np.array([0, 5, -1, 256], "<i2"), "bool", np.array([False, True, True, True])),
        (np.array([True, False, True]), "float32", np.array([1, 0, 1], np.float32)),
        (np.array([1.5, 2.5, -0.5, np.inf, 70000], "<f2"), "int16",
         np.array([2, 2, 0, 32767, 32767], np.int16))]:
    zarr.open(src, mode="w", shape=(1, 1, data.size), chunks=(1, 1, 3), dtype=data.dtype)[:] = \
        data[None, None]
    r = convert(src, dst, "--dtype", target)
    got = zarr.open(dst, mode="r")[:].ravel() if r.returncode == 0 else None
    check(got is not None and got.dtype == want.dtype and
          np.array_equal(got, want, equal_nan=want.dtype.kind == "f"),
          f"{data.dtype} -> {target}: exact between integers, saturating", (got, want, r.stderr))

# 64-bit integer fills exactly, past a double's 2^53 (missing chunks, the
# output's fill_value, halo info), and converted as the data is.
for dt, fill, target, want in [
        (">i8", 2**53 + 1, None, 2**53 + 1), ("<i8", -2**63 + 1, None, -2**63 + 1),
        ("<u8", 2**64 - 1, None, 2**64 - 1), ("<u8", 2**63 + 1, None, 2**63 + 1),
        ("<u8", 2**64 - 1, "int64", 2**63 - 1), ("<u8", 2**64 - 1, "uint16", 65535),
        ("<i8", 2**53 + 1, "float64", float(2**53)), ("<f2", float("inf"), "int64", 2**63 - 1)]:
    z = zarr.open(src, mode="w", shape=(4, 5, 6), chunks=(2, 5, 6), dtype=dt, fill_value=fill)
    z[:2] = 1
    r = convert(src, dst, *(["--dtype", target] if target else []))
    got = zarr.open(dst, mode="r") if r.returncode == 0 else None
    info = json.loads(halo("info", src, "--json", check_rc=0).stdout or "{}")
    text = halo("info", src, check_rc=0).stdout
    check(got is not None and got.fill_value == want and got[3, 4, 5] == want and
          got[0, 0, 0] == 1 and (target or (info.get("fill_value") == fill and
                                            f"fill value  {fill}" in text)),
          f"fill {fill} of {dt}{' to ' + target if target else ''}: exact",
          (r.stderr, got and got.fill_value, info.get("fill_value")))

# The fill value is cast like the data, so that python zarr opens the
# output and reads missing chunks as the cast fill.
for fill, target, want in [(float("nan"), "uint8", 0), (float("inf"), "uint8", 255),
                           (1e9, "int16", 32767), (-5.0, "uint16", 0), (2.5, "uint8", 2)]:
    z = zarr.open(src, mode="w", shape=(4, 4, 4), chunks=(2, 4, 4), dtype="<f4",
                  fill_value=fill)
    z[:2] = 1
    r = convert(src, dst, "--dtype", target)
    got = zarr.open(dst, mode="r") if r.returncode == 0 else None
    check(got is not None and got.fill_value == want and np.all(got[2:] == want),
          f"fill {fill} -> {target}: fill_value {want}", r.stderr)

# 8. Zarr v3 input (zarr.json; bytes + blosc; default and v2 key encodings),
# written by hand with numcodecs as the codec oracle.
def write_v3(root, data, chunks, encoding, endian, codec):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    dt = data.dtype.newbyteorder("<" if endian == "little" else ">")
    codecs = [{"name": "bytes", "configuration": {"endian": endian}}]
    comp = None
    if codec == "blosc":
        codecs.append({"name": "blosc", "configuration": {
            "cname": "zstd", "clevel": 3, "shuffle": "bitshuffle",
            "typesize": dt.itemsize, "blocksize": 0}})
        comp = numcodecs.Blosc(cname="zstd", clevel=3, shuffle=2)
    elif codec == "gzip":
        codecs.append({"name": "gzip", "configuration": {"level": 6}})
        comp = numcodecs.GZip(level=6)
    elif codec == "zstd":
        # zarr-python 3's default; numcodecs 0.11 writes no frame checksum
        codecs.append({"name": "zstd", "configuration": {"level": 0, "checksum": False}})
        comp = numcodecs.Zstd(level=0)
    sep = "/" if encoding == "default" else "."
    meta = {"zarr_format": 3, "node_type": "array", "shape": list(data.shape),
            "data_type": np.dtype(data.dtype).name,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
            "chunk_key_encoding": {"name": encoding, "configuration": {"separator": sep}},
            "fill_value": 0, "codecs": codecs, "attributes": {"a": 1}}
    json.dump(meta, open(os.path.join(root, "zarr.json"), "w"))
    grid = [range(0, s, c) for s, c in zip(data.shape, chunks)]
    for z0 in grid[0]:
        for y0 in grid[1]:
            for x0 in grid[2]:
                block = np.zeros(chunks, dtype=dt)
                part = data[z0:z0 + chunks[0], y0:y0 + chunks[1], x0:x0 + chunks[2]]
                block[:part.shape[0], :part.shape[1], :part.shape[2]] = part
                raw = block.tobytes()
                blob = comp.encode(raw) if comp else raw
                idx = [str(z0 // chunks[0]), str(y0 // chunks[1]), str(x0 // chunks[2])]
                key = ("c/" + "/".join(idx)) if encoding == "default" else ".".join(idx)
                f = os.path.join(root, key)
                os.makedirs(os.path.dirname(f), exist_ok=True)
                open(f, "wb").write(blob)


for encoding, endian, codec in [("default", "little", "blosc"), ("v2", "big", "blosc"),
                                ("default", "big", None), ("default", "little", "gzip"),
                                ("default", "little", "zstd")]:
    data = sample("<u2", (6, 10, 13))
    src, dst = path("v3.zarr"), path("v3_out.zarr")
    write_v3(src, data, (4, 4, 5), encoding, endian, codec)
    r = convert(src, dst, "--zarr-format", "2")
    ok = r.returncode == 0 and same(zarr.open(dst, mode="r")[:], data)
    check(ok, f"zarr v3 input: {encoding} keys, {endian} endian, codec {codec}", r.stderr)

# v3 gives a float's fill as hex bits; a missing chunk reads as it.
# Storage transformers (which change where bytes live) are refused.
data = sample("<f4", (6, 10, 13))
for hexfill, want in [("0x7fc00000", np.nan), ("0x40200000", 2.5)]:
    write_v3(src, data, (4, 4, 5), "default", "little", None)
    meta = json.load(open(os.path.join(src, "zarr.json")))
    meta["fill_value"] = hexfill
    json.dump(meta, open(os.path.join(src, "zarr.json"), "w"))
    os.remove(os.path.join(src, "c/1/2/2"))
    r = convert(src, dst, "--zarr-format", "2")
    expect = data.copy()
    expect[4:, 8:, 10:] = want
    check(r.returncode == 0 and same(zarr.open(dst, mode="r")[:], expect),
          f"zarr v3 fill_value {hexfill}: missing chunk reads {want}", r.stderr)
meta["storage_transformers"] = [{"name": "chunk-manifest-json"}]
json.dump(meta, open(os.path.join(src, "zarr.json"), "w"))
r = convert(src, dst, "--zarr-format", "2")
check(r.returncode == 1 and "storage_transformers are not supported" in r.stderr,
      "zarr v3 storage_transformers refused", r.stderr)
# What the v3 spec requires, refused where it is not there: halo would
# otherwise guess the keys, the fill or the byte order.
write_v3(src, data, (4, 4, 5), "default", "big", None)
good = json.load(open(os.path.join(src, "zarr.json")))
for name, change, needle in [
        ("no chunk_key_encoding", {"chunk_key_encoding": None},
         "field 'chunk_key_encoding' is missing"),
        ("a null fill_value", {"fill_value": None}, "field 'fill_value' is missing"),
        ("a bytes codec without endian", {"codecs": [{"name": "bytes"}]},
         "field 'codecs.bytes.endian' is missing"),
        ("dimension_names of the wrong length", {"dimension_names": ["z"]},
         "field 'dimension_names' is not a list of a name (or null) per axis"),
        ("attributes that are no object", {"attributes": [1]},
         "field 'attributes' is not a JSON object")]:
    meta = dict(good, **change)
    if change.get("chunk_key_encoding", 1) is None:
        del meta["chunk_key_encoding"]
    json.dump(meta, open(os.path.join(src, "zarr.json"), "w"))
    r = convert(src, dst, "--zarr-format", "2")
    check(r.returncode == 1 and needle in r.stderr and r.stderr.count("\n") == 1,
          f"zarr v3 with {name} refused in one line", r.stderr)
meta = dict(good, dimension_names=["z", None, "x"])
json.dump(meta, open(os.path.join(src, "zarr.json"), "w"))
r = convert(src, dst, "--zarr-format", "2")
check(r.returncode == 0 and same(zarr.open(dst, mode="r")[:], data),
      "zarr v3 with dimension_names (one null) read", r.stderr)

# 9. OME-Zarr output with a pyramid, checked field by field.
src, dst = path("ome_src.zarr"), path("out.ome.zarr")
data = sample("<u2", (5, 37, 30))
z = zarr.open(src, mode="w", shape=data.shape, chunks=(5, 16, 16), dtype="<u2")
z[:] = data
r = convert(src, dst, "--pyramid", "2")
# The summary counts the levels too (it gave level 0's time and rate alone).
r2 = halo("convert", src, path("summary.ome.zarr"), "--pyramid", "2", "--overwrite", check_rc=0)
# 5x37x30 in 5x16x16 chunks: 6; then 5x19x15: 2, and 5x10x8: 1.
check("6 chunks (and 3 in 2 pyramid levels) in " in r2.stdout,
      "convert --pyramid: the summary counts the pyramid's chunks", r2.stdout)
attrs = json.load(open(os.path.join(dst, ".zattrs")))
ms = attrs["multiscales"][0]
check(json.load(open(os.path.join(dst, ".zgroup"))) == {"zarr_format": 2}, "OME: .zgroup")
check(ms["version"] == "0.4", "OME: version 0.4", ms.get("version"))
check([a["name"] for a in ms["axes"]] == ["z", "y", "x"] and
      all(a["type"] == "space" and "unit" not in a for a in ms["axes"]),
      "OME: axes z, y, x, without a unit where the input has none",
      ms["axes"])
check([d["path"] for d in ms["datasets"]] == ["0", "1", "2"], "OME: three datasets",
      ms["datasets"])
scales = [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]
check(scales == [[1, 1, 1], [1, 2, 2], [1, 4, 4]], "OME: scale transforms double in y, x", scales)
# A level's voxel is the mean of 2^l x 2^l: its centre is (2^l - 1) / 2 on.
shifts = [d["coordinateTransformations"][1:] for d in ms["datasets"]]
check(shifts == [[], [{"type": "translation", "translation": [0, 0.5, 0.5]}],
                 [{"type": "translation", "translation": [0, 1.5, 1.5]}]],
      "OME: pyramid levels translated to their voxels' centres", shifts)
check(ms["metadata"].get("method", "").startswith("mean over 2x2") and ms.get("type") == "mean",
      "OME: the pyramid's method, and its type (NGFF 0.4's strict schema requires it)",
      ms.get("metadata"))
lvl = [zarr.open(os.path.join(dst, str(i)), mode="r")[:] for i in range(3)]
check(same(lvl[0], data), "OME: level 0 equals the input")


def down2(a):
    """Mean over 2x2 blocks in y, x of the voxels that exist (edges)."""
    z, y, x = a.shape
    out = np.zeros((z, (y + 1) // 2, (x + 1) // 2))
    cnt = np.zeros_like(out)
    for dy in range(2):
        for dx in range(2):
            part = a[:, dy::2, dx::2].astype(np.float64)
            out[:, :part.shape[1], :part.shape[2]] += part
            cnt[:, :part.shape[1], :part.shape[2]] += 1
    return out / cnt


e1 = np.rint(down2(lvl[0])).astype("<u2")
check(lvl[1].shape == (5, 19, 15) and np.array_equal(lvl[1], e1),
      "OME: level 1 is the 2x2 mean of level 0", f"{lvl[1].shape}")
e2 = np.rint(down2(lvl[1])).astype("<u2")
check(lvl[2].shape == (5, 10, 8) and np.array_equal(lvl[2], e2),
      "OME: level 2 is the 2x2 mean of level 1", f"{lvl[2].shape}")
# 64-bit integers near their limits average exactly (ties to even), where a
# double's 53 bits gave the type's maximum for a mean near 2^64.
for dt, lo, hi in [("<u8", 2**64 - 4096, 2**64 - 1), ("<i8", -2**63, -2**63 + 4096),
                   ("<i8", 2**63 - 4096, 2**63 - 1)]:
    big = np.array([int(v) for v in rng.integers(0, hi - lo, size=2 * 5 * 7, endpoint=True,
                                                  dtype=np.uint64)], dtype=object) + lo
    big = big.reshape(2, 5, 7)
    src64, dst64 = path("big64.zarr"), path("big64.ome.zarr")
    zarr.open(src64, mode="w", shape=big.shape, chunks=(2, 4, 4), dtype=dt)[:] = \
        big.astype(np.dtype(dt))
    r = convert(src64, dst64, "--pyramid", "1")
    got = zarr.open(os.path.join(dst64, "1"), mode="r")[:] if r.returncode == 0 else None
    want = np.array([[[round(Fraction(int(big[z, 2 * y:2 * y + 2, 2 * x:2 * x + 2].sum()),
                                      big[z, 2 * y:2 * y + 2, 2 * x:2 * x + 2].size))
                       for x in range(4)] for y in range(3)] for z in range(2)], dtype=object)
    check(got is not None and [int(v) for v in got.ravel()] == [int(v) for v in want.ravel()],
          f"OME pyramid of {dt} in [{lo}, {hi}]: exact means, ties to even", r.stderr)
# Reading an OME-Zarr group uses level 0 and keeps the voxel size.
back = path("ome_back.zarr")
r = convert(dst, back)
check(r.returncode == 0 and same(zarr.open(back, mode="r")[:], data),
      "OME-Zarr input reads level 0", r.stderr)
# A translation (the dataset's, then the multiscale's, each after its
# scale) gives the position of voxel 0, carried into OME-Zarr outputs.
src = path("moved.ome.zarr")
g = zarr.open_group(src, mode="w")
g.create_dataset("0", data=data, chunks=(5, 16, 16))
g.attrs["multiscales"] = [{"version": "0.4", "axes": [
    {"name": "z", "type": "space", "unit": "micrometer"},
    {"name": "y", "type": "space", "unit": "nanometer"},
    {"name": "x", "type": "space", "unit": "nanometer"}],
    "datasets": [{"path": "0", "coordinateTransformations": [
        {"type": "scale", "scale": [0.5, 100, 100]},
        {"type": "translation", "translation": [2, 300, -50]}]}],
    "coordinateTransformations": [{"type": "scale", "scale": [2, 2, 2]},
                                  {"type": "translation", "translation": [1, 1, 1]}]}]
# world = 2 * (scale * i + translation) + 1, z converted from micrometres
want_voxel, want_origin = [1000, 200, 200], [5000, 601, -99]
r = halo("info", src, "--json")
j = json.loads(r.stdout) if r.returncode == 0 else {}
check(j.get("voxel") == want_voxel and j.get("origin") == want_origin,
      "OME translation read as the position of voxel 0", (j, r.stderr))
r = convert(src, path("moved_out.ome.zarr"), "--pyramid", "1")
ds = json.load(open(path("moved_out.ome.zarr/.zattrs")))["multiscales"][0]["datasets"] \
    if r.returncode == 0 else []
check([d["coordinateTransformations"] for d in ds] == [
    [{"type": "scale", "scale": want_voxel},
     {"type": "translation", "translation": want_origin}],
    [{"type": "scale", "scale": [1000, 400, 400]},
     {"type": "translation", "translation": [5000, 701, 1]}]],
    "OME translation carried by convert, each level's voxel centre", (ds, r.stderr))
pipe = path("moved.json")
json.dump({"steps": [{"name": "a", "op": "from_zarr", "path": src},
                     {"name": "b", "op": "astype", "input": "a", "dtype": "float32"},
                     {"name": "o", "op": "to_zarr", "input": "b", "ome": True,
                      "path": path("moved_run.zarr"), "overwrite": True}]}, open(pipe, "w"))
r = halo("run", pipe, "--quiet")
j = json.loads(halo("info", path("moved_run.zarr"), "--json").stdout) if r.returncode == 0 else {}
check(j.get("origin") == want_origin and j.get("voxel") == want_voxel,
      "OME translation carried through a pipeline", (j, r.stderr))
# A 2D image behind a channel axis: the channel's translation is no z.
src = path("moved2d.ome.zarr")
g = zarr.open_group(src, mode="w")
g.create_dataset("0", data=data[:1], chunks=(1, 16, 16))
g.attrs["multiscales"] = [{"version": "0.4", "axes": [
    {"name": "c", "type": "channel"}, {"name": "y", "type": "space", "unit": "micrometer"},
    {"name": "x", "type": "space", "unit": "micrometer"}],
    "datasets": [{"path": "0", "coordinateTransformations": [
        {"type": "scale", "scale": [1, 0.5, 0.25]},
        {"type": "translation", "translation": [7, 3, -2]}]}]}]
r = halo("info", src, "--json")
j = json.loads(r.stdout) if r.returncode == 0 else {}
check(j.get("origin") == [3, -2] and j.get("voxel") == [0.5, 0.25] and
      j.get("shape") == list(data.shape[1:]),
      "OME 2D image after a channel axis: 2D, y, x origin, the channel's dropped", (j, r.stderr))
r = convert(src, path("moved2d.zarr"))
check(r.returncode == 0 and same(zarr.open(path("moved2d.zarr"), mode="r")[:], data[0]),
      "OME 2D image after a channel axis converts to a 2D array", r.stderr)
# The summary names the chunks as stored: cut to the array.
r = halo("convert", path("ome_src.zarr"), path("big_chunks.zarr"), "--chunks", "1024,1024,1024",
         "--overwrite")
check(r.returncode == 0 and "chunks 5x37x30, 1 chunk in " in r.stdout and
      json.load(open(path("big_chunks.zarr/.zarray")))["chunks"] == [5, 37, 30],
      "convert's summary: the chunks as stored", r.stdout)
# convert says so when what stays resident exceeds --memory, as run does.
r = convert(path("ome_src.zarr"), path("tight.zarr"), "--chunks", "5,37,30", "--memory", "1K")
check(r.returncode == 0 and "each output chunk in flight holds" in r.stderr and
      "more than --memory 1 KiB" in r.stderr and "0 B of chunks shared" not in r.stderr,
      "convert under too small a --memory: a warning (no shared chunks to speak of), and it "
      "runs", r.stderr)

# 10. Channels and time points: --channel and --time (and a pipeline's
# "channel", "time") pick one of an OME-Zarr's, or of a plain array's axes
# before z, y, x (taken as t, c); stored chunks may span several.
tczyx = sample("<u2", (2, 3, 5, 7, 9))
axes = ([{"name": "t", "type": "time"}, {"name": "c", "type": "channel"}] +
        [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"])
for chunks in [(1, 1, 2, 4, 4), (2, 2, 5, 7, 9)]:
    src = path("tc.ome.zarr")
    shutil.rmtree(src, ignore_errors=True)
    g = zarr.open_group(src, mode="w")
    g.create_dataset("0", data=tczyx, chunks=chunks)
    g.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1, 1, 0.5, 0.2, 0.2]}]}]}]
    for t in range(2):
        for c in range(3):
            r = convert(src, path("tc_out.zarr"), "--channel", str(c), "--time", str(t),
                        "--chunks", "3,4,5")
            check(r.returncode == 0 and same(zarr.open(path("tc_out.zarr"), mode="r")[:],
                                             tczyx[t, c]),
                  f"OME-Zarr t,c,z,y,x in chunks {chunks}: --time {t} --channel {c}", r.stderr)
    r = halo("info", src, "--json")
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    check(j.get("channels") == 3 and j.get("times") == 2 and j.get("shape") == [5, 7, 9] and
          j.get("voxel") == [0.5, 0.2, 0.2], "halo info: 3 channels, 2 time points", j)
# The picked channel's "omero" rendering settings (name, colour, window)
# go into an OME-Zarr output, alone; none where there is one per channel
# is not.
chans = [{"label": n, "color": col, "active": True,
          "window": {"min": 0, "max": 65535, "start": 10 * k, "end": 900 + k}}
         for k, (n, col) in enumerate([("DAPI", "0000FF"), ("GFP", "00FF00"), ("RFP", "FF0000")])]
g.attrs["omero"] = {"id": 1, "name": "cells", "version": "0.4", "channels": chans,
                    "rdefs": {"model": "color"}}
r = convert(src, path("tc_out.ome.zarr"), "--channel", "1", "--time", "0")
om = json.load(open(path("tc_out.ome.zarr/.zattrs"))).get("omero") if r.returncode == 0 else None
check(om == {"id": 1, "name": "cells", "version": "0.4", "channels": [chans[1]],
             "rdefs": {"model": "color"}}, "--channel 1 to OME-Zarr: that channel's omero", om)
j = json.loads(halo("info", src, "--json", check_rc=0).stdout or "{}")
text = halo("info", src, check_rc=0).stdout
check(j.get("channel_names") == ["DAPI", "GFP", "RFP"] and
      "  channels    0 DAPI, 1 GFP, 2 RFP\n" in text,
      "halo info names the channels by their omero labels", (j.get("channel_names"), text))
g.attrs["omero"] = {"channels": chans[:2]}
r = convert(src, path("tc_out.ome.zarr"), "--channel", "1", "--time", "0")
check(r.returncode == 0 and "omero" not in json.load(open(path("tc_out.ome.zarr/.zattrs"))),
      "an omero of 2 channels for 3: not carried", r.stderr)
r = convert(src, path("tc_out.zarr"), "--channel", "1")
check(r.returncode == 1 and r.stderr.strip().endswith(
      ".zattrs: 2 time points (axis 0, from 0); halo reads one channel at one time (--time N "
      "picks one)"),
      "a time point not picked: refused, naming --time", r.stderr)
r = convert(src, path("tc_out.zarr"), "--channel", "3", "--time", "0")
check(r.returncode == 1 and f"--channel 3: {src} has 3 channels (0 to 2)" in r.stderr,
      "--channel past the last: refused", r.stderr)
r = convert(path("raw.zarr"), path("tc_out.zarr"), "--channel", "1")
check(r.returncode == 1 and "--channel 1: " in r.stderr and "has no channel axis" in r.stderr,
      "--channel 1 of a volume without channels: refused", r.stderr)
import tifffile  # noqa: E402
tifffile.imwrite(path("one.tif"), tczyx[0, 0])
r = convert(path("one.tif"), path("tc_out.zarr"), "--time", "2")
check(r.returncode == 1 and f"--time 2: {path('one.tif')} has no time axis" in r.stderr,
      "--time 2 of a TIFF (no hyperstack): refused", r.stderr)
# An empty channel axis is an empty array (it read as the fill value); two
# channel axes are no image; a channel too far is named in the singular.
src = path("empty_c.zarr")
shutil.rmtree(src, ignore_errors=True)
zarr.open(src, mode="w", shape=(0, 5, 7, 9), chunks=(1, 5, 7, 9), dtype="<u2", fill_value=7)
r = convert(src, path("tc_out.zarr"))
check(r.returncode == 1 and "the array is empty (0 channels)" in r.stderr,
      "a channel axis of length 0: refused as empty", r.stderr)
src = path("cc.ome.zarr")
shutil.rmtree(src, ignore_errors=True)
g = zarr.open_group(src, mode="w")
g.create_dataset("0", data=tczyx[:, :, 0], chunks=(1, 1, 4, 4))
g.attrs["multiscales"] = [{"version": "0.4", "axes": [axes[1], axes[1]] + axes[3:],
                           "datasets": [{"path": "0"}]}]
r = convert(src, path("tc_out.zarr"), "--channel", "1")
check(r.returncode == 1 and "axes 0 and 1 (from 0) are both channel axes" in r.stderr,
      "two channel axes: refused", r.stderr)
# z before c: z is named for what it is, counted from 0 like the others.
g = zarr.open_group(src, mode="w")
g.create_dataset("0", data=np.zeros((4, 3, 10, 12), "<u2"), chunks=(1, 1, 10, 12))
g.attrs["multiscales"] = [{"version": "0.4", "axes": [axes[2], axes[1]] + axes[3:],
                           "datasets": [{"path": "0"}]}]
r = convert(src, path("tc_out.zarr"), "--channel", "1")
check(r.returncode == 1 and "axis 0 (from 0), before the last space axes and neither channel "
      "nor time, has 4 values" in r.stderr, "axes z, c, y, x: refused, axis 0 named", r.stderr)
src = path("t1.zarr")
shutil.rmtree(src, ignore_errors=True)
zarr.open(src, mode="w", shape=(1, 2, 5, 7, 9), dtype="<u2")
r = convert(src, path("tc_out.zarr"), "--channel", "0", "--time", "1")
check(r.returncode == 1 and "has 1 time point (0 to 0)" in r.stderr,
      "--time 1 of one time point: refused, in the singular", r.stderr)
r = convert(path("raw.zarr"), path("tc_out.zarr"), "--channel", "0", "--time", "0")
check(r.returncode == 0, "--channel 0 --time 0 of a volume without them: its only one", r.stderr)
# A 2D image's channels (c, y, x), and plain arrays of 4 and 5 axes.
src = path("cyx.ome.zarr")
shutil.rmtree(src, ignore_errors=True)
g = zarr.open_group(src, mode="w")
g.create_dataset("0", data=tczyx[0, :, 0], chunks=(2, 4, 4))
g.attrs["multiscales"] = [{"version": "0.4", "axes": axes[1:2] + axes[3:],
                           "datasets": [{"path": "0"}]}]
r = convert(src, path("tc_out.zarr"), "--channel", "2")
check(r.returncode == 0 and same(zarr.open(path("tc_out.zarr"), mode="r")[:], tczyx[0, 2, 0]),
      "OME-Zarr c, y, x: --channel 2 gives that 2D image", r.stderr)
for arr, opts, want in [(tczyx[1], ("--channel", "2"), tczyx[1, 2]),
                        (tczyx, ("--channel", "1", "--time", "1"), tczyx[1, 1])]:
    src = path("plain_tc.zarr")
    shutil.rmtree(src, ignore_errors=True)
    zarr.open(src, mode="w", shape=arr.shape, chunks=(1,) * (arr.ndim - 3) + (2, 4, 4),
              dtype=arr.dtype)[:] = arr
    r = convert(src, path("tc_out.zarr"), *opts)
    check(r.returncode == 0 and same(zarr.open(path("tc_out.zarr"), mode="r")[:], want),
          f"plain {arr.ndim}D Zarr: {' '.join(opts)}", r.stderr)
# A pipeline's from_zarr takes them as fields.
pipe = path("tc.json")
json.dump({"steps": [{"name": "a", "op": "from_zarr", "path": path("tc.ome.zarr"),
                      "channel": 2, "time": 1},
                     {"name": "o", "op": "to_zarr", "input": "a", "path": path("tc_run.zarr"),
                      "overwrite": True}]}, open(pipe, "w"))
r = halo("run", pipe, "--quiet")
check(r.returncode == 0 and same(zarr.open(path("tc_run.zarr"), mode="r")[:], tczyx[1, 2]),
      "pipeline from_zarr with \"channel\": 2, \"time\": 1", r.stderr)
# Its messages name the fields, and both where both are missing.
for fields, needle in [({"channel": 7, "time": 0}, 'field "channel" 7: '),
                       ({}, '3 channels (axis 1, from 0) and 2 time points (axis 0, from 0); '
                        'halo reads one channel at one time (field "channel" N and field "time" '
                        'N pick one)')]:
    json.dump({"steps": [dict({"name": "a", "op": "from_zarr", "path": path("tc.ome.zarr")},
                              **fields),
                         {"name": "o", "op": "to_zarr", "input": "a", "path": path("tc_run.zarr"),
                          "overwrite": True}]}, open(pipe, "w"))
    r = halo("run", pipe, "--quiet")
    check(r.returncode == 1 and needle in r.stderr and len(r.stderr.splitlines()) == 1,
          f"pipeline from_zarr with {fields}: one line naming the fields", r.stderr)

# StarPU keeps a history entry per gather footprint, and reads and
# writes all of them at every run: the same output chunks gathered from
# other input chunks (other sources at every edge, rows of the same power
# of two) add none. CPUs only: a GPU's entries would come on top. A
# rechunk that only a store reads is gathered by the write task itself
# (halo convert's), so a step comes between.
models = path("gather-models")
shutil.rmtree(models, ignore_errors=True)


def gather_entries(symbol="halo_gather"):
    n = 0
    for f in glob.glob(os.path.join(models, "codelets", "*", symbol + "*")):
        lines = open(f).read().splitlines()
        n += sum(int(lines[i + 1]) for i, l in enumerate(lines) if l == "# number of entries")
    return n


vol = np.arange(30 * 41 * 37, dtype="<u2").reshape(30, 41, 37)
counts, writes = [], []
for i, ch in enumerate([(7, 9, 11), (13, 6, 8), (5, 17, 10)]):
    src = path(f"fp_src{i}.zarr")
    zarr.open(src, mode="w", shape=vol.shape, chunks=ch, dtype="<u2")[:] = vol
    pipe = path("fp.json")
    with open(pipe, "w") as f:
        json.dump({"steps": [
            {"name": "raw", "op": "from_zarr", "path": src},
            {"name": "re", "op": "rechunk", "input": "raw", "chunks": [16, 16, 16]},
            {"name": "f", "op": "astype", "input": "re", "dtype": "float32"},
            {"name": "out", "op": "to_zarr", "input": "f", "path": path("fp_out.zarr"),
             "overwrite": True}]}, f)
    r = halo("run", pipe, "--quiet", "--ncuda", "0", env={"STARPU_PERF_MODEL_DIR": models})
    counts.append(gather_entries() if r.returncode == 0 else -1)
    r = halo("convert", src, path("fp_conv.zarr"), "--chunks", "16,16,16", "--overwrite",
             "--quiet", "--ncuda", "0", env={"STARPU_PERF_MODEL_DIR": models})
    writes.append(gather_entries("halo_write") if r.returncode == 0 else -1)
check(counts[0] > 0 and counts[1] == counts[0] and counts[2] == counts[0],
      "gather's performance model: one entry per output chunk shape and row length, "
      "whatever the input chunks", f"entries after each run: {counts}")
check(writes[0] > 0 and writes[1] == writes[0] and writes[2] == writes[0],
      "write's model, for writes that gather (convert): likewise", f"entries: {writes}")

def chunk_keys(root):
    """The chunk files below root as keys with dots."""
    return sorted(os.path.relpath(os.path.join(d, f), root).replace(os.sep, ".")
                  for d, _, fs in os.walk(root) for f in fs if not f.startswith("."))


# Chunks of nothing but the fill value are not stored (zarr-python 3's
# write_empty_chunks=False): zarr reads them back as the fill. A chunk
# holding -0.0 beside a fill of 0.0 is stored (its bytes differ).
for dt, fill in [("<u2", 0), ("<f4", np.nan), ("<f4", 0.0), (">i4", -7)]:
    data = np.full((12, 12, 12), fill, dt)
    data[0:4, 4:8, 8:12] = 3               # chunk (0, 1, 2) only
    data[8:12, 8:12, 0:4] = 0 if fill != 0 else 5  # and (2, 2, 0)
    if dt == "<f4" and fill == 0.0:
        data[4, 4, 4] = -0.0               # chunk (1, 1, 1), -0.0 in 0.0
    src, dst = path("empty_src.zarr"), path("empty_out.zarr")
    zarr.open(src, mode="w", shape=data.shape, chunks=(12, 12, 12), dtype=dt,
              fill_value=fill)[:] = data
    r = convert(src, dst, "--chunks", "4,4,4")
    stored = chunk_keys(dst) if r.returncode == 0 else []
    want = ["0.1.2", "2.2.0"] + (["1.1.1"] if dt == "<f4" and fill == 0.0 else [])
    back = zarr.open(dst, mode="r")[:] if r.returncode == 0 else None
    check(stored == sorted(want) and back is not None and same(back, data) and
          np.array_equal(np.signbit(back), np.signbit(data)),
          f"{dt} fill {fill}: only chunks not wholly fill are stored; zarr reads the rest as "
          "fill", (stored, r.stderr))
data = np.zeros((5, 12, 12), "<u2")
data[0, 0, 0] = 1
zarr.open(path("null_src.zarr"), mode="w", shape=data.shape, chunks=(4, 4, 4), dtype="<u2",
          fill_value=None)[:] = data
r = convert(path("null_src.zarr"), path("null_out.zarr"))
out = zarr.open(path("null_out.zarr"), mode="r") if r.returncode == 0 else None
check(out is not None and out.fill_value == 0 and same(out[:], data) and
      chunk_keys(path("null_out.zarr")) == ["0.0.0"],
      "fill_value null in: 0 out, and the chunks of 0 alone are not stored", r.stderr)

done()
