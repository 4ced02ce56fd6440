"""A full file system is ENOSPC, never a crash.

Every layer that stores through a shared mapping (the mmap type's windows,
the checksum sidecar, the shared state in /dev/shm of the hybrid type and
the cache) once died with SIGBUS when the file system under it was full: a
store into a hole finds its block at fault time, and on tmpfs even a load
makes a page. fio's own engines say "No space left on device" there, and so
must xdevice: the write fails with ENOSPC, fio exits non-zero, nothing is
killed, and what was written before still reads back.

Each test makes a small tmpfs of its own (root; skipped otherwise); the
/dev/shm ones mount it in a private mount namespace (unshare -m), never over
the machine's /dev/shm.
"""
import errno
import os
import shutil
from pathlib import Path
import subprocess

import pytest

from conftest import FIO, fio_job, load_stats, own_tmpfs, run_fio, xdevice_lines


@pytest.fixture
def full_fs(tmp_path):
    """A 16 MiB tmpfs of our own, unmounted after; fill() takes its free space."""
    with own_tmpfs(tmp_path / "full", "16m", "xd-full-test") as mnt:
        yield mnt


def fill(mnt):
    """Take every free block of mnt (a file grown until ENOSPC)."""
    fd = os.open(mnt / "fill", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while os.write(fd, b"\0" * 4096) == 4096:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    assert os.statvfs(mnt).f_bavail == 0


def assert_enospc(r):
    """fio ran to its end (run_fio fails a run killed by a signal) and its
    job stopped on ENOSPC."""
    assert r.rc != 0 and r.data, r.text
    assert [j["error"] for j in r.data["jobs"]] == [errno.ENOSPC], (r.data["jobs"][0]["error"], r.text)


def xd_run(engine, tmp_path, mnt, xd, expect_ok=True, **opts):
    job = dict(directory=mnt, filename="f", verify_state_save=0, bs="4k")
    job.update(opts)
    return run_fio(fio_job(engine, xd=xd, **job), tmp_path, expect_ok=expect_ok)


def test_mmap_write_into_holes(engine, tmp_path, full_fs):
    """The file is made sparse, larger than the file system: the write that
    finds no block is ENOSPC (old: SIGBUS in the copy into the window)."""
    r = xd_run(engine, tmp_path, full_fs, {"type": "mmap"}, expect_ok=False,
               size="32m", rw="write", bs="64k", verify="crc32c")
    assert_enospc(r)


def test_mmap_write_after_trim(engine, tmp_path, full_fs):
    """A trimmed range is holes again: once the space is taken, writing it
    is ENOSPC; reading the holes on a full tmpfs reads zeros through pread
    (old: SIGBUS, a load through the mapping makes a page there), and the
    half written before still verifies."""
    xd = {"type": "mmap"}
    half = dict(size="2m", io_size="1m", bs="64k")
    xd_run(engine, tmp_path, full_fs, xd, rw="write", verify="crc32c", **half)
    second = dict(size="1m", offset="1m")
    xd_run(engine, tmp_path, full_fs, xd, rw="trim", bs="64k", **second)
    fill(full_fs)
    r = xd_run(engine, tmp_path, full_fs, xd, expect_ok=False, rw="write", **second)
    assert_enospc(r)
    stats = tmp_path / "s.json"
    xd_run(engine, tmp_path, full_fs, dict(xd, stats=stats), rw="read", bs="64k", **second)
    mmap = load_stats(stats)["jobs"][0]["layers"]["mmap"]
    assert mmap["reads_through_pread"] == 16 and mmap["bytes_copied_out"] == 1 << 20, mmap
    xd_run(engine, tmp_path, full_fs, xd, rw="read", verify="crc32c", **half)


def test_checksum_sidecar_on_a_full_fs(engine, tmp_path, full_fs):
    """The sidecar is holes where no entry was written: a write whose entry
    finds no block is ENOSPC (old: SIGBUS in the slot load), and the blocks
    written before still verify."""
    xd = {"type": "regular", "enable_checksums": 1, "checksum_block_size": 512}
    xd_run(engine, tmp_path, full_fs, xd, size="8m", rw="write", bs="64k", io_size="64k")
    fill(full_fs)
    r = xd_run(engine, tmp_path, full_fs, xd, expect_ok=False, size="8m", rw="randwrite",
               verify="crc32c")
    assert_enospc(r)
    os.unlink(full_fs / "fill")
    xd_run(engine, tmp_path, full_fs, xd, size="8m", rw="read", bs="64k")


SHM_SCRIPT = """
set -e
mount -t tmpfs -o size=256k xd-full-shm /dev/shm
dd if=/dev/zero of=/dev/shm/fill bs=4k 2>/dev/null || true
exec "$@"
"""


def fio_on_full_shm(engine, tmp_path, xd, **opts):
    """fio in a mount namespace of its own whose /dev/shm is full."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1)")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           capture_output=True, text=True)
    if probe.returncode:
        pytest.skip(f"cannot make a mount namespace: {probe.stderr.strip()}")
    job = dict(directory=tmp_path, filename="f", size="4m", rw="randwrite", bs="4k",
               verify="crc32c", verify_state_save=0)
    job.update(opts)
    cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", SHM_SCRIPT, "sh",
           FIO, "--output-format=json", *[str(a) for a in fio_job(engine, xd=xd, **job)]]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert p.returncode >= 0 and "signal" not in p.stdout + p.stderr, p.stdout + p.stderr
    return p


def test_hybrid_state_on_a_full_shm(engine, tmp_path):
    """The hybrid state's object is reserved whole when made: a full /dev/shm
    refuses the open with one line (old: SIGBUS filling in its map)."""
    p = fio_on_full_shm(engine, tmp_path, {"type": "hybrid"})
    assert p.returncode != 0, p.stdout + p.stderr
    lines = [ln for ln in xdevice_lines(p.stderr) if "shared state" in ln]
    assert len(lines) == 1 and "No space left on device" in lines[0], p.stderr


def test_cache_on_a_full_shm(engine, tmp_path):
    """The cache's write generations cannot be shared: the file goes uncached,
    said in one line, and the job verifies (old: SIGBUS)."""
    p = fio_on_full_shm(engine, tmp_path, {"type": "regular", "enable_read_cache": 1,
                                            "cache_size": "1m"})
    assert p.returncode == 0, p.stdout + p.stderr
    assert any("not cached" in ln and "No space left on device" in ln
               for ln in xdevice_lines(p.stderr)), p.stderr


def test_write_back_cache_on_a_full_fs(engine, tmp_path, full_fs):
    """A write-back cache takes writes the file system has no room for: at
    close they cannot be written back, and the job fails with ENOSPC and one
    line saying they never reached the file (old: fio exited 0, verify
    passed from the cache, and half the file was holes)."""
    xd = {"type": "regular", "enable_read_cache": 1, "enable_write_cache": 1,
          "cache_size": "64m"}
    r = xd_run(engine, tmp_path, full_fs, xd, expect_ok=False, size="32m", rw="write",
               bs="64k", verify="crc32c")
    assert_enospc(r)
    lines = [ln for ln in xdevice_lines(r.text) if "never reached the file" in ln]
    assert len(lines) == 1 and "No space left on device" in lines[0], r.text


def test_tmpfs_backup_on_a_full_disk(engine, tmp_path, full_fs):
    """backup_to_disk: the backup at close does not fit on the disk; the job
    fails with ENOSPC and says where the data still is (old: fio exited 0
    with an empty file on the disk)."""
    shm = Path(f"/dev/shm/xdevice-{os.geteuid()}")
    mine = str(full_fs / "f").lstrip("/").replace("%", "%25").replace("/", "%2F")
    try:
        r = xd_run(engine, tmp_path, full_fs, {"type": "tmpfs", "backup_to_disk": 1},
                   expect_ok=False, size="32m", rw="write", bs="64k")
        assert_enospc(r)
        lines = [ln for ln in xdevice_lines(r.text) if "backup at close failed" in ln]
        assert len(lines) == 1 and str(shm / mine) in lines[0], r.text
    finally:  # the copy and its stamp (tmpfs_stamp.h: the copy's name + "%xdstamp")
        (shm / mine).unlink(missing_ok=True)
        (shm / (mine + "%xdstamp")).unlink(missing_ok=True)
