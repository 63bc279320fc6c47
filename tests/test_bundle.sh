# scripts/bundle packs halo for a GPU machine without apt: the archive is
# under 64 MiB, holds halo, the CUDA tests, the peers and the run script,
# and, unpacked elsewhere, halo and test_cuda find every library that is
# not the C library's or CUDA's inside it (nothing from /opt/halo-deps or
# the distribution's FFTW, hwloc, blosc, tiff, jansson), and run from it.
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
