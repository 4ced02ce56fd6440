"""What each storage type does that the others do not."""
import os

import pytest

from conftest import (
    MiB,
    assert_verified,
    fio_job,
    load_stats,
    run_fio,
    xdevice_lines,
)

# --- tmpfs -----------------------------------------------------------------------


def tmpfs_copies(shm_dir, basename):
    """Data files under the tmpfs directory that hold the disk file basename
    (not the stamps beside them)."""
    found = []
    for root, _, files in os.walk(shm_dir):
        found += [os.path.join(root, f) for f in files
                  if basename in f and not f.endswith((".lock", "%xdstamp"))]
    return found


def tmpfs_job(engine, tmp_path, disk_dir, shm_dir, size, **xd):
    stats = tmp_path / "s.json"
    r = run_fio(
        fio_job(engine, name="tt", xd={"type": "tmpfs", "tmpfs_directory": shm_dir,
                                        "stats": stats, **xd},
                directory=disk_dir, rw="randwrite", bs="4k", size=size, iodepth=8,
                verify="crc32c", verify_fatal=1),
        tmp_path,
    )
    assert_verified(r.data, size=size, njobs=1)
    disk = disk_dir / "tt.0.0"
    copies = tmpfs_copies(shm_dir, "tt.0.0")
    assert len(copies) == 1, f"expected one tmpfs copy of {disk} under {shm_dir}: {copies}"
    return disk, copies[0], load_stats(stats)


def test_tmpfs_data_lives_under_tmpfs_directory(engine, tmp_path, disk_dir, shm_dir):
    size = 4 * MiB
    disk, copy, doc = tmpfs_job(engine, tmp_path, disk_dir, shm_dir, size)
    assert doc["jobs"][0]["config"]["tmpfs_directory"] == str(shm_dir)
    assert os.path.getsize(copy) == size
    data = open(copy, "rb").read()
    assert data.count(0) < len(data) // 2, "the tmpfs copy does not hold the job's data"
    # without backup_to_disk nothing is kept at the disk path: fio lays out
    # no file there (it wrote a full-size file nothing read)
    assert not disk.exists(), "the disk path was laid out though no data is kept there"


def test_tmpfs_later_job_finds_the_copy(engine, tmp_path, disk_dir, shm_dir):
    """A reader without size= after a writer: setup makes the tmpfs copy in
    fio's parent, as psync's layout makes the file, so the reader finds it,
    sized, and verifies what the writer wrote; no disk file is made."""
    job = tmp_path / "wr.fio"
    job.write_text(
        f"[global]\nioengine=external:{engine}\nxd_type=tmpfs\nxd_tmpfs_directory={shm_dir}\n"
        f"directory={disk_dir}\nfilename=shared.dat\nbs=4k\nverify=crc32c\n"
        "[writer]\nrw=randwrite\nsize=2m\ndo_verify=0\n"
        "[reader]\nstonewall\nrw=read\n"
    )
    r = run_fio([str(job)], tmp_path)
    reader = next(j for j in r.data["jobs"] if j["jobname"] == "reader")
    assert reader["read"]["io_bytes"] == 2 * MiB, reader["read"]
    assert len(tmpfs_copies(shm_dir, "shared.dat")) == 1
    assert not (disk_dir / "shared.dat").exists()


@pytest.mark.parametrize("async_mode", ["sync", "io_uring"])
def test_tmpfs_backup_to_disk(engine, tmp_path, disk_dir, shm_dir, async_mode):
    size = 4 * MiB
    disk, copy, _ = tmpfs_job(engine, tmp_path, disk_dir, shm_dir, size,
                              backup_to_disk=1, **{"async": async_mode})
    tm = open(copy, "rb").read()
    assert tm.count(0) < len(tm) // 2
    assert open(disk, "rb").read() == tm, "after the run the disk backup differs from the tmpfs data"


def test_tmpfs_backup_removes_temps_a_kill_left(engine, tmp_path, disk_dir, shm_dir):
    """A backup is a temp file ".P.xdtmp-XXXXXX" beside P renamed over it;
    a kill -9 before the rename (likely: backups run at every fsync) left
    that whole-file copy beside P for good, one more per kill. The next
    run's first backup removes such temps (a planted one stands for it), and
    nothing else: another file's temp, a name not of that form, another
    program's temp of P (rsync's ".P.XXXXXX")."""
    stale = disk_dir / ".tt.0.0.xdtmp-Ab3xY9"
    stale.write_bytes(b"\xaa" * 65536)
    keep = [disk_dir / ".other.xdtmp-Ab3xY9", disk_dir / ".tt.0.0.xdtmp-short",
            disk_dir / "tt.0.0.xdtmp-Ab3xY9", disk_dir / ".tt.0.0.Ab3xY9"]
    for k in keep:
        k.write_bytes(b"x")
    tmpfs_job(engine, tmp_path, disk_dir, shm_dir, MiB, backup_to_disk=1)
    assert not stale.exists(), "the temp a killed backup left is still beside the file"
    assert all(k.exists() for k in keep), [k for k in keep if not k.exists()]


def psync_job(name, path, **opts):
    """Command-line arguments of one job on fio's own psync engine."""
    return [f"--name={name}", "--ioengine=psync", f"--filename={path}",
            *[f"--{k}={v}" for k, v in opts.items()]]


def tmpfs_backed_up_then_psync(engine, tmp_path, p, shm_dir):
    """A tmpfs job (backup_to_disk) writes pattern A and backs it up to p,
    then psync writes pattern B over p. The tmpfs job's common options, its
    xd keys, and p's stat after A."""
    common = dict(filename=p, bs="4k", size="1m", verify_state_save=0)
    xd = {"type": "tmpfs", "tmpfs_directory": shm_dir, "backup_to_disk": 1}
    run_fio(fio_job(engine, name="a", xd=xd, rw="write", verify="pattern",
                    verify_pattern="0xaaaaaaaa", **common), tmp_path)
    after_a = os.stat(p)
    run_fio(psync_job("b", p, rw="write", verify="pattern", verify_pattern="0xbbbbbbbb",
                      **{k: v for k, v in common.items() if k != "filename"}), tmp_path)
    return common, xd, after_a


def test_tmpfs_backup_newer_disk_file_wins(engine, tmp_path, disk_dir, shm_dir):
    """The audit's repro. A tmpfs job backs pattern A up to the disk file,
    psync then writes B there. The tmpfs copy (A) is stale: a --readonly
    verify of B through the tmpfs type reads B (the disk file is loaded into
    the copy), and neither that job nor a plain read job writes the disk
    file (same inode, same mtime), so psync still verifies B after them.
    Before, the tmpfs job read A, and every close renamed the copy over the
    disk file, a --readonly job's included, so psync then read A."""
    p = disk_dir / "t"
    common, xd, after_a = tmpfs_backed_up_then_psync(engine, tmp_path, p, shm_dir)
    st = os.stat(p)
    if st.st_mtime_ns == after_a.st_mtime_ns:  # one clock tick apart: show the change anyway
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    b = os.stat(p)
    run_fio(["--readonly", *fio_job(engine, name="c", xd=xd, rw="read", verify="pattern",
                                    verify_pattern="0xbbbbbbbb", verify_only=1, **common)],
            tmp_path)
    run_fio(fio_job(engine, name="d", xd=xd, rw="read", **common), tmp_path)
    now = os.stat(p)
    assert (now.st_ino, now.st_mtime_ns) == (b.st_ino, b.st_mtime_ns), \
        "a tmpfs job that only read replaced the disk file"
    run_fio(psync_job("e", p, rw="read", verify="pattern", verify_pattern="0xbbbbbbbb",
                      verify_only=1, bs="4k", size="1m", verify_state_save=0), tmp_path)


def test_tmpfs_rewrite_with_mtime_set_back_is_loaded(engine, tmp_path, disk_dir, shm_dir):
    """psync rewrites the disk file a tmpfs job backed up, then its mtime is
    set back (as touch -m -r, cp -p or rsync -t leave it): same inode, size
    and mtime. The copy's stamp also holds the ctime, which nobody can set,
    so a --readonly verify through the tmpfs type reads the new data. Before,
    the stamp held the mtime only: the stale copy was served ("bad pattern")."""
    p = disk_dir / "m"
    common, xd, a = tmpfs_backed_up_then_psync(engine, tmp_path, p, shm_dir)
    os.utime(p, ns=(a.st_atime_ns, a.st_mtime_ns))
    b = os.stat(p)
    assert (b.st_ino, b.st_size, b.st_mtime_ns) == (a.st_ino, a.st_size, a.st_mtime_ns)
    run_fio(["--readonly", *fio_job(engine, name="c", xd=xd, rw="read", verify="pattern",
                                    verify_pattern="0xbbbbbbbb", verify_only=1, **common)],
            tmp_path)


@pytest.mark.parametrize("extra", [[], ["--readonly"], ["--allow_file_create=0"], ["--size=1m"]])
def test_tmpfs_serves_the_disk_file_at_the_path(engine, tmp_path, disk_dir, shm_dir, extra):
    """The audit's repro: a file psync wrote at fio's filename is the data
    the tmpfs type (no backup_to_disk) serves, loaded into its copy, sized
    as psync sees it (no size= needed), opened with allow_file_create=0,
    and under --readonly; it verifies, and the disk file is never written.
    Before, the type ignored it: "you need to specify size=", zeros ("bad
    magic header"), or "no such file" for a file that exists."""
    p = disk_dir / "t4"
    run_fio(psync_job("w", p, bs="4k", size="2m", rw="write", verify="crc32c", do_verify=0,
                      verify_state_save=0), tmp_path)
    before = os.stat(p)
    xd = {"type": "tmpfs", "tmpfs_directory": shm_dir}
    r = run_fio([*extra, *fio_job(engine, name="r", xd=xd, filename=p, bs="4k", rw="read",
                                  verify="crc32c", verify_only=1, verify_state_save=0)],
                tmp_path)
    want = MiB if "--size=1m" in extra else 2 * MiB
    assert r.data["jobs"][0]["read"]["io_bytes"] == want, r.data["jobs"][0]["read"]
    now = os.stat(p)
    assert (now.st_ino, now.st_size, now.st_mtime_ns) == \
        (before.st_ino, before.st_size, before.st_mtime_ns), "the disk file was written"


def test_tmpfs_directory_on_disk_is_refused(engine, tmp_path, disk_dir):
    """tmpfs_directory must be on a tmpfs (auto_mount is off by default)."""
    r = run_fio(
        fio_job(engine, name="tt", xd={"type": "tmpfs", "tmpfs_directory": disk_dir / "notmpfs"},
                directory=disk_dir, rw="write", bs="4k", size=MiB),
        tmp_path, expect_ok=False,
    )
    assert r.rc > 0, r.text
    lines = xdevice_lines(r.text)
    assert any("tmpfs_directory" in ln for ln in lines), r.text
    if r.data is not None:
        assert all(j["write"]["io_bytes"] == 0 for j in r.data["jobs"])


# --- direct ------------------------------------------------------------------------


def test_direct_on_tmpfs_fails_naming_o_direct(engine, tmp_path, shm_dir):
    r = run_fio(
        fio_job(engine, name="d", xd={"type": "direct"}, directory=shm_dir,
                rw="write", bs="4k", size=MiB),
        tmp_path, expect_ok=False,
    )
    assert r.rc > 0, f"direct type on /dev/shm was accepted:\n{r.text}"
    lines = xdevice_lines(r.text)
    assert any("O_DIRECT" in ln for ln in lines), f"no xdevice: line mentions O_DIRECT:\n{r.text}"
    if r.data is not None:
        assert all(j["write"]["io_bytes"] == 0 for j in r.data["jobs"])


@pytest.mark.parametrize("async_mode", ["libaio", "io_uring"])
def test_direct_aligned_buffers_do_not_bounce(engine, tmp_path, disk_dir, async_mode):
    """Aligned offsets, lengths and buffers go straight to the kernel."""
    stats = tmp_path / "s.json"
    r = run_fio(
        fio_job(engine, name="da", xd={"type": "direct", "async": async_mode, "stats": stats},
                directory=disk_dir, rw="randwrite", bs="4k", size=4 * MiB, iodepth=16,
                iomem_align="4k", verify="crc32c", verify_fatal=1),
        tmp_path,
    )
    assert_verified(r.data, size=4 * MiB, njobs=1)
    f = load_stats(stats)["jobs"][0]["layers"]["file"]
    assert f["direct_alignment"] == 4096
    assert f["bounced"] == 0 and f["read_modify_writes"] == 0, f


# --- mmap ----------------------------------------------------------------------------

MMAP_SHAPES = {
    "bs16k": dict(bs="16k"),
    "bs24k-crossing": dict(bs="24k"),  # offsets 24k apart straddle 64k windows
    "bsrange-unaligned": dict(bsrange="512-48k", bs_unaligned=1),
}


@pytest.mark.parametrize("async_mode", ["sync", "io_uring"])
@pytest.mark.parametrize("shape", list(MMAP_SHAPES))
def test_mmap_small_windows(engine, tmp_path, disk_dir, shape, async_mode):
    stats = tmp_path / "s.json"
    r = run_fio(
        fio_job(engine, name="mm",
                xd={"type": "mmap", "mmap_size": "64k", "async": async_mode, "stats": stats},
                directory=disk_dir, rw="randwrite", size=4 * MiB, iodepth=8,
                verify="crc32c", verify_fatal=1, **MMAP_SHAPES[shape]),
        tmp_path,
    )
    assert_verified(r.data, njobs=1)
    assert r.data["jobs"][0]["write"]["io_bytes"] >= 4 * MiB - 48 * 1024
    job = load_stats(stats)["jobs"][0]
    assert job["config"]["mmap_size"] == 64 * 1024
    assert job["type"] == "mmap"


# --- block ---------------------------------------------------------------------------


@pytest.mark.parametrize("async_mode", ["libaio", "io_uring"])
def test_block_loop_verify(engine, tmp_path, loop_dev, async_mode):
    stats = tmp_path / "s.json"
    size = 16 * MiB
    r = run_fio(
        fio_job(engine, name="blk", xd={"type": "block", "async": async_mode, "stats": stats},
                filename=loop_dev, rw="randwrite", bs="4k", size=size, iodepth=16,
                verify="crc32c", verify_fatal=1),
        tmp_path,
    )
    assert_verified(r.data, size=size, njobs=1)
    job = load_stats(stats)["jobs"][0]
    assert job["type"] == "block"
    assert job["ops"]["write"]["bytes"] == size
    assert job["layers"]["block"]["device"] == loop_dev
    assert job["layers"]["block"]["sector_size"] == 512


def block_depth(engine, tmp_path, loop_dev, async_mode, **extra):
    r = run_fio(
        fio_job(engine, name="bdepth", xd={"type": "block", "async": async_mode},
                filename=loop_dev, rw="randwrite", bs="4k", size=8 * MiB, iodepth=16, **extra),
        tmp_path,
    )
    lv = {k: float(v) for k, v in r.data["jobs"][0]["iodepth_level"].items()}
    assert lv["16"] > 0, f"block xd_async={async_mode} never reached depth 16: {lv}"
    assert lv["1"] < 50, lv


@pytest.mark.parametrize("async_mode", ["libaio", "io_uring"])
def test_block_async_depth(engine, tmp_path, loop_dev, async_mode):
    block_depth(engine, tmp_path, loop_dev, async_mode)


@pytest.mark.parametrize("async_mode", ["libaio", "io_uring"])
def test_block_async_depth_aligned_buffers(engine, tmp_path, loop_dev, async_mode):
    block_depth(engine, tmp_path, loop_dev, async_mode, iomem_align="4k")


def test_block_sector_sized_verify(engine, tmp_path, loop_dev):
    """512-byte requests: the loop device's sector, below the 4k page."""
    r = run_fio(
        fio_job(engine, name="blk512", xd={"type": "block", "async": "io_uring"},
                filename=loop_dev, offset=32 * MiB, rw="randwrite", bs=512, size=MiB,
                iodepth=8, verify="crc32c", verify_fatal=1),
        tmp_path,
    )
    assert_verified(r.data, size=MiB, njobs=1)
