"""The data path's contract with fio, on jobs fio's own engines pass.

- A time_based randrw verify job at depth 8: fio verifies after each pass of
  size= bytes, counting a pass's bytes only for requests the engine reports
  as queued. An engine that reports some requests as completed inline and
  others as queued makes a pass run past the wrap of fio's random map, so a
  block is logged twice and verified against its older write ("bad header
  rand_seed"). In async modes every request is reported as queued.
- fsync_on_close: fio calls fsync(f->fd) itself; the engine must give it a
  descriptor where that works and sync the file through the whole chain.
- slat: fio's async engines record the submission latency at commit, so
  slat + clat == lat and the submit-depth histogram is filled.
"""
import pytest

from conftest import MiB, fio_job, load_stats, run_fio

TYPES = ["regular", "mmap", "direct", "tmpfs", "sparse", "compressed", "hybrid"]
ASYNC = ["libaio", "io_uring"]


def where(kind, request, disk_dir):
    """fio options (where the data goes) and xd options for a storage type."""
    if kind == "tmpfs":
        return {"directory": disk_dir}, {"tmpfs_directory": request.getfixturevalue("shm_dir")}
    if kind == "hybrid":
        shm = request.getfixturevalue("shm_dir")
        return {"directory": disk_dir}, {
            "hot_directory": shm,
            "hot_access_threshold": 1,
            "tier_extent_size": "64k",
            "migration_interval_sec": 0.05,
        }
    return {"directory": disk_dir}, {}


@pytest.mark.parametrize("async_mode", ASYNC)
@pytest.mark.parametrize("kind", TYPES)
def test_randrw_time_based_verify(engine, tmp_path, disk_dir, request, kind, async_mode):
    """issue 12's repro: lost writes under randrw + time_based verify."""
    loc, xd = where(kind, request, disk_dir)
    r = run_fio(
        fio_job(
            engine,
            name="rw",
            xd={"type": kind, "async": async_mode, **xd},
            thread=1,
            size=2 * MiB,
            bs="4k",
            verify="crc32c",
            verify_fatal=1,
            iodepth=8,
            rw="randrw",
            runtime=1,
            time_based=1,
            **loc,
        ),
        tmp_path,
    )
    job = r.data["jobs"][0]
    # What fails without the fix is run_fio's check: fio's verify reports a
    # bad header and the job an error. fio verifies after each whole pass of
    # size= (512 requests, milliseconds), so a second holds several passes
    # even on a slow machine. Here: the job really wrote and read.
    assert job["write"]["io_bytes"] > 0, job["write"]
    assert job["read"]["io_bytes"] > 0, job["read"]


@pytest.mark.parametrize("async_mode", ["sync"] + ASYNC)
@pytest.mark.parametrize("kind", ["regular", "tmpfs", "compressed", "hybrid"])
def test_fsync_on_close(engine, tmp_path, disk_dir, request, kind, async_mode):
    loc, xd = where(kind, request, disk_dir)
    stats = tmp_path / "stats.json"
    run_fio(
        fio_job(
            engine,
            name="foc",
            xd={"type": kind, "async": async_mode, **xd},
            nrfiles=4,
            fsync_on_close=1,
            size=4 * MiB,
            bs="16k",
            rw="write",
            iodepth=4,
            verify="crc32c",
            **loc,
        )
        + [f"--xd_stats={stats}"],
        tmp_path,
    )
    ops = load_stats(stats)["jobs"][0]["ops"]
    # one fsync per file at its close, through the whole chain
    assert ops["fsync"]["ops"] >= 4, ops["fsync"]


@pytest.mark.parametrize("async_mode", ASYNC)
@pytest.mark.parametrize("kind", ["regular", "direct", "compressed"])
def test_slat_plus_clat_is_lat(engine, tmp_path, disk_dir, request, kind, async_mode):
    loc, xd = where(kind, request, disk_dir)
    r = run_fio(
        fio_job(
            engine,
            name="slat",
            xd={"type": kind, "async": async_mode, **xd},
            size=4 * MiB,
            bs="4k",
            rw="randrw",
            iodepth=8,
            iodepth_batch_submit=4,
            **loc,
        ),
        tmp_path,
    )
    job = r.data["jobs"][0]
    for ddir in ("read", "write"):
        d = job[ddir]
        n = d["total_ios"]
        assert d["slat_ns"]["N"] == n and d["clat_ns"]["N"] == n and d["lat_ns"]["N"] == n, d
        s, c, t = d["slat_ns"]["mean"], d["clat_ns"]["mean"], d["lat_ns"]["mean"]
        assert abs(s + c - t) <= 0.01 * t + 50, f"{ddir}: slat {s} + clat {c} != lat {t}"
    submit = {k: float(v) for k, v in job["iodepth_submit"].items()}
    assert sum(submit.values()) == pytest.approx(100.0, abs=0.5), submit
