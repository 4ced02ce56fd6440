"""xdmicro's command line: every bad value gets one line naming the option,
the value and what is allowed, before anything runs (exit 2); --level takes
exactly the range the config schema allows compression_level for the codec
(checked against xdconfig); --help prints the usage and exits 0; results
that cannot be written fail the run.

Runs that measure use --seconds 0.001 and 16 KiB chunks: they check what
is accepted and printed, not speed.
"""
import ctypes
import os
import subprocess

import pytest

from conftest import FIO, FIO_TIMEOUT, REPO, tool_one_line

XDMICRO = REPO / "build" / "xdmicro"
XDCONFIG = REPO / "build" / "xdconfig"
FAST = ["--seconds", "0.001"]


def xdmicro(*args, stdout=subprocess.PIPE):
    p = subprocess.run([str(XDMICRO), *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                       text=True, timeout=120)
    assert p.returncode >= 0, f"xdmicro killed by signal {-p.returncode}\n{p.stderr}"
    return p


def one_line(p, rc, *needles):
    return tool_one_line(p, rc, "xdmicro: ", *needles)


BAD = {
    "unknown-option": (["zero", "--bogus", "1"], ["zero: --bogus is not one of its options",
                                                  "allowed: --size, --seconds"]),
    "stray-argument": (["crc", "extra"], ["crc: unexpected argument \"extra\"", "allowed: --size"]),
    "other-commands-option": (["zero", "--algo", "lz4"], ["zero: --algo is not one of its options"]),
    "no-value": (["crc", "--size"], ["--size needs a value"]),
    "twice": (["crc", "--size", "1k", "--size", "2k"], ["--size given twice (1k, then 2k)", "once"]),
    "seconds-nan": (["zero", "--seconds", "nan"], ["--seconds nan", "above 0, up to 600"]),
    "seconds-huge": (["zero", "--seconds", "1e9"], ["--seconds 1e9", "above 0, up to 600"]),
    "seconds-zero": (["crc", "--seconds", "0"], ["--seconds 0", "above 0, up to 600"]),
    "size-zero": (["crc", "--size", "0"], ["--size 0", "from 1 byte to 1g"]),
    "size-junk": (["crc", "--size", "64q"], ["--size 64q", "from 1 byte to 1g"]),
    "size-overflow": (["zero", "--size", "99999999999999999999g"], ["--size 99999999999999999999g", "1g"]),
    "chunk-big": (["codec", "--chunk", "128m"], ["--chunk 128m", "to 64m"]),
    "compressibility": (["codec", "--compressibility", "50x"], ["--compressibility 50x", "0 to 100"]),
    "algo": (["codec", "--algo", "lzma"], ["--algo lzma", "lz4, zstd, snappy, gzip, brotli or all"]),
    "level-fraction": (["codec", "--level", "1.5"], ["--level 1.5", "a whole number"]),
    "lz4-level-0": (["codec", "--algo", "lz4", "--level", "0"], ["--level 0", "lz4", "1-12 for lz4"]),
    "lz4-level-99": (["codec", "--algo", "lz4", "--level", "99"], ["--level 99", "1-12 for lz4"]),
    "gzip-level-22": (["codec", "--algo", "gzip", "--level", "22"], ["--level 22", "1-9 for gzip"]),
    "all-level-5": (["codec", "--level", "5", "--algo", "all"], ["--level 5", "snappy", "--algo all"]),
    "command": (["fast"], ["unknown command \"fast\"", "zero, codec or crc"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_command_line(case):
    args, want = BAD[case]
    one_line(xdmicro(*args), 2, *want)


def schema_takes(tmp_path, algo, level):
    """Whether a config may set compression_level=level with compression_type=algo."""
    ini = tmp_path / f"{algo}-{level}.ini"
    p = subprocess.run([str(XDCONFIG), "set", str(ini), "storage_type=compressed",
                        f"compression_type={algo}", f"compression_level={level}"],
                       capture_output=True, text=True, timeout=60)
    return p.returncode == 0


@pytest.mark.parametrize("algo,top", [("lz4", 12), ("zstd", 22), ("snappy", 1), ("gzip", 9),
                                      ("brotli", 11)])
def test_levels_are_the_schemas(tmp_path, algo, top):
    """Each codec's levels: 0 and top+1 refused, top measured and printed,
    exactly as the config schema takes compression_level for it."""
    for level in (0, top + 1):
        assert not schema_takes(tmp_path, algo, level), (algo, level)
        one_line(xdmicro("codec", "--algo", algo, "--level", level, *FAST), 2, f"--level {level}",
                 f"for {algo}")
    assert schema_takes(tmp_path, algo, top)
    p = xdmicro("codec", "--algo", algo, "--level", top, "--chunk", "16k", *FAST)
    assert p.returncode == 0, p.stderr
    assert f"codec algo={algo} level={top} " in p.stdout, p.stdout


def test_help():
    for args in (["--help"], ["-h"], ["codec", "--help"]):
        p = xdmicro(*args)
        assert p.returncode == 0 and not p.stderr, p.stderr
        assert p.stdout.startswith("usage: xdmicro zero"), p.stdout


def test_container_smaller_than_a_chunk(engine, tmp_path):
    """--from a 16 KiB container with 64 KiB chunks: not one chunk to
    compress (it read past its buffers)."""
    container = tmp_path / "c.xdc"
    r = subprocess.run([FIO, f"--output={tmp_path}/fio.out", "--name=c", f"--ioengine=external:{engine}",
                        "--xd_type=compressed", f"--filename={container}", "--size=16k", "--bs=4k",
                        "--rw=write"], capture_output=True, text=True, timeout=FIO_TIMEOUT)
    assert r.returncode == 0, r.stderr
    one_line(xdmicro("codec", "--from", container, "--chunk", "64k", *FAST), 2,
             f"--from {container}", "holds 16384 bytes", "a --chunk up to 16384")
    p = xdmicro("codec", "--from", container, "--chunk", "4k", *FAST)
    assert p.returncode == 0 and "raw_chunks=0/4 " in p.stdout, p.stdout + p.stderr


def empty_container(path):
    """A compressed-type container holding no bytes, made through the library."""
    lib = ctypes.CDLL(str(REPO / "build" / "libxdevice.so"))
    lib.xd_config_new.restype = ctypes.c_void_p
    cfg, dev, f = ctypes.c_void_p(lib.xd_config_new()), ctypes.c_void_p(), ctypes.c_void_p()
    err = ctypes.create_string_buffer(512)
    assert lib.xd_config_set(cfg, b"storage_type", b"compressed", b"test", err, 512) == 0, err.value
    assert lib.xd_open(ctypes.byref(dev), cfg, 1, err, 512) == 0, err.value
    assert lib.xd_file_open(dev, bytes(path), 1, ctypes.c_uint64(0), ctypes.byref(f), err, 512) == 0, \
        err.value  # 1: XD_OPEN_CREATE
    lib.xd_file_close(dev, f)
    lib.xd_close(dev)
    lib.xd_config_free(cfg)


def test_newline_in_from_stays_one_line(tmp_path):
    """--from an empty container named with a newline: the refusal writes it
    \\x0a, one line, never a second starting with what the name held."""
    container = tmp_path / "c\nforged.xdc"
    empty_container(container)
    one_line(xdmicro("codec", "--from", container, *FAST), 1,
             f"xdmicro: {tmp_path}/c\\x0aforged.xdc: empty container")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this machine")
def test_results_not_written():
    """stdout on a full device: one line and exit 1, not a silent 0."""
    with open("/dev/full", "w") as full:
        p = xdmicro("crc", "--size", "4k", *FAST, stdout=full)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 1 and len(lines) == 1, p.stderr
    assert "cannot write the results to stdout" in lines[0], lines[0]
