#!/usr/bin/env python3
"""sanitize.py BUILD - run a short fio matrix on the sanitizer builds of the
engine (`make sanitize` builds BUILD/asan/xdevice.so and BUILD/tsan/xdevice.so
first) and fail on any sanitizer report that names one of xdevice's frames.

/usr/bin/fio is not instrumented: the sanitizer runtime is preloaded into it
(LD_PRELOAD=$(cc -print-file-name=libasan.so)), so the reports cover
xdevice's code and what fio does through the intercepted libc calls. ASan
and TSan write their reports to files (log_path) in the run's scratch
directory, UBSan to fio's stderr, which is kept in a file there too; the
driver splits them into single reports (one leak, one race, one runtime
error) and sorts each one:

  - xdevice's: a frame in xdevice.so or in its sources (backends/, ioengine/),
    or a UBSan runtime error in one of its sources: the run fails, the report
    is printed;
  - fio's own: every other report. The ones known are suppressed by
    tests/sanitize/*.supp (fio's frames only, never xdevice's); any other is
    printed as a notice, since fio's frames are not this project's to fix.

A run also fails when fio exits non-zero or a job reports an error, verify
included: data read back wrong is never acceptable. Runs go on after a
verify error (continue_on_error=verify), so the sanitizers still see the
whole run.

The matrix, each run seconds long:
  - every storage type that needs no device x sync, libaio, io_uring with
    rw=randrw verify=crc32c; jobs are threads of one fio process (thread=1):
    ASan+UBSan numjobs=2, TSan numjobs=4, so the jobs share the process's
    cache, config watch and hybrid map (and LeakSanitizer, which runs at
    fio's exit, sees every job: fio's job processes end in _exit); plus a
    few ASan runs as fio processes (fio's default) for the fork-time paths;
  - the read cache, write-through and write-back, shared by the jobs,
    with their block trace (one buffer per trace file in a process);
  - writers of one file, one ending early, so the other goes solo again
    (checksums and a mirror in threads; the write-back cache in processes);
  - live config renames (xdconfig set renames a new INI over xd_config
    every 0.15 s) of the live keys, with periodic stats, on the cache, the
    hybrid, the compressed and the tmpfs types.

Knobs: SANITIZE_ONLY=asan|tsan runs one build; SANITIZE_JOBS=N fio runs at
once (default 2); SANITIZE_MATCH=REGEX only the runs whose name matches;
SANITIZE_KEEP=1 keeps the scratch directory (always kept, with the failed
runs' logs and files, when a run failed); SANITIZE_ASAN_OPTIONS and
SANITIZE_TSAN_OPTIONS are appended to the sanitizer's options.
The last line is 'N passed, N failed'.
"""
import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from conftest import FIO, fs_type, IO_URING_REFUSED, MEMORY_FS, _disk_base  # noqa: E402
from fiojson import split_output  # noqa: E402

TYPES = ["regular", "mmap", "direct", "tmpfs", "sparse", "compressed", "hybrid"]
# Where the machine refuses io_uring the matrix drops it (main says so) and
# the layer runs queue through libaio instead: they test the layers.
MODES = ["sync", "libaio"] + ([] if IO_URING_REFUSED else ["io_uring"])
QUEUED = "libaio" if IO_URING_REFUSED else "io_uring"
RUNTIME = 1  # seconds of I/O per matrix run; verify follows
RELOAD_RUNTIME = 3
FIO_TIMEOUT = 120

# One report starts at one of these lines and runs to the next start or end.
REPORT_START = re.compile(
    r"^(?:(?:Direct|Indirect) leak of \d+"
    r"|WARNING: ThreadSanitizer: "
    r"|==\d+==ERROR: AddressSanitizer: "
    r"|==\d+==ERROR: UndefinedBehaviorSanitizer: "
    r"|\S+:\d+:\d+: runtime error: )"
)
REPORT_END = re.compile(r"^(?:SUMMARY: |={10,}$|ThreadSanitizer: reported |==\d+==ERROR: LeakSanitizer:)")
# A stack frame of xdevice: its module (when not symbolized to a source
# line) or one of its source files. fio's frames are in /usr/bin/fio.
XD_FRAME = re.compile(r"^\s*#\d+ .*(?:xdevice\.so\+0x|(?<![\w.])(?:\S*/)?(?:backends|ioengine)/\S+\.[ch]:\d+)")
XD_UBSAN = re.compile(r"^(?:\S*/)?(?:backends|ioengine)/\S+\.[ch]:\d+:\d+: runtime error: ")


def runtime_lib(name):
    cc = os.environ.get("CC", "cc")
    p = subprocess.run([cc, f"-print-file-name={name}"], capture_output=True, text=True)
    path = p.stdout.strip()
    if p.returncode or not os.path.isabs(path) or not os.path.exists(path):
        sys.exit(f"xdevice: sanitize: {cc} -print-file-name={name} found no {name} "
                 "(install the libasan8, libubsan1 and libtsan2 packages: scripts/deps.sh)")
    return path


def sanitizer_env(kind, logs):
    """Environment of a fio run under sanitizer kind, reports to logs/*."""
    supp = HERE
    env = dict(os.environ)
    # exitcode=0: fio's own exit status stays fio's; reports are read from logs
    common = f"exitcode=0:log_path={logs}/{kind}:strip_path_prefix={REPO}/"
    if kind == "asan":
        env["LD_PRELOAD"] = runtime_lib("libasan.so")
        # malloc_context_size=2: see lsan.supp (what makes its fio entry exact)
        env["ASAN_OPTIONS"] = (f"{common}:detect_leaks=1:halt_on_error=1:malloc_context_size=2:"
                               "detect_stack_use_after_return=1:check_initialization_order=1")
        env["LSAN_OPTIONS"] = f"suppressions={supp}/lsan.supp:print_suppressions=0"
        # UBSan (from libubsan, loaded with the engine) ignores log_path
        # here: its reports go to fio's stderr, which is read as a log too
        env["UBSAN_OPTIONS"] = f"print_stacktrace=1:strip_path_prefix={REPO}/"
    else:
        env["LD_PRELOAD"] = runtime_lib("libtsan.so")
        env["TSAN_OPTIONS"] = (f"{common}:suppressions={supp}/tsan.supp:print_suppressions=0:"
                               "halt_on_error=0:second_deadlock_stack=1:history_size=4")
    # e.g. SANITIZE_ASAN_OPTIONS=malloc_context_size=30 for deeper stacks
    # while debugging (fio's own leaks then show as notes)
    name = f"{kind.upper()}_OPTIONS"
    if os.environ.get(f"SANITIZE_{name}"):
        env[name] += ":" + os.environ[f"SANITIZE_{name}"]
    return env


def split_reports(text):
    """The single reports in one sanitizer log."""
    reports, cur = [], None
    for line in text.splitlines():
        if REPORT_START.match(line):
            if cur:
                reports.append("\n".join(cur))
            cur = [line]
        elif cur is not None and REPORT_END.match(line):
            reports.append("\n".join(cur))
            cur = None
        elif cur is not None:
            cur.append(line)
    if cur:
        reports.append("\n".join(cur))
    return reports


def is_xdevice(report):
    lines = report.splitlines()
    return bool(XD_UBSAN.match(lines[0])) or any(XD_FRAME.match(ln) for ln in lines)


def read_reports(logs):
    mine, theirs = [], []
    for f in sorted(Path(logs).glob("*")):
        if f.is_file() and re.match(r"(asan\.\d+|tsan\.\d+|fio-stderr)$", f.name):
            for r in split_reports(f.read_text(errors="replace")):
                (mine if is_xdevice(r) else theirs).append(f"[{f.name}] {r}")
    return mine, theirs


def fio_result(out):
    """(fio's JSON document or None, the rest of its --output file)."""
    raw = Path(out).read_text(errors="replace") if Path(out).exists() else ""
    return split_output(raw)


class Ctx:
    def __init__(self, build, scratch):
        self.build = Path(build).resolve()
        self.scratch = scratch
        self.disk = scratch["disk"]
        self.shm = scratch["shm"]
        self.xdconfig = self.build / "xdconfig"


def type_opts(ctx, kind, d):
    """xd_ options a storage type needs here (tmpfs and hybrid: a tmpfs dir)."""
    if kind == "tmpfs":  # with its backup thread
        return {"type": "tmpfs", "tmpfs_directory": ctx.shm / d.name, "backup_to_disk": 1,
                "backup_interval_sec": 1}
    if kind == "hybrid":
        return {"type": "hybrid", "hot_directory": ctx.shm / d.name, "tier_extent_size": "64k",
                "hot_access_threshold": 1, "migration_interval_sec": 0.05, "hot_cache_size": "1m"}
    return {"type": kind}


def job_args(engine, name, xd, **opts):
    args = [f"--name={name}", f"--ioengine=external:{engine}"]
    args += [f"--xd_{k}={v}" for k, v in xd.items()]
    args += [f"--{k}" if v is None else f"--{k}={v}" for k, v in opts.items()]
    return args


def job_problems(data):
    """What fio's JSON says went wrong, as phrases."""
    if data is None:
        return ["fio wrote no JSON result"]
    bad = [(j["jobname"], j["error"]) for j in data["jobs"] if j["error"]]
    # EILSEQ: fio's verify read back wrong data (counted in total_err, as
    # the runs go on after it: continue_on_error=verify)
    wrong = sum(j.get("total_err", 1) for j in data["jobs"] if j["error"] == 84)
    other = [(n, e) for n, e in bad if e != 84]
    out = []
    if wrong:
        out.append(f"fio's verify found wrong data {wrong} time(s) in "
                   f"{sum(e == 84 for _, e in bad)} job(s)")
    if other:
        out.append(f"jobs reported errors {other}")
    return out


def run_one(ctx, kind, name, build_args, during=None, expect=None):
    """One fio run under sanitizer kind; returns (ok, lines to print,
    reports naming xdevice, fio's own reports not suppressed).
    expect: a pattern fio's output must contain (the run did what it is for)."""
    d = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=ctx.disk))
    logs = d / "logs"
    logs.mkdir()
    (ctx.shm / d.name).mkdir()
    engine = ctx.build / kind / "xdevice.so"
    out = d / "fio.json"
    cmd = [FIO, f"--output={out}", "--output-format=json", *build_args(engine, d)]
    t0 = time.monotonic()
    stderr = open(logs / "fio-stderr", "w")
    proc = subprocess.Popen(cmd, cwd=d, env=sanitizer_env(kind, logs), stdout=subprocess.PIPE,
                            stderr=stderr, text=True)
    try:
        if during:
            during(d, proc)
        text, _ = proc.communicate(timeout=FIO_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        text, _ = proc.communicate()
        text += f"\nfio did not finish in {FIO_TIMEOUT} s"
    stderr.close()
    secs = time.monotonic() - t0
    data, rest = fio_result(out)
    text = (text or "") + (logs / "fio-stderr").read_text(errors="replace") + rest
    mine, theirs = read_reports(logs)
    problems = []
    if proc.returncode != 0:
        problems.append(f"fio exited {proc.returncode}")
    problems += job_problems(data)
    if expect and not re.search(expect, text, re.M):
        problems.append(f"fio's output has no line matching {expect!r}")
    if mine:
        problems.append(f"{len(mine)} sanitizer report(s) naming xdevice frames")
    ok = not problems
    head = f"{'PASS' if ok else 'FAIL'} {kind} {name} ({secs:.1f} s)"
    lines = [head + ("" if ok else ": " + "; ".join(problems))]
    if not ok:
        lines.append("    command: cd " + str(d) + " && " + " ".join(map(str, cmd)))
        keep = [ln for ln in text.splitlines()
                if re.search(r"^verify:|error|^fio:", ln) or
                (ln.startswith("xdevice:") and "reloaded:" not in ln and "slow_operation" not in ln)]
        lines += ["    " + ln for ln in keep[:8]]
        for r in mine:
            lines += ["    " + ln for ln in r.splitlines()]
    for r in theirs:  # fio's own, not (yet) in a suppressions file
        lines.append(f"NOTE {kind} {name}: a report in fio's own frames, not suppressed "
                     "(add its fio frame to tests/sanitize/*.supp):")
        lines += ["    " + ln for ln in r.splitlines()[:12]]
    if ok and not os.environ.get("SANITIZE_KEEP"):
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(ctx.shm / d.name, ignore_errors=True)
    return ok, lines, len(mine), len(theirs)


# --- the matrix -------------------------------------------------------------------


def procs(kind):
    """Jobs as threads of one fio process: LeakSanitizer checks at fio's exit,
    and fio's job processes end in _exit(), which no leak check sees. TSan
    gets four, so they meet in the process's cache, watch and maps."""
    return {"numjobs": 4 if kind == "tsan" else 2, "thread": 1}


def matrix_run(kind, stype, mode, processes=False):
    def build(engine, d):
        # every request counts as slow (1 ms): the slow list fills, and each
        # job's cleanup says so on stderr, a line printed as the job's
        # thread ends (its name once went through the thread's TLS there,
        # which TSan saw freed by another thread: a report only on runs
        # slow enough to print it)
        xd = dict(type_opts(CTX, stype, d), **{"async": mode, "slow_operation_threshold_ms": 1})
        how = {"numjobs": 2} if processes else procs(kind)
        return job_args(engine, "m", xd, directory=d, rw="randrw", bs="4k", size="1m",
                        iodepth=8, verify="crc32c", continue_on_error="verify", time_based=1,
                        runtime=RUNTIME, **how)
    name = f"{stype} {mode} randrw verify" + (" (fio processes: memory errors, no leak check)"
                                              if processes else "")
    return (kind, name, build, None, None)


def cache_run(kind, write_back, processes=False):
    def build(engine, d):
        xd = {"async": QUEUED, "enable_read_cache": 1, "cache_size": "2m",
              "enable_write_cache": int(write_back), "trace": d / "trace"}
        # one file shared by all jobs, each on its own quarter, so the jobs
        # meet in the one cache of the process (and its flusher) and its
        # one trace buffer; as processes, in the file's shared generations
        # (cache_gens.c)
        how = {"numjobs": 2} if processes else procs(kind)
        return job_args(engine, "c", xd, filename=d / "shared", size="1m", offset_increment="1m",
                        rw="randrw", bs="4k", iodepth=8, verify="crc32c",
                        continue_on_error="verify", time_based=1, runtime=RUNTIME, **how)
    name = f"cache {'write-back' if write_back else 'write-through'} randrw verify"
    return (kind, name + (" (fio processes: memory errors, no leak check)" if processes else ""),
            build, None, None)


def file_options_run(kind, stype):
    """fio's file options through the engine: pre_read=1 reads each file
    through the chain before the job, unlink=1 removes it with what xdevice
    kept for it (xd_unlink: the tmpfs copy, the hybrid type's hot copy, map
    and shared state, checksum sidecars)."""
    def build(engine, d):
        xd = dict(type_opts(CTX, stype, d), **{"async": QUEUED, "enable_checksums": 1})
        return job_args(engine, "f", xd, directory=d, rw="randrw", bs="4k", size="1m",
                        iodepth=8, verify="crc32c", continue_on_error="verify", pre_read=1,
                        unlink=1, **procs(kind))
    return (kind, f"{stype} pre_read and unlink", build, None, None)


def recovery_run(kind, stype):
    """The recovery layers stacked on one device: checksums, a mirror (not
    on hybrid), retries of transient faults, checkpoints at fsync boundaries
    (the hybrid's with its migration held)."""
    def build(engine, d):
        (d / "copy").mkdir(exist_ok=True)
        xd = dict(type_opts(CTX, stype, d), **{
            "async": QUEUED, "enable_checksums": 1, "enable_fault_injection": 1,
            "fault_ops": "both", "fault_every": 16, "max_retries": 2, "retry_delay_ms": 1,
            "enable_checkpoints": 1, "checkpoint_interval_sec": 1,
            "checkpoint_directory": d / "ckpt", "checkpoint_keep": 2})
        if stype != "hybrid":
            xd.update(enable_redundancy=1, redundancy_factor=2, mirror_directories=d / "copy")
        return job_args(engine, "r", xd, directory=d, rw="randrw", bs="4k", size="1m",
                        iodepth=8, verify="crc32c", continue_on_error="verify", fsync=8,
                        time_based=1, runtime=2, **procs(kind))
    return (kind, f"recovery layers {stype} randrw verify", build, None, None)


def same_blocks_run(kind):
    """Jobs writing the same blocks of one file, whole and partial, with
    checksums and a mirror on: each job's device takes turns with the
    others' (checksum_writers.c claims, the mirror's turns, core/turns.c),
    drains its own writes out before it waits, and the first checksum
    writer may start solo and be asked to share."""
    def build(engine, d):
        (d / "copy").mkdir(exist_ok=True)
        xd = {"async": QUEUED, "enable_checksums": 1, "enable_redundancy": 1,
              "redundancy_factor": 2, "mirror_directories": d / "copy"}
        return job_args(engine, "w", xd, filename=d / "same", size="1m", rw="randrw",
                        bsrange="512-16k", blockalign=512, iodepth=8, time_based=1,
                        runtime=RUNTIME, **procs(kind))
    return (kind, "checksum and mirror writers of the same blocks", build, None, None)


def solo_again_run(kind, cache=False):
    """Two jobs writing one file, the second ending early: the first took
    turns beside it and goes solo again once it has closed (core/turns.c's
    regain), with checksums and a mirror as threads of one process, or
    with the write-back cache as two processes (one cache each)."""
    def build(engine, d):
        if cache:
            xd = {"async": QUEUED, "enable_read_cache": 1, "enable_write_cache": 1,
                  "cache_size": "4m"}
            how = {}
        else:
            (d / "copy").mkdir(exist_ok=True)
            xd = {"async": QUEUED, "enable_checksums": 1, "enable_redundancy": 1,
                  "redundancy_factor": 2, "mirror_directories": d / "copy"}
            how = {"thread": 1}
        common = dict(filename=d / "solo", rw="randwrite", bs="4k", iodepth=8, verify="crc32c",
                      continue_on_error="verify", **how)
        return (job_args(engine, "long", xd, size="2m", **common) +
                job_args(engine, "short", xd, offset="2m", size="64k", **common))
    what = "write-back cache processes" if cache else "checksum and mirror writers"
    return (kind, f"{what}, one ending early (solo again)", build, None, None)


def trim_run(kind, stype, mode):
    """Trims in an async job complete within queue (as fio's own async
    engines trim), while the job's other requests stay in flight and
    complete into its ready list: randtrimwrite with trim_backlog's
    verify trims, read back as zeros."""
    def build(engine, d):
        xd = dict(type_opts(CTX, stype, d), **{"async": mode})
        return job_args(engine, "t", xd, directory=d, rw="randtrimwrite", bs="4k", size="1m",
                        iodepth=8, verify="crc32c", continue_on_error="verify",
                        trim_percentage=30, trim_backlog=8, **procs(kind))
    return (kind, f"{stype} {mode} randtrimwrite with verify trims", build, None, None)


def held_writes_run(kind):
    """The fault layer's volatile cache: every 16th write held until the
    next fsync, read back meanwhile. One pass (fio closes its files between
    the passes of a time_based job without a flush, which loses held
    writes by design), stored by end_fsync before the verify."""
    def build(engine, d):
        xd = {"async": QUEUED, "enable_checksums": 1, "enable_fault_injection": 1,
              "fault_every": 16, "fault_drop_writes": 1}
        return job_args(engine, "h", xd, directory=d, rw="randrw", bs="4k", size="4m",
                        iodepth=8, verify="crc32c", continue_on_error="verify", fsync=8,
                        end_fsync=1, **procs(kind))
    return (kind, "held writes randrw verify", build, None, None)


RELOADS = {
    # INI keys at start, then the live changes renamed over it in turn
    "cache": ({"enable_read_cache": "true", "enable_write_cache": "true", "cache_size": "2m",
               "async": QUEUED},
              [{"cache_size": "4m", "read_ahead_kb": "256"}, {"cache_size": "1m"},
               {"cache_size": "8m", "read_ahead_kb": "64"}, {"cache_size": "2m"}]),
    "hybrid": ({"storage_type": "hybrid", "tier_extent_size": "64k", "hot_access_threshold": "1",
                "migration_interval_sec": "0.05", "hot_cache_size": "1m", "async": QUEUED},
               [{"hot_cache_size": "512k", "migration_interval_sec": "0.1"},
                {"hot_cache_size": "2m", "hot_access_threshold": "2"},
                {"migration_interval_sec": "0.05", "hot_cache_size": "1m"}]),
    "compressed": ({"storage_type": "compressed", "async": "libaio"},
                   [{"compression_level": "5"}, {"compression_level": "1"}]),
    "tmpfs": ({"storage_type": "tmpfs", "backup_to_disk": "true", "backup_interval_sec": "1",
               "async": "sync"},
              [{"backup_interval_sec": "2"}, {"backup_interval_sec": "1"}]),
}


def xdconfig_set(ini, values):
    args = [f"{k}={v}" for k, v in values.items()]
    p = subprocess.run([str(CTX.xdconfig), "set", str(ini), *args], capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"xdconfig set {ini} {' '.join(args)}: {p.stderr.strip()}")


def reload_run(kind, what):
    start, changes = RELOADS[what]

    def build(engine, d):
        ini = d / "xd.ini"
        xd_start = dict(start)
        if what in ("hybrid", "tmpfs"):
            xd_start["hot_directory" if what == "hybrid" else "tmpfs_directory"] = str(CTX.shm / d.name)
        xdconfig_set(ini, xd_start)
        xd = {"config": ini, "stats": d / "stats.json", "stats_interval": 1}
        # jobs ending at different times: the last ones report stats while
        # the first ones close (and leave the shared cache)
        return job_args(engine, "r", xd, directory=d, rw="randrw", bs="4k", size="1m",
                        iodepth=8, verify="crc32c", continue_on_error="verify", time_based=1,
                        runtime=RELOAD_RUNTIME, **procs(kind)) + \
            job_args(engine, "early", xd, directory=d, rw="randrw", bs="4k", size="1m",
                     iodepth=4, verify="crc32c", continue_on_error="verify", time_based=1,
                     runtime=RELOAD_RUNTIME - 1, **procs(kind))

    def during(d, proc):
        i, end = 0, time.monotonic() + RELOAD_RUNTIME + 5
        while proc.poll() is None and time.monotonic() < end:
            time.sleep(0.15)
            try:
                xdconfig_set(d / "xd.ini", changes[i % len(changes)])
            except RuntimeError as e:
                print(f"xdevice: sanitize: {e}", file=sys.stderr)
                return
            i += 1
    # the renames were seen and applied, not merely made
    return (kind, f"reload {what} (live renames)", build, during,
            r"^xdevice: r: xd_config=\S+ reloaded: \w+ \S+ -> ")


def all_runs(kinds):
    runs = []
    for kind in kinds:
        runs += [reload_run(kind, w) for w in RELOADS]  # the longest first
        runs += [cache_run(kind, wb) for wb in (False, True)]
        runs += [recovery_run(kind, t) for t in ("regular", "hybrid")] + [held_writes_run(kind)]
        runs += [same_blocks_run(kind), solo_again_run(kind)]
        runs += [file_options_run(kind, t) for t in ("tmpfs", "hybrid")]
        runs += [trim_run(kind, t, m) for t, m in (("regular", QUEUED), ("compressed", "libaio"))]
        runs += [matrix_run(kind, t, m) for t in TYPES for m in MODES]
    if "asan" in kinds:  # fio's default, one process per job: fork-time paths
        runs += [matrix_run("asan", t, m, processes=True)
                 for t, m in (("regular", "libaio"), ("compressed", "sync"), ("tmpfs", MODES[-1]))]
        runs += [cache_run("asan", False, processes=True), solo_again_run("asan", cache=True)]
    return runs


def scratch_dirs():
    disk = _disk_base()
    if not disk:
        sys.exit("xdevice: sanitize: no disk file system with O_DIRECT among $XD_E2E_DISK, $TMPDIR, "
                 "/var/tmp, build/ (the direct type needs one)")
    if fs_type("/dev/shm") != "tmpfs":
        sys.exit("xdevice: sanitize: /dev/shm is not a tmpfs (the tmpfs and hybrid types need one)")
    disk = Path(tempfile.mkdtemp(prefix="xd-sanitize-", dir=disk))
    shm = Path(tempfile.mkdtemp(prefix="xd-sanitize-", dir="/dev/shm"))
    assert fs_type(disk) not in MEMORY_FS
    return {"disk": disk, "shm": shm}


CTX = None
STATS = {"xdevice_reports": 0, "fio_reports": 0, "runs_with_reports": 0}


def main():
    global CTX
    if len(sys.argv) != 2:
        sys.exit("usage: sanitize.py BUILD_DIR")
    only = os.environ.get("SANITIZE_ONLY", "")
    if only not in ("", "asan", "tsan"):
        sys.exit(f"xdevice: sanitize: SANITIZE_ONLY={only}: allowed: asan, tsan or empty (both)")
    kinds = [only] if only else ["asan", "tsan"]
    for kind in kinds:
        engine = Path(sys.argv[1]) / kind / "xdevice.so"
        if not engine.is_file():
            sys.exit(f"xdevice: sanitize: {engine} not found: run `make sanitize`")
    jobs_text = os.environ.get("SANITIZE_JOBS", "2")
    if not jobs_text.isdigit() or not 1 <= int(jobs_text) <= 64:
        sys.exit(f"xdevice: sanitize: SANITIZE_JOBS={jobs_text}: allowed: an integer from 1 to 64")
    jobs = int(jobs_text)
    try:
        match = re.compile(os.environ.get("SANITIZE_MATCH", ""))
    except re.error as e:
        sys.exit(f"xdevice: sanitize: SANITIZE_MATCH={os.environ['SANITIZE_MATCH']}: {e}; "
                 "allowed: a Python regular expression over the run names")
    runs = [r for r in all_runs(kinds) if match.search(r[1])]
    if not runs:
        sys.exit(f"xdevice: sanitize: SANITIZE_MATCH={match.pattern}: matches no run name; "
                 "allowed: a pattern matching names such as 'regular io_uring randrw verify'")
    if IO_URING_REFUSED:
        print(f"sanitize: skip: io_uring runs ({IO_URING_REFUSED}); the layer runs use libaio", flush=True)
    scratch = scratch_dirs()
    CTX = Ctx(sys.argv[1], scratch)
    passed = failed = 0
    lock = threading.Lock()
    t0 = time.monotonic()

    def one(run):
        kind, name, build, during, expect = run
        ok, lines, mine, theirs = run_one(CTX, kind, name, build, during, expect)
        with lock:
            print("\n".join(lines), flush=True)
            STATS["xdevice_reports"] += mine
            STATS["fio_reports"] += theirs
            STATS["runs_with_reports"] += bool(mine)
        return ok

    # Stopped (Ctrl-C, SIGTERM, a closed terminal): the runs under way
    # finish, the queued ones are dropped, and the scratch directories
    # (files on /dev/shm among them) go, rather than stay until a reboot.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        for ok in pool.map(one, runs):
            passed += ok
            failed += not ok
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        for d in scratch.values():
            shutil.rmtree(d, ignore_errors=True)
        print("sanitize: stopped; scratch removed", file=sys.stderr, flush=True)
        raise
    pool.shutdown()
    if failed or os.environ.get("SANITIZE_KEEP"):  # the failed runs' logs and files
        print(f"scratch kept: {scratch['disk']} {scratch['shm']}")
    else:
        for d in scratch.values():
            shutil.rmtree(d, ignore_errors=True)
    print(f"sanitize: {' and '.join(kinds)} in {time.monotonic() - t0:.0f} s: "
          f"{STATS['xdevice_reports']} report(s) naming xdevice frames in {STATS['runs_with_reports']} run(s), "
          f"{STATS['fio_reports']} unsuppressed report(s) in fio's own frames; "
          f"{failed - STATS['runs_with_reports']} run(s) failed without a sanitizer report (fio's exit or verify)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
