"""The compressed type under fio: verify in every async mode and block size,
two jobs in the same chunks, every codec, space reclaim, crash safety with
fio's trigger and verify-state workflow, and hostile containers.

The container format is docs/CONTAINER.md; the offsets used to corrupt it
below follow it.
"""
import ctypes
import errno
import os
import random
import struct
import subprocess

import pytest

from conftest import (
    ASYNC_MODES,
    FIO,
    PROC_MODES,
    MiB,
    assert_verified,
    fio_job,
    load_stats,
    run_fio,
    xdevice_lines,
)

KiB = 1024
SIZE = 8 * MiB
HEADER = 4096
ENTRY = 32
SLOT = 64 * KiB + 4096  # default 64 KiB chunks
GROUP = 4096 + 2 * 128 * SLOT


def entry_off(chunk):
    return HEADER + (chunk // 128) * GROUP + (chunk % 128) * ENTRY


def slot_off(chunk, slot):
    return HEADER + (chunk // 128) * GROUP + 4096 + (2 * (chunk % 128) + slot) * SLOT


def compress_stats(path):
    """The compress layer's figures, summed over the jobs (ratio recomputed)."""
    doc = load_stats(path)
    total = {}
    for job in doc["jobs"]:
        for k, v in job["layers"]["compress"].items():
            if isinstance(v, dict):
                sub = total.setdefault(k, {})
                for a, n in v.items():
                    sub[a] = sub.get(a, 0) + n
            elif isinstance(v, (int, float)) and k != "level":
                total[k] = total.get(k, 0) + v
    total["ratio"] = total["live_logical_bytes"] / total["stored_bytes"] if total["stored_bytes"] else 0
    return total


def cjob(engine, name="c", xd=None, **opts):
    """A compressed-type job on compressible data (half of each 4k random)."""
    base = dict(
        rw="randwrite", bs="4k", size=SIZE, iodepth=8, verify="crc32c", verify_fatal=1,
        do_verify=1, buffer_compress_percentage=50, buffer_compress_chunk="4k",
        refill_buffers=None,
    )
    base.update(opts)
    base = {k: v for k, v in base.items() if v is not False}  # False: leave it out
    return fio_job(engine, name=name, xd={"type": "compressed", **(xd or {})}, **base)


# --- verify ---------------------------------------------------------------------

BLOCK_SIZES = {"4k": "4k", "16k": "16k", "64k": "64k", "128k": "128k", "unaligned": "3k"}


@pytest.mark.parametrize("proc", list(PROC_MODES))
@pytest.mark.parametrize("bs", list(BLOCK_SIZES))
@pytest.mark.parametrize("async_mode", ASYNC_MODES)
def test_verify(engine, tmp_path, disk_dir, async_mode, bs, proc):
    stats = tmp_path / "stats.json"
    # fio makes each verify interval half random, half zeros: 4k intervals
    # keep every chunk compressible whatever the block size
    interval = {} if bs == "unaligned" else {"verify_interval": "4k"}
    args = cjob(engine, xd={"async": async_mode, "stats": stats}, directory=disk_dir,
                bs=BLOCK_SIZES[bs], numjobs=2, iodepth=16, **interval) + PROC_MODES[proc]
    r = run_fio(args, tmp_path)
    assert_verified(r.data, njobs=2)
    c = compress_stats(stats)
    assert c["chunk_writes"] > 0
    assert c["corrupt_chunks"] == 0
    # compressible data is stored compressed, and shows as a ratio above 1
    assert c["chunks_written"]["lz4"] > 0, c
    assert c["ratio"] > 1.3, c
    assert c["allocated_bytes"] < 0.75 * c["logical_bytes"], c


def test_async_really_queues(engine, tmp_path, disk_dir):
    """In an async mode requests overlap: fio sees depths above 1."""
    r = run_fio(cjob(engine, xd={"async": "io_uring"}, directory=disk_dir, iodepth=16,
                     do_verify=0, verify=False), tmp_path)
    depth = r.data["jobs"][0]["iodepth_level"]
    assert sum(v for k, v in depth.items() if k not in ("1",)) > 0, depth


@pytest.mark.parametrize("proc", list(PROC_MODES))
def test_two_jobs_share_chunks(engine, tmp_path, disk_dir, proc):
    """Two jobs write alternate 4k blocks of one file: every chunk gets
    read-modify-writes from both at once, and neither may lose the other's
    blocks."""
    f = disk_dir / "shared"
    # io_size: each job writes its 2 MiB of blocks once; with only size= fio
    # wraps round and writes them twice (psync too), verifying half of it
    common = dict(filename=f, rw="write:4k", bs="4k", size=4 * MiB, io_size=2 * MiB, iodepth=4)
    args = (cjob(engine, name="even", xd={"async": "io_uring"}, **common)
            + cjob(engine, name="odd", xd={"async": "io_uring"}, offset="4k", **common)
            + PROC_MODES[proc])
    r = run_fio(args, tmp_path)
    assert_verified(r.data, njobs=2)


@pytest.mark.parametrize("codec,level", [("lz4", 1), ("lz4", 9), ("zstd", 3), ("snappy", 1),
                                         ("gzip", 6), ("brotli", 5)])
def test_every_codec(engine, tmp_path, disk_dir, codec, level):
    stats = tmp_path / "stats.json"
    args = cjob(engine, xd={"compression_type": codec, "compression_level": level,
                            "stats": stats}, directory=disk_dir, size=4 * MiB, bs="16k")
    r = run_fio(args, tmp_path)
    assert_verified(r.data, njobs=1)
    c = compress_stats(stats)
    assert c["chunks_written"][codec] > 0, c


def test_incompressible_is_stored_raw(engine, tmp_path, disk_dir):
    stats = tmp_path / "stats.json"
    args = cjob(engine, xd={"stats": stats}, directory=disk_dir, bs="64k",
                buffer_compress_percentage=0)
    run_fio(args, tmp_path)
    c = compress_stats(stats)
    assert c["raw_chunks_written"] == c["chunk_writes"] > 0, c
    assert c["entropy_skips"] > 0, c


def test_zero_chunks_are_holes(engine, tmp_path, disk_dir):
    stats = tmp_path / "stats.json"
    args = fio_job(engine, name="z", xd={"type": "compressed", "stats": stats},
                   directory=disk_dir, rw="write", bs="64k", size=SIZE, zero_buffers=None)
    run_fio(args, tmp_path)
    c = compress_stats(stats)
    assert c["zero_chunks_written"] == c["chunk_writes"] > 0, c
    assert c["allocated_bytes"] < 64 * KiB, c


def test_no_raw_layout(engine, tmp_path, disk_dir):
    """fio must never lay raw bytes into a container: the file starts with
    the container's magic, and fio says nothing of laying it out."""
    f = disk_dir / "fresh"
    args = fio_job(engine, name="r", xd={"type": "compressed"}, filename=f, rw="randread",
                   bs="4k", size=SIZE)
    r = run_fio(args, tmp_path)
    assert "Laying out" not in r.text
    assert f.read_bytes()[:8] == b"XDCNTR\r\n"


def test_read_job_reads_laid_out_data(engine, tmp_path, disk_dir):
    """A read job on a missing container reads data laid out the way fio
    lays out a file for its own engines (fio's buffers, so 50% compressible
    here), written through the container before the job starts: every
    chunk is stored compressed and decoded when read. Before, the container
    was made empty, and the job read chunks never written: zeros that cost
    nothing to read, a number no other engine would show."""
    stats = tmp_path / "stats.json"
    f = disk_dir / "laid"
    args = fio_job(engine, name="r", xd={"type": "compressed", "stats": stats}, filename=f,
                   rw="randread", bs="4k", size=SIZE, buffer_compress_percentage=50,
                   buffer_compress_chunk="4k", refill_buffers=None)
    r = run_fio(args, tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == SIZE
    c = compress_stats(stats)
    chunks = SIZE // (64 * KiB)
    assert c["live_chunks"]["zero"] == 0 and c["live_logical_bytes"] == SIZE, c
    assert c["stored_bytes"] < 0.8 * SIZE, c  # compressed, not raw
    assert c["chunks_decoded"] >= chunks // 2, c


def test_overwrite_job_overwrites_laid_out_data(engine, tmp_path, disk_dir):
    """fio lays a write job's missing file out with data under overwrite=1,
    so that its writes overwrite data, as psync's do: the container is laid
    out the same way, through the stack, before the job. Before, it held
    blank chunks, and the job measured first writes of empty chunks."""
    stats = tmp_path / "stats.json"
    args = fio_job(engine, name="o", xd={"type": "compressed", "stats": stats},
                   filename=disk_dir / "over", rw="write", bs="64k", size=SIZE,
                   io_size=SIZE // 4, overwrite=1, buffer_compress_percentage=50,
                   refill_buffers=None)
    r = run_fio(args, tmp_path)
    assert r.data["jobs"][0]["write"]["io_bytes"] == SIZE // 4
    c = compress_stats(stats)
    assert c["live_logical_bytes"] == SIZE and c["live_chunks"]["zero"] == 0, c


@pytest.mark.parametrize("kind", ["compressed", "regular+checksums"])
def test_failed_layout_removes_the_file_it_made(engine, tmp_path, disk_dir, kind):
    """A read job's missing file is laid out by the engine (the container
    grown to the job's size first, then written). When the layout failed
    (here every write fails, as on a full disk), the file stayed at its
    full size with nothing written, and the next run found nothing to lay
    out: it read zeros (blank chunks, never decoded) without a word, where
    fio's own failed layout leaves a short file that the next run lays out
    again. The file the layout made now goes, and the line says so."""
    f = disk_dir / "lay"
    stats = tmp_path / "stats.json"
    xd = {"type": "compressed"} if kind == "compressed" else \
        {"type": "regular", "enable_checksums": "true"}
    job = dict(filename=f, rw="read", bs="64k", size=SIZE)
    faults = {"enable_fault_injection": "true", "fault_ops": "write", "fault_every": 1}
    r = run_fio(fio_job(engine, name="l", xd=dict(xd, **faults), **job), tmp_path,
                expect_ok=False)
    lines = xdevice_lines(r.text)
    assert r.rc != 0 and len(lines) == 1, r.text
    assert "laying out the file" in lines[0] and "the file it made is removed" in lines[0], lines
    assert not f.exists() and not any(p.name.startswith("lay") for p in disk_dir.iterdir())
    r = run_fio(fio_job(engine, name="l", xd=dict(xd, stats=stats), **job), tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == SIZE
    if kind == "compressed":
        c = compress_stats(stats)
        assert c["live_logical_bytes"] == SIZE and c["live_chunks"]["zero"] == 0, c


def test_failed_layout_of_a_short_file_says_what_its_tail_holds(engine, tmp_path, disk_dir):
    """A short container that a failed layout grew keeps its new size (a
    container never shrinks, and its start is the user's data): the line
    says from where it holds no data and that the next run would read that
    as zeros. Before, it said only the error."""
    f = disk_dir / "short"
    xd = {"type": "compressed"}
    run_fio(fio_job(engine, name="s", xd=xd, filename=f, rw="write", bs="64k", size=SIZE // 2),
            tmp_path)
    faults = {"enable_fault_injection": "true", "fault_ops": "write", "fault_every": 1}
    r = run_fio(fio_job(engine, name="l", xd=dict(xd, **faults), filename=f, rw="read", bs="64k",
                        size=SIZE), tmp_path, expect_ok=False)
    lines = xdevice_lines(r.text)
    assert r.rc != 0 and len(lines) == 1, r.text
    assert f"its bytes from {SIZE // 2} on hold no data" in lines[0], lines
    assert "remove it before the next run" in lines[0] and f.exists(), lines


def test_reopen_keeps_data(engine, tmp_path, disk_dir):
    """Write in one fio run, verify in another: the container reopens."""
    f = disk_dir / "keep"
    common = dict(filename=f, bs="8k", size=SIZE, verify="crc32c", verify_fatal=1,
                  buffer_compress_percentage=50)
    run_fio(fio_job(engine, name="w", xd={"type": "compressed"}, rw="write", do_verify=0,
                    **common), tmp_path)
    r = run_fio(fio_job(engine, name="w", xd={"type": "compressed"}, rw="read",
                        verify_only=None, **common), tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] == SIZE


# --- space ----------------------------------------------------------------------


def test_overwrites_reclaim_space(engine, tmp_path, disk_dir):
    """Overwriting a file many times with random 4k-64k writes keeps the
    container within 1.5x its live compressed data (the bench does 256 MiB
    x 10; this is 16 MiB x 10)."""
    stats = tmp_path / "stats.json"
    f = disk_dir / "churn"
    args = fio_job(engine, name="churn", xd={"type": "compressed", "async": "io_uring",
                                             "stats": stats},
                   filename=f, rw="randwrite", bsrange="4k-64k", size=16 * MiB,
                   io_size=160 * MiB, iodepth=8, norandommap=None,
                   buffer_compress_percentage=50, refill_buffers=None)
    run_fio(args, tmp_path)
    c = compress_stats(stats)
    allocated = os.stat(f).st_blocks * 512
    assert c["reclaims"] > 0 and c["read_modify_writes"] > 0, c
    assert allocated <= 1.5 * c["stored_bytes"], (allocated, c)


# --- crash safety -----------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(3))
def test_kill_9_with_verify_state(engine, tmp_path, disk_dir, attempt):
    """fio's trigger workflow: write at iodepth=1 from a zeroed target, at a
    random moment save the verify state and kill -9 fio; then a verify-only
    run with verify_state_load checks every write fio saw complete, and the
    container reopens cleanly."""
    f = disk_dir / "crash"
    common = dict(filename=f, rw="randwrite", bs="4k", size=64 * MiB, iodepth=1,
                  verify="crc32c", verify_fatal=1, buffer_compress_percentage=50,
                  refill_buffers=None, thread=None, fsync=8)
    # fio's trigger timeout has a resolution of whole seconds
    when = random.Random(attempt).randint(1, 3)
    job = fio_job(engine, name="crash", xd={"type": "compressed"}, rate_iops=3000, **common)
    cmd = [FIO, f"--trigger-timeout={when}", "--trigger=kill -9 $PPID", *job]
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == -9 or p.returncode == 137, (p.returncode, p.stdout, p.stderr)
    states = list(tmp_path.glob("local-crash-*-verify.state"))
    assert states, f"fio saved no verify state: {p.stdout}{p.stderr}"
    check = fio_job(engine, name="crash", xd={"type": "compressed"}, verify_state_load=1,
                    verify_only=None, **common)
    r = run_fio(check, tmp_path)
    assert r.data["jobs"][0]["read"]["io_bytes"] > 0, "nothing was verified"


# --- the decoded-chunk cache -------------------------------------------------------


@pytest.mark.parametrize("cache", ["default", "0"])
def test_decoded_cache_rereads(engine, tmp_path, disk_dir, cache):
    """4k random reads of 16 chunks, four times over: with the cache (on by
    default) each chunk is decoded once and the rest are hits or the
    thread's own copy; with compress_cache_size=0 chunks are decoded again."""
    f = disk_dir / "reread"
    make_container(engine, tmp_path, f)
    stats = tmp_path / "stats.json"
    xd = {"type": "compressed", "stats": stats}
    if cache != "default":
        xd["compress_cache_size"] = cache
    run_fio(fio_job(engine, name="rr", xd=xd, filename=f, rw="randread", bs="4k",
                    size=1 * MiB, io_size=4 * MiB, norandommap=None), tmp_path)
    c = compress_stats(stats)
    reads = 4 * MiB // 4096
    if cache == "default":
        assert c["chunks_decoded"] == 16, c
        assert c["decoded_cache_misses"] == 16, c
        assert c["decoded_cache_hits"] + c["decoded_chunk_reuses"] + 16 == reads, c
        assert c["decoded_cache_size"] == 256 * MiB, c
    else:
        assert c["chunks_decoded"] > 16 and c["decoded_cache_hits"] == 0, c
        assert c["decoded_cache_size"] == 0, c


# --- hostile containers ------------------------------------------------------------


def make_container(engine, tmp_path, f, size=1 * MiB):
    args = fio_job(engine, name="mk", xd={"type": "compressed"}, filename=f, rw="write",
                   bs="64k", size=size, buffer_compress_percentage=50)
    run_fio(args, tmp_path)


def read_job(engine, f, size=1 * MiB):
    return fio_job(engine, name="rd", xd={"type": "compressed"}, filename=f, rw="read",
                   bs="64k", size=size)


def poke(f, off, data):
    with open(f, "r+b") as fp:
        fp.seek(off)
        fp.write(data)


def one_line_naming(text, f, what):
    lines = [ln for ln in xdevice_lines(text) if str(f.name) in ln]
    assert lines, f"no xdevice line names {f}:\n{text}"
    assert any(what in ln for ln in lines), f"expected '{what}' in:\n{text}"


def test_not_a_container(engine, tmp_path, disk_dir):
    f = disk_dir / "plain"
    f.write_bytes(os.urandom(1 * MiB))
    r = run_fio(read_job(engine, f), tmp_path, expect_ok=False)
    assert r.rc != 0
    one_line_naming(r.text, f, "bad magic")


def test_other_chunk_size_is_refused(engine, tmp_path, disk_dir):
    """A container keeps the chunk size it was created with; a config naming
    another is refused, not ignored. Naming the same one, or none, reads."""
    f = disk_dir / "chunks"
    make_container(engine, tmp_path, f)  # the default, 64 KiB
    bad = read_job(engine, f) + ["--xd_compress_chunk_size=16k"]
    r = run_fio(bad, tmp_path, expect_ok=False)
    assert r.rc != 0
    for what in ("compress_chunk_size=16384", "option xd_compress_chunk_size", "set it to 65536"):
        one_line_naming(r.text, f, what)
    run_fio(read_job(engine, f) + ["--xd_compress_chunk_size=64k"], tmp_path)
    run_fio(read_job(engine, f), tmp_path)


def test_truncated_container(engine, tmp_path, disk_dir):
    f = disk_dir / "trunc"
    make_container(engine, tmp_path, f)
    os.truncate(f, 3 * SLOT)
    r = run_fio(read_job(engine, f), tmp_path, expect_ok=False)
    assert r.rc != 0
    one_line_naming(r.text, f, "truncated")


def test_corrupt_header(engine, tmp_path, disk_dir):
    f = disk_dir / "hdr"
    make_container(engine, tmp_path, f)
    poke(f, 12, struct.pack("<I", 1 << 20))  # chunk size field, crc now wrong
    r = run_fio(read_job(engine, f), tmp_path, expect_ok=False)
    assert r.rc != 0
    one_line_naming(r.text, f, "corrupt header")


def test_corrupt_map_entry(engine, tmp_path, disk_dir):
    """One map entry guards one chunk: the container opens, one line names
    the chunk, reading it fails with EIO (never wrong data), the other
    chunks read, and writing the whole chunk again heals it."""
    f = disk_dir / "map"
    make_container(engine, tmp_path, f)
    poke(f, entry_off(5) + 8, b"\xff\xff")  # stored_len of chunk 5
    r = run_fio(read_job(engine, f), tmp_path, expect_ok=False)
    assert r.rc != 0
    one_line_naming(r.text, f, "chunk 5 (bytes 327680-393215): corrupt map entry")
    assert [j["error"] for j in r.data["jobs"]] == [errno.EIO], r.text
    # the chunks before it read (fio stops at the first error; a read job
    # over the first five chunks never touches chunk 5)
    run_fio(fio_job(engine, name="before", xd={"type": "compressed"}, filename=f, rw="read",
                    bs="64k", size=5 * 64 * 1024), tmp_path)
    # a whole-chunk write over chunk 5 replaces the entry: the file is whole
    run_fio(fio_job(engine, name="heal", xd={"type": "compressed"}, filename=f, rw="write",
                    bs="64k", offset=5 * 64 * 1024, size=64 * 1024), tmp_path)
    r = run_fio(read_job(engine, f), tmp_path)
    assert not [ln for ln in xdevice_lines(r.text) if "corrupt" in ln], r.text


@pytest.mark.parametrize("how", ["sector zeroed", "page punched"])
def test_erased_map_reads_as_eio(engine, tmp_path, disk_dir, how):
    """A map entry of zeros is a chunk never written, which reads as zeros;
    one erased by the storage (a sector of the map zeroed, its page lost to
    a hole) beside a slot that still holds the chunk reads EIO instead: fio
    reports an I/O error, never a verify mismatch against zeros."""
    f = disk_dir / "erased"
    job = fio_job(engine, name="vf", xd={"type": "compressed"}, filename=f, rw="write",
                  bs="64k", size=MiB, verify="crc32c", do_verify=0)
    run_fio(job, tmp_path)
    if how == "sector zeroed":  # chunks 0 to 15: the map's first 512 bytes
        poke(f, entry_off(0), bytes(512))
    else:
        libc = ctypes.CDLL(None, use_errno=True)
        punch = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
        fd = os.open(f, os.O_RDWR)
        try:
            assert libc.fallocate(fd, punch, ctypes.c_long(entry_off(0)), ctypes.c_long(4096)) == 0
        finally:
            os.close(fd)
    r = run_fio(fio_job(engine, name="vf", xd={"type": "compressed"}, filename=f, rw="read",
                        bs="64k", size=MiB, verify="crc32c", verify_only=1), tmp_path,
                expect_ok=False)
    assert r.rc != 0
    assert r.data["jobs"][0]["error"] == errno.EIO, r.text
    assert "bad magic" not in r.text, r.text  # no verify of zeros
    one_line_naming(r.text, f, "erased")


@pytest.mark.parametrize("where", ["payload", "chunk header"])
def test_corrupt_chunk_reads_as_eio(engine, tmp_path, disk_dir, where):
    """A chunk whose bytes no longer match its crc32c reads back as EIO:
    fio reports an I/O error, never a verify mismatch (wrong data)."""
    f = disk_dir / "chunk"
    make_container(engine, tmp_path, f)
    with open(f, "rb") as fp:
        fp.seek(entry_off(3))
        slot = fp.read(ENTRY)[17]
    poke(f, slot_off(3, slot) + (100 if where == "payload" else 4), b"\x5a")
    r = run_fio(read_job(engine, f), tmp_path, expect_ok=False)
    assert r.rc != 0
    err = r.data["jobs"][0]["error"]
    assert err == 5, f"expected EIO (5), got {err}\n{r.text}"
    one_line_naming(r.text, f, "chunk 3")


# --- configuration errors -------------------------------------------------------------


@pytest.mark.parametrize("xd,what", [
    ({"compression_type": "gzip", "compression_level": 15}, "compression_level=15"),
    ({"compress_chunk_size": "48k"}, "compress_chunk_size=49152"),
    ({"compression_type": "snappy", "compression_level": 3}, "snappy has no levels"),
    ({"enable_page_cache": 0}, "enable_page_cache=false"),
])
def test_bad_config_one_line(engine, tmp_path, disk_dir, xd, what):
    args = fio_job(engine, name="bad", xd={"type": "compressed", **xd}, directory=disk_dir,
                   rw="write", bs="4k", size=MiB)
    r = run_fio(args, tmp_path, expect_ok=False)
    assert r.rc != 0
    lines = xdevice_lines(r.text)
    assert len(lines) == 1 and what in lines[0], r.text


def test_enable_compression_needs_the_type(engine, tmp_path, disk_dir):
    args = fio_job(engine, name="bad", xd={"type": "regular", "enable_compression": 1},
                   directory=disk_dir, rw="write", bs="4k", size=MiB)
    r = run_fio(args, tmp_path, expect_ok=False)
    assert r.rc != 0
    lines = xdevice_lines(r.text)
    assert len(lines) == 1 and "enable_compression" in lines[0] and "storage_type" in lines[0], r.text
