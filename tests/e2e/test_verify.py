"""Write then verify, on every storage type, every async mode, threads and processes.

Each job writes its own 8 MiB at random 4k offsets with up to 16 requests in
flight, then fio reads it all back and checks crc32c. The data must come back
intact, and fio must have verified as many bytes as it wrote (a short write
fio resubmitted, or a stale block, would otherwise slip through).
"""
import pytest

from conftest import (
    ASYNC_MODES,
    PROC_MODES,
    MiB,
    assert_verified,
    fio_job,
    load_stats,
    run_fio,
)

TYPES = ["regular", "mmap", "direct", "tmpfs", "block", "sparse", "hybrid"]

# The hybrid type with migration forced: every extent touched once is a
# candidate, a pass runs after every 32 requests to the file (on any
# machine, however fast) and on the xd-migrate thread every 100 ms (racing
# the data path), the hot tier holds 8 of 32 extents, and hot extents idle
# for 150 ms are demoted, so extents move between the tiers while the jobs
# write and verify.
HYBRID_CHURN = {
    "hot_access_threshold": 1,
    "migration_interval_requests": 32,
    "migration_interval_sec": 0.1,
    "cold_timeout_sec": 0.15,
    "tier_extent_size": "256k",
    "hot_cache_size": "2m",
}
SIZE = 8 * MiB
NJOBS = 2


def target(kind, request, disk_dir):
    """fio options (where the data goes) and xd options for a storage type."""
    if kind == "block":
        dev = request.getfixturevalue("loop_dev")
        # both jobs share the device: give each its own 8 MiB region
        return {"filename": dev, "offset_increment": SIZE}, {}
    if kind == "tmpfs":
        shm = request.getfixturevalue("shm_dir")
        return {"directory": disk_dir}, {"tmpfs_directory": shm}
    if kind == "hybrid":
        shm = request.getfixturevalue("shm_dir")
        return {"directory": disk_dir}, {"hot_directory": shm, **HYBRID_CHURN}
    return {"directory": disk_dir}, {}


def verify_job(engine, kind, async_mode, proc, where, xd_extra, **over):
    opts = dict(
        where,
        rw="randwrite",
        bs="4k",
        size=SIZE,
        numjobs=NJOBS,
        iodepth=16,
        verify="crc32c",
        verify_fatal=1,
        do_verify=1,
    )
    opts.update(over)
    xd = {"type": kind, "async": async_mode, **xd_extra}
    return fio_job(engine, name=f"v-{kind}", xd=xd, **opts) + PROC_MODES[proc]


@pytest.mark.parametrize("proc", list(PROC_MODES))
@pytest.mark.parametrize("async_mode", ASYNC_MODES)
@pytest.mark.parametrize("kind", TYPES)
def test_write_then_verify(engine, tmp_path, disk_dir, request, kind, async_mode, proc):
    where, xd = target(kind, request, disk_dir)
    r = run_fio(verify_job(engine, kind, async_mode, proc, where, xd), tmp_path)
    assert_verified(r.data, size=SIZE, njobs=NJOBS)


@pytest.mark.parametrize("write_back", [0, 1], ids=["write-through", "write-back"])
@pytest.mark.parametrize("kind", TYPES + ["compressed"])
def test_verify_through_the_cache(engine, tmp_path, disk_dir, request, kind, write_back):
    """xdevice's cache on every type (libaio here; test_cache.py covers the
    other modes): two jobs in one process share one cache, smaller than
    what they write, so blocks are evicted and, in write-back, flushed by
    fsync and the flusher before fio reads them back."""
    where, xd = target(kind, request, disk_dir)
    xd.update(enable_read_cache=1, enable_write_cache=write_back, cache_size="4m")
    r = run_fio(verify_job(engine, kind, "libaio", "thread", where, xd, fsync=8), tmp_path)
    assert_verified(r.data, size=SIZE, njobs=NJOBS)


# The direct type takes requests of any size and offset and serves the parts
# that are not io_alignment-aligned through bounce buffers (read-modify-write
# at the edges). fio's own direct=1 is deliberately not set: fio would then
# refuse or align the requests itself, and the engine's path would not run.
UNALIGNED = {
    "bs3k": dict(bs="3k"),
    "bsrange-unaligned": dict(bsrange="512-64k", bs_unaligned=1),
    "seq-bsrange-unaligned": dict(rw="write", bsrange="512-64k", bs_unaligned=1),
}


@pytest.mark.parametrize("async_mode", ASYNC_MODES)
@pytest.mark.parametrize("shape", list(UNALIGNED))
def test_direct_unaligned_verify(engine, tmp_path, disk_dir, shape, async_mode):
    stats = tmp_path / "stats.json"
    args = verify_job(
        engine, "direct", async_mode, "thread", {"directory": disk_dir},
        {"stats": stats}, **UNALIGNED[shape],
    )
    r = run_fio(args, tmp_path)
    assert_verified(r.data, njobs=NJOBS)
    for j in r.data["jobs"]:
        # the whole file was written (bs_unaligned may leave a tail smaller than bs)
        assert j["write"]["io_bytes"] >= SIZE - 64 * 1024, j["write"]["io_bytes"]
    # the unaligned requests really went through the bounce path
    doc = load_stats(stats)
    bounced = sum(j["layers"]["file"]["bounced"] for j in doc["jobs"])
    assert bounced > 0, doc["jobs"][0]["layers"]
