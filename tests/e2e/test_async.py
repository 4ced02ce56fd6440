"""xd_async: libaio and io_uring keep requests in flight; sync caps fio at depth 1.

fio records, at each submission, how many requests were in flight
(iodepth_level, percentages by bucket "1", "2", "4", "8", "16", "32", ">=64";
bucket "32" means 32..63). An engine that completes everything inside queue()
never gets past depth 1; one that fakes async (does the I/O in queue() but
answers "queued") shows depth, but then fio sees the time in submission
latency rather than completion latency, which test_direct_io_uring_depth checks.
"""
import shutil

import pytest

from conftest import MiB, assert_verified, fio_job, load_stats, run_fio

DEPTH = 32


def levels(job):
    return {k: float(v) for k, v in job["iodepth_level"].items()}


@pytest.mark.parametrize("async_mode", ["libaio", "io_uring"])
@pytest.mark.parametrize("files", ["disk", "tmpfs and disk"])
def test_regular_async_depth(engine, tmp_path, disk_dir, request, async_mode, files):
    """Disk files keep the queue; so does a job with one file on a tmpfs and
    one on a disk (only a job whose every file is served inline runs as a
    sync engine, test_tmpfs_file_runs_as_sync_engine)."""
    if files == "disk":
        where = {"directory": disk_dir}
    else:
        where = {"filename": f"{request.getfixturevalue('shm_dir')}/a:{disk_dir}/b"}
    r = run_fio(
        fio_job(
            engine,
            name="depth",
            xd={"type": "regular", "async": async_mode},
            **where,
            rw="randwrite",
            bs="4k",
            size=16 * MiB,
            iodepth=DEPTH,
        ),
        tmp_path,
    )
    lv = levels(r.data["jobs"][0])
    assert lv["32"] > 0, f"xd_async={async_mode} never reached depth 32: {lv}"
    assert lv["1"] < 50, f"xd_async={async_mode} mostly ran at depth 1: {lv}"


def test_sync_caps_depth_at_one(engine, tmp_path, disk_dir):
    r = run_fio(
        fio_job(
            engine,
            name="sync",
            xd={"type": "regular", "async": "sync"},
            directory=disk_dir,
            rw="randwrite",
            bs="4k",
            size=4 * MiB,
            iodepth=DEPTH,
        ),
        tmp_path,
    )
    lv = levels(r.data["jobs"][0])
    assert lv["1"] == pytest.approx(100.0), f"xd_async=sync must run at depth 1: {lv}"
    assert all(v == 0 for k, v in lv.items() if k != "1"), lv



def on_a_tmpfs(xd_type, async_mode, shm_dir, disk_dir):
    """The xd options and directory of a job whose file is on a tmpfs: the
    regular type's in shm_dir, the tmpfs type's copy there too (not in the
    shared /dev/shm/xdevice-UID, where it would outlive the test)."""
    if xd_type == "regular":
        return {"type": xd_type, "async": async_mode}, shm_dir
    return {"type": xd_type, "async": async_mode, "tmpfs_directory": shm_dir}, disk_dir


@pytest.mark.parametrize("async_mode", ["libaio", "io_uring"])
@pytest.mark.parametrize("xd_type", ["regular", "tmpfs"])
def test_tmpfs_file_runs_as_sync_engine(engine, tmp_path, shm_dir, disk_dir, async_mode, xd_type):
    """On a tmpfs the regular type serves every request inline in any async
    mode, and so does the tmpfs type (its copies live on a tmpfs): a job
    that does not verify is driven as a sync engine (depth 1), with a
    completion latency of its own (issue_time stamped before the request,
    not after), and without fio's "capped at 1" note in the JSON stream.
    (A verify job is driven as fio's async engines drive theirs:
    test_verify_job_queues_like_fio_async_engines.)"""
    xd, where = on_a_tmpfs(xd_type, async_mode, shm_dir, disk_dir)
    r = run_fio(
        fio_job(
            engine,
            name="inline",
            xd=xd,
            directory=where,
            rw="randrw",
            bs="4k",
            size=8 * MiB,
            iodepth=DEPTH,
        ),
        tmp_path,
    )
    job = r.data["jobs"][0]
    lv = levels(job)
    assert lv["1"] == pytest.approx(100.0), f"{async_mode} on a tmpfs file reached depth > 1: {lv}"
    w = job["write"]
    assert w["clat_ns"]["mean"] > 0 and w["clat_ns"]["min"] > 0, w["clat_ns"]
    # fio's t0015 check: mean slat + mean clat = mean lat
    assert abs(w["slat_ns"]["mean"] + w["clat_ns"]["mean"] - w["lat_ns"]["mean"]) <= 1, w
    assert "capped at 1" not in r.text, r.text


@pytest.mark.parametrize("async_mode", ["libaio", "io_uring"])
@pytest.mark.parametrize("xd_type", ["regular", "tmpfs"])
def test_tmpfs_long_writes_queue_under_io_uring(engine, tmp_path, shm_dir, disk_dir, async_mode,
                                                xd_type):
    """Writes of 64 KiB or more to a file on a tmpfs go to io_uring's
    workers, which copy them while fio fills its next buffer (the job keeps
    its depth); libaio copies inside io_submit anyway, so there they stay
    inline (depth 1). Then a verify pass over the same 4k-256k writes and
    reads, with fsyncs among them, reads back what was written."""
    xd, where = on_a_tmpfs(xd_type, async_mode, shm_dir, disk_dir)
    job_opts = dict(directory=where, rw="randwrite", bsrange="4k-256k", size=16 * MiB,
                    iodepth=8, fsync=7, buffer_compress_percentage=50)
    r = run_fio(fio_job(engine, name="check", xd=xd, verify="crc32c", verify_fatal=1,
                        **job_opts), tmp_path)
    job = r.data["jobs"][0]
    assert job["error"] == 0 and job["read"]["io_bytes"] == 16 * MiB, job["read"]
    job = run_fio(fio_job(engine, name="long", xd=xd, **job_opts), tmp_path).data["jobs"][0]
    lv = levels(job)
    deeper = sum(v for k, v in lv.items() if k != "1")  # fio's "1" can pass 100 with fsyncs
    if async_mode == "io_uring":
        assert deeper > 0, f"io_uring on a tmpfs file never queued a long write: {lv}"
    else:
        assert deeper == 0, f"libaio on a tmpfs file reached depth > 1: {lv}"


@pytest.mark.parametrize("depth", [1, 4])
@pytest.mark.parametrize("async_mode", ["libaio", "io_uring"])
@pytest.mark.parametrize("xd_type", ["tmpfs", "regular"])
def test_verify_job_queues_like_fio_async_engines(engine, tmp_path, shm_dir, disk_dir, xd_type,
                                                  async_mode, depth):
    """A verify job in an async mode is driven as fio's libaio and io_uring
    engines drive theirs, every request queued, at any depth and on files
    whose requests complete inline. fio keeps its books differently on the
    two paths, and this job (holes between requests, unaligned sizes, two
    loops) fails to verify on fio's psync and mmap engines and passes on
    its libaio and io_uring ones; driven as a sync engine, every type failed
    it the same way."""
    xd = {"type": xd_type, "async": async_mode}
    if xd_type == "tmpfs":
        xd["tmpfs_directory"] = shm_dir
    r = run_fio(
        fio_job(engine, name="holes", xd=xd, directory=disk_dir, rw="rw:8k", bsrange="512-24k",
                bs_unaligned=1, size=512 * 1024, loops=2, iodepth=depth, verify="xxhash",
                verify_fatal=1, do_verify=1),
        tmp_path,
    )
    job = r.data["jobs"][0]
    assert job["error"] == 0 and job["read"]["io_bytes"] > 0, job
    if depth > 1:
        assert sum(v for k, v in levels(job).items() if k != "1") > 0, levels(job)


@pytest.mark.parametrize("async_mode", ["libaio", "io_uring"])
def test_mmap_type_is_driven_as_fios_mmap_engine(engine, tmp_path, disk_dir, async_mode):
    """The mmap type's counterpart is fio's mmap engine, a sync engine, in
    any mode: its requests never stay in flight. A verify job whose books
    part the other way from the test above (random, unaligned sizes,
    time_based) passes on fio's mmap and psync engines and fails to verify
    on its libaio and io_uring ones, and failed on the mmap type driven
    queued (make torture, seed 601744212)."""
    r = run_fio(
        fio_job(engine, name="mixed", xd={"type": "mmap", "async": async_mode}, directory=disk_dir,
                rw="randrw", rwmixread=10, bsrange="512-24k", bs_unaligned=1, size=512 * 1024,
                iodepth=16, time_based=1, runtime="1s", verify="sha256", verify_fatal=1,
                do_verify=1),
        tmp_path,
    )
    job = r.data["jobs"][0]
    assert job["error"] == 0 and job["read"]["io_bytes"] > 0, job
    assert set(k for k, v in levels(job).items() if v) <= {"1"}, levels(job)


def direct_randread(engine, tmp_path, disk_dir, **extra):
    r = run_fio(
        fio_job(
            engine,
            name="dread",
            xd={"type": "direct", "async": "io_uring"},
            directory=disk_dir,
            rw="randread",
            bs="4k",
            size=16 * MiB,
            iodepth=DEPTH,
            **extra,
        ),
        tmp_path,
    )
    job = r.data["jobs"][0]
    lv = levels(job)
    assert job["read"]["total_ios"] == 16 * MiB // 4096
    assert lv["32"] > 0, f"direct io_uring never reached depth 32: {lv}"
    assert lv["1"] < 50, lv
    # Really in flight: the time is spent between submission and completion.
    # A request done inside queue() - whether reported as completed or
    # (faked) as queued - has a completion latency of a few hundred ns while
    # its total latency holds the whole read.
    clat, lat = job["read"]["clat_ns"]["mean"], job["read"]["lat_ns"]["mean"]
    assert clat >= lat / 2, f"completion latency {clat} ns is a small part of total {lat} ns"


def test_direct_io_uring_depth(engine, tmp_path, disk_dir):
    direct_randread(engine, tmp_path, disk_dir)


def test_direct_io_uring_depth_aligned_buffers(engine, tmp_path, disk_dir):
    """With page-aligned buffers (iomem_align) aligned requests go to the queue."""
    direct_randread(engine, tmp_path, disk_dir, iomem_align="4k")


@pytest.mark.parametrize("async_mode", ["libaio", "io_uring"])
def test_fsync_behind_inflight_direct_writes_completes(engine, tmp_path, disk_dir, async_mode):
    """An fsync queued behind in-flight O_DIRECT writes (io_uring drains it)
    must complete. A ring set up with DEFER_TASKRUN hung here about one run in
    six, so the job is repeated; each run takes well under a second."""
    for attempt in range(12):
        r = run_fio(
            fio_job(
                engine,
                name="fsyncdrain",
                xd={"type": "direct", "async": async_mode},
                directory=disk_dir,
                rw="randwrite",
                bsrange="4k-16k",
                size=8 * MiB,
                iodepth=8,
                numjobs=2,
                thread=None,
                fsync=16,
                verify="crc32c",
                verify_fatal=1,
                verify_backlog=32,
            ),
            tmp_path,
            timeout=60,
        )
        assert all(j["error"] == 0 for j in r.data["jobs"]), f"attempt {attempt}"


def fixed_buffer_ios(stats_path):
    """Reads and writes the job's io_uring queue sent as fixed buffers."""
    job = load_stats(stats_path)["jobs"][0]
    return job["layers"]["file"]["fixed_buffer_ios"]


@pytest.mark.parametrize("mem", ["malloc", "shm", "mmapshared"])
def test_direct_io_uring_uses_fixed_buffers(engine, tmp_path, disk_dir, mem):
    """The engine tells the device where fio's buffers lie (its post_init,
    xd_register_memory): under io_uring every read and write into them goes
    as a fixed-buffer request, and fio verifies every byte written that way
    with reads made the same way, whatever memory fio's buffers are in."""
    stats = tmp_path / "xd.json"
    r = run_fio(
        fio_job(
            engine,
            name="fixed",
            xd={"type": "direct", "async": "io_uring", "stats": stats},
            directory=disk_dir,
            rw="randwrite",
            bs="4k",
            size=4 * MiB,
            iodepth=DEPTH,
            mem=mem,
            verify="crc32c",
            verify_fatal=1,
        ),
        tmp_path,
    )
    assert_verified(r.data, size=4 * MiB)
    ios = 2 * 4 * MiB // 4096  # the writes and the verify's reads
    assert fixed_buffer_ios(stats) == ios, f"mem={mem}: {fixed_buffer_ios(stats)} of {ios} went fixed"
    assert "fixed buffers" not in r.text, r.text


def test_refused_registration_is_said_once(engine, tmp_path, disk_dir):
    """Where the kernel refuses to register the job's buffers (more than the
    locked-memory limit, for a process without CAP_IPC_LOCK: any non-root
    user's 8 MiB default), the job still runs and verifies with plain
    requests, and stderr says so once, with the limit, rather than leaving
    only a zero counter in the stats; fio's JSON stays clean."""
    for tool in ("prlimit", "setpriv"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} (util-linux) is not installed")
    stats = tmp_path / "xd.json"
    wrap = ["prlimit", f"--memlock={1 * MiB}",
            "setpriv", "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock"]
    r = run_fio(
        fio_job(engine, name="capped", xd={"type": "direct", "async": "io_uring", "stats": stats},
                directory=disk_dir, rw="randwrite", bs="64k", size=4 * MiB, iodepth=DEPTH,
                verify="crc32c", verify_fatal=1),
        tmp_path, wrap=wrap)
    assert_verified(r.data, size=4 * MiB)
    assert fixed_buffer_ios(stats) == 0
    said = [ln for ln in r.text.splitlines() if "did not register" in ln]
    assert len(said) == 1, r.text
    assert said[0].startswith("xdevice: ") and "locked-memory limit 1024 KiB" in said[0], said[0]
    # a job that opens its file once (no verify pass) hears it at the close
    r = run_fio(
        fio_job(engine, name="capped", xd={"type": "direct", "async": "io_uring"},
                directory=disk_dir, rw="randread", bs="64k", size=4 * MiB, iodepth=DEPTH),
        tmp_path, wrap=wrap)
    assert r.data["jobs"][0]["read"]["io_bytes"] == 4 * MiB
    assert sum("did not register" in ln for ln in r.text.splitlines()) == 1, r.text


def test_replayed_iolog_registers_no_memory(engine, tmp_path, disk_dir):
    """A job that replays an I/O log may have its buffers freed and made
    again by fio mid-run (when the log asks for a larger block): the engine
    registers nothing for it, so no request can land in pages freed under
    the registration; the replay still reads what the log says."""
    log = tmp_path / "iolog"
    run_fio(fio_job(engine, name="rec", xd={"type": "direct", "async": "io_uring"}, directory=disk_dir,
                    rw="randwrite", bs="4k", size=1 * MiB, iodepth=8, write_iolog=log), tmp_path)
    stats = tmp_path / "xd.json"
    # no directory or size: the log names the file (fio 3.33's own engines
    # crash replaying a log with --directory and --size given as well)
    r = run_fio(fio_job(engine, name="replay", xd={"type": "direct", "async": "io_uring", "stats": stats},
                        read_iolog=log, bs="4k", iodepth=8), tmp_path)
    job = r.data["jobs"][0]
    assert job["error"] == 0 and job["write"]["io_bytes"] > 0, job["write"]
    assert fixed_buffer_ios(stats) == 0
