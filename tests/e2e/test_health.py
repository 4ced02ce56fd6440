"""The health check (issue 15): `xdconfig health FILE.ini` on demand, and
enable_health_check in the engine, whose periodic stats records carry the
report as "health" and whose problems are told once on stderr.

A degraded mirror, checksum mismatches and failed retries are read from the
device's stats (layers.mirror.degraded, layers.checksum.mismatches,
layers.retry.failed); tests for them belong with those layers.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, fio_job, own_tmpfs, records, run_fio, run_fio_until, xdevice_lines

XDCONFIG = REPO / "build" / "xdconfig"


def health(tmp_path, ini_text=None, args=None):
    """Run xdconfig health on an INI holding ini_text: (rc, report, stderr lines)."""
    if args is None:
        ini = Path(tmp_path) / "h.ini"
        ini.write_text(ini_text)
        args = [str(ini)]
    p = subprocess.run([str(XDCONFIG), "health", *args], capture_output=True, text=True,
                       timeout=30)
    report = json.loads(p.stdout) if p.stdout.strip() else None
    return p.returncode, report, [ln for ln in p.stderr.splitlines() if ln.strip()]


def assert_problem(rc, report, lines, path, words):
    assert rc == 1, (rc, report, lines)
    assert report["healthy"] is False
    assert len(lines) == len(report["problems"]) >= 1
    hits = [ln for ln in lines if str(path) in ln and all(w in ln for w in words)]
    assert hits, (path, words, lines)
    assert any(not c["ok"] and c["path"] == str(path) for c in report["checks"])


def test_healthy_config(tmp_path):
    rc, report, lines = health(tmp_path, f"[local]\nbase_directory = {tmp_path}\ndefault_file_size = 1m\n")
    assert rc == 0, lines
    assert report["healthy"] is True and report["problems"] == [] and lines == []
    checks = {c["check"] for c in report["checks"] if c["path"] == str(tmp_path)}
    assert {"exists", "writable", "trusted", "free_space"} <= checks
    assert all(c["ok"] for c in report["checks"])


def test_missing_directories(tmp_path):
    gone = tmp_path / "gone"
    rc, report, lines = health(tmp_path, f"[local]\nbase_directory = {gone}\nauto_create_dirs = false\n")
    assert_problem(rc, report, lines, gone, ["base_directory", "does not exist", "auto_create_dirs=true"])
    nowhere = "/nonexistent-xd-health/tmpfs"
    rc, report, lines = health(
        tmp_path, f"[local]\nstorage_type = tmpfs\n[tmpfs]\ntmpfs_directory = {nowhere}\n")
    assert_problem(rc, report, lines, nowhere, ["tmpfs_directory", "does not exist"])


def check_of(report, path, check="exists"):
    hits = [c for c in report["checks"] if c["path"] == str(path) and c["check"] == check]
    assert hits, (path, check, report)
    return hits[0]


@pytest.mark.parametrize("key,section,extra", [
    ("base_directory", "local", {}),
    ("cold_directory", "hybrid", {"local": "storage_type = hybrid\n"}),
    ("checksum_directory", "recovery", {"recovery": "enable_checksums = true\n"}),
])
def test_directories_made_with_auto_create_dirs_may_be_absent(tmp_path, shm_dir, key, section,
                                                              extra):
    """The engine makes these (and their parents) when auto_create_dirs is on,
    as it is by default: absent is healthy then, and a problem without it."""
    gone = tmp_path / "a" / "b"

    def ini(flag):
        text = {"local": "default_file_size = 1m\n" + flag, "hybrid": f"hot_directory = {shm_dir}\n"}
        for sec, lines in extra.items():
            text[sec] = text.get(sec, "") + lines
        text[section] = text.get(section, "") + f"{key} = {gone}\n"
        return "".join(f"[{sec}]\n{body}" for sec, body in text.items())

    rc, report, lines = health(tmp_path, ini(""))
    assert rc == 0, (lines, ini(""))
    assert check_of(report, gone)["ok"] and "absent" in check_of(report, gone)["detail"]
    assert check_of(report, gone, "trusted")["ok"]  # of the ancestor it is made in
    rc, report, lines = health(tmp_path, ini("auto_create_dirs = false\n"))
    assert_problem(rc, report, lines, gone, [key, "does not exist"])


def ckpt_ini(d, extra=""):
    return (f"[local]\n{extra}[recovery]\nenable_checkpoints = true\n"
            f"checkpoint_directory = {d}\n")


def test_checkpoint_directory_follows_the_engines_rules(tmp_path):
    """The checkpoint layer makes its directory when missing (its parents
    only with auto_create_dirs) and refuses a symlink there: health agrees."""
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    rc, report, lines = health(tmp_path, ckpt_ini(link))
    assert_problem(rc, report, lines, link, ["checkpoint_directory", "symbolic link"])
    rc, report, lines = health(tmp_path, ckpt_ini(f"{link}/"))  # a trailing slash changes nothing
    assert rc == 1 and "symbolic link" in lines[0], lines

    gone = tmp_path / "ckpt"
    rc, report, lines = health(tmp_path, ckpt_ini(gone))
    assert rc == 0, lines
    assert check_of(report, gone)["ok"] and str(tmp_path) in check_of(report, gone)["detail"]

    deeper = tmp_path / "x" / "ckpt"
    rc, report, lines = health(tmp_path, ckpt_ini(deeper))
    assert rc == 0, lines
    rc, report, lines = health(tmp_path, ckpt_ini(deeper, "auto_create_dirs = false\n"))
    assert_problem(rc, report, lines, deeper, ["nor does its parent", str(tmp_path / "x")])


def test_checkpoint_directory_is_checked_only_with_checkpoints(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    rc, report, lines = health(tmp_path, f"[recovery]\ncheckpoint_directory = {link}\n")
    assert rc == 0 and not [c for c in report["checks"] if c["path"] == str(link)], report


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a directory of another user's)")
def test_checkpoint_directory_must_be_the_callers(tmp_path):
    """Root's directory is trusted, but the layer uses only one of its own
    (another user's checkpoint directory is refused even when root's)."""
    d = tmp_path / "ckpt"
    d.mkdir()
    os.chown(d, 65534, 65534)
    rc, report, lines = health(tmp_path, ckpt_ini(d))
    assert_problem(rc, report, lines, d, ["belongs to uid 65534", "a directory of uid 0"])
    # and its parent must pass the trust rule, as the layer opens it through it
    parent = tmp_path / "open"
    parent.mkdir()
    os.chmod(parent, 0o777)
    mine = parent / "ckpt"
    mine.mkdir()
    rc, report, lines = health(tmp_path, ckpt_ini(mine))
    assert_problem(rc, report, lines, mine, [str(parent), "writable by others"])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (runs the check as nobody)")
def test_private_tmpfs_directory_is_never_a_symlink(shm_dir):
    """The tmpfs type's default /dev/shm/xdevice-UID must be a real 0700
    directory of the caller's (xd_private_dir refuses a symlink there); run
    as nobody, whose private directory no other test uses."""
    private = Path("/dev/shm/xdevice-65534")
    if os.path.lexists(private):
        pytest.skip(f"{private} exists already")
    os.chmod(shm_dir, 0o755)
    ini = shm_dir / "h.ini"
    ini.write_text("[local]\nstorage_type = tmpfs\n")
    target = shm_dir / "target"
    target.mkdir(mode=0o700)
    os.chown(target, 65534, 65534)
    private.symlink_to(target)
    os.lchown(private, 65534, 65534)
    try:
        p = subprocess.run([str(XDCONFIG), "health", str(ini)], capture_output=True, text=True,
                           timeout=30, user=65534, group=65534)
    finally:
        private.unlink()
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert_problem(p.returncode, json.loads(p.stdout), lines, private,
                   ["tmpfs_directory", "symbolic link"])


def test_world_writable_directory_needs_sticky_bit(tmp_path):
    d = tmp_path / "shared"
    d.mkdir()
    os.chmod(d, 0o777)
    ini = f"[local]\nbase_directory = {d}\n"
    rc, report, lines = health(tmp_path, ini)
    assert_problem(rc, report, lines, d, ["writable by others", "sticky", "0777"])
    os.chmod(d, 0o1777)  # like /tmp: fine
    rc, report, lines = health(tmp_path, ini)
    assert rc == 0, lines
    os.chmod(d, 0o777)  # the library's escape hatch is honoured
    rc, report, lines = health(tmp_path, ini + "allow_shared_directories = true\n")
    assert rc == 0, lines


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs of our own, unmounted after."""
    with own_tmpfs(tmp_path / "small", "1m", "xd-health-test") as mnt:
        yield mnt


def test_free_space(tmp_path, small_tmpfs):
    ini = f"[local]\nbase_directory = {small_tmpfs}\ndefault_file_size = 2m\n"
    rc, report, lines = health(tmp_path, ini)  # empty, but 1 MiB < 2 MiB
    assert_problem(rc, report, lines, small_tmpfs, ["bytes free", "default_file_size needs 2097152"])
    with open(small_tmpfs / "fill", "wb") as f:
        with pytest.raises(OSError):
            for _ in range(64):  # 2 MiB: more than the file system holds
                f.write(b"\xa5" * 32768)
                f.flush()
    rc, report, lines = health(tmp_path, f"[local]\nbase_directory = {small_tmpfs}\n")
    assert_problem(rc, report, lines, small_tmpfs, ["file system full"])


def test_tmpfs_directory_must_be_on_tmpfs(tmp_path, disk_dir, shm_dir):
    ini = "[local]\nstorage_type = tmpfs\n[tmpfs]\ntmpfs_directory = {}\n"
    rc, report, lines = health(tmp_path, ini.format(disk_dir))
    assert_problem(rc, report, lines, disk_dir, ["not on a tmpfs"])
    rc, report, lines = health(tmp_path, ini.format(shm_dir))
    assert rc == 0, lines
    assert any(c["check"] == "tmpfs" and c["ok"] for c in report["checks"])


def test_bad_usage(tmp_path):
    assert health(tmp_path, args=[])[0] == 2
    assert health(tmp_path, args=[str(tmp_path / "absent.ini")])[0] == 2
    rc, report, lines = health(tmp_path, "[local]\nstorage_type = floppy\n")
    assert rc == 2 and report is None
    assert any("h.ini:2" in ln and "storage_type" in ln for ln in lines), lines


def engine_run(engine, tmp_path, base):
    log = tmp_path / "s.jsonl"
    args = fio_job(engine, name="hc",
                   xd={"stats_interval": 1, "stats_log": log, "enable_health_check": "true",
                       "health_check_interval_sec": 1, "base_directory": base},
                   filename=tmp_path / "data", size="1m", rw="randwrite", bs="4k",
                   time_based=None, runtime="300ms")
    run = run_fio(args, tmp_path)
    return run, records(log)


def test_engine_records_carry_health(engine, tmp_path):
    run, got = engine_run(engine, tmp_path, tmp_path)
    assert got, "no periodic record"
    # the check at open is in the first record
    assert got[0]["health"]["healthy"] is True, got[0]
    assert not [ln for ln in xdevice_lines(run.text) if "health" in ln]


def test_engine_tells_a_problem_once(engine, tmp_path):
    """A problem found at open and again by the periodic checks is told
    once: the job runs until two records carry a check's report (the
    check at open, then at least one later one)."""
    d = tmp_path / "shared"
    d.mkdir()
    os.chmod(d, 0o777)
    log = tmp_path / "s.jsonl"
    args = fio_job(engine, name="hc",
                   xd={"stats_interval": 1, "stats_log": log, "enable_health_check": "true",
                       "health_check_interval_sec": 1, "base_directory": d},
                   filename=tmp_path / "data", size="1m", rw="randwrite", bs="4k",
                   time_based=None, runtime=600, thread=1)
    rc, text = run_fio_until(args, tmp_path,
                             lambda _: len([r for r in records(log) if "health" in r]) >= 2,
                             "two records carrying a health check")
    got = records(log)
    assert rc == 0, text
    checked = [r["health"] for r in got if "health" in r]
    assert len(checked) >= 2 and "health" in got[0], got
    assert all(h["healthy"] is False for h in checked), checked
    assert any(str(d) in p for p in got[0]["health"]["problems"])
    told = [ln for ln in xdevice_lines(text) if "health:" in ln]
    assert len(told) == 1 and str(d) in told[0] and "sticky" in told[0], text


def test_a_growing_count_is_told_once(engine, tmp_path):
    """A problem whose count grows while it lasts (checksum mismatches of a
    corrupt block read again and again) is one problem: told once, though
    every check finds it with a larger count (each check was a new line)."""
    data = tmp_path / "data"
    run_fio(fio_job(engine, name="w", xd={"enable_checksums": "true"}, filename=data,
                    size="64k", rw="write", bs="4k"), tmp_path)
    with open(data, "r+b") as f:
        f.seek(4096)
        f.write(b"\xff")
    log = tmp_path / "s.jsonl"
    args = fio_job(engine, name="r",
                   xd={"enable_checksums": "true", "stats_interval": 1, "stats_log": log,
                       "enable_health_check": "true", "health_check_interval_sec": 1},
                   filename=data, size="64k", rw="randread", bs="4k", norandommap=None,
                   continue_on_error="read", time_based=None, runtime=600, thread=1)

    def mismatch_counts(recs):
        return {p for r in recs if "health" in r
                for p in r["health"]["problems"] if "checksum.mismatches" in p}
    rc, text = run_fio_until(args, tmp_path, lambda _: len(mismatch_counts(records(log))) >= 2,
                             "a second check finding more mismatches")
    got = records(log)
    assert len(mismatch_counts(got)) >= 2, got  # found again, with a larger count
    told = [ln for ln in xdevice_lines(text) if "health:" in ln]
    assert len(told) == 1 and "checksum.mismatches" in told[0], text
