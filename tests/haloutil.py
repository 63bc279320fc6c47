"""Shared helpers for halo's Python tests: TAP output and running halo.
Tests run under Debian's /usr/bin/python3 so numpy, zarr, dask, scipy and
tifffile are the distribution's, independent of halo."""
import os
import signal
import subprocess
import sys
import time

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


def halo(*args, check_rc=None, timeout=600, env=None):
    """Runs halo; returns CompletedProcess (text). env: variables to add."""
    r = subprocess.run([HALO, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL,
                       env={**os.environ, **env} if env else None)
    if check_rc is not None and r.returncode != check_rc:
        print(f"# halo {' '.join(map(str, args))} exited {r.returncode}", flush=True)
        for line in (r.stdout + r.stderr).splitlines()[:20]:
            print(f"#   {line}", flush=True)
    return r


def path(name):
    return os.path.join(TMP, name)


def interrupt(args, after, name, limit, sig=signal.SIGINT, twice=False):
    """Runs halo ARGS, sends SIGINT (or sig) after `after` seconds and checks
    that it exits 1 saying so within `limit` seconds, leaving nothing whose
    name contains `name` in the test folder (skips when it finished first).
    twice: the signal goes out twice at once, as timeout(1) sends it."""
    proc = subprocess.Popen([HALO, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(after)
    if proc.poll() is not None:
        proc.communicate()
        skip("SIGINT", "the run finished before the signal")
        return
    t0 = time.time()
    proc.send_signal(sig)
    if twice:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    took = time.time() - t0
    what = signal.Signals(sig).name + (" twice" if twice else "")
    check(proc.returncode == 1 and "interrupted" in err, f"{what}: exit 1, says interrupted", err)
    check(took < limit, f"{what}: stopped within {took:.1f} s")
    check(not [f for f in os.listdir(TMP) if name in f], f"{what}: no output, no temporary left")
