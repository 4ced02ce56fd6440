#!/usr/bin/env python3
"""kill -9 sweep: fio's trigger workflow on every storage type, layer, async
mode and job layout, each case run through fio's own engine too.

For each case: a randwrite verify job (fsync every 8 writes) is killed with
fio's `--trigger-timeout=N --trigger='kill -9 $PPID'` after fio saved its
verify state; a second run with verify_state_load=1 verify_only=1 at
iodepth=1 must read back every write fio saw complete. The same job through
fio's own engine (psync, libaio, io_uring; mmap for the mmap type; direct=1
for the direct type; a file on the tmpfs for the tmpfs type) is the oracle:
only a case fio's engine passes and xdevice fails is a bug. After the
restart the script also checks that nothing xdevice keeps in /dev/shm or
beside the file was left behind.

The hybrid type (write-through) is swept over regular, compressed and
sparse cold tiers, and over a regular one under checksums.

The read cache in write-through (enable_read_cache=true,
enable_write_cache=false) is swept on the regular, compressed and sparse
types, with 64 KiB blocks in a cache smaller than the file, and under
checksums. The restart has the cache on too. Each file cached has a table
of write generations, /dev/shm/xdevice-cache-DEV-INO-VIEW
(backends/layers/cache_gens.c); one a killed process left is swept by the
restart's first cache, and the restart's last close removes its own: no
table of the case's files may be left (named from the files' stat, taken
after the kill and after the restart, so other runs on the machine do not
disturb the check). fio runs the trigger after telling its jobs to stop,
and they close before the kill lands (their processes are zombies by
then), so the kill seldom leaves a table (a case's note says when it
did); tests/unit/cache_processes.c kills a writer between its two counts.

Types whose contract is fsync-only (the write-back cache, hybrid
write-back) are not here: fio's verify state counts every completed write.
tests/unit/cache.c and tests/unit/tier.c kill a writer after its fsync.

usage: scripts/crash-sweep.py [--only REGEX] [--seed N] [--jobs N]
Environment: XD_ENGINE (default build/xdevice.so), SWEEP_DIR (a disk
directory, default $XDEVICE_SCRATCH, else /var/tmp), FIO (default fio).
"""
import argparse
import concurrent.futures
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIO = os.environ.get("FIO", shutil.which("fio") or "/usr/bin/fio")
ENGINE = os.environ.get("XD_ENGINE", str(REPO / "build" / "xdevice.so"))
DISK = os.environ.get("SWEEP_DIR") or os.environ.get("XDEVICE_SCRATCH") or "/var/tmp"
MODES = ["sync", "libaio", "io_uring"]
LAYOUTS = {  # name: (numjobs, thread)
    "1-thread": (1, True),
    "1-proc": (1, False),
    "2-thread": (2, True),
    "2-proc": (2, False),
}
HYBRID = {"type": "hybrid", "tier_extent_size": "64k", "hot_access_threshold": 1,
          "hot_cache_size": "1m", "cold_timeout_sec": 0.1, "auto_migration": 1,
          "migration_interval_sec": 0.05, "migration_interval_requests": 16,
          "tier_write_back": 0}
CACHE = {"enable_read_cache": "true", "enable_write_cache": "false"}  # write-through

# name: (xdevice options, fio's engine: "psync" (by mode), "mmap", "direct",
#        "shm" (psync by mode on a file in the tmpfs))
TYPES = {
    "regular": ({"type": "regular"}, "psync"),
    "mmap": ({"type": "mmap"}, "mmap"),
    "direct": ({"type": "direct"}, "direct"),
    "tmpfs-backup": ({"type": "tmpfs", "backup_to_disk": "true"}, "shm"),
    "tmpfs-nobackup": ({"type": "tmpfs", "backup_to_disk": "false"}, "shm"),
    "sparse": ({"type": "sparse"}, "psync"),
    "compressed": ({"type": "compressed"}, "psync"),
    "hybrid-wt-regular": (dict(HYBRID, cold_storage_type="regular"), "psync"),
    "hybrid-wt-compressed": (dict(HYBRID, cold_storage_type="compressed"), "psync"),
    "hybrid-wt-sparse": (dict(HYBRID, cold_storage_type="sparse"), "psync"),
    "checksums": ({"type": "regular", "enable_checksums": "true"}, "psync"),
    # the checksum layer over the tiers (which answer its SEEK_DATA since
    # 2026-12-07), reopened after the kill with extents hot and cold
    "hybrid-checksums": (dict(HYBRID, cold_storage_type="regular", enable_checksums="true"),
                         "psync"),
    "mirror": ({"type": "regular", "enable_redundancy": "true", "redundancy_factor": 2,
                "enable_checksums": "true"}, "psync"),
    "cache-regular": (dict(CACHE, type="regular"), "psync"),
    "cache-compressed": (dict(CACHE, type="compressed"), "psync"),
    "cache-sparse": (dict(CACHE, type="sparse"), "psync"),
    "cache64k-regular": (dict(CACHE, type="regular", cache_block_size="64k", cache_size="4m"),
                         "psync"),
    "cache-checksums": (dict(CACHE, type="regular", enable_checksums="true"), "psync"),
}


def ref_engine(kind, mode):
    """fio's own engine for a case and its extra options."""
    if kind == "mmap":
        return "mmap", {}
    eng = {"sync": "psync", "libaio": "libaio", "io_uring": "io_uring"}[mode]
    extra = {"direct": 1} if kind == "direct" else {}
    return eng, extra


def job_args(engine, xd, opts):
    args = ["--name=k", f"--ioengine={engine}"]
    args += [f"--xd_{k}={v}" for k, v in (xd or {}).items()]
    args += [f"--{k}" if v is None else f"--{k}={v}" for k, v in opts.items()]
    return args


def procs_in(cwd):
    """Processes whose working directory is cwd (the job processes a killed
    fio leaves behind: they setsid and outlive their parent)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.readlink(p / "cwd") == str(cwd):
                    out.append(int(p.name))
            except OSError:
                pass
    return out


def wait_orphans(cwd, deadline_s=60):
    end = time.monotonic() + deadline_s
    while procs_in(cwd) and time.monotonic() < end:
        time.sleep(0.05)
    return not procs_in(cwd)


def shm_names(data, xd):
    """What xdevice may keep in /dev/shm for the files in data: the hybrid
    type's shared state (xdevice-tier-DEV-INO) and the read cache's write
    generations (xdevice-cache-DEV-INO-VIEW; view 1 is the compressed
    type's logical view of its container, 0 a file's own bytes)."""
    names = set()
    view = 1 if (xd or {}).get("type") == "compressed" else 0
    for f in data.iterdir():
        try:
            st = f.stat()
        except OSError:
            continue
        names.add(f"xdevice-tier-{st.st_dev:x}-{st.st_ino:x}")
        names.add(f"xdevice-cache-{st.st_dev:x}-{st.st_ino:x}-{view}")
    return names


def shm_left(names):
    """Those of names in /dev/shm now."""
    return sorted(n for n in names if (Path("/dev/shm") / n).exists())


def run_case(name, xd, kind, mode, layout, seed, fio_side):
    """One trigger round; returns (ok, note)."""
    numjobs, thread = LAYOUTS[layout]
    rnd = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="xd-sweep-", dir=DISK))
    shm = Path(tempfile.mkdtemp(prefix="xd-sweep-", dir="/dev/shm"))
    data = work / "data"
    data.mkdir()
    depth = 1 if mode == "sync" else 8
    opts = dict(directory=data, rw="randwrite", bs="4k", size="16m", verify="crc32c",
                verify_fatal=1, refill_buffers=None, fsync=8, numjobs=numjobs)
    if thread:
        opts["thread"] = None
    if fio_side:
        eng, extra = ref_engine(kind, mode)
        if kind == "shm":
            opts["directory"] = shm
        opts.update(extra)
        xdo = None
    else:
        eng = f"external:{ENGINE}"
        xdo = dict(xd, **{"async": mode})
        if xdo["type"] in ("tmpfs",):
            xdo["tmpfs_directory"] = shm
        if xdo["type"] == "hybrid":
            xdo["hot_directory"] = shm
        if "enable_redundancy" in xdo:
            mirror = work / "mirror"
            mirror.mkdir()
            xdo["mirror_directories"] = mirror
    when = rnd.randint(1, 2)
    try:
        kill = [FIO, f"--trigger-timeout={when}", "--trigger=kill -9 $PPID",
                *job_args(eng, xdo, dict(opts, iodepth=depth, rate_iops=1500))]
        p = subprocess.run(kill, cwd=work, capture_output=True, text=True, timeout=120)
        if p.returncode not in (-9, 137):
            return False, f"first run not killed: rc {p.returncode} {p.stderr[-300:]}"
        if not wait_orphans(work):
            return False, "job processes still running 60 s after the kill"
        names = shm_names(data, xdo)  # the killed run's files, before any restart
        killed_left = [n for n in shm_left(names) if n.startswith("xdevice-cache-")]
        states = sorted(work.glob("local-k-*-verify.state"))
        if len(states) != numjobs:
            return False, f"{len(states)} verify states saved"
        out = work / "check.json"
        check = [FIO, "--output-format=json", f"--output={out}",
                 *job_args(eng, xdo, dict(opts, iodepth=1, verify_state_load=1,
                                          verify_state_save=0, verify_only=None))]
        p = subprocess.run(check, cwd=work, capture_output=True, text=True, timeout=180)
        wait_orphans(work)
        try:
            doc = json.loads(out.read_text()[out.read_text().index("{"):])
        except (OSError, ValueError):
            return False, f"restart rc {p.returncode}, no JSON: {p.stderr.strip()[-400:]}"
        errs = [(j["jobname"], j["error"]) for j in doc["jobs"] if j["error"]]
        read = sum(j["read"]["io_bytes"] for j in doc["jobs"])
        if p.returncode or errs:
            msg = " | ".join(ln for ln in p.stderr.splitlines() if ln.strip())[-400:]
            return False, f"restart rc {p.returncode} errors {errs}: {msg}"
        if read == 0:
            return False, "restart verified nothing"
        left = shm_left(names | shm_names(data, xdo))
        if left:
            return False, f"left in /dev/shm after the restart: {left}"
        note = f"; the kill left {len(killed_left)} cache table(s)" if killed_left else ""
        return True, f"verified {read // 4096} blocks (kill at {when}s){note}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="regex on TYPE/MODE/LAYOUT/ROUND")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--no-fio", action="store_true", help="skip fio's own engine")
    a = ap.parse_args()
    cases = []
    for name, (xd, kind) in TYPES.items():
        for mode in MODES:
            for layout in LAYOUTS:
                for rnd in range(a.rounds):
                    case = f"{name}/{mode}/{layout}/{rnd}"
                    if a.only and not re.search(a.only, case):
                        continue
                    cases.append((case, name, xd, kind, mode, layout))
    print(f"seed {a.seed}, {len(cases)} cases", flush=True)
    bugs = 0
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
        futs = {}
        for i, (case, name, xd, kind, mode, layout) in enumerate(cases):
            seed = a.seed + i
            xf = ex.submit(run_case, name, xd, kind, mode, layout, seed, False)
            ff = None if a.no_fio else ex.submit(run_case, name, xd, kind, mode, layout, seed, True)
            futs[case] = (xf, ff)
        for case, (xf, ff) in futs.items():
            xok, xnote = xf.result()
            fok, fnote = ff.result() if ff else (None, "")
            bug = not xok and fok is not False
            bugs += bug
            tag = "BUG " if bug else ("    " if xok else "both")
            print(f"{tag} {case:40} fio {'-' if fok is None else 'PASS' if fok else 'FAIL'}"
                  f"  xdevice {'PASS' if xok else 'FAIL'}  {xnote}"
                  f"{'' if fok in (None, True) else '  fio: ' + fnote}", flush=True)
    print(f"{bugs} case(s) fio's engine passes and xdevice fails")
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
