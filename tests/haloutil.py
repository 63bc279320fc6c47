"""Shared helpers for halo's Python tests: TAP output and running halo.
Tests run under Debian's /usr/bin/python3 so numpy, zarr, dask, scipy and
tifffile are the distribution's, independent of halo."""
import os
import subprocess
import sys

HALO = os.environ.get("HALO", "./halo")
TMP = os.environ.get("HALO_TEST_TMP", "/tmp")

_n = 0
_failed = 0


def check(cond, what, detail=None):
    """One TAP line; detail (e.g. both operands) is printed on failure."""
    global _n, _failed
    _n += 1
    if not cond:
        _failed += 1
    print(f"{'ok' if cond else 'not ok'} {_n} - {what}", flush=True)
    if not cond and detail:
        for line in str(detail).splitlines():
            print(f"# {line}", flush=True)
    return bool(cond)


def skip(what, why):
    global _n
    _n += 1
    print(f"ok {_n} - {what} # SKIP {why}", flush=True)


def done():
    print(f"1..{_n}", flush=True)
    sys.exit(1 if _failed else 0)


def halo(*args, check_rc=None, timeout=600):
    """Runs halo; returns CompletedProcess (text)."""
    r = subprocess.run([HALO, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check_rc is not None and r.returncode != check_rc:
        print(f"# halo {' '.join(map(str, args))} exited {r.returncode}", flush=True)
        for line in (r.stdout + r.stderr).splitlines()[:20]:
            print(f"#   {line}", flush=True)
    return r


def path(name):
    return os.path.join(TMP, name)
