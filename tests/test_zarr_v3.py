"""Zarr v3 and the chunk layouts beyond python zarr 2.13's defaults: v3
arrays (bytes, compressors, transpose, crc32c, sharding_indexed), OME-Zarr
0.5 images, and v2's F order. python zarr 2.13 writes the F-order arrays;
the v3 ones are written by tests/zarrv3.py after the specification, with
numcodecs and crcmod. halo converts each to a v2 array that python zarr
reads and numpy compares value for value."""
import json
import os
import shutil
import sys

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
    dst = path("v3_out.zarr")
    r = convert(src, dst, *opts)
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
r = convert(src, dst)
out = zarr.open(dst, mode="r") if r.returncode == 0 else None
check(out is not None and out.chunks == (4, 4, 5) and out.compressor.cname == "lz4" and
      np.array_equal(out[:], data), "v3 sharded: the output has the inner chunks and codec",
      r.stderr)
# halo info describes the layout.
r = halo("info", src, "--json", check_rc=0)
desc = json.loads(r.stdout) if r.returncode == 0 else {}
check(desc.get("chunks") == [4, 4, 5] and desc.get("shards") == [8, 8, 10] and
      desc.get("checksum") == "crc32c" and desc.get("stored_axis_order") == [0, 1, 2],
      "halo info --json: shards, checksum, axis order", r.stdout + r.stderr)
r = halo("info", src, check_rc=0)
check("shards      8x8x10 (18 files of chunks)" in r.stdout and
      "checksum    crc32c on every chunk" in r.stdout, "halo info: shards and checksum",
      r.stdout)
# Damaged shards: one line each, naming the shard file (and the chunk).
shard = os.path.join(src, "c", "0", "1", "2")
good = open(shard, "rb").read()
index = np.frombuffer(good[-132:-4], "<u8").copy()
index[0] = len(good) - 10           # chunk (0, 2, 4) runs past the end
index = index.tobytes()
beyond = good[:-132] + index + zarrv3.struct.pack("<I", zarrv3.crc32c(index))
for what, blob, needle in [
        ("its index's checksum", good[:-3] + bytes([good[-3] ^ 1]) + good[-2:],
         f"{shard}: CRC32C checksum mismatch"),
        ("a chunk's checksum", bytes([good[0] ^ 1]) + good[1:],
         f"{shard} (chunk 0,2,4): CRC32C checksum mismatch"),
        ("cut short", good[:20], f"{shard}: 20 bytes, too short for the shard's index of 132"),
        ("an entry beyond the file", beyond,
         f"{shard} (chunk 0,2,4): the shard's index puts it at bytes")]:
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
      desc.get("unit") == "micrometer" and desc.get("channel_names") == ["DAPI", "GFP"],
      "OME-Zarr 0.5: voxel size, unit and channel names", r.stdout + r.stderr)
out = path("img05_out.ome.zarr")
r = convert(ome, out, "--channel", "0")
attrs = zarr.open_group(out, mode="r").attrs.asdict() if r.returncode == 0 else {}
check(attrs.get("omero", {}).get("channels", [{}])[0].get("label") == "DAPI" and
      attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"] ==
      [0.5, 0.1, 0.1], "OME-Zarr 0.5 to 0.4: voxel size and channel kept", r.stderr)
# A v3 group that is no image is named as such.
json.dump({"zarr_format": 3, "node_type": "group", "attributes": {}},
          open(os.path.join(ome, "zarr.json"), "w"))
refused(ome, "a Zarr group without OME-Zarr multiscales", "a plain v3 group refused")

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

done()
