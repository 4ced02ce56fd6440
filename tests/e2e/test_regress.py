"""scripts/regress.sh (`make regress`) end to end: real builds, real fio runs,
real `xdreport compare`.

A build with -DXD_TEST_DELAY_NS=20000 spins 20 us on every request (the hook
in backends/layers/stats.c); against it the check must fail with exit 1 and
a JUnit failure per workload. Against itself the engine must pass.

Settings, shared by every run so that together the tests show they separate
a slowdown from no change: 5 runs a side, alpha 0.01 (with 5 runs a side
only complete separation, exact p = 2/252 = 0.0079, is significant) and a
25% threshold. Identical engines are then flagged in a row with probability
below 1/252 even on a machine so busy that single runs vary by 30% (their
medians rarely differ by 25%); the delayed engine is about ten times slower,
so the wide margin costs no power.
"""
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET

import pytest

from conftest import REPO, _disk_base

WORKLOADS = ["randread-qd1-shm", "mmap-randread-disk"]
SETTINGS = {
    "REGRESS_REPS": "5",
    "REGRESS_RUNTIME": "700ms",
    "REGRESS_ALPHA": "0.01",
    "REGRESS_THRESHOLD": "25",
    "REGRESS_JOBS": " ".join(f"jobs/regress/{w}.fio" for w in WORKLOADS),
}
DELAY = "-DXD_TEST_DELAY_NS=20000"


def regress(out, shm, disk, **env):
    """Run scripts/regress.sh with SETTINGS plus env; results go to out."""
    e = {k: v for k, v in os.environ.items()
         if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "BASE", "BASELINE", "BASE_ENGINE",
                      "NEW_CFLAGS") and not k.startswith("REGRESS_")}
    e.update(SETTINGS, REGRESS_OUT=str(out), REGRESS_SHM_DIR=str(shm), REGRESS_DISK_DIR=str(disk))
    e.update(env)
    p = subprocess.run(["bash", "scripts/regress.sh"], cwd=REPO, env=e, capture_output=True,
                       text=True, timeout=600)
    return p, f"rc={p.returncode}\n--- stdout ---\n{p.stdout}\n--- stderr ---\n{p.stderr}"


def junit_cases(path):
    root = ET.parse(path).getroot()
    return {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}


def iops_ratio(stdout, workload):
    m = re.search(rf"^{re.escape(workload)}\s+read_iops\s+\S+\s+\S+\s+\S+\s+([0-9.]+)\s", stdout, re.M)
    assert m, f"no read_iops row for {workload}:\n{stdout}"
    return float(m[1])


@pytest.fixture(scope="module")
def aa_run(engine, tmp_path_factory):
    """The working tree's engine against itself: BASE_ENGINE is NEW's file."""
    base = _disk_base()
    if not base:
        pytest.fail("no disk file system among $XD_E2E_DISK, $TMPDIR, /var/tmp, build/")
    disk = tempfile.mkdtemp(prefix="xd-e2e-", dir=base)
    out = tmp_path_factory.mktemp("regress-aa") / "out"
    try:
        p, where = regress(out, "/dev/shm", disk, BASE_ENGINE=str(REPO / "build" / "xdevice.so"))
    finally:
        shutil.rmtree(disk, ignore_errors=True)
    return out, p, where


def test_delay_is_a_regression(engine, tmp_path, disk_dir):
    """NEW_CFLAGS builds a 20 us/request slower engine into build/new; the
    baseline is HEAD, built from a clean export into build/base."""
    out = tmp_path / "out"
    p, where = regress(out, "/dev/shm", disk_dir, NEW_CFLAGS=DELAY)
    assert p.returncode == 1, where
    assert "REGRESSION" in p.stdout, where
    cases = junit_cases(out / "junit.xml")
    for w in WORKLOADS:
        case = cases.get((w, "read_iops"))
        assert case is not None, f"no JUnit testcase for {w}/read_iops\n{where}"
        assert case.find("failure") is not None, f"{w}/read_iops did not fail\n{where}"
        assert iops_ratio(p.stdout, w) < 0.5, where
    # mmap reports real completion latencies: they must be judged too
    assert cases[("mmap-randread-disk", "read_clat_mean")].find("failure") is not None, where
    # interleaved runs, 5 a side per workload, in the documented places
    for side in ("base", "new"):
        files = sorted(f.name for f in (out / side).iterdir())
        assert len(files) == 10 and all(f.endswith(".json") for f in files), (side, files)
    assert (out / "metrics.txt").read_text().endswith("# EOF\n")
    run = (out / "run.txt").read_text()
    assert DELAY in run and "base: HEAD" in run, run
    assert (REPO / "build" / "base" / "src" / "build" / "xdevice.so").is_file()
    assert (REPO / "build" / "new" / "xdevice.so").is_file()


def test_same_engine_is_no_regression(aa_run):
    out, p, where = aa_run
    assert p.returncode == 0, where
    assert "no regression" in p.stdout, where
    cases = junit_cases(out / "junit.xml")
    assert not [k for k, c in cases.items() if c.find("failure") is not None], where
    for w in WORKLOADS:
        assert (w, "read_iops") in cases, where
        assert 0.5 < iops_ratio(p.stdout, w) < 2, where


def test_saved_baseline(aa_run, tmp_path, disk_dir):
    """BASELINE=DIR compares with saved results: the same-engine run's
    results against the delayed build (5 new runs of one workload)."""
    base = aa_run[0] / "new"
    assert base.is_dir(), aa_run[2]
    out = tmp_path / "out"
    p, where = regress(out, "/dev/shm", disk_dir, BASELINE=str(base), NEW_CFLAGS=DELAY,
                       REGRESS_JOBS=f"jobs/regress/{WORKLOADS[0]}.fio")
    assert p.returncode == 1, where
    assert not (out / "base").exists(), where
    assert len(list((out / "new").iterdir())) == 5, where
    case = junit_cases(out / "junit.xml")[(WORKLOADS[0], "read_iops")]
    assert case.find("failure") is not None, where


def test_bad_settings_exit_2(tmp_path):
    p, where = regress(tmp_path / "out", "/dev/shm", tmp_path, BASE="no-such-ref-xyz")
    assert p.returncode == 2, where
    assert p.stderr.strip().splitlines()[-1] == \
        "regress: BASE=no-such-ref-xyz is not a commit in this repository", where
    p, where = regress(tmp_path / "out", "/dev/shm", tmp_path, REGRESS_REPS="many")
    assert p.returncode == 2 and "REGRESS_REPS=many" in p.stderr, where
