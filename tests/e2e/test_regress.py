"""scripts/regress.sh (`make regress`) end to end: real builds, real fio runs,
real `xdreport compare`.

Quick (make test): bad settings exit 2 naming the setting; rows left
inconclusive by too few runs are re-run (confirmation rounds) and, still
undecided after the budget, give exit 3 with the gated rows named, never a
pass, and the rows that are not gated shown as informational.

The gate's proofs take minutes and run with XD_REGRESS_SELFTEST=1 (`make
regress-selftest`), with the gate's settings (GATE: 10 rounds of 1 s,
threshold 10%, alpha 0.05, up to 2 confirmations) on randread-qd1-shm:
- a build slowed by 20%: a build with -DXD_TEST_DELAY_NS=N spins N ns on
  every request (the hook in backends/layers/stats.c, compiled out of
  normal builds); N is a quarter of the request time measured here first,
  so IOPS drop to 1/(1 + 1/4) = 80%. It must give exit 1, with an IOPS
  ratio near 0.8.
- an A/A run (the engine against itself) must give exit 0: every gated
  row decided "same", after confirmation runs where needed.
- the older checks: a build 20 us/request slower against HEAD built from
  git, and a saved BASELINE directory (unpaired).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET

import pytest

from conftest import REPO, _disk_base, needs_io_uring

selftest = pytest.mark.skipif(not os.environ.get("XD_REGRESS_SELFTEST"),
                              reason="minutes of real runs: make regress-selftest (XD_REGRESS_SELFTEST=1)")

WORKLOADS = ["randread-qd1-shm", "mmap-randread-disk"]
SETTINGS = {
    # 7 rounds: one more than the fewest with which alpha 0.05 over 2 gated
    # rows (each workload's median latency) leaves a paired interval at all
    "REGRESS_REPS": "7",
    "REGRESS_RUNTIME": "300ms",  # a 20 us/request delay halves IOPS: short runs show it
    "REGRESS_ALPHA": "0.05",
    "REGRESS_THRESHOLD": "25",
    "REGRESS_JOBS": " ".join(f"jobs/regress/{w}.fio" for w in WORKLOADS),
    "REGRESS_CONFIRM": "0",  # these older checks judge their 5 runs once
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


@selftest
def test_delay_is_a_regression(engine, tmp_path, disk_dir):
    """NEW_CFLAGS builds a 20 us/request slower engine into build/new; the
    baseline is HEAD, built from a clean export into build/base."""
    out = tmp_path / "out"
    p, where = regress(out, "/dev/shm", disk_dir, NEW_CFLAGS=DELAY)
    assert p.returncode == 1, where
    assert "REGRESSION" in p.stdout, where
    cases = junit_cases(out / "junit.xml")
    for w in WORKLOADS:
        case = cases.get((w, "read_lat_p50"))  # the gated row
        assert case is not None, f"no JUnit testcase for {w}/read_lat_p50\n{where}"
        assert case.find("failure") is not None, f"{w}/read_lat_p50 did not fail\n{where}"
        assert iops_ratio(p.stdout, w) < 0.5, where
        # IOPS are shown, not gated
        assert cases[(w, "read_iops")].find("skipped").get("message").startswith("informational: "), where
    # interleaved runs, REPS a side per workload, in the documented places
    reps = int(SETTINGS["REGRESS_REPS"])
    for side in ("base", "new"):
        files = sorted(f.name for f in (out / side).iterdir())
        assert len(files) == 2 * reps and all(f.endswith(".json") for f in files), (side, files)
    assert (out / "metrics.txt").read_text().endswith("# EOF\n")
    run = (out / "run.txt").read_text()
    assert DELAY in run and "base: HEAD" in run, run
    assert (REPO / "build" / "base" / "src" / "build" / "xdevice.so").is_file()
    assert (REPO / "build" / "new" / "xdevice.so").is_file()


@selftest
def test_same_engine_is_no_regression(aa_run):
    """No false alarm (the strict A/A, exit 0, is test_gate_passes_an_aa_run)."""
    out, p, where = aa_run
    assert p.returncode in (0, 3), where
    assert "REGRESSION" not in p.stdout and "no regression" in p.stdout, where
    cases = junit_cases(out / "junit.xml")
    assert not [k for k, c in cases.items() if c.find("failure") is not None], where
    for w in WORKLOADS:
        assert (w, "read_iops") in cases, where
        assert 0.5 < iops_ratio(p.stdout, w) < 2, where


@selftest
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
    assert len(list((out / "new").iterdir())) == int(SETTINGS["REGRESS_REPS"]), where
    case = junit_cases(out / "junit.xml")[(WORKLOADS[0], "read_iops")]
    assert case.find("failure") is not None, where


def test_bad_settings_exit_2(tmp_path):
    p, where = regress(tmp_path / "out", "/dev/shm", tmp_path, BASE="no-such-ref-xyz")
    assert p.returncode == 2, where
    assert p.stderr.strip().splitlines()[-1] == \
        "regress: BASE=no-such-ref-xyz is not a commit in this repository", where
    p, where = regress(tmp_path / "out", "/dev/shm", tmp_path, REGRESS_REPS="many")
    assert p.returncode == 2 and "REGRESS_REPS=many" in p.stderr, where
    p, where = regress(tmp_path / "out", "/dev/shm", tmp_path, REGRESS_CONFIRM="-1")
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1] == \
        "regress: REGRESS_CONFIRM=-1: a whole number of confirmation rounds from 0", where
    p, where = regress(tmp_path / "out", "/dev/shm", tmp_path, REGRESS_ALPHA="0.7")
    assert p.returncode == 2 and "REGRESS_ALPHA=0.7" in p.stderr, where


def test_every_job_reports_total_latency():
    """lat_percentiles=1: no row is left to fio's bookkeeping-only clat."""
    for job in (REPO / "jobs" / "regress").glob("*.fio"):
        assert re.search(r"^lat_percentiles=1$", job.read_text(), re.M), job


@needs_io_uring
def test_inconclusive_rows_are_confirmed_then_exit_3(engine, tmp_path, disk_dir):
    """2 runs a side cannot decide anything; one confirmation round adds a
    third, still too few for --min-runs 5: exit 3 naming the rows."""
    out = tmp_path / "out"
    job = WORKLOADS[0]
    p, where = regress(out, "/dev/shm", disk_dir, BASE_ENGINE=str(REPO / "build" / "xdevice.so"),
                       REGRESS_JOBS=f"jobs/regress/{job}.fio", REGRESS_REPS="2",
                       REGRESS_RUNTIME="100ms", REGRESS_CONFIRM="1", REGRESS_CONFIRM_REPS="1")
    assert p.returncode == 3, where
    assert f"regress: confirmation 1 of 1: 1 more round(s) of jobs/regress/{job}.fio" in p.stderr, where
    last = p.stderr.strip().splitlines()[-1]
    # the gated row (total latency's median) is named; the rest are shown,
    # never judged
    assert last.startswith(f"regress: INCONCLUSIVE after 1 confirmation round(s): {job}/read_lat_p50; "), where
    for metric in ("read_iops", "read_bw", "read_lat_mean", "read_lat_p99"):
        assert re.search(rf"^{re.escape(job)}\s+{metric}\s.*\binformational \(not gated: ",
                         p.stdout, re.M), (metric, where)
    for side in ("base", "new"):
        assert sorted(f.name for f in (out / side).iterdir()) == \
            [f"{job}-r0{k}.json" for k in (1, 2, 3)], where
    assert (out / "exit-status").read_text() == "3\n"
    assert "no regression shown" in p.stdout and "no regression beyond" not in p.stdout, where
    cases = junit_cases(out / "junit.xml")
    assert cases and all(c.find("skipped") is not None for c in cases.values()), where


def delay_for_20pct(disk):
    """A quarter of one request's time on this machine: the delay that
    takes IOPS of a queue-depth-1 job to 80%. Measured as the gate runs
    (1 s runs, each on one CPU, the CPUs taken in turn), from the fastest
    of five: someone else's load while measuring only makes runs slower,
    and a median of five still measured 7 us where the gate then ran at
    3.5 us (a 37% slower build tested, not 20%). On a CPU found a third
    slower the same delay is a 15% slowdown: never more than 20%."""
    job = REPO / "jobs" / "regress" / f"{WORKLOADS[0]}.fio"
    shm = tempfile.mkdtemp(prefix="xd-regress-", dir="/dev/shm")  # the job's file goes with it
    env = dict(os.environ, XD_ENGINE=str(REPO / "build" / "xdevice.so"), XD_REGRESS_SHM=shm,
               XD_REGRESS_DISK=str(disk), XD_REGRESS_RUNTIME="1s")
    pin = ["taskset", "-c"] if shutil.which("taskset") else []
    rates = []
    try:
        for k in range(5):
            cpu = [str(k % (os.cpu_count() or 1))] if pin else []
            p = subprocess.run([*pin, *cpu, "fio", "--output-format=json", str(job)], env=env,
                               capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, p.stdout + p.stderr
            rates.append(json.loads(p.stdout[p.stdout.index("{"):])["jobs"][0]["read"]["iops"])
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    return int(1e9 / max(rates) / 4)


GATE = {"REGRESS_JOBS": f"jobs/regress/{WORKLOADS[0]}.fio", "REGRESS_REPS": "10",
        "REGRESS_RUNTIME": "1s", "REGRESS_THRESHOLD": "10", "REGRESS_ALPHA": "0.05",
        "REGRESS_CONFIRM": "2"}


@selftest
def test_gate_catches_a_20pct_slower_build(engine, tmp_path, disk_dir):
    delay = delay_for_20pct(disk_dir)
    out = tmp_path / "out"
    p, where = regress(out, "/dev/shm", disk_dir, BASE_ENGINE=str(REPO / "build" / "xdevice.so"),
                       NEW_CFLAGS=f"-DXD_TEST_DELAY_NS={delay}", **GATE)
    where = f"delay {delay} ns\n{where}"
    assert p.returncode == 1, where
    assert re.search(rf"^REGRESSION: .*{WORKLOADS[0]}/read_", p.stdout, re.M), where
    failed = [k for k, c in junit_cases(out / "junit.xml").items() if c.find("failure") is not None]
    assert failed, where
    # the case tested is a build about 20% slower, not a far slower one
    # (15-20% as the rounds find the CPUs; stalls dilute it further)
    assert 0.72 < iops_ratio(p.stdout, WORKLOADS[0]) < 0.92, where
    assert (out / "exit-status").read_text() == "1\n"
    print(f"20% slower build (delay {delay} ns): {gate_summary(out, p)}")


def gate_summary(out, p):
    """One line of what the gate saw, printed for make regress-selftest's log
    (-rP): the rounds run, the IOPS ratio and the gated row's interval."""
    m = re.search(rf"^{re.escape(WORKLOADS[0])}\s+read_lat_p50\s+(\S+)\s.*?([0-9.]+)\s+(\[[^]]*\])\s+\S+\s+(.*)$",
                  p.stdout, re.M)
    rounds = len(list((out / "base").iterdir()))
    return (f"exit {p.returncode} after {rounds} rounds; read_iops ratio "
            f"{iops_ratio(p.stdout, WORKLOADS[0]):.3f}; read_lat_p50 ratio {m[2]} {m[3]}: {m[4]}")


def base_iops_spread(out):
    """Coefficient of variation of BASE's IOPS: how noisy this machine is now."""
    rates = [json.loads(f.read_text())["jobs"][0]["read"]["iops"] for f in (out / "base").iterdir()]
    mean = sum(rates) / len(rates)
    return (sum((r - mean) ** 2 for r in rates) / (len(rates) - 1)) ** 0.5 / mean


@selftest
def test_gate_passes_an_aa_run(engine, tmp_path, disk_dir):
    """The engine against itself: exit 0, every gated row "same" within
    10%, though single runs here vary by far more than that: the paired
    rounds cancel the load both sides of a round saw."""
    out = tmp_path / "out"
    p, where = regress(out, "/dev/shm", disk_dir, BASE_ENGINE=str(REPO / "build" / "xdevice.so"), **GATE)
    where = (f"single runs vary by {base_iops_spread(out):.0%} (load average "
             f"{os.getloadavg()[0]:.1f})\n{where}") if (out / "base").is_dir() else where
    assert p.returncode == 0, where
    assert "no regression beyond 10%" in p.stdout and "INCONCLUSIVE" not in p.stdout, where
    assert (out / "exit-status").read_text() == "0\n"
    print(f"A/A ({where.splitlines()[0]}): {gate_summary(out, p)}")
