"""The mirror layer under real fio: every copy holds the same bytes.

fio writes and verifies through the layer; the copies are then compared on
disk byte for byte. A copy that cannot be opened (its path is a directory)
is degraded: the job still passes and layers.mirror names it. Bad
mirror_directories are refused with one line. The repair of a copy that
fails a read is tested in tests/unit/mirror.c, over a layer that fails on
demand.
"""
import filecmp
import os
import random
import signal
import subprocess
import time

import pytest

from conftest import (FIO, MiB, REPO, assert_verified, fio_job, load_stats, needs_io_uring, records,
                      run_fio, run_fio_until, verify_state, wait_for, xdevice_lines)

SIZE = 4 * MiB


def mirror_job(engine, primary, dirs, stats, async_mode="io_uring", xd_more=None, **over):
    xd = {"async": async_mode, "enable_redundancy": "true",
          "redundancy_factor": len(dirs) + 1, "mirror_directories": ",".join(map(str, dirs)),
          "stats": stats, **(xd_more or {})}
    opts = dict(directory=primary, rw="randwrite", bs="4k", size=SIZE, iodepth=16,
                verify="crc32c", do_verify=1, verify_fatal=1)
    opts.update(over)
    return fio_job(engine, name="m", xd=xd, **opts)


def primary_and_copy(disk_dir):
    """The primary's directory and one copy's, made fresh in disk_dir."""
    primary, copy = disk_dir / "p", disk_dir / "c"
    primary.mkdir()
    copy.mkdir()
    return primary, copy


def mirror_figures(stats):
    layers = load_stats(stats)["jobs"][0]["layers"]
    assert "mirror" in layers, f"no mirror layer in the stats: {list(layers)}"
    return layers["mirror"]


@pytest.mark.parametrize("async_mode,copies", [("sync", 2), ("io_uring", 2), ("io_uring", 3)])
def test_copies_are_identical_after_verify(engine, tmp_path, disk_dir, async_mode, copies):
    primary = disk_dir / "primary"
    dirs = [disk_dir / f"copy{i}" for i in range(1, copies)]
    for d in [primary, *dirs]:
        d.mkdir()
    stats = tmp_path / "s.json"
    r = run_fio(mirror_job(engine, primary, dirs, stats, async_mode), tmp_path)
    assert_verified(r.data, size=SIZE)
    for d in dirs:
        assert filecmp.cmp(primary / "m.0.0", d / "m.0.0", shallow=False), f"{d} differs"
    m = mirror_figures(stats)
    assert m["copies"] == copies and m["degraded"] == 0 and m["degraded_copies"] == [], m
    # reads come from the primary while it is healthy
    assert m["reads_per_copy"][0] == SIZE // 4096 and sum(m["reads_per_copy"][1:]) == 0, m
    assert m["write_errors"] == 0 and m["read_errors"] == 0 and m["repairs"] == 0, m


@pytest.mark.parametrize("proc", [["--thread=1"], []], ids=["threads", "processes"])
@pytest.mark.parametrize("async_mode,iodepth", [("sync", 1), ("io_uring", 8)])
def test_jobs_writing_the_same_bytes_leave_identical_copies(engine, tmp_path, disk_dir, proc,
                                                              async_mode, iodepth):
    """Three jobs write the same 1 MiB (numjobs on one file), 512 bytes to
    16k at 512-byte offsets, for 3 s. Every write goes to both copies and
    the copies' writes land in no set order: without turns copy 1 kept one
    job's data and copy 2 another's (thousands of bytes differed after such
    a run with threads), so once the primary failed a block read as an
    older write than the one read before. A write holds its range's turn
    until both copies have it: the copies end identical."""
    primary, copy = disk_dir / "primary", disk_dir / "copy"
    primary.mkdir()
    copy.mkdir()
    stats = tmp_path / "s.json"
    xd = {"async": async_mode, "enable_redundancy": "true", "redundancy_factor": 2,
          "mirror_directories": copy, "stats": stats}
    r = run_fio(fio_job(engine, name="m", xd=xd, filename=primary / "same", rw="randwrite",
                        bsrange="512-16k", blockalign=512, size=MiB, iodepth=iodepth,
                        numjobs=3, time_based=None, runtime=3) + proc, tmp_path)
    assert [j["error"] for j in r.data["jobs"]] == [0, 0, 0], r.text
    assert filecmp.cmp(primary / "same", copy / "same", shallow=False), "the copies differ"
    jobs = load_stats(stats)["jobs"]
    assert all(j["layers"]["mirror"]["degraded"] == 0 for j in jobs)


def mirror_words(path):
    """The name in /dev/shm of the page the writers of path share."""
    st = os.stat(path)
    return f"xdevice-mirror-{st.st_dev:x}-{st.st_ino:x}"


@pytest.mark.parametrize("proc", [["--thread=1"], []], ids=["threads", "processes"])
def test_writer_joining_another_fills_nothing(engine, tmp_path, disk_dir, proc):
    """A writer's open removes the copies' stamps (its writes move the data
    on), so every writer opening while it has the file open (numjobs, a
    second run) found no stamp and filled every copy from the primary
    again, whole, though the first had found them in sync and writes them
    all since: four jobs re-reading a 64 MiB file copied 192 MiB at open.
    The first writer says so in the words the writers share; a joining one
    fills nothing, and the copies still end identical."""
    primary, copy = primary_and_copy(disk_dir)
    f = primary / "f"
    xd = {"enable_redundancy": "true", "redundancy_factor": 2, "mirror_directories": copy}
    # the whole file first: a job's file too short is laid out anew by fio
    run_fio(fio_job(engine, name="lay", xd=xd, filename=f, rw="write", bs="64k", size=SIZE),
            tmp_path)
    job = dict(filename=f, bs="4k", size=SIZE // 2, verify="crc32c", verify_fatal=1)
    run_fio(fio_job(engine, name="w", xd=xd, rw="write", offset=0, **job), tmp_path)
    held = fio_job(engine, name="h", xd=xd, rw="randwrite", offset=SIZE // 2, time_based=None,
                   runtime=600, **job) + proc
    holder = subprocess.Popen([FIO, *[str(a) for a in held]], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(holder, lambda: mirror_words(f) in os.listdir("/dev/shm"), 60, "the writer's open")
    stats = tmp_path / "s.json"
    r = run_fio(fio_job(engine, name="w", xd=dict(xd, stats=stats), rw="write", offset=0,
                        verify_only=None, **job) + proc, tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == SIZE // 2
    holder.send_signal(signal.SIGINT)  # fio ends the job and closes the file
    out, err = holder.communicate(timeout=120)
    assert "verify" not in out + err, out + err
    assert mirror_figures(stats)["filled_bytes"] == 0
    assert filecmp.cmp(f, copy / "f", shallow=False), "the copies differ"


def holds_open(proc, path):
    """Whether the process has path open (the mirror opened its copy)."""
    fds = f"/proc/{proc.pid}/fd"
    try:
        return any(os.readlink(os.path.join(fds, fd)) == str(path) for fd in os.listdir(fds))
    except FileNotFoundError:  # an fd closed between the listing and the look
        return False


def test_writer_killed_beside_another_leaves_no_sync_stamp(engine, tmp_path, disk_dir):
    """Two runs write one mirrored file; one is killed with SIGKILL. It may
    have written a block to the primary and not to the copy: the other never
    heard of it, so a writer joining later trusted the copy the writers
    "keep in sync" (it filled nothing), and the survivor's clean close
    stamped the copy "sync" though it differed at that block (1 run in 12
    of such kills left them different, in sync mode). Each writer now holds
    a slot in the page the writers share, and a slot whose lock died with
    its process gives the death away: the joiner fills the copy, the
    survivor's close leaves it unstamped, and the next open fills it."""
    primary, copy = primary_and_copy(disk_dir)
    f = primary / "f"
    xd = {"async": "sync", "enable_redundancy": "true", "redundancy_factor": 2,
          "mirror_directories": copy}
    run_fio(fio_job(engine, name="lay", xd=xd, filename=f, rw="write", bs="64k", size=SIZE),
            tmp_path)
    job = dict(filename=f, bs="4k", size=SIZE // 2, rw="randwrite", norandommap=None,
               time_based=None, runtime=600, thread=None)

    def writer(name, offset):
        args = fio_job(engine, name=name, xd=xd, offset=offset, **job)
        return subprocess.Popen([FIO, *[str(a) for a in args]], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    survivor = writer("s", SIZE // 2)
    try:
        wait_for(survivor, lambda: holds_open(survivor, copy / "f"), 60, "the survivor's open")
        victim = writer("v", 0)
        wait_for(victim, lambda: holds_open(victim, copy / "f"), 60, "the victim's open")
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=60)
        stats = tmp_path / "j.json"
        r = run_fio(fio_job(engine, name="j", xd=dict(xd, stats=stats), filename=f, bs="64k",
                            size=SIZE, rw="read"), tmp_path)
        assert r.data["jobs"][0]["read"]["io_bytes"] == SIZE
        assert mirror_figures(stats)["filled_bytes"] == SIZE, "the joiner trusted the copy"
    finally:
        survivor.send_signal(signal.SIGINT)  # fio ends the job and closes the file
        survivor.communicate(timeout=120)
    assert stamp(copy / "f") is None, "the survivor stamped the copy after a writer died"
    stats = tmp_path / "r.json"
    run_fio(fio_job(engine, name="r", xd=dict(xd, stats=stats), filename=f, bs="64k", size=SIZE,
                    rw="read"), tmp_path)
    assert mirror_figures(stats)["filled_bytes"] == SIZE
    assert filecmp.cmp(f, copy / "f", shallow=False), "the copies differ"
    assert stamp(copy / "f").startswith("sync ")


def test_writer_closing_after_its_file_was_made_again_leaves_the_new_copy_alone(
        engine, tmp_path, disk_dir):
    """A run writes a mirrored file; its file and copy are removed and a
    second run makes them again and writes them. The first run's clean
    close, its file gone from the name, stamped by name: the second run's
    copy said "sync" (naming the second run's primary) while that run was
    writing it, and had the second run been killed between a primary's and
    a copy's write, the next open would have trusted the copy. The stamp
    now goes through the first run's own descriptor of its copy, and only
    while the primary's name holds the file it opened."""
    primary, copy = primary_and_copy(disk_dir)
    f = primary / "f"
    xd = {"async": "sync", "enable_redundancy": "true", "redundancy_factor": 2,
          "mirror_directories": copy}

    def writer(name):
        args = fio_job(engine, name=name, xd=xd, filename=f, bs="4k", size=SIZE // 4,
                       rw="randwrite", time_based=None, runtime=600, thread=None)
        return subprocess.Popen([FIO, *[str(a) for a in args]], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = writer("a")
    second = None
    try:
        wait_for(first, lambda: holds_open(first, copy / "f"), 60, "the first run's open")
        os.unlink(f)
        os.unlink(copy / "f")
        second = writer("b")
        wait_for(second, lambda: holds_open(second, copy / "f"), 60, "the second run's open")
        first.send_signal(signal.SIGINT)  # fio ends the job and closes the file
        first.communicate(timeout=120)
        assert stamp(copy / "f") is None, "the first run stamped the second run's copy"
    finally:
        for p in (first, second):
            if p and p.poll() is None:
                p.send_signal(signal.SIGINT)
                p.communicate(timeout=120)
    assert stamp(copy / "f").startswith("sync "), "the second run's clean close did not stamp"
    assert filecmp.cmp(f, copy / "f", shallow=False), "the copies differ"


def test_missing_copy_is_rebuilt_from_the_primary(engine, tmp_path, disk_dir):
    primary, copy = primary_and_copy(disk_dir)
    stats = tmp_path / "s.json"
    run_fio(mirror_job(engine, primary, [copy], stats), tmp_path)
    (copy / "m.0.0").unlink()
    run_fio(mirror_job(engine, primary, [copy], stats, rw="randread", do_verify=0, verify="0"),
            tmp_path)
    assert filecmp.cmp(primary / "m.0.0", copy / "m.0.0", shallow=False)
    assert mirror_figures(stats)["filled_bytes"] == SIZE


def test_primary_lost_is_refused_and_grown_is_laid_out_anew(engine, tmp_path, disk_dir):
    """fio lays a file too short for a job out anew (it removes it first):
    the copies go with it and are made again, so a job that grows the file
    passes with its copies equal. A primary deleted by hand is also laid out
    anew by fio, but its copy may hold the only good data: the job is refused
    in one line and the copy keeps its data (the copies used to take the new
    file's bytes); moved back over the primary, the copy is the file again."""
    primary, copy = primary_and_copy(disk_dir)
    stats = tmp_path / "s.json"
    run_fio(mirror_job(engine, primary, [copy], stats, rw="write", size=SIZE // 2), tmp_path)
    r = run_fio(mirror_job(engine, primary, [copy], stats, rw="write"), tmp_path)
    assert_verified(r.data, size=SIZE)
    assert filecmp.cmp(primary / "m.0.0", copy / "m.0.0", shallow=False)
    kept = (copy / "m.0.0").read_bytes()
    (primary / "m.0.0").unlink()
    r = run_fio(mirror_job(engine, primary, [copy], stats, rw="read", do_verify=0), tmp_path,
                expect_ok=False)
    assert r.rc != 0
    lines = [ln for ln in xdevice_lines(r.text) if "mirror" in ln]
    assert len(lines) == 1 and "is not the file its copy" in lines[0] and "move it over" in lines[0], r.text
    assert (copy / "m.0.0").read_bytes() == kept
    os.replace(copy / "m.0.0", primary / "m.0.0")
    r = run_fio(mirror_job(engine, primary, [copy], stats, rw="read", verify_only=1), tmp_path)
    job = r.data["jobs"][0]
    assert job["error"] == 0 and job["read"]["io_bytes"] == SIZE, r.text  # verified, every block
    assert filecmp.cmp(primary / "m.0.0", copy / "m.0.0", shallow=False)


def test_primary_truncated_outside_is_refused_not_laid_out_with_its_copies(engine, tmp_path,
                                                                          disk_dir):
    """A mirrored file that lost its tail outside xdevice (truncated) is too
    short for the job, so fio lays it out anew, and the layout took its
    copies with it: the copy, the only whole data, was gone without a word
    and the job read zeros. A copy longer than the file refuses the layout in
    one line and keeps its data; moved back over the file, it verifies."""
    primary, copy = primary_and_copy(disk_dir)
    stats = tmp_path / "s.json"
    r = run_fio(mirror_job(engine, primary, [copy], stats, rw="write"), tmp_path)
    assert_verified(r.data, size=SIZE)
    kept = (copy / "m.0.0").read_bytes()
    os.truncate(primary / "m.0.0", SIZE // 4)
    r = run_fio(mirror_job(engine, primary, [copy], stats, rw="write", verify_only=1), tmp_path,
                expect_ok=False)
    assert r.rc != 0
    lines = [ln for ln in xdevice_lines(r.text) if "mirror" in ln]
    assert len(lines) == 1 and "shorter than its copy" in lines[0] and "move it over" in lines[0], r.text
    assert (copy / "m.0.0").read_bytes() == kept
    os.replace(copy / "m.0.0", primary / "m.0.0")
    r = run_fio(mirror_job(engine, primary, [copy], stats, rw="read", verify_only=1), tmp_path)
    job = r.data["jobs"][0]
    assert job["error"] == 0 and job["read"]["io_bytes"] == SIZE, r.text
    assert filecmp.cmp(primary / "m.0.0", copy / "m.0.0", shallow=False)


def test_refusal_naming_a_copy_with_a_newline_stays_one_line(engine, tmp_path, disk_dir):
    """The truncated-primary refusal escaped the file's name but printed its
    copy's path (the same name in the mirror directory) as it was: two
    lines for a name with a newline."""
    primary, copy = primary_and_copy(disk_dir)
    f = primary / "a\nxdevice forged line"
    xd = {"async": "sync", "enable_redundancy": "true", "redundancy_factor": 2,
          "mirror_directories": copy}
    job = dict(filename=f, rw="write", bs="4k", size=64 * 1024)
    # fio's own JSON holds the name's newline raw (invalid JSON): its normal output
    r = run_fio(fio_job(engine, name="n", xd=xd, **job), tmp_path, fmt="normal", expect_ok=False)
    assert r.rc == 0, r.text
    os.truncate(f, 4096)
    r = run_fio(fio_job(engine, name="n", xd=xd, **job), tmp_path, fmt="normal", expect_ok=False)
    assert r.rc != 0
    lines = [ln for ln in r.text.splitlines() if "forged line" in ln]
    assert len(lines) == 1 and lines[0].startswith("xdevice: mirror: "), lines
    assert lines[0].count("a\\x0axdevice forged line") == 2, lines


def test_unusable_copy_is_degraded_and_the_job_passes(engine, tmp_path, disk_dir):
    primary, copy = disk_dir / "p", disk_dir / "c"
    primary.mkdir()
    (copy / "m.0.0").mkdir(parents=True)  # the copy's path is a directory: it cannot be opened
    stats = tmp_path / "s.json"
    r = run_fio(mirror_job(engine, primary, [copy], stats), tmp_path)
    assert_verified(r.data, size=SIZE)
    m = mirror_figures(stats)
    # counted once although fio opens the file again to verify
    assert m["degraded"] == 1, m
    d = m["degraded_copies"][0]
    assert d["copy"] == 2 and d["path"] == str(copy / "m.0.0"), d
    assert "Is a directory" in d["why"], d
    assert m["reads_per_copy"] == [SIZE // 4096, 0], m


def test_notice_naming_a_file_with_a_newline_stays_one_line(engine, tmp_path, disk_dir):
    """A layer's notice names files as they are; a newline in a file's name
    made the degraded-copy notice two lines on stderr, the second one
    starting with whatever the name held (a forged "xdevice: ..." line).
    Notices are escaped as errors are: one line, the newline as \\x0a."""
    primary, copy = primary_and_copy(disk_dir)
    name = "a\nxdevice forged line"
    (copy / name).mkdir()  # the copy's path is a directory: degraded, said in a notice
    xd = {"async": "sync", "enable_redundancy": "true", "redundancy_factor": 2,
          "mirror_directories": copy}
    # fio's own JSON holds the name's newline raw (invalid JSON): its normal output
    r = run_fio(fio_job(engine, name="n", xd=xd, filename=primary / name, rw="write", bs="4k",
                        size=64 * 1024), tmp_path, fmt="normal", expect_ok=False)
    assert r.rc == 0 and "err= 0" in r.text, r.text
    lines = [ln for ln in r.text.splitlines() if "forged line" in ln]
    assert len(lines) == 1 and lines[0].startswith("xdevice: mirror: copy 2 ("), lines
    assert "a\\x0axdevice forged line) degraded" in lines[0], lines


@pytest.mark.parametrize("factor,dirs,words", [
    (3, ["a"], ["mirror_directories=", "1 directory for redundancy_factor=3", "exactly 2"]),
    (2, ["a", "b"], ["mirror_directories=", "2 directories for redundancy_factor=2", "exactly 1"]),
    (3, ["a", "a/"], ["mirror_directories=", "a/\": named twice", "holds one copy"]),
    (2, ["missing"], ["mirror_directories=", "No such file or directory", "existing directories"]),
])
def test_bad_mirror_directories_are_refused_with_one_line(engine, tmp_path, factor, dirs, words):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    paths = [f"{tmp_path}/{d}" for d in dirs]
    args = fio_job(engine, name="m", directory=tmp_path, rw="write", size="64k",
                   xd={"enable_redundancy": "true", "redundancy_factor": factor,
                       "mirror_directories": ",".join(paths)})
    r = run_fio(args, tmp_path, expect_ok=False)
    assert r.rc != 0
    lines = [ln for ln in xdevice_lines(r.text) if "mirror_directories" in ln]
    assert len(lines) == 1, r.text
    for w in words:
        assert w in lines[0], lines[0]
    assert ",".join(paths) in lines[0], lines[0]


def test_mirror_directory_holding_the_data_file_is_refused(engine, tmp_path):
    """The data file's own directory as a mirror directory makes the copy
    the file itself: the job ran with one copy, said only as a degraded
    copy. Refused at open, in one line naming both."""
    args = fio_job(engine, name="m", directory=tmp_path, rw="write", size="64k",
                   xd={"enable_redundancy": "true", "redundancy_factor": 2,
                       "mirror_directories": tmp_path})
    r = run_fio(args, tmp_path, expect_ok=False)
    assert r.rc != 0
    lines = [ln for ln in xdevice_lines(r.text) if "mirror_directories" in ln]
    assert len(lines) == 1, r.text
    assert f"{tmp_path} holds the data file {tmp_path}/m.0.0 itself" in lines[0], lines[0]


def test_mirror_directories_without_redundancy_are_refused(engine, tmp_path):
    """mirror_directories alone made no copy and said nothing: a user who
    believed the data mirrored had one copy. Refused, in one line."""
    (tmp_path / "a").mkdir()
    args = fio_job(engine, name="m", directory=tmp_path, rw="write", size="64k",
                   xd={"mirror_directories": tmp_path / "a"})
    r = run_fio(args, tmp_path, expect_ok=False)
    assert r.rc != 0
    lines = [ln for ln in xdevice_lines(r.text) if "mirror_directories" in ln]
    assert len(lines) == 1 and "enable_redundancy=true" in lines[0], r.text
    assert not list((tmp_path / "a").iterdir())


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: chown to another user")


@needs_root
def test_mirror_directory_of_another_user_is_refused(engine, tmp_path, disk_dir):
    """Its owner could plant links where the copies go: one line, no run."""
    primary, copy = primary_and_copy(disk_dir)
    os.chown(copy, 65534, 65534)
    r = run_fio(mirror_job(engine, primary, [copy], tmp_path / "s.json"), tmp_path,
                expect_ok=False)
    assert r.rc != 0
    lines = xdevice_lines(r.text)
    assert len(lines) == 1 and "mirror_directories" in lines[0] and "uid 65534" in lines[0], r.text
    assert os.listdir(copy) == []


@pytest.mark.parametrize("planted", ["symlink", "another-users-file", "hard-link"])
def test_copy_is_never_written_through_what_was_planted(engine, tmp_path, disk_dir, planted):
    """A link at the copy's name, or a file that is not ours, is never
    written: the copy is degraded with one line, the job runs on the
    primary and verifies, and the planted file keeps its bytes. (A copy is
    a name xdevice makes in a directory it was given.)"""
    if planted == "another-users-file" and os.geteuid() != 0:
        pytest.skip("needs root: chown to another user")
    primary, copy = disk_dir / "p", disk_dir / "c"
    primary.mkdir()
    copy.mkdir(mode=0o1777 if planted == "another-users-file" else 0o755)
    os.chmod(copy, 0o1777 if planted == "another-users-file" else 0o755)
    victim = tmp_path / "victim"
    victim.write_bytes(b"VICTIM")
    if planted == "symlink":
        os.symlink(victim, copy / "m.0.0")
        victim_path = victim
    elif planted == "hard-link":
        os.link(victim, copy / "m.0.0")
        victim_path = victim
    else:
        victim_path = copy / "m.0.0"
        victim_path.write_bytes(b"VICTIM")
        os.chown(victim_path, 65534, 65534)
    stats = tmp_path / "s.json"
    r = run_fio(mirror_job(engine, primary, [copy], stats), tmp_path)
    assert_verified(r.data, size=SIZE)
    lines = [ln for ln in xdevice_lines(r.text) if "mirror" in ln]
    assert len(lines) == 1 and "copy 2" in lines[0] and "degraded" in lines[0], r.text
    assert victim_path.read_bytes() == b"VICTIM"
    m = mirror_figures(stats)
    assert m["degraded"] == 1 and m["filled_bytes"] == 0, m


def test_degraded_copy_is_a_health_problem(engine, tmp_path, disk_dir):
    """enable_health_check reads layers.mirror.degraded: a copy degraded at
    open is in the next record's health problems, and told once."""
    primary, copy = disk_dir / "p", disk_dir / "c"
    primary.mkdir()
    (copy / "m.0.0").mkdir(parents=True)
    log = tmp_path / "s.jsonl"
    health = {"enable_health_check": "true", "health_check_interval_sec": 1,
              "stats_interval": 1, "stats_log": log}

    def problems():
        return [p for rec in records(log) if "health" in rec for p in rec["health"]["problems"]]
    # until a record carries it (checks come by the clock: a fixed 1.5 s
    # run could end on a loaded machine before the first after the open)
    rc, text = run_fio_until(mirror_job(engine, primary, [copy], tmp_path / "s.json",
                                        xd_more=health, do_verify=0, time_based=None,
                                        runtime=600, thread=1), tmp_path,
                             lambda _: any("layers.mirror.degraded" in p for p in problems()),
                             "a record whose health names the degraded copy")
    assert rc == 0, text
    told = [ln for ln in xdevice_lines(text) if "health:" in ln and "mirror" in ln]
    assert len(told) == 1, text


@pytest.mark.parametrize("async_mode", ["sync", "io_uring"])
def test_corrupt_primary_is_served_and_repaired_from_the_copy(engine, tmp_path, disk_dir,
                                                              async_mode):
    """With enable_checksums under the mirror, blocks of the primary
    overwritten behind xdevice's back read as mismatches, are served from
    the copy (fio's verify passes), and are repaired on disk."""
    primary, copy = primary_and_copy(disk_dir)
    stats = tmp_path / "s.json"
    sums = {"enable_checksums": "true"}
    run_fio(mirror_job(engine, primary, [copy], stats, async_mode, xd_more=sums, rw="write",
                       do_verify=0), tmp_path)
    # bit rot: the bytes change, the mtime does not (a write that moved the
    # mtime would make the copy's sync stamp stale, and it would be refilled)
    bad = [3, 100, 777]
    st = os.stat(primary / "m.0.0")
    with open(primary / "m.0.0", "r+b") as f:
        for b in bad:
            f.seek(b * 4096)
            f.write(b"\xa5" * 4096)
    os.utime(primary / "m.0.0", ns=(st.st_atime_ns, st.st_mtime_ns))
    r = run_fio(mirror_job(engine, primary, [copy], stats, async_mode, xd_more=sums, rw="read",
                           verify_only=1), tmp_path)
    job = r.data["jobs"][0]
    assert job["error"] == 0 and job["read"]["io_bytes"] == SIZE, job["read"]
    assert filecmp.cmp(primary / "m.0.0", copy / "m.0.0", shallow=False), "not repaired"
    m = mirror_figures(stats)
    assert m["repairs"] == len(bad) and m["degraded"] == 0, m
    c = load_stats(stats)["jobs"][0]["layers"]["checksum"]
    assert c["mismatches"] >= len(bad), c


def stamp(path):
    try:
        return os.getxattr(path, "user.xdevice.mirror").decode()
    except OSError:
        return None


def test_kill9_mid_write_leaves_no_stale_copy(engine, tmp_path, disk_dir):
    """A mirrored writer killed with SIGKILL leaves its copy unstamped, so
    the next open fills the copy again from the primary instead of trusting
    it, and a clean close stamps it."""
    primary, copy = primary_and_copy(disk_dir)
    size = 256 * 1024
    sums = {"enable_checksums": "true"}
    run_fio(mirror_job(engine, primary, [copy], tmp_path / "w.json", xd_more=sums, size=size,
                       do_verify=0), tmp_path)
    assert stamp(copy / "m.0.0").startswith("sync "), "a clean close left no stamp"
    mtime = os.stat(copy / "m.0.0").st_mtime_ns
    cmd = [FIO, "--output-format=json", "--output", str(tmp_path / "kill.out")] + mirror_job(
        engine, primary, [copy], tmp_path / "k.json", xd_more=sums, size=size, iodepth=8,
        fsync=4, norandommap=1, time_based=1, runtime=30, do_verify=0, verify=0) + ["--thread=1"]
    p = subprocess.Popen([str(c) for c in cmd], cwd=tmp_path, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:  # bounded poll: the copy is being written
        deadline = time.monotonic() + 20
        while os.stat(copy / "m.0.0").st_mtime_ns == mtime and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.stat(copy / "m.0.0").st_mtime_ns != mtime, "the writer never wrote the copy"
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    assert stamp(copy / "m.0.0") is None, "a copy open for writing kept its stamp"
    stats = tmp_path / "r.json"
    r = run_fio(mirror_job(engine, primary, [copy], stats, xd_more=sums, size=size, rw="read",
                           do_verify=0, verify=0), tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == size
    # the engine opens files for writing: the unstamped copy is filled whole
    m = mirror_figures(stats)
    assert m["filled_bytes"] == size and m["degraded"] == 0, m
    assert filecmp.cmp(primary / "m.0.0", copy / "m.0.0", shallow=False), "the copy was not refilled"
    assert stamp(copy / "m.0.0").startswith("sync ")


@needs_io_uring
@pytest.mark.parametrize("round_", range(2))
def test_kill9_loses_nothing_fsynced(engine, tmp_path, disk_dir, round_):
    """fio's trigger workflow under checksums and a mirror: fio stops the
    job mid-run (each write fsynced), saves its verify state and is killed
    with SIGKILL; after a restart every write fio saw complete reads back
    through the engine, with no checksum mismatch, and the copies match.
    The restart verifies at iodepth=1 (see test_hybrid's kill test: a
    deeper verify would also check writes still in flight at the kill). A
    SIGKILL with no clean close is test_kill9_mid_write_leaves_no_stale_copy."""
    primary, copy = primary_and_copy(disk_dir)
    xd = {"async": "io_uring", "enable_redundancy": "true", "redundancy_factor": 2,
          "mirror_directories": copy, "enable_checksums": "true"}
    # thread: the job runs inside the process killed (a job process of its
    # own would outlive the kill, finish, and close cleanly)
    common = dict(directory=primary, rw="randwrite", bs="4k", size=2 * MiB, fsync=1,
                  verify="crc32c", verify_fatal=1, thread=None)
    trig = tmp_path / "trigger"
    cmd = [FIO, f"--trigger-file={trig}", "--trigger=kill -9 $PPID",
           *fio_job(engine, name="k", xd=xd, iodepth=8, rate_iops=200, **common)]
    proc = subprocess.Popen([str(c) for c in cmd], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # bounded: until the copy holds twice the queue's depth of writes, so
    # the kill comes after more writes than can be in flight (a fixed pause
    # from the first one was not enough on a loaded machine: 2 writes)
    held = copy / "k.0.0"
    wait_for(proc, lambda: held.exists() and held.stat().st_blocks * 512 >= 16 * 4096, 60,
             "16 writes in the copy")
    time.sleep(random.Random(round_).uniform(0.2, 1.0))
    trig.touch()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (-9, 137), (proc.returncode, out, err)
    numberio, depth, comps = verify_state(tmp_path / "local-k-0-verify.state")
    assert numberio > depth and comps, (numberio, depth, comps)
    stats = tmp_path / "s.json"
    check = fio_job(engine, name="k", xd=dict(xd, stats=stats), iodepth=1, verify_state_load=1,
                    verify_state_save=0, verify_only=None, **common)
    r = run_fio(check, tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] >= (numberio - depth) * 4096
    assert filecmp.cmp(primary / "k.0.0", copy / "k.0.0", shallow=False)
    m = mirror_figures(stats)
    assert m["degraded"] == 0 and m["read_errors"] == 0, m
    c = load_stats(stats)["jobs"][0]["layers"]["checksum"]
    assert c["mismatches"] == 0, c


def test_recovery_example_job(engine, tmp_path, disk_dir, monkeypatch):
    """jobs/recovery.fio and jobs/recovery.ini as shipped, XDEVICE_SCRATCH
    pointing into scratch and the size cut: the mirror repairs what the
    checksums find, and fio's verify passes."""
    (disk_dir / "xdevice-mirror").mkdir()
    monkeypatch.setenv("XDEVICE_SCRATCH", str(disk_dir))
    (tmp_path / "r.ini").write_text((REPO / "jobs" / "recovery.ini").read_text())
    job = (REPO / "jobs" / "recovery.fio").read_text()
    stats = disk_dir / "xdevice-recovery.stats.json"
    for old, new in [("build/xdevice.so", engine), ("jobs/recovery.ini", tmp_path / "r.ini"),
                     ("size=64m", "size=4m")]:
        assert old in job, old
        job = job.replace(old, str(new))
    (tmp_path / "r.fio").write_text(job)
    r = run_fio([str(tmp_path / "r.fio")], tmp_path)
    assert_verified(r.data)
    layers = load_stats(stats)["jobs"][0]["layers"]
    assert layers["checksum"]["mismatches"] > 0, layers["checksum"]
    assert layers["mirror"]["repairs"] == layers["checksum"]["mismatches"], layers["mirror"]


@pytest.mark.parametrize("thread", [1, 0])
def test_same_name_in_two_directories_never_shares_a_copy(engine, tmp_path, disk_dir, thread):
    """Two jobs whose files have one name in different directories would map
    to one copy: the one that opens second runs without it (degraded), and
    both verify."""
    d1, d2, copy = disk_dir / "d1", disk_dir / "d2", disk_dir / "c"
    for d in (d1, d2, copy):
        d.mkdir()
    args = []
    for i, d in enumerate((d1, d2)):
        xd = {"async": "io_uring", "enable_redundancy": "true", "redundancy_factor": 2,
              "mirror_directories": copy, "stats": tmp_path / f"s{i}.json"}
        args += fio_job(engine, name=f"j{i}", xd=xd, filename=d / "data", rw="randwrite", bs="4k",
                        size=SIZE, iodepth=8, verify="crc32c", verify_fatal=1, thread=thread,
                        time_based=1, runtime=1)
    r = run_fio(args, tmp_path)  # run_fio checks every job ended with error 0
    # time_based: fio verifies what the last pass wrote (verify_fatal)
    assert all(j["read"]["io_bytes"] > 0 for j in r.data["jobs"]), r.data["jobs"]
    degraded = [mirror_figures(tmp_path / f"s{i}.json")["degraded"] for i in range(2)]
    assert sorted(degraded) == [0, 1], degraded


@needs_io_uring
def test_primary_under_a_new_device_number_keeps_its_copies(engine, tmp_path, disk_dir):
    """The primary's file system back under another device number (a loop
    image attached to another /dev/loopN): the same inode and birth time are
    the same file, so its copies' sync stamps still hold and nothing is
    filled. The move is made by writing another number into the copy's
    stamp, as the reattached file system shows it. Before, the stamp named
    the primary's path with another file and the open was refused
    (ESTALE), where psync reads the file. A real replacement (the primary
    deleted and made again) is still refused."""
    primary, copy = primary_and_copy(disk_dir)
    stats = tmp_path / "s.json"
    run_fio(mirror_job(engine, primary, [copy], stats, size=MiB), tmp_path)
    name = "user.xdevice.mirror"
    kind, ident, path = os.getxattr(copy / "m.0.0", name).decode().split(" ")
    dev, rest = ident.split(":", 1)
    if rest.split(":")[1].startswith("0.000000000"):
        pytest.skip(f"{disk_dir}: no birth times: the device number tells files apart")
    assert kind == "sync", kind
    os.setxattr(copy / "m.0.0", name, f"sync {int(dev) ^ 0x700}:{rest} {path}".encode())
    r = run_fio(mirror_job(engine, primary, [copy], stats, size=MiB, rw="read", verify_only=None),
                tmp_path)
    assert not xdevice_lines(r.text), r.text
    m = mirror_figures(stats)
    assert m["filled_bytes"] == 0 and m["degraded"] == 0, m
    # the primary made again (another inode and birth time): refused as before
    data = (primary / "m.0.0").read_bytes()
    (primary / "m.0.0").unlink()
    (primary / "m.0.0").write_bytes(data)
    r = run_fio(mirror_job(engine, primary, [copy], stats, size=MiB, rw="read", verify_only=None),
                tmp_path, expect_ok=False)
    assert r.rc != 0 and any("m.0.0" in ln for ln in xdevice_lines(r.text)), r.text


def test_stamp_is_written_after_the_data_is_durable(engine, tmp_path, disk_dir):
    """At a clean close the primary and the copy are fsync'd before the copy
    is stamped, and the stamp (an xattr: inode metadata) is fsync'd after:
    a power loss cannot leave a copy stamped for data that missed the disk."""
    strace = "/usr/bin/strace"
    if not os.access(strace, os.X_OK):
        pytest.skip("strace is not installed")
    primary, copy = primary_and_copy(disk_dir)
    args = mirror_job(engine, primary, [copy], tmp_path / "s.json", size=256 * 1024,
                      do_verify=0, verify="0")
    trace = tmp_path / "trace"
    r = subprocess.run([strace, "-f", "-y", "-o", str(trace), "-e",
                        "trace=fsync,fdatasync,fsetxattr", FIO, "--output-format=terse",
                        *map(str, args)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    pfile, cfile = str(primary / "m.0.0"), str(copy / "m.0.0")
    calls = []
    for line in trace.read_text().splitlines():
        # through the copy's descriptor (-y names its file), not its name
        if "fsetxattr(" in line and f"<{cfile}>" in line and "user.xdevice.mirror" in line:
            calls.append("stamp")
        elif "sync(" in line and "= 0" in line:
            calls += ["primary"] if f"<{pfile}>" in line else ["copy"] if f"<{cfile}>" in line else []
    assert "stamp" in calls, calls
    at = calls.index("stamp")
    assert "primary" in calls[:at] and "copy" in calls[:at], calls
    assert "copy" in calls[at + 1:], f"the stamp was never made durable: {calls}"


def test_unlink_removes_the_copies(engine, tmp_path, disk_dir):
    """unlink=1 on a mirrored, checksummed file (two job processes) removes
    the primaries, their copies and every sidecar: the copies are this
    primary's (claimed for it while it is open). A file in a mirror
    directory that is no copy of it stays."""
    primary = disk_dir / "primary"
    dirs = [disk_dir / "copy1", disk_dir / "copy2"]
    for d in (primary, *dirs):
        d.mkdir()
    (dirs[0] / "keep").write_text("not a copy")
    args = mirror_job(engine, primary, dirs, tmp_path / "s.json", numjobs=2, unlink=1,
                      xd_more={"enable_checksums": "true"})
    assert_verified(run_fio(args, tmp_path).data, njobs=2)
    assert [list(d.iterdir()) for d in (primary, dirs[1])] == [[], []]
    assert [p.name for p in dirs[0].iterdir()] == ["keep"]


@pytest.mark.parametrize("async_mode", ["sync", "io_uring"])
def test_member_one_run_degraded_is_dropped_by_the_other(engine, tmp_path, disk_dir, async_mode):
    """Two fio runs write one mirrored file. One run's write to a member
    fails (the fault layer fails the second of the two member writes of its
    first block: whichever member that is, the copy or the primary, misses
    that run's later writes), so it degrades that member. The other run,
    writing all along, must drop the member at its next request (it is
    stale for every writer) and, closing last, leave it unstamped, so the
    next open fills it from the member that took every write. Its stats say
    so: the same member degraded, by another writer. Without the sharing it
    wrote on to both members and its close stamped the copies in sync."""
    primary, copy = primary_and_copy(disk_dir)
    f = primary / "f"
    xd = {"async": async_mode, "enable_redundancy": "true", "redundancy_factor": 2,
          "mirror_directories": copy}
    run_fio(fio_job(engine, name="lay", xd=xd, filename=f, rw="write", bs="64k", size=SIZE),
            tmp_path)
    held_stats = tmp_path / "held.json"
    held = fio_job(engine, name="h", xd=dict(xd, stats=held_stats), filename=f, bs="4k",
                   offset=SIZE // 2, size=SIZE // 2, rw="randwrite", iodepth=4,
                   time_based=None, runtime=600, thread=None)
    holder = subprocess.Popen([FIO, *[str(a) for a in held]], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(holder, lambda: holds_open(holder, copy / "f"), 60, "the holder's open")
        faulty_stats = tmp_path / "faulty.json"
        faults = {"enable_fault_injection": "true", "fault_ops": "write", "fault_offset": 0,
                  "fault_length": 4096, "fault_every": 2, "stats": faulty_stats}
        r = run_fio(fio_job(engine, name="w", xd=dict(xd, **faults), filename=f, bs="4k",
                            size=SIZE // 2, rw="write", verify="crc32c", verify_fatal=1,
                            do_verify=1), tmp_path)
        assert r.data["jobs"][0]["error"] == 0, r.text
        degraded = mirror_figures(faulty_stats)["degraded_copies"]
        assert len(degraded) == 1, degraded
        assert holder.poll() is None, "the holder ended before the other run's degrade"
    finally:
        holder.send_signal(signal.SIGINT)  # fio ends the job and closes the file
        out, err = holder.communicate(timeout=120)
    assert "err= 0" in out and "verify" not in out + err, out + err
    held_m = mirror_figures(held_stats)
    assert [d["copy"] for d in held_m["degraded_copies"]] == [degraded[0]["copy"]], held_m
    assert "another writer" in held_m["degraded_copies"][0]["why"], held_m
    assert stamp(copy / "f") is None or not stamp(copy / "f").startswith("sync "), \
        "the last writer stamped the copies in sync after another writer degraded one"
    stats = tmp_path / "r.json"
    r = run_fio(fio_job(engine, name="r", xd=dict(xd, stats=stats), filename=f, bs="64k",
                        size=SIZE, rw="read"), tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == SIZE
    assert mirror_figures(stats)["filled_bytes"] == SIZE, "the next open trusted the stale member"
    assert filecmp.cmp(f, copy / "f", shallow=False), "the copies differ"
