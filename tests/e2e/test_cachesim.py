"""xdcachesim's own input and output: a trace cut short (a partial record) is
refused naming the file and the byte offset, never replayed as a shorter
run; a bad command line gets one line naming the problem; --help prints the
usage on stdout and exits 0; results that cannot be written fail the run.
With --fio-zipf, the A0 row (each block kept by its share of a real fio
zipf run's reads) lies between perfect LFU and MIN, and a trace of another
exponent, file size or of more than one file is refused in one line.

The trace is one real fio run's (xd_trace), 64 4 KiB reads of 256 KiB:
a header record and 64 access records of 16 bytes. test_cache.py checks
what the replay computes.
"""
import os
import subprocess

import pytest

from conftest import FIO, FIO_TIMEOUT, REPO, tool_one_line

XDCACHESIM = REPO / "build" / "xdcachesim"
REC = 16
READS = 64
USAGE = "usage: xdcachesim TRACE --cache-size N [--block-size B] [--fio-zipf THETA --file-size S]"


@pytest.fixture(scope="module")
def trace(engine, tmp_path_factory):
    d = tmp_path_factory.mktemp("trace")
    path = d / "trace.bin"
    r = subprocess.run([FIO, f"--output={d}/fio.out", "--name=t", f"--ioengine=external:{engine}",
                        f"--xd_trace={path}", f"--filename={d}/data", "--size=256k", "--bs=4k",
                        "--rw=randread"], capture_output=True, text=True, timeout=FIO_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert path.stat().st_size == REC * (READS + 1), path.stat().st_size
    return path


def cachesim(*args, stdout=subprocess.PIPE, cwd=None):
    p = subprocess.run([str(XDCACHESIM), *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                       text=True, timeout=60, cwd=cwd)
    assert p.returncode >= 0, f"killed by signal {-p.returncode}\n{p.stderr}"
    return p


def one_line(p, rc, *needles):
    return tool_one_line(p, rc, "xdcachesim: ", *needles)


def test_whole_trace_replays(trace):
    p = cachesim(trace, "--cache-size", "1m")
    assert p.returncode == 0 and not p.stderr, p.stderr
    rows = [dict(kv.split("=", 1) for kv in ln.split()) for ln in p.stdout.splitlines()]
    assert [r["policy"] for r in rows] == ["lru", "s3fifo", "s3fifo-sharded", "perfect-lfu", "min"], p.stdout
    assert all(int(r["reads"]) == READS for r in rows), p.stdout


@pytest.mark.parametrize("size,offset", [(100, 96), (30, 16), (REC * (READS + 1) - 1, REC * READS)])
def test_partial_record_refused(trace, tmp_path, size, offset):
    """head -c N of a trace: the whole records before the cut would replay
    as a shorter run; the partial one is named by its byte offset."""
    cut = tmp_path / "cut.bin"
    cut.write_bytes(trace.read_bytes()[:size])
    p = cachesim(cut, "--cache-size", "1m")
    one_line(p, 1, str(cut), f"a partial record at byte {offset}", f"{size - offset} of 16 bytes",
             "whole 16-byte records")


def test_directory_refused(tmp_path):
    one_line(cachesim(tmp_path, "--cache-size", "1m"), 1, str(tmp_path), "is a directory",
             "allowed: a trace file")


BAD_ARGS = {
    "unknown-option": (["{t}", "--cache-size", "1m", "--bogus"], ["--bogus: unknown option",
                                                                 "allowed: --cache-size, --block-size"]),
    "missing-value": (["{t}", "--cache-size"], ["--cache-size: needs a value"]),
    "missing-block-value": (["{t}", "--cache-size", "1m", "--block-size"], ["--block-size: needs a value"]),
    "second-trace": (["{t}", "extra.bin", "--cache-size", "1m"], ["extra.bin: a second trace",
                                                                  "allowed: one TRACE"]),
    "cache-size-twice": (["{t}", "--cache-size", "1m", "--cache-size", "2m"],
                         ["--cache-size given twice (1m, then 2m)", "allowed: once"]),
    "block-size-twice": (["{t}", "--cache-size", "1m", "--block-size", "4k", "--block-size", "4k"],
                         ["--block-size given twice", "allowed: once"]),
    "no-trace": (["--cache-size", "1m"], ["no TRACE given", USAGE]),
    "no-cache-size": (["{t}"], ["no --cache-size given", USAGE]),
    "bad-size": (["{t}", "--cache-size", "lots"], ["--cache-size lots", "not a valid size"]),
    "zipf-without-size": (["{t}", "--cache-size", "1m", "--fio-zipf", "1.1"],
                          ["--fio-zipf and --file-size go together", USAGE]),
    "size-without-zipf": (["{t}", "--cache-size", "1m", "--file-size", "1m"],
                          ["--fio-zipf and --file-size go together"]),
    "zipf-one": (["{t}", "--cache-size", "1m", "--fio-zipf", "1", "--file-size", "1m"],
                 ["--fio-zipf 1: not a zipf exponent fio takes", "not 1"]),
    "zipf-word": (["{t}", "--cache-size", "1m", "--fio-zipf", "1.1x", "--file-size", "1m"],
                  ["--fio-zipf 1.1x: not a zipf exponent"]),
    "zipf-missing-value": (["{t}", "--cache-size", "1m", "--fio-zipf"], ["--fio-zipf: needs a value",
                                                                         "a zipf exponent"]),
    "zipf-twice": (["{t}", "--cache-size", "1m", "--fio-zipf", "1.1", "--fio-zipf", "0.8",
                    "--file-size", "1m"], ["--fio-zipf given twice (1.1, then 0.8)"]),
}


@pytest.mark.parametrize("case", list(BAD_ARGS))
def test_bad_command_line(trace, case):
    args, want = BAD_ARGS[case]
    p = cachesim(*[str(trace) if a == "{t}" else a for a in args])
    one_line(p, 2, *want)


def test_help(trace):
    for flag in ("--help", "-h"):
        p = cachesim(flag)
        assert p.returncode == 0 and not p.stderr, p.stderr
        assert p.stdout == USAGE + "\n", p.stdout


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this machine")
def test_results_not_written(trace):
    """stdout on a full device: one line and exit 1, not a silent 0."""
    with open("/dev/full", "w") as full:
        p = cachesim(trace, "--cache-size", "1m", stdout=full)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 1 and len(lines) == 1, p.stderr
    assert "cannot write the results to stdout" in lines[0], lines[0]


ZIPF_SIZE = "16m"  # 4096 blocks; 16384 zipf:1.1 reads


@pytest.fixture(scope="module")
def zipf_trace(engine, tmp_path_factory):
    d = tmp_path_factory.mktemp("zipf")
    path = d / "trace.bin"
    r = subprocess.run([FIO, f"--output={d}/fio.out", "--name=z", f"--ioengine=external:{engine}",
                        f"--xd_trace={path}", f"--filename={d}/data", f"--size={ZIPF_SIZE}", "--bs=4k",
                        "--io_size=64m", "--rw=randread", "--norandommap", "--randrepeat=0",
                        "--random_distribution=zipf:1.1"],
                       capture_output=True, text=True, timeout=FIO_TIMEOUT)
    assert r.returncode == 0, r.stderr
    return path


def test_fio_zipf_a0_row(zipf_trace):
    """A0 knows each block's share, so it does at least as well as perfect
    LFU, which learns the shares by counting; MIN, which knows the future,
    bounds both."""
    p = cachesim(zipf_trace, "--cache-size", "1m", "--fio-zipf", "1.1", "--file-size", ZIPF_SIZE)
    assert p.returncode == 0 and not p.stderr, p.stderr
    rows = {r["policy"]: r for r in (dict(kv.split("=", 1) for kv in ln.split())
                                     for ln in p.stdout.splitlines())}
    assert list(rows) == ["lru", "s3fifo", "s3fifo-sharded", "perfect-lfu", "a0", "min"], p.stdout
    ratio = {k: float(r["hit_ratio"]) for k, r in rows.items()}
    assert all(int(r["reads"]) == 16384 for r in rows.values()), p.stdout
    assert ratio["perfect-lfu"] <= ratio["a0"] <= ratio["min"], ratio
    assert ratio["a0"] > ratio["lru"], ratio


@pytest.mark.parametrize("args,want", [
    (["--fio-zipf", "0.8", "--file-size", ZIPF_SIZE], ["--fio-zipf 0.8 --file-size 16m", "rank 1 of",
                                                        "of the 16384 reads", "not such a run"]),
    (["--fio-zipf", "1.1", "--file-size", "32m"], ["--fio-zipf 1.1 --file-size 32m", "of the 16384 reads",
                                                   "not such a run"]),
    (["--fio-zipf", "1.1", "--file-size", "4m"], ["--file-size 4m", "past the file's 1024 blocks"]),
], ids=["exponent", "larger-size", "smaller-size"])
def test_fio_zipf_mismatch_refused(zipf_trace, args, want):
    one_line(cachesim(zipf_trace, "--cache-size", "1m", *args), 1, str(zipf_trace), *want)


def test_fio_zipf_file_size_too_large(zipf_trace):
    one_line(cachesim(zipf_trace, "--cache-size", "1m", "--fio-zipf", "1.1", "--file-size", "2t"), 2,
             "--file-size 2t", "allowed: up to 268435456 blocks")


def test_fio_zipf_not_zipf_refused(trace):
    """64 uniform reads of 64 blocks: no zipf run; refused, not replayed."""
    one_line(cachesim(trace, "--cache-size", "64k", "--fio-zipf", "1.1", "--file-size", "256k"), 1,
             str(trace), "--fio-zipf: its most-read block was read 1 times", "at least 16 times")


def test_fio_zipf_two_files_refused(trace, zipf_trace, tmp_path):
    both = tmp_path / "both.bin"
    both.write_bytes(zipf_trace.read_bytes() + trace.read_bytes())
    one_line(cachesim(both, "--cache-size", "1m", "--fio-zipf", "1.1", "--file-size", ZIPF_SIZE), 1,
             str(both), "reads more than one file")
