# TAP helpers for shell tests: source it, call ok/not_ok, end with tap_done.
tap_n=0
tap_failed=0
ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
not_ok() { tap_n=$((tap_n + 1)); tap_failed=$((tap_failed + 1)); echo "not ok $tap_n - $*"; }
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }
tap_done() { echo "1..$tap_n"; [ "$tap_failed" -eq 0 ]; }
