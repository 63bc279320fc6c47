"""Zarr v3 arrays written and read in the tests by following the
specification (zarr-specs, v3 core and its transpose, crc32c and
sharding_indexed codecs) with numpy, numcodecs and crcmod: Debian's python
zarr 2.13 predates the final v3 format, so these stand in as the oracle.
Codec lists are given as they appear in zarr.json."""
import json
import os
import shutil
import struct

import crcmod.predefined
import numcodecs
import numpy as np

crc32c = crcmod.predefined.mkPredefinedCrcFun("crc-32c")
EMPTY = 2**64 - 1


def compressor(c):
    conf = c.get("configuration", {})
    if c["name"] == "blosc":
        shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[conf.get("shuffle", "shuffle")]
        return numcodecs.Blosc(cname=conf["cname"], clevel=conf["clevel"], shuffle=shuffle,
                               blocksize=conf.get("blocksize", 0))
    if c["name"] == "gzip":
        return numcodecs.GZip(level=conf.get("level", 5))
    if c["name"] == "zstd":
        return numcodecs.Zstd(level=conf.get("level", 0))
    if c["name"].startswith("numcodecs."):
        return numcodecs.get_codec(dict(conf, id=c["name"][len("numcodecs."):]))
    return None


def encode(block, codecs, fill, skip_empty=True):
    """A chunk's bytes through codecs; None where zarr-python writes none
    (every element is the fill value)."""
    if skip_empty and np.array_equal(block, np.full_like(block, fill), equal_nan=True):
        return None
    arr, data = block, None
    for c in codecs:
        name, conf = c["name"], c.get("configuration", {})
        if name == "transpose":
            order = conf["order"]
            if isinstance(order, str):
                order = list(range(arr.ndim)) if order == "C" else list(range(arr.ndim))[::-1]
            arr = np.transpose(arr, order)
        elif name == "bytes":
            dt = arr.dtype.newbyteorder("<" if conf.get("endian", "little") == "little" else ">")
            data = np.ascontiguousarray(arr, dtype=dt).tobytes()
        elif name == "sharding_indexed":
            data = encode_shard(arr, conf, fill)
        elif name == "crc32c":
            data = data + struct.pack("<I", crc32c(data))
        else:
            data = compressor(c).encode(data)
    return data


def encode_shard(shard, conf, fill):
    inner = conf["chunk_shape"]
    per = [s // c for s, c in zip(shard.shape, inner)]
    index = np.full(per + [2], EMPTY, dtype=np.uint64)
    ibytes = len(encode_index(index, conf))
    at_start = conf.get("index_location", "end") == "start"
    body, offset = b"", ibytes if at_start else 0
    for pos in np.ndindex(*per):
        sl = tuple(slice(p * c, (p + 1) * c) for p, c in zip(pos, inner))
        blob = encode(shard[sl], conf["codecs"], fill)
        if blob is not None:
            index[pos] = (offset + len(body), len(blob))
            body += blob
    if (index == EMPTY).all():
        return None
    idx = encode_index(index, conf)
    return idx + body if at_start else body + idx


def encode_index(index, conf):
    data = None
    for c in conf["index_codecs"]:
        if c["name"] == "bytes":
            big = c.get("configuration", {}).get("endian") == "big"
            data = index.astype(">u8" if big else "<u8").tobytes()
        elif c["name"] == "crc32c":
            data += struct.pack("<I", crc32c(data))
    return data


def sharding(inner, codecs, index_crc=True, location="end", index_endian="little"):
    """zarr-python 3's sharding codec (its index defaults: little-endian
    bytes, crc32c, at the end)."""
    ic = [{"name": "bytes", "configuration": {"endian": index_endian}}]
    if index_crc:
        ic.append({"name": "crc32c"})
    return {"name": "sharding_indexed", "configuration": {
        "chunk_shape": list(inner), "codecs": codecs, "index_codecs": ic,
        "index_location": location}}


def write(root, data, chunks, codecs, fill=0, encoding="default", attrs=None):
    """An array at root: chunks is the chunk grid's shape (the shard shape
    for a sharded array); edge chunks are stored full size, padded with
    fill; chunks of fill alone are not written, as zarr-python does."""
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    sep = "/" if encoding == "default" else "."
    meta = {"zarr_format": 3, "node_type": "array", "shape": list(data.shape),
            "data_type": np.dtype(data.dtype).name,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
            "chunk_key_encoding": {"name": encoding, "configuration": {"separator": sep}},
            "fill_value": fill_json(fill, data.dtype), "codecs": codecs,
            "attributes": attrs or {}}
    with open(os.path.join(root, "zarr.json"), "w") as f:
        json.dump(meta, f)
    grid = [range((s + c - 1) // c) for s, c in zip(data.shape, chunks)]
    for idx in np.ndindex(*[len(g) for g in grid]):
        block = np.full(chunks, fill, dtype=data.dtype)
        sl = tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, chunks))
        part = data[sl]
        block[tuple(slice(0, n) for n in part.shape)] = part
        blob = encode(block, codecs, fill)
        if blob is None:
            continue
        key = sep.join(str(i) for i in idx)
        f = os.path.join(root, "c" + sep + key if encoding == "default" else key)
        os.makedirs(os.path.dirname(f), exist_ok=True)
        with open(f, "wb") as out:
            out.write(blob)
    return meta


def fill_json(fill, dtype):
    if np.dtype(dtype).kind == "f" and np.isnan(fill):
        return "NaN"
    return fill.item() if hasattr(fill, "item") else fill


def chunk_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs if f != "zarr.json")


def read(root):
    """The array at root, as the specification decodes it."""
    with open(os.path.join(root, "zarr.json")) as f:
        meta = json.load(f)
    shape = meta["shape"]
    grid = meta["chunk_grid"]["configuration"]["chunk_shape"]
    dtype = np.dtype(meta["data_type"])
    fill = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}.get(
        meta["fill_value"], meta["fill_value"])
    enc = meta["chunk_key_encoding"]
    sep = enc.get("configuration", {}).get("separator", "/" if enc["name"] == "default" else ".")
    out = np.full(shape, fill, dtype=dtype)
    for idx in np.ndindex(*[(s + c - 1) // c for s, c in zip(shape, grid)]):
        key = sep.join(str(i) for i in idx)
        f = os.path.join(root, "c" + sep + key if enc["name"] == "default" else key)
        if not os.path.exists(f):
            continue
        with open(f, "rb") as fh:
            block = decode(fh.read(), meta["codecs"], grid, dtype, fill)
        sl = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(idx, grid, shape))
        out[sl] = block[tuple(slice(0, x.stop - x.start) for x in sl)]
    return out


def decode(data, codecs, shape, dtype, fill):
    orders = [c["configuration"]["order"] for c in codecs if c["name"] == "transpose"]
    enc_shape = list(shape)
    for order in orders:
        enc_shape = [enc_shape[i] for i in order]
    for c in reversed(codecs):
        name, conf = c["name"], c.get("configuration", {})
        if name == "crc32c":
            assert struct.unpack("<I", data[-4:])[0] == crc32c(data[:-4]), "crc32c"
            data = data[:-4]
        elif name == "bytes":
            dt = dtype.newbyteorder("<" if conf.get("endian", "little") == "little" else ">")
            arr = np.frombuffer(data, dtype=dt).reshape(enc_shape).astype(dtype)
        elif name == "sharding_indexed":
            arr = decode_shard(data, conf, shape, dtype, fill)
        elif name == "transpose":
            arr = np.transpose(arr, np.argsort(conf["order"]))
        else:
            data = compressor(c).decode(data)
    return arr


def decode_shard(data, conf, shape, dtype, fill):
    inner = conf["chunk_shape"]
    per = [s // c for s, c in zip(shape, inner)]
    n = int(np.prod(per))
    crc = any(c["name"] == "crc32c" for c in conf["index_codecs"])
    big = conf["index_codecs"][0].get("configuration", {}).get("endian") == "big"
    size = 16 * n + (4 if crc else 0)
    raw = data[:size] if conf.get("index_location", "end") == "start" else data[-size:]
    if crc:
        assert struct.unpack("<I", raw[-4:])[0] == crc32c(raw[:-4]), "index crc32c"
    index = np.frombuffer(raw[:16 * n], dtype=">u8" if big else "<u8").reshape(per + [2])
    out = np.full(shape, fill, dtype=dtype)
    for pos in np.ndindex(*per):
        off, nb = (int(v) for v in index[pos])
        if off == EMPTY and nb == EMPTY:
            continue
        sl = tuple(slice(p * c, (p + 1) * c) for p, c in zip(pos, inner))
        out[sl] = decode(data[off:off + nb], conf["codecs"], inner, dtype, fill)
    return out
