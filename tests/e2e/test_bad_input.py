"""Bad input, as a table: engine options, INI files and every tool.

Each row is one bad input. It must end with a non-zero exit (not a signal),
exactly one line from the program that names the option or FILE:LINE, the
bad value (escaped: a control byte shows as \\xHH) and what is allowed; no
crash or sanitizer report; and nothing written (the scratch directory the
program runs in holds the same files before and after).

tests/e2e/test_options.py covers the first bad values of the engine's
options (bad enum, size, range, bool, pending feature, conflicts, INI
syntax); this table adds empty values, binary, overlong and hostile values,
the INI rules (sections, NUL bytes, line length) and the tools. fio rows use
--parse-only where the error is found at parse time; the rest stop in the
engine's setup, before fio lays out any file.
"""
import json
import os
import subprocess
from pathlib import Path
from typing import Callable, List, NamedTuple

import pytest

from conftest import FIO, REPO

XDCONFIG = REPO / "build" / "xdconfig"
XDTUNE = REPO / "build" / "xdtune"
XDREPORT = REPO / "build" / "xdreport"
TIMEOUT = 60

PREFIX = {"fio": "xdevice:", "xdconfig": "xdconfig:", "xdtune": "xdtune:", "xdreport": "xdreport:"}


class Row(NamedTuple):
    tool: str
    # (scratch dir, engine) -> argv after the program; may create input files
    # (they are part of the "before" snapshot)
    args: Callable[[Path, str], List[str]]
    want: List[str]  # substrings of the one line ({d}: the scratch dir)


def fio_opts(*opts, run=False):
    """A one-job fio command line with these engine options; --parse-only
    unless the error is found in the engine's setup (run=True)."""
    def build(d, engine):
        args = ["--name=bad", f"--ioengine=external:{engine}", *[o.replace("{d}", str(d)) for o in opts],
                f"--filename={d}/data", "--size=1m", "--rw=write"]
        return args if run else ["--parse-only", *args]
    return build


def ini(text, *, via="xdconfig"):
    """An INI file (bytes or str) checked by xdconfig or loaded by fio."""
    def build(d, engine):
        path = d / "bad.ini"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        if via == "fio":
            return fio_opts(f"--xd_config={path}")(d, engine)
        return ["check", str(path)]
    return build


def argv(*items):
    """Plain arguments; {d} is the scratch directory."""
    return lambda d, engine: [str(a).replace("{d}", str(d)) for a in items]


FIFO = object()  # with_file's content for a named pipe no one writes to


def with_file(name, content, then):
    """Create d/name first (content: bytes, str, None for a directory or
    FIFO for a named pipe: opening one for reading waits for a writer, and
    the tools hung on it without a word)."""
    def build(d, engine):
        p = d / name
        if content is FIFO:
            os.mkfifo(p)
        elif content is None:
            p.mkdir()
        else:
            p.write_bytes(content if isinstance(content, bytes) else content.encode())
        return then(d, engine)
    return build


def tune_space(content):
    """xdtune search with this space file (and a job and start config that are fine)."""
    return with_file("space.ini", content, with_file("start.ini", "[local]\n", with_file(
        "job.fio", JOB, argv("search", "--job", "{d}/job.fio", "--config", "{d}/start.ini",
                             "--space", "{d}/space.ini", "--out", "{d}/out"))))


def tune_inputs(files, *extra, job="{d}/job.fio", space="{d}/space.ini"):
    """xdtune search over these files (name: content, None for a directory)
    beside a job, start config and space that are fine unless files names them."""
    files = {"job.fio": JOB, "start.ini": "[local]\n", "space.ini": "async = sync|io_uring\n", **files}
    build = argv("search", *(["--job", job] if job else []), "--config", "{d}/start.ini", "--space", space,
                 "--out", "{d}/out", *extra)
    for name, content in files.items():
        build = with_file(name, content, build)
    return build


LONG = "x" * 5000
ALLOWED_TYPES = "regular|mmap|direct|tmpfs|block|sparse|compressed|hybrid"
JOB = "[j]\nioengine=external:build/xdevice.so\nrw=read\nsize=1m\n"

ROWS = {
    # --- engine options: empty values get the allowed values -------------------
    "opt-empty-type": Row("fio", fio_opts("--xd_type="), ["option xd_type", "empty value", ALLOWED_TYPES]),
    # wrong alone, beyond the range: refused as fio parses the job, before
    # any job of the file runs (they failed the job once it started)
    "opt-not-power-of-two": Row("fio", fio_opts("--xd_io_alignment=3000"),
                                ["option xd_io_alignment", "io_alignment=3000", "power of two", "64k"]),
    "opt-extent-not-power-of-two": Row("fio", fio_opts("--xd_tier_extent_size=96k"),
                                       ["option xd_tier_extent_size", "98304", "power of two"]),
    "opt-mmap-size-not-pages": Row("fio", fio_opts("--xd_mmap_size=5000"),
                                   ["option xd_mmap_size", "mmap_size=5000", "page size"]),
    "opt-empty-storage-type": Row("fio", fio_opts("--xd_storage_type="),
                                  ["option xd_storage_type", "empty value", ALLOWED_TYPES]),
    "opt-empty-async": Row("fio", fio_opts("--xd_async="), ["option xd_async", "empty value", "sync|libaio|io_uring"]),
    "opt-empty-size": Row("fio", fio_opts("--xd_cache_size="), ["option xd_cache_size", "empty value", "a size from"]),
    "opt-empty-bool": Row("fio", fio_opts("--xd_enable_sparse="), ["option xd_enable_sparse", "empty value", "true or false"]),
    "opt-empty-config": Row("fio", fio_opts("--xd_config="), ["option xd_config", "empty value", "allowed: the path"]),
    "opt-empty-stats": Row("fio", fio_opts("--xd_stats="), ["option xd_stats", "empty value", "allowed: the path"]),
    "opt-empty-interval": Row("fio", fio_opts("--xd_stats_interval="),
                              ["option xd_stats_interval", "empty value", "an integer from"]),
    # --- where results go --------------------------------------------------------
    "stats-is-dir": Row("fio", with_file("out", None, fio_opts("--xd_stats={d}/out")),
                        ["option xd_stats={d}/out", "is a directory", "allowed: a file in a writable directory"]),
    "stats-no-dir": Row("fio", fio_opts("--xd_stats={d}/missing/s.json"),
                        ["option xd_stats={d}/missing/s.json", "does not exist", "allowed: a file"]),
    "stats-under-file": Row("fio", with_file("plain", "x", fio_opts("--xd_stats={d}/plain/s.json")),
                            ["option xd_stats={d}/plain/s.json", "not a directory", "allowed: a file"]),
    "stats-log-is-dir": Row("fio", with_file("out", None, fio_opts("--xd_stats_log={d}/out")),
                            ["option xd_stats_log={d}/out", "is a directory", "allowed: a file"]),
    # an output named like a file the job uses: the data replaced by JSON
    "stats-is-data": Row("fio", fio_opts("--xd_stats={d}/data", run=True),
                         ["xd_stats={d}/data", "the job's data file", "allowed: a file of its own"]),
    "stats-is-data-laid-out": Row("fio", with_file("data", "x" * 4096, fio_opts("--xd_stats={d}/./data", run=True)),
                                  ["xd_stats={d}/./data", "the job's data file", "allowed: a file of its own"]),
    "stats-is-config": Row("fio", with_file("k.ini", "[local]\n", fio_opts("--xd_config={d}/k.ini", "--xd_stats={d}/k.ini", run=True)),
                           ["xd_stats={d}/k.ini", "the job's xd_config", "allowed: a file of its own"]),
    "trace-is-data": Row("fio", fio_opts("--xd_trace={d}/data", run=True),
                         ["trace={d}/data", "the job's data file", "allowed: a file of its own"]),
    "stats-log-is-stats": Row("fio", fio_opts("--xd_stats={d}/s.json", "--xd_stats_log={d}/s.json", "--xd_stats_interval=1", run=True),
                              ["xd_stats_log={d}/s.json", "its xd_stats file", "allowed: a file of its own"]),
    "stats-log-without-interval": Row("fio", fio_opts("--xd_stats_log={d}/l.jsonl", run=True),
                                      ["xd_stats_log={d}/l.jsonl", "periodic stats are off", "allowed: with xd_stats_interval"]),
    # fio's offload workers drove the engine from threads of their own: SIGSEGV
    "submit-offload": Row("fio", fio_opts("--io_submit_mode=offload", run=True),
                          ["io_submit_mode=offload", "not supported", "allowed: io_submit_mode=inline"]),
    # a character device's size read as 0: no I/O, exit 0, nothing said
    "data-char-device": Row("fio", lambda d, engine: ["--name=bad", f"--ioengine=external:{engine}",
                                                      "--filename=/dev/zero", "--size=1m", "--rw=read"],
                            ["/dev/zero: a character device", "allowed: a regular file"]),
    "stats-device": Row("fio", fio_opts("--xd_stats=/dev/null"),
                        ["option xd_stats=/dev/null", "not a regular file", "allowed: a file"]),
    # --- aliases: both given, different values -------------------------------------
    "alias-type": Row("fio", fio_opts("--xd_type=regular", "--xd_storage_type=compressed", run=True),
                      ["option xd_type=regular", "option xd_storage_type=compressed", "allowed: one of them"]),
    "alias-type-reversed": Row("fio", fio_opts("--xd_storage_type=direct", "--xd_type=mmap", run=True),
                               ["option xd_type=mmap", "option xd_storage_type=direct", "allowed: one of them"]),
    "alias-interval": Row("fio", fio_opts("--xd_stats_interval=1", "--xd_metrics_interval_sec=2",
                                          "--xd_stats={d}/s.json", run=True),
                          ["option xd_stats_interval=1", "option xd_metrics_interval_sec=2", "allowed: one of them"]),
    # base_directory is for programs; fio names the job's files (a relative one
    # would be laid out by fio in one place and written by xdevice in another)
    "fio-base-directory": Row("fio", lambda d, engine: [
        "--name=bad", f"--ioengine=external:{engine}", f"--xd_base_directory={d}/base",
        "--filename=data", "--size=1m", "--rw=write"],
        ["base_directory={d}/base (option xd_base_directory)", "data is relative",
         "allowed: directory={d}/base in the job"]),
    "ini-base-directory": Row("fio", with_file("b.ini", "[local]\nbase_directory = /srv/xd\n", lambda d, engine: [
        "--name=bad", f"--ioengine=external:{engine}", f"--xd_config={d}/b.ini",
        "--filename=data", "--size=1m", "--rw=write"]),
        ["base_directory=/srv/xd ({d}/b.ini:2)", "allowed: directory=/srv/xd in the job"]),
    # --- hostile values: escaped, cut, and still refused ---------------------------
    "opt-binary-type": Row("fio", fio_opts("--xd_type=\x01\x02"), ["option xd_type", "\\x01\\x02", ALLOWED_TYPES]),
    "opt-escape-seq": Row("fio", fio_opts("--xd_async=\x1b[2Jsync"), ["option xd_async", "\\x1b[2Jsync", "sync|libaio"]),
    "opt-bad-utf8": Row("fio", fio_opts("--xd_cache_policy=lru\udcff"), ["option xd_cache_policy", "lru\\xff", "s3fifo|lru"]),
    "opt-backslash": Row("fio", fio_opts("--xd_async=a\\x01"), ["option xd_async", "a\\\\x01", "sync|libaio"]),
    "opt-long-value": Row("fio", fio_opts(f"--xd_type={LONG}"), ["option xd_type", "xxxx...", ALLOWED_TYPES]),
    "opt-unknown-type": Row("fio", fio_opts("--xd_type=flash"), ["option xd_type", "storage_type=flash", ALLOWED_TYPES]),
    "opt-negative-size": Row("fio", fio_opts("--xd_cache_size=-1"), ["option xd_cache_size", "=-1", "a size from"]),
    "opt-huge-size": Row("fio", fio_opts("--xd_cache_size=99999999999999999999"),
                         ["option xd_cache_size", "=99999999999999999999", "a size from"]),
    "opt-fraction-int": Row("fio", fio_opts("--xd_read_ahead_kb=1.5"), ["option xd_read_ahead_kb", "=1.5", "an integer from 0"]),
    "opt-nan": Row("fio", fio_opts("--xd_migration_interval_sec=nan"),
                   ["option xd_migration_interval_sec", "=nan", "a number from"]),
    "opt-inf": Row("fio", fio_opts("--xd_migration_interval_sec=inf"),
                   ["option xd_migration_interval_sec", "=inf", "a number from"]),
    "opt-mode-digit": Row("fio", fio_opts("--xd_file_permissions=0968"),
                          ["option xd_file_permissions", "=0968", "an octal mode"]),
    "opt-mode-prefix": Row("fio", fio_opts("--xd_dir_permissions=0o755"),
                           ["option xd_dir_permissions", "=0o755", "an octal mode"]),
    "opt-codec": Row("fio", fio_opts("--xd_compression_type=lzma"), ["option xd_compression_type", "=lzma", "lz4|zstd"]),
    "opt-bool-number": Row("fio", fio_opts("--xd_enable_read_cache=2"), ["option xd_enable_read_cache", "=2", "true or false"]),
    "opt-size-suffix": Row("fio", fio_opts("--xd_cache_size=64q"), ["option xd_cache_size", "=64q", "k/m/g/t suffix"]),
    "opt-alignment": Row("fio", fio_opts("--xd_io_alignment=3000", run=True),
                         ["option xd_io_alignment", "=3000", "power of two", "allowed: 512"]),
    "opt-level-codec": Row("fio", fio_opts("--xd_type=compressed", "--xd_compression_level=20", run=True),
                           ["option xd_compression_level", "=20", "allowed: 1-12 for lz4"]),
    "opt-compress-cache-small": Row("fio", fio_opts("--xd_type=compressed", "--xd_compress_cache_size=16k", run=True),
                                    ["option xd_compress_cache_size", "=16384", "compress_chunk_size=65536",
                                     "allowed: 0 (no cache) or 65536"]),
    # --- INI files ----------------------------------------------------------------
    "ini-nul": Row("xdconfig", ini(b"[local]\nstorage_type = regular\x00compressed\n"),
                   ["bad.ini:2:", "regular\\x00compressed", "allowed: text without NUL bytes"]),
    "ini-section-twice": Row("xdconfig", ini("[local]\nasync = sync\n[block]\nqueue_depth = 8\n[local]\n"),
                             ["bad.ini:5:", "section [local] appears twice", "once (first at line 1)"]),
    "ini-unknown-section": Row("xdconfig", ini("[lokal]\nasync = sync\n"),
                               ["bad.ini:1:", "unknown section [lokal]", "allowed: [local], "]),
    "ini-before-section": Row("xdconfig", ini("async = sync\n[local]\n"),
                              ["bad.ini:1:", "key async comes before any [section]", "allowed: under [local]"]),
    "ini-no-bracket": Row("xdconfig", ini("[local\n"), ["bad.ini:1:", "\"[local\" has no closing ]", "allowed: [section]"]),
    "ini-after-bracket": Row("xdconfig", ini("[local] async = sync\n"),
                             ["bad.ini:1:", "text after [section]: \"async = sync\"", "allowed: a comment only"]),
    "ini-binary-key": Row("xdconfig", ini(b"[local]\n\x01async = sync\n"),
                          ["bad.ini:2:", "unknown key '\\x01async'", "did you mean 'async'"]),
    "ini-binary-value": Row("xdconfig", ini(b"[local]\nasync = \x07\x1b]0;pwned\x07\n"),
                            ["bad.ini:2:", "async=\\x07\\x1b]0;pwned\\x07", "sync|libaio|io_uring"]),
    "ini-bad-utf8": Row("xdconfig", ini(b"[local]\ncache_policy = lr\xc3u\n"),
                        ["bad.ini:2:", "cache_policy=lr\\xc3u", "s3fifo|lru"]),
    "ini-long-value": Row("xdconfig", ini(f"[local]\nasync = {LONG}\n"),
                          ["bad.ini:2:", "async=xxxx", "...", "sync|libaio|io_uring"]),
    "ini-long-line-tail": Row("xdconfig", ini("[local]\nstorage_type = flash ; " + "c" * 300 + " storage_type = regular\n"),
                              ["bad.ini:2:", "storage_type=flash", ALLOWED_TYPES]),
    "ini-empty-enum": Row("xdconfig", ini("[local]\nasync =\n"), ["bad.ini:2:", "async has an empty value", "sync|libaio"]),
    "ini-empty-key": Row("xdconfig", ini("[local]\n= sync\n"),
                         ["bad.ini:2:", "\"= sync\" is not a [section] or key = value line", "allowed: [section]"]),
    "ini-hex-number": Row("xdconfig", ini("[local]\ncompression_threshold = 0x10\n"),
                          ["bad.ini:2:", "compression_threshold=0x10", "a number from 0 to 99"]),
    "ini-dir": Row("xdconfig", with_file("conf", None, argv("check", "{d}/conf")),
                   ["{d}/conf", "not a regular file", "allowed: an INI file"]),
    "ini-fifo": Row("xdconfig", with_file("conf", FIFO, argv("check", "{d}/conf")),
                    ["{d}/conf", "not a regular file", "allowed: an INI file"]),
    "ini-fifo-fio": Row("fio", with_file("conf", FIFO, fio_opts("--xd_config={d}/conf")),
                        ["{d}/conf", "not a regular file", "allowed: an INI file"]),
    "ini-too-big": Row("xdconfig", with_file("big.ini", "; " + "z" * (2 << 20) + "\n", argv("check", "{d}/big.ini")),
                       ["{d}/big.ini", "bytes", "allowed: an INI file of up to 1 MiB"]),
    "ini-missing": Row("xdconfig", argv("check", "{d}/none.ini"), ["{d}/none.ini", "cannot read", "No such file"]),
    "ini-binary-path": Row("xdconfig", argv("check", "{d}/\x1b[31mred.ini"), ["{d}/\\x1b[31mred.ini", "cannot read"]),
    "ini-conflict": Row("xdconfig", ini("[local]\nuse_aio = false\nasync = io_uring\n"),
                        ["async=io_uring", "bad.ini:3", "use_aio=false", "needs use_aio=true"]),
    "ini-json-conflict": Row("xdconfig", lambda d, e: ["json", *ini("[local]\nenable_write_cache = true\n")(d, e)[1:]],
                             ["enable_write_cache=true", "bad.ini:2", "set enable_read_cache=true"]),
    # a key the type turns on, set false by hand, was overridden without a word
    "opt-mmap-without-mmap": Row("fio", fio_opts("--xd_type=mmap", "--xd_use_mmap=0", run=True),
                                 ["use_mmap=false", "option xd_use_mmap", "storage_type=mmap",
                                  "allowed: true, or leave it unset"]),
    "ini-sparse-without-holes": Row("xdconfig", ini("[local]\nstorage_type = sparse\nenable_sparse = false\n"),
                                    ["enable_sparse=false", "bad.ini:3", "storage_type=sparse",
                                     "the sparse type always has enable_sparse on"]),
    "ini-compress-cache-small": Row("xdconfig", ini("[local]\nstorage_type = compressed\ncompress_chunk_size = 1m\ncompress_cache_size = 512k\n"),
                                    ["bad.ini:4", "compress_cache_size=524288", "compress_chunk_size=1048576",
                                     "allowed: 0 (no cache) or 1048576"]),
    "ini-fio-nul": Row("fio", ini(b"[local]\nasync = io\x00uring\n", via="fio"),
                       ["xd_config=", "bad.ini:2:", "io\\x00uring", "allowed: text without NUL bytes"]),
    "ini-fio-section-twice": Row("fio", ini("[tmpfs]\n[local]\n[tmpfs]\n", via="fio"),
                                 ["xd_config=", "bad.ini:3:", "section [tmpfs] appears twice", "first at line 1"]),
    # --- xdconfig's command line ------------------------------------------------------
    "xdconfig-command": Row("xdconfig", argv("chek", "x.ini"), ["unknown command \"chek\"", "allowed: check, json"]),
    "xdconfig-check-no-file": Row("xdconfig", argv("check"), ["check needs FILE.ini", "allowed: xdconfig check FILE.ini"]),
    "xdconfig-no-command": Row("xdconfig", argv(), ["no command", "allowed: check, json, health, set, defaults, markdown, roff, tunables, --help"]),
    "xdconfig-check-extra": Row("xdconfig", with_file("a.ini", "[local]\n", argv("check", "{d}/a.ini", "b")),
                                ["check takes one FILE.ini", "\"b\" is an argument too many", "allowed: xdconfig check FILE.ini"]),
    "xdconfig-defaults-extra": Row("xdconfig", argv("defaults", "extra"),
                                   ["defaults takes no argument", "\"extra\" is an argument too many", "allowed: xdconfig defaults"]),
    "xdconfig-health-extra": Row("xdconfig", argv("health", "a.ini", "\x1b"),
                                 ["health takes one FILE.ini", "\"\\x1b\"", "allowed: xdconfig health FILE.ini"]),
    "xdconfig-set-no-pair": Row("xdconfig", argv("set", "{d}/new.ini"),
                                ["set needs KEY=VALUE after FILE.ini", "allowed: xdconfig set FILE.ini KEY=VALUE..."]),
    "xdconfig-set-no-eq": Row("xdconfig", argv("set", "{d}/new.ini", "async"),
                              ["\"async\" is not KEY=VALUE", "allowed: KEY=VALUE"]),
    "xdconfig-set-unknown": Row("xdconfig", argv("set", "{d}/new.ini", "asink=sync"),
                                ["command line", "unknown key 'asink'", "did you mean 'async'"]),
    "xdconfig-set-binary": Row("xdconfig", argv("set", "{d}/new.ini", "async=\x01"),
                               ["command line", "async=\\x01", "sync|libaio|io_uring"]),
    "xdconfig-set-newline": Row("xdconfig", with_file("inj.ini", "[local]\nasync = sync\n", argv(
                                    "set", "{d}/inj.ini", "trace=/x\n[fault]\nenable_fault_injection = true\nfault_every = 1")),
                                ["command line: trace=/x\\x0a[fault]\\x0aenable_fault_injection", "a control character", "allowed:"]),
    "xdconfig-set-comment": Row("xdconfig", argv("set", "{d}/a.ini", "base_directory=/a ; b"),
                                ["command line: base_directory=/a ; b", "starts a comment", "allowed:"]),
    "xdconfig-set-blank-end": Row("xdconfig", argv("set", "{d}/a.ini", "base_directory=/a "),
                                  ["command line: base_directory=/a ", "white space", "allowed:"]),
    "xdconfig-set-twice": Row("xdconfig", argv("set", "{d}/f.ini", "cache_size=1m", "cache_size=2m"),
                              ["cache_size=2m", "key cache_size is set twice", "first as cache_size=1m", "allowed: once"]),
    "xdconfig-set-conflict": Row("xdconfig", argv("set", "{d}/new.ini", "enable_read_cache=true", "cache_size=4k"),
                                 ["cache_size=4096", "cache_block_size=4096", "at least 16 blocks"]),
    "xdconfig-set-into-dir": Row("xdconfig", with_file("conf", None, argv("set", "{d}/conf", "async=sync")),
                                 ["{d}/conf", "is a directory", "allowed: a regular file"]),
    # --- xdtune ---------------------------------------------------------------------
    "xdtune-command": Row("xdtune", argv("tune"), ["unknown command \"tune\"", "search or daemon"]),
    "xdtune-budget-zero": Row("xdtune", argv("search", "--budget", "0"), ["--budget 0", "from 1 to 100000"]),
    "xdtune-budget-word": Row("xdtune", argv("search", "--budget", "many"), ["--budget many", "from 1 to 100000"]),
    "xdtune-budget-binary": Row("xdtune", argv("search", "--budget", "\x01"), ["--budget \\x01", "from 1 to 100000"]),
    "xdtune-budget-fraction": Row("xdtune", argv("search", "--budget", "1.5"),
                                  ["--budget 1.5", "a whole number from 1 to 100000"]),
    "xdtune-seed-fraction": Row("xdtune", argv("search", "--seed", "2.5"), ["--seed 2.5", "a whole number"]),
    "xdtune-budget-no-value": Row("xdtune", argv("search", "--job", "j.fio", "--budget"),
                                  ["search: --budget needs a value"]),
    "xdtune-cycles-no-value": Row("xdtune", argv("daemon", "--cycles"), ["daemon: --cycles needs a value"]),
    "xdtune-method": Row("xdtune", argv("search", "--method", "anneal"), ["--method anneal", "gp, random or grid"]),
    "xdtune-minimize": Row("xdtune", argv("search", "--minimize", "bw"), ["--minimize bw", "p99", "iops"]),
    "xdtune-hit-zero": Row("xdtune", argv("search", "--target-cache-hit", "0"), ["--target-cache-hit 0", "above 0, up to 1"]),
    "xdtune-hit-above-one": Row("xdtune", argv("search", "--target-cache-hit", "1.5"), ["--target-cache-hit 1.5", "to 1"]),
    "xdtune-unknown-option": Row("xdtune", argv("search", "--frobnicate"),
                                 ["--frobnicate", "not one of its options"]),
    "xdtune-missing-job": Row("xdtune", argv("search", "--config", "x.ini", "--out", "{d}/out"), ["search needs --job"]),
    "xdtune-daemon-interval": Row("xdtune", argv("daemon", "--interval", "0.01"), ["--interval 0.01", "from 0.1 to 86400"]),
    "xdtune-daemon-no-source": Row("xdtune", argv("daemon", "--config", "{d}/x.ini"),
                                   ["daemon needs --fio-status FILE or --stats FILE"]),
    "xdtune-daemon-status-dir": Row("xdtune", with_file("status", None, argv(
        "daemon", "--config", "{d}/x.ini", "--fio-status", "{d}/status")),
        ["--fio-status", "{d}/status", "is a directory"]),
    "xdtune-space-fifo": Row("xdtune", tune_space(FIFO), ["{d}/space.ini", "the space is empty"]),
    "xdtune-space-unknown": Row("xdtune", tune_space("cache_sise = 1m..4m\n"),
                                ["space.ini:1", "cache_sise", "schema keys"]),
    "xdtune-space-binary": Row("xdtune", tune_space(b"async = sync|\x01\n"),
                               ["space.ini:1", "\\x01", "allowed"]),
    "xdtune-space-nul": Row("xdtune", tune_space(b"read_ahead_kb = 0..1\x00024\n"),
                            ["space.ini:1", "\\x00", "allowed: text without NUL bytes"]),
    "xdtune-space-twice": Row("xdtune", tune_space("async = sync|sync\n"),
                              ["space.ini:1", "async", "value sync is listed twice", "each value once"]),
    "xdtune-space-same-size": Row("xdtune", tune_space("cache_size = 1m|1024k\n"),
                                  ["space.ini:1", "value 1024k is the same as 1m", "each value once"]),
    "xdtune-space-empty-choice": Row("xdtune", tune_space("async = sync||io_uring\n"),
                                     ["space.ini:1", "an empty value", "sync||io_uring"]),
    "xdtune-space-values-and-range": Row("xdtune", tune_space("[cache_size]\nlo = 1m\nhi = 8m\nvalues = 1m|2m\n"),
                                         ["space.ini:4", "[cache_size] values", "lo is set too (line 2)",
                                          "keep one of them"]),
    "xdtune-space-range-and-values": Row("xdtune", tune_space("[cache_size]\nvalues = 1m|2m\nstep = 2\n"),
                                         ["space.ini:3", "[cache_size] step", "values is set too (line 2)",
                                          "keep one of them"]),
    "xdtune-space-lo-twice": Row("xdtune", tune_space("[read_ahead_kb]\nlo = 8\nlo = 128\nhi = 64\n"),
                                 ["space.ini:3", "[read_ahead_kb] lo", "set twice (first at line 2)", "once"]),
    "xdtune-space-section-text": Row("xdtune", tune_space("[read_ahead_kb] lo = 8\n"),
                                     ["space.ini:1", "[read_ahead_kb] lo = 8", "a ; comment at most"]),
    # a key the search sets: the job's value is replaced, but a bad one is
    # the job's mistake (it was dropped without a word)
    "xdtune-job-searched-bad": Row("xdtune", tune_inputs({"job.fio": JOB + "xd_async = sinc\n"}),
                                   ["{d}/job.fio:5:", "option xd_async", "async=sinc", "sync|libaio|io_uring"]),
    "xdtune-args-searched-bad": Row("xdtune", tune_inputs({}, "--", "--name=j", "--xd_async=-1", job=None),
                                    ["the command line:2:", "option xd_async", "async=-1", "sync|libaio|io_uring"]),
    "xdtune-job-dir": Row("xdtune", tune_inputs({"job.fio": None}),
                          ["{d}/job.fio: is a directory", "allowed: a fio job file"]),
    "xdtune-include-dir": Row("xdtune", tune_inputs({"inc": None, "job.fio": "[j]\ninclude inc\n"}),
                              ["{d}/job.fio:2", "include inc", "is a directory"]),
    "xdtune-space-dir": Row("xdtune", tune_inputs({"space.ini": None}),
                            ["{d}/space.ini: is a directory", "allowed: a space file"]),
    "xdtune-hosts-dir": Row("xdtune", tune_inputs({"hosts": None}, "--hosts", "{d}/hosts"),
                            ["--hosts {d}/hosts: is a directory", "one fio server per line"]),
    # --- xdreport ---------------------------------------------------------------------
    "xdreport-command": Row("xdreport", argv("reprot"), ["unknown command \"reprot\"", "report, compare or convergence"]),
    "xdreport-report-no-out": Row("xdreport", argv("report", "x.json"), ["report needs -o OUTDIR"]),
    "xdreport-report-option": Row("xdreport", argv("report", "--colour", "-o", "{d}/out", "x.json"),
                                  ["--colour", "allowed: -o OUTDIR, --title"]),
    "xdreport-compare-threshold": Row("xdreport", argv("compare", "--threshold", "lots", "a", "b"),
                                      ["--threshold", "lots", "a percentage"]),
    "xdreport-compare-alpha": Row("xdreport", argv("compare", "--alpha", "2", "a", "b"), ["--alpha", "2", "allowed"]),
    "xdreport-compare-binary": Row("xdreport", argv("compare", "--min-runs", "\x02", "a", "b"),
                                   ["--min-runs", "\\x02", "a whole number"]),
    "xdreport-compare-option": Row("xdreport", argv("compare", "--colour", "a", "b"),
                                   ["'--colour'", "allowed: --threshold"]),
    "xdreport-convergence-missing": Row("xdreport", argv("convergence", "-o", "{d}/out", "{d}/none.json"),
                                        ["{d}/none.json", "cannot read"]),
    "xdreport-convergence-not-history": Row("xdreport", with_file("h.json", '{"x": 1}',
                                            argv("convergence", "-o", "{d}/out", "{d}/h.json")),
                                            ["{d}/h.json", "no \"trials\" array", "an xdtune history"]),
    "xdreport-convergence-fifo": Row("xdreport", with_file("h.json", FIFO,
                                     argv("convergence", "-o", "{d}/out", "{d}/h.json")),
                                     ["{d}/h.json", "an empty file", "allowed: an xdtune history.json"]),
    "xdreport-convergence-args": Row("xdreport", argv("convergence", "-o"), ["convergence needs -o OUTDIR"]),
}

PROGRAMS = {"fio": FIO, "xdconfig": XDCONFIG, "xdtune": XDTUNE, "xdreport": XDREPORT}


def snapshot(d: Path):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def test_table_is_big_enough():
    assert len(ROWS) >= 60
    assert {r.tool for r in ROWS.values()} == set(PROGRAMS)


@pytest.mark.parametrize("case", list(ROWS))
def test_bad_input(engine, tmp_path, case):
    row = ROWS[case]
    d = tmp_path / "scratch"
    d.mkdir()
    args = row.args(d, engine)
    before = snapshot(d)
    env = dict(os.environ, LC_ALL="C")
    cmd = [str(PROGRAMS[row.tool]), *args]
    p = subprocess.run([os.fsencode(a) if isinstance(a, str) else a for a in cmd],
                       capture_output=True, timeout=TIMEOUT, cwd=d, env=env)
    out = (p.stdout + p.stderr).decode("utf-8", "surrogateescape")
    where = f"{case}: rc={p.returncode}\n{out}"
    assert p.returncode > 0, where
    assert "Sanitizer" not in out and "Segmentation" not in out, where
    if row.tool == "fio":
        # fio adds lines of its own ("fio: failed parsing ..."); xdevice says one
        lines = [ln for ln in out.splitlines() if ln.startswith(PREFIX[row.tool])]
    else:
        lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, where
    assert lines[0].startswith(PREFIX[row.tool].rstrip(":")), where
    line = lines[0]
    assert all(c == "\t" or c >= " " for c in line), f"unescaped control byte in {line!r}"
    for s in row.want:
        s = s.replace("{d}", str(d))
        assert s in line, f"{s!r} not in {line!r}\n{where}"
    assert snapshot(d) == before, f"{case} wrote files: {set(snapshot(d)) - set(before)}"


def test_long_comment_does_not_set_a_key(tmp_path):
    """libinih split a line over 200 bytes and parsed its tail as a new line."""
    path = tmp_path / "long.ini"
    path.write_text("[local]\n; " + "c" * 300 + " storage_type = compressed\n"
                    "trace = /tmp/" + "t" * 400 + "\n")
    p = subprocess.run([str(XDCONFIG), "json", str(path)], capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert '"storage_type": "regular"' in p.stdout.replace('":"', '": "'), p.stdout
    assert "/tmp/" + "t" * 400 in p.stdout


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_stats_write_failure_fails_the_run(engine, tmp_path, mode):
    """A stats document that cannot be written at the end (root may create
    nothing in /proc, which access(2) does not tell) fails the job: fio exits
    non-zero, with one line, and its JSON still parses."""
    out = tmp_path / "fio.json"
    cmd = [FIO, "--output-format=json", f"--output={out}", "--name=st", f"--ioengine=external:{engine}",
           "--xd_stats=/proc/xd-stats.json", f"--filename={tmp_path}/data", "--size=256k", "--rw=write"]
    if mode == "thread":
        cmd.append("--thread=1")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert p.returncode > 0, p.stdout + p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("xdevice:")]
    assert len(lines) == 1 and "/proc/xd-stats.json" in lines[0], p.stderr
    doc = json.loads(out.read_text())
    assert doc["jobs"][0]["error"] != 0


def test_report_of_a_fifo_reads_it_as_empty(tmp_path):
    """xdreport report reads a named pipe no one writes to as an empty file
    (it waited in open(2) for ever); the report of the rest is written, as
    for any unreadable input (README "Reports"), and the exit is 1."""
    os.mkfifo(tmp_path / "r.json")
    r = subprocess.run([str(XDREPORT), "report", "-o", str(tmp_path / "out"), str(tmp_path / "r.json")],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 1, r.stderr
    assert f"{tmp_path}/r.json: empty file" in r.stderr
