"""fio features the engine must honour: invalidate, syncs, trims, many files,
preallocation, O_SYNC writes."""
import ctypes
import errno
import mmap
import os
import subprocess
import time

import pytest

from conftest import FIO, MiB, assert_verified, fio_job, load_stats, run_fio, xdevice_lines

PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(None, use_errno=True)


def resident_pages(path):
    """Per page of the file: is it in the page cache (mincore)?"""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        mm = mmap.mmap(f.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            buf = (ctypes.c_char * size).from_buffer(mm)
            try:
                vec = (ctypes.c_ubyte * ((size + PAGE - 1) // PAGE))()
                if _libc.mincore(ctypes.c_void_p(ctypes.addressof(buf)), ctypes.c_size_t(size), vec):
                    raise OSError(ctypes.get_errno(), "mincore")
                return [b & 1 for b in vec]
            finally:
                del buf
        finally:
            mm.close()


def write_pattern(path, size, byte=0xA5):
    with open(path, "r+b" if os.path.exists(path) else "wb") as f:
        f.write(bytes([byte]) * size)
        f.flush()
        os.fsync(f.fileno())


def read_range(path, off, length):
    fd = os.open(path, os.O_RDONLY)
    try:
        # a fresh view: drop cached pages of a regular file first (no-op on error)
        try:
            os.posix_fadvise(fd, off, length, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass
        return os.pread(fd, length, off)
    finally:
        os.close(fd)


# --- invalidate ----------------------------------------------------------------


@pytest.mark.parametrize("invalidate", [1, 0])
def test_invalidate(engine, tmp_path, disk_dir, invalidate):
    """invalidate=1 drops the file's cached pages when fio opens it.

    With invalidate=0 the pages must stay, but the kernel may reclaim page
    cache on its own (memory pressure, the machine's DAMON scheme): an engine
    that drops them does so on every attempt, so three attempts tell the two
    apart."""
    path = disk_dir / "inv.0.0"
    write_pattern(path, 8 * MiB)
    for attempt in range(3):
        with open(path, "rb") as f:
            while f.read(MiB):
                pass
        before = resident_pages(path)
        assert sum(before) == len(before), "could not warm the page cache for the test"
        r = run_fio(
            fio_job(engine, name="inv", xd={"type": "regular", "read_ahead_kb": 0},
                    filename=path, rw="read", bs="4k", size=8 * MiB, io_size="4k",
                    invalidate=invalidate),
            tmp_path,
        )
        assert r.data["jobs"][0]["read"]["io_bytes"] == 4096
        after = resident_pages(path)
        tail = after[len(after) // 2:]  # far beyond anything the 4k read could bring in
        if invalidate:
            assert sum(tail) == 0, f"{sum(tail)} of {len(tail)} tail pages still cached after invalidate=1"
            return
        if sum(tail) > 0.9 * len(tail):
            return
    pytest.fail(f"invalidate=0 must leave the page cache alone: {sum(tail)} of {len(tail)} tail pages cached, 3 attempts")


# --- syncs ---------------------------------------------------------------------


def iolog_actions(path):
    """Count fio's iolog (v3: time file action [offset length]) lines by action."""
    counts = {}
    for line in open(path):
        parts = line.split()
        if len(parts) >= 3:
            counts[parts[2]] = counts.get(parts[2], 0) + 1
    return counts


def sync_job(engine, tmp_path, disk_dir, async_mode, **sync_opts):
    """Run a 256-write job; return (fio's job JSON, xdevice's ops, fio's iolog counts).

    fio's JSON "sync" counts fsyncs only, so the iolog fio writes of every
    request it issued (sync, datasync) is the reference for the rest."""
    stats, iolog = tmp_path / "s.json", tmp_path / "io.log"
    r = run_fio(
        fio_job(engine, name="sy", xd={"type": "regular", "async": async_mode, "stats": stats},
                directory=disk_dir, rw="write", bs="4k", size=MiB, iodepth=8,
                write_iolog=iolog, **sync_opts),
        tmp_path,
    )
    job = r.data["jobs"][0]
    assert job["write"]["total_ios"] == 256
    log = iolog_actions(iolog)
    assert log.get("write") == 256
    return job, load_stats(stats)["jobs"][0]["ops"], log


@pytest.mark.parametrize("async_mode", ["sync", "io_uring"])
def test_fsync_every_4(engine, tmp_path, disk_dir, async_mode):
    job, ops, log = sync_job(engine, tmp_path, disk_dir, async_mode, fsync=4)
    assert job["sync"]["total_ios"] >= 256 // 4 - 1
    assert log.get("sync") == job["sync"]["total_ios"]
    assert ops["fsync"]["ops"] == job["sync"]["total_ios"]
    assert ops["sync"]["ops"] == job["sync"]["total_ios"]
    assert ops["fdatasync"]["ops"] == 0
    assert ops["fsync"]["errors"] == 0


@pytest.mark.parametrize("async_mode", ["sync", "libaio"])
def test_fdatasync_every_4(engine, tmp_path, disk_dir, async_mode):
    job, ops, log = sync_job(engine, tmp_path, disk_dir, async_mode, fdatasync=4)
    assert log.get("datasync", 0) >= 256 // 4 - 1
    assert ops["fdatasync"]["ops"] == log["datasync"]
    assert ops["fsync"]["ops"] == 0
    assert ops["sync"]["ops"] == ops["fdatasync"]["ops"]


@pytest.mark.parametrize("async_mode", ["sync", "io_uring"])
def test_sync_file_range_is_served_as_fdatasync(engine, tmp_path, disk_dir, async_mode):
    """sync_file_range=write:4 was refused ("not supported"), where fio's
    own engines run the job. xdevice has no range sync (a write-back cache,
    a compressed container or a tmpfs copy hold data no range of the file
    names), so each is served as an fdatasync of the file: never weaker.
    One line says so, naming the option as written."""
    job, ops, log = sync_job(engine, tmp_path, disk_dir, async_mode, sync_file_range="write:4")
    assert job["error"] == 0
    assert log.get("sync_file_range", 0) >= 256 // 4 - 1, log
    assert ops["fdatasync"]["ops"] == log["sync_file_range"]
    assert ops["fsync"]["ops"] == 0 and ops["fdatasync"]["errors"] == 0


def test_sync_file_range_says_how_it_is_served(engine, tmp_path):
    r = run_fio(fio_job(engine, xd={"type": "compressed"}, filename=tmp_path / "f", size="1m",
                        rw="randwrite", verify="crc32c", sync_file_range="wait_before,write:8"),
                tmp_path)
    lines = [ln for ln in xdevice_lines(r.text) if "sync_file_range" in ln]
    assert len(lines) == 1, r.text
    assert "sync_file_range=wait_before,write:8" in lines[0] and "fdatasync" in lines[0], lines[0]
    assert r.data["jobs"][0]["error"] == 0


@pytest.mark.parametrize("norandommap", [1, 0])
def test_experimental_verify_without_the_random_map_is_explained(engine, tmp_path, disk_dir, norandommap):
    """experimental_verify expects each block's first write; without the
    random map a block written twice fails it, on psync as on xdevice, while
    fio's io_uring engine passes only by writing in its verify pass. The
    failure is explained in one line before it reads as corruption; with
    the random map the job passes and nothing is said."""
    r = run_fio(fio_job(engine, xd={"async": "io_uring"}, filename=disk_dir / "ev", size="1m",
                        bs="4k", rw="randwrite", iodepth=8, verify="crc32c", experimental_verify=1,
                        norandommap=norandommap, randrepeat=1), tmp_path, expect_ok=not norandommap)
    lines = [ln for ln in xdevice_lines(r.text) if "experimental_verify" in ln]
    if norandommap:
        assert len(lines) == 1 and "written twice" in lines[0], r.text
        assert "bad header numberio" in r.text, r.text
        psync = run_fio(["--name=ref", "--ioengine=psync", f"--filename={disk_dir / 'ev.ref'}", "--size=1m",
                         "--bs=4k", "--rw=randwrite", "--verify=crc32c", "--experimental_verify=1",
                         "--norandommap=1", "--randrepeat=1"], tmp_path, expect_ok=False)
        assert "bad header numberio" in psync.text, psync.text
    else:
        assert not lines, r.text
        assert r.data["jobs"][0]["error"] == 0, r.text


def test_end_fsync(engine, tmp_path, disk_dir):
    job, ops, log = sync_job(engine, tmp_path, disk_dir, "sync", end_fsync=1)
    assert log.get("sync") == 1
    assert ops["fsync"]["ops"] == 1, "end_fsync=1 must reach the engine as exactly one fsync"
    assert ops["fdatasync"]["ops"] == 0


# --- trims -----------------------------------------------------------------------

TRIM_FILE = 4 * MiB
TRIM_OFF = 1 * MiB
TRIM_LEN = 2 * MiB


def assert_trimmed(path):
    data = read_range(path, 0, TRIM_FILE)
    assert len(data) == TRIM_FILE
    head, mid, tail = data[:TRIM_OFF], data[TRIM_OFF:TRIM_OFF + TRIM_LEN], data[TRIM_OFF + TRIM_LEN:]
    if mid != bytes(TRIM_LEN):
        first = next(i for i, b in enumerate(mid) if b)
        pytest.fail(f"trimmed range not zero: first nonzero byte at {TRIM_OFF + first}")
    assert head == b"\xa5" * TRIM_OFF, "data before the trimmed range changed"
    assert tail == b"\xa5" * len(tail), "data after the trimmed range changed"


@pytest.mark.parametrize("rw", ["trim", "randtrim"])
def test_trim_regular(engine, tmp_path, disk_dir, rw):
    path = disk_dir / "trim.dat"
    write_pattern(path, TRIM_FILE)
    stats = tmp_path / "s.json"
    r = run_fio(
        fio_job(engine, name="t", xd={"type": "regular", "stats": stats}, filename=path,
                rw=rw, bs="64k", offset=TRIM_OFF, size=TRIM_LEN),
        tmp_path,
    )
    job = r.data["jobs"][0]
    assert job["trim"]["io_bytes"] == TRIM_LEN
    assert load_stats(stats)["jobs"][0]["ops"]["trim"]["bytes"] == TRIM_LEN
    assert os.path.getsize(path) == TRIM_FILE, "a trim must not change the file size"
    assert_trimmed(path)


@pytest.mark.parametrize("rw", ["trim", "randtrim"])
def test_trim_block(engine, tmp_path, loop_dev, rw):
    write_pattern(loop_dev, TRIM_FILE)
    r = run_fio(
        fio_job(engine, name="t", xd={"type": "block", "enable_trim": 1}, filename=loop_dev,
                rw=rw, bs="64k", offset=TRIM_OFF, size=TRIM_LEN),
        tmp_path,
    )
    assert r.data["jobs"][0]["trim"]["io_bytes"] == TRIM_LEN
    assert_trimmed(loop_dev)


@pytest.mark.parametrize("async_mode", ["libaio", "io_uring"])
def test_trim_backlog_writes_whole_size(engine, tmp_path, disk_dir, async_mode):
    """fio's libaio and io_uring engines complete a trim within queue, and
    fio counts a pass's bytes only for queued requests: a trimwrite job
    writes its whole size= besides the trims trim_backlog adds. Queued,
    those trims ended the pass early (905216 of 1 MiB written)."""
    r = run_fio(
        fio_job(engine, name="t", xd={"type": "regular", "async": async_mode},
                directory=disk_dir, rw="randtrimwrite", bs="4k", size="1m", iodepth=8,
                verify="crc32c", verify_fatal=1, trim_percentage=30, trim_backlog=8),
        tmp_path,
    )
    job = r.data["jobs"][0]
    assert job["write"]["io_bytes"] == MiB, job["write"]["io_bytes"]
    # every block read back: the trimmed ones checked as zeros (trim_verify_zero)
    assert job["read"]["io_bytes"] == MiB, job["read"]["io_bytes"]
    assert job["trim"]["io_bytes"] > MiB, "the backlog trims ran too"


# --- many files, readahead ----------------------------------------------------------


def test_max_open_files_evicts(engine, tmp_path, disk_dir):
    stats = tmp_path / "s.json"
    r = run_fio(
        fio_job(engine, name="many", xd={"type": "regular", "max_open_files": 2, "stats": stats},
                directory=disk_dir, nrfiles=8, file_service_type="random", rw="randwrite",
                bs="4k", size=8 * MiB, verify="crc32c", verify_fatal=1),
        tmp_path,
    )
    assert_verified(r.data, size=8 * MiB, njobs=1)
    job = load_stats(stats)["jobs"][0]
    f = job["layers"]["file"]
    assert f["fd_evictions"] > 0, f
    assert f["fd_reopens"] > 0, f
    assert f["open_fds"] <= 2, f
    assert len(list(disk_dir.iterdir())) == 8


@pytest.mark.parametrize("ra_kb", [0, 256, 1048576])
def test_read_ahead_kb(engine, tmp_path, disk_dir, ra_kb):
    stats = tmp_path / "s.json"
    r = run_fio(
        fio_job(engine, name="ra", xd={"type": "regular", "read_ahead_kb": ra_kb, "stats": stats},
                directory=disk_dir, rw="write", bs="16k", size=4 * MiB,
                verify="crc32c", verify_fatal=1),
        tmp_path,
    )
    assert_verified(r.data, size=4 * MiB, njobs=1)
    job = load_stats(stats)["jobs"][0]
    assert job["config"]["read_ahead_kb"] == ra_kb
    layer = job["layers"]["file"]
    advised, mode_changes = layer["readahead_advised"], layer["readahead_mode_changes"]
    if not ra_kb:
        assert advised == 0 and mode_changes == 0, "read_ahead_kb=0 must disable readahead hints"
        return
    # the verify pass reads sequentially: the kernel is told so once
    assert mode_changes >= 1, "sequential reads were never declared sequential to the kernel"
    if ra_kb == 1048576:
        # 1 GiB is beyond any device's own readahead: xdevice advises WILLNEED itself
        assert advised > 0, "read_ahead_kb beyond the kernel's readahead gave no WILLNEED hints"


# --- preallocation -----------------------------------------------------------------


@pytest.mark.parametrize("use_fallocate", [1, 0])
def test_preallocate_files(engine, tmp_path, disk_dir, use_fallocate):
    """The engine creates the file (create_on_open: fio does no layout of its own)
    and reserves its space; the job writes only 4k of it."""
    stats = tmp_path / "s.json"
    size = 8 * MiB
    run_fio(
        fio_job(engine, name="pre",
                xd={"type": "regular", "preallocate_files": 1, "use_fallocate": use_fallocate,
                    "stats": stats},
                directory=disk_dir, create_on_open=1, fallocate="none", rw="write", bs="4k",
                size=size, io_size="4k"),
        tmp_path,
    )
    (path,) = list(disk_dir.iterdir())
    st = os.stat(path)
    assert st.st_size == size
    pre = load_stats(stats)["jobs"][0]["layers"]["file"]["preallocated_bytes"]
    if use_fallocate:
        assert st.st_blocks * 512 >= size, f"only {st.st_blocks * 512} bytes allocated"
        assert pre >= size
    else:
        # ftruncate only: the size is set, the blocks are not reserved
        assert st.st_blocks * 512 < size, "use_fallocate=0 must not reserve blocks"
        assert pre == 0


def test_no_preallocation_by_default(engine, tmp_path, disk_dir):
    """Control for the test above: without preallocate_files the file is sparse."""
    run_fio(
        fio_job(engine, name="nopre", xd={"type": "regular"}, directory=disk_dir,
                create_on_open=1, fallocate="none", rw="write", bs="4k", size=8 * MiB,
                io_size="4k"),
        tmp_path,
    )
    (path,) = list(disk_dir.iterdir())
    assert os.stat(path).st_blocks * 512 < MiB


# --- O_SYNC writes ---------------------------------------------------------------------


@pytest.mark.parametrize("async_mode", ["sync", "io_uring"])
def test_use_sync_writes(engine, tmp_path, disk_dir, async_mode):
    stats = tmp_path / "s.json"
    r = run_fio(
        fio_job(engine, name="osync",
                xd={"type": "regular", "use_sync_writes": 1, "async": async_mode, "stats": stats},
                directory=disk_dir, rw="randwrite", bs="4k", size=2 * MiB, iodepth=8,
                verify="crc32c", verify_fatal=1),
        tmp_path,
    )
    assert_verified(r.data, size=2 * MiB, njobs=1)
    assert load_stats(stats)["jobs"][0]["config"]["use_sync_writes"] is True


# --- reads past the end of a file ----------------------------------------------------


def replay_job(tmp_path, size):
    """An iolog v2 reading blocks 0, 256 and 2 of tmp_path/f, which is made
    size bytes long: a log replayed onto a smaller file reads past its end."""
    data = tmp_path / "f"
    data.unlink(missing_ok=True)
    with open(data, "wb") as f:
        f.truncate(size)
    log = tmp_path / "replay.iolog"
    log.write_text("fio version 2 iolog\n"
                   f"{data} add\n{data} open\n"
                   f"{data} read 0 4096\n{data} read 1048576 4096\n{data} read 8192 4096\n"
                   f"{data} close\n")
    return log


def replay_outcome(r):
    job = r.data["jobs"][0]
    return job["error"], job["read"]["io_bytes"], job["read"]["total_ios"]


@pytest.mark.parametrize("stype,async_mode,iodepth,fio_engine", [
    ("regular", "libaio", 1, "libaio"), ("regular", "io_uring", 1, "io_uring"),
    ("tmpfs", "io_uring", 4, "io_uring"), ("regular", "sync", 1, "psync")])
def test_read_past_the_end_as_fios_engine(engine, tmp_path, shm_dir, stype, async_mode,
                                          iodepth, fio_engine):
    """A read that finds no byte (past the end of a file: an iolog replayed
    onto a smaller one) fails fio's sync path (EIO, "full resid") and
    completes with 0 bytes on its async one: psync fails such a job, libaio
    and io_uring pass it. An async mode driven as a sync engine (iodepth=1,
    or files whose requests complete inline) behaves as the engine the user
    asked for; the old engine failed the libaio and io_uring jobs."""
    opts = dict(read_iolog=replay_job(tmp_path, 64 * 1024), iodepth=iodepth)
    ref = run_fio(["--name=ref", f"--ioengine={fio_engine}", *[f"--{k}={v}" for k, v in opts.items()]],
                  tmp_path, expect_ok=False)
    opts["read_iolog"] = replay_job(tmp_path, 64 * 1024)
    xd = {"type": stype, "async": async_mode}
    if stype == "tmpfs":
        xd["tmpfs_directory"] = shm_dir
    r = run_fio(fio_job(engine, name="xd", xd=xd, **opts), tmp_path, expect_ok=False)
    if stype == "tmpfs":
        # served inline (files on a tmpfs run as a sync engine): the two
        # reads inside the file's 64 KiB count their 8192 bytes, which fio's
        # io_uring engine at iodepth 4 leaves out of its own count (0), as
        # the regular type's inline path with its file on /dev/shm does too
        error, moved, ios = replay_outcome(r)
        assert (error, ios) == (replay_outcome(ref)[0], replay_outcome(ref)[2]), r.text
        assert moved == 8192, r.text
        return
    assert replay_outcome(r) == replay_outcome(ref), r.text
    assert replay_outcome(r)[0] == (5 if fio_engine == "psync" else 0), r.text


# --- pre_read ----------------------------------------------------------------------


PRE_READ_TYPES = ["regular", "mmap", "direct", "tmpfs", "sparse", "compressed", "hybrid"]


@pytest.mark.parametrize("stype", PRE_READ_TYPES)
def test_pre_read_warms_the_chain(engine, tmp_path, disk_dir, shm_dir, stype):
    """pre_read=1 brings each file into memory before the job starts (fio
    reads f->fd, which is not where xdevice keeps data). The engine reads
    the job's range through the chain instead, so with xdevice's cache on
    every read of the job itself is a hit: the misses are the pre-read's
    blocks, no more. The old engine failed the job (err=5, func=pre_read)."""
    xd = {"type": stype, "enable_read_cache": "true", "cache_size": "16m",
          "stats": tmp_path / "stats.json"}
    if stype in ("tmpfs", "hybrid"):
        xd["tmpfs_directory" if stype == "tmpfs" else "hot_directory"] = shm_dir
    common = dict(bs="4k", size=2 * MiB, nrfiles=2, filename_format="pre.$filenum")
    run_fio(fio_job(engine, name="mk", xd={k: v for k, v in xd.items() if k != "stats"},
                    directory=disk_dir, rw="write", **common), tmp_path)
    r = run_fio(fio_job(engine, name="r", xd=xd, directory=disk_dir, rw="randread",
                        pre_read=1, **common), tmp_path)
    assert r.data["jobs"][0]["error"] == 0, r.text
    reads = r.data["jobs"][0]["read"]["io_bytes"] // 4096
    assert reads == 2 * MiB // 4096, r.data["jobs"][0]["read"]
    cache = [j for j in load_stats(tmp_path / "stats.json")["jobs"]
             if j["name"] == "r"][0]["layers"]["cache"]
    assert cache["misses"] == 2 * MiB // 4096, cache  # the pre-read's, each block once
    assert cache["hits"] == reads, cache


# --- allow_file_create=0 -------------------------------------------------------------


@pytest.mark.parametrize("stype", PRE_READ_TYPES)
def test_allow_file_create_0_makes_nothing(engine, tmp_path, disk_dir, shm_dir, stype):
    """allow_file_create=0: a missing file is an error and nothing is made,
    as with fio's own engines (the compressed and hybrid types made theirs
    in setup or at open, and ran); an existing one is used."""
    xd = {"type": stype}
    if stype in ("tmpfs", "hybrid"):
        xd["tmpfs_directory" if stype == "tmpfs" else "hot_directory"] = shm_dir
    job = dict(directory=disk_dir, bs="4k", size=1 * MiB, verify="crc32c")
    r = run_fio(fio_job(engine, name="nc", xd=xd, rw="randwrite", allow_file_create=0, **job),
                tmp_path, expect_ok=False)
    assert r.rc != 0, r.text
    assert "allow_file_create=0" in r.text, r.text
    assert not any(disk_dir.iterdir()) and not any(shm_dir.iterdir()), \
        (list(disk_dir.iterdir()), list(shm_dir.iterdir()))
    run_fio(fio_job(engine, name="nc", xd=xd, rw="write", **job), tmp_path)
    r = run_fio(fio_job(engine, name="nc", xd=xd, rw="randrw", allow_file_create=0, **job),
                tmp_path)
    assert r.data["jobs"][0]["error"] == 0, r.text


# --- a read job on a file it may not write ------------------------------------------


READ_ONLY_CASES = [("regular", {}), ("mmap", {}), ("direct", {}), ("sparse", {}),
                   ("compressed", {}), ("regular", {"enable_checksums": "true"}),
                   ("regular", {"enable_redundancy": "true", "redundancy_factor": "2"})]


@pytest.mark.parametrize("stype,extra", READ_ONLY_CASES,
                         ids=[t + "".join(f"-{k}" for k in x) for t, x in READ_ONLY_CASES])
def test_read_job_on_a_read_only_file(engine, tmp_path, disk_dir, stype, extra):
    """A job that only reads a file it may not write (mode 0444, run as
    nobody when root, who may write any file) passes and leaves the file as
    it was, as with fio's psync, which opens it O_RDONLY: xdevice opened it
    for writing and failed the job with EACCES. A job that writes it still
    fails, as psync's does."""
    as_user = {}
    if os.geteuid() == 0:
        as_user = dict(user=65534, group=65534)
        os.chown(disk_dir, 65534, 65534)
    xd = {"type": stype, **extra}
    if "redundancy_factor" in extra:
        mirror = disk_dir / "mirror"
        mirror.mkdir()
        if as_user:
            os.chown(mirror, 65534, 65534)
        xd["mirror_directories"] = mirror
    path = disk_dir / "ro"
    job = dict(filename=path, bs="4k", size=1 * MiB, verify="crc32c", verify_state_save=0)

    def fio(name, **opts):
        return subprocess.run([FIO, *fio_job(engine, name=name, xd=xd, **job, **opts)],
                              capture_output=True, text=True, timeout=120, cwd=disk_dir,
                              **as_user)

    w = fio("w", rw="write")
    assert w.returncode == 0, w.stdout + w.stderr
    os.chmod(path, 0o444)
    before = path.read_bytes()
    r = fio("r", rw="read", verify_only=1)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "err= 0" in out and "verify" not in out.replace("verify_only", ""), out
    assert path.read_bytes() == before
    w = fio("w2", rw="randwrite")
    assert w.returncode != 0, w.stdout + w.stderr


# --- a read job never makes the file it reads ---------------------------------------


@pytest.mark.parametrize("stype", ["regular", "mmap", "direct", "sparse", "compressed"])
def test_read_job_makes_no_file(engine, tmp_path, disk_dir, stype):
    """A job that only reads opens what is there, as fio's psync does: a
    second loop after unlink_each_loop=1 finds the file gone and fails
    (ENOENT), as psync's does; the engine's open used to make a new file of
    zeros there and pass. A read job with create_on_open=1 on a missing
    file fails too (psync makes it empty and fails with EIO at the first
    read) rather than read zeros from a full-size file the open made up.
    (The types whose files the engine makes, fio never lays out, have them
    made and laid out in setup: README; never at a read job's open.)"""
    f = disk_dir / "rj"
    job = dict(name="rj", xd={"type": stype}, filename=f, bs="4k", size=MiB)
    run_fio(fio_job(engine, rw="write", **job), tmp_path)
    looped = run_fio(fio_job(engine, rw="read", loops=2, unlink_each_loop=1, **job), tmp_path,
                     expect_ok=False)
    assert looped.rc != 0 and looped.data["jobs"][0]["error"] == 2, looped.text
    assert not f.exists()
    if stype == "compressed":
        return  # create_on_open: setup makes the container, its stand-in for fio's layout
    made = run_fio(fio_job(engine, rw="read", create_on_open=1, **job), tmp_path, expect_ok=False)
    assert made.rc != 0, made.text
    assert not f.exists() or f.stat().st_size == 0, f.stat().st_size


@pytest.mark.parametrize("stype", ["regular", "compressed", "hybrid", "tmpfs"])
def test_replayed_read_of_a_missing_file_makes_none(engine, tmp_path, disk_dir, shm_dir, stype):
    """An iolog that only reads a file that is not there: fio's setup never
    sees the file (the log adds it), and psync fails the job with ENOENT at
    the log's open. The engine does the same on every type: the types whose
    files it makes used to make an empty one at that open and fail later,
    at the first read past its end (EIO), leaving a file a read job made."""
    data = disk_dir / "never"
    log = tmp_path / "reads.iolog"
    log.write_text("fio version 2 iolog\n"
                   f"{data} add\n{data} open\n{data} read 0 4096\n{data} close\n")
    ref = run_fio(["--name=ref", "--ioengine=psync", f"--read_iolog={log}"], tmp_path,
                  expect_ok=False)
    assert ref.data["jobs"][0]["error"] == errno.ENOENT, ref.text
    xd = {"type": stype}
    if stype in ("hybrid", "tmpfs"):
        xd["hot_directory" if stype == "hybrid" else "tmpfs_directory"] = shm_dir
    r = run_fio(fio_job(engine, name="xd", xd=xd, read_iolog=log), tmp_path, expect_ok=False)
    assert r.rc != 0 and r.data["jobs"][0]["error"] == errno.ENOENT, r.text
    assert not data.exists()
    assert not any(shm_dir.iterdir()), list(shm_dir.iterdir())


# --- unlink=1 ------------------------------------------------------------------------


UNLINK_CASES = [("regular", {}), ("regular", {"enable_checksums": "true"}),
                ("regular", {"enable_read_cache": "true"}), ("mmap", {}),
                ("sparse", {}), ("compressed", {}), ("tmpfs", {}),
                ("tmpfs", {"backup_to_disk": "true"}), ("tmpfs", {"enable_checksums": "true"}),
                ("hybrid", {}),
                ("hybrid", {"enable_checksums": "true", "tier_write_back": "true"})]


@pytest.mark.parametrize("stype,extra", UNLINK_CASES,
                         ids=[t + "".join(f"-{k}" for k in x) for t, x in UNLINK_CASES])
def test_unlink_removes_what_xdevice_kept(engine, tmp_path, disk_dir, shm_dir, stype, extra):
    """unlink=1 (two job processes) leaves nothing behind:
    not the file, nor what xdevice kept for it (tmpfs copies, the hybrid
    type's hot copy, tag, map and shared state, checksum sidecars, the read
    cache's shared generations: fio's own
    unlink removed only the file, and the tmpfs copies held RAM until
    reboot). Files xdevice did not make stay."""
    xd = {"type": stype, **extra}
    if stype in ("tmpfs", "hybrid"):
        xd["tmpfs_directory" if stype == "tmpfs" else "hot_directory"] = shm_dir
    for d in (disk_dir, shm_dir):
        (d / "keep").write_text("not xdevice's")
    # the hybrid type's shared state is named by its cold file's device and
    # inode: made here first (the type takes an empty file as one to lay
    # out), so the names are known whatever other runs on the machine make;
    # each file held open to the end, so that once fio removed it its inode
    # number (and the name) cannot go to a file another test makes
    shared_state, held = set(), []
    if stype == "hybrid":
        for name in ("u.0.0", "u.1.0"):
            (disk_dir / name).touch()
            held.append(os.open(disk_dir / name, os.O_RDONLY))
            st = os.fstat(held[-1])
            shared_state.add(f"xdevice-tier-{st.st_dev:x}-{st.st_ino:x}")
    if "enable_read_cache" in extra:  # the caches' generations, named the same way
        for name in ("u.0.0", "u.1.0"):
            (disk_dir / name).write_bytes(bytes(MiB))  # laid out: fio keeps it
            held.append(os.open(disk_dir / name, os.O_RDONLY))
            st = os.fstat(held[-1])
            shared_state.add(f"xdevice-cache-{st.st_dev:x}-{st.st_ino:x}-0")
    # a file each: a job that unlinks a file another still uses breaks fio's
    # verify (it reopens files by name), with fio's own engines too
    args = fio_job(engine, name="u", xd=xd, directory=disk_dir, rw="randwrite", bs="4k",
                   size=1 * MiB, numjobs=2, verify="crc32c", fsync=16, unlink=1)
    try:
        assert_verified(run_fio(args, tmp_path).data, njobs=2)
        for d in (disk_dir, shm_dir):
            assert sorted(p.name for p in d.iterdir()) == ["keep"], list(d.iterdir())
        left = shared_state & set(os.listdir("/dev/shm"))
        assert not left, left
    finally:
        for fd in held:
            os.close(fd)


# --- direct=1 and sync= -------------------------------------------------------------


def open_flags(pid, path, want, deadline):
    """The open(2) flags of pid's descriptors of path, polled until one has
    every bit of want (fio's own layout, or the engine's setup, may hold the
    file open for a moment without them), or the deadline: then the last
    flags seen (None: the file was never open)."""
    seen = None
    while time.monotonic() < deadline:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            fds = []
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") != str(path):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    flags = [int(ln.split()[1], 8) for ln in info if ln.startswith("flags:")]
            except OSError:
                continue
            seen = flags[0] if flags else seen
            if seen is not None and seen & want == want:
                return seen
        time.sleep(0.02)
    return seen


OPEN_CASES = [(t, o, f) for t in ("regular", "sparse", "direct")
              for o, f in (("direct=1", os.O_DIRECT), ("sync=1", os.O_SYNC),
                           ("sync=dsync", os.O_SYNC))] + [("compressed", "sync=1", os.O_SYNC)]


@pytest.mark.parametrize("stype,option,flag", OPEN_CASES)
def test_fio_open_options_reach_the_file(engine, tmp_path, disk_dir, stype, option, flag):
    """fio's direct=1 and sync= say how the job's files are opened; xdevice
    opened them buffered without a word (the job measured the page cache).
    Now the data file is opened O_DIRECT or O_SYNC (use_direct_io,
    use_sync_writes), seen in /proc while the job runs."""
    path = disk_dir / "o"
    key, value = option.split("=")
    cmd = [FIO, *fio_job(engine, name="o", xd={"type": stype}, filename=path, rw="randwrite",
                         bs="4k", size=1 * MiB, time_based=None, runtime=30, rate_iops=50,
                         thread=None, **{key: value})]
    p = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    try:
        flags = open_flags(p.pid, path, flag, time.monotonic() + 20)
    finally:
        p.terminate()
        out = p.communicate(timeout=60)[0]
    assert flags is not None, f"fio never opened {path}:\n{out}"
    assert flags & flag == flag, (oct(flags), out)


@pytest.mark.parametrize("stype", ["mmap", "compressed"])
def test_direct_1_on_a_type_in_memory_runs_buffered_with_a_note(engine, tmp_path, disk_dir,
                                                                stype):
    """A type that cannot bypass the page cache runs a direct=1 job buffered
    (as fio's own mmap engine does), and says so once on stderr."""
    r = run_fio(fio_job(engine, name="d", xd={"type": stype}, directory=disk_dir,
                        rw="randwrite", bs="4k", size=1 * MiB, direct=1, numjobs=2,
                        verify="crc32c"), tmp_path)
    notes = [ln for ln in r.text.splitlines() if "direct=1" in ln]
    assert len(notes) == 1 and "runs buffered" in notes[0], r.text
    assert_verified(r.data, njobs=2)


def test_sync_1_on_the_mmap_type_syncs_every_write(engine, tmp_path, disk_dir):
    """The mmap type's descriptor is not opened O_SYNC: with sync=1 each
    write is fdatasync'd before it completes (the driver counts them)."""
    stats = tmp_path / "s.json"
    r = run_fio(fio_job(engine, name="m", xd={"type": "mmap", "stats": stats},
                        filename=disk_dir / "m", rw="randwrite", bs="4k", size=256 * 1024,
                        sync=1, verify="crc32c"), tmp_path)
    assert_verified(r.data)
    layers = load_stats(stats)["jobs"][0]["layers"]
    assert layers["mmap"]["writes_synced"] >= 64, layers["mmap"]


@pytest.mark.parametrize("xd", [{"enable_read_cache": "true", "enable_write_cache": "true"},
                                {"type": "hybrid", "tier_write_back": "true"}])
def test_sync_1_with_a_write_back_layer_is_one_line(engine, tmp_path, disk_dir, shm_dir, xd):
    """sync=1 asks that writes be durable on return; a write-back cache or
    hot tier completes them before the file has them: refused, one line."""
    xd = dict(xd)
    if xd.get("type") == "hybrid":
        xd["hot_directory"] = shm_dir
    r = run_fio(fio_job(engine, name="s", xd=xd, filename=disk_dir / "s", rw="randwrite",
                        bs="4k", size=256 * 1024, sync=1), tmp_path, expect_ok=False)
    lines = [ln for ln in r.text.splitlines() if ln.startswith("xdevice:")]
    assert r.rc != 0 and len(lines) == 1, r.text
    assert "use_sync_writes=true (fio option sync)" in lines[0] and "write-back" in lines[0], lines
