"""Scratch paths: one variable, XDEVICE_SCRATCH, places every file the
shipped jobs, scripts and README examples make; nothing is left in the
working directory.

The grep test reads jobs/, scripts/ and README.md for fixed names under
/tmp, /var/tmp or /dev/shm (mktemp templates are fine: their names are made
fresh) and for defaults (${X:-/var/tmp}) that ignore XDEVICE_SCRATCH. The
run test runs shipped jobs, cut to a few MiB, with XDEVICE_SCRATCH a fresh
directory and the working directory another, and checks where files land.
"""
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import IO_URING_REFUSED, REPO

FIXED = re.compile(r"(?<![\w}$])/(?:var/tmp|tmp|dev/shm)/[\w][\w.-]*")
DEFAULT = re.compile(r"\$\{(\w+):-(/var/tmp|/tmp)\b")
# Owned by other changes in flight (issue 17 items 1 and 7): the lines that
# still need XDEVICE_SCRATCH there are listed in that work's report.
PENDING = set()


def scanned():
    files = [REPO / "README.md"]
    for top in ("jobs", "scripts"):
        files += [p for p in sorted((REPO / top).rglob("*")) if p.is_file()]
    return files


def line_offences(line):
    """Fixed names under /tmp, /var/tmp, /dev/shm (not mktemp templates, nor
    a pattern the library documents, such as /dev/shm/xdevice-UID), and
    ${X:-/var/tmp} defaults other than XDEVICE_SCRATCH's own."""
    out = [m.group(0) for m in FIXED.finditer(line)
           if "XXXXXX" not in m.group(0) and not re.search(r"[A-Z]{3}", m.group(0))]
    out += [f"${{{m.group(1)}:-{m.group(2)}}} ignores XDEVICE_SCRATCH"
            for m in DEFAULT.finditer(line) if m.group(1) != "XDEVICE_SCRATCH"]
    return out


def offences(path):
    return [f"{path.relative_to(REPO)}:{n}: {o}: {line.strip()}"
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
            for o in line_offences(line)]


def test_no_fixed_scratch_paths():
    bad = []
    for p in scanned():
        if str(p.relative_to(REPO)) not in PENDING:
            bad += offences(p)
    assert not bad, "fixed scratch paths (use $XDEVICE_SCRATCH):\n" + "\n".join(bad)


def test_the_grep_finds_what_it_looks_for():
    """The patterns catch the kinds of path this change removed, and pass
    the forms that replace them."""
    assert line_offences("xd_stats=/tmp/xdevice-regular.stats.json") == \
        ["/tmp/xdevice-regular.stats.json"]
    assert line_offences("filename=/var/tmp/try.dat") == ["/var/tmp/try.dat"]
    assert line_offences("DIR=${BENCH_DIR:-/var/tmp}") == ["${BENCH_DIR:-/var/tmp} ignores XDEVICE_SCRATCH"]
    for fine in ["d=$(mktemp -d /dev/shm/xdevice-bench.XXXXXX)",
                 "DIR=${BENCH_DIR:-${XDEVICE_SCRATCH:-/var/tmp}}",
                 "xd_stats=${XDEVICE_SCRATCH}/xdevice-regular.stats.json",
                 "otherwise the private /dev/shm/xdevice-UID", "a sticky one like /tmp"]:
        assert line_offences(fine) == [], fine


def shipped(name, engine, size="4m"):
    """A jobs/ file as shipped, its engine absolute, the INI files it names
    from the repo, sizes and runtimes cut."""
    text = (REPO / "jobs" / name).read_text()
    assert "${XDEVICE_SCRATCH}" in text, name
    text = text.replace("external:build/xdevice.so", f"external:{engine}")
    text = text.replace("xd_config=jobs/", f"xd_config={REPO}/jobs/")
    text = re.sub(r"^size=\d+[kmg]$", f"size={size}", text, flags=re.M)
    return re.sub(r"^runtime=\d+$", "runtime=0.3", text, flags=re.M)


def run_job(text, scratch, cwd, jobdir):
    job = Path(jobdir) / "job.fio"
    job.write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "XDEVICE_SCRATCH"}
    if scratch:
        env["XDEVICE_SCRATCH"] = str(scratch)
    return subprocess.run(["fio", "--output-format=json", f"--output={jobdir}/out.json", str(job)],
                          cwd=str(cwd), env=env, capture_output=True, text=True, timeout=180)


JOBS = {  # job: files it must leave in XDEVICE_SCRATCH
    "regular.fio": ["xdevice-regular.dat", "xdevice-regular.stats.json"],
    "cache.fio": ["xdevice-cache.dat", "xdevice-cache.stats.json", "xdevice-cache.trace"],
    "recovery.fio": ["xdevice-recovery.dat", "xdevice-recovery.stats.json",
                     "xdevice-mirror/xdevice-recovery.dat"],
    "tune-live.fio": ["xdevice-tune-live.dat", "xdtune-live.stats.json",
                      "xdtune-live.stats.json.jsonl"],
}


@pytest.mark.parametrize("name", sorted(JOBS))
def test_job_files_land_in_scratch(engine, name):
    with tempfile.TemporaryDirectory(dir="/var/tmp") as scratch, \
            tempfile.TemporaryDirectory() as cwd, tempfile.TemporaryDirectory() as jobdir:
        scratch = Path(scratch)
        if name == "recovery.fio":
            (scratch / "xdevice-mirror").mkdir()
        if name == "tune-live.fio":
            (scratch / "xdtune-live.ini").write_text((REPO / "jobs" / "tune-live.ini").read_text())
        text = shipped(name, engine)
        inis = [Path(m) for m in re.findall(r"^xd_config=(\S+)$", text, re.M)]
        if IO_URING_REFUSED and any("io_uring" in t for t in [text] + [i.read_text() for i in inis
                                                                     if i.is_file()]):
            pytest.skip(f"{name} uses io_uring: {IO_URING_REFUSED}")
        r = run_job(text, scratch, cwd, jobdir)
        assert r.returncode == 0, r.stdout + r.stderr
        missing = [f for f in JOBS[name] if not (scratch / f).is_file()]
        assert not missing, (missing, sorted(os.listdir(scratch)))
        assert os.listdir(cwd) == [], f"left in the working directory: {os.listdir(cwd)}"


def test_unset_scratch_is_refused(engine):
    """Without XDEVICE_SCRATCH fio refuses the job before it writes anything."""
    with tempfile.TemporaryDirectory() as cwd, tempfile.TemporaryDirectory() as jobdir:
        r = run_job(shipped("regular.fio", engine), None, cwd, jobdir)
        assert r.returncode != 0
        assert "directory=${XDEVICE_SCRATCH}" in r.stdout + r.stderr, r.stdout + r.stderr
        assert os.listdir(cwd) == []
        assert not os.path.exists("/xdevice-regular.stats.json")
