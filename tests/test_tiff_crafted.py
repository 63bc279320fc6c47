"""TIFF layouts that tifffile writes only with imagecodecs (absent here) or
never: predictors after no compression or PackBits, sparse strips and
tiles, looping directory chains. Each file is written byte by byte from
the TIFF 6.0 specification and Adobe's Technical Note 3 (the
floating-point predictor); libtiff's own deflate decoding of the same
differenced bytes checks the encoders, and tifffile reads what it can."""
import os
import shutil
import struct
import sys
import zlib

import numpy as np
import tifffile
import zarr

sys.path.insert(0, os.path.join(os.environ["HALO_SRCDIR"], "tests"))
from haloutil import check, done, halo, path  # noqa: E402

rng = np.random.default_rng(7)
NONE, DEFLATE, PACKBITS = 1, 8, 32773


def packbits(b):
    """PackBits of literal runs only: valid, if no smaller."""
    out = bytearray()
    for i in range(0, len(b), 128):
        out.append(len(b[i:i + 128]) - 1)
        out += b[i:i + 128]
    return bytes(out)


def write_tiff(name, pages, order="<", compression=NONE, predictor=1, rows=None, tile=None,
               encode=None, holes=(), edit=None):
    """A classic TIFF of 2D pages, one sample per pixel. Each strip (or
    tile, padded) is stored as encode(segment) gives it (its bytes in the
    file's order by default); holes: (page, segment) stored with offset
    and byte count 0; edit(page, segment, offset, count), when given, says
    the offset and count the directory records instead."""
    dt = pages[0].dtype
    h, w = pages[0].shape
    rows = rows or h
    buf = bytearray(struct.pack(order + "2sHI", b"II" if order == "<" else b"MM", 42, 0))
    layout = []
    for k, page in enumerate(pages):
        if tile:
            segs = []
            for y in range(0, h, tile[0]):
                for x in range(0, w, tile[1]):
                    t = np.zeros(tile, dt)
                    part = page[y:y + tile[0], x:x + tile[1]]
                    t[:part.shape[0], :part.shape[1]] = part
                    segs.append(t)
        else:
            segs = [page[y:y + rows] for y in range(0, h, rows)]
        offs, counts = [], []
        for i, seg in enumerate(segs):
            data = encode(seg) if encode else seg.astype(dt.newbyteorder(order)).tobytes()
            if (k, i) in holes:
                data = b""
            at, count = (len(buf) if data else 0), len(data)
            if edit:
                at, count = edit(k, i, at, count)
            offs.append(at)
            counts.append(count)
            buf += data + b"\0" * (len(data) % 2)
        layout.append((offs, counts))
    link = 4  # where the previous directory's "next" offset goes
    for offs, counts in layout:
        def array(v):
            if len(v) == 1:
                return v[0]
            at = len(buf)
            buf.extend(struct.pack(order + f"{len(v)}I", *v))
            return at
        tags = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, dt.itemsize * 8),
                (259, 3, 1, compression), (262, 3, 1, 1), (277, 3, 1, 1),
                (339, 3, 1, {"u": 1, "i": 2, "f": 3}[dt.kind])]
        if predictor != 1:
            tags.append((317, 3, 1, predictor))
        if tile:
            tags += [(322, 4, 1, tile[1]), (323, 4, 1, tile[0]),
                     (324, 4, len(offs), array(offs)), (325, 4, len(counts), array(counts))]
        else:
            tags += [(273, 4, len(offs), array(offs)), (278, 4, 1, rows),
                     (279, 4, len(counts), array(counts))]
        struct.pack_into(order + "I", buf, link, len(buf))
        buf += struct.pack(order + "H", len(tags))
        for tag, typ, n, v in sorted(tags):
            buf += struct.pack(order + ("HHIHH" if typ == 3 else "HHII"), tag, typ, n, v,
                               *([0] if typ == 3 else []))
        link = len(buf)
        buf += b"\0\0\0\0"
    with open(path(name), "wb") as f:
        f.write(buf)
    return path(name)


def horizontal(a, d):
    """Predictor 2 (d = 1) or DNG's 34892/34893 (d = 2, 4): each sample
    minus the one d before it in its row, modulo the sample's width."""
    u = a.view(f"u{a.dtype.itemsize}")
    out = u.copy()
    out[..., d:] = u[..., d:] - u[..., :-d]
    return out.view(a.dtype)


def floating(a, d):
    """Predictor 3 (d = 1) or 34894/34895: each row's samples split into
    byte planes, most significant first, then each byte minus the one d
    before it."""
    el = a.dtype.itemsize
    b = a.astype(a.dtype.newbyteorder(">")).view(np.uint8).reshape(a.shape + (el,))
    planes = np.swapaxes(b, -1, -2).reshape(a.shape[:-1] + (el * a.shape[-1],))
    out = planes.copy()
    out[..., d:] = planes[..., d:] - planes[..., :-d]
    return out


def convert(src):
    dst = path("crafted.zarr")
    shutil.rmtree(dst, ignore_errors=True)
    r = halo("convert", src, dst, "--quiet", check_rc=None)
    return (zarr.open(dst, mode="r")[:] if r.returncode == 0 else None), r


def sample(dt, shape):
    dt = np.dtype(dt)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dt)
    i = np.iinfo(dt)
    return rng.integers(i.min, i.max, size=shape, dtype=dt, endpoint=True)


DIST = {2: 1, 34892: 2, 34893: 4, 3: 1, 34894: 2, 34895: 4}
CODEC = {NONE: lambda b: b, PACKBITS: packbits, DEFLATE: zlib.compress}


def predicted(a, predictor, order, compression):
    """An encoder of a's segments with predictor, then compression."""
    def encode(seg):
        if predictor in (3, 34894, 34895):
            raw = floating(seg, DIST[predictor]).tobytes()
        else:
            raw = horizontal(seg, DIST[predictor]).astype(seg.dtype.newbyteorder(order)).tobytes()
        return CODEC[compression](raw)
    return encode


# 1. The encoders agree with libtiff: deflate with predictor 2 or 3 is
# libtiff's to undo.
for dt, pred in [("int16", 2), ("uint32", 2), ("float32", 3), ("float64", 3), ("float16", 3)]:
    for order in "<>":
        a = sample(dt, (2, 9, 13))
        f = write_tiff("pred_deflate.tif", list(a), order, DEFLATE, pred, rows=4,
                       encode=predicted(a, pred, order, DEFLATE))
        got, r = convert(f)
        check(got is not None and np.array_equal(got.view("u1"), a.view("u1")),
              f"{dt} {order} deflate, predictor {pred} (libtiff's): every value", r.stderr)

# 2. No compression and PackBits: libtiff leaves the predictor; halo undoes
# it (the values came back still differenced), in strips and in tiles,
# in either byte order, for every sample width.
cases = [("uint8", 2), ("int16", 2), ("uint32", 2), ("int64", 2), ("uint16", 34892),
         ("int32", 34893), ("float16", 3), ("float32", 3), ("float64", 3), ("float32", 34894),
         ("float64", 34895)]
for dt, pred in cases:
    for comp in (NONE, PACKBITS):
        for order, tile in [("<", None), (">", (16, 16))]:
            a = sample(dt, (2, 9, 21))
            f = write_tiff("pred.tif", list(a), order, comp, pred, rows=4, tile=tile,
                           encode=predicted(a, pred, order, comp))
            got, r = convert(f)
            how = f"{dt} {order} {'packbits' if comp == PACKBITS else 'uncompressed'}" \
                  f"{' tiles' if tile else ''}, predictor {pred}"
            check(got is not None and np.array_equal(got.view("u1"), a.view("u1")),
                  f"{how}: every value", r.stderr)
# tifffile undoes predictor 2 without compression too (its own numpy code).
a = sample("uint16", (3, 9, 21))
f = write_tiff("pred_tf.tif", list(a), "<", NONE, 2, rows=4, encode=predicted(a, 2, "<", NONE))
got, r = convert(f)
check(got is not None and np.array_equal(got, tifffile.imread(f)) and np.array_equal(got, a),
      "uncompressed, predictor 2: as tifffile reads it", r.stderr)

# 3. Predictors nobody can undo here are refused in one line.
a = sample("int16", (2, 9, 13))
for comp, pred, dt, want in [
        (NONE, 3, "int16", "predictor 3, which halo cannot undo on 16-bit signed samples"),
        (PACKBITS, 7, "int16", "predictor 7, which halo cannot undo"),
        (DEFLATE, 34892, "int16", "predictor 34892, which libtiff cannot undo after deflate")]:
    f = write_tiff("pred_bad.tif", list(a), "<", comp, pred, rows=4,
                   encode=lambda s, c=comp: CODEC[c](s.tobytes()))
    got, r = convert(f)
    check(r.returncode == 1 and r.stderr.count("\n") == 1 and want in r.stderr
          and not os.path.exists(path("crafted.zarr")), f"predictor {pred}: refused", r.stderr)

# 4. A strip or tile of byte count 0 is a hole: zeros, as tifffile reads it
# (an uncompressed one was read from the file's offset 0, its header).
a = sample("uint16", (2, 9, 13)) | 1
for comp in (NONE, PACKBITS, DEFLATE):
    for tile, holes in [(None, {(0, 1), (1, 2)}), ((16, 16), {(1, 0)})]:
        f = write_tiff("sparse.tif", list(a), "<", comp, rows=4, tile=tile, holes=holes,
                       encode=lambda s, c=comp: CODEC[c](s.tobytes()))
        want = a.copy()
        if tile:
            want[1] = 0
        else:
            want[0, 4:8] = 0
            want[1, 8:] = 0
        got, r = convert(f)
        ok = got is not None and np.array_equal(got, want)
        if comp != PACKBITS:  # tifffile needs imagecodecs for PackBits
            ok = ok and np.array_equal(tifffile.imread(f), want)
        check(ok, f"codec {comp}{' tiles' if tile else ' strips'}: a hole reads as zeros",
              r.stderr)

# An offset of 0 with a byte count is a hole too (tifffile's zeros; the
# file's header was read as pixels).
for comp in (NONE, PACKBITS, DEFLATE):
    f = write_tiff("offset0.tif", list(a), "<", comp, rows=4,
                   encode=lambda s, c=comp: CODEC[c](s.tobytes()),
                   edit=lambda k, i, at, n: (0 if (k, i) == (0, 1) else at, n))
    want = a.copy()
    want[0, 4:8] = 0
    got, r = convert(f)
    check(got is not None and np.array_equal(got, want),
          f"codec {comp}: a strip at offset 0 reads as zeros", r.stderr)
# An uncompressed strip or tile shorter than its pixels, or running past
# the file's end, is refused as the file is opened (libtiff read on into
# the next strip or the directory; tifffile refuses it).
for what, tile, edit, want in [
        ("a strip 4 bytes short", None, lambda k, i, at, n: (at, n - 4 if (k, i) == (1, 1) else n),
         "page 1, strip "),  # libtiff puts counts of its own in place of a bad array
        ("a tile 2 bytes short", (16, 16), lambda k, i, at, n: (at, n - 2 if (k, i) == (0, 0) else n),
         "page 0, tile 0, holds 510 bytes of the 512 its pixels need"),
        ("a strip past the file's end", None,
         lambda k, i, at, n: (at + 10**6 if (k, i) == (0, 2) else at, n),
         "page 0, strip 2, holds 0 bytes of the 26 its pixels need")]:
    f = write_tiff("short.tif", list(a), rows=4, tile=tile, edit=edit)
    for cmd in ("info", "convert"):
        r = halo(cmd, f, *([path("short.zarr")] if cmd == "convert" else []), check_rc=None)
        check(r.returncode == 1 and want in r.stderr and r.stderr.count("\n") == 1 and
              "its pixels need (truncated or corrupt)" in r.stderr,
              f"{what}: halo {cmd} refuses it in one line", r.stderr)
# The floating-point predictor on integers after deflate: refused as the
# file is opened, by info too (libtiff failed once reading).
f = write_tiff("pred3int.tif", list(a), "<", DEFLATE, 3, rows=4,
               encode=lambda s: zlib.compress(s.tobytes()))
for cmd in ("info", "convert"):
    r = halo(cmd, f, *([path("p3.zarr")] if cmd == "convert" else []), check_rc=None)
    check(r.returncode == 1 and "page 0 has the floating-point predictor (3) on 16-bit unsigned "
          "samples" in r.stderr, f"predictor 3 on uint16 after deflate: halo {cmd} refuses it",
          r.stderr)

# 5. A directory chain that loops back is refused, as tifffile refuses it
# (libtiff stopped at the loop, and halo read the pages before it).
a = sample("uint16", (3, 8, 10))
for name, frm, to in [("loop.tif", 2, 0), ("selfloop.tif", 1, 1)]:
    f = write_tiff(name, list(a))
    with tifffile.TiffFile(f) as t:
        offs = [p.offset for p in t.pages]
    b = bytearray(open(f, "rb").read())
    n = struct.unpack_from("<H", b, offs[frm])[0]
    struct.pack_into("<I", b, offs[frm] + 2 + 12 * n, offs[to])
    open(f, "wb").write(b)
    for cmd in ("info", "convert"):
        r = halo(cmd, f, path("loop.zarr"), check_rc=None) if cmd == "convert" else \
            halo(cmd, f, check_rc=None)
        check(r.returncode == 1 and "corrupt directory chain" in r.stderr and
              "looping" in r.stderr, f"{name}: halo {cmd} refuses it", r.stderr)

done()
