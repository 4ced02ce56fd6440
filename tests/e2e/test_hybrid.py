"""The hybrid type through fio: promotion, a scan that does not promote,
the migration thread, demotion (timeout and capacity), verify while extents
move on a file two jobs share, the map surviving a restart, the write-back
flush reaching the cold file, the tier figures in xd_stats, and bad
configurations (one line each).

The kill -9 after fsync, the torn map and the policy's details are in the
unit test (tests/unit/tier.c), which drives the library directly.
"""
import contextlib
import os
import random
import signal
import struct
import subprocess
import time

import pytest

from conftest import (
    FIO,
    MiB,
    crc32c,
    assert_verified,
    fio_job,
    load_stats,
    needs_io_uring,
    verify_state,
    run_fio,
    wait_for,
    xdevice_lines,
)

SIZE = 8 * MiB

# Migration here follows the workload, never the clock: the xd-migrate thread
# is off and a pass runs after every PASS_EVERY requests to the file
# (migration_interval_requests), so a run migrates the same way on a fast
# machine and on a slow or loaded one. Jobs are bounded by their I/O, not by
# time, unless a test is about time (a timeout, the thread itself), and then
# the job's wall-clock span is many times what the test waits for.
PASS_EVERY = 64


@pytest.fixture
def hot(shm_dir):
    return shm_dir


def tier(doc, i=-1):
    return doc["jobs"][i]["layers"]["tier"]


def hybrid(hot_dir, **over):
    xd = {"type": "hybrid", "hot_directory": hot_dir, "tier_extent_size": "256k",
          "auto_migration": 0, "migration_interval_requests": PASS_EVERY}
    xd.update(over)
    return xd


def test_promotion_and_stats(engine, tmp_path, disk_dir, hot):
    """Skewed reads promote the extents they hit; the figures add up to fio's."""
    stats = tmp_path / "s.json"
    xd = hybrid(hot, stats=stats, hot_access_threshold=2, hot_cache_size="2m")
    xd["async"] = "io_uring"
    args = fio_job(engine, name="zipf", xd=xd, directory=disk_dir, filename="f", rw="randread",
                   bs="4k", size=SIZE, io_size=4 * SIZE, iodepth=8,
                   random_distribution="zipf:1.2")
    r = run_fio(args, tmp_path)
    t = tier(load_stats(stats))
    reads = r.data["jobs"][0]["read"]["total_ios"]
    assert reads == 4 * SIZE // 4096
    assert t["hot_reads"] + t["cold_reads"] == reads, (t, reads)
    assert t["promotions"] > 0 and t["bytes_migrated"] >= t["promotions"] * 256 * 1024, t
    assert 0 < t["hot_extents"] <= 8, t  # 2m of 256k extents
    assert t["migration_time"] > 0, t
    assert t["hot_hit_ratio"] == pytest.approx(t["hot_reads"] / reads, abs=1e-4)
    assert t["hot_hit_ratio"] > 0.3, t


def test_migration_thread(engine, tmp_path, disk_dir, hot):
    """With auto_migration the xd-migrate thread runs passes by itself: the
    job keeps the file open for 40 of its intervals, and reads every extent
    many times over, so one pass that runs is enough to promote."""
    stats = tmp_path / "s.json"
    xd = hybrid(hot, stats=stats, auto_migration=1, migration_interval_requests=0,
                migration_interval_sec=0.05, hot_access_threshold=1, hot_cache_size="2m")
    args = fio_job(engine, name="timer", xd=xd, directory=disk_dir, filename="f", rw="randread",
                   bs="4k", size=SIZE, time_based=1, runtime="2s")
    r = run_fio(args, tmp_path)
    t = tier(load_stats(stats))
    assert r.data["jobs"][0]["read"]["total_ios"] > 0
    assert t["promotions"] > 0 and t["hot_reads"] > 0, t


@pytest.mark.parametrize("cutoff", ["1m", "0"])
def test_scan_does_not_promote(engine, tmp_path, disk_dir, hot, cutoff):
    """fio reads the file in order four times over with 64k requests (each
    pass opens the file again: the access counts start over), so each 256k
    extent is read 4 times a pass. With tier_sequential_cutoff=1m only the
    first 1 MiB of a pass counts: its 4 extents are promoted (and read hot
    in later passes), the other 28 never, however often the scan passes
    them; with 0 every request counts and all 32 are."""
    stats = tmp_path / "s.json"
    xd = hybrid(hot, stats=stats, hot_access_threshold=2, hot_cache_size="16m",
                tier_sequential_cutoff=cutoff)
    args = fio_job(engine, name="scan", xd=xd, directory=disk_dir, filename="f", rw="read",
                   bs="64k", size=SIZE, io_size=4 * SIZE)
    r = run_fio(args, tmp_path)
    t = tier(load_stats(stats))
    assert r.data["jobs"][0]["read"]["total_ios"] == 4 * SIZE // (64 * 1024)
    if cutoff == "0":
        assert t["sequential_skipped"] == 0 and t["promotions"] == 32, t
    else:  # a pass: 16 requests counted, the other 112 not
        assert t["sequential_skipped"] == 4 * 112, t
        assert t["promotions"] == 4 and t["hot_extents"] == 4 and t["hot_reads"] > 0, t


def test_demotion_by_timeout(engine, tmp_path, disk_dir, hot):
    """Extents a finished job made hot are demoted once idle past
    cold_timeout_sec: the early job promotes its half of the file and ends,
    the late one starts after it (wait_for), finds them hot through the map,
    and reads only its own half for a second, three timeouts and more."""
    stats = tmp_path / "s.json"
    xd = hybrid(hot, stats=stats, hot_access_threshold=2, cold_timeout_sec=0.3,
                hot_cache_size="16m")
    common = dict(directory=disk_dir, filename="f", rw="randread", bs="4k", size=SIZE // 2)
    args = (["--thread=1"]
            + fio_job(engine, name="early", xd=xd, **common)
            + fio_job(engine, name="late", xd=xd, offset=SIZE // 2, wait_for="early",
                      time_based=1, runtime="1s", **common))
    run_fio(args, tmp_path)
    doc = load_stats(stats)
    by_name = {j["name"]: j["layers"]["tier"] for j in doc["jobs"]}
    early, late = by_name["early"], by_name["late"]
    # every one of the early job's 16 extents was read 64 times: all promoted
    assert early["promotions"] == 16 and early["hot_extents"] == 16, early
    # capacity (16m) never binds: every demotion is a timeout
    assert late["demotions"] >= 16, late
    assert late["hot_extents"] <= 17, late  # at most the late half (and fio's extra block)


def test_demotion_by_capacity(engine, tmp_path, disk_dir, hot):
    """A hot tier of 4 extents under uniform reads of 32: hotter extents
    displace colder ones, and the tier never holds more than 4. The window
    is long, so no demotion is a timeout."""
    stats = tmp_path / "s.json"
    xd = hybrid(hot, stats=stats, hot_access_threshold=1, hot_cache_size="1m",
                cold_timeout_sec=60)
    args = fio_job(engine, name="u", xd=xd, directory=disk_dir, filename="f", rw="randread",
                   bs="4k", size=SIZE, io_size=2 * SIZE)
    run_fio(args, tmp_path)
    t = tier(load_stats(stats))
    assert t["promotions"] > 4 and t["demotions"] > 0, t
    assert t["hot_extents"] <= 4, t


# Every extent touched once is a candidate, a pass runs every 32 requests and
# the hot tier holds 8 of the file's 32 extents, so extents move between the
# tiers all through a job: displaced by hotter ones on any machine, and idle
# ones (150 ms) timed out besides where a machine is slow.
CHURN = dict(hot_access_threshold=1, migration_interval_requests=32, cold_timeout_sec=0.15,
             hot_cache_size="2m")


@pytest.mark.parametrize("write_back", [0, 1])
def test_verify_shared_file_while_migrating(engine, tmp_path, disk_dir, hot, write_back):
    """Two jobs of one process share one hybrid file (each its own half) and
    verify it while extents keep moving."""
    stats = tmp_path / "s.json"
    xd = hybrid(hot, stats=stats, **CHURN, tier_write_back=write_back)
    xd["async"] = "io_uring"
    args = fio_job(engine, name="shared", xd=xd, directory=disk_dir, filename="f",
                   rw="randwrite", bs="4k", size=SIZE // 2, offset_increment=SIZE // 2,
                   numjobs=2, iodepth=16, verify="crc32c", verify_fatal=1, do_verify=1,
                   fsync=64, loops=2) + ["--thread=1"]
    r = run_fio(args, tmp_path)
    assert_verified(r.data, njobs=2)
    doc = load_stats(stats)
    t = tier(doc)
    hot_reads = sum(j["layers"]["tier"]["hot_reads"] for j in doc["jobs"])
    assert t["promotions"] > 0 and t["demotions"] > 0 and hot_reads > 0, t
    if write_back:
        assert sum(j["layers"]["tier"]["hot_writes"] for j in doc["jobs"]) > 0, t


@pytest.mark.parametrize("write_back", [0, 1])
def test_processes_share_a_file(engine, tmp_path, disk_dir, hot, write_back):
    """fio's default, a process per job: two job processes share one hybrid
    file (each its own half) and verify it while extents move. The extent
    state is in shared memory; passes run after every 32 requests in each
    process (one pass at a time) and on the thread of one of them."""
    stats = tmp_path / "s.json"
    xd = hybrid(hot, stats=stats, **CHURN, tier_write_back=write_back, auto_migration=1,
                migration_interval_sec=0.05)
    xd["async"] = "io_uring"
    args = fio_job(engine, name="procs", xd=xd, directory=disk_dir, filename="f",
                   rw="randwrite", bs="4k", size=SIZE // 2, offset_increment=SIZE // 2,
                   numjobs=2, iodepth=16, verify="crc32c", verify_fatal=1, do_verify=1,
                   fsync=64, loops=2)
    r = run_fio(args, tmp_path)
    assert_verified(r.data, njobs=2)
    jobs = load_stats(stats)["jobs"]
    # whole-file figures (shared): both processes' moves, as of each one's close
    t = max((j["layers"]["tier"] for j in jobs), key=lambda t: t["promotions"])
    assert t["promotions"] > 0 and t["demotions"] > 0, t
    assert sum(j["layers"]["tier"]["hot_reads"] for j in jobs) > 0, jobs
    if write_back:
        assert sum(j["layers"]["tier"]["hot_writes"] for j in jobs) > 0, jobs
    # the last process out removed the shared state
    assert not [p for p in os.listdir("/dev/shm") if p.startswith("xdevice-tier-")
                and p.endswith("-%x" % os.stat(disk_dir / "f").st_ino)]


def tier_state_names():
    return {p for p in os.listdir("/dev/shm") if p.startswith("xdevice-tier-")}


def test_unlinked_file_leaves_no_shared_state(engine, tmp_path, disk_dir, hot):
    """fio's unlink=1 removes the cold file before the last close: the
    shared state is still removed, by the name it was made under (it was
    left in /dev/shm, named after a file no longer there, once per run)."""
    # made empty here first (a file to lay out), so the state's name is known
    # whatever other hybrid runs on the machine make meanwhile; held open
    # until the end, so that its inode number, and so the name, is not given
    # to a file another test makes once fio has removed this one (make test
    # once saw a test running beside it holding a state of that name)
    (disk_dir / "f").touch()
    keep = os.open(disk_dir / "f", os.O_RDONLY)
    st = os.fstat(keep)
    name = f"xdevice-tier-{st.st_dev:x}-{st.st_ino:x}"
    # no verify: a job that unlinks the file while the other still uses it
    # breaks fio's verify pass, which reopens the file by name and finds an
    # empty new one ("bad magic header 0": fio's own psync fails 3 of 160
    # such runs on a loaded machine, as this test did under make test)
    args = fio_job(engine, name="gone", xd=hybrid(hot), directory=disk_dir, filename="f",
                   rw="randwrite", bs="4k", size=SIZE // 2, offset_increment=SIZE // 2,
                   numjobs=2, unlink=1)
    try:
        jobs = run_fio(args, tmp_path).data["jobs"]
        assert [(j["error"], j["write"]["io_bytes"]) for j in jobs] == [(0, SIZE // 2)] * 2, jobs
        assert not (disk_dir / "f").exists()
        assert name not in tier_state_names()
    finally:
        os.close(keep)


@pytest.mark.parametrize("case", ["name-too-long", "link-at-map"])
def test_refused_map_leaves_nothing_in_hot_directory(engine, tmp_path, disk_dir, hot, case):
    """A file whose extent map cannot be made (a name with no room for
    ".xdmap"; a symlink planted at the map's name) is refused with one line,
    and the hot tier's copy, which lives in RAM until removed, is not made."""
    name = "m" * 250 if case == "name-too-long" else "f"
    planted = tmp_path / "elsewhere"
    if case == "link-at-map":
        planted.write_bytes(b"not a map")
        os.symlink(planted, disk_dir / "f.xdmap")
    args = fio_job(engine, name="bad", xd=hybrid(hot), directory=disk_dir, filename=name,
                   rw="randwrite", bs="4k", size=MiB)
    r = run_fio(args, tmp_path, expect_ok=False)
    assert r.rc != 0
    lines = xdevice_lines(r.text)
    assert len(lines) == 1, lines
    want = "at most 249" if case == "name-too-long" else "f.xdmap"
    assert want in lines[0], lines[0]
    assert os.listdir(hot) == [], os.listdir(hot)
    if case == "link-at-map":
        assert planted.read_bytes() == b"not a map"


def write_then(engine, disk_dir, xd, **over):
    opts = dict(directory=disk_dir, filename="f", rw="randwrite", bs="4k", size=SIZE,
                iodepth=8, verify="crc32c", verify_fatal=1, do_verify=1)
    opts.update(over)
    return fio_job(engine, name="w", xd=xd, **opts)


def verify_only(engine, disk_dir, xd):
    return fio_job(engine, name="w", xd=xd, directory=disk_dir, filename="f", rw="randwrite",
                   bs="4k", size=SIZE, verify="crc32c", verify_fatal=1, verify_only=None)


def test_restart_finds_hot_extents(engine, tmp_path, disk_dir, hot):
    """A second fio run finds the data, and reads hot extents through the
    persisted map with no migration at all."""
    first = tmp_path / "first.json"
    xd = hybrid(hot, **CHURN, stats=first)
    xd["cold_timeout_sec"] = 60
    run_fio(write_then(engine, disk_dir, xd), tmp_path)
    # fio reopens the file for its verify phase: the file's figures count once
    # (exactly the 8 MiB fio asked for, in 256k extents)
    assert tier(load_stats(first))["extents"] == 32
    stats = tmp_path / "s.json"
    xd2 = hybrid(hot, migration_interval_requests=0, stats=stats)  # no pass at all
    r = run_fio(verify_only(engine, disk_dir, xd2), tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == SIZE
    t = tier(load_stats(stats))
    assert t["promotions"] == 0 and t["hot_extents"] > 0 and t["hot_reads"] > 0, t


def test_write_back_flushes_to_cold_file(engine, tmp_path, disk_dir, hot):
    """With tier_write_back the hot tier takes the writes; at close every byte
    is in the cold file, which the regular type then verifies on its own."""
    stats = tmp_path / "s.json"
    xd = hybrid(hot, **CHURN, tier_write_back=1, stats=stats)
    xd["cold_timeout_sec"] = 60
    run_fio(write_then(engine, disk_dir, xd, loops=2), tmp_path)
    t = tier(load_stats(stats))
    assert t["hot_writes"] > 0 and t["flushes"] > 0, t
    r = run_fio(verify_only(engine, disk_dir, {"type": "regular"}), tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == SIZE


# --- the cold file written by another program; read-only jobs ---------------------


def fio_plain(args, tmp_path, **kw):
    """fio with its own output: (rc, text), for jobs that fail as psync's do."""
    p = subprocess.run([FIO, *[str(a) for a in args]], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path, **kw)
    return p.returncode, p.stdout + p.stderr


def pattern_job(engine, f, xd, pattern, **opts):
    job = dict(filename=f, bs="4k", size=MiB, verify="pattern", verify_pattern=pattern,
               verify_state_save=0, **opts)
    return fio_job(engine, name="p", xd=xd, **job) if xd else \
        ["--name=p", "--ioengine=psync", *[f"--{k}={v}" for k, v in job.items()]]


def test_file_rewritten_by_another_program(engine, tmp_path, disk_dir, hot):
    """psync rewrites a hybrid file in place after hybrid made most of its
    extents hot: the next hybrid open drops the hot copies, made before (one
    notice), so hybrid reads what psync wrote, and no later demotion, of a
    read-only job either, copies the old bytes back over it. Hybrid read
    the old bytes from its hot tier, and a --readonly job's demotions wrote
    them back into the file. A file truncated behind its back fails verify,
    as with psync, instead of passing on the old data."""
    f = disk_dir / "f"
    xd = hybrid(hot, tier_extent_size="64k", hot_access_threshold=1,
                migration_interval_requests=4, hot_cache_size="1m", stats=tmp_path / "s.json")
    run_fio(pattern_job(engine, f, xd, "0xaaaaaaaa", rw="randwrite", loops=3), tmp_path)
    assert tier(load_stats(tmp_path / "s.json"))["hot_extents"] > 0
    run_fio(pattern_job(engine, f, None, "0xbbbbbbbb", rw="write"), tmp_path)
    r = run_fio(pattern_job(engine, f, xd, "0xbbbbbbbb", rw="read", verify_only=1), tmp_path)
    lines = xdevice_lines(r.text)
    assert len(lines) == 1 and "changed by another program" in lines[0], lines
    before = f.read_bytes()
    ro = hybrid(hot, tier_extent_size="64k", hot_access_threshold=1,
                migration_interval_requests=4, cold_timeout_sec=0.05)
    run_fio(pattern_job(engine, f, ro, "0xbbbbbbbb", rw="randread", verify_only=1, loops=4)
            + ["--readonly"], tmp_path)
    assert f.read_bytes() == before
    run_fio(pattern_job(engine, f, None, "0xbbbbbbbb", rw="read", verify_only=1), tmp_path)
    os.truncate(f, 0)
    rc, out = fio_plain(pattern_job(engine, f, None, "0xbbbbbbbb", rw="read", verify_only=1),
                        tmp_path)
    assert rc != 0 and "verify failed" in out, out  # psync
    os.truncate(f, 0)
    rc, out = fio_plain(pattern_job(engine, f, xd, "0xbbbbbbbb", rw="read", verify_only=1),
                        tmp_path)
    assert rc != 0 and "verify failed" in out, out


def map_stamp(f):
    """(state, size) of the cold file's stamp in f.xdmap (docs/EXTENTMAP.md:
    the record at offset 64; state 0 open, 1 clean, 2 dirty)."""
    raw = (f.parent / (f.name + ".xdmap")).read_bytes()[64:112]
    assert raw[:8] == b"XDSTAMP1", raw
    return struct.unpack_from("<I", raw, 8)[0], struct.unpack_from("<Q", raw, 40)[0]


@pytest.mark.parametrize("cold", ["regular", "compressed"])
def test_growth_while_only_readers_have_it_open(engine, tmp_path, disk_dir, hot, cold):
    """A second fio run names a larger size, so its setup grows the hybrid
    file, while a --readonly job of another run has the file open; that
    reader closes last, before the second run's job opens the file (a
    startdelay, or a slow start). The reader's close recorded the file as
    it had found it, so the next open took xdevice's own growth for another
    program's change: "changed by another program (size 2097152, was
    1048576)", and every hot copy dropped (with dirty ones, the open
    refused). The growth now moves what the open readers found with it.
    Here create_only=1 runs the second run's setup alone, so that order is
    certain."""
    f = disk_dir / "g"
    xd = hybrid(hot, tier_extent_size="64k", hot_access_threshold=1, cold_storage_type=cold,
                migration_interval_requests=4, stats=tmp_path / "w.json")
    run_fio(pattern_job(engine, f, xd, "0xaaaaaaaa", rw="randwrite", loops=3), tmp_path)
    assert tier(load_stats(tmp_path / "w.json"))["hot_extents"] > 0
    quiet = hybrid(hot, tier_extent_size="64k", migration_interval_requests=0,
                   cold_storage_type=cold)
    reader = ["--readonly", *fio_job(engine, name="r", xd=quiet, filename=f, bs="4k", size=MiB,
                                     rw="randread", time_based=None, runtime=600, thread=None)]
    proc = subprocess.Popen([FIO, *[str(a) for a in reader]], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    st = f.stat()
    state = f"xdevice-tier-{st.st_dev:x}-{st.st_ino:x}"
    wait_for(proc, lambda: state in tier_state_names(), 60, "the reader's open")
    run_fio(fio_job(engine, name="grow", xd=quiet, filename=f, bs="4k", size=2 * MiB,
                    rw="randwrite", create_only=1), tmp_path)
    grown = f.stat().st_size
    assert grown > st.st_size
    proc.send_signal(signal.SIGINT)  # fio ends the job and closes the file
    proc.communicate(timeout=120)
    assert map_stamp(f) == (1, grown)
    stats = tmp_path / "r.json"
    r = run_fio(pattern_job(engine, f, dict(quiet, stats=stats), "0xaaaaaaaa", rw="read",
                            verify_only=1), tmp_path)
    assert not [ln for ln in xdevice_lines(r.text) if "changed by another program" in ln], r.text
    assert tier(load_stats(stats))["hot_extents"] > 0


@pytest.mark.parametrize("cold", ["regular", "compressed"])
def test_read_only_job_writes_nothing(engine, tmp_path, disk_dir, hot, cold):
    """fio --readonly naming a size past the file's end: the job fails with
    EIO at the end, as psync's does, and the file is left as it was. The
    hybrid type opened its cold file to be created and grown to the job's
    size: the job read 1 MiB of zeros and passed, and the file doubled."""
    f = disk_dir / "h"
    xd = hybrid(hot, cold_storage_type=cold)
    run_fio(fio_job(engine, name="w", xd=xd, filename=f, bs="4k", size=MiB, rw="write"),
            tmp_path)
    before = f.read_bytes()
    rc, out = fio_plain(["--readonly", *fio_job(engine, name="r", xd=xd, filename=f, bs="4k",
                                                size=2 * MiB, rw="read")], tmp_path)
    assert rc != 0 and "err= 5" in out, out
    assert f.read_bytes() == before
    if cold == "regular":  # psync, on the same file
        rc, out = fio_plain(["--readonly", "--name=r", "--ioengine=psync", f"--filename={f}",
                             "--bs=4k", "--size=2m", "--rw=read"], tmp_path)
        assert rc != 0 and "err= 5" in out, out


@pytest.mark.parametrize("readonly", [False, True])
def test_read_job_on_a_read_only_file(engine, tmp_path, disk_dir, hot, readonly):
    """A job that only reads a hybrid file it may not write (mode 0444, run
    as nobody when root, who may write any file) passes and leaves the file
    as it was, as psync's does: the hybrid type's migration opened the cold
    file for writing, and the job failed with EACCES."""
    as_user = {}
    if os.geteuid() == 0:
        as_user = dict(user=65534, group=65534)
        os.chown(disk_dir, 65534, 65534)
        os.chown(hot, 65534, 65534)
    f = disk_dir / "ro"
    xd = hybrid(hot, tier_extent_size="64k", hot_access_threshold=1,
                migration_interval_requests=4)
    job = dict(filename=f, bs="4k", size=MiB, verify="crc32c", verify_state_save=0)
    rc, out = fio_plain(fio_job(engine, name="w", xd=xd, rw="write", **job), tmp_path, **as_user)
    assert rc == 0, out
    os.chmod(f, 0o444)
    before = f.read_bytes()
    extra = ["--readonly"] if readonly else []
    rc, out = fio_plain([*extra, *fio_job(engine, name="r", xd=xd, rw="randread", loops=2,
                                          verify_only=1, **job)], tmp_path, **as_user)
    assert rc == 0 and "err= 0" in out, out
    assert f.read_bytes() == before


# --- read-only where the map cannot be written -------------------------------------


@contextlib.contextmanager
def read_only_view(src, dst):
    """src bind-mounted read-only at dst (a directory this makes), unmounted
    after: root writes any file mode allows it, a read-only mount it cannot.
    Skipped where mounting is not allowed (not root)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root (chmod does not stop root)")
    dst.mkdir()
    p = subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True, text=True)
    if p.returncode:
        pytest.skip(f"cannot bind-mount: {p.stderr.strip()}")
    try:
        # two steps: util-linux before 2.27 ignores ro on the bind itself
        subprocess.run(["mount", "-o", "remount,bind,ro", str(dst)], check=True)
        yield dst
    finally:
        subprocess.run(["umount", str(dst)], check=True)


def stamp_state(f):
    """The state of the cold file's stamp in f's map (docs/EXTENTMAP.md)."""
    data = f.with_name(f.name + ".xdmap").read_bytes()[64:140]
    assert data[:8] == b"XDSTAMP1" and struct.unpack_from("<I", data, 72)[0] == crc32c(data[:72])
    return struct.unpack_from("<I", data, 8)[0]


def set_stamp_state(f, state):
    """The stamp rewritten with another state, as a process would have left it."""
    m = f.with_name(f.name + ".xdmap")
    data = bytearray(m.read_bytes())
    struct.pack_into("<I", data, 72, state)
    struct.pack_into("<I", data, 136, crc32c(bytes(data[64:136])))
    m.write_bytes(bytes(data))


def made_hot(engine, tmp_path, f, hot, write_back=0):
    """f written and read with a pass every 4 requests, so extents are hot
    when it closes (clean: its close copies every dirty one back)."""
    xd = hybrid(hot, tier_extent_size="64k", hot_access_threshold=1, cold_timeout_sec=60,
                migration_interval_requests=4, tier_write_back=write_back)
    run_fio(fio_job(engine, name="w", xd=xd, filename=f, bs="4k", size=MiB, rw="randwrite",
                    verify="crc32c", verify_state_save=0, loops=2), tmp_path)
    assert map_hot_extents(f) > 0 and stamp_state(f) == 1
    return xd


def read_job(engine, f, xd, **opts):
    return fio_job(engine, name="r", xd=xd, filename=f, bs="4k", size=MiB, rw="randread",
                   verify="crc32c", verify_only=1, verify_state_save=0, **opts)


def listing(*dirs):
    return {d: sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in d.iterdir())
            for d in dirs}


@pytest.mark.parametrize("readonly", [True, False])
def test_read_only_mount_reads_the_file(engine, tmp_path, disk_dir, hot, readonly):
    """A job that only reads a hybrid file through a read-only mount passes,
    as psync's does, with one notice on stderr (the hot tier is not used),
    and nothing is made or written beside the file or in the hot tier. The
    open failed on the map ("cannot open the hybrid type's extent map:
    Read-only file system", err=30)."""
    d = disk_dir / "d"
    d.mkdir()
    xd = hybrid(hot)
    run_fio(fio_job(engine, name="w", xd=xd, filename=d / "f", bs="4k", size=MiB, rw="write",
                    verify="crc32c", do_verify=0, verify_state_save=0), tmp_path)
    before = listing(d, hot)
    with read_only_view(d, disk_dir / "ro") as ro:
        extra = ["--readonly"] if readonly else []
        r = run_fio([*extra, *read_job(engine, ro / "f", xd)], tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == MiB
    lines = xdevice_lines(r.text)
    assert len(lines) == 1 and "hot tier is not used" in lines[0], lines
    assert listing(d, hot) == before


def test_read_only_directory_reads_the_file(engine, tmp_path, disk_dir, hot):
    """The same where the directory and the map are not the caller's to
    write (EACCES: a file of root's read by nobody, or a directory made
    read-only by its non-root owner): the open failed on the map."""
    d = disk_dir / "d"
    d.mkdir()
    xd = hybrid(hot)
    run_fio(fio_job(engine, name="w", xd=xd, filename=d / "f", bs="4k", size=MiB, rw="write",
                    verify="crc32c", do_verify=0, verify_state_save=0), tmp_path)
    before = listing(d, hot)
    as_user = {}
    if os.geteuid() == 0:
        as_user = dict(user=65534, group=65534)
        for p in (disk_dir, d, hot):
            os.chmod(p, 0o755)
    else:
        os.chmod(d, 0o555)
    try:
        rc, out = fio_plain(["--readonly", *read_job(engine, d / "f", xd)], tmp_path, **as_user)
    finally:
        os.chmod(d, 0o755)
    lines = xdevice_lines(out)
    assert rc == 0 and "err= 0" in out, out
    assert len(lines) == 1 and "Permission denied" in lines[0], lines
    assert listing(d, hot) == before


@pytest.mark.parametrize("state", [1, 3])
def test_read_only_mount_clean_map_reads_the_file(engine, tmp_path, disk_dir, hot, state):
    """The map names hot extents, and its stamp says the file holds every
    byte (1: closed with every copy clean; 3: open, every write through, as
    a kill leaves it): a read-only mount's job reads them all from the
    file, and verifies."""
    d = disk_dir / "d"
    d.mkdir()
    xd = made_hot(engine, tmp_path, d / "f", hot, write_back=1)
    if state != 1:
        set_stamp_state(d / "f", state)
    stats = tmp_path / "s.json"
    with read_only_view(d, disk_dir / "ro") as ro:
        r = run_fio(["--readonly", *read_job(engine, ro / "f", dict(xd, stats=stats))],
                    tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == MiB
    t = tier(load_stats(stats))
    assert t["hot_reads"] == 0 and t["cold_reads"] > 0 and t["promotions"] == 0, t
    assert map_hot_extents(d / "f") > 0 and stamp_state(d / "f") == state


@pytest.mark.parametrize("state", [0, 2])
def test_read_only_mount_dirty_map_refused(engine, tmp_path, disk_dir, hot, state):
    """The map says hot copies may hold writes the file lacks (0: a
    write-back process killed with the file open; 2: closed dirty): a
    read-only mount's job is refused in one line naming the file and the
    map, rather than read older data from the file. Opened writable once
    where the map can be written, the copies go back, and it reads."""
    d = disk_dir / "d"
    d.mkdir()
    f = d / "f"
    xd = made_hot(engine, tmp_path, f, hot, write_back=1)
    set_stamp_state(f, state)
    data = f.read_bytes()
    with read_only_view(d, disk_dir / "ro") as ro:
        rc, out = fio_plain(["--readonly", *read_job(engine, ro / "f", xd)], tmp_path)
        lines = xdevice_lines(out)
        assert rc != 0 and len(lines) == 1, out
        assert f"{os.path.realpath(ro / 'f')}.xdmap" in lines[0] and "lacks" in lines[0], lines
        assert f.read_bytes() == data
        run_fio(fio_job(engine, name="v", xd=xd, filename=f, bs="4k", size=MiB,
                        rw="randwrite", verify="crc32c", verify_only=1, verify_state_save=0),
                tmp_path)
        assert stamp_state(f) == 1
        run_fio(["--readonly", *read_job(engine, ro / "f", xd)], tmp_path)


def lock_held(f, start):
    """Whether /proc/locks has a lock on f's inode starting at start."""
    st = os.stat(f)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as locks:
        return any(ln.split()[5:7] == [dev, str(start)] for ln in locks if "OFDLCK" in ln)


def running_job(engine, tmp_path, args, ready, what):
    proc = subprocess.Popen([FIO, *[str(a) for a in args]], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(proc, ready, 60, what)
    return proc


@pytest.mark.parametrize("first", ["writer", "reader"])
def test_read_only_mount_beside_a_writer(engine, tmp_path, disk_dir, hot, first):
    """A read-only mount's job and a write-back writer through a writable
    path to the same file: whichever comes second is refused in one line.
    Read from the file alone, the reader missed writes the writer's hot
    tier held; a writer joining the reader would write there."""
    d = disk_dir / "d"
    d.mkdir()
    f = d / "f"
    xd = made_hot(engine, tmp_path, f, hot, write_back=1)
    with read_only_view(d, disk_dir / "ro") as ro:
        writer = fio_job(engine, name="w", xd=xd, filename=f, bs="4k", size=MiB,
                         rw="randwrite", time_based=None, runtime=300, rate_iops=500,
                         thread=None)
        reader = ["--readonly", *fio_job(engine, name="r", xd=xd, filename=ro / "f", bs="4k",
                                         size=MiB, rw="randread", time_based=None,
                                         runtime=300, rate_iops=500, thread=None)]
        if first == "writer":
            proc = running_job(engine, tmp_path, writer,
                               lambda: lock_held(f.with_name("f.xdmap"), 0), "the writer attached")
            second, want = reader, "another process has the file open"
        else:
            proc = running_job(engine, tmp_path, reader,
                               lambda: lock_held(f, 2 ** 63 - 2), "the reader's lock")
            second, want = writer, "open in another process read-only"
        try:
            rc, out = fio_plain(second, tmp_path)
        finally:  # fio ends its jobs, which close the file: nothing left in /dev/shm
            proc.terminate()
            proc.communicate(timeout=60)
        lines = xdevice_lines(out)
        assert rc != 0 and len(lines) == 1 and want in lines[0], out
        assert str(f.name) in lines[0], lines


# --- kill -9 in write-back (issue 12, defect 6) -----------------------------------

# `make torture-hybrid` runs many more rounds
KILL_ROUNDS = int(os.environ.get("XD_TORTURE_ROUNDS", "3"))


def promoted(hot_dir):
    """Whether the hot copy of the file holds data: a pass has promoted an
    extent, so a kill lands while extents are hot."""
    return any(p.stat().st_blocks > 0 for p in hot_dir.glob("*%2Fk"))


def written_blocks(paths):
    """The distinct 4 KiB blocks of the file, in its cold file or its hot
    copy, that carry fio's verify header."""
    written = set()
    for p in paths:
        data = p.read_bytes() if p.exists() else b""
        written.update(off for off in range(0, len(data) - 1, 4096)
                       if data[off] == 0xCA and data[off + 1] == 0xAC)
    return len(written)


@needs_io_uring
@pytest.mark.parametrize("round_", range(KILL_ROUNDS))
def test_kill_9_write_back(engine, tmp_path, disk_dir, hot, round_):
    """fio's trigger workflow on a write-back hybrid file while extents move
    (passes every 16 requests in the job's thread and every 50 ms on the
    xd-migrate thread): at a moment drawn per round, fio saves its verify
    state and is killed; after a restart every write fio saw complete reads
    back. The restart verifies at iodepth=1: fio counts its window of
    possibly unfinished writes in completed reads, so a verify run at
    iodepth N also checks up to N writes still in flight at the kill (they
    read as zeros; see docs/DESIGN.md). The completed writes of that window
    are checked here, in the cold file, after the restart's clean close has
    flushed every hot extent."""
    f = disk_dir / "k"
    xd = hybrid(hot, tier_write_back=1, tier_extent_size="64k", hot_access_threshold=1,
                hot_cache_size="1m", cold_timeout_sec=0.1, auto_migration=1,
                migration_interval_sec=0.05, migration_interval_requests=16)
    xd["async"] = "io_uring"
    common = dict(filename=f, rw="randwrite", bs="4k", size=4 * MiB, fsync=1, verify="crc32c",
                  verify_fatal=1, thread=None)
    trig = tmp_path / "trigger"
    cmd = [FIO, f"--trigger-file={trig}", "--trigger=kill -9 $PPID",
           *fio_job(engine, name="k", xd=xd, iodepth=8, rate_iops=600, **common)]
    proc = subprocess.Popen([str(c) for c in cmd], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(proc, lambda: promoted(hot), 60, "a promotion")
    # more writes than the queue's depth landed before the kill (a fixed
    # pause from the first promotion is not enough on a loaded machine)
    wait_for(proc, lambda: written_blocks([f, *hot.glob("*%2Fk")]) >= 16, 60, "16 written blocks")
    time.sleep(random.Random(round_).uniform(0, 1.0))
    trig.touch()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (-9, 137), (proc.returncode, out, err)
    numberio, depth, comps = verify_state(tmp_path / "local-k-0-verify.state")
    assert numberio > depth and depth == 8 and comps, (numberio, depth, comps)

    check = fio_job(engine, name="k", xd=xd, iodepth=1, verify_state_load=1,
                    verify_state_save=0, verify_only=None, **common)
    r = run_fio(check, tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] >= (numberio - depth) * 4096
    data = f.read_bytes()
    for off in comps:
        magic, = struct.unpack_from("<H", data, off)
        where, = struct.unpack_from("<Q", data, off + 16)  # struct verify_header's offset
        assert magic == 0xACCA and where == off, (off, hex(magic), where)


# --- kill -9, then what the next open keeps ------------------------------------


def map_hot_extents(f):
    """How many extents the map beside f names hot: entries after its
    4096-byte header, 16 bytes each, extent i then 1 (docs/EXTENTMAP.md)."""
    m = f.with_name(f.name + ".xdmap")
    data = m.read_bytes() if m.exists() else b""
    return sum(1 for off in range(4096, len(data) - 15, 16)
               if struct.unpack_from("<QI", data, off) == ((off - 4096) // 16, 1))


def hot_copy_bytes(hot_dir, f):
    """The hot copy of f (named after its absolute path), b"" when none."""
    copies = list(hot_dir.glob(f"*%2F{f.name}"))
    return copies[0].read_bytes() if copies else b""


def killed_mid_write(engine, tmp_path, f, xd, pattern, ready, what):
    """A job writing pattern over f in laps, killed (kill -9) once ready()
    holds: it never closes the file."""
    cmd = [FIO, *pattern_job(engine, f, xd, pattern, rw="write", time_based=None, runtime=300,
                             rate_iops=2000, do_verify=0, thread=None)]
    proc = subprocess.Popen([str(c) for c in cmd], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(proc, ready, 60, what)
    proc.kill()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -9, (proc.returncode, out, err)


def test_killed_write_through_then_rewritten(engine, tmp_path, disk_dir, hot):
    """A write-through job is killed with extents hot, and psync rewrites
    the file before xdevice opens it again: the next open drops the hot
    copies (one notice naming the file: it holds every acknowledged
    write), so an xdevice verify reads psync's data and the file keeps it.
    The copies were kept, taken as dirty in write-through too: xdevice
    served them over psync's data, and its close copied them back over it."""
    f = disk_dir / "t"
    xd = hybrid(hot, tier_extent_size="64k", hot_access_threshold=1,
                migration_interval_requests=4, hot_cache_size="1m")
    killed_mid_write(engine, tmp_path, f, xd, "0xaaaaaaaa", lambda: map_hot_extents(f) > 0,
                     "an extent the map names hot")
    run_fio(pattern_job(engine, f, None, "0xbbbbbbbb", rw="write"), tmp_path)  # psync
    r = run_fio(pattern_job(engine, f, xd, "0xbbbbbbbb", rw="read", verify_only=1), tmp_path)
    lines = xdevice_lines(r.text)
    assert len(lines) == 1 and str(f) in lines[0] and "not closed" in lines[0], lines
    assert f.read_bytes() == b"\xbb" * MiB


def test_killed_write_back_keeps_its_writes(engine, tmp_path, disk_dir, hot):
    """A write-back job is killed with writes that only the hot copy holds
    (never fsynced: test_kill_9_write_back covers fsynced ones): the next
    open keeps every copy, taken as dirty, so an xdevice verify reads them
    back and its close copies them into the file. A restart that dropped
    the copies, as after a write-through job's kill, lost those writes."""
    f = disk_dir / "b"
    run_fio(pattern_job(engine, f, None, "0xbbbbbbbb", rw="write"), tmp_path)  # psync
    xd = hybrid(hot, tier_write_back=1, tier_extent_size="64k", hot_access_threshold=1,
                migration_interval_requests=4, hot_cache_size="1m")
    new = b"\xaa" * 4096

    def written_some_hot_alone():
        cold, copy = f.read_bytes(), hot_copy_bytes(hot, f)
        blocks = range(0, MiB, 4096)
        every = all(new in (cold[o:o + 4096], copy[o:o + 4096]) for o in blocks)
        return every and any(copy[o:o + 4096] == new != cold[o:o + 4096] for o in blocks)

    killed_mid_write(engine, tmp_path, f, xd, "0xaaaaaaaa", written_some_hot_alone,
                     "every block written, some in the hot copy alone")
    r = run_fio(pattern_job(engine, f, xd, "0xaaaaaaaa", rw="read", verify_only=1), tmp_path)
    assert not xdevice_lines(r.text), r.text
    assert f.read_bytes() == new * (MiB // 4096)


BAD = {
    "hot-not-tmpfs": ({"hot_directory": "DISK"}, ["hot_directory=", "not on a tmpfs"]),
    "extent-not-power-of-two": ({"tier_extent_size": "96k"},
                                ["tier_extent_size=98304", "power of two"]),
    "interval-too-short": ({"migration_interval_sec": "0.001"},
                           ["xd_migration_interval_sec", "0.001", "out of range"]),
    "hot-smaller-than-extent": ({"hot_cache_size": "64k", "tier_extent_size": "1m"},
                                ["hot_cache_size=65536", "tier_extent_size"]),
    "cold-type-not-allowed": ({"cold_storage_type": "tmpfs"},
                              ["xd_cold_storage_type", "tmpfs", "regular|mmap|direct|sparse|compressed"]),
    "direct-io-on-hybrid": ({"use_direct_io": "1"}, ["use_direct_io", "cold_storage_type=direct"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_one_line(engine, tmp_path, disk_dir, hot, case):
    xd, want = BAD[case]
    xd = {k: (str(disk_dir) if v == "DISK" else v) for k, v in xd.items()}
    xd = {"type": "hybrid", **({"hot_directory": hot} if "hot_directory" not in xd else {}), **xd}
    args = fio_job(engine, name="bad", xd=xd, directory=disk_dir, rw="randread", bs="4k",
                   size=MiB)
    r = run_fio(args, tmp_path, expect_ok=False)
    assert r.rc != 0
    lines = xdevice_lines(r.text)
    assert len(lines) == 1, lines
    for w in want:
        assert w in lines[0], (w, lines[0])
    if r.data:
        assert all(j["read"]["io_bytes"] == 0 for j in r.data["jobs"])
    assert not os.path.exists(os.path.join(disk_dir, "bad.0.0.xdmap"))


@pytest.mark.parametrize("cold", ["regular", "mmap", "direct", "sparse", "compressed"])
def test_every_cold_type_verifies(engine, tmp_path, disk_dir, hot, cold):
    """The cold tier is any file type, built by the same chain code."""
    stats = tmp_path / "s.json"
    xd = hybrid(hot, **CHURN, cold_storage_type=cold, stats=stats)
    xd["async"] = "libaio"
    r = run_fio(write_then(engine, disk_dir, xd, size=4 * MiB), tmp_path)
    assert_verified(r.data, size=4 * MiB, njobs=1)
    t = tier(load_stats(stats))
    assert t["promotions"] > 0, t


@pytest.mark.parametrize("write_cache", [0, 1])
def test_cache_above_the_tiers(engine, tmp_path, disk_dir, hot, write_cache):
    """enable_read_cache puts one cache above the tier layer (never one per
    tier: the migration thread writes the tiers through devices of its own)."""
    stats = tmp_path / "s.json"
    xd = hybrid(hot, **CHURN, stats=stats, enable_read_cache=1, enable_write_cache=write_cache)
    xd["async"] = "io_uring"
    args = fio_job(engine, name="c", xd=xd, directory=disk_dir, filename="f", rw="randwrite",
                   bs="4k", size=SIZE // 2, offset_increment=SIZE // 2, numjobs=2, iodepth=16,
                   verify="crc32c", verify_fatal=1, do_verify=1) + ["--thread=1"]
    r = run_fio(args, tmp_path)
    assert_verified(r.data, njobs=2)
    jobs = load_stats(stats)["jobs"]
    assert all("cache" in j["layers"] for j in jobs), jobs[0]["layers"]
    # whole-file figures as of each job's close; the one closing last saw most.
    # A write-back cache absorbs most I/O before the tiers see it: how many
    # requests reach them (passes run per request) depends on when its
    # flusher runs and how much it merges; verify is what counts there.
    if not write_cache:
        assert max(j["layers"]["tier"]["promotions"] for j in jobs) > 0, jobs[0]["layers"]
