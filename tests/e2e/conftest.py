"""Shared fixtures and helpers for the end-to-end suite: real fio, real engine.

The engine is found through $XD_ENGINE, default <repo>/build/xdevice.so
(`make test` builds it first). A missing engine or fio is an error, never a
skip: a suite that silently skips everything proves nothing.

fio prints notes of its own on stdout (xdevice's notices go to stderr; see
test_json_output.py), so results are always read from --output=FILE, and the
JSON document is located inside that file rather than assumed to be all of it.
"""
import contextlib
import itertools
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple, Optional

import pytest

from fiojson import split_output
from machine import IO_URING_REFUSED

REPO = Path(__file__).resolve().parents[2]
SCHEMA_H = REPO / "backends" / "core" / "config_schema.h"
FIO = shutil.which("fio") or "/usr/bin/fio"
FIO_TIMEOUT = 180  # seconds for one fio run; every job in the suite is small

MiB = 1024 * 1024
KiB = 1024

ASYNC_MODES = ["sync", "libaio", "io_uring"]
PROC_MODES = {"thread": ["--thread=1"], "process": []}

# For a test whose jobs use io_uring in their body, not through a parameter.
needs_io_uring = pytest.mark.skipif(bool(IO_URING_REFUSED), reason=IO_URING_REFUSED or "-")


def pytest_configure(config):
    # pytest-xdist registers it too; named here so TEST_JOBS=1 (no xdist) knows it
    config.addinivalue_line("markers", "xdist_group(name): tests sharing something outside "
                            "their tmp_path run in one xdist worker (--dist loadgroup)")


def pytest_collection_modifyitems(config, items):
    """Cases parametrized with io_uring are skipped where it is refused."""
    if not IO_URING_REFUSED:
        return
    skip = pytest.mark.skip(reason=IO_URING_REFUSED)
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any("io_uring" in str(v) for v in params.values()):
            item.add_marker(skip)


def engine_path() -> Path:
    return Path(os.environ.get("XD_ENGINE", str(REPO / "build" / "xdevice.so"))).resolve()


@pytest.fixture(scope="session")
def engine() -> str:
    """Absolute path of the engine. Fails (not skips) when it is missing."""
    p = engine_path()
    if not os.access(FIO, os.X_OK):
        pytest.fail(f"fio not found ({FIO}); install the fio package", pytrace=False)
    if not p.is_file():
        pytest.fail(
            f"xdevice engine not found at {p}: run `make` first (or point XD_ENGINE at it)",
            pytrace=False,
        )
    return str(p)


# --- running fio -------------------------------------------------------------


class FioRun(NamedTuple):
    rc: int
    data: Optional[dict]  # the parsed JSON document, None when there is none
    text: str  # stdout + stderr + whatever of the output file is not the JSON


_run_counter = itertools.count()


def _split_output(raw: str):
    """Return (json_doc or None, the non-JSON remainder) of a fio output file."""
    return split_output(raw)


def run_fio(args, tmp_path, expect_ok=True, fmt="json", timeout=FIO_TIMEOUT, cwd=None,
            wrap=()) -> FioRun:
    """Run fio with args (engine options after --ioengine=), results in a file;
    wrap: a command fio runs under (prlimit ..., setpriv ...).

    Returns FioRun(rc, data, text). With expect_ok the test fails unless fio
    exited 0, produced JSON and every job reports error 0. A run killed by a
    signal always fails the test (a crash is never an acceptable outcome)."""
    tmp_path = Path(tmp_path)
    out = tmp_path / f"fio-out-{next(_run_counter)}.{fmt.replace('+', 'plus')}"
    cmd = [*wrap, FIO, f"--output={out}", f"--output-format={fmt}", *[str(a) for a in args]]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=str(cwd or tmp_path)
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"fio timed out after {timeout}s: {' '.join(cmd)}\n{e.stdout}\n{e.stderr}")
    raw = out.read_text(errors="replace") if out.exists() else ""
    data, rest = _split_output(raw)
    text = (proc.stdout or "") + (proc.stderr or "")
    # fio copies log_err lines into the --output file as well: keep one copy
    seen = set(text.splitlines())
    extra = [ln for ln in rest.splitlines() if ln.strip() and ln not in seen]
    if extra:
        text += "\n".join(extra) + "\n"
    where = f"command: {' '.join(cmd)}\nrc={proc.returncode}\n--- output ---\n{text}"
    if IO_URING_REFUSED and ("io_uring_queue_init(" in text or "func=io_queue_init" in text):
        pytest.skip(f"{IO_URING_REFUSED}: {' '.join(cmd)}")  # a job with io_uring in its body
    assert proc.returncode >= 0, f"fio was killed by signal {-proc.returncode}\n{where}"
    assert "Segmentation" not in text and "Aborted" not in text, f"fio crashed\n{where}"
    if expect_ok:
        assert proc.returncode == 0, f"fio failed\n{where}"
        assert data is not None, f"fio wrote no JSON\n{where}"
        errs = [(j["jobname"], j["error"]) for j in data["jobs"] if j["error"]]
        assert not errs, f"jobs reported errors {errs}\n{where}"
    return FioRun(proc.returncode, data, text)


def fio_job(engine, name="job", xd=None, **opts):
    """Command-line arguments of one job on the xdevice engine.

    xd: {"type": "regular", "async": "io_uring", ...} become --xd_KEY=VALUE and
    are placed after --ioengine= as fio requires. opts become --KEY=VALUE
    (a value of None gives a bare --KEY)."""
    args = [f"--name={name}", f"--ioengine=external:{engine}"]
    for k, v in (xd or {}).items():
        args.append(f"--xd_{k}={v}")
    for k, v in opts.items():
        args.append(f"--{k}" if v is None else f"--{k}={v}")
    return args


def xdevice_lines(text):
    """Lines xdevice printed (they all start with 'xdevice:')."""
    return [ln.strip() for ln in text.splitlines() if ln.strip().startswith("xdevice:")]


# --- checks --------------------------------------------------------------------


def tool_one_line(p, rc, prefix, *needles):
    """A tool's refusal: exit rc, exactly one line on stderr starting with
    prefix ("xdmicro: ") and naming every needle, nothing on stdout."""
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == rc, f"want exit {rc}, got {p.returncode}\n{p.stdout}{p.stderr}"
    assert len(lines) == 1, f"want one line, got:\n{p.stderr}"
    assert lines[0].startswith(prefix), lines[0]
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    assert not p.stdout, p.stdout
    return lines[0]


def assert_verified(data, size=None, njobs=None):
    """Every job finished without error and fio verified every byte it wrote.

    fio's verify does not notice a short write it silently resubmitted, nor a
    stale block, so bytes verified (they count as reads) must equal bytes
    written."""
    jobs = data["jobs"]
    if njobs is not None:
        assert len(jobs) == njobs, f"expected {njobs} jobs in fio's JSON, got {len(jobs)}"
    for j in jobs:
        w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
        assert j["error"] == 0, f"job {j['jobname']}: error {j['error']}"
        assert w > 0, f"job {j['jobname']} wrote nothing"
        assert r == w, f"job {j['jobname']}: verified {r} bytes but wrote {w}"
        if size is not None:
            assert w == size, f"job {j['jobname']}: wrote {w} bytes, expected {size}"


def load_stats(path):
    """The xd_stats document; it must be one valid JSON object."""
    text = Path(path).read_text()
    doc = json.loads(text)
    assert isinstance(doc, dict) and "jobs" in doc and "aggregate" in doc, text[:500]
    return doc


def schema_keys():
    """Every key of the config schema, parsed from config_schema.h."""
    text = SCHEMA_H.read_text()
    keys = re.findall(r"^\s*X\(\s*(\w+)\s*,\s*(\w+)\s*,", text, re.M)
    assert len(keys) > 30, f"could not parse the schema keys from {SCHEMA_H}"
    return [k for _, k in keys]


# --- file systems and devices ----------------------------------------------------


def fs_type(path) -> str:
    """File system type of the mount holding path (from /proc/self/mountinfo)."""
    path = os.path.realpath(path)
    best, kind = "", ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            mnt = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[4])
            fstype = parts[parts.index("-") + 1]
            inside = path == mnt or path.startswith(mnt.rstrip("/") + "/")
            if inside and len(mnt) >= len(best):
                best, kind = mnt, fstype
    return kind


MEMORY_FS = {"tmpfs", "ramfs", "devtmpfs", "overlay", "squashfs", "proc", "sysfs"}


def _supports_odirect(d) -> bool:
    probe = os.path.join(d, f".xd-odirect-probe-{os.getpid()}")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o644)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def _disk_base() -> str:
    """A directory on a disk file system that accepts O_DIRECT."""
    for base in (os.environ.get("XD_E2E_DISK"), tempfile.gettempdir(), "/var/tmp", str(REPO / "build")):
        if not base or not os.path.isdir(base):
            continue
        if fs_type(base) in MEMORY_FS:
            continue
        if _supports_odirect(base):
            return base
    return ""


@pytest.fixture
def disk_dir():
    """A fresh scratch directory on a disk file system (not tmpfs), removed after."""
    base = _disk_base()
    if not base:
        pytest.fail("no disk file system with O_DIRECT among $XD_E2E_DISK, $TMPDIR, /var/tmp, build/")
    d = tempfile.mkdtemp(prefix="xd-e2e-", dir=base)
    assert fs_type(d) not in MEMORY_FS
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def shm_dir():
    """A fresh directory under /dev/shm (tmpfs), removed after."""
    if fs_type("/dev/shm") != "tmpfs":
        pytest.skip("/dev/shm is not a tmpfs on this machine")
    d = tempfile.mkdtemp(prefix="xd-e2e-", dir="/dev/shm")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def own_tmpfs(mnt, size, name):
    """A tmpfs of size mounted on mnt (a directory this makes), unmounted
    after; the test is skipped where mounting is not allowed (not root)."""
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", name, str(mnt)],
                       capture_output=True, text=True)
    if p.returncode:
        pytest.skip(f"cannot mount a tmpfs (needs root): {p.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


LOOP_SIZE = 256 * MiB


@pytest.fixture(scope="module")
def loop_dev():
    """A 256 MiB loop device over a sparse image; detached at teardown."""
    if os.geteuid() != 0:
        pytest.skip("block type tests need root to attach a loop device")
    if not shutil.which("losetup"):
        pytest.skip("losetup is not installed")
    base = _disk_base() or tempfile.gettempdir()
    d = tempfile.mkdtemp(prefix="xd-e2e-loop-", dir=base)
    img = os.path.join(d, "loop.img")
    with open(img, "wb") as f:
        f.truncate(LOOP_SIZE)
    p = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True)
    if p.returncode != 0 or not p.stdout.strip().startswith("/dev/loop"):
        shutil.rmtree(d, ignore_errors=True)
        pytest.skip(f"losetup -f --show failed (rc={p.returncode}): {p.stderr.strip() or p.stdout.strip()}")
    dev = p.stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def zero_device(dev, length):
    """Write zeros over the first length bytes of a device."""
    with open(dev, "r+b", buffering=0) as f:
        chunk = b"\0" * MiB
        for _ in range(length // MiB):
            f.write(chunk)
        os.fsync(f.fileno())


def kernel_odirect_on_tmpfs() -> bool:
    """Does this kernel accept open(O_DIRECT) on tmpfs (Linux >= 6.6 does)?"""
    if fs_type("/dev/shm") != "tmpfs":
        return False
    return _supports_odirect("/dev/shm")


def records(path):
    """The periodic records, one JSON object per line; every complete line
    must parse. Read while fio runs, the last line may be a record still
    being appended (a reader can see part of a write): it counts once its
    newline is there."""
    if not Path(path).exists():
        return []
    text = Path(path).read_text()
    return [json.loads(ln) for ln in text[:text.rfind("\n") + 1].splitlines()]


def wait_for(proc, pred, timeout, what):
    """Until pred() holds, polled while fio (proc) runs, for at most
    timeout seconds; fio is killed when it does not (run fio's jobs as
    threads: a job process of its own would outlive that)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()  # None where they went to files
            pytest.fail(f"fio exited (rc {proc.returncode}) before {what}\n"
                        f"{out or ''}\n{err or ''}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def run_fio_until(args, tmp_path, pred, what, timeout=120):
    """fio's jobs (args, whose long-running ones say time_based, a long
    runtime, and thread=1 so that a kill reaches them) run until
    pred(its output so far) holds, polled with a bounded deadline, then ended by fio's
    --trigger-file (it exits as usual, 0 when every job passed, with its
    output): for a test that needs something the clock brings (periodic
    records, health checks, jobs overlapping), where a fixed runtime can
    run out on a loaded machine first. Its output goes to a file, never an
    unread pipe a chatty job would fill and stop on. Returns (rc, output)."""
    tmp_path = Path(tmp_path)
    n = next(_run_counter)
    stop, output = tmp_path / f"stop-{n}", tmp_path / f"fio-until-{n}.out"
    cmd = [FIO, *[str(a) for a in args], f"--trigger-file={stop}"]
    with open(output, "w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(proc, lambda: pred(output.read_text(errors="replace")), timeout, what)
        finally:
            stop.touch()
            try:
                proc.wait(timeout=FIO_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"fio did not end at its trigger file\n{output.read_text()}")
    return proc.returncode, output.read_text()


def verify_state(path):
    """numberio (writes issued), depth and the offsets of the last completed
    writes in fio's saved verify state (fio's verify-state.h: a 24-byte
    header, then struct thread_io_list, whose comps start 152 bytes in)."""
    b = path.read_bytes()
    no_comps, depth, _nofiles, numberio = struct.unpack_from("<QIIQ", b, 24)
    comps = [struct.unpack_from("<QQ", b, 24 + 152 + 16 * i)[1] for i in range(no_comps)]
    return numberio, depth, comps


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    """crc32c (Castagnoli) as xdevice's headers, stamps and manifests
    carry it, for tests that write them by hand."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
