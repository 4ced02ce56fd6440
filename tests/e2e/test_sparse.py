"""The sparse layer under real fio: zero blocks become holes, data comes back.

fio's verify with verify_pattern=0 writes 64 KiB blocks that are zeros but
for a header in their first 4 KiB, so 15 of every 16 hole_detection_size
blocks are zeros: they must end up as holes (st_blocks), and verify must
still read back every byte (holes as zeros, the header blocks as data).
"""
import os

import pytest

from conftest import (
    ASYNC_MODES,
    KiB,
    MiB,
    PROC_MODES,
    assert_verified,
    fio_job,
    load_stats,
    run_fio,
    xdevice_lines,
)

SIZE = 8 * MiB
BS = 64 * KiB


def allocated(path):
    return os.stat(path).st_blocks * 512


def zero_pattern_job(engine, where, xd, **over):
    """Write SIZE in 64 KiB blocks, 15/16 zeros each, then verify it."""
    opts = dict(where, rw="randwrite", bs=BS, size=SIZE, iodepth=8, verify="crc32c",
                verify_pattern=0, verify_fatal=1, do_verify=1)
    opts.update(over)
    return fio_job(engine, name="sp", xd=xd, **opts)


def sparse_figures(doc):
    layers = doc["jobs"][0]["layers"]
    assert "sparse" in layers, f"no sparse layer in the stats: {list(layers)}"
    return layers["sparse"]


@pytest.mark.parametrize("proc", list(PROC_MODES))
@pytest.mark.parametrize("async_mode", ASYNC_MODES)
def test_zero_blocks_become_holes_and_verify(engine, tmp_path, disk_dir, async_mode, proc):
    stats = tmp_path / "s.json"
    args = zero_pattern_job(engine, {"directory": disk_dir},
                            {"type": "sparse", "async": async_mode, "stats": stats}, numjobs=2)
    r = run_fio(args + PROC_MODES[proc], tmp_path)
    assert_verified(r.data, size=SIZE, njobs=2)
    doc = load_stats(stats)
    assert len(doc["jobs"]) == 2
    for job in doc["jobs"]:
        data = disk_dir / f"sp.{job['jobnum']}.0"
        assert os.path.getsize(data) == SIZE
        # one 4 KiB block in 16 holds data; allow the file system's own metadata
        assert allocated(data) <= SIZE // 16 + 256 * KiB, f"{allocated(data)} bytes allocated"
        sp = job["layers"]["sparse"]
        assert sp["hole_bytes_created"] == SIZE // 16 * 15, sp
        assert sp["zero_blocks_detected"] == SIZE // 4096 // 16 * 15, sp
        assert sp["writes_split"] == SIZE // BS, sp
        # verify read the holes without I/O
        assert sp["reads_hole_skipped"] == SIZE // 16 * 15, sp
        assert sp["logical_bytes"] == SIZE, sp
        assert sp["allocated_bytes"] == allocated(data), sp


def test_zero_buffers_leave_nothing_allocated(engine, tmp_path, disk_dir):
    """A job writing only zeros leaves a file of full size and no data; the
    same job on the regular type (fio preallocates the file) keeps it all."""
    sizes = {}
    for kind in ("sparse", "regular"):
        d = disk_dir / kind
        d.mkdir()
        run_fio(fio_job(engine, name="z", xd={"type": kind}, directory=d, rw="write",
                        bs="128k", size=16 * MiB, zero_buffers=1, end_fsync=1), tmp_path)
        f = d / "z.0.0"
        assert os.path.getsize(f) == 16 * MiB
        sizes[kind] = allocated(f)
    assert sizes["sparse"] <= 64 * KiB, sizes
    assert sizes["regular"] >= 16 * MiB, sizes
    with open(disk_dir / "sparse" / "z.0.0", "rb") as f:
        assert f.read().count(0) == 16 * MiB


def test_preallocated_file_is_punched(engine, tmp_path, disk_dir):
    """The engine sizes sparse files with ftruncate unless the job chooses
    fallocate=; with fallocate=native fio allocates every block first, and
    the sparse layer must free the zero ones (punch allocated blocks)."""
    stats = tmp_path / "s.json"
    run_fio(fio_job(engine, name="z", xd={"type": "sparse", "stats": stats},
                    directory=disk_dir, rw="write", bs="128k", size=16 * MiB, zero_buffers=1,
                    fallocate="native"), tmp_path)
    f = disk_dir / "z.0.0"
    assert os.path.getsize(f) == 16 * MiB
    assert allocated(f) <= 64 * KiB, f"{allocated(f)} bytes still allocated"
    assert sparse_figures(load_stats(stats))["hole_bytes_created"] == 16 * MiB


def data_files(root):
    return [os.path.join(d, n) for d, _, files in os.walk(root) for n in files
            if "sp.0.0" in n and not n.endswith(".lock")]


@pytest.mark.parametrize("kind", ["regular", "direct", "tmpfs"])
def test_enable_sparse_on_other_types(engine, tmp_path, disk_dir, request, kind):
    stats = tmp_path / "s.json"
    xd = {"type": kind, "enable_sparse": 1, "stats": stats}
    if kind == "tmpfs":
        shm = request.getfixturevalue("shm_dir")
        xd["tmpfs_directory"] = shm
    r = run_fio(zero_pattern_job(engine, {"directory": disk_dir}, xd, iodepth=1), tmp_path)
    assert_verified(r.data, size=SIZE, njobs=1)
    where = [xd["tmpfs_directory"]] if kind == "tmpfs" else [disk_dir]
    files = data_files(where[0])
    assert len(files) == 1, files
    assert allocated(files[0]) <= SIZE // 16 + 256 * KiB, f"{allocated(files[0])} bytes allocated"
    sp = sparse_figures(load_stats(stats))
    assert sp["hole_bytes_created"] == SIZE // 16 * 15, sp
    assert sp["allocated_bytes"] == allocated(files[0]), sp


def test_enable_sparse_with_mmap_is_refused(engine, tmp_path, disk_dir):
    r = run_fio(fio_job(engine, name="m", xd={"type": "mmap", "enable_sparse": 1},
                        directory=disk_dir, rw="write", bs="4k", size=MiB),
                tmp_path, expect_ok=False)
    assert r.rc != 0, r.text
    lines = xdevice_lines(r.text)
    assert len(lines) == 1, r.text
    assert "enable_sparse" in lines[0] and "storage_type=mmap" in lines[0], lines[0]
    assert not os.path.exists(disk_dir / "m.0.0") or os.path.getsize(disk_dir / "m.0.0") == 0
