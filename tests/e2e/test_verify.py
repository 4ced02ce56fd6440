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
# candidate (sequential streams too: the verify phase reads in order), a
# pass runs after every 32 requests to the file (on any machine, however
# fast) and on the xd-migrate thread every 100 ms (racing the data path),
# the hot tier holds 8 of 32 extents, and hot extents idle for 150 ms are
# demoted, so extents move between the tiers while the jobs write and
# verify.
HYBRID_CHURN = {
    "hot_access_threshold": 1,
    "tier_sequential_cutoff": 0,
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


# --- the deepest chain -------------------------------------------------------------
#
# Every optional layer a type allows, at once: stats -> checkpoint -> cache ->
# retry -> mirror -> checksum -> [sparse] -> fault -> the driver, nine layers
# on regular and direct. Such a chain was refused at open, first for its
# depth (more than 8 layers) and then for its per-request state (104 bytes
# of the 96 xd_req holds), though the schema lets a user ask for it. The
# fault layer fails chosen reads and writes once (a transient EIO): a copy
# that failed is served or rewritten from the other, or the whole request
# is retried, so fio must still verify every byte.
FULL_CHAIN_TYPES = ["regular", "mmap", "direct", "sparse"]  # the types the mirror takes
FULL_CHAIN_LAYERS = ["stats", "checkpoint", "cache", "retry", "mirror", "checksum", "fault"]


def full_chain_job(engine, kind, async_mode, disk_dir, tmp_path, fault_every, **over):
    for d in ("data", "copy", "sums", "ckpt"):
        (disk_dir / d).mkdir(exist_ok=True)
    stats = tmp_path / "stats.json"
    xd = {
        "type": kind, "async": async_mode, "stats": stats,
        "enable_read_cache": 1, "cache_size": "1m",
        "enable_checksums": 1, "checksum_directory": disk_dir / "sums",
        "enable_redundancy": 1, "redundancy_factor": 2, "mirror_directories": disk_dir / "copy",
        "max_retries": 2, "retry_delay_ms": 1,
        "enable_fault_injection": 1, "fault_ops": "both", "fault_every": fault_every,
        "enable_checkpoints": 1, "checkpoint_directory": disk_dir / "ckpt",
        "checkpoint_interval_sec": 1,
    }
    if kind in ("regular", "direct"):
        xd["enable_sparse"] = 1
    opts = dict(directory=disk_dir / "data", rw="randrw", bs="16k", size=2 * MiB, iodepth=16,
                fsync=64, verify="crc32c", verify_fatal=1, do_verify=1)
    opts.update(over)
    return fio_job(engine, name=f"chain-{kind}", xd=xd, **opts), stats


def full_chain_layers(stats, kind):
    doc = load_stats(stats)
    for j in doc["jobs"]:
        names = [n for n in j["layers"] if n in FULL_CHAIN_LAYERS + ["sparse"]]
        want = FULL_CHAIN_LAYERS[:-1] + (["sparse"] if kind != "mmap" else []) + ["fault"]
        assert names == want, f"chain of {kind}: {list(j['layers'])}"
    return doc


@pytest.mark.parametrize("async_mode", ASYNC_MODES)
@pytest.mark.parametrize("kind", FULL_CHAIN_TYPES)
def test_full_chain_randrw_verify(engine, tmp_path, disk_dir, kind, async_mode):
    """One pass of randrw: every block is read or written once, then fio
    reads back every block it wrote, so reads add up to the whole file.
    Every 7th request below fails once, 16 in flight: with this seed, a
    write whose copy failed while a read's failed repair degraded the
    other copy was reported done though no copy still read had it (the
    mirror now fails it and the retry layer sends it again), and fio's
    verify failed on regular, direct and sparse under libaio and io_uring."""
    args, stats = full_chain_job(engine, kind, async_mode, disk_dir, tmp_path, fault_every=7,
                                 randseed=685912451)
    r = run_fio(args, tmp_path)
    j = r.data["jobs"][0]
    assert j["write"]["io_bytes"] > 0, j["write"]
    assert j["read"]["io_bytes"] == 2 * MiB, "fio verified fewer bytes than it wrote"
    doc = full_chain_layers(stats, kind)
    lay = doc["jobs"][0]["layers"]
    assert lay["fault"]["injected"] > 0, lay["fault"]
    assert lay["retry"]["failed"] == 0, lay["retry"]


@pytest.mark.parametrize("async_mode", ASYNC_MODES)
@pytest.mark.parametrize("kind", FULL_CHAIN_TYPES)
def test_full_chain_time_based_threads_verify(engine, tmp_path, disk_dir, kind, async_mode):
    """Two jobs in one process (one cache, one device) for a second of
    randrw, each verifying what it wrote as it goes (verify_backlog: fio's
    final verify of a time_based randrw job reports the last iodepth writes
    as bad headers with fio's own libaio and io_uring engines too). Faults
    are rarer here: blocks written again while in flight are read back by
    the checksum layer, and each such read is a fault's fresh draw, so at
    every 7th request a write ran out of retries, as designed."""
    args, stats = full_chain_job(engine, kind, async_mode, disk_dir, tmp_path, fault_every=64,
                                 time_based=1, runtime=1, numjobs=2, thread=None,
                                 verify_backlog=32)
    r = run_fio(args, tmp_path)
    assert len(r.data["jobs"]) == 2
    for j in r.data["jobs"]:
        assert j["write"]["io_bytes"] > 0 and j["read"]["io_bytes"] > 0, j["jobname"]
    full_chain_layers(stats, kind)
