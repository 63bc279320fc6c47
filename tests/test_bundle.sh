# scripts/bundle packs halo for a GPU machine without apt: the archive is
# under 64 MiB, holds halo, the CUDA tests, the peers (with a dask) and
# the run script, and, unpacked elsewhere, halo and test_cuda find every
# library that is not the C library's or CUDA's inside it (nothing from
# /opt/halo-deps or the distribution's FFTW, hwloc, blosc, tiff, jansson),
# and run from it.
. "$HALO_SRCDIR/tests/tap.sh"

tmp=$HALO_TEST_TMP/bundle
rm -rf "$tmp"
mkdir -p "$tmp"
if "$HALO_SRCDIR/scripts/bundle" "$tmp/b.tar.gz" >"$tmp/log" 2>&1; then
	ok "scripts/bundle builds the archive"
else
	not_ok "scripts/bundle builds the archive"
	diag "$(cat "$tmp/log")"
fi
size=$(stat -c %s "$tmp/b.tar.gz" 2>/dev/null || echo 0)
if [ "$size" -gt 0 ] && [ "$size" -le $((64 * 1024 * 1024)) ]; then
	ok "the archive is at most 64 MiB ($size bytes)"
else
	not_ok "the archive is at most 64 MiB ($size bytes)"
fi
tar -C "$tmp" -xzf "$tmp/b.tar.gz" 2>/dev/null
b=$tmp/halo-bundle
for f in halo run tests/test_cuda bench/peers.py VERSION; do
	if [ -e "$b/$f" ]; then ok "the bundle holds $f"; else not_ok "the bundle holds $f"; fi
done
# The dask peers' dask, for a GPU machine whose python has none: the
# bundle's copy imports through peers.py and computes a map_overlap.
if [ -d "$b/python/dask" ] &&
	PYTHONPATH=$b/python /usr/bin/python3 -c '
import sys
sys.path.insert(0, sys.argv[1] + "/bench")
import numpy as np
from peers import import_dask
dask, da = import_dask(np)
assert dask.__file__.startswith(sys.argv[1] + "/python/"), dask.__file__
x = da.from_array(np.arange(60.0).reshape(3, 4, 5), chunks=(2, 2, 3))
y = x.map_overlap(lambda b: b * 2, depth=1, boundary="reflect").compute()
assert (y == 2 * np.arange(60.0).reshape(3, 4, 5)).all()
' "$b" >"$tmp/dask" 2>&1; then
	ok "the bundle's dask imports and computes through peers.py"
else
	not_ok "the bundle's dask imports and computes through peers.py"
	diag "$(cat "$tmp/dask" 2>/dev/null)"
fi
for exe in halo tests/test_cuda; do
	libs=$(LD_LIBRARY_PATH=$b/lib ldd "$b/$exe" 2>&1)
	outside=$(printf '%s\n' "$libs" | grep '=>' | grep -v "=> $b/lib/" |
		grep -Ev '/(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+)\.so|/libcu|/libnv|ld-linux')
	if [ -z "$outside" ] && ! printf '%s\n' "$libs" | grep -q 'not found'; then
		ok "$exe loads its libraries from the bundle (C and CUDA libraries aside)"
	else
		not_ok "$exe loads its libraries from the bundle (C and CUDA libraries aside)"
		diag "$outside"
	fi
done
if (cd "$tmp" && LD_LIBRARY_PATH=$b/lib "$b/halo" info --ncuda 0 >"$tmp/info" 2>&1) &&
	grep -q '^workers:' "$tmp/info"; then
	ok "the bundled halo starts StarPU"
else
	not_ok "the bundled halo starts StarPU"
	diag "$(cat "$tmp/info")"
fi
if LD_LIBRARY_PATH=$b/lib "$b/tests/test_cuda" >"$tmp/tap" 2>&1 && ! grep -q '^not ok' "$tmp/tap"; then
	ok "the bundled CUDA tests pass ($(grep -c SKIP "$tmp/tap") skipped without a GPU)"
else
	not_ok "the bundled CUDA tests pass"
	diag "$(cat "$tmp/tap")"
fi
rm -rf "$tmp"
tap_done
