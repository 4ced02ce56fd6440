"""The engine's options: --enghelp, bad input, INI files and precedence.

Bad input must stop fio with one line that starts with "xdevice:" and names
the option or key and the bad value, before any job does I/O.
"""
import errno
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import (
    FIO,
    MiB,
    fio_job,
    load_stats,
    run_fio,
    schema_keys,
    xdevice_lines,
)


# --- enghelp -------------------------------------------------------------------


def test_enghelp_lists_every_schema_key(engine):
    p = subprocess.run([FIO, f"--enghelp={engine}"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    listed = {ln.split(":", 1)[0].strip() for ln in p.stdout.splitlines() if ":" in ln}
    for opt in ("xd_async", "xd_config", "xd_stats"):
        assert opt in listed, f"{opt} missing from --enghelp:\n{p.stdout}"
    assert "xd_type" in listed or "xd_storage_type" in listed, p.stdout
    missing = [k for k in schema_keys() if f"xd_{k}" not in listed]
    assert not missing, f"schema keys missing from --enghelp: {missing}"
    # the help texts are composed from the schema: defaults and allowed values show
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("xd_async "))
    assert "sync|libaio|io_uring" in line and "default sync" in line, line


def test_type_alias_is_accepted(engine, tmp_path, disk_dir):
    stats = tmp_path / "s.json"
    run_fio(
        fio_job(engine, name="alias", xd={"type": "direct", "stats": stats},
                directory=disk_dir, rw="write", bs="4k", size=MiB),
        tmp_path,
    )
    assert load_stats(stats)["jobs"][0]["config"]["storage_type"] == "direct"


# --- bad input -------------------------------------------------------------------

# name: (xd options, INI text or None, [substrings the xdevice line must hold])
BAD = {
    "bad-async": ({"async": "fast"}, None, ["xd_async", "fast", "sync|libaio|io_uring"]),
    "bad-size": ({"mmap_size": "12q"}, None, ["xd_mmap_size", "12q", "not a valid value"]),
    "out-of-range": ({"max_events": "0"}, None, ["xd_max_events", "=0", "out of range", "65536"]),
    "bad-bool": ({"use_sync_writes": "maybe"}, None, ["xd_use_sync_writes", "maybe"]),
    "checkpoints-without-directory": (
        {"enable_checkpoints": "1"}, None,
        ["xd_enable_checkpoints", "enable_checkpoints=true", "checkpoint_directory"],
    ),
    "hybrid-conflict": (
        {"type": "hybrid", "cold_storage_type": "direct", "cold_enable_compression": "1"}, None,
        ["cold_enable_compression=true", "cold_storage_type=direct", "conflicts with"],
    ),
    "conflict": (
        {"use_aio": "0", "async": "io_uring"}, None,
        ["use_aio", "async=io_uring", "conflicts with"],
    ),
    "ini-unknown-key": (
        {}, "[local]\nasync = sync\nstorge_type = regular\n",
        [":3:", "unknown key 'storge_type'", "did you mean 'storage_type'"],
    ),
    "ini-bad-value": (
        {}, "[local]\n\nmmap_size = abc\n",
        [":3:", "mmap_size=abc", "not a valid value"],
    ),
    "ini-out-of-range": (
        {}, "[block]\nqueue_depth = 0\n",
        [":2:", "queue_depth=0", "out of range"],
    ),
    "ini-wrong-section": (
        {}, "[block]\nasync = libaio\n",
        [":2:", "async", "[local]", "[block]"],
    ),
    "ini-set-twice": (
        {}, "[local]\nasync = sync\nasync = libaio\n",
        [":3:", "async", "twice", "line 2"],
    ),
    "ini-junk-line": ({}, "[local]\nthis is junk\n", [":2:", "not a [section] or key = value"]),
    "ini-missing-file": (
        {"config": "/nonexistent/xdevice.ini"}, None,
        ["/nonexistent/xdevice.ini", "cannot read"],
    ),
}


def run_bad(engine, tmp_path, disk_dir, xd, ini):
    xd = dict(xd)
    stats = tmp_path / "bad-stats.json"
    if ini is not None:
        path = tmp_path / "bad.ini"
        path.write_text(ini)
        xd = {"config": path, **xd}
    xd["stats"] = stats
    args = fio_job(engine, name="bad", xd=xd, directory=disk_dir, rw="randwrite", bs="4k", size=MiB)
    r = run_fio(args, tmp_path, expect_ok=False)
    return r, stats


def assert_refused(r, stats, disk_dir, want):
    assert r.rc > 0, f"fio accepted bad input (rc={r.rc}):\n{r.text}"
    lines = xdevice_lines(r.text)
    assert len(lines) == 1, f"expected one xdevice: line, got {lines}\n{r.text}"
    for s in want:
        assert s in lines[0], f"{s!r} not in {lines[0]!r}"
    if r.data is not None:
        for j in r.data["jobs"]:
            for d in ("read", "write", "trim"):
                assert j[d]["io_bytes"] == 0, f"job did {d} I/O despite bad input"
            assert j["error"] != 0
    if stats.exists():
        doc = load_stats(stats)
        assert all(op["ops"] == 0 for j in doc["jobs"] for op in j["ops"].values())


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_refused(engine, tmp_path, disk_dir, case):
    xd, ini, want = BAD[case]
    r, stats = run_bad(engine, tmp_path, disk_dir, xd, ini)
    if ini is not None:
        want = [str(tmp_path / "bad.ini")] + want
    assert_refused(r, stats, disk_dir, want)


@pytest.mark.parametrize(
    "case",
    ["bad-async", "ini-unknown-key", "hybrid-conflict",
     "conflict"],
)
def test_bad_input_stops_before_layout(engine, tmp_path, disk_dir, case):
    """Parse-time errors stop fio before it creates any file."""
    xd, ini, _ = BAD[case]
    r, _ = run_bad(engine, tmp_path, disk_dir, xd, ini)
    assert r.rc > 0
    assert r.data is None or all(j["write"]["io_bytes"] == 0 for j in r.data["jobs"])
    assert list(disk_dir.iterdir()) == [], "fio laid out files although the options were bad"


def test_config_path_is_a_directory(engine, tmp_path, disk_dir):
    r, stats = run_bad(engine, tmp_path, disk_dir, {"config": tmp_path}, None)
    assert_refused(r, stats, disk_dir, [str(tmp_path)])


def test_trim_on_block_needs_enable_trim(engine, tmp_path, loop_dev):
    r = run_fio(
        fio_job(engine, name="btrim", xd={"type": "block"}, filename=loop_dev,
                rw="trim", bs="64k", size=4 * MiB),
        tmp_path, expect_ok=False,
    )
    assert r.rc > 0, r.text
    lines = xdevice_lines(r.text)
    assert lines and any("enable_trim" in ln and "trim" in ln for ln in lines), r.text
    if r.data is not None:
        assert all(j["trim"]["io_bytes"] == 0 for j in r.data["jobs"])


def test_failed_open_is_the_jobs_error(engine, tmp_path, disk_dir):
    """A device that cannot open fails its job with that errno, in fio's
    err= line and its JSON, as fio's own engines record theirs: not err=1
    beside the ENOENT fio noted while sizing the file it was to lay out."""
    r = run_fio(
        fio_job(engine, name="noopen", xd={"type": "tmpfs", "tmpfs_directory": "/proc"},
                filename=disk_dir / "new", rw="write", bs="4k", size=MiB),
        tmp_path, expect_ok=False,
    )
    assert r.rc > 0, r.text
    assert [ln for ln in xdevice_lines(r.text) if "tmpfs_directory=/proc" in ln], r.text
    assert r.data is not None and r.data["jobs"][0]["error"] == errno.EINVAL, r.text
    assert "No such file" not in r.text, r.text


# --- INI files and precedence -------------------------------------------------------


def test_ini_and_option_precedence(engine, tmp_path, disk_dir):
    ini = tmp_path / "xd.ini"
    ini.write_text(textwrap.dedent("""\
        ; comments and blank lines are fine

        [local]
        async = libaio
        read_ahead_kb = 64
        max_events = 64

        [monitoring]
        slow_operation_threshold_ms = 250
    """))
    stats = tmp_path / "s.json"
    run_fio(
        fio_job(engine, name="prec",
                xd={"config": ini, "async": "io_uring", "max_events": 32, "stats": stats},
                directory=disk_dir, rw="randwrite", bs="4k", size=MiB, iodepth=4),
        tmp_path,
    )
    cfg = load_stats(stats)["jobs"][0]["config"]
    assert cfg["async"] == "io_uring", "an xd_ option must override the INI file"
    assert cfg["max_events"] == 32, "an xd_ option must override the INI file"
    assert cfg["read_ahead_kb"] == 64, "INI keys not overridden must hold"
    assert cfg["slow_operation_threshold_ms"] == 250
    assert cfg["storage_type"] == "regular", "keys set nowhere keep their default"
    # the option order on the command line does not matter: INI first, then options
    run_fio(
        fio_job(engine, name="prec2", xd={"async": "sync", "config": ini, "stats": stats},
                directory=disk_dir, rw="randwrite", bs="4k", size=MiB),
        tmp_path,
    )
    cfg = load_stats(stats)["jobs"][0]["config"]
    assert cfg["async"] == "sync" and cfg["read_ahead_kb"] == 64


def test_base_directory_with_directory_option(engine, tmp_path, disk_dir):
    """A config shared with a program linking libxdevice may set
    base_directory; a job that names its directory (so fio's file names are
    absolute) runs, its data where fio put the file, and verifies. Without
    directory= the job is refused (test_bad_input.py): fio would lay out one
    file and xdevice write another."""
    ini = tmp_path / "shared.ini"
    elsewhere = tmp_path / "base"
    elsewhere.mkdir()
    ini.write_text(f"[local]\nbase_directory = {elsewhere}\n")
    run_fio(
        fio_job(engine, name="based", xd={"config": ini}, directory=disk_dir, filename="bd",
                rw="randwrite", bs="4k", size=MiB, verify="crc32c"),
        tmp_path, cwd=tmp_path,
    )
    assert (Path(disk_dir) / "bd").stat().st_size == MiB
    assert not list(elsewhere.iterdir()), "data went to base_directory, not where fio put the file"


def test_options_in_a_job_file(engine, tmp_path, disk_dir):
    """xd_ options work in job files too, per job and from [global]."""
    stats = tmp_path / "s.json"
    job = tmp_path / "two.fio"
    job.write_text(textwrap.dedent(f"""\
        [global]
        ioengine=external:{engine}
        xd_stats={stats}
        xd_async=io_uring
        directory={disk_dir}
        bs=4k
        size=1m
        rw=randwrite
        iodepth=4

        [a]
        xd_type=direct

        [b]
        xd_type=regular
        xd_async=libaio
    """))
    r = run_fio([str(job)], tmp_path)
    assert len(r.data["jobs"]) == 2
    jobs = {j["name"]: j for j in load_stats(stats)["jobs"]}
    assert jobs["a"]["config"]["storage_type"] == "direct"
    assert jobs["a"]["config"]["async"] == "io_uring"
    assert jobs["b"]["config"]["storage_type"] == "regular"
    assert jobs["b"]["config"]["async"] == "libaio"


def test_options_nothing_reads_are_named(engine, tmp_path):
    """xd_backup_to_disk on the regular type, or xd_checksum_block_size
    without xd_enable_checksums, did nothing without a word: the user
    believed them in force. Now one line names such options; the job runs.
    A hybrid reads its tiers' keys (a compressed cold tier's codec), and a
    layer switched on reads its own (the retry layer's delay with
    max_retries above 0)."""
    r = run_fio(fio_job(engine, xd={"type": "regular", "backup_to_disk": 1, "mmap_size": "1m",
                                    "checksum_block_size": 512, "retry_delay_ms": 5},
                        filename=tmp_path / "f", size="64k", rw="write"), tmp_path)
    lines = [ln for ln in xdevice_lines(r.text) if "reads no" in ln]
    assert len(lines) == 1, r.text
    for w in ("regular", "xd_backup_to_disk", "xd_mmap_size", "xd_checksum_block_size",
              "xd_retry_delay_ms", "no effect"):
        assert w in lines[0], lines[0]
    # many at once: every one named (the line was cut at ~400 bytes)
    many = {"cache_size": "1m", "cache_ttl": 5, "cache_block_size": "4k", "cache_policy": "lru",
            "checkpoint_interval_sec": 5, "checkpoint_keep": 2, "fault_seed": 1, "fault_every": 2,
            "fault_probability": 0.5, "fault_persistent": 1, "fault_offset": 0,
            "fault_length": 4096, "health_check_interval_sec": 5, "retry_delay_ms": 5,
            "exponential_backoff": 0, "backup_interval_sec": 5, "backup_to_disk": 1,
            "mmap_size": "1m", "checksum_block_size": 512, "fault_errno": "ENOSPC",
            "fault_ops": "read", "compression_type": "zstd", "compression_level": 3,
            "hot_access_threshold": 2, "cold_timeout_sec": 1, "tier_extent_size": "64k"}
    r = run_fio(fio_job(engine, xd={"type": "regular", **many},
                        filename=tmp_path / "m", size="64k", rw="write"), tmp_path)
    lines = [ln for ln in xdevice_lines(r.text) if "reads no" in ln]
    assert len(lines) == 1, r.text
    for key in many:
        assert "xd_" + key in lines[0], (key, lines[0])
    r = run_fio(fio_job(engine, xd={"type": "regular", "max_retries": 2, "retry_delay_ms": 5,
                                    "exponential_backoff": 0},
                        filename=tmp_path / "g", size="64k", rw="write"), tmp_path)
    assert not [ln for ln in xdevice_lines(r.text) if "reads no" in ln], r.text
    r = run_fio(fio_job(engine, xd={"type": "hybrid", "cold_storage_type": "compressed",
                                    "compression_type": "zstd", "enable_checksums": 1,
                                    "checksum_block_size": 512},
                        filename=tmp_path / "h", size="1m", rw="write", bs="64k",
                        unlink=1), tmp_path)  # unlink: the hot copy in /dev/shm goes too
    assert not [ln for ln in xdevice_lines(r.text) if "reads no" in ln], r.text
