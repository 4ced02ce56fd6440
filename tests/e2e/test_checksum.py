"""The checksum layer (enable_checksums) through real fio.

Writes and verifies pass with checksums on (whole and partial blocks, sync
and io_uring, threads sharing one file, jobs writing the same blocks); a byte changed on disk behind the
engine's back reads as EIO with one line naming the file and the block; a
writer killed with SIGKILL leaves no block that reads as wrong data. A
sidecar deleted, replaced by another file's, truncated or with a page of
entries zeroed is said in one line and never lets a corrupt block through.
"""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time

import pytest

from conftest import (FIO, MiB, crc32c, fio_job, load_stats, needs_io_uring, run_fio,
                      xdevice_lines)

SIZE = 2 * MiB
BLOCK = 4096
HEADER = 64  # the sidecar's header; then one 24-byte entry per block
ENTRY = 24
MARK = "user.xdevice.checksum"  # the data file's mark that it has a sidecar


def layer_stats(path):
    """layers.checksum of every job of an xd_stats document."""
    doc = load_stats(path)
    found = [j["layers"]["checksum"] for j in doc["jobs"] if "checksum" in j.get("layers", {})]
    assert found, f"no layers.checksum in {path}"
    return found


def total(stats, key):
    return sum(s[key] for s in stats)


def where(kind, request, disk_dir):
    """fio options and xd options that put a job's data on type kind."""
    if kind == "tmpfs":
        return {"directory": disk_dir}, {"tmpfs_directory": request.getfixturevalue("shm_dir")}
    return {"directory": disk_dir}, {}


@pytest.mark.parametrize("bs", ["4k", "512"])
@pytest.mark.parametrize("async_mode", ["sync", "io_uring"])
@pytest.mark.parametrize("kind", ["regular", "direct", "tmpfs"])
def test_randrw_verifies(engine, tmp_path, disk_dir, request, kind, async_mode, bs):
    """Random reads and writes, then fio checks every block it wrote; bs=512
    makes every request part of a 4k checksum block (read, merge, write)."""
    place, xd = where(kind, request, disk_dir)
    stats = tmp_path / "stats.json"
    xd.update(type=kind, enable_checksums="true", stats=stats)
    if async_mode != "sync":
        xd["async"] = async_mode
    size = SIZE if bs == "4k" else SIZE // 4
    r = run_fio(fio_job(engine, name="cs", xd=xd, rw="randrw", bs=bs, size=size, iodepth=16,
                        verify="crc32c", verify_fatal=1, do_verify=1, **place), tmp_path)
    job = r.data["jobs"][0]
    assert job["write"]["io_bytes"] > 0 and job["read"]["io_bytes"] > 0
    s = layer_stats(stats)
    assert total(s, "mismatches") == 0
    assert total(s, "blocks_written") > 0
    assert total(s, "verified") > 0, "fio's verify reads were not checked against the sidecar"
    if bs == "512":
        assert total(s, "partial_writes") > 0 and total(s, "partial_reads") > 0
    sidecars = list(disk_dir.glob("*.xdsum")) + (
        list(xd["tmpfs_directory"].glob("*.xdsum")) if kind == "tmpfs" else [])
    assert sidecars, "no sidecar beside the data"
    assert oct(sidecars[0].stat().st_mode & 0o777) == "0o644"  # file_permissions' default


@pytest.mark.parametrize("csize", ["4k", "1m"], ids=["own-blocks", "one-shared-block"])
@pytest.mark.parametrize("proc", [["--thread=1"], []], ids=["threads", "processes"])
def test_two_jobs_share_one_file(engine, tmp_path, disk_dir, proc, csize):
    """Two jobs write their own halves of one file at once (one sidecar,
    entries side by side), then each verifies its half. With 1m checksum
    blocks both halves are one block: every write is a partial one, the two
    jobs' read-merge-writes of that block must not interleave."""
    stats = tmp_path / "stats.json"
    half = 512 * 1024
    xd = {"type": "regular", "async": "io_uring", "enable_checksums": "true", "stats": stats,
          "checksum_block_size": csize}
    r = run_fio(fio_job(engine, name="pair", xd=xd, filename=disk_dir / "shared", rw="randwrite",
                        bs="4k", size=half, offset_increment=half, numjobs=2,
                        iodepth=8, verify="crc32c", verify_fatal=1, do_verify=1) + proc, tmp_path)
    assert len(r.data["jobs"]) == 2
    s = layer_stats(stats)
    assert total(s, "mismatches") == 0
    assert total(s, "verified") > 0
    if csize == "1m":
        assert total(s, "partial_writes") == 2 * half // BLOCK


@pytest.mark.parametrize("proc", [["--thread=1"], []], ids=["threads", "processes"])
@pytest.mark.parametrize("async_mode,iodepth", [("sync", 1), ("io_uring", 8), ("libaio", 16)])
def test_jobs_writing_the_same_blocks(engine, tmp_path, disk_dir, proc, async_mode, iodepth):
    """Three jobs write and read the same 1 MiB (fio's numjobs on one file),
    whole and partial blocks, for 3 s; then the file is read through. One
    write of a block is out at a time across the jobs: the old layer let two
    or three land in any order (a block then matched neither slot) and a
    partial write merge into data another job's write changed under it;
    these jobs read EIO within a second, where fio's own engines pass."""
    stats = tmp_path / "stats.json"
    shared = disk_dir / "same-blocks"
    xd = {"type": "regular", "async": async_mode, "enable_checksums": "true", "stats": stats}
    r = run_fio(fio_job(engine, name="same", xd=xd, filename=shared, rw="randrw",
                        bsrange="512-16k", blockalign=512, size=MiB, numjobs=3,
                        iodepth=iodepth, time_based=None, runtime=3) + proc, tmp_path)
    assert [j["error"] for j in r.data["jobs"]] == [0, 0, 0], r.text
    s = layer_stats(stats)
    assert total(s, "mismatches") == 0
    assert total(s, "solo_files") <= 1  # only a sidecar's one writer goes without locks
    assert total(s, "partial_writes") > 0 and total(s, "blocks_written") > 0
    after = tmp_path / "after.json"
    r = run_fio(fio_job(engine, name="all", xd={"type": "regular", "enable_checksums": "true",
                                               "stats": after},
                        filename=shared, rw="read", bs="4k", size=MiB), tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == MiB
    assert total(layer_stats(after), "mismatches") == 0


def write_file(engine, tmp_path, path, stats, **over):
    xd = {"type": "regular", "enable_checksums": "true", "stats": stats}
    opts = dict(filename=path, rw="write", bs="4k", size=256 * 1024, scramble_buffers=0)
    opts.update(over)
    run_fio(fio_job(engine, name="w", xd=xd, **opts), tmp_path)


def read_file(engine, tmp_path, path, stats, **over):
    """Read every block through the engine, carrying on past read errors."""
    xd = {"type": "regular", "enable_checksums": "true", "stats": stats}
    opts = dict(filename=path, rw="read", bs="4k", size=256 * 1024, continue_on_error="read")
    opts.update(over)
    return run_fio(fio_job(engine, name="r", xd=xd, **opts), tmp_path, expect_ok=False)


def eio_blocks(text, path):
    """Blocks the engine's error lines name for path."""
    return {int(b) for b in re.findall(rf"checksum: {re.escape(str(path))}: block (\d+)", text)}


def test_byte_flipped_on_disk_reads_eio(engine, tmp_path, disk_dir):
    """A byte changed behind the engine's back: the read fails with EIO
    (fio err=5) and the error line names the file and the block."""
    data = disk_dir / "flip"
    write_file(engine, tmp_path, data, tmp_path / "w.json", buffer_pattern="0x5a5a5a5a")
    with open(data, "r+b") as f:
        f.seek(5 * BLOCK + 100)
        f.write(b"\xa5")
    r = read_file(engine, tmp_path, data, tmp_path / "r.json", continue_on_error="none")
    assert r.data is not None, r.text
    assert r.data["jobs"][0]["error"] == 5, r.text
    assert eio_blocks(r.text, data) == {5}, r.text
    assert f"bytes {5 * BLOCK}-{6 * BLOCK - 1}" in r.text
    # the blocks around it still read: only block 5 fails
    r = read_file(engine, tmp_path, data, tmp_path / "r2.json")
    assert eio_blocks(r.text, data) == {5}, r.text
    s = layer_stats(tmp_path / "r2.json")
    assert total(s, "mismatches") >= 1
    assert total(s, "verified") == 256 * 1024 // BLOCK - 1


def test_mismatch_naming_a_file_with_a_newline_is_one_line(engine, tmp_path, disk_dir):
    """The mismatch line names the file as it is; the engine printed it
    raw, so a newline in the name made two lines on stderr, the second
    starting with whatever the name held. It is escaped, as every other
    line is (xd_dev_take_error)."""
    data = disk_dir / "a\nxdevice forged line"
    xd = {"type": "regular", "enable_checksums": "true"}
    job = dict(filename=data, bs="4k", size=64 * 1024)
    # fio's own JSON holds the name's newline raw (invalid JSON): its normal output
    r = run_fio(fio_job(engine, name="w", xd=xd, rw="write", **job), tmp_path, fmt="normal",
                expect_ok=False)
    assert r.rc == 0, r.text
    with open(data, "r+b") as f:
        f.seek(5 * BLOCK + 100)
        f.write(b"\xa5")
    r = run_fio(fio_job(engine, name="r", xd=xd, rw="read", **job), tmp_path, fmt="normal",
                expect_ok=False)
    assert "err= 5" in r.text, r.text
    lines = [ln for ln in r.text.splitlines() if "forged line" in ln]
    assert len(lines) == 1 and lines[0].startswith("xdevice: checksum: "), lines
    assert "a\\x0axdevice forged line: block 5" in lines[0], lines


@pytest.mark.parametrize("async_mode", ["sync", "io_uring"])
def test_overwrite_lost_to_power_reads_the_fsynced_data(engine, tmp_path, disk_dir, async_mode):
    """A power loss undoes writes that were never fsynced (fault_drop_writes
    acknowledges them and loses them at close, as a volatile write cache
    would): every block must then read as what the last fsync made durable,
    not as EIO. The sidecar's DUR slot keeps that crc (a block overwritten
    since, its CUR and NEW both the lost write's, read as EIO before)."""
    data = disk_dir / "lost"
    write_file(engine, tmp_path, data, tmp_path / "w.json", buffer_pattern="0x11111111",
               end_fsync=1)
    before = data.read_bytes()
    # the overwrite: acknowledged, never stored (no fsync before the close)
    xd = {"type": "regular", "enable_checksums": "true", "async": async_mode,
          "enable_fault_injection": "true", "fault_every": 1, "fault_drop_writes": "true"}
    run_fio(fio_job(engine, name="o", xd=xd, filename=data, rw="randwrite", bs="4k",
                    size=256 * 1024, iodepth=8, buffer_pattern="0x22222222"), tmp_path)
    assert data.read_bytes() == before  # the disk never got the overwrite
    r = read_file(engine, tmp_path, data, tmp_path / "r.json")
    assert eio_blocks(r.text, data) == set(), r.text
    s = layer_stats(tmp_path / "r.json")
    assert total(s, "verified") == 256 * 1024 // BLOCK and total(s, "mismatches") == 0, s
    # and the data read is the fsynced pattern (fio's verify of the first write)
    r = run_fio(fio_job(engine, name="v", xd={"type": "regular", "enable_checksums": "true"},
                        filename=data, rw="read", bs="4k", size=256 * 1024,
                        verify="pattern", verify_pattern="0x11111111", verify_only=None),
                tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == 256 * 1024


def whole(block):
    """One round's writes fill a block with one repeated 4-byte pattern;
    anything else is a mix of two rounds (a torn block)."""
    return block == block[:4] * (len(block) // 4)


def sidecar_changed_since(path, before, deadline):
    """Poll (bounded) until the sidecar differs from before."""
    while time.monotonic() < deadline:
        try:
            now = path.read_bytes()
        except FileNotFoundError:
            now = b""
        if len(now) > HEADER and now != before:
            return True
        time.sleep(0.01)
    return False


@needs_io_uring
def test_kill9_leaves_no_wrong_data(engine, tmp_path, disk_dir):
    """Rounds of a writer with fsyncs killed with SIGKILL while it writes;
    after each, every block reads through the engine as a whole block or
    as EIO, and every block on disk that is torn reads as EIO."""
    data = disk_dir / "crash"
    side = disk_dir / "crash.xdsum"
    size = 256 * 1024
    write_file(engine, tmp_path, data, tmp_path / "init.json", buffer_pattern="0x01010101")
    for rnd in range(3):
        pattern = f"0x{(rnd + 2) * 0x11:02x}{rnd + 2:02x}{rnd + 2:02x}{rnd + 2:02x}"
        xd = {"type": "regular", "enable_checksums": "true", "async": "io_uring"}
        cmd = [FIO, "--output-format=json", "--output", str(tmp_path / f"kill{rnd}.out")] + fio_job(
            engine, name="k", xd=xd, filename=data, rw="randwrite", bs="4k", size=size,
            iodepth=8, fsync=4, norandommap=1, time_based=1, runtime=30,
            buffer_pattern=pattern, scramble_buffers=0) + ["--thread=1"]
        before = side.read_bytes()
        # thread=1: the job runs inside the process killed (a job process
        # of its own would start a session of its own and outlive the kill)
        p = subprocess.Popen([str(c) for c in cmd], cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            assert sidecar_changed_since(side, before, time.monotonic() + 20), "the writer never wrote"
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
        raw = data.read_bytes()
        torn = {b for b in range(size // BLOCK) if not whole(raw[b * BLOCK:(b + 1) * BLOCK])}
        stats = tmp_path / f"r{rnd}.json"
        r = read_file(engine, tmp_path, data, stats)
        eio = eio_blocks(r.text, data)
        assert torn <= eio, f"round {rnd}: torn blocks {sorted(torn - eio)} read without error"
        # a kill leaves the page cache as it was: nothing torn, nothing refused
        assert eio == torn, f"round {rnd}: whole blocks {sorted(eio - torn)} read as EIO\n{r.text}"
        s = layer_stats(stats)
        assert total(s, "verified") + total(s, "mismatches") == size // BLOCK


def test_refused_with_compressed(engine, tmp_path, disk_dir):
    xd = {"type": "compressed", "enable_checksums": "true"}
    r = run_fio(fio_job(engine, name="x", xd=xd, directory=disk_dir, rw="write", bs="4k",
                        size=64 * 1024), tmp_path, expect_ok=False)
    assert r.rc != 0
    lines = [ln for ln in r.text.splitlines() if ln.startswith("xdevice:")]
    assert len(lines) == 1 and "enable_checksums=true" in lines[0] and \
        "storage_type=compressed" in lines[0] and "own crc32c" in lines[0], r.text


def test_name_without_room_for_the_sidecar_is_one_line(engine, tmp_path, disk_dir):
    """A data file named in 250 bytes leaves no room for "<name>.xdsum"
    (NAME_MAX is 255): one line says the name's length and the limit."""
    name = "n" * 250
    r = run_fio(fio_job(engine, name="x", xd={"enable_checksums": "true"}, directory=disk_dir,
                        filename=name, rw="write", bs="4k", size=64 * 1024),
                tmp_path, expect_ok=False)
    assert r.rc != 0
    lines = [ln for ln in r.text.splitlines() if ln.startswith("xdevice:")]
    assert len(lines) == 1 and "a file name of 250 bytes" in lines[0] and \
        "at most 249" in lines[0] and ".xdsum" in lines[0], r.text


HYBRID = {"type": "hybrid", "tier_extent_size": "64k", "hot_access_threshold": "1",
          "migration_interval_sec": "0.05", "hot_cache_size": "1m", "enable_checksums": "true"}


@pytest.mark.parametrize("thread", [1, 0])
def test_hybrid_verifies_under_migration(engine, tmp_path, disk_dir, shm_dir, thread):
    """Checksums cover the hybrid type's logical data, above its tiers:
    randrw verify with extents moving between them, in threads and in
    processes sharing the file."""
    stats = tmp_path / "stats.json"
    xd = dict(HYBRID, hot_directory=shm_dir, stats=stats, **{"async": "io_uring"})
    run_fio(fio_job(engine, name="h", xd=xd, filename=disk_dir / "hyb", rw="randrw", bs="4k",
                    size=SIZE // 2, iodepth=8, numjobs=2, thread=thread, offset_increment=SIZE // 2,
                    verify="crc32c", verify_fatal=1, time_based=1, runtime=1), tmp_path)
    s = layer_stats(stats)
    assert total(s, "mismatches") == 0 and total(s, "verified") > 0, s


def test_hybrid_flipped_byte_reads_eio(engine, tmp_path, disk_dir, shm_dir):
    """A byte of the cold file changed behind the engine: EIO, naming the
    block, as on any other type."""
    data = disk_dir / "hflip"
    xd = dict(HYBRID, hot_directory=shm_dir, hot_access_threshold="1000")
    run_fio(fio_job(engine, name="w", xd=xd, filename=data, rw="write", bs="4k",
                    size=256 * 1024, buffer_pattern="0x5a5a5a5a"), tmp_path)
    with open(data, "r+b") as f:
        f.seek(7 * BLOCK + 9)
        f.write(b"\xa5")
    r = run_fio(fio_job(engine, name="r", xd=xd, filename=data, rw="read", bs="4k",
                        size=256 * 1024, continue_on_error="read"), tmp_path, expect_ok=False)
    assert eio_blocks(r.text, data) == {7}, r.text


@pytest.mark.parametrize("kind", ["mmap", "sparse", "block"])
def test_other_types_verify(engine, tmp_path, disk_dir, request, kind):
    """The other types that host checksums: whole and partial blocks."""
    stats = tmp_path / "stats.json"
    xd = {"type": kind, "enable_checksums": "true", "stats": stats}
    place = {"directory": disk_dir}
    if kind == "block":
        dev = request.getfixturevalue("loop_dev")
        place = {"filename": dev}
        # never beside the node: /dev is a devtmpfs, emptied at every boot
        xd["checksum_directory"] = disk_dir / "sums"
    for bs in ["4k", "1536"]:
        run_fio(fio_job(engine, name="o", xd=xd, rw="randwrite", bs=bs, size=SIZE // 4, iodepth=4,
                        verify="crc32c", verify_fatal=1, do_verify=1, **place), tmp_path)
        s = layer_stats(stats)
        assert total(s, "mismatches") == 0 and total(s, "verified") > 0
    if kind == "block":
        name = dev.replace("/", "%2F") + ".xdsum"
        assert [p.name for p in (disk_dir / "sums").iterdir()] == [name]
        assert not os.path.lexists(f"{dev}.xdsum")


def test_block_type_needs_a_checksum_directory(engine, tmp_path, loop_dev):
    r = run_fio(fio_job(engine, name="b", xd={"type": "block", "enable_checksums": "true"},
                        filename=loop_dev, rw="read", bs="4k", size=SIZE // 4), tmp_path,
                expect_ok=False)
    assert r.rc != 0
    lines = xdevice_lines(r.text)
    assert len(lines) == 1 and "needs checksum_directory" in lines[0], r.text
    assert not os.path.lexists(f"{loop_dev}.xdsum")


def test_checksum_directory_names_sidecars_by_whole_path(engine, tmp_path, disk_dir):
    """Two files of one name in two directories: two sidecars, each named
    after its file's whole path, none beside the data."""
    sums = disk_dir / "sums"
    for sub in ["a", "b%c"]:
        (disk_dir / sub).mkdir()
        xd = {"enable_checksums": "true", "checksum_directory": sums}
        run_fio(fio_job(engine, name="same", xd=xd, directory=disk_dir / sub, rw="randwrite",
                        bs="4k", size=SIZE // 4, verify="crc32c", verify_fatal=1, do_verify=1),
                tmp_path)
        assert not list((disk_dir / sub).glob("*.xdsum"))
    want = sorted(str(disk_dir / sub / "same.0.0").replace("%", "%25").replace("/", "%2F")
                  + ".xdsum" for sub in ["a", "b%c"])
    assert sorted(p.name for p in sums.iterdir()) == want


def test_data_file_made_again_behind_the_layer(engine, tmp_path, disk_dir):
    """A data file deleted and written again without the layer: its old
    sidecar is emptied at open, so the new data reads (unchecked), not EIO."""
    data = disk_dir / "again"
    write_file(engine, tmp_path, data, tmp_path / "w.json", buffer_pattern="0x11111111")
    data.unlink()
    data.write_bytes(b"\x22" * (256 * 1024))
    r = read_file(engine, tmp_path, data, tmp_path / "r.json")
    assert r.data["jobs"][0]["error"] == 0 and not eio_blocks(r.text, data), r.text
    s = layer_stats(tmp_path / "r.json")
    assert total(s, "stale_sidecars") == 1 and total(s, "unknown") == 256 * 1024 // BLOCK


def flip(path, block):
    """One byte of block changed behind the engine's back."""
    with open(path, "r+b") as f:
        f.seek(block * BLOCK + 100)
        f.write(b"\xa5")


def verify_job(engine, tmp_path, path, rw):
    """fio's own crc32c verify of 256 KiB: write it, or read and check it."""
    xd = {"type": "regular", "enable_checksums": "true"}
    opts = dict(filename=path, rw=rw, bs="4k", size=256 * 1024, verify="crc32c", verify_fatal=1)
    if rw == "read":
        opts["verify_only"] = None
    return run_fio(fio_job(engine, name="v", xd=xd, **opts), tmp_path, expect_ok=rw != "read")


def refused(r, *needles):
    """The open was refused: no job read anything, one xdevice line says why."""
    assert r.rc != 0, r.text
    assert "verify failed" not in r.text, f"wrong data was served:\n{r.text}"
    lines = xdevice_lines(r.text)
    assert len(lines) == 1, r.text
    for n in needles:
        assert str(n) in lines[0], lines[0]
    return lines[0]


def test_deleted_sidecar_refuses_the_open(engine, tmp_path, disk_dir):
    """The sidecar deleted between two runs, then a data block corrupted:
    the file is marked as checked, so the open is refused with one line
    naming the file, the sidecar and how to start over. Old: a new, empty
    sidecar was made, every block read unchecked, and fio's verify found
    the corrupt block's wrong contents. Removing the mark starts over."""
    data, side = disk_dir / "gone", disk_dir / "gone.xdsum"
    verify_job(engine, tmp_path, data, "write")
    side.unlink()
    flip(data, 5)
    line = refused(verify_job(engine, tmp_path, data, "read"), data, side, "missing",
                   f"setfattr -x {MARK}")
    assert "allowed:" in line
    # names the sidecar it was made with, then the file's identity
    assert os.getxattr(data, MARK).split(b"\0")[0] == str(side).encode()
    assert not side.exists(), "the refused open left an empty sidecar behind"
    # starting over, as the line says: the blocks read unchecked again
    os.removexattr(data, MARK)
    r = read_file(engine, tmp_path, data, tmp_path / "r.json")
    assert r.data["jobs"][0]["error"] == 0 and not eio_blocks(r.text, data), r.text
    assert total(layer_stats(tmp_path / "r.json"), "unknown") == 256 * 1024 // BLOCK


def test_copy_of_a_checked_file_starts_its_own_sidecar(engine, tmp_path, disk_dir, shm_dir):
    """cp -a of a file with checksums copies its mark, which names the
    original's sidecar: the copy never had one, and starts its own (one
    notice; its blocks read unchecked until rewritten, then checked) where
    it was refused as a file whose sidecar was lost. The original keeps its
    sidecar. Moved away from its sidecar (mv to another file system, no
    original left there) a file is still refused."""
    data = disk_dir / "orig"
    verify_job(engine, tmp_path, data, "write")
    copy, copy_side = disk_dir / "copy", disk_dir / "copy.xdsum"
    subprocess.run(["cp", "-a", str(data), str(copy)], check=True)
    try:
        os.getxattr(copy, MARK)
    except OSError:
        pytest.skip("cp -a did not carry the user xattr here")
    r = verify_job(engine, tmp_path, copy, "read")
    assert r.rc == 0, r.text
    lines = xdevice_lines(r.text)
    assert len(lines) == 1 and "a copy of a file with checksums" in lines[0], r.text
    assert str(disk_dir / "orig.xdsum") in lines[0], lines[0]
    assert copy_side.exists() and os.getxattr(copy, MARK).split(b"\0")[0] == str(copy_side).encode()
    # its own sidecar from now on: written, then checked
    verify_job(engine, tmp_path, copy, "write")
    flip(copy, 5)
    r = verify_job(engine, tmp_path, copy, "read")
    assert r.rc != 0 and "verify failed" not in r.text and eio_blocks(r.text, copy) == {5}, r.text
    r = verify_job(engine, tmp_path, data, "read")  # the original, untouched
    assert r.rc == 0 and not xdevice_lines(r.text), r.text
    # the original moved to another file system without its sidecar: refused
    moved = shm_dir / "orig"
    subprocess.run(["mv", str(data), str(moved)], check=True)
    refused(verify_job(engine, tmp_path, moved, "read"), moved, "missing", f"setfattr -x {MARK}")


def test_foreign_sidecar_refuses_the_open(engine, tmp_path, disk_dir):
    """Another file's sidecar copied over the file's own: refused in one
    line, the sidecar left as it is. Old: taken for a stale sidecar, emptied,
    and every block read unchecked, the corrupt one as data."""
    data, side = disk_dir / "mine", disk_dir / "mine.xdsum"
    verify_job(engine, tmp_path, data, "write")
    verify_job(engine, tmp_path, disk_dir / "theirs", "write")
    shutil.copyfile(disk_dir / "theirs.xdsum", side)
    before = side.read_bytes()
    flip(data, 5)
    refused(verify_job(engine, tmp_path, data, "read"), data, side, "describes another file",
            f"setfattr -x {MARK}")
    assert side.read_bytes() == before, "the refused open changed the sidecar"


def test_file_system_on_another_device_keeps_its_sidecar(engine, tmp_path, disk_dir):
    """The data file's file system comes back under another device number
    (a loop image attached to another /dev/loopN, disks enumerated in
    another order at boot): the same inode and birth time are the same
    file, so its sidecar is used, not refused as another file's. The move
    is made by writing another device number into the sidecar's header
    (its crc resealed), as the reattached file system shows it. Old: the
    open was refused ("describes another file") where psync reads the file.
    The header takes the new number, and a block corrupted after the move
    still reads as EIO."""
    data, side = disk_dir / "moved", disk_dir / "moved.xdsum"
    verify_job(engine, tmp_path, data, "write")
    with open(side, "r+b") as f:
        head = bytearray(f.read(HEADER))
        dev, ino, birth = struct.unpack_from("<QQQ", head, 16)
        if not birth:
            pytest.skip(f"{disk_dir}: no birth times: the device number tells files apart")
        struct.pack_into("<Q", head, 16, dev ^ 0x700)
        struct.pack_into("<I", head, 40, crc32c(bytes(head[:40])))
        f.seek(0)
        f.write(head)
    r = verify_job(engine, tmp_path, data, "read")
    assert r.rc == 0 and not xdevice_lines(r.text), r.text
    head = side.read_bytes()[:HEADER]
    assert struct.unpack_from("<QQQ", head, 16) == (dev, ino, birth), "the header kept the old number"
    assert struct.unpack_from("<I", head, 40)[0] == crc32c(head[:40])
    flip(data, 5)
    r = verify_job(engine, tmp_path, data, "read")
    assert r.rc != 0 and "verify failed" not in r.text and eio_blocks(r.text, data) == {5}, r.text


def test_moved_to_another_file_system_with_its_sidecar(engine, tmp_path, disk_dir, shm_dir):
    """The data file and its sidecar moved together to another file system
    (mv from disk to /dev/shm, which copies the mark along): a new inode
    and birth time, but the mark names the file the sidecar's header names,
    so they were made together and the open takes the sidecar. Old: refused
    as another file's sidecar ("describes another file"), where psync reads
    the file. Checks go on: a block corrupted after the move reads as EIO.
    Another file's sidecar moved over it is still refused."""
    data, side = disk_dir / "travel", disk_dir / "travel.xdsum"
    verify_job(engine, tmp_path, data, "write")
    there, there_side = shm_dir / "travel", shm_dir / "travel.xdsum"
    for a, b in ((data, there), (side, there_side)):
        subprocess.run(["mv", str(a), str(b)], check=True)
    try:
        os.getxattr(there, MARK)
    except OSError:
        pytest.skip("mv did not carry the user xattr to /dev/shm here")
    r = verify_job(engine, tmp_path, there, "read")
    assert r.rc == 0 and not xdevice_lines(r.text), r.text
    # and again, the header now naming the file where it is
    r = verify_job(engine, tmp_path, there, "read")
    assert r.rc == 0 and not xdevice_lines(r.text), r.text
    flip(there, 5)
    r = verify_job(engine, tmp_path, there, "read")
    assert r.rc != 0 and "verify failed" not in r.text and eio_blocks(r.text, there) == {5}, r.text
    # a foreign sidecar, moved in from the disk with its own file's mark elsewhere
    verify_job(engine, tmp_path, disk_dir / "other", "write")
    subprocess.run(["mv", str(disk_dir / "other.xdsum"), str(there_side)], check=True)
    refused(verify_job(engine, tmp_path, there, "read"), there, there_side,
            "describes another file")


def test_data_appended_without_the_layer_reads_unchecked(engine, tmp_path, disk_dir):
    """256 KiB written with checksums, then 128 KiB appended without the
    layer (as psync or fio's file_append through another engine does): the
    appended blocks read (unchecked, as data from before the sidecar),
    where psync reads them. Old: a full sidecar took their empty entries
    for lost ones and every appended block read as EIO ("its entry in the
    sidecar ... is gone"). Blocks the layer wrote stay checked, and a
    sidecar truncated below the data still reads as EIO (the tests above)."""
    data = disk_dir / "appended"
    write_file(engine, tmp_path, data, tmp_path / "w.json", buffer_pattern="0x5a5a5a5a")
    with open(data, "ab") as f:
        f.write(b"\x33" * (128 * 1024))
    r = read_file(engine, tmp_path, data, tmp_path / "r.json", size=384 * 1024)
    assert r.data["jobs"][0]["error"] == 0, r.text
    assert not eio_blocks(r.text, data) and not lost_blocks(r.text, data), r.text
    s = layer_stats(tmp_path / "r.json")
    assert total(s, "verified") == 64 and total(s, "unknown") == 32, s
    assert total(s, "lost_entries") == 0, s
    flip(data, 5)
    r = read_file(engine, tmp_path, data, tmp_path / "r2.json", size=384 * 1024)
    assert eio_blocks(r.text, data) == {5}, r.text


def lost_blocks(text, path):
    """Blocks whose entries the engine said were gone, for path."""
    return {int(b) for b in re.findall(
        rf"checksum: {re.escape(str(path))}: block (\d+) \([^)]*\): its entry in the sidecar "
        r"\S+ is gone", text)}


def test_truncated_sidecar_reads_eio(engine, tmp_path, disk_dir):
    """The sidecar cut after block 1's entry, then block 5 corrupted: the
    open says the sidecar ends before the data, and every block past its
    end reads as EIO (not unchecked data); blocks 0 and 1 verify."""
    data, side = disk_dir / "cut", disk_dir / "cut.xdsum"
    write_file(engine, tmp_path, data, tmp_path / "w.json", buffer_pattern="0x5a5a5a5a")
    os.truncate(side, HEADER + 2 * ENTRY)
    flip(data, 5)
    r = read_file(engine, tmp_path, data, tmp_path / "r.json")
    assert "verify failed" not in r.text
    assert any("ends at block 2" in ln and str(side) in ln and str(data) in ln
               for ln in xdevice_lines(r.text)), r.text
    assert lost_blocks(r.text, data) == set(range(2, 64)), r.text
    s = layer_stats(tmp_path / "r.json")
    assert total(s, "verified") == 2 and total(s, "unknown") == 0, s
    assert total(s, "lost_entries") == 62, s


def test_zeroed_entries_read_eio(engine, tmp_path, disk_dir):
    """A 512-byte sector of the sidecar zeroed (dd from /dev/zero): blocks
    19 to 39 lose their whole entries, and block 25 is then corrupted. Each
    of them reads as EIO naming the sidecar; the others verify. Old: they
    read unchecked, block 25 as wrong data."""
    data, side = disk_dir / "zeroed", disk_dir / "zeroed.xdsum"
    write_file(engine, tmp_path, data, tmp_path / "w.json", buffer_pattern="0x5a5a5a5a")
    with open(side, "r+b") as f:
        f.seek(512)
        f.write(bytes(512))
    gone = {b for b in range(64) if HEADER + b * ENTRY >= 512 and HEADER + (b + 1) * ENTRY <= 1024}
    assert gone == set(range(19, 40))
    flip(data, 25)
    r = read_file(engine, tmp_path, data, tmp_path / "r.json")
    assert lost_blocks(r.text, data) == gone, r.text
    assert str(side) in r.text
    s = layer_stats(tmp_path / "r.json")
    assert total(s, "verified") == 64 - len(gone) and total(s, "unknown") == 0, s


def test_data_from_before_the_sidecar_reads_unchecked(engine, tmp_path, disk_dir):
    """A file that held data before checksums were enabled: its sidecar
    tags those blocks unchecked on purpose, so they read (counted unknown),
    never taken for entries the sidecar lost; blocks written since verify."""
    data = disk_dir / "before"
    data.write_bytes(b"\x33" * (256 * 1024))
    write_file(engine, tmp_path, data, tmp_path / "w.json", size=64 * 1024,
               buffer_pattern="0x44444444")
    r = read_file(engine, tmp_path, data, tmp_path / "r.json")
    assert r.data["jobs"][0]["error"] == 0 and not eio_blocks(r.text, data), r.text
    assert not lost_blocks(r.text, data), r.text
    s = layer_stats(tmp_path / "r.json")
    assert total(s, "verified") == 16 and total(s, "unknown") == 48, s


@pytest.mark.parametrize("kind", ["regular", "mmap", "direct", "sparse", "tmpfs-backed"])
def test_file_laid_out_for_a_read_job_is_checked(engine, tmp_path, disk_dir, shm_dir, kind):
    """fio lays out a file a read job finds missing or short with its own
    writes, around the engine: every block of it then read unchecked (data
    from before the sidecar), so a read job with checksums checked nothing
    and a block changed behind it read as data. The engine lays such files
    out through the stack instead: every read is checked, and a flipped
    byte reads as EIO."""
    data = disk_dir / "laid"
    xd = {"type": kind.split("-")[0], "enable_checksums": "true"}
    if kind == "tmpfs-backed":
        xd.update(tmpfs_directory=shm_dir, backup_to_disk="true")
    # a short file the layer wrote: its end is added, its start kept
    run_fio(fio_job(engine, name="w", xd=xd, filename=data, rw="write", bs="4k", size=64 * 1024),
            tmp_path)

    def read(stats, **over):
        opts = dict(filename=data, rw="randread", bs="4k", size=256 * 1024,
                    continue_on_error="read")
        opts.update(over)
        return run_fio(fio_job(engine, name="r", xd=dict(xd, stats=stats), **opts), tmp_path,
                       expect_ok=False)
    r = read(tmp_path / "r.json")
    assert r.data["jobs"][0]["error"] == 0, r.text
    assert data.stat().st_size == 256 * 1024
    s = layer_stats(tmp_path / "r.json")
    assert total(s, "verified") == 64 and total(s, "unknown") == 0, s
    if kind == "tmpfs-backed":
        return  # the copy in shm_dir serves the reads; the disk file is its backup
    flip(data, 40)
    r = read(tmp_path / "r2.json")
    assert eio_blocks(r.text, data) == {40}, r.text


def test_data_from_before_the_sidecar_is_said_once(engine, tmp_path, disk_dir):
    """Checksums turned on over a file that holds data: the open that
    starts its sidecar says, once, how many blocks read unchecked until
    rewritten; a file of holes (fio's layout of a write job) says nothing,
    nor one fio lays out with data for a job (laid out through the stack)."""
    data, holes = disk_dir / "held", disk_dir / "holes"
    data.write_bytes(b"\x33" * (96 * 1024))
    with open(holes, "wb") as f:
        f.truncate(256 * 1024)
    r = read_file(engine, tmp_path, data, tmp_path / "r.json", size=96 * 1024)
    said = [ln for ln in xdevice_lines(r.text) if str(data) in ln]
    assert len(said) == 1 and "over 24 blocks of 4096 bytes" in said[0] and \
        "written without checksums" in said[0], r.text
    r = read_file(engine, tmp_path, data, tmp_path / "r2.json", size=96 * 1024)
    assert not xdevice_lines(r.text), r.text
    r = read_file(engine, tmp_path, holes, tmp_path / "r3.json")
    assert not xdevice_lines(r.text), r.text
    # fio lays out a write job's file with data under overwrite=1: the
    # engine does it through the stack, so nothing predates the sidecar
    r = run_fio(fio_job(engine, name="o", xd={"enable_checksums": "true"}, overwrite=1,
                        filename=disk_dir / "over", rw="randwrite", bs="4k", size="256k"),
                tmp_path)
    assert not xdevice_lines(r.text), r.text


@pytest.mark.parametrize("cold", ["regular", "compressed"])
def test_hybrid_data_from_before_the_sidecar_is_said(engine, tmp_path, disk_dir, shm_dir, cold):
    """The hybrid type tells its data from its holes too (the tier layer and
    a compressed cold tier answer SEEK_DATA): checksums turned on over a
    hybrid file holding 96 KiB in a 1 MiB file say so once, counting only
    its data (before, the line was never said on the hybrid type)."""
    data = disk_dir / f"hheld-{cold}"
    xd = {"type": "hybrid", "hot_directory": shm_dir, "cold_storage_type": cold}
    run_fio(fio_job(engine, name="w", xd=xd, filename=data, rw="write", bs="4k", size=96 * 1024,
                    filesize="1m"), tmp_path)
    xd["enable_checksums"] = "true"
    r = run_fio(fio_job(engine, name="r", xd=xd, filename=data, rw="read", bs="4k",
                        size=96 * 1024, filesize="1m"), tmp_path)
    said = [ln for ln in xdevice_lines(r.text) if str(data) in ln and "starts its sidecar" in ln]
    want = "over 24 blocks" if cold == "regular" else "over 32 blocks"  # whole 64k chunks
    assert len(said) == 1 and want in said[0], r.text


RO_XD = {"type": "regular", "enable_checksums": "true"}


@pytest.mark.parametrize("opts", [{"offset": "10%"}, {"nrfiles": 2, "filesize": "100k-300k"}],
                         ids=["offset-percent", "filesize-range"])
def test_read_job_lays_out_what_psync_lays_out(engine, tmp_path, disk_dir, opts):
    """The engine's layout of a checked file is as long as fio's for psync:
    fio is told the size found before it (0 for a new file), so offset=N%
    and filesize= draws come out the same."""
    sizes = {}
    for side, eng in (("psync", ["--ioengine=psync"]),
                      ("xdevice", fio_job(engine, name="r", xd=RO_XD)[1:])):
        d = disk_dir / side
        d.mkdir()
        run_fio(["--name=r", *eng, f"--directory={d}", "--rw=randread", "--bs=4k",
                 "--size=1m", *[f"--{k}={v}" for k, v in opts.items()]], tmp_path)
        sizes[side] = {p.name: p.stat().st_size for p in d.iterdir() if p.suffix != ".xdsum"}
    assert sizes["xdevice"] == sizes["psync"], sizes


def untouched(data):
    """What a read-only job must leave as it was: the names in the data
    file's directory, the data file's mtime and ctime and its user xattrs
    (the mark), and the sidecar's bytes, mtime and ctime."""
    side = data.with_name(data.name + ".xdsum")

    def times(p):
        st = os.stat(p, follow_symlinks=False)
        return st.st_mtime_ns, st.st_ctime_ns

    return {"names": sorted(os.listdir(data.parent)),
            "data": times(data),
            "xattrs": {n: os.getxattr(data, n, follow_symlinks=False)
                       for n in os.listxattr(data, follow_symlinks=False)},
            "sidecar": (side.read_bytes(), times(side)) if os.path.lexists(side) else None}


@pytest.mark.parametrize("rw", ["read", "randread"])
def test_readonly_job_makes_no_sidecar(engine, tmp_path, disk_dir, rw):
    """fio --readonly on a file never opened writable with checksums (no
    sidecar, no mark): the job reads it, unchecked, says so in one line on
    stderr (fio's JSON on stdout stays whole), and writes nothing: no
    sidecar, no mark, the file's mtime and ctime as they were. Old: the
    read-only open made the sidecar, wrote its header and tags and marked
    the file. A marked file whose sidecar is missing is still refused."""
    data = disk_dir / "plain"
    with open(data, "xb") as f:
        f.write(b"\x42" * (256 * 1024))
    before = untouched(data)
    cmd = [FIO, "--output-format=json", "--readonly",
           *fio_job(engine, name="ro", xd=RO_XD, filename=data, rw=rw, bs="4k", size=256 * 1024)]
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=180,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)  # a notice on stdout would break it
    assert doc["jobs"][0]["error"] == 0 and doc["jobs"][0]["read"]["io_bytes"] == 256 * 1024
    notes = xdevice_lines(p.stderr)
    assert len(notes) == 1 and str(data) in notes[0] and \
        "unchecked until a writable open starts the sidecar" in notes[0], p.stderr
    assert untouched(data) == before
    assert not list(disk_dir.glob("*.xdsum"))
    assert MARK not in os.listxattr(data)
    # marked, its sidecar missing: refused in one line, nothing made
    os.setxattr(data, MARK, str(data.with_name("plain.xdsum")).encode())
    before = untouched(data)
    r = run_fio(["--readonly", *fio_job(engine, name="ro", xd=RO_XD, filename=data, rw=rw,
                                        bs="4k", size=256 * 1024)], tmp_path, expect_ok=False)
    refused(r, data, "missing", f"setfattr -x {MARK}")
    assert untouched(data) == before


@pytest.mark.parametrize("rw", ["read", "randread"])
def test_readonly_job_checks_the_sidecar_and_writes_nothing(engine, tmp_path, disk_dir, rw):
    """A file written with checksums, 128 KiB appended by psync (fio's
    file_append, behind the engine), then a block corrupted: fio --readonly
    verifies the appended range through the engine (it reads as data, as a
    writable open's tags would make it), and reading the checked range fails
    with EIO at the corrupt block; the sidecar, the mark and the file's
    times stay as they were. Old: the read-only open tagged the appended
    blocks in the sidecar and rewrote the mark."""
    data = disk_dir / "ro"
    verify_job(engine, tmp_path, data, "write")
    run_fio(["--name=a", "--ioengine=psync", f"--filename={data}", "--rw=write", "--bs=4k",
             "--size=128k", "--file_append=1", "--verify=crc32c", "--do_verify=0"], tmp_path)
    assert data.stat().st_size == 384 * 1024
    flip(data, 5)
    before = untouched(data)
    assert before["sidecar"] and MARK in before["xattrs"]
    r = run_fio(["--readonly", *fio_job(engine, name="v", xd=RO_XD, filename=data, rw=rw,
                                        bs="4k", offset=256 * 1024, size=128 * 1024,
                                        verify="crc32c", verify_fatal=1)], tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == 128 * 1024
    assert not xdevice_lines(r.text), r.text
    r = run_fio(["--readonly", *fio_job(engine, name="r", xd=RO_XD, filename=data, rw=rw,
                                        bs="4k", size=256 * 1024)], tmp_path, expect_ok=False)
    assert r.data is not None and r.data["jobs"][0]["error"] == 5, r.text
    assert eio_blocks(r.text, data) == {5}, r.text
    assert untouched(data) == before
