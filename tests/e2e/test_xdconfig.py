"""build/xdconfig's command line and output: --help, standard output that
cannot be written, and what `set` writes. Bad command lines and values
`set` refuses, one line each, are rows of tests/e2e/test_bad_input.py; the
health check is tests/e2e/test_health.py."""
import json
import subprocess

import pytest

from conftest import REPO

XDCONFIG = REPO / "build" / "xdconfig"
COMMANDS = ["check", "json", "health", "set", "defaults", "markdown", "roff", "tunables"]


def xdconfig(*args, stdout=subprocess.PIPE):
    return subprocess.run([str(XDCONFIG), *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, timeout=60)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_every_command(flag):
    r = xdconfig(flag)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    for cmd in COMMANDS:
        assert f"xdconfig {cmd}" in r.stdout, (cmd, r.stdout)


def test_unknown_command_lists_every_command():
    r = xdconfig("chek")
    assert r.returncode == 2
    line = r.stderr.strip()
    assert "\n" not in line and all(f" {cmd}," in line for cmd in COMMANDS), line


@pytest.mark.parametrize("args,rc", [
    (["defaults"], 1), (["json", "{ini}"], 1), (["check", "{ini}"], 1), (["health", "{ini}"], 2),
    (["markdown"], 1), (["roff"], 1), (["tunables"], 1), (["--help"], 1),
])
def test_a_failed_write_to_stdout_fails(tmp_path, args, rc):
    """health exits 1 for unhealthy, so a report it could not write is 2."""
    ini = tmp_path / "h.ini"
    ini.write_text(f"[local]\nbase_directory = {tmp_path}\n")
    with open("/dev/full", "w") as full:  # only ever as stdout
        r = xdconfig(*[a.replace("{ini}", str(ini)) for a in args], stdout=full)
    assert r.returncode == rc, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("xdconfig: standard output: cannot write"), lines


@pytest.mark.parametrize("value", ["/a;b", "/t #x", "a = b:c", "/d\u00fcr", "#x", "[x]"])
def test_set_writes_what_reads_back(tmp_path, value):
    """Values that only look like INI syntax are kept as they are."""
    ini = tmp_path / "s.ini"
    r = xdconfig("set", ini, f"trace={value}")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = xdconfig("json", ini)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["trace"] == value


def test_set_says_when_it_drops_comments(tmp_path):
    ini = tmp_path / "c.ini"
    ini.write_text("; why this file\n[local] ; the local keys\n# tuned by hand\n"
                   "async = sync ; measured\nbase_directory = /a;b\n")
    r = xdconfig("set", ini, "cache_size=2m")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and str(ini) in lines[0] and "4 comment lines not kept" in lines[0], lines
    text = ini.read_text()
    assert "why this file" not in text and "base_directory = /a;b" in text and "async = sync" in text
    # the header set writes is no comment of the user's: the next set says nothing
    r = xdconfig("set", ini, "cache_size=4m")
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("given,want", [(None, 0o644), ("0640", 0o640)])
def test_set_keeps_the_mode_of_the_file_it_replaces(tmp_path, given, want):
    """A config a service reads (0644) stayed readable only until the first
    set, which made it 0600: the replaced file's mode is kept unless
    config_file_mode is set (in the file or on the command line)."""
    ini = tmp_path / "m.ini"
    ini.write_text("[local]\nread_ahead_kb = 64\n")
    ini.chmod(0o644)
    sets = ["read_ahead_kb=256"] + ([f"config_file_mode={given}"] if given else [])
    r = xdconfig("set", ini, *sets)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert ini.stat().st_mode & 0o7777 == want, oct(ini.stat().st_mode)
    assert "read_ahead_kb = 256" in ini.read_text()
