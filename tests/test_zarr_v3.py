"""Zarr v3 and the chunk layouts beyond python zarr 2.13's defaults: v3
arrays (bytes, compressors, transpose, crc32c, sharding_indexed), OME-Zarr
0.5 images, and v2's F order, read; v3 arrays, sharded or not, and
OME-Zarr 0.5 written. python zarr 2.13 writes the F-order arrays; the v3
ones are written and read by tests/zarrv3.py after the specification, with
numcodecs and crcmod. halo converts each to a v2 array that python zarr
reads, or from one, and numpy compares value for value."""
import json
import os
import shutil
import sys

import numcodecs
import numpy as np
import zarr

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import check, done, halo, path  # noqa: E402
import zarrv3  # noqa: E402

rng = np.random.default_rng(33)


def sample(dtype, shape):
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True,
                        dtype=dt.newbyteorder("=")).astype(dt)


def convert(src, dst, *opts):
    shutil.rmtree(dst, ignore_errors=True)
    return halo("convert", src, dst, "--quiet", *opts, check_rc=0)


def converts_to(src, expect, what, *opts):
    """Converted to Zarr v2, zarr 2.13 reads what halo read."""
    dst = path("v3_out.zarr")
    r = convert(src, dst, "--zarr-format", "2", *opts)
    got = zarr.open(dst, mode="r")[:] if r.returncode == 0 else None
    ok = got is not None and got.shape == expect.shape and np.array_equal(got, expect,
                                                                         equal_nan=True)
    return check(ok, what, r.stderr)


def refused(src, needle, what):
    dst = path("v3_refused.zarr")
    shutil.rmtree(dst, ignore_errors=True)
    r = halo("convert", src, dst, "--quiet")
    check(r.returncode == 1 and needle in r.stderr and r.stderr.count("\n") == 1 and
          not os.path.exists(dst), what, r.stderr)


def le(endian="little"):
    return {"name": "bytes", "configuration": {"endian": endian}}


BLOSC = {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5, "shuffle": "shuffle",
                                            "typesize": 2, "blocksize": 0}}
ZSTD = {"name": "zstd", "configuration": {"level": 0, "checksum": False}}
CRC = {"name": "crc32c"}
src = path("v3.zarr")

# 1. The v3 basics: chunk key encodings, byte orders, each compressor.
data = sample("<u2", (6, 10, 13))
for encoding, endian, comp in [("default", "little", BLOSC), ("v2", "big", BLOSC),
                               ("default", "big", None), ("default", "little",
                               {"name": "gzip", "configuration": {"level": 6}}),
                               ("default", "little", ZSTD)]:
    zarrv3.write(src, data, (4, 4, 5), [le(endian)] + ([comp] if comp else []),
                 encoding=encoding)
    converts_to(src, data, f"v3: {encoding} keys, {endian} endian, "
                f"{comp['name'] if comp else 'no compressor'}")

# zarr-python 3 writes numcodecs' other compressors as "numcodecs.NAME";
# a whole dimension_names of null, as it accepts, means none.
for name, conf in [("numcodecs.zlib", {"level": 3}), ("numcodecs.bz2", {"level": 2}),
                   ("numcodecs.lzma", {"preset": 1}), ("numcodecs.lz4", {"acceleration": 1})]:
    meta = zarrv3.write(src, data, (4, 4, 5), [le(), {"name": name, "configuration": conf}])
    converts_to(src, data, f"v3: {name}")
meta["dimension_names"] = None
json.dump(meta, open(os.path.join(src, "zarr.json"), "w"))
converts_to(src, data, "v3: dimension_names null")

# 2. transpose: chunks stored with their axes in another order (zarr-python
# 3's order as a permutation, and its first releases' "F"), alone, before a
# compressor, twice in a row; a 4D array's channel picked from it.
for dt in ["<u2", ">f4", "<i8", "|u1"]:
    data = sample(dt, (7, 9, 11))
    for order in [[2, 0, 1], [1, 2, 0], "F"]:
        zarrv3.write(src, data, (3, 4, 5), [{"name": "transpose", "configuration":
                                             {"order": order}}, le(), ZSTD])
        converts_to(src, data, f"v3 transpose {order}: {dt}, edge chunks")
data = sample("<u2", (7, 9, 11))
twice = [{"name": "transpose", "configuration": {"order": [2, 0, 1]}},
         {"name": "transpose", "configuration": {"order": [1, 0, 2]}}, le()]
zarrv3.write(src, data, (3, 4, 5), twice)
converts_to(src, data, "v3: two transposes compose")
data4 = sample("<u2", (3, 5, 6, 7))
zarrv3.write(src, data4, (2, 2, 3, 4), [{"name": "transpose", "configuration":
                                         {"order": [3, 1, 0, 2]}}, le(), BLOSC])
converts_to(src, data4[2], "v3 transpose of a 4D array: --channel 2 of it", "--channel", "2")

# 3. crc32c: after the bytes alone and after a compressor; a damaged byte
# is one line naming the chunk.
data = sample("<u2", (6, 10, 13))
for chain in [[le(), CRC], [le(), BLOSC, CRC]]:
    zarrv3.write(src, data, (4, 4, 5), chain)
    names = "+".join(c["name"] for c in chain)
    converts_to(src, data, f"v3 {names}: checksums hold")
    f = os.path.join(src, "c", "1", "1", "1")
    blob = bytearray(open(f, "rb").read())
    blob[len(blob) // 2] ^= 0x10
    open(f, "wb").write(blob)
    refused(src, f"{f}: CRC32C checksum mismatch", f"v3 {names}: a flipped bit is refused")
open(f, "wb").write(b"ab")
refused(src, f"{f}: 2 bytes, too short for the CRC32C", "v3 crc32c: a 2-byte chunk refused")

# 4. sharding_indexed, as zarr-python 3 writes it (the index at the end,
# little-endian, with its crc32c) and in the specification's other forms:
# the index first, big-endian, without a checksum; inner chunks with a
# transpose, compressed, checksummed; shards and inner chunks that do not
# divide the shape; empty inner chunks and missing shards read as fill.
for dt, fill in [("<u2", 0), ("<f4", float("nan")), (">i4", -7)]:
    data = sample(dt, (13, 21, 26))
    data[:4, :8, :10] = fill            # a whole inner chunk of fill: not stored
    data[8:, 16:, 20:] = fill           # a whole shard of fill: no file
    for label, codec in [
            ("zarr-python's defaults", zarrv3.sharding((4, 4, 5), [le(), ZSTD])),
            ("index first, big-endian, no checksum",
             zarrv3.sharding((4, 4, 5), [le("big"), BLOSC], index_crc=False, location="start",
                             index_endian="big")),
            ("inner transpose and crc32c",
             zarrv3.sharding((4, 4, 5), [{"name": "transpose", "configuration":
                                          {"order": [2, 1, 0]}}, le(), BLOSC, CRC])),
            ("one inner chunk per shard", zarrv3.sharding((8, 8, 10), [le()]))]:
        zarrv3.write(src, data, (8, 8, 10), [codec], fill=fill)
        files = zarrv3.chunk_files(src)
        converts_to(src, data, f"v3 sharded {dt} fill {fill}: {label} "
                    f"({len(files)} shard files)")
check("c/1/2/2" not in zarrv3.chunk_files(src) and len(zarrv3.chunk_files(src)) == 17,
      "v3 sharded: the shard of fill has no file")
# The output keeps the inner chunks (what halo reads at a time) and their
# compressor.
data = sample("<u2", (13, 21, 26))
zarrv3.write(src, data, (8, 8, 10), [zarrv3.sharding((4, 4, 5), [le(), BLOSC, CRC])])
dst = path("v3_out.zarr")
r = convert(src, dst, "--zarr-format", "2")
out = zarr.open(dst, mode="r") if r.returncode == 0 else None
check(out is not None and out.chunks == (4, 4, 5) and out.compressor.cname == "lz4" and
      np.array_equal(out[:], data), "v3 sharded: the output has the inner chunks and codec",
      r.stderr)
# By default the output stays v3, in the input's shards where the
# output's chunks divide them.
for opts, shards in [((), [8, 8, 10]), (("--chunks", "2,4,5"), [8, 8, 10]),
                     (("--chunks", "3,4,5"), None)]:
    r = convert(src, dst, *opts)
    meta = json.load(open(os.path.join(dst, "zarr.json"))) if r.returncode == 0 else {}
    got = zarrv3.read(dst) if r.returncode == 0 else None
    sharding = meta.get("codecs", [{}])[0].get("name") == "sharding_indexed"
    check(meta.get("zarr_format") == 3 and np.array_equal(got, data) and
          (meta.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape") == shards
           if shards else not sharding),
          f"a v3 input gives v3 {'in its shards' if shards else 'unsharded'} by default "
          f"{' '.join(opts)}", r.stderr + json.dumps(meta))
# halo info describes the layout.
r = halo("info", src, "--json", check_rc=0)
desc = json.loads(r.stdout) if r.returncode == 0 else {}
check(desc.get("chunks") == [4, 4, 5] and desc.get("shards") == [8, 8, 10] and
      desc.get("checksum") == "crc32c" and desc.get("stored_axis_order") == [0, 1, 2] and
      desc.get("zarr_format") == 3 and desc.get("ome_version") is None,
      "halo info --json: shards, checksum, axis order", r.stdout + r.stderr)
r = halo("info", src, check_rc=0)
check("shards      8x8x10 (18 files of chunks)" in r.stdout and
      r.stdout.startswith(f"{src}: zarr v3, 3D\n") and
      "checksum    crc32c on every chunk" in r.stdout, "halo info: shards and checksum",
      r.stdout)
# Damaged shards: one line each, naming the shard file (and the chunk).
shard = os.path.join(src, "c", "0", "1", "2")
good = open(shard, "rb").read()
index = np.frombuffer(good[-132:-4], "<u8").copy()
index[0] = len(good) - 10           # chunk (0, 2, 4) runs past the end
index = index.tobytes()
beyond = good[:-132] + index + zarrv3.struct.pack("<I", zarrv3.crc32c(index))
# An entry over the index itself: its bytes would be read as the chunk's.
over = np.frombuffer(good[-132:-4], "<u8").copy()
over[0], over[1] = len(good) - 132, 64
over = over.tobytes()
into = good[:-132] + over + zarrv3.struct.pack("<I", zarrv3.crc32c(over))
for what, blob, needle in [
        ("an entry over its index", into,
         f"{shard} (chunk 0,2,4): the shard's index puts it at byte {len(good) - 132}, 64 bytes "
         f"long, in a file of {len(good)} whose index is there"),
        ("its index's checksum", good[:-3] + bytes([good[-3] ^ 1]) + good[-2:],
         f"{shard}: CRC32C checksum mismatch"),
        ("a chunk's checksum", bytes([good[0] ^ 1]) + good[1:],
         f"{shard} (chunk 0,2,4): CRC32C checksum mismatch"),
        ("cut short", good[:20], f"{shard}: 20 bytes, too short for the shard's index of 132"),
        ("an entry beyond the file", beyond,
         f"{shard} (chunk 0,2,4): the shard's index puts it at byte")]:
    open(shard, "wb").write(blob)
    refused(src, needle, f"v3 shard with {what} refused in one line")
open(shard, "wb").write(good)

# 5. What halo does not read is refused in one line, naming the field.
base = zarrv3.write(src, data, (8, 8, 10), [zarrv3.sharding((4, 4, 5), [le()])])
inner = base["codecs"][0]["configuration"]
for what, codecs, needle in [
        ("inner chunks that do not divide the shard", [zarrv3.sharding((3, 4, 5), [le()])],
         "field 'codecs.sharding_indexed.chunk_shape' does not divide the shard shape"),
        ("a compressed index", [dict(base["codecs"][0], configuration=dict(
            inner, index_codecs=[le(), ZSTD]))],
         "field 'codecs.sharding_indexed.index_codecs' is not supported"),
        ("shards in shards", [zarrv3.sharding((4, 4, 5), [zarrv3.sharding((2, 2, 5), [le()])])],
         "codec 'sharding_indexed' is not supported here"),
        ("a transpose before sharding", [{"name": "transpose", "configuration":
                                          {"order": [2, 1, 0]}}, zarrv3.sharding((4, 4, 5),
                                                                                 [le()])],
         "codec 'sharding_indexed' is not supported here"),
        ("a compressor over whole shards", [zarrv3.sharding((4, 4, 5), [le()]), ZSTD],
         "codec 'zstd' is not supported here"),
        ("a transpose after bytes", [le(), {"name": "transpose", "configuration":
                                            {"order": [2, 1, 0]}}],
         "codec 'transpose' is not supported here"),
        ("a transpose order that is no permutation", [
            {"name": "transpose", "configuration": {"order": [0, 0, 1]}}, le()],
         "field 'codecs.transpose.order' is not a permutation of the array's axes"),
        ("an unknown index_location", [dict(base["codecs"][0], configuration=dict(
            inner, index_location="middle"))],
         "field 'codecs.sharding_indexed.index_location' is not \"start\" or \"end\"")]:
    meta = dict(base, codecs=codecs)
    json.dump(meta, open(os.path.join(src, "zarr.json"), "w"))
    refused(src, os.path.join(src, "zarr.json") + ": ", f"v3 with {what}: names zarr.json")
    refused(src, needle, f"v3 with {what} refused in one line")
# A separator is '.' or '/' exactly: ".x" was taken as '.', every chunk key
# missed, and the volume read as its fill value.
for sep in [".x", "//", "", 5]:
    meta = dict(base, chunk_key_encoding={"name": "default", "configuration": {"separator": sep}})
    json.dump(meta, open(os.path.join(src, "zarr.json"), "w"))
    refused(src, "field 'chunk_key_encoding' separator is not '.' or '/'",
            f"v3 chunk key separator {sep!r} refused in one line")

# A shard of 2^60 inner chunks: its index's size (16 bytes a chunk) wrapped
# to 0 and halo read the index past its buffer.
huge = path("v3_huge_shard.zarr")
zarrv3.write(huge, np.zeros((1, 1, 1), np.uint8), (1, 1, 1), [le()])
json.dump(dict(zarrv3.write(huge, np.zeros((1, 1, 1), np.uint8), (1, 1, 1), [le()]),
               chunk_grid={"name": "regular", "configuration": {"chunk_shape": [1 << 20] * 3}},
               codecs=[zarrv3.sharding((1, 1, 1), [le()])]),
          open(os.path.join(huge, "zarr.json"), "w"))
refused(huge, "a shard holds 1.15e+18 chunks, whose index is more than halo's limit",
        "v3 shards of 2^60 chunks refused in one line")

# A float's fill as its bits in hex, float16 too (its 4 digits were read
# as a double's, 0x3c00 as 7.6e-320 where it is 1.0); no chunk is stored.
for dt, hexfill, value in [("float16", "0x3c00", 1.0), ("float16", "0xfc00", -np.inf),
                           ("float32", "0x3f800000", 1.0),
                           ("float64", "0xc000000000000000", -2.0)]:
    fill_src = path(f"v3_hexfill_{dt}.zarr")
    meta = zarrv3.write(fill_src, np.zeros((2, 4, 4), dt), (2, 4, 4), [le()])
    shutil.rmtree(os.path.join(fill_src, "c"), ignore_errors=True)
    json.dump(dict(meta, fill_value=hexfill), open(os.path.join(fill_src, "zarr.json"), "w"))
    converts_to(fill_src, np.full((2, 4, 4), value, dt),
                f"v3 {dt} fill_value {hexfill} read as {value}")

# A v2 array's attributes with python's bare NaN and -Infinity: zarr.json
# is strict JSON (which JavaScript's and C++'s parsers hold to), so they
# become the strings v3 gives such fill values; v2's .zattrs keeps them.
nanattrs = path("v2_nan_attrs.zarr")
zarr.open(nanattrs, mode="w", shape=(2, 4, 4), chunks=(2, 4, 4), dtype="u2")[:] = 3
with open(os.path.join(nanattrs, ".zattrs"), "w") as f:
    f.write('{"a": NaN, "big": 18446744073709551615, "c": [-Infinity, 1.5], "s": "NaN"}')
out3 = path("v3_nan_attrs.zarr")
r = convert(nanattrs, out3, "--zarr-format", "3")


def strict(c):
    raise ValueError(f"bare {c}")


try:
    got = json.load(open(os.path.join(out3, "zarr.json")), parse_constant=strict)["attributes"]
except (OSError, ValueError) as e:
    got = str(e)
check(got == {"a": "NaN", "big": 18446744073709551615, "c": ["-Infinity", 1.5], "s": "NaN"},
      "v3 zarr.json: bare NaN and -Infinity of v2 attributes become strings (strict JSON)",
      (got, r.stderr))

# 6. OME-Zarr 0.5: a Zarr v3 group whose "ome" attributes hold the
# multiscales, its levels v3 arrays (here sharded, as large images are).
ome = path("img05.ome.zarr")
shutil.rmtree(ome, ignore_errors=True)
os.makedirs(ome)
data4 = sample("<u2", (2, 9, 20, 22))
axes = [{"name": "c", "type": "channel"}] + [
    {"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]
group = {"zarr_format": 3, "node_type": "group", "attributes": {"ome": {
    "version": "0.5",
    "multiscales": [{"name": "img", "axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 0.5, 0.1, 0.1]}]},
        {"path": "1", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 0.5, 0.2, 0.2]}]}]}],
    "omero": {"channels": [{"label": "DAPI", "color": "0000FF"},
                           {"label": "GFP", "color": "00FF00"}]}}}}
json.dump(group, open(os.path.join(ome, "zarr.json"), "w"))
zarrv3.write(os.path.join(ome, "0"), data4, (1, 8, 16, 16),
             [zarrv3.sharding((1, 4, 8, 8), [le(), BLOSC])])
zarrv3.write(os.path.join(ome, "1"), data4[:, :, ::2, ::2], (1, 8, 16, 16), [le()])
converts_to(ome, data4[1], "OME-Zarr 0.5: level 0 of channel 1 read", "--channel", "1")
r = halo("info", ome, "--json", check_rc=0)
desc = json.loads(r.stdout) if r.returncode == 0 else {}
check(desc.get("format") == "ome-zarr" and desc.get("voxel") == [0.5, 0.1, 0.1] and
      desc.get("unit") == "micrometer" and desc.get("channel_names") == ["DAPI", "GFP"] and
      desc.get("zarr_format") == 3 and desc.get("ome_version") == "0.5",
      "OME-Zarr 0.5: voxel size, unit and channel names", r.stdout + r.stderr)
out = path("img05_out.ome.zarr")
for fmt, version in [("2", "0.4"), (None, "0.5")]:
    r = convert(ome, out, "--channel", "0", *(["--zarr-format", fmt] if fmt else []))
    if r.returncode == 0 and fmt:
        attrs = zarr.open_group(out, mode="r").attrs.asdict()
    elif r.returncode == 0:
        attrs = json.load(open(os.path.join(out, "zarr.json")))["attributes"]["ome"]
    else:
        attrs = {}
    ms = attrs.get("multiscales", [{}])[0]
    check(attrs.get("omero", {}).get("channels", [{}])[0].get("label") == "DAPI" and
          ms.get("datasets", [{}])[0].get("coordinateTransformations", [{}])[0].get("scale") ==
          [0.5, 0.1, 0.1] and (ms.get("version") or attrs.get("version")) == version,
          f"OME-Zarr 0.5 to {version}{'' if fmt else ' (by default)'}: voxel size and channel "
          "kept", r.stderr + json.dumps(attrs))
# A v3 group that is no image is named as such, with its arrays.
json.dump({"zarr_format": 3, "node_type": "group", "attributes": {}},
          open(os.path.join(ome, "zarr.json"), "w"))
refused(ome, "zarr.json: a Zarr group without OME-Zarr multiscales, holding the arrays 0, 1: "
        f"give the path of one, such as {ome}/0", "a plain v3 group refused, its arrays named")

# 7. Zarr v2 in F order, as python zarr 2.13 writes it: every type size,
# edge chunks, 2D, and a 4D array's channel.
for dt, shape, chunks in [("<u2", (7, 9, 11), (3, 4, 5)), (">f8", (7, 9, 11), (4, 4, 4)),
                          ("|i1", (5, 6, 7), (5, 6, 7)), ("<i4", (30, 41), (16, 16))]:
    data = sample(dt, shape)
    f = path("forder.zarr")
    z = zarr.open(f, mode="w", shape=shape, chunks=chunks, dtype=dt, order="F")
    z[:] = data
    converts_to(f, data, f"zarr v2 F order {dt} {shape} in {chunks}")
data4 = sample("<u2", (3, 5, 6, 7))
z = zarr.open(f, mode="w", shape=data4.shape, chunks=(2, 2, 3, 4), dtype="<u2", order="F")
z[:] = data4
converts_to(f, data4[1], "zarr v2 F order 4D: --channel 1", "--channel", "1")
r = halo("info", f, check_rc=0)
check("stored as   axes 3, 2, 1, 0 outermost first (F order)" in r.stdout,
      "halo info: F order", r.stdout)

# 8. Writing v3: plain and sharded, every compressor v3 has, shards and
# chunks that do not divide the shape, a 2D image; read back by the
# specification's decoding and by halo itself.
def v3_out(data, what, *opts, chunks=None, src_dtype=None):
    f = path("w_src.zarr")
    z = zarr.open(f, mode="w", shape=data.shape, chunks=chunks or (4, 4, 5)[-data.ndim:],
                  dtype=data.dtype, fill_value=None if data.dtype.kind == "f" else 0)
    z[:] = data
    out = path("w_out.zarr")
    r = convert(f, out, *opts)
    got = zarrv3.read(out) if r.returncode == 0 else None
    check(got is not None and got.dtype == data.dtype and np.array_equal(got, data,
          equal_nan=True), f"write v3 {what}: the specification's decoding equals the data",
          r.stderr)
    if r.returncode == 0:
        converts_to(out, data, f"write v3 {what}: halo reads it back")
    return out, (json.load(open(os.path.join(out, "zarr.json"))) if r.returncode == 0 else {})


data = sample("<u2", (13, 21, 26))
for comp in ["lz4", "zstd", "gzip", "none"]:
    out, meta = v3_out(data, f"--compressor {comp}", "--zarr-format", "3", "--compressor", comp)
names = [c["name"] for c in meta.get("codecs", [])]
check(meta.get("chunk_key_encoding") == {"name": "default", "configuration": {"separator": "/"}}
      and names == ["bytes"] and meta.get("dimension_names") == ["z", "y", "x"] and
      meta.get("fill_value") == 0 and "c/3/5/5" in zarrv3.chunk_files(out),
      "write v3: keys c/Z/Y/X, codecs, dimension_names, fill", meta)
for dt, shape, shards, chunks in [("<u2", (13, 21, 26), "8,8,10", (4, 4, 5)),
                                  ("<f4", (13, 21, 26), "12,4,15", (4, 4, 5)),
                                  ("|u1", (9, 30, 17), "9,30,17", (3, 10, 17)),
                                  ("<i8", (30, 41), "32,48", (16, 16))]:
    data = sample(dt, shape)
    if data.dtype.kind == "f":
        data[0, :4, :5] = np.nan
    out, meta = v3_out(data, f"{dt} {shape} in shards {shards}", "--shards", shards,
                       chunks=chunks)
    conf = meta.get("codecs", [{}])[0].get("configuration", {})
    grid = [(s + c - 1) // c for s, c in zip(shape, [int(x) for x in shards.split(",")])]
    check(conf.get("chunk_shape") == list(chunks) and
          len(zarrv3.chunk_files(out)) == int(np.prod(grid)) and
          [c["name"] for c in conf.get("index_codecs", [])] == ["bytes", "crc32c"],
          f"write v3 shards {shards}: inner chunks {chunks}, a file per shard, index "
          "with its crc32c", meta)
# --chunks past the array's edge (cut to it) with --shards: checked against
# the chunks as given, not as cut (16 was "no multiple of the chunks' 3").
small = sample("<u2", (3, 5, 7))
out, meta = v3_out(small, "chunks past the array, in shards", "--chunks", "8,8,8", "--shards",
                   "16,16,16", chunks=(3, 5, 7))
conf = meta.get("codecs", [{}])[0].get("configuration", {})
check(meta.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape") == [3, 5, 7] and
      conf.get("chunk_shape") == [3, 5, 7], "--chunks 8,8,8 --shards 16,16,16 on 3x5x7: one "
      "shard of one chunk", meta)
# --zarr-format 3, the format a v3 input's output has anyway, keeps its
# shards (it dropped them).
resharded = path("w_keep.zarr")
r = convert(out, resharded, "--zarr-format", "3")
kept = json.load(open(os.path.join(resharded, "zarr.json"))) if r.returncode == 0 else {}
check([c["name"] for c in kept.get("codecs", [])] == ["sharding_indexed"],
      "--zarr-format 3 keeps a v3 input's shards", kept)
# Inner chunks wholly past the edge are left out (empty in the index):
# 9 rows in shards of 8 and chunks of 4 leave the second shard's second
# chunk past the array.
out, meta = v3_out(sample("<u2", (5, 9, 9)), "edge shards", "--shards", "8,8,10",
                   chunks=(4, 4, 5))
blob = open(os.path.join(out, "c", "0", "1", "0"), "rb").read() if meta else b""
index = np.frombuffer(blob[-(8 * 16 + 4):-4], "<u8").reshape(2, 2, 2, 2) if meta else None
check(index is not None and (index[:, 1] == zarrv3.EMPTY).all() and
      (index[:, 0] != zarrv3.EMPTY).all(),
      "write v3: an edge shard's chunks past the array are empty in its index",
      index.tolist() if index is not None else None)

# OME-Zarr 0.5 with a pyramid in shards: the group's "ome" attributes and
# each level equal OME-Zarr 0.4's, written from the same input.
data = sample("<u2", (6, 37, 30))
f = path("w_src.zarr")
zarr.open(f, mode="w", shape=data.shape, chunks=(3, 16, 16), dtype="<u2")[:] = data
o5, o4 = path("w05.ome.zarr"), path("w04.ome.zarr")
r5 = convert(f, o5, "--pyramid", "2", "--shards", "6,32,32")
r4 = convert(f, o4, "--pyramid", "2")
g5 = json.load(open(os.path.join(o5, "zarr.json"))) if r5.returncode == 0 else {}
ome5 = g5.get("attributes", {}).get("ome", {})
ms4 = zarr.open_group(o4, mode="r").attrs["multiscales"][0] if r4.returncode == 0 else {}
ms5 = dict(ome5.get("multiscales", [{}])[0])
check(g5.get("node_type") == "group" and ome5.get("version") == "0.5" and
      "version" not in ms5 and ms5 == {k: v for k, v in ms4.items() if k != "version"},
      "write OME-Zarr 0.5: the group's ome attributes hold 0.4's multiscales",
      r5.stderr + json.dumps(g5))
for level in range(3):
    a5 = zarrv3.read(os.path.join(o5, str(level))) if r5.returncode == 0 else None
    a4 = zarr.open(os.path.join(o4, str(level)), mode="r")[:] if r4.returncode == 0 else None
    check(a5 is not None and a4 is not None and np.array_equal(a5, a4),
          f"write OME-Zarr 0.5: level {level} equals OME-Zarr 0.4's")
r = halo("info", o5, "--json", check_rc=0)
check(r.returncode == 0 and json.loads(r.stdout).get("shards") == [6, 32, 32],
      "halo info reads halo's OME-Zarr 0.5", r.stderr)

# A pipeline's to_zarr: "shards" of the input's chunks or of given ones,
# "zarr_format": 3 alone; and its refusals.
data = sample("<u2", (13, 21, 26))
f = path("w_src.zarr")
zarr.open(f, mode="w", shape=data.shape, chunks=(4, 4, 5), dtype="<u2")[:] = data


def run_store(store):
    p = path("w_pipe.json")
    out = path("w_pipe.zarr")
    json.dump({"steps": [{"name": "a", "op": "from_zarr", "path": f},
                         {"name": "b", "op": "map_blocks", "kernel": "clip", "input": "a",
                          "lo": 0, "hi": 1000},
                         dict({"name": "o", "op": "to_zarr", "input": "b", "path": out,
                               "overwrite": True}, **store)]}, open(p, "w"))
    return halo("run", p, "--quiet"), out


for store, inner, grid in [({"shards": [8, 8, 10]}, [4, 4, 5], [8, 8, 10]),
                           ({"shards": [6, 16, 16], "chunks": [3, 8, 8]}, [3, 8, 8],
                            [6, 16, 16]),
                           ({"zarr_format": 3, "compressor": "zstd"}, None, [4, 4, 5]),
                           ({"zarr_format": 3, "shards": None}, None, [4, 4, 5])]:
    r, out = run_store(store)
    meta = json.load(open(os.path.join(out, "zarr.json"))) if r.returncode == 0 else {}
    conf = meta.get("codecs", [{}])[0].get("configuration", {})
    check(r.returncode == 0 and np.array_equal(zarrv3.read(out), data.clip(0, 1000)) and
          meta["chunk_grid"]["configuration"]["chunk_shape"] == grid and
          conf.get("chunk_shape") == inner, f"halo run to_zarr {store}", r.stderr)
for store, needle in [({"shards": [6, 8, 10]}, "field \"shards\": 6 is not a multiple of the "
                       "chunks' 4 along axis 0"),
                      ({"shards": [8, 8, 10], "zarr_format": 2}, "Zarr v2 has no shards"),
                      ({"zarr_format": 3, "compressor": "bz2"}, "Zarr v3 has no bz2 codec")]:
    r, out = run_store(store)
    check(r.returncode == 1 and needle in r.stderr, f"halo run to_zarr {store} refused",
          r.stderr)

# The summary counts shards; an input's compressor that v3 lacks (numcodecs'
# Zlib) gives way to halo's default, blosc lz4.
f = path("w_zlib.zarr")
zarr.open(f, mode="w", shape=(8, 8, 10), chunks=(4, 4, 5), dtype="<u2",
          compressor=numcodecs.Zlib(level=1))[:] = 7
out = path("w_zlib_out.zarr")
shutil.rmtree(out, ignore_errors=True)
r = halo("convert", f, out, "--shards", "8,8,10")
conf = (json.load(open(os.path.join(out, "zarr.json")))["codecs"][0]["configuration"]
        if r.returncode == 0 else {})
check(r.returncode == 0 and "chunks 4x4x5 in shards of 8x8x10, 1 shard in" in r.stdout and
      conf["codecs"][1]["configuration"]["cname"] == "lz4" and
      (zarrv3.read(out) == 7).all(), "write v3 from a zlib input: blosc lz4, 1 shard counted",
      r.stdout + r.stderr)

# Refused in one line, before anything is written.
f = path("w_src.zarr")
zarr.open(f, mode="w", shape=(8, 8, 10), chunks=(4, 4, 5), dtype="<u2")[:] = 1
for what, opts, needle in [
        ("shards that are no multiple of the chunks", ["--shards", "6,8,10"],
         "--shards: 6 is not a multiple of the chunks' 4 along axis 0"),
        ("shards in Zarr v2", ["--shards", "8,8,10", "--zarr-format", "2"],
         "--shards: Zarr v2 has no shards"),
        ("lzma in v3", ["--zarr-format", "3", "--compressor", "lzma"],
         "Zarr v3 has no lzma codec"),
        ("a TIFF in v3", ["--zarr-format", "3"], "--zarr-format and --shards apply to Zarr"),
        ("--zarr-format 4", ["--zarr-format", "4"], "--zarr-format")]:
    out = path("w_bad.tif" if "TIFF" in what else "w_bad.zarr")
    shutil.rmtree(out, ignore_errors=True)
    r = halo("convert", f, out, *opts)
    check(r.returncode != 0 and needle in r.stderr and r.stderr.count("\n") == 1 and
          not os.path.exists(out), f"write v3: {what} refused in one line", r.stderr)

# Inner chunks of nothing but the fill value are left out of a shard
# (empty in its index), and a shard of fill alone has no file, as
# zarr-python 3 writes them.
data = np.zeros((8, 16, 20), "<u2")
data[0:4, 0:4, 0:5] = 9                     # shard (0, 0, 0): inner chunk 0 only
out, meta = v3_out(data, "with empty inner chunks", "--shards", "8,8,10", chunks=(4, 4, 5))
files = sorted(zarrv3.chunk_files(out)) if meta else []
blob = open(os.path.join(out, "c", "0", "0", "0"), "rb").read() if meta else b""
index = np.frombuffer(blob[-(8 * 16 + 4):-4], "<u8").reshape(8, 2) if len(blob) > 132 else None
check(files == [os.path.join("c", "0", "0", "0")] and index is not None and
      (index[1:] == zarrv3.EMPTY).all() and index[0, 0] == 0 and index[0, 1] == len(blob) - 132,
      "write v3 shards: fill-only inner chunks empty in the index, fill-only shards no file",
      (files, index))

done()
