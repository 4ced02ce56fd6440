"""The cache layer under real fio: verify with the read cache and with
write-back on every file type and async mode, two jobs sharing the process's
cache, cached reads checked by fio's own verify, invalidate=1 dropping what
is cached, the stats, the refusals, and xd_trace replayed by xdcachesim.

fio's verify phase always invalidates first (fio syncs, then calls the
engine's invalidate, to read from the storage), so the cache's hits are
verified by verify_backlog during the write phase and by read-only jobs
with verify set, which check every block they read.
"""
import os
import re
import subprocess

import pytest

from conftest import (
    FIO,
    REPO,
    MiB,
    assert_verified,
    fio_job,
    load_stats,
    records,
    run_fio,
    run_fio_until,
    verify_state,
    wait_for,
    xdevice_lines,
)

XDCACHESIM = REPO / "build" / "xdcachesim"
TYPES = ["regular", "direct", "mmap", "sparse", "compressed"]
ASYNC = ["sync", "io_uring"]
SIZE = 4 * MiB


def cache_figures(stats):
    """Each job's "cache" object from the xd_stats document."""
    doc = load_stats(stats)
    caches = [j["layers"].get("cache") for j in doc["jobs"]]
    assert all(c is not None for c in caches), f"no cache layer in {[list(j['layers']) for j in doc['jobs']]}"
    return caches


def verify_job(engine, where, xd, **over):
    """Two jobs (threads: one cache) writing SIZE each, verified as they go
    (verify_backlog reads hit what the writes put in the cache) and after."""
    opts = dict(where, rw="randwrite", bsrange="1k-16k", size=SIZE, iodepth=8,
                numjobs=2, thread=None, verify="crc32c", verify_fatal=1, verify_backlog=32)
    opts.update(over)
    return fio_job(engine, name="cv", xd=xd, **opts)


@pytest.mark.parametrize("async_mode", ASYNC)
@pytest.mark.parametrize("kind", TYPES)
def test_verify_with_read_cache(engine, tmp_path, disk_dir, kind, async_mode):
    stats = tmp_path / "s.json"
    xd = {"type": kind, "async": async_mode, "enable_read_cache": 1, "cache_size": "2m",
          "stats": stats}
    r = run_fio(verify_job(engine, {"directory": disk_dir}, xd), tmp_path)
    assert_verified(r.data, size=SIZE, njobs=2)
    caches = cache_figures(stats)
    assert all(not c["write_back"] and c["writes_absorbed"] == 0 for c in caches)
    assert sum(c["hits"] for c in caches) > 0, caches
    assert sum(c["writes_through"] for c in caches) > 0
    assert all(c["bytes_cached"] <= c["capacity_bytes"] == 2 * MiB for c in caches)


@pytest.mark.parametrize("async_mode", ASYNC)
@pytest.mark.parametrize("kind", TYPES)
def test_write_back_verify(engine, tmp_path, disk_dir, kind, async_mode):
    """Whole-block writes land in the cache; fsync, the flusher, invalidate
    and close write them below, and the final verify reads them from there."""
    stats = tmp_path / "s.json"
    xd = {"type": kind, "async": async_mode, "enable_read_cache": 1, "enable_write_cache": 1,
          "cache_size": "2m", "stats": stats}
    r = run_fio(verify_job(engine, {"directory": disk_dir}, xd, bsrange="4k-16k", fsync=16),
                tmp_path)
    assert_verified(r.data, size=SIZE, njobs=2)
    caches = cache_figures(stats)
    assert all(c["write_back"] for c in caches)
    assert sum(c["writes_absorbed"] for c in caches) > 0, caches
    assert max(c["flushes"] for c in caches) > 0
    assert sum(c["hits"] for c in caches) > 0


@pytest.mark.parametrize("thread", [0, 1])
@pytest.mark.parametrize("write_back", [0, 1])
def test_processes_sharing_a_file_keep_each_other_current(engine, tmp_path, disk_dir, thread,
                                                          write_back):
    """The cache is one per process, and the processes' caches stay current
    with each other (tests/unit/cache_processes.c proves it: a reader never
    gets a block older than another process's completed write, and a
    write-back cache writes its blocks back and writes through once another
    process opens the file). So numjobs processes writing one file, each on
    its own part, pass fio's verify, and nothing is said about it (the
    engine used to warn here, and nothing goes into fio's JSON)."""
    xd = {"enable_read_cache": "true", "enable_write_cache": "true" if write_back else "false"}
    r = run_fio(fio_job(engine, name="c", xd=xd, filename=disk_dir / "shared", rw="randwrite",
                        bs="4k", size="1m", offset_increment="1m", numjobs=2, thread=thread,
                        verify="crc32c"), tmp_path)
    assert [ln for ln in xdevice_lines(r.text) if "_cache" in ln] == []
    assert_verified(r.data, size=MiB, njobs=2)


def periodic_cache(path):
    """The cache object of each periodic record so far."""
    return [r["layers"]["cache"] for r in records(path)]


def test_write_back_comes_back_once_the_other_process_has_gone(engine, tmp_path, disk_dir):
    """A write-back cache writes through while another process has its
    file open, and keeps blocks again once that process has gone
    (core/turns.c's regain; tests/unit/cache_processes.c proves the
    protocol): a long fio writer, a second fio run writing a region of its
    own to the end, then the first is seen keeping blocks again in its
    periodic stats, is stopped through fio's trigger (which saves its
    verify state), and every write it saw complete verifies, as do the
    second run's. Bounded polls, no fixed pauses."""
    f = disk_dir / "f"
    with open(f, "xb") as new:  # big enough for both runs: fio lays out none anew
        new.truncate(8 * MiB)
    xd = {"enable_read_cache": 1, "enable_write_cache": 1, "cache_size": "8m"}
    periodic, trig = tmp_path / "p.jsonl", tmp_path / "trigger"
    common = dict(filename=f, rw="randwrite", bs="4k", size=4 * MiB, verify="crc32c",
                  verify_fatal=1)
    cmd = [FIO, f"--trigger-file={trig}", "--trigger=true",
           *fio_job(engine, name="long", xd=dict(xd, stats_interval=1, stats_log=periodic),
                    time_based=None, runtime=300, rate_iops=500, thread=None, **common)]
    proc = subprocess.Popen([str(c) for c in cmd], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(proc, lambda: any(c["writes_absorbed"] for c in periodic_cache(periodic)), 60,
             "the first writer keeping blocks")
    other = run_fio(fio_job(engine, name="other", xd=xd, filename=f, rw="randwrite", bs="4k",
                            offset=4 * MiB, size=256 * 1024, verify="crc32c", verify_fatal=1),
                    tmp_path)
    assert_verified(other.data, size=256 * 1024, njobs=1)
    wait_for(proc, lambda: any(c["solo_regained"] for c in periodic_cache(periodic)), 60,
             "write-back coming back after the other run ended")
    through = max(c["writes_through"] for c in periodic_cache(periodic))
    trig.touch()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    assert through > 0, "the first writer never wrote through beside the other run"
    numberio, depth, _ = verify_state(tmp_path / "local-long-0-verify.state")
    assert numberio > depth, (numberio, depth)
    check = fio_job(engine, name="long", xd=xd, iodepth=1, verify_state_load=1,
                    verify_state_save=0, verify_only=None, **common)
    r = run_fio(check, tmp_path)
    # every completed write's block, at most the file's (time_based: a
    # loaded run wraps past 4 MiB and writes blocks again)
    blocks = min(numberio - depth, 4 * MiB // 4096)
    assert r.data["jobs"][0]["read"]["io_bytes"] >= blocks * 4096, (numberio, depth)


def test_write_back_process_mode_and_partial_writes(engine, tmp_path, disk_dir):
    """Process mode (a cache per job) with unaligned writes: partial blocks
    merge into cached ones or go down after the dirty ones they touch."""
    stats = tmp_path / "s.json"
    xd = {"enable_read_cache": 1, "enable_write_cache": 1, "cache_size": "1m", "stats": stats}
    args = verify_job(engine, {"directory": disk_dir}, xd, bsrange="512-12k")
    args.remove("--thread")
    r = run_fio(args, tmp_path)
    assert_verified(r.data, size=SIZE, njobs=2)
    caches = cache_figures(stats)
    assert sum(c["writes_absorbed"] for c in caches) > 0
    assert sum(c["writes_through"] for c in caches) > 0


@pytest.mark.parametrize("kind", ["regular", "direct", "compressed"])
def test_cached_reads_pass_fio_verify(engine, tmp_path, disk_dir, kind):
    """A read-only job with verify set checks every block it reads (a file
    without fio's headers fails it); reading the file twice over at random,
    the blocks read again are served from the cache."""
    stats = tmp_path / "s.json"
    xd = {"type": kind, "enable_read_cache": 1, "stats": stats}
    common = dict(directory=disk_dir, filename="data", bs="4k", size=SIZE, verify="crc32c",
                  verify_fatal=1)
    args = fio_job(engine, name="w", xd=xd, rw="write", do_verify=0, **common)
    args += fio_job(engine, name="r", xd=xd, rw="randread", norandommap=None, io_size=2 * SIZE,
                    invalidate=0, stonewall=None, **common)
    r = run_fio(args, tmp_path)
    reader = [j for j in r.data["jobs"] if j["jobname"] == "r"][0]
    assert reader["error"] == 0 and reader["read"]["io_bytes"] == 2 * SIZE
    cache = [j for j in load_stats(stats)["jobs"] if j["name"] == "r"][0]["layers"]["cache"]
    blocks = SIZE // 4096
    assert cache["hits"] + cache["misses"] == 2 * blocks
    assert cache["hits"] > blocks // 2, cache


@pytest.mark.parametrize("async_mode", ["sync", "libaio", "io_uring"])
@pytest.mark.parametrize("kind", ["regular", "direct", "compressed"])
def test_small_reads_fill_large_blocks(engine, tmp_path, disk_dir, kind, async_mode):
    """4k reads with 64k cache blocks go down widened to whole blocks, so a
    miss fills its block and the other 15 reads of it hit. fio verifies
    every 4k it reads (headers written by the first job)."""
    stats = tmp_path / "s.json"
    xd = {"type": kind, "async": async_mode, "enable_read_cache": 1, "cache_block_size": "64k",
          "stats": stats}
    common = dict(directory=disk_dir, filename="data", bs="4k", size=SIZE, verify="crc32c",
                  verify_fatal=1, iodepth=8)
    args = fio_job(engine, name="w", xd=xd, rw="write", do_verify=0, **common)
    args += fio_job(engine, name="r", xd=xd, rw="randread", invalidate=0, stonewall=None,
                    **common)
    r = run_fio(args, tmp_path)
    reader = [j for j in r.data["jobs"] if j["jobname"] == "r"][0]
    assert reader["error"] == 0 and reader["read"]["io_bytes"] == SIZE
    cache = [j for j in load_stats(stats)["jobs"] if j["name"] == "r"][0]["layers"]["cache"]
    blocks = SIZE // (64 * 1024)
    # every 64k block is read from below about once (a few twice when two
    # of its 4k reads are in flight together); the rest are hits
    assert cache["misses"] < 2 * blocks and cache["widened_reads"] >= blocks // 2, cache
    assert cache["hits"] + cache["misses"] == SIZE // 4096, cache


@pytest.mark.parametrize("invalidate", [0, 1])
def test_invalidate_drops_the_cache(engine, tmp_path, disk_dir, invalidate):
    """fio calls the engine's invalidate at every file open when
    invalidate=1 (each loop): nothing is left to hit. With 0, loops 2 and 3
    are all hits."""
    stats = tmp_path / "s.json"
    path = disk_dir / "data"
    with open(path, "wb") as f:
        f.write(os.urandom(SIZE))
    r = run_fio(fio_job(engine, name="inv", xd={"enable_read_cache": 1, "stats": stats},
                        filename=path, rw="read", bs="64k", size=SIZE, loops=3,
                        invalidate=invalidate), tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == 3 * SIZE
    cache = cache_figures(stats)[0]
    blocks = SIZE // 4096
    if invalidate:
        assert cache["hits"] == 0 and cache["misses"] == 3 * blocks, cache
    else:
        assert cache["hits"] == 2 * blocks and cache["misses"] == blocks, cache


@pytest.mark.parametrize("policy", ["s3fifo", "lru"])
def test_repeated_reads_hit(engine, tmp_path, disk_dir, policy):
    """A skewed random read job on a file 4x the cache: hits, evictions,
    and the figures the report charts (hit_ratio under layers)."""
    stats = tmp_path / "s.json"
    xd = {"enable_read_cache": 1, "cache_size": "1m", "cache_policy": policy, "stats": stats}
    r = run_fio(fio_job(engine, name="zipf", xd=xd, directory=disk_dir, rw="randread", bs="4k",
                        size=SIZE, random_distribution="zipf:1.1", norandommap=None,
                        io_size=4 * SIZE, invalidate=0), tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == 4 * SIZE
    cache = cache_figures(stats)[0]
    assert cache["policy"] == policy
    assert cache["hits"] + cache["misses"] == 4 * SIZE // 4096
    assert 0.3 < cache["hit_ratio"] < 1, cache
    assert cache["evictions"] > 0 and cache["bytes_cached"] == cache["capacity_bytes"] == MiB
    if policy == "s3fifo":
        assert cache["promotions"] > 0 and cache["ghost_hits"] > 0, cache


def run_cachesim(*args):
    return subprocess.run([str(XDCACHESIM), *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def parse_sim(out):
    rows = {}
    for line in out.strip().splitlines():
        kv = dict(item.split("=", 1) for item in line.split())
        rows[kv["policy"]] = kv
    return rows


def test_trace_replayed_by_cachesim(engine, tmp_path, disk_dir):
    trace = tmp_path / "trace.bin"
    stats = tmp_path / "s.json"
    nreads = 4 * SIZE // 4096
    xd = {"enable_read_cache": 1, "cache_size": "1m", "trace": trace, "stats": stats}
    run_fio(fio_job(engine, name="tr", xd=xd, directory=disk_dir, rw="randread", bs="4k",
                    size=SIZE, random_distribution="zipf:1.1", norandommap=None,
                    io_size=4 * SIZE, invalidate=0), tmp_path)
    assert cache_figures(stats)[0]["trace_records"] == nreads
    # one header and one 16-byte record per 4k block read
    assert trace.stat().st_size == 16 * (nreads + 1)
    p = run_cachesim(trace, "--cache-size", "1m", "--block-size", "4k")
    assert p.returncode == 0, p.stderr
    rows = parse_sim(p.stdout)
    assert set(rows) == {"lru", "s3fifo", "s3fifo-sharded", "perfect-lfu", "min"}, p.stdout
    ratio = {k: float(v["hit_ratio"]) for k, v in rows.items()}
    # 256 blocks are one shard: the split replay is the single one, and the
    # layer's own hit ratio is the replay's within the lag of its lock-free
    # hits' counts (they reach the sketch a batch at a time)
    assert rows["s3fifo-sharded"]["hits"] == rows["s3fifo"]["hits"], p.stdout
    layer = cache_figures(stats)[0]["hit_ratio"]
    assert abs(layer - ratio["s3fifo"]) < 0.02, (layer, p.stdout)
    assert all(int(v["reads"]) == nreads and int(v["cache_blocks"]) == 256 for v in rows.values())
    assert all(ratio["min"] >= ratio[k] for k in ("s3fifo", "lru", "perfect-lfu")), ratio
    assert 0 < ratio["lru"] < 1 and ratio["s3fifo"] > 0
    # the trace's own block size is the only one it can be replayed at
    p = run_cachesim(trace, "--cache-size", "1m", "--block-size", "8k")
    assert p.returncode == 2 and "4096-byte blocks" in p.stderr
    p = run_cachesim(tmp_path / "missing", "--cache-size", "1m")
    assert p.returncode != 0 and "cannot read" in p.stderr


def test_trace_without_the_cache(engine, tmp_path, disk_dir):
    """trace alone puts the layer in the chain to record, caching nothing;
    jobs append to one file, each after its own header."""
    trace = tmp_path / "trace.bin"
    stats = tmp_path / "s.json"
    xd = {"trace": trace, "stats": stats}
    r = run_fio(fio_job(engine, name="t", xd=xd, directory=disk_dir, rw="randrw", bs="8k",
                        size=MiB, numjobs=2, thread=None), tmp_path)
    caches = cache_figures(stats)
    assert all(not c["enabled"] and "hits" not in c for c in caches)
    ios = sum(j["read"]["total_ios"] + j["write"]["total_ios"] for j in r.data["jobs"])
    assert trace.stat().st_size == 16 * (2 * ios + 2)
    p = run_cachesim(trace, "--cache-size", "256k")
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 5, p.stderr


REFUSED = {
    "write-cache-alone": ({"enable_write_cache": 1},
                          ["enable_write_cache=true", "enable_read_cache=false", "conflicts"]),
    "block-size": ({"enable_read_cache": 1, "cache_block_size": "3000"},
                   ["cache_block_size=3000", "not a power of two", "1m"]),
    "block-size-range": ({"cache_block_size": "2m"}, ["xd_cache_block_size", "out of range"]),
    "policy": ({"cache_policy": "arc"}, ["xd_cache_policy", "arc", "s3fifo|lru"]),
    "too-small": ({"enable_read_cache": 1, "cache_size": "16k"},
                  ["cache_size=16384", "cache_block_size=4096", "16 blocks"]),
    "trace-dir": ({"trace": "/nonexistent/dir/trace"}, ["trace=/nonexistent/dir/trace", "cannot open"]),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_cache_options_refused(engine, tmp_path, disk_dir, case):
    xd, want = REFUSED[case]
    r = run_fio(fio_job(engine, name="bad", xd=xd, directory=disk_dir, rw="randread", bs="4k",
                        size=MiB), tmp_path, expect_ok=False)
    assert r.rc != 0
    lines = xdevice_lines(r.text)
    assert len(lines) == 1, f"expected one xdevice: line, got {lines}\n{r.text}"
    for s in want:
        assert s in lines[0], f"{s!r} not in {lines[0]!r}"


def test_jobs_with_other_cache_settings_are_refused(engine, tmp_path, disk_dir):
    """Two concurrent thread-mode jobs asking for different caches: one
    process has one cache, so the second is refused by name."""
    args = fio_job(engine, name="a", xd={"enable_read_cache": 1, "cache_size": "2m"},
                   directory=disk_dir, rw="randread", bs="4k", size=MiB, thread=None,
                   time_based=None, runtime=600)
    args += fio_job(engine, name="b", xd={"enable_read_cache": 1, "cache_size": "4m"},
                    directory=disk_dir, rw="randread", bs="4k", size=MiB, thread=None,
                    startdelay="200ms", time_based=None, runtime=600)
    # b starts 200 ms later, but on a loaded machine a may still be setting
    # up by then: whichever opens second is refused, naming both sizes. The
    # other runs until then (a fixed 2 s could end before b opened)
    sizes = {"2097152", "4194304"}

    def refused(text):
        return [m.groups() for ln in xdevice_lines(text)
                for m in [re.search(r"cache_size=(\d+) .*already open with cache_size=(\d+)", ln)]
                if m]
    rc, text = run_fio_until(args, tmp_path, lambda out: any(set(g) == sizes for g in refused(out)),
                             "the second cache's refusal")
    assert rc != 0
    assert any(set(g) == sizes for g in refused(text)), text
