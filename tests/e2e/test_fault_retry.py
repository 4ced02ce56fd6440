"""The fault-injection and retry layers under real fio.

The fault layer fails chosen requests (every Nth, or by probability, from a
seed); the retry layer sends transient failures below again. Together: a
transient fault is retried and the job passes; a persistent one exhausts the
retries and fio sees the error; a non-transient one is never retried.
"""
import pytest

from conftest import KiB, MiB, fio_job, load_stats, run_fio, xdevice_lines

SIZE = 1 * MiB
EIO, ENOSPC, EILSEQ = 5, 28, 84


def job(engine, tmp_path, xd, name="fr", **over):
    """A 4 KiB random-write job over SIZE, its xd_stats file, and the args."""
    stats = tmp_path / f"{name}-stats.json"
    opts = dict(directory=tmp_path, rw="randwrite", bs="4k", size=SIZE, iodepth=8)
    opts.update(over)
    xd = dict({"enable_fault_injection": 1, "stats": stats}, **xd)
    return fio_job(engine, name=name, xd=xd, **opts), stats


def layers(stats):
    return load_stats(stats)["jobs"][0]["layers"]


def only_job(r):
    assert r.data is not None, r.text
    return r.data["jobs"][0]


@pytest.mark.parametrize("async_mode", ["sync", "io_uring"])
def test_every_nth_write_fails_without_retries(engine, tmp_path, async_mode):
    args, stats = job(engine, tmp_path, {"async": async_mode, "fault_every": 8})
    r = run_fio(args, tmp_path, expect_ok=False)
    assert only_job(r)["error"] == EIO, r.text
    f = layers(stats)["fault"]
    assert f["injected"] >= 1 and f["injected_writes"] == f["injected"], f
    assert f["injected_reads"] == 0, f
    assert "retry" not in layers(stats)


@pytest.mark.parametrize("async_mode", ["sync", "libaio", "io_uring"])
def test_transient_faults_are_retried_and_verify(engine, tmp_path, async_mode):
    args, stats = job(engine, tmp_path,
                      {"async": async_mode, "fault_every": 8, "max_retries": 2,
                       "retry_delay_ms": 1}, verify="crc32c", do_verify=1)
    r = run_fio(args, tmp_path)
    j = only_job(r)
    assert j["write"]["io_bytes"] == SIZE and j["read"]["io_bytes"] == SIZE
    lay = layers(stats)
    rt, f = lay["retry"], lay["fault"]
    assert f["injected"] == SIZE // (4 * KiB) // 8, f
    assert rt["recovered"] == f["injected"] and rt["failed"] == 0, rt
    assert rt["retries"] == rt["recovered"], rt  # one retry each: the fault passes it
    assert f["retries_passed"] == f["injected"], f


@pytest.mark.parametrize("async_mode", ["sync", "io_uring"])
def test_persistent_faults_exhaust_the_retries(engine, tmp_path, async_mode):
    args, stats = job(engine, tmp_path,
                      {"async": async_mode, "fault_every": 8, "fault_persistent": 1,
                       "max_retries": 2, "retry_delay_ms": 1, "exponential_backoff": 0})
    r = run_fio(args, tmp_path, expect_ok=False)
    assert only_job(r)["error"] == EIO, r.text
    lay = layers(stats)
    rt, f = lay["retry"], lay["fault"]
    assert rt["failed"] >= 1 and rt["recovered"] == 0, rt
    assert rt["retries"] == 2 * rt["failed"], rt
    assert f["bad_range_hits"] == rt["retries"] and f["bad_ranges"] >= 1, f
    said = [ln for ln in xdevice_lines(r.text) if "failed after 2 retries" in ln]
    assert said and "write of" in said[0] and "Input/output error" in said[0], r.text


def test_enospc_is_not_retried(engine, tmp_path):
    args, stats = job(engine, tmp_path, {"fault_every": 8, "fault_errno": "ENOSPC",
                                         "max_retries": 3, "retry_delay_ms": 1})
    r = run_fio(args, tmp_path, expect_ok=False)
    assert only_job(r)["error"] == ENOSPC, r.text
    lay = layers(stats)
    assert lay["fault"]["injected"] == 1, lay["fault"]
    assert lay["retry"]["retries"] == 0 and lay["retry"]["failed"] == 0, lay["retry"]


@pytest.mark.parametrize("async_mode", ["sync", "libaio"])
def test_corrupt_reads_fail_verify(engine, tmp_path, async_mode):
    """Corrupted reads succeed: only fio's own checksums can tell."""
    args, stats = job(engine, tmp_path,
                      {"async": async_mode, "fault_every": 16, "fault_ops": "read",
                       "fault_corrupt": 1}, verify="crc32c", do_verify=1, verify_fatal=1)
    r = run_fio(args, tmp_path, expect_ok=False)
    assert only_job(r)["error"] == EILSEQ, r.text
    assert "verify failed" in r.text, r.text
    f = layers(stats)["fault"]
    assert f["corrupted"] >= 1 and f["errors"] == 0 and f["injected_writes"] == 0, f


def test_dropped_writes_are_acknowledged_but_lost(engine, tmp_path):
    """No flush before fio closes the file for its verify phase: the writes
    the fault layer held (a volatile cache) are lost; reading them back while
    the file is open is tests/unit/fault_retry.c's test_held_writes."""
    args, stats = job(engine, tmp_path, {"fault_every": 16, "fault_drop_writes": 1},
                      verify="crc32c", do_verify=1, verify_fatal=1)
    r = run_fio(args, tmp_path, expect_ok=False)
    j = only_job(r)
    assert j["write"]["io_bytes"] == SIZE, "every write was acknowledged"
    assert j["error"] == EILSEQ, r.text
    f = layers(stats)["fault"]
    assert f["dropped_writes"] == SIZE // (4 * KiB) // 16 and f["errors"] == 0, f


@pytest.mark.parametrize("async_mode", ["sync", "io_uring"])
def test_dropped_writes_are_stored_by_a_flush(engine, tmp_path, async_mode):
    """A held write is a volatile cache's: the fsync that ends the write
    phase (end_fsync) stores it, and the verify after the reopen passes."""
    args, stats = job(engine, tmp_path, {"async": async_mode, "fault_every": 16,
                                         "fault_drop_writes": 1},
                      verify="crc32c", do_verify=1, verify_fatal=1, end_fsync=1)
    r = run_fio(args, tmp_path)
    assert only_job(r)["read"]["io_bytes"] == SIZE
    f = layers(stats)["fault"]
    held = SIZE // (4 * KiB) // 16
    assert f["held_writes"] == held and f["held_stored"] == held, f
    assert f["dropped_writes"] == 0 and f["held_store_errors"] == 0, f


def test_hybrid_faults_are_retried_and_verify(engine, tmp_path, shm_dir):
    """On the hybrid type the fault and retry layers sit once over both
    tiers (never in the tiers' own chains): the caller's requests fail and
    are retried whichever tier serves them, and fio verifies every byte."""
    args, stats = job(engine, tmp_path,
                      {"type": "hybrid", "hot_directory": shm_dir, "tier_extent_size": "256k",
                       "hot_access_threshold": 1, "migration_interval_requests": 16,
                       "async": "io_uring", "fault_every": 8, "max_retries": 2,
                       "retry_delay_ms": 1}, rw="randrw", verify="crc32c", do_verify=1)
    r = run_fio(args, tmp_path)
    assert only_job(r)["error"] == 0
    lay = layers(stats)
    assert [k for k in lay if k in ("fault", "retry", "tier")] == ["retry", "fault", "tier"], lay
    assert lay["fault"]["injected"] > 0 and lay["retry"]["recovered"] == lay["fault"]["injected"]
    assert lay["retry"]["failed"] == 0 and lay["tier"]["hot_reads"] > 0, lay


def test_same_seed_same_faults(engine, tmp_path):
    """fault_probability draws from the seed and the request count, never
    from rand(): the same job twice fails the same requests."""
    def injected(seed, name):
        args, stats = job(engine, tmp_path, {"fault_probability": 0.05, "fault_seed": seed},
                          name=name, continue_on_error="all")
        r = run_fio(args, tmp_path, expect_ok=False)
        assert r.rc == 0 or only_job(r)["error"] == EIO, r.text
        f = layers(stats)["fault"]
        assert f["eligible"] == SIZE // (4 * KiB), f
        return f["injected"]

    first = injected(7, "a")
    assert 0 < first < SIZE // (4 * KiB) // 4, first  # about 5% of 256
    assert injected(7, "b") == first


def test_faults_stay_inside_their_range(engine, tmp_path):
    xd = {"fault_every": 1, "fault_offset": 2 * MiB, "fault_length": 1 * MiB}
    args, stats = job(engine, tmp_path, xd, name="out")  # the file ends at 1 MiB
    run_fio(args, tmp_path)
    f = layers(stats)["fault"]
    assert f["eligible"] == 0 and f["injected"] == 0, f
    args, stats = job(engine, tmp_path, xd, name="in", offset=2 * MiB)
    r = run_fio(args, tmp_path, expect_ok=False)
    assert only_job(r)["error"] == EIO, r.text
    assert layers(stats)["fault"]["injected"] == 1


def test_bad_combinations_are_refused(engine, tmp_path):
    args, _ = job(engine, tmp_path, {"fault_corrupt": 1, "fault_ops": "write"})
    r = run_fio(args, tmp_path, expect_ok=False)
    assert r.rc != 0
    assert any("fault_corrupt" in ln and "fault_ops=read or both" in ln
               for ln in r.text.splitlines()), r.text
