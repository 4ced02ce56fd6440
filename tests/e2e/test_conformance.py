"""fio conformance: fio's own job files, and the verify jobs users rely on,
through every storage type and async mode, with fio's own engines as the
oracle.

What runs: every file of fio's t/jobs/ and examples/ (from the fio source the
build fetched, build/.fio-src-dir) is either in CATALOGUE, scaled to a
second or less, or in SKIPPED with the reason it cannot apply here; VARIANTS
adds verify jobs fio ships no file for. test_every_fio_file_is_classified
fails when a fio upgrade brings a file that is in neither.

How one job is judged, per async mode: fio runs the job once on fio's own
engine for that mode (psync, libaio, io_uring; fio's mmap engine for the mmap
type) and once on xdevice with every storage type in turn. xdevice must
pass wherever fio's engine passes: no job error, the same io_bytes per
section for sections not bounded by time, and t/run-fio-tests.py's check for
that job where it has one (CHECKS), applied to both. Where fio's mmap
engine fails a job that the mode's syscall engine passes (blocks under
4 KiB, verify across forked writers of one file), the mmap type is held
to the syscall engine instead. Where fio's engine fails the job, there is
nothing to compare and the test says so (a skip with the oracle's error
line). Trim jobs use a loop device as the oracle's target,
since fio's engines trim only block devices.

Cost: fio spends ~0.1 s of CPU calibrating its clock at every start, so the
copies of one job for all file types run in one fio invocation, one after
another (a stonewall between them), each copy in its own directory with its
own section names; a run whose failure cannot be pinned on a type (no JSON, a
crash, a hang) is rerun one type at a time. All runs of the module are
started together on a small pool at the first test and each test waits for
its own, so `-k` selects what runs. The block type shares one loop device, so
its runs go one at a time.

XD_CONFORMANCE_XD="enable_read_cache=1,enable_write_cache=1" adds xdevice
options to every xdevice run: the layers swept over fio's own jobs (a type
that refuses an option fails its runs, which says so).
"""
import concurrent.futures as cf
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import FIO, REPO, _disk_base, fs_type, _split_output
from fiojobs import DROP, JobFile

TYPES = ["regular", "mmap", "direct", "tmpfs", "sparse", "compressed", "hybrid", "block"]
FILE_TYPES = [t for t in TYPES if t != "block"]
MODES = ["sync", "libaio", "io_uring"]
ORACLE_ENGINE = {"sync": "psync", "libaio": "libaio", "io_uring": "io_uring"}
# XD_CONFORMANCE_XD="enable_read_cache=1,enable_checksums=1": xdevice options
# every xdevice run of the suite gets too (a sweep of the layers over fio's
# own jobs; `make test` runs the types bare)
EXTRA_XD = [(f"xd_{k.strip()}", v.strip()) for k, _, v in
            (kv.partition("=") for kv in os.environ.get("XD_CONFORMANCE_XD", "").split(",") if kv)]
WORKERS = 4  # fio runs at once: runs wait on I/O and on fio's group switches
RUN_TIMEOUT = 60  # one fio invocation; each takes seconds at most
TIME_BASED_RUNTIME = "100ms"


def fio_source():
    stamp = REPO / "build" / ".fio-src-dir"
    if not stamp.is_file():
        pytest.fail(f"{stamp} is missing: run `make` (it fetches fio's source)", pytrace=False)
    src = (REPO / stamp.read_text().strip()).resolve()
    if not (src / "t" / "jobs").is_dir():
        pytest.fail(f"{src}/t/jobs not found (from {stamp}); run `make` again", pytrace=False)
    return src


# --- the catalogue ---------------------------------------------------------------

class Job:
    """One job file as the suite runs it.

    src: path under fio's source ('t/jobs/...', 'examples/...') or None with
    text; changes: JobFile.override() changes on top of GENERIC; pre: a job
    run first on the same files (t0002/t0003's -pre halves); expect_fail:
    run-fio-tests.py's SUCCESS_NONZERO; check: name in CHECKS; oracle_on:
    'file' or 'block' (trim); batch: False when one copy's end ends the run
    (exit_what=all), so each type gets its own fio run."""

    def __init__(self, name, src=None, text=None, changes=None, pre=None, pre_changes=None,
                 expect_fail=False, check=None, oracle_on="file", batch=True, note="",
                 bytes_on_block=True):
        self.name, self.src, self.text = name, src, text
        self.changes = changes or {}
        self.pre, self.pre_changes = pre, pre_changes or {}
        self.expect_fail, self.check, self.oracle_on, self.batch = expect_fail, check, oracle_on, batch
        self.note = note
        self.bytes_on_block = bytes_on_block  # False: a device's size changes io_bytes


def _cap(limit):
    return lambda v: v if v is None or int(v) <= limit else str(limit)


def _basename(v):
    return None if v is None else os.path.basename(v.rstrip("/")) or "file"


# Applied to every job before its own changes: the engine, directories and
# names are the suite's; times are scaled; machine-specific pinning goes.
GENERIC = {"*": {
    "ioengine": DROP, "name": DROP, "description": DROP, "directory": DROP,
    "filename": _basename, "iodepth": _cap(32), "numjobs": _cap(4),
    "cpus_allowed": DROP, "cpus_allowed_policy": DROP, "ramp_time": DROP,
    "verify_async_cpus": DROP,
}}

T = "t/jobs/"
E = "examples/"
CATALOGUE = [
    Job("t0001", T + "t0001-52c58027.fio"),
    Job("t0002", T + "t0002-13af05ae-post.fio", pre=T + "t0002-13af05ae-pre.fio",
        changes={"*": {"size": "2m"}, "thread-mix0": {"offset": "4m"}},
        pre_changes={"*": {"size": "2m"}, "thread-mix0": {"offset": "4m"}}),
    Job("t0003", T + "t0003-0ae2c6e1-post.fio", pre=T + "t0003-0ae2c6e1-pre.fio",
        changes={"small_reads": {"offset": "4m"}},
        pre_changes={"*": {"size": "1m"}, "large_writes": {"offset": "4m"}},
        expect_fail=True),
    Job("t0004", T + "t0004-8a99fdf6.fio",
        changes={"*": {"size": "1m"}, "large_writes": {"offset": "4m"}}),
    Job("t0005", T + "t0005-f7078f7b.fio", changes={"*": {"size": "2m"}}, check="t0005"),
    Job("t0006", T + "t0006-82af2a7c.fio", changes={"*": {"size": "4m"}}, check="t0006"),
    Job("t0007", T + "t0007-37cf9e3c.fio", changes={"*": {"size": "6m"}}, bytes_on_block=False,
        note="its reads wrap at the end of a file of size=; a device is larger and does not"),
    Job("t0008", T + "t0008-ae2fafc8.fio", changes={"*": {"size": "4m"}}, check="t0008"),
    Job("t0015", T + "t0015-e78980ff.fio", check="t0015"),
    Job("t0018", T + "t0018.fio"),
    Job("t0019", T + "t0019.fio", check="t0019"),
    Job("t0020", T + "t0020.fio", check="t0020"),
    Job("t0021", T + "t0021.fio", check="t0020"),
    Job("t0022", T + "t0022.fio", check="t0022"),
    Job("t0023", T + "t0023.fio", check="t0023", oracle_on="block"),
    Job("t0024", T + "t0024.fio", check="t0024", oracle_on="block"),
    Job("t0025", T + "t0025.fio", check="t0025"),
    Job("t0026", T + "t0026.fio"),
    Job("1mbs_clients", E + "1mbs_clients.fio",
        changes={"*": {"size": "256k", "startdelay": DROP, "ratemin": DROP, "rate": "1250k"}},
        note="first 4 of its 32 readers; start delays dropped; rate= in KiB/s as its comment means"),
    Job("aio-read", E + "aio-read.fio", changes={"*": {"size": "2m"}}),
    Job("backwards-read", E + "backwards-read.fio", changes={"*": {"size": "2m"}}),
    Job("basic-verify", E + "basic-verify.fio", changes={"*": {"size": "2m"}}),
    Job("butterfly", E + "butterfly.fio", changes={"*": {"size": "2m"}}),
    Job("cross-stripe-verify", E + "cross-stripe-verify.fio",
        changes={"*": {"size": "1m", "offset_increment": "1m", "io_size": "128k"}}),
    Job("dedupe-global", E + "dedupe-global.fio", changes={"*": {"size": "2m"}}),
    Job("disk-zone-profile", E + "disk-zone-profile.fio",
        changes={"*": {"size": "4m", "zonesize": "256k", "zoneskip": "1m"}}),
    # rate=300 (bytes/s) left its fast jobs asleep for seconds after the
    # slow ones ended; at 300k they still run until exit_what stops them
    Job("exitwhat", E + "exitwhat.fio",
        changes={"*": {"filesize": "2m", "number_ios": "20"},
                 **{s: {"rate": "300k,300k,300k"} for s in ("fast1", "fast2", "runsnever")}},
        batch=False),
    Job("fio-rand-RW", E + "fio-rand-RW.fio", changes={"*": {"size": "4m"}}),
    Job("fio-rand-read", E + "fio-rand-read.fio", changes={"*": {"size": "4m"}}),
    Job("fio-rand-write", E + "fio-rand-write.fio", changes={"*": {"size": "4m"}}),
    Job("fio-seq-RW", E + "fio-seq-RW.fio", changes={"*": {"size": "4m"}}),
    Job("fio-seq-read", E + "fio-seq-read.fio", changes={"*": {"size": "4m"}}),
    Job("fio-seq-write", E + "fio-seq-write.fio", changes={"*": {"size": "4m"}}),
    Job("flow", E + "flow.fio", changes={"*": {"size": "4m"}}),
    Job("fsx", E + "fsx.fio", changes={"*": {"loops": "8"}}),
    Job("iometer-file-access-server", E + "iometer-file-access-server.fio",
        changes={"*": {"size": "4m"}}),
    Job("jesd219", E + "jesd219.fio", changes={"*": {"size": "4m"}}),
    Job("latency-profile", E + "latency-profile.fio", changes={"*": {"size": "2m"}}),
    Job("rand-zones", E + "rand-zones.fio", changes={"*": {"size": "4m"}}),
    Job("ssd-steadystate", E + "ssd-steadystate.fio", changes={"*": {"size": "1m"}}),
    Job("ssd-test", E + "ssd-test.fio", changes={"*": {"size": "1m"}}),
    Job("surface-scan", E + "surface-scan.fio", changes={"*": {"size": "2m"}}),
    Job("tiobench-example", E + "tiobench-example.fio", changes={"*": {"size": "256k"}}),
    Job("waitfor", E + "waitfor.fio", changes={"*": {"filesize": "512k"}}),
]

# The jobs fio ships no file for: what users run to trust a storage stack.
_V = "[global]\nbs=4k\nverify=crc32c\nverify_fatal=1\n"
VARIANTS = [
    Job("verify-md5", text=_V + "[v]\nrw=randwrite\nsize=2m\niodepth=8\nverify=md5\n"),
    Job("verify-sha256", text=_V + "[v]\nrw=randwrite\nsize=2m\niodepth=8\nverify=sha256\n"),
    Job("verify-meta", text=_V + "[v]\nrw=randwrite\nsize=2m\niodepth=8\nverify=meta\n"),
    Job("verify-pattern", text=_V + "[v]\nrw=randwrite\nsize=2m\niodepth=8\nverify=pattern\n"
        "verify_pattern=0xdeadbeef\n"),
    Job("verify-async", text=_V + "[v]\nrw=randwrite\nsize=2m\niodepth=8\nverify_async=2\n"),
    Job("experimental-verify", text=_V + "[v]\nrw=randwrite\nsize=1m\niodepth=8\nloops=2\n"
        "experimental_verify=1\n"),
    Job("bssplit-unaligned", text=_V + "[v]\nrw=randwrite\nsize=2m\niodepth=8\nbs_unaligned=1\n"
        "bssplit=512/20:1536/20:5k/30:12k/30\n"),
    Job("offset-increment-fork", text=_V + "[v]\nrw=randwrite\nfilename=shared\nsize=512k\n"
        "offset_increment=512k\nnumjobs=4\niodepth=4\n"),
    Job("offset-increment-thread", text=_V + "[v]\nthread\nrw=randwrite\nfilename=shared\n"
        "size=512k\noffset_increment=512k\nnumjobs=4\niodepth=4\n"),
    Job("io-size-over-size", text=_V + "[v]\nrw=randwrite\nsize=1m\nio_size=3m\niodepth=8\n"),
    Job("nrfiles-random-fsync-on-close", text=_V + "[v]\nrw=randwrite\nnrfiles=4\nfilesize=512k\n"
        "file_service_type=random\nfsync_on_close=1\niodepth=4\n"),
    Job("nrfiles-sequential", text=_V + "[v]\nrw=randwrite\nnrfiles=4\nfilesize=512k\n"
        "file_service_type=sequential\niodepth=4\n"),
    Job("numjobs-thread", text=_V + "[v]\nthread\nrw=randrw\nsize=1m\nnumjobs=4\niodepth=4\n"),
    Job("numjobs-fork", text=_V + "[v]\nrw=randrw\nsize=1m\nnumjobs=4\niodepth=4\n"),
    Job("randrw-verify-time-based", text=_V + "[v]\nthread\nrw=randrw\nsize=2m\niodepth=8\n"
        "time_based\nruntime=300ms\n"),
    Job("fsx-verify", text=_V + "[v]\nrw=randrw\nbsrange=512-64k\nbs_unaligned=1\nsize=2m\n"
        "iodepth=4\n"),
]

ALL_JOBS = {j.name: j for j in CATALOGUE + VARIANTS}

_OTHER_ENGINE = "its ioengine ({}) is the subject of the job; xdevice replaces only file I/O engines"
_NETWORK = "talks to a network service ({}) that a test machine does not run"
_OFFLOAD = ("io_submit_mode=offload: fio 3.33 never finishes such a job on a file with its own "
            "psync or libaio engine (1 MiB, killed after 300 s), so there is no oracle")
SKIPPED = {
    "t0010-b7aae4ba.fio": _OFFLOAD,
    "t0013.fio": _OFFLOAD,
    "fixed-rate-submission.fio": _OFFLOAD,
    "poisson-rate-submission.fio": _OFFLOAD,
    "t0009-f8b0bd10.fio": "its check is elapsed >= 60 s on the null engine with cpus_allowed=0-3 "
                          "(4 CPUs); verify_async is covered by the verify-async job",
    "t0011-5d2788d5.fio": "its check is 1000 IOPS +-5% over 10 s of the null engine's flows: "
                          "a rate measurement, not I/O through an engine",
    "t0012.fio": "its check is flow IOPS ratios over 12 s of null-engine samples",
    "t0014.fio": "its check is flow IOPS ratios over 12 s of null-engine samples",
    "t0016-d54ae22.fio": "the null-engine twin of t0015 (slat + clat = lat), which runs",
    "t0017.fio": "the posixaio twin of t0015 (slat + clat = lat); once its engine is replaced "
                 "it is t0015 exactly",
    "cmdprio-bssplit.fio": "cmdprio_* are options of fio's libaio/io_uring engines (per-request "
                           "I/O priority); xdevice has none",
    "cmdprio-percentage.fio": "cmdprio_* are options of fio's libaio/io_uring engines (per-request "
                              "I/O priority); xdevice has none",
    "cpp_null.fio": _OTHER_ENGINE.format("cpp_null"),
    "null.fio": _OTHER_ENGINE.format("null") + "; no file I/O",
    "zipf.fio": _OTHER_ENGINE.format("null") + " (it shows the zipf generator); no file I/O",
    "cpuio.fio": _OTHER_ENGINE.format("cpuio") + "; no file I/O",
    "exec.fio": _OTHER_ENGINE.format("exec, cpuio") + "; no file I/O",
    "dev-dax.fio": _OTHER_ENGINE.format("dev-dax") + " and needs /dev/dax0.0",
    "e4defrag.fio": _OTHER_ENGINE.format("e4defrag"),
    "e4defrag2.fio": _OTHER_ENGINE.format("e4defrag"),
    "falloc.fio": _OTHER_ENGINE.format("falloc"),
    "filecreate-ioengine.fio": _OTHER_ENGINE.format("filecreate"),
    "filedelete-ioengine.fio": _OTHER_ENGINE.format("filedelete"),
    "filestat-ioengine.fio": _OTHER_ENGINE.format("filestat"),
    "ftruncate.fio": _OTHER_ENGINE.format("ftruncate"),
    "ime.fio": _OTHER_ENGINE.format("ime_*") + " and needs DDN IME",
    "libpmem.fio": _OTHER_ENGINE.format("libpmem") + " and needs /mnt/pmem",
    "pmemblk.fio": _OTHER_ENGINE.format("pmemblk") + " and needs /pmem0",
    "libcufile-cufile.fio": _OTHER_ENGINE.format("libcufile") + " and needs a GPU",
    "libcufile-posix.fio": _OTHER_ENGINE.format("libcufile") + " and needs a GPU",
    "mtd.fio": _OTHER_ENGINE.format("mtd") + " and needs /dev/mtd0",
    "sg_verify.fio": _OTHER_ENGINE.format("sg") + " and needs a SCSI device",
    "sg_verify-fail.fio": _OTHER_ENGINE.format("sg") + " and needs a SCSI device",
    "sg_write_same_ndob.fio": _OTHER_ENGINE.format("sg") + " and needs a SCSI device",
    "uring-cmd-ng.fio": _OTHER_ENGINE.format("io_uring_cmd") + " and needs an NVMe char device",
    "uring-cmd-zoned.fio": _OTHER_ENGINE.format("io_uring_cmd") + " and needs a zoned NVMe device",
    "xnvme-compare.fio": "needs xnvme's engine and ${FIO_RW}-style environment parameters",
    "xnvme-zoned.fio": "needs xnvme's engine and a zoned device",
    "libzbc-rand-write.fio": _OTHER_ENGINE.format("libzbc") + " and needs a zoned disk",
    "libzbc-seq-read.fio": _OTHER_ENGINE.format("libzbc") + " and needs a zoned disk",
    "zbd-rand-write.fio": "zonemode=zbd needs a zoned block device (/dev/sdj)",
    "zbd-seq-read.fio": "zonemode=zbd needs a zoned block device (/dev/sdd)",
    "dfs.fio": _NETWORK.format("DAOS"),
    "gfapi.fio": _NETWORK.format("GlusterFS"),
    "http-s3.fio": _NETWORK.format("S3"),
    "http-s3-crypto.fio": _NETWORK.format("S3"),
    "http-s3-storage-class.fio": _NETWORK.format("S3"),
    "http-swift.fio": _NETWORK.format("Swift"),
    "http-webdav.fio": _NETWORK.format("WebDAV"),
    "libhdfs.fio": _NETWORK.format("HDFS"),
    "libiscsi.fio": _NETWORK.format("iSCSI"),
    "nbd.fio": _NETWORK.format("an NBD server"),
    "nfs.fio": _NETWORK.format("NFS via libnfs"),
    "netio.fio": _NETWORK.format("TCP sockets, ioengine=net"),
    "netio_multicast.fio": _NETWORK.format("UDP multicast, ioengine=net"),
    "rados.fio": _NETWORK.format("Ceph RADOS"),
    "rbd.fio": _NETWORK.format("Ceph RBD"),
    "rdmaio-client.fio": _NETWORK.format("RDMA"),
    "rdmaio-server.fio": _NETWORK.format("RDMA"),
    "gpudirect-rdmaio-client.fio": _NETWORK.format("RDMA") + " and needs a GPU",
    "gpudirect-rdmaio-server.fio": _NETWORK.format("RDMA") + " and needs a GPU",
    "librpma_apm-client.fio": _NETWORK.format("RDMA (librpma)"),
    "librpma_apm-server.fio": _NETWORK.format("RDMA (librpma)"),
    "librpma_gpspm-client.fio": _NETWORK.format("RDMA (librpma)"),
    "librpma_gpspm-server.fio": _NETWORK.format("RDMA (librpma)"),
    "numa.fio": "numa_cpu_nodes=0-1 needs two NUMA nodes; this machine has "
                f"{len([n for n in os.listdir('/sys/devices/system/node') if n.startswith('node')]) if os.path.isdir('/sys/devices/system/node') else 0}",
    "enospc-pressure.fio": "needs a file system driven to ENOSPC (filesize=128G, ignore_error=ENOSPC); "
                           "a scratch directory on the test machine's disk must not be",
    "steadystate.fio": "reads /dev/zero and writes /dev/null (character devices, not files), and "
                       "steady-state detection needs ss_dur=30s windows",
}
# The -pre halves run as part of their job (Job.pre).
PRE_HALVES = {"t0002-13af05ae-pre.fio", "t0003-0ae2c6e1-pre.fio"}


# --- running ---------------------------------------------------------------------

class Lane:
    """One copy of a job in a run: a storage type on xdevice, or an oracle engine."""

    def __init__(self, key, head, dirpath, shm=None):
        self.key, self.head, self.dir, self.shm = key, head, dirpath, shm


class Outcome:
    """What one lane of a run did: its JSON jobs (names without the lane's
    prefix), the run's rc, the lines of fio's output that concern it, and
    where its logs are."""

    def __init__(self, key, rc, jobs, text, cwd, prefix, missing=False):
        self.key, self.rc, self.jobs, self.text = key, rc, jobs, text
        self.cwd, self.prefix, self.missing = cwd, prefix, missing

    @property
    def errors(self):
        return [(j["jobname"], j["error"]) for j in self.jobs if j["error"]]

    @property
    def failed(self):
        return self.missing or bool(self.errors)

    def error_line(self):
        lines = [ln for ln in self.text.splitlines()
                 if any(w in ln for w in ("err", "bad", "fail", "xdevice:", "verify", "mismatch"))]
        if lines:
            return lines[0].strip()
        errs = ", ".join(f"{n}: error {e} ({os.strerror(e)})" for n, e in self.errors)
        return f"rc={self.rc}, fio printed no error line; jobs {errs or 'missing'}"

    def bytes_by_section(self):
        out = {}
        for j in self.jobs:
            for ddir in ("read", "write", "trim"):
                k = (j["jobname"], ddir)
                out[k] = out.get(k, 0) + j[ddir]["io_bytes"]
        return out


def _render(job, lanes, pre=False):
    """The job file text for these lanes, one copy per lane, one after another."""
    jf = load_job(job, pre=pre)
    threads = [int(jf.get(n, "numjobs", "1") or 1) for n in jf.names()]
    parts = []
    for i, lane in enumerate(lanes):
        lane_changes = {"*": {}}
        # same random choices as the oracle, whatever the lane's position
        for k, name in enumerate(jf.names()):
            if jf.get(name, "experimental_verify", "0") != "0" or section_timed(jf, name):
                # only sections whose io_bytes are compared need the oracle's
                # seeds; and randrepeat=0 changes how fio replays offsets
                # (experimental_verify) and verifies time_based passes: fio's
                # own engines then fail t0026 and a time_based randrw verify
                continue
            nth = 1 + sum(threads[:k])
            lane_changes[name] = {"randrepeat": "0",
                                  "randseed": pinned_seed(nth, i * sum(threads) + nth)}
        if lane.key[0] == "block" or lane.key == ("oracle-block",):
            lane_changes["*"].update({"filename": lane.dir, "directory": DROP})
        else:
            lane_changes["*"]["directory"] = str(lane.dir)
        if jf.any_has("flow"):  # flows of one copy must not pace the next
            lane_changes["*"]["flow_id"] = str(i + 1)
        copy = jf.override(lane_changes)
        first = [("stonewall", None), ("new_group", None)] if i else []
        parts.append(copy.render(f"{lane.key[0]}.", lane.head, first))
    return "\n".join(parts)


_SEED_BASE = 0x89 << 20  # fio's default randseed, times 2^20 (see pinned_seed)


def pinned_seed(nth, thread_number):
    """randseed= that gives a job fio numbers thread_number the random
    seeds of the nth job of a run of its own.

    fio seeds job number n from randseed * n (init.c, setup_random_seeds;
    and with randrepeat=1 the offsets from a constant * n), so the copies of
    one job in a run of several would otherwise each draw other offsets and
    read/write mixes than the oracle. With randrepeat=0 and randseed=r the
    product r * n mod 2^64 is what counts: r = base * nth / n, with the
    division done as a multiplication by n's odd part's inverse (the base
    holds 2^20 for n's power of two). A section's numjobs clones are numbered
    after it, so only its first clone is pinned exactly; later clones of a
    copy draw other values (see test_conformance)."""
    target = (_SEED_BASE * nth) % (1 << 64)
    twos = (thread_number & -thread_number).bit_length() - 1
    odd = thread_number >> twos
    r = ((target >> twos) * pow(odd, -1, 1 << 64)) % (1 << (64 - twos))
    # fio reads randseed with strtoll: a value above 2^63 goes as its negative
    return str(r - (1 << 64) if r >= 1 << 63 else r)


def load_job(job, pre=False):
    if job.text is not None:
        jf = JobFile.parse(job.text, job.name)
    else:
        path = fio_source() / (job.pre if pre else job.src)
        jf = JobFile.parse(path.read_text(), str(path))
    if job.name == "1mbs_clients":
        jf = jf.only(["file1", "file2", "file3", "file4"])
    jf = jf.override(GENERIC)
    for name in jf.names():
        runtime = jf.get(name, "runtime")
        if jf.get(name, "time_based", "0") != "0":
            # scaled to a fraction of a second; the suite's own jobs say theirs in ms
            keep = runtime is not None and runtime.endswith("ms")
            jf = jf.override({name: {"runtime": runtime if keep else TIME_BASED_RUNTIME}})
        elif runtime is not None:
            # on a job bounded by size, runtime= is a safety net, never its end
            jf = jf.override({name: {"runtime": "20"}})
    jf = jf.override(job.pre_changes if pre else job.changes)
    return jf


MIXES = {"rw", "readwrite", "randrw", "trimwrite", "randtrimwrite"}


def unpinned_mix(jf, name):
    """A read/write mix in a section with numjobs > 1: fio seeds its later
    clones by their number in the run, so in every copy but the first of a
    run their byte split differs from the oracle's (the data is still
    verified, and the totals are the job's size)."""
    rw = jf.get(name, "rw") or jf.get(name, "readwrite") or "read"
    return rw.split(":")[0] in MIXES and int(jf.get(name, "numjobs", "1") or 1) > 1


def section_timed(jf, name):
    return jf.get(name, "time_based", "0") != "0" or jf.get(name, "exitall") is not None \
        or jf.get(name, "exit_what") is not None


def run_lanes(job, lanes, root, tag):
    """One fio run (the -pre half first when the job has one) over lanes.
    Returns {lane.key: Outcome}."""
    cwd = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=root))
    for lane in lanes:
        if lane.key[0] != "block" and lane.key != ("oracle-block",):
            Path(lane.dir).mkdir(parents=True, exist_ok=True)
    text = ""
    if job.pre:
        pre_file = cwd / "pre.fio"
        pre_file.write_text(_render(job, lanes, pre=True))
        rc, data, text = _fio(pre_file, cwd, "pre")
        if rc < 0 or data is None or any(j["error"] for j in data["jobs"]):
            return {lane.key: Outcome(lane.key, rc, [], "pre-job failed: " + text, cwd,
                                      f"{lane.key[0]}.", missing=True) for lane in lanes}
    job_file = cwd / "job.fio"
    job_file.write_text(_render(job, lanes))
    rc, data, text = _fio(job_file, cwd, "job")
    out = {}
    for lane in lanes:
        prefix = f"{lane.key[0]}."
        jobs = []
        for j in (data or {}).get("jobs", []):
            if j["jobname"].startswith(prefix):
                j = dict(j)
                j["jobname"] = j["jobname"][len(prefix):]
                jobs.append(j)
        # a line naming no lane (fio: pid=..., err=...) may be anyone's
        mine = [ln for ln in text.splitlines()
                if _mentions(ln, lane) or not any(_mentions(ln, other) for other in lanes)]
        lane_text = "\n".join(mine)
        out[lane.key] = Outcome(lane.key, rc, jobs, lane_text, cwd, prefix,
                                missing=(rc < 0 or data is None or not jobs))
    return out


TIMES = []  # (seconds, job file) of every fio run, for XD_CONFORMANCE_TIMES


def _mentions(line, lane):
    return (f"{lane.key[0]}." in line or str(lane.dir) in line
            or (lane.shm is not None and str(lane.shm) in line))


def _fio(job_file, cwd, tag):
    t0 = time.monotonic()
    try:
        return _fio_run(job_file, cwd, tag)
    finally:
        TIMES.append((time.monotonic() - t0, str(job_file)))


def _fio_run(job_file, cwd, tag):
    out = cwd / f"{tag}.json"
    cmd = [FIO, f"--output={out}", "--output-format=json", str(job_file)]
    # its own session, so that a hung run's job processes go with it
    p = subprocess.Popen(cmd, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        stdout, stderr = p.communicate(timeout=RUN_TIMEOUT)
        rc, text = p.returncode, stdout + stderr
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        stdout, stderr = p.communicate()
        return -999, None, f"fio hung: killed after {RUN_TIMEOUT}s: {' '.join(cmd)}\n{stdout}{stderr}"
    raw = out.read_text(errors="replace") if out.exists() else ""
    data, rest = _split_output(raw)
    return rc, data, text + rest


class Suite:
    """Every run the selected tests need, started at once on a pool."""

    def __init__(self, engine, loop, root, shm_root):
        self.engine, self.loop, self.root, self.shm_root = engine, loop, root, shm_root
        self.pool = cf.ThreadPoolExecutor(WORKERS)
        self.block_lock = threading.Lock()  # one loop device for every block run
        self.futures = {}
        self.lock = threading.Lock()

    def xd_lane(self, job, t, mode):
        base = Path(self.root) / job.name / mode
        head = [("ioengine", f"external:{self.engine}"), ("xd_type", t), ("xd_async", mode)]
        shm = None
        if t in ("tmpfs", "hybrid"):
            shm = Path(self.shm_root) / job.name / mode / t
            shm.mkdir(parents=True, exist_ok=True)
            head.append(("xd_tmpfs_directory" if t == "tmpfs" else "xd_hot_directory", str(shm)))
        if t == "block":
            head.append(("xd_enable_trim", "1"))  # t0023/t0024 trim; off by default
        head += EXTRA_XD
        d = self.loop if t == "block" else base / t
        return Lane((t,), head, d, shm)

    def oracle_lane(self, job, engine):
        if job.oracle_on == "block":
            return Lane(("oracle-block",), [("ioengine", engine)], self.loop)
        return Lane((f"oracle-{engine}",), [("ioengine", engine)],
                    Path(self.root) / job.name / "oracle" / engine)

    def _submit(self, key, fn):
        with self.lock:
            if key not in self.futures:
                self.futures[key] = self.pool.submit(fn)
            return self.futures[key]

    def _blocking(self, fn):
        def run():
            with self.block_lock:
                return fn()
        return run

    def oracle(self, job, engine):
        """fio's own engine on the job: {(oracle-engine,): Outcome}."""
        lane = self.oracle_lane(job, engine)
        fn = lambda: run_lanes(job, [lane], self.root, f"{job.name}-oracle-{engine}")
        if job.oracle_on == "block":
            fn = self._blocking(fn)
        return self._submit(("oracle", job.name, engine), fn)

    def xdevice(self, job, mode, t):
        if t == "block":
            lane = self.xd_lane(job, t, mode)
            fn = self._blocking(lambda: run_lanes(job, [lane], self.root, f"{job.name}-{mode}-block"))
            return self._submit(("xd", job.name, mode, "block"), fn)
        return self._submit(("xd", job.name, mode), lambda: self._file_types(job, mode))

    def _file_types(self, job, mode):
        lanes = [self.xd_lane(job, t, mode) for t in FILE_TYPES]
        if job.batch:
            res = run_lanes(job, lanes, self.root, f"{job.name}-{mode}")
            # a failure that names no type (no JSON, crash, hang): one run per type
            if not any(o.missing for o in res.values()):
                return res
        return {lane.key: run_lanes(job, [lane], self.root, f"{job.name}-{mode}-{lane.key[0]}")[lane.key]
                for lane in lanes}

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)


def oracle_engine(t, mode):
    return "mmap" if t == "mmap" else ORACLE_ENGINE[mode]


def block_reason(job):
    """Why the block type cannot run this job, or None: the block type has
    one device, so a job that verifies data in several files cannot map
    onto it."""
    jf = load_job(job)
    files = set()
    for name in jf.names():
        n = int(jf.get(name, "numjobs", "1") or 1)
        nr = int(jf.get(name, "nrfiles", "1") or 1)
        fn = jf.get(name, "filename")
        files |= {fn} if fn and nr == 1 else {f"{name}.{i}.{k}" for i in range(n) for k in range(nr)}
    verifies = jf.any_has("verify") or jf.any_has("do_verify")
    if len(files) > 1 and verifies:
        return (f"the block type is one device and this job verifies {len(files)} files "
                f"({', '.join(sorted(files)[:3])}...); they would overwrite each other there")
    return None


# --- fixtures ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def suite(request, engine):
    base = _disk_base()
    if not base:
        pytest.fail("no disk file system with O_DIRECT for the direct type", pytrace=False)
    if fs_type("/dev/shm") != "tmpfs":
        pytest.fail("/dev/shm is not a tmpfs: the tmpfs and hybrid types need one", pytrace=False)
    root = tempfile.mkdtemp(prefix="xd-conformance-", dir=base)
    shm_root = tempfile.mkdtemp(prefix="xd-conformance-", dir="/dev/shm")
    loop = None
    mine = [it for it in request.session.items
            if it.module is request.module and hasattr(it, "callspec")]
    wants_block = any(it.callspec.params.get("stype") == "block"
                      or getattr(ALL_JOBS.get(it.callspec.params.get("job")), "oracle_on", "") == "block"
                      for it in mine)
    if wants_block:
        try:
            loop = request.getfixturevalue("loop_dev")
        except pytest.skip.Exception as e:
            loop = None
            print(f"block type: no loop device ({e}); its tests skip")
    s = Suite(engine, loop, root, shm_root)
    # start every run the selected tests need, in test order
    for it in mine:
        p = it.callspec.params
        job = ALL_JOBS.get(p.get("job"))
        if job is None or "mode" not in p:
            continue
        t = p.get("stype")
        if job.oracle_on == "block" and loop is None:
            continue
        if t is None:
            s.oracle(job, ORACLE_ENGINE[p["mode"]])
            continue
        if t == "block" and (loop is None or block_reason(job)):
            continue
        s.oracle(job, oracle_engine(t, p["mode"]))
        s.xdevice(job, p["mode"], t)
    yield s
    s.close()
    if os.environ.get("XD_CONFORMANCE_TIMES"):  # where the suite's time goes
        with open(os.environ["XD_CONFORMANCE_TIMES"], "w") as f:
            for secs, path in sorted(TIMES, reverse=True):
                f.write(f"{secs:7.2f} {path}\n")
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(shm_root, ignore_errors=True)


# --- checks (t/run-fio-tests.py's, on the scaled jobs) ----------------------------

def _bw_log(outcome, name):
    """(ddir, bs, offset) per line of a bw log that one lane wrote."""
    path = Path(outcome.cwd) / f"{outcome.prefix}{name}"
    assert path.exists(), f"{path} was not written"
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            v = [x.strip() for x in line.split(",")]
            rows.append((int(v[2]), int(v[3]), int(v[4])))
    return rows


def check_t0005(o, size=2 << 20):
    j = o.jobs[0]
    return [] if j["read"]["io_bytes"] == size == j["write"]["io_bytes"] else \
        [f"read {j['read']['io_bytes']} and write {j['write']['io_bytes']} bytes, both must be {size}"]


def check_t0006(o):
    # 2 +- 0.01 at 4 GiB; the scaled job has 1000 times fewer requests to even out
    j = o.jobs[0]
    ratio = j["read"]["io_bytes"] / max(1, j["write"]["io_bytes"])
    return [] if 1.95 <= ratio <= 2.05 else [f"read/write ratio {ratio:.3f}, must be 2 +- 0.05"]


def check_t0008(o, size=4 << 20):
    j = o.jobs[0]
    return [] if j["read"]["io_bytes"] == size else [f"read {j['read']['io_bytes']} bytes, must be {size}"]


def check_t0015(o):
    r = o.jobs[0]["read"]
    s, c, t = r["slat_ns"]["mean"], r["clat_ns"]["mean"], r["lat_ns"]["mean"]
    return [] if abs(s + c - t) <= 1 else [f"slat {s:.1f} + clat {c:.1f} = {s + c:.1f} != lat {t:.1f}"]


def check_t0019(o):
    offs = [off for _, _, off in _bw_log(o, "test_bw.log")]
    bad = [(a, b) for a, b in zip(offs, offs[1:]) if b - a != 4096]
    errs = [f"offsets {bad[0]} not sequential"] if bad or offs[:1] != [0] else []
    if not offs or offs[-1] != 255 * 4096:
        errs.append(f"last offset {offs[-1] if offs else None}, must be {255 * 4096}")
    return errs


def _random_offsets(o):
    offs = [off for _, _, off in _bw_log(o, "test_bw.log")]
    seq = sum(1 for a, b in zip(offs, offs[1:]) if b - a == 4096)
    return offs, seq


def check_t0020(o):
    offs, seq = _random_offsets(o)
    errs = [f"{seq} consecutive offsets, at most 10 allowed"] if seq > 10 else []
    if set(offs) != {i * 4096 for i in range(256)}:
        errs.append(f"{len(set(offs))} distinct offsets, must be all 256")
    return errs


def check_t0022(o):
    offs, seq = _random_offsets(o)
    errs = [f"{seq} consecutive offsets, at most 10 allowed"] if seq > 10 else []
    if len(set(offs)) == 256:
        errs.append("no offset repeated with norandommap=1")
    return errs


def _trimwrite_pairs(rows, log):
    prev = None
    for ddir, bs, off in rows:
        if prev is None or prev[0] == 1:
            if ddir != 2:
                return [f"{log}: write not preceded by a trim: {(ddir, bs, off)}"]
        elif ddir != 1 or (bs, off) != prev[1:]:
            return [f"{log}: trim {prev} not followed by a write of the same block: {(ddir, bs, off)}"]
        prev = (ddir, bs, off)
    return []


def _all_sectors(rows, log, sector, size=1 << 20):
    seen = set()
    for _, bs, off in rows:
        if off % sector or bs % sector:
            return [f"{log}: offset {off} or size {bs} not a multiple of {sector}"]
        seen.update(range(off // sector, (off + bs) // sector))
    return [] if len(seen) == size // sector else [f"{log}: {len(seen)} of {size // sector} sectors touched"]


def check_t0023(o, sections=("basic", "bs", "bsrange", "bssplit", "basic_no_rm", "bs_no_rm",
                             "bsrange_no_rm", "bssplit_no_rm")):
    errs = []
    for s in sections:
        errs += _trimwrite_pairs(_bw_log(o, f"{s}_bw.log"), s)
    for s, sector in (("basic", 4096), ("bs", 8192), ("bsrange", 512), ("bssplit", 512)):
        errs += _all_sectors(_bw_log(o, f"{s}_bw.log"), s, sector)
    return errs


def check_t0024(o):
    return check_t0023(o, sections=("basic", "bs", "bsrange", "bssplit"))


def check_t0025(o):
    r = o.jobs[0]["read"]["io_bytes"]
    return [] if r == 128 * 1024 else [f"read {r} bytes, must be 131072"]


CHECKS = {k[len("check_"):]: v for k, v in globals().items() if k.startswith("check_")}


# --- tests -------------------------------------------------------------------------

def test_every_fio_file_is_classified():
    """Each job file fio ships is run, or skipped with a reason."""
    src = fio_source()
    files = sorted(p.name for d in ("t/jobs", "examples") for p in (src / d).glob("*.fio"))
    covered = {Path(j.src).name for j in CATALOGUE} | PRE_HALVES | set(SKIPPED)
    missing = [f for f in files if f not in covered]
    assert not missing, f"fio job files neither run nor skipped with a reason: {missing}"
    stale = sorted(covered - set(files))
    assert not stale, f"the suite names job files this fio does not have: {stale}"


@pytest.mark.parametrize("name", sorted(SKIPPED))
def test_skipped(name):
    pytest.skip(f"{name}: {SKIPPED[name]}")


# `make test` runs every job on every storage type in one async mode per job,
# the modes taking turns down the catalogue (each mode gets a third of the
# jobs), plus every mode for the jobs that guard a fixed regression.
# XD_CONFORMANCE=full (`make conformance`) runs every job in every mode.
ALL_MODES_JOBS = {"t0007", "t0015", "t0026", "randrw-verify-time-based",
                  "nrfiles-random-fsync-on-close", "offset-increment-fork"}


# Failures not fixed yet, each said as a skip when it happens (a fix shows
# up as a pass).
KNOWN_FAILURES = {}

# Jobs fio 3.33 itself cannot verify, each said as a skip when xdevice fails
# them (a pass still passes). t0026's second job (randrw, time_based,
# experimental_verify): the replay picks each request's direction from
# td->io_issues, which fio neither resets before the verify pass nor counts
# the same way in it (replayed writes count as reads), so (here from the
# 15th request on) it turns reads into "writes to verify" and back. fio's
# libaio and io_uring engines pass only because they build the kernel request
# in ->prep, before do_verify() flips the write to a read: each verify "read"
# goes to the kernel as a write of the expected data (strace, runtime=1: job2
# issued 1692 reads, the kernel got 1550 PREADs and 142 PWRITEs more than
# fio's writes; job1's 256 verify reads all reach it as PWRITEs), and the
# buffer then verifies against itself. fio's posixaio engine, which reads the
# direction at ->queue as xdevice does, fails t0026 at the same offset with
# the same seeds. Sync mode passes because fio never starts a time_based
# verify pass for engines that complete inline (io_queue_event() adds to
# bytes_issued only for FIO_Q_QUEUED).
T0026 = ("fio's experimental_verify replays a randrw job's directions wrongly; "
         "fio's libaio/io_uring hide it by writing during verify, its posixaio fails too")
FIO_CANNOT_VERIFY = {("t0026", "libaio"): T0026, ("t0026", "io_uring"): T0026}


def job_modes():
    full = os.environ.get("XD_CONFORMANCE", "") == "full"
    pairs = []
    for i, name in enumerate(ALL_JOBS):
        if full or name in ALL_MODES_JOBS:
            pairs += [(name, m) for m in MODES]
        else:
            pairs.append((name, MODES[i % len(MODES)]))
    return pairs


@pytest.mark.parametrize("job,mode", job_modes())
def test_oracle(suite, job, mode):
    """fio's own engine passes the scaled job (else the scaling is wrong)."""
    j = ALL_JOBS[job]
    if j.oracle_on == "block" and suite.loop is None:
        pytest.skip("the oracle for trim is fio's engine on a loop device, and none could be attached")
    o = suite.oracle(j, ORACLE_ENGINE[mode]).result()
    o = next(iter(o.values()))
    if j.expect_fail:
        assert o.failed, f"{job}: fio's {ORACLE_ENGINE[mode]} passed a job that must fail"
    else:
        assert not o.failed, f"{job} fails on fio's own {ORACLE_ENGINE[mode]}: {o.error_line()}\n{o.text}"
        check = CHECKS.get(j.check)
        if check and j.check != "t0015":  # slat: sync engines have none (see test_conformance)
            assert not check(o), f"{job} on fio's {ORACLE_ENGINE[mode]}: {check(o)}"


@pytest.mark.parametrize("stype", TYPES)
@pytest.mark.parametrize("job,mode", job_modes())
def test_conformance(suite, job, mode, stype):
    j = ALL_JOBS[job]
    if stype == "block":
        if suite.loop is None:
            pytest.skip("block type: no loop device could be attached (needs root and losetup)")
        why = block_reason(j)
        if why:
            pytest.skip(why)
    if j.oracle_on == "block" and suite.loop is None:
        pytest.skip("the oracle for trim is fio's engine on a loop device, and none could be attached")
    eng = oracle_engine(stype, mode)
    oracle = next(iter(suite.oracle(j, eng).result().values()))
    if oracle.failed and eng != ORACLE_ENGINE[mode]:
        # fio's mmap engine fails jobs its syscall engines pass (blocks
        # under 4 KiB, verify across forked writers of one file): wherever
        # one of fio's own engines passes a job, the mmap type must too
        generic = next(iter(suite.oracle(j, ORACLE_ENGINE[mode]).result().values()))
        if not generic.failed:
            oracle, eng = generic, ORACLE_ENGINE[mode]
    res = suite.xdevice(j, mode, stype).result()[(stype,)]
    where = f"{job} {stype} {mode}"
    if j.expect_fail:
        assert oracle.failed, f"{where}: fio's {eng} passed a job that must fail"
        assert res.failed, f"{where}: xdevice passed a job fio's {eng} fails (it must fail)"
        return
    if oracle.failed:
        pytest.skip(f"{where}: fio's own {eng} engine fails this job too ({oracle.error_line()}); "
                    "nothing to compare")
    if res.failed and (job, mode) in KNOWN_FAILURES:
        pytest.skip(f"{where}: KNOWN BUG, open in issue 12: {KNOWN_FAILURES[job, mode]} "
                    f"({res.error_line()})")
    if res.failed and (job, mode) in FIO_CANNOT_VERIFY:
        pytest.skip(f"{where}: not an xdevice bug: {FIO_CANNOT_VERIFY[job, mode]} "
                    f"({res.error_line()})")
    assert not res.failed, f"{where}: {res.error_line()}\n--- fio output ---\n{res.text[-3000:]}"
    jf = load_job(j)
    ours, theirs = res.bytes_by_section(), oracle.bytes_by_section()
    untimed = {n for n in jf.names() if not section_timed(jf, n)
               and not (unpinned_mix(jf, n) and stype != FILE_TYPES[0])}
    if stype == "block" and not j.bytes_on_block:
        untimed = set()
    diff = {k: (ours.get(k), theirs.get(k)) for k in set(ours) | set(theirs)
            if k[0] in untimed and ours.get(k) != theirs.get(k)}
    assert not diff, f"{where}: io_bytes (xdevice, fio's {eng}) differ: {diff}"
    check = CHECKS.get(j.check)
    if check:
        if check(oracle):
            return  # fio's own engine does not meet it either (slat with psync)
        errs = check(res)
        assert not errs, f"{where}: t/run-fio-tests.py's check for {j.src}: {errs}"
