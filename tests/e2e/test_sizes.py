"""Files are exactly as long as fio asked (issue 12, defect 3).

The compressed and hybrid types own their files' layout: the engine creates
or grows them itself instead of letting fio write raw bytes into them. They
used to be made size + max bs long, so a job without size= read a tail that
nobody wrote. The oracle is fio's own psync engine on the same job file:
every job's io_bytes must match, and every file's logical size must be
psync's st_size.

fio's own job files (t/jobs/t0007, examples/surface-scan.fio) are read from
the fio source the build configured (build/.fio-src-dir) and scaled down.
"""
import os
import re
import struct
from pathlib import Path

import pytest

from conftest import REPO, run_fio

TYPES = ["compressed", "hybrid"]
CTR_MAGIC = b"XDCNTR\r\n"  # docs/CONTAINER.md: magic at 0, logical_size (u64 LE) at 16


def fio_source() -> Path:
    stamp = REPO / "build" / ".fio-src-dir"
    if not stamp.is_file():
        pytest.fail(f"{stamp} is missing: run `make` first (it fetches and configures fio's source)",
                    pytrace=False)
    src = Path(stamp.read_text().strip())
    return src if src.is_absolute() else REPO / src


def fio_job_text(relpath) -> str:
    path = fio_source() / relpath
    if not path.is_file():
        pytest.fail(f"{path}: not in fio's source", pytrace=False)
    return path.read_text()


def rewrite(text, replace=None, drop=()):
    """A job file whose key=value lines are, in every section, replaced by
    the lines replace[key] names, or removed (drop); a comment after the
    value goes with it."""
    replace = replace or {}
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*([A-Za-z_]+)\s*(=|$)", line)
        key = m.group(1) if m else None
        if key in drop:
            continue
        out.extend(replace.get(key, [line]))
    return "\n".join(out) + "\n"


def engine_lines(kind, engine, hot):
    if kind == "psync":
        return ["ioengine=psync"]
    lines = [f"ioengine=external:{engine}", f"xd_type={kind}"]
    if kind == "hybrid":
        lines.append(f"xd_hot_directory={hot}")
    return lines


def with_engine(text, kind, engine, hot):
    """The job file run on kind: its ioengine= lines replaced by a [global]
    section at the top naming the engine (a job file's own [global] would
    override options given on the command line). thread=1: fio's default of
    one process per job cannot share a hybrid file (issue 12, defect 5)."""
    body = rewrite(text, drop=("ioengine",))
    head = "[global]\n" + "\n".join(engine_lines(kind, engine, hot) + ["thread=1"]) + "\n\n"
    return head + body


def data_files(d):
    """The files a job left in d, without the hybrid map, fio's logs and
    verify state."""
    skip = (".xdmap", ".state", ".log")
    return sorted(p.name for p in Path(d).iterdir()
                  if p.is_file() and not p.name.endswith(skip) and p.name != "log")


def logical_size(kind, path) -> int:
    """What a reader of the type sees: psync's st_size, a container's header
    logical_size, a hybrid file's cold file length (the cold file is the
    path itself; its map sits beside it)."""
    if kind != "compressed":
        return os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == CTR_MAGIC, f"{path}: not a container ({head[:8]!r})"
    return struct.unpack_from("<Q", head, 16)[0]


def summary(data):
    return [(j["jobname"], j["error"], j["read"]["io_bytes"], j["write"]["io_bytes"])
            for j in data["jobs"]]


def run_on(kind, text, engine, tmp_path, work, hot):
    """Run the job file on kind in its own directory; (jobs summary, sizes)."""
    d = work / kind
    d.mkdir()
    job = tmp_path / f"{kind}.fio"
    job.write_text(with_engine(text, kind, engine, hot))
    r = run_fio([str(job)], tmp_path, cwd=d)
    sizes = {name: logical_size(kind, d / name) for name in data_files(d)}
    return summary(r.data), sizes


def hot_dir(request, kind):
    return request.getfixturevalue("shm_dir") if kind == "hybrid" else None


def assert_same_as_psync(kind, text, engine, tmp_path, disk_dir, hot):
    want_jobs, want_sizes = run_on("psync", text, engine, tmp_path, disk_dir, hot)
    jobs, sizes = run_on(kind, text, engine, tmp_path, disk_dir, hot)
    assert want_sizes, f"psync left no files in {disk_dir / 'psync'}"
    assert jobs == want_jobs, f"{kind}: (job, error, read, written) {jobs}, psync {want_jobs}"
    assert sizes == want_sizes, f"{kind}: logical sizes {sizes}, psync's st_size {want_sizes}"
    return want_jobs


# --- fio's own job files, scaled down ----------------------------------------


@pytest.mark.parametrize("kind", TYPES)
def test_t0007_reads_what_psync_reads(engine, tmp_path, disk_dir, request, kind):
    """t0007 (read:512k holes over a 1m-block sequential read): at 32m fio
    reads 21 MiB; a file a block longer made it 32."""
    text = rewrite(fio_job_text("t/jobs/t0007-37cf9e3c.fio"), {"size": ["size=32m"]})
    jobs = assert_same_as_psync(kind, text, engine, tmp_path, disk_dir, hot_dir(request, kind))
    assert 0 < jobs[0][2] < 32 << 20, f"psync should skip the holes: {jobs}"


SURFACE_SCAN = {  # what replaces the writer's fill_device=1
    # fill_device as in fio's file, bounded by io_size so it takes no disk
    "fill_device": ["fill_device=1", "io_size=4m"],
    "size": ["size=3m"],
}


@pytest.mark.parametrize("variant", list(SURFACE_SCAN))
@pytest.mark.parametrize("kind", ["regular", "sparse"] + TYPES)
def test_surface_scan_verifies(engine, tmp_path, disk_dir, request, kind, variant):
    """surface-scan: a writer, then a verifier with no size= that reads the
    whole file - which must hold nothing but what was written (the tail
    used to fail with "bad magic header 0"). fill_device used to fail on
    every type: the engine passed fio's unbounded size (-1) to open."""
    text = rewrite(fio_job_text("examples/surface-scan.fio"), {"fill_device": SURFACE_SCAN[variant]})
    jobs = assert_same_as_psync(kind, text, engine, tmp_path, disk_dir, hot_dir(request, kind))
    (_, _, _, written), (_, _, verified, _) = jobs
    assert verified == written > 0, jobs


# --- what decides a file's size ------------------------------------------------

CASES = {
    "offset": """
[w]
filename=f
rw=write
bs=4k
size=1m
offset=256k
[r]
stonewall
filename=f
rw=read
bs=4k
""",
    # offset=N% is of the size the file had before: 0 for a new one
    "offset_percent": """
[new]
filename=f
rw=write
bs=4k
size=2m
offset=50%
[grow]
stonewall
filename=f
rw=write
bs=4k
size=1m
offset=75%
[r]
stonewall
filename=f
rw=read
bs=4k
""",
    # 1000k / 3 is not a multiple of anything
    "nrfiles": """
[w]
nrfiles=3
filename_format=data.$filenum
rw=write
bs=4k
size=1000k
[r]
stonewall
nrfiles=3
filename_format=data.$filenum
rw=read
bs=4k
""",
    "filesize": """
[fixed]
nrfiles=2
filename_format=fixed.$filenum
rw=write
bs=4k
filesize=768k
[range]
nrfiles=4
filename_format=range.$filenum
rw=write
bs=4k
filesize=256k-1m
""",
    "numjobs_share_a_file": """
[w]
filename=f
rw=write
bs=4k
size=512k
numjobs=3
offset_increment=512k
[r]
stonewall
filename=f
rw=read
bs=4k
""",
    "size_percent": """
[seed]
filename=f
rw=write
bs=4k
size=2m
[half]
stonewall
filename=f
rw=read
bs=4k
size=50%
[tail]
stonewall
filename=f
rw=write
bs=4k
size=50%
offset=1m
[r]
stonewall
filename=f
rw=read
bs=4k
""",
    "unaligned": """
[w]
filename=f
rw=randwrite
bs=64k
size=1000k
[r]
stonewall
filename=f
rw=read
bs=4k
""",
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", TYPES)
def test_logical_size_is_psyncs(engine, tmp_path, disk_dir, request, kind, case):
    """The same jobs on psync and on the type: the same io_bytes, and every
    file's logical size is psync's st_size."""
    assert_same_as_psync(kind, CASES[case], engine, tmp_path, disk_dir, hot_dir(request, kind))
