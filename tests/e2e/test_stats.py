"""xd_stats=FILE: one JSON document per run whose counts equal fio's own."""
import pytest

from conftest import MiB, PROC_MODES, fio_job, load_stats, run_fio

CASES = [("regular", "io_uring"), ("mmap", "sync"), ("direct", "libaio")]
NJOBS = 2
PCTS = ["p50", "p90", "p99", "p999", "p9999"]


def randrw_job(engine, kind, async_mode, proc, disk_dir, stats):
    return fio_job(
        engine,
        name=f"st-{kind}",
        xd={"type": kind, "async": async_mode, "stats": stats},
        directory=disk_dir,
        rw="randrw",
        bs="4k",
        size=4 * MiB,
        fsync=8,
        numjobs=NJOBS,
        iodepth=8,
    ) + PROC_MODES[proc]


def by_jobnum(doc):
    return sorted(doc["jobs"], key=lambda j: j["jobnum"])


def assert_latency_sane(op, name):
    lat = op["lat_ns"]
    if op["ops"] == 0:
        return
    vals = [lat[p] for p in PCTS]
    assert vals == sorted(vals), f"{name}: percentiles not monotone: {lat}"
    assert 0 < lat["min"] <= lat["p50"], f"{name}: {lat}"
    assert lat["p9999"] <= lat["max"], f"{name}: {lat}"
    assert lat["min"] <= lat["mean"] <= lat["max"], f"{name}: {lat}"


def assert_counts_match(doc, fio, kind, async_mode):
    fjobs = fio["jobs"]
    xjobs = by_jobnum(doc)
    assert len(xjobs) == NJOBS, f"stats has {len(xjobs)} jobs, expected {NJOBS}"
    assert [j["jobnum"] for j in xjobs] == list(range(NJOBS))
    assert len({j["job_key"] for j in xjobs}) == NJOBS, "job_key must tell jobs apart"
    tot = {"read": [0, 0], "write": [0, 0], "sync": [0, 0]}
    for x, f in zip(xjobs, fjobs):
        assert x["name"] == f["jobname"]
        assert x["type"] == kind
        assert x["config"]["storage_type"] == kind
        assert x["config"]["async"] == async_mode
        for d in ("read", "write"):
            assert f[d]["total_ios"] > 0, f"fio did no {d}s: the check below would be vacuous"
            assert x["ops"][d]["ops"] == f[d]["total_ios"], f"job {x['jobnum']} {d} ops"
            assert x["ops"][d]["bytes"] == f[d]["io_bytes"], f"job {x['jobnum']} {d} bytes"
            tot[d][0] += f[d]["total_ios"]
            tot[d][1] += f[d]["io_bytes"]
        fsyncs = f["sync"]["total_ios"]
        assert fsyncs > 0, "fsync=8 issued no syncs"
        assert x["ops"]["sync"]["ops"] == fsyncs, f"job {x['jobnum']}: sync ops"
        assert x["ops"]["fsync"]["ops"] == fsyncs, f"job {x['jobnum']}: fsync ops"
        assert x["ops"]["fdatasync"]["ops"] == 0
        tot["sync"][0] += fsyncs
        assert x["errors"] == 0
        for d, op in x["ops"].items():
            assert op["errors"] == 0
            assert_latency_sane(op, f"job {x['jobnum']} {d}")
    agg = doc["aggregate"]
    assert agg["jobs"] == NJOBS
    for d in ("read", "write"):
        assert agg["ops"][d]["ops"] == tot[d][0], f"aggregate {d} ops"
        assert agg["ops"][d]["bytes"] == tot[d][1], f"aggregate {d} bytes"
        assert_latency_sane(agg["ops"][d], f"aggregate {d}")
    assert agg["ops"]["sync"]["ops"] == tot["sync"][0], "aggregate sync ops"
    assert agg["errors"] == 0


@pytest.mark.parametrize("proc", list(PROC_MODES))
@pytest.mark.parametrize("kind,async_mode", CASES, ids=[f"{k}-{a}" for k, a in CASES])
def test_stats_match_fio(engine, tmp_path, disk_dir, kind, async_mode, proc):
    stats = tmp_path / "xd-stats.json"
    args = randrw_job(engine, kind, async_mode, proc, disk_dir, stats)
    r = run_fio(args, tmp_path)
    doc = load_stats(stats)
    assert doc["xdevice"]["version"]
    first_run = doc["xdevice"]["run_id"]
    assert_counts_match(doc, r.data, kind, async_mode)

    # the same path again: the document is replaced, not appended to
    r2 = run_fio(args, tmp_path)
    doc2 = load_stats(stats)
    assert len(doc2["jobs"]) == NJOBS, "rerun left the previous run's jobs in the document"
    assert doc2["xdevice"]["run_id"] != first_run
    assert_counts_match(doc2, r2.data, kind, async_mode)


@pytest.mark.parametrize("kind,async_mode,depth", [("regular", "sync", 1), ("regular", "io_uring", 16)])
def test_stats_leave_out_ramp_time(engine, tmp_path, disk_dir, kind, async_mode, depth):
    """ramp_time's I/O is not in fio's figures, nor in xd_stats's (it was:
    about half as many reads again after a 1 s ramp in a 2 s run), and the
    read cache's hit ratio is the warm cache's; an async job may differ by
    the requests completed between fio's end of the ramp and the engine's
    next call (at most iodepth)."""
    stats = tmp_path / "xd-stats.json"
    args = fio_job(engine, name="ramp", xd={"type": kind, "async": async_mode, "stats": stats,
                                            "enable_read_cache": "true", "cache_size": "8m"},
                   directory=disk_dir, rw="randread", bs="4k", size=2 * MiB, iodepth=depth,
                   time_based=1, runtime=2, ramp_time=1, invalidate=0)
    r = run_fio(args, tmp_path)
    reads = r.data["jobs"][0]["read"]["total_ios"]
    x = load_stats(stats)["jobs"][0]
    assert reads > 0
    assert abs(x["ops"]["read"]["ops"] - reads) <= depth, (reads, x["ops"]["read"])
    assert x["ops"]["read"]["bytes"] == 4096 * x["ops"]["read"]["ops"]
    cache = x["layers"]["cache"]  # looked up at submit, counted by the stats at completion
    assert abs(cache["hits"] + cache["misses"] - x["ops"]["read"]["ops"]) <= depth, cache
    # 512 blocks: fio's random map reads each once in its first 512 reads,
    # well within a second of ramp, so the run finds them all cached
    assert cache["misses"] <= depth, cache


@pytest.mark.parametrize("proc", list(PROC_MODES))
def test_stats_trim_counts(engine, tmp_path, disk_dir, proc):
    stats = tmp_path / "xd-stats.json"
    args = fio_job(
        engine,
        name="trim",
        xd={"type": "regular", "stats": stats},
        directory=disk_dir,
        rw="randtrim",
        bs="4k",
        size=4 * MiB,
        numjobs=NJOBS,
    ) + PROC_MODES[proc]
    r = run_fio(args, tmp_path)
    doc = load_stats(stats)
    xjobs = by_jobnum(doc)
    assert len(xjobs) == NJOBS
    total = 0
    for x, f in zip(xjobs, r.data["jobs"]):
        assert f["trim"]["total_ios"] == 4 * MiB // 4096
        assert x["ops"]["trim"]["ops"] == f["trim"]["total_ios"]
        assert x["ops"]["trim"]["bytes"] == f["trim"]["io_bytes"]
        assert x["ops"]["read"]["ops"] == 0 and x["ops"]["write"]["ops"] == 0
        assert x["layers"]["file"]["trimmed_bytes"] == f["trim"]["io_bytes"]
        total += f["trim"]["total_ios"]
    assert doc["aggregate"]["ops"]["trim"]["ops"] == total
