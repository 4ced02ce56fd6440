"""build/xdconfig's command line and output: --help, and standard output
that cannot be written. Bad command lines, one line each, are rows of
tests/e2e/test_bad_input.py; the health check is tests/e2e/test_health.py."""
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
