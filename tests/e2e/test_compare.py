"""xdreport compare on synthetic fio-shaped JSON with known differences.

The documents have the fields of fio 3.33's --output-format=json that the
comparison reads; values are drawn from seeded generators so every outcome
is fixed. xdreport is $XD_XDREPORT, default <repo>/build/xdreport; missing is
a failure, never a skip.
"""
import json
import math
import os
import random
import re
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO

METRICS = ["iops", "bw", "clat_mean", "clat_p50", "clat_p99"]


def xdreport_path() -> Path:
    return Path(os.environ.get("XD_XDREPORT") or REPO / "build" / "xdreport").resolve()


@pytest.fixture(scope="module")
def xdreport():
    p = xdreport_path()
    if not os.access(p, os.X_OK):
        pytest.fail(f"xdreport not found at {p}: run `make build/xdreport`", pytrace=False)
    return str(p)


def _ddir(iops=0.0, lat_ns=0.0, runtime_ms=2000, bs=4096):
    ios = int(iops * runtime_ms / 1000)
    pct = {f"{p:f}": int(lat_ns * f) for p, f in [(1, 0.5), (50, 1.0), (90, 1.3), (99, 2.0), (99.9, 3.0)]}
    return {
        "io_bytes": ios * bs, "io_kbytes": ios * bs // 1024, "bw_bytes": int(iops * bs),
        "bw": int(iops * bs / 1024), "iops": iops, "runtime": runtime_ms if ios else 0,
        "total_ios": ios, "short_ios": 0, "drop_ios": 0,
        "clat_ns": {"min": int(lat_ns / 2), "max": int(lat_ns * 5), "mean": lat_ns,
                    "stddev": lat_ns / 4, "N": ios, "percentile": pct if ios else {}},
    }


def fio_doc(jobs, ts=1700000000, options=None):
    """jobs: [(name, read_iops, read_lat_ns, write_iops, write_lat_ns)];
    options: the jobs' "job options" (rw=randrw bs=4k by default)"""
    out = []
    for name, riops, rlat, wiops, wlat in jobs:
        out.append({
            "jobname": name, "groupid": 0, "error": 0,
            "job options": dict(options or {"rw": "randrw", "bs": "4k"}),
            "read": _ddir(riops, rlat), "write": _ddir(wiops, wlat), "trim": _ddir(),
            "sync": {"total_ios": 0},
        })
    return {"fio version": "fio-3.33", "timestamp": ts, "timestamp_ms": ts * 1000, "time": "x",
            "jobs": out}


def write_runs(d: Path, runs, noise, seed, factor=1.0, workloads=("randread", "mixed")):
    """runs documents; each workload's IOPS scaled by factor, latency by 1/factor,
    both with relative gaussian noise."""
    rng = random.Random(seed)
    d.mkdir(parents=True, exist_ok=True)
    for r in range(runs):
        jobs = []
        for w in workloads:
            f = factor * (1 + rng.gauss(0, noise))
            if w == "mixed":
                jobs.append((w, 30000 * f, 60000 / f, 10000 * f, 90000 / f))
            else:
                jobs.append((w, 100000 * f, 9500 / f, 0, 0))
        (d / f"run-{r:02d}.json").write_text(json.dumps(fio_doc(jobs, 1700000000 + r)))
    return d


def compare(xdreport, base, new, *opts):
    p = subprocess.run([xdreport, "compare", *map(str, opts), str(base), str(new)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode >= 0, f"xdreport killed by signal {-p.returncode}\n{p.stderr}"
    return p


def rows(stdout):
    """{(workload, metric): (ratio or None, verdict)} from the table."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\S+)\s+((?:read|write)_\w+)\s+\d+/\d+\s+\S+\s+\S+\s+(\S+)\s+.*?"
                     r"\s(regression|improvement|same|inconclusive|informational)\b", line)
        if m:
            out[(m[1], m[2])] = (None if m[3] == "-" else float(m[3]), m[4])
    return out


def test_regression_20pct_slower(xdreport, tmp_path):
    base = write_runs(tmp_path / "base", 7, 0.01, seed=1)
    new = write_runs(tmp_path / "new", 7, 0.01, seed=2, factor=0.8)
    junit, om = tmp_path / "junit.xml", tmp_path / "metrics.txt"
    p = compare(xdreport, base, new, "--junit", junit, "--metrics", om)
    assert p.returncode == 1, p.stdout + p.stderr
    r = rows(p.stdout)
    assert len(r) == 15, p.stdout  # randread: 5 read metrics; mixed: 5 read + 5 write
    for key in [("randread", "read_iops"), ("randread", "read_clat_p99"), ("mixed", "write_bw")]:
        ratio, verdict = r[key]
        assert verdict == "regression", f"{key}: {p.stdout}"
    assert abs(r[("randread", "read_iops")][0] - 0.8) < 0.03
    assert abs(r[("randread", "read_clat_mean")][0] - 1.25) < 0.04
    assert "REGRESSION:" in p.stdout

    suite = ET.parse(junit).getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) == 15
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert ("randread", "read_iops") in failed and ("mixed", "write_clat_mean") in failed
    assert int(suite.get("failures")) == len(failed) > 0

    text = om.read_text()
    assert text.endswith("# EOF\n")
    m = re.search(r'^xdevice_compare_ratio\{workload="randread",metric="read_iops"\} (\S+)$', text, re.M)
    assert m and abs(float(m[1]) - 0.8) < 0.03, text[:2000]
    assert re.search(r'^xdevice_compare_verdict\{workload="randread",metric="read_iops",'
                     r'xdevice_compare_verdict="regression"\} 1$', text, re.M)
    assert re.search(r"^xdevice_compare_regressions (\d+)$", text, re.M)[1] == str(len(failed))
    # every sample line is NAME{labels} VALUE or NAME VALUE, every family typed once
    typed = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert name not in typed
            typed.add(name)
        elif not line.startswith("#"):
            assert re.match(r'^[a-z_]+(\{[^}]*\})? (NaN|[+-]Inf|-?[0-9.e+-]+)$', line), line
            assert line.split("{")[0].split()[0] in typed


def test_improvement(xdreport, tmp_path):
    base = write_runs(tmp_path / "base", 6, 0.01, seed=3)
    new = write_runs(tmp_path / "new", 6, 0.01, seed=4, factor=1.25)
    p = compare(xdreport, base, new)
    assert p.returncode == 0, p.stdout + p.stderr
    r = rows(p.stdout)
    assert r[("randread", "read_iops")][1] == "improvement"
    assert r[("mixed", "write_clat_p50")][1] == "improvement"
    assert all(v != "regression" for _, v in r.values()), p.stdout


@pytest.mark.parametrize("seed", range(8))
def test_noise_is_never_a_regression(xdreport, tmp_path, seed):
    base = write_runs(tmp_path / "base", 5, 0.02, seed=100 + seed)
    new = write_runs(tmp_path / "new", 5, 0.02, seed=200 + seed)
    p = compare(xdreport, base, new)
    verdicts = [v for _, v in rows(p.stdout).values()]
    assert len(verdicts) == 15 and "regression" not in verdicts, p.stdout
    # an undecided row is never passed off as "no regression": exit 3 names it
    if "inconclusive" in verdicts:
        assert p.returncode == 3, p.stdout + p.stderr
        assert "INCONCLUSIVE: " in p.stdout and "no evidence either way" in p.stdout, p.stdout
        assert "no regression beyond" not in p.stdout, p.stdout
    else:
        assert p.returncode == 0, p.stdout + p.stderr


def test_small_noise_is_same(xdreport, tmp_path):
    base = write_runs(tmp_path / "base", 8, 0.002, seed=5)
    new = write_runs(tmp_path / "new", 8, 0.002, seed=6)
    p = compare(xdreport, base, new)
    assert p.returncode == 0, p.stdout + p.stderr
    assert {v for _, v in rows(p.stdout).values()} == {"same"}, p.stdout


def test_too_few_runs_is_inconclusive(xdreport, tmp_path):
    base = write_runs(tmp_path / "base", 3, 0.01, seed=7)
    new = write_runs(tmp_path / "new", 3, 0.01, seed=8, factor=0.5)
    junit = tmp_path / "junit.xml"
    p = compare(xdreport, base, new, "--junit", junit)
    assert p.returncode == 3, p.stdout + p.stderr
    r = rows(p.stdout)
    assert {v for _, v in r.values()} == {"inconclusive"}, p.stdout
    assert "fewer than 5 runs" in p.stdout
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert cases and all(c.find("skipped") is not None for c in cases)
    # --min-runs 3 lets them be judged, but 3 runs a side can never reach
    # p < 0.05 (the smallest two-sided p is 2/20 = 0.1)
    p = compare(xdreport, base, new, "--min-runs", 3)
    assert p.returncode == 3, p.stdout
    r = rows(p.stdout)
    assert r[("randread", "read_iops")][1] == "inconclusive" and " 0.1000 " in p.stdout, p.stdout
    assert "smallest possible p is 0.1, not below alpha 0.05" in p.stdout, p.stdout
    warn = "15 row(s) have too few runs to reach p < 0.05 at all; at least 4 runs a side are needed"
    assert f"warning: {warn}" in p.stdout, p.stdout
    assert p.stderr.strip() == f"xdreport compare: warning: {warn}", p.stderr


def test_exact_p_for_separated_samples(xdreport, tmp_path):
    """5 runs a side, every NEW below every BASE: the exact two-sided p is
    2/252 = 0.0079 (the normal approximation would say 0.0122)."""
    base = write_runs(tmp_path / "base", 5, 0.001, seed=9, workloads=("randread",))
    new = write_runs(tmp_path / "new", 5, 0.001, seed=10, factor=0.9, workloads=("randread",))
    p = compare(xdreport, base, new)
    assert p.returncode == 1
    line = next(ln for ln in p.stdout.splitlines() if " read_iops " in ln)
    assert " 0.0079 " in line and "regression" in line, line
    # a significant 10% drop within a 15% threshold, its CI inside +-15%, is "same"
    p = compare(xdreport, base, new, "--threshold", 15)
    assert p.returncode == 0, p.stdout
    assert rows(p.stdout)[("randread", "read_iops")][1] == "same", p.stdout


def test_last_document_of_a_stream_counts(xdreport, tmp_path):
    """A --status-interval file is one run: its cumulative last document."""
    base = write_runs(tmp_path / "base", 5, 0.01, seed=11, workloads=("randread",))
    new = tmp_path / "new"
    new.mkdir()
    rng = random.Random(12)
    for r in range(5):
        f = 1 + rng.gauss(0, 0.01)
        early = json.dumps(fio_doc([("randread", 1000 * f, 950000 / f, 0, 0)]), indent=1)
        final = json.dumps(fio_doc([("randread", 100000 * f, 9500 / f, 0, 0)]), indent=1)
        (new / f"run-{r}.json").write_text(early + "\n" + final + "\n")
    p = compare(xdreport, base, new)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "(5 runs)" in p.stdout
    ratio, verdict = rows(p.stdout)[("randread", "read_iops")]
    assert abs(ratio - 1) < 0.03 and verdict != "regression", p.stdout


def test_list_file_and_jobs_sharing_a_name(xdreport, tmp_path):
    """A list file names the runs; two jobs named alike in one document are
    one workload (their IOPS add up; without json+ bins their percentiles
    cannot be pooled, so those rows are not judged)."""
    base = write_runs(tmp_path / "base", 5, 0.005, seed=13, workloads=("randread",))
    listing = tmp_path / "base.list"
    listing.write_text("# base runs\n" + "".join(f"base/{f.name}\n" for f in sorted(base.iterdir())))
    new = tmp_path / "new"
    new.mkdir()
    rng = random.Random(14)
    for r in range(5):
        f = 1 + rng.gauss(0, 0.005)
        doc = fio_doc([("randread", 50000 * f, 9500 / f, 0, 0), ("randread", 50000 * f, 9500 / f, 0, 0)])
        (new / f"run-{r}.json").write_text(json.dumps(doc))
    p = compare(xdreport, listing, new)
    assert p.returncode == 3, p.stdout + p.stderr
    r = rows(p.stdout)
    assert len(r) == 5
    assert abs(r[("randread", "read_iops")][0] - 1) < 0.02, p.stdout
    assert r[("randread", "read_iops")][1] == "same", p.stdout
    assert r[("randread", "read_clat_mean")][1] == "same", p.stdout
    assert r[("randread", "read_clat_p99")][1] == "inconclusive", p.stdout
    assert "I/O-weighted mean of their p99s" in p.stdout, p.stdout


def test_list_file_names_its_missing_entry(xdreport, tmp_path):
    base = write_runs(tmp_path / "base", 5, 0.005, seed=13, workloads=("randread",))
    names = [f"base/{f.name}" for f in sorted(base.iterdir())]
    listing = tmp_path / "base.list"
    listing.write_text("# base runs\n" + "\n".join(names[:2] + ["base/gone.json"] + names[2:]) + "\n")
    p = compare(xdreport, listing, base)
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.splitlines() == [
        f"xdreport compare: BASE {listing}: line 4: {tmp_path}/base/gone.json: No such file or "
        "directory; allowed: a list of result files, one a line"], p.stderr


def test_latency_of_inline_completions_is_not_judged(xdreport, tmp_path):
    """fio's clat of a request completed inside queue() is ~40 ns of fio's own
    bookkeeping: a jump from 40 to 60 ns is no regression, 0.4 to 4 us is."""
    def runs(d, lat, seed):
        rng = random.Random(seed)
        d.mkdir()
        for r in range(5):
            jobs = [("inline", 400000, lat[0] + rng.random(), 0, 0),
                    ("real", 100000, lat[1] * (1 + rng.gauss(0, 0.01)), 0, 0)]
            (d / f"run-{r}.json").write_text(json.dumps(fio_doc(jobs)))
        return d
    base = runs(tmp_path / "base", (40, 400), 24)
    new = runs(tmp_path / "new", (60, 4000), 25)
    p = compare(xdreport, base, new)
    r = rows(p.stdout)
    assert r[("inline", "read_clat_mean")][1] == "inconclusive", p.stdout
    assert "under 250 ns" in p.stdout
    assert r[("inline", "read_iops")][1] == "same", p.stdout
    assert r[("real", "read_clat_mean")][1] == "regression", p.stdout
    assert p.returncode == 1


def as_total_latency(d: Path):
    """Make every run report total latency, as fio does with lat_percentiles=1."""
    for f in d.iterdir():
        doc = json.loads(f.read_text())
        for job in doc["jobs"]:
            for dd in ("read", "write", "trim"):
                job[dd]["lat_ns"] = job[dd]["clat_ns"]
        f.write_text(json.dumps(doc))


def test_total_latency_is_named_and_never_mixed(xdreport, tmp_path):
    base = write_runs(tmp_path / "base", 5, 0.01, seed=21)
    new = write_runs(tmp_path / "new", 5, 0.01, seed=22)
    as_total_latency(base)
    as_total_latency(new)
    r = rows(compare(xdreport, base, new).stdout)
    assert ("randread", "read_lat_p99") in r and ("randread", "read_clat_p99") not in r, r
    # total latency on one side and completion latency on the other is no comparison
    mixed = write_runs(tmp_path / "mixed", 5, 0.01, seed=23)
    p = compare(xdreport, base, mixed)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "lat_percentiles=1" in lines[0], p.stderr


def test_truncated_json_is_bad_input(xdreport, tmp_path):
    base = write_runs(tmp_path / "base", 5, 0.01, seed=15)
    new = write_runs(tmp_path / "new", 5, 0.01, seed=16)
    bad = new / "run-03.json"
    bad.write_text(bad.read_text()[:700])
    p = compare(xdreport, base, new, "--junit", tmp_path / "j.xml")
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "run-03.json" in lines[0], p.stderr
    assert not (tmp_path / "j.xml").exists()


@pytest.mark.parametrize("args,needle", [
    (["--threshold", "abc"], "--threshold"),
    (["--alpha", "0.7"], "--alpha"),
    (["--min-runs", "2.5"], "--min-runs"),
    (["--bogus", "1"], "--bogus"),
])
def test_bad_options(xdreport, tmp_path, args, needle):
    base = write_runs(tmp_path / "base", 5, 0.01, seed=17)
    p = compare(xdreport, base, base, *args)
    assert p.returncode == 2
    assert needle in p.stderr.splitlines()[0], p.stderr


def test_missing_and_disjoint_inputs(xdreport, tmp_path):
    base = write_runs(tmp_path / "base", 5, 0.01, seed=18, workloads=("a",))
    other = write_runs(tmp_path / "other", 5, 0.01, seed=19, workloads=("b",))
    p = compare(xdreport, base, tmp_path / "nope")
    assert p.returncode == 2 and "nope" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = compare(xdreport, base, other)
    assert p.returncode == 2 and "in common" in p.stderr, p.stderr
    (tmp_path / "empty").mkdir()
    p = compare(xdreport, base, tmp_path / "empty")
    assert p.returncode == 2 and "empty" in p.stderr, p.stderr


def test_newline_in_a_name_stays_one_line(xdreport, tmp_path):
    """A newline in a side's directory name, or in a job name from the JSON,
    is written \\x0a: the refusal is one line, never a second starting with
    what the name held."""
    empty = tmp_path / "base\nforged"
    empty.mkdir()
    p = compare(xdreport, empty, empty)
    assert p.returncode == 2 and p.stderr.splitlines() == [
        f"xdreport compare: BASE {tmp_path}/base\\x0aforged: the directory holds no result files"], p.stderr
    base = write_runs(tmp_path / "base", 5, 0.01, seed=20)
    new = write_runs(tmp_path / "new", 5, 0.01, seed=21)
    doc = json.loads((new / "run-01.json").read_text())
    doc["jobs"][0].update(jobname="randread\nforged", error=5)
    (new / "run-01.json").write_text(json.dumps(doc))
    p = compare(xdreport, base, new)
    lines = p.stderr.splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert "job 'randread\\x0aforged' failed with error 5" in lines[0], p.stderr


def test_failed_job_is_bad_input(xdreport, tmp_path):
    base = write_runs(tmp_path / "base", 5, 0.01, seed=20)
    new = write_runs(tmp_path / "new", 5, 0.01, seed=21)
    doc = json.loads((new / "run-01.json").read_text())
    doc["jobs"][0]["error"] = 5
    (new / "run-01.json").write_text(json.dumps(doc))
    p = compare(xdreport, base, new)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "run-01.json" in p.stderr and "error 5" in p.stderr, p.stderr


@pytest.mark.parametrize("change, words", [
    (lambda job: job["read"].update(iops="many"), ["read.iops", '"many" is not a number']),
    (lambda job: job["read"].update(iops=-5), ["read.iops", "-5 is negative"]),
    (lambda job: job.update(jobname=None), ['"jobname" is null']),
])
def test_bad_figure_is_bad_input(xdreport, tmp_path, change, words):
    """A figure fio never writes is one line naming the run, never a 0."""
    base = write_runs(tmp_path / "base", 5, 0.01, seed=24)
    new = write_runs(tmp_path / "new", 5, 0.01, seed=25)
    doc = json.loads((new / "run-02.json").read_text())
    change(doc["jobs"][0])
    (new / "run-02.json").write_text(json.dumps(doc))
    p = compare(xdreport, base, new)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{new / 'run-02.json'}: " in lines[0], p.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_verdicts_agree_with_the_ci(xdreport, tmp_path):
    """The printed CI brackets the true factor and 'same' rows lie within it."""
    base = write_runs(tmp_path / "base", 10, 0.01, seed=22)
    new = write_runs(tmp_path / "new", 10, 0.01, seed=23, factor=0.97)
    p = compare(xdreport, base, new)
    assert p.returncode == 0, p.stdout
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("randread ") and " read_iops " in ln)
    lo, hi = map(float, re.search(r"\[([0-9.]+), ([0-9.]+)\]", line).groups())
    assert lo < 0.97 < hi and hi - lo < 0.05, line
    # 3% lower, threshold 5%: not a regression; with a 2% threshold it is
    assert "regression" not in line
    p = compare(xdreport, base, new, "--threshold", 2)
    assert p.returncode == 1 and rows(p.stdout)[("randread", "read_iops")][1] == "regression", p.stdout
    assert not math.isnan(rows(p.stdout)[("randread", "read_iops")][0])


def test_regression_needs_the_whole_ci_beyond_the_threshold(xdreport, tmp_path):
    """A true 4% drop against a 5% threshold: the medians of one sample may
    fall past 5% with p < alpha, but the CI still reaches inside +-5%, so no
    change beyond the threshold is shown (it was called a regression in about
    half of such comparisons). A true 20% drop still is one."""
    base = write_runs(tmp_path / "base", 20, 0.05, seed=39, workloads=("randread",))
    new = write_runs(tmp_path / "new", 20, 0.05, seed=139, factor=0.96, workloads=("randread",))
    p = compare(xdreport, base, new)
    line = next(ln for ln in p.stdout.splitlines() if " read_iops " in ln)
    lo, hi = map(float, re.search(r"\[([0-9.]+), ([0-9.]+)\]", line).groups())
    pval = float(line.split("]")[1].split()[0])
    ratio, verdict = rows(p.stdout)[("randread", "read_iops")]
    assert pval < 0.05 and ratio < 0.95 and lo < 0.95 < hi, line  # the case at issue
    assert verdict == "inconclusive" and "reaches within +-5%" in line, line
    assert p.returncode == 3, p.stdout
    new = write_runs(tmp_path / "new20", 20, 0.05, seed=139, factor=0.8, workloads=("randread",))
    p = compare(xdreport, base, new)
    assert p.returncode == 1 and rows(p.stdout)[("randread", "read_iops")][1] == "regression", p.stdout


# --- output files: only nothing or a regular file of ours is replaced -----------

def plant_output(kind, path: Path, victim: Path):
    """What a careless or hostile run leaves at an output's name. The device
    node is our own (/dev/null's numbers) in tmp: never the real one."""
    if kind == "device":
        if os.geteuid() != 0:
            pytest.skip("mknod needs root")
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        os.symlink(victim, path)
        if os.geteuid() == 0:       # another user's, as in a shared /tmp
            os.lchown(path, 65534, 65534)
    elif kind == "foreign":
        if os.geteuid() != 0:
            pytest.skip("chown needs root")
        path.write_text("not ours\n")
        os.chown(path, 65534, 65534)
    elif kind == "directory":
        path.mkdir()
    return os.lstat(path)


@pytest.mark.parametrize("opt", ["--junit", "--metrics", "--verdicts"])
@pytest.mark.parametrize("kind, words", [
    ("device", "a character device is at that name"), ("fifo", "a FIFO is at that name"),
    ("symlink", "a symbolic link is at that name, not followed or replaced"),
    ("foreign", "a file of uid 65534 is at that name"), ("directory", "a directory is at that name")])
def test_output_refuses_what_is_not_our_file(xdreport, tmp_path, opt, kind, words):
    base = write_runs(tmp_path / "base", 5, 0.01, seed=90, workloads=("randread",))
    new = write_runs(tmp_path / "new", 5, 0.01, seed=91, workloads=("randread",))
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    before = plant_output(kind, out / "target", victim)
    p = compare(xdreport, base, new, opt, out / "target")
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{opt} {out / 'target'}: {words}" in lines[0], p.stderr
    assert "allowed: a regular file of yours" in lines[0] and "or no file" in lines[0], lines[0]
    assert p.stdout == "", "a refused output is refused before the table"
    after = os.lstat(out / "target")
    assert (after.st_mode, after.st_ino, after.st_rdev, after.st_uid) == \
        (before.st_mode, before.st_ino, before.st_rdev, before.st_uid), f"{kind} was replaced"
    assert victim.read_text() == "precious\n"
    assert sorted(os.listdir(out)) == ["target"], "nothing else written beside it"


def test_output_replaces_our_file_and_refuses_one_file_twice(xdreport, tmp_path):
    base = write_runs(tmp_path / "base", 5, 0.01, seed=92, workloads=("randread",))
    new = write_runs(tmp_path / "new", 5, 0.01, seed=93, workloads=("randread",))
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.txt").write_text("old\n")
    p = compare(xdreport, base, new, "--metrics", out / "metrics.txt")
    assert p.returncode in (0, 3), p.stdout + p.stderr
    assert (out / "metrics.txt").read_text().endswith("# EOF\n")
    assert sorted(os.listdir(out)) == ["metrics.txt"], "the temp file is gone"
    p = subprocess.run([xdreport, "compare", "--metrics", "m.txt", "--verdicts", "./m.txt",
                        str(base), str(new)], capture_output=True, text=True, timeout=60, cwd=out)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "--metrics m.txt and --verdicts ./m.txt name the same file" in lines[0], \
        p.stderr
    assert not (out / "m.txt").exists() and p.stdout == ""


def test_table_that_cannot_be_written_fails(xdreport, tmp_path):
    """stdout on a full device: exit 2 and one line, never a passing
    exit status for a table nobody got. The device is our own node with
    /dev/full's numbers, in tmp."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    full = tmp_path / "full"
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    base = write_runs(tmp_path / "base", 8, 0.002, seed=5)
    new = write_runs(tmp_path / "new", 8, 0.002, seed=6)
    with open(full, "w") as out:
        p = subprocess.run([xdreport, "compare", str(base), str(new)], stdout=out,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stderr.splitlines() == [
        "xdreport compare: standard output: cannot write the table: No space left on device"], p.stderr


def test_man_page_agrees_with_help(xdreport):
    """xdreport(1) names every option `compare --help` lists, the single
    file a side may be, and exit 3."""
    help_text = subprocess.run([xdreport, "compare", "--help"], capture_output=True, text=True,
                               timeout=30).stdout
    options = set(re.findall(r"^  (--[a-z-]+)", help_text, re.M))
    assert {"--paired", "--decided", "--verdicts", "--ignore-option"} <= options, help_text
    man = (REPO / "man" / "xdreport.1").read_text()
    section = man.split(".SS compare", 1)[1].split(".SS convergence", 1)[0]
    shown = section.replace("\\-", "-")
    missing = [o for o in sorted(options) if o not in shown]
    assert not missing, f"man/xdreport.1 lacks {missing}"
    assert "single results file" in shown, "a side may be one file"
    status = man.split(".SH EXIT STATUS", 1)[1].split(".SH", 1)[0]
    assert re.search(r"\b3 no regression but\s+some row inconclusive", status), status


# --- pairing: configurations, options, results directories ---------------------

def write_config(d: Path, name, runs, seed, factor=1.0, options=None, workloads=("randread", "mixed")):
    """runs of one configuration as a bench writes them: NAME.rK.json."""
    rng = random.Random(seed)
    d.mkdir(parents=True, exist_ok=True)
    for r in range(runs):
        jobs = []
        for w in workloads:
            f = factor * (1 + rng.gauss(0, 0.005))
            jobs.append((w, 30000 * f, 60000 / f, 10000 * f, 90000 / f) if w == "mixed"
                        else (w, 100000 * f, 9500 / f, 0, 0))
        doc = fio_doc(jobs, 1700000000 + r, options)
        (d / f"{name}.r{r + 1}.json").write_text(json.dumps(doc))


def bench_dir(d: Path, seed, engine_dir, mmap_factor=1.0):
    """Two configurations, each with xdevice and fio's reference, 5 runs
    each, every one running the same workload names; plus the other files a
    bench results directory holds."""
    xd = f"external:{engine_dir}/xdevice.so"
    cfgs = {
        "regular-io_uring.xdevice": ({"ioengine": xd, "xd_type": "regular", "bs": "4k"}, 1.0),
        "regular-io_uring.reference": ({"ioengine": "io_uring", "bs": "4k"}, 1.0),
        "mmap.xdevice": ({"ioengine": xd, "xd_type": "mmap", "bs": "4k"}, mmap_factor),
        "mmap.reference": ({"ioengine": "mmap", "bs": "4k"}, 1.0),
    }
    for i, (name, (opts, factor)) in enumerate(cfgs.items()):
        opts = dict(opts, filename=f"{d}/{name}.dat", write_lat_log=f"{d}/logs/{name}")
        write_config(d, name, 5, seed + i, factor, opts)
        (d / f"{name}.terse").write_text("3;fio-3.33;randread;0;0\n")
        (d / f"{name}.fio").write_text("[randread]\nrw=randread\n")
    (d / "summary.txt").write_text("configuration workload\n")
    (d / "report.html").write_text("<html></html>\n")
    (d / "logs").mkdir()
    (d / "logs" / "x_lat.1.log").write_text("1, 2, 0, 4096, 0\n")
    return d


def test_bench_results_directories_pair_by_configuration(xdreport, tmp_path):
    """Every configuration runs the same job names: each is compared with
    itself, 5 runs against 5, never 20 pooled; engine paths do not matter."""
    base = bench_dir(tmp_path / "base", 40, "/checkout-a/build")
    new = bench_dir(tmp_path / "new", 50, "/checkout-b/build", mmap_factor=0.8)
    p = compare(xdreport, base, new)
    assert p.returncode == 1, p.stdout + p.stderr
    r = rows(p.stdout)
    assert len(r) == 4 * 15, p.stdout
    assert re.search(r"^mmap\.xdevice/randread\s+read_iops\s+5/5\s", p.stdout, re.M), p.stdout
    assert r[("mmap.xdevice/randread", "read_iops")][1] == "regression", p.stdout
    assert abs(r[("mmap.xdevice/randread", "read_iops")][0] - 0.8) < 0.02, p.stdout
    for cfg in ("regular-io_uring.xdevice", "regular-io_uring.reference", "mmap.reference"):
        assert r[(f"{cfg}/randread", "read_iops")][1] != "regression", p.stdout
        assert abs(r[(f"{cfg}/mixed", "write_iops")][0] - 1) < 0.02, p.stdout
    assert "BASE " + str(base) + " (20 runs)" in p.stdout, p.stdout


def test_runs_with_different_options_are_not_pooled(xdreport, tmp_path):
    base = tmp_path / "base"
    write_config(base, "cfg", 5, 60, options={"rw": "randread", "bs": "4k"})
    new = tmp_path / "new"
    write_config(new, "cfg", 3, 61, options={"rw": "randread", "bs": "4k"})
    (new / "cfg.r4.json").write_text(json.dumps(fio_doc([("randread", 1, 1, 0, 0)], 1, {"rw": "randread", "bs": "8k"})))
    p = compare(xdreport, base, new)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert ("NEW: workload 'randread': " in lines[0] and "cfg.r1.json has bs=4k against bs=8k" in lines[0]
            and "cfg.r4.json" in lines[0] and "--ignore-option bs" in lines[0]), lines[0]
    # named by configuration when a side holds several
    write_config(new, "other", 1, 62)
    p = compare(xdreport, base, new)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "NEW: configuration 'cfg' workload 'randread': " in p.stderr, p.stderr
    # the same files under two configuration names are two configurations
    (new / "other.r1.json").unlink()
    (new / "cfg.r4.json").rename(new / "other.r1.json")
    p = compare(xdreport, base, new)
    assert p.returncode == 3, p.stdout + p.stderr
    assert ("other/randread", "read_iops") in rows(p.stdout), p.stdout


def test_sides_with_different_options_are_not_compared(xdreport, tmp_path):
    base, new = tmp_path / "base", tmp_path / "new"
    write_config(base, "cfg", 5, 70, options={"rw": "randread", "bs": "4k"})
    write_config(new, "cfg", 5, 71, factor=0.5, options={"rw": "randread", "iodepth": "8", "bs": "4k"})
    p = compare(xdreport, base, new)
    assert p.returncode == 3, p.stdout + p.stderr
    r = rows(p.stdout)
    assert r and {v for _, v in r.values()} == {"inconclusive"}, p.stdout
    assert "not compared: the options differ, BASE no iodepth against iodepth=8 in NEW" in p.stdout, p.stdout
    p = compare(xdreport, base, new, "--ignore-option", "iodepth")
    assert p.returncode == 1, p.stdout + p.stderr
    assert rows(p.stdout)[("randread", "read_iops")][1] == "regression", p.stdout


def test_real_runs_with_stats_files(xdreport, engine, tmp_path, shm_dir):
    """Real fio runs laid out as a bench does (NAME.rK.json, the xdevice
    stats file beside them): 2 runs a side can only be inconclusive."""
    data = shm_dir / "data.dat"
    for side in ("base", "new"):
        d = tmp_path / side
        d.mkdir()
        for rep in (1, 2):
            for name, eng in (("regular.xdevice", [f"--ioengine=external:{engine}", "--xd_type=regular",
                                                    f"--xd_stats={d}/regular.stats.json"]),
                              ("regular.reference", ["--ioengine=psync"])):
                cmd = ["fio", "--output-format=json", f"--output={d}/{name}.r{rep}.json",
                       "--name=randread", *eng, f"--filename={data}", "--size=8m", "--rw=randread",
                       "--bs=4k", "--time_based", "--runtime=150ms", "--lat_percentiles=1"]
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                assert p.returncode == 0, p.stdout + p.stderr
    assert (tmp_path / "base" / "regular.stats.json").is_file()
    p = compare(xdreport, tmp_path / "base", tmp_path / "new")
    assert p.returncode == 3, p.stdout + p.stderr
    r = rows(p.stdout)
    assert set(r) >= {("regular.xdevice/randread", "read_iops"), ("regular.reference/randread", "read_lat_p99")}, p.stdout
    assert len(r) == 10 and {v for _, v in r.values()} == {"inconclusive"}, p.stdout
    assert re.search(r"^regular\.xdevice/randread\s+read_iops\s+2/2\s", p.stdout, re.M), p.stdout
    assert "at least 4 runs a side are needed" in p.stderr, p.stderr


def test_single_files_and_differently_named_runs_pair(xdreport, tmp_path):
    """A side whose runs all name one configuration is that configuration:
    base.json pairs with new.json, and base/a-*.json with new/b-*.json."""
    write_config(tmp_path / "b", "base", 5, 80)
    write_config(tmp_path / "n", "new", 5, 81, factor=0.8)
    p = compare(xdreport, tmp_path / "b" / "base.r1.json", tmp_path / "n" / "new.r1.json")
    assert p.returncode == 3, p.stdout + p.stderr  # one run a side decides nothing
    assert ("randread", "read_iops") in rows(p.stdout), p.stdout
    p = compare(xdreport, tmp_path / "b", tmp_path / "n")
    assert p.returncode == 1, p.stdout + p.stderr
    assert rows(p.stdout)[("randread", "read_iops")][1] == "regression", p.stdout


# --- --paired: the per-round ratios, as scripts/regress.sh runs them ------------

def write_rounds(d: Path, rounds, load, seed, factor=1.0, noise=0.01, name="randread-qd1-shm"):
    """rounds files NAME-rKK.json, as regress.sh names a side's runs. Round k
    runs at load[k], the speed of the machine then, which both sides of a
    round share; each run adds its own small noise, and NEW is factor
    times as fast."""
    rng = random.Random(seed)
    d.mkdir(parents=True, exist_ok=True)
    for k in range(rounds):
        f = load[k] * factor * (1 + rng.gauss(0, noise))
        doc = fio_doc([(name, 200000 * f, 4000 / f, 0, 0)], 1700000000 + k)
        (d / f"{name}-r{k + 1:02d}.json").write_text(json.dumps(doc))
    return d


def shared_load(rounds, seed, spread=0.25):
    """The machine's speed per round: varying by far more than 10%."""
    rng = random.Random(seed)
    return [math.exp(rng.gauss(0, spread)) for _ in range(rounds)]


def sign_interval(d, a):
    """Reference: the sign test's interval for the median of d, each end
    one-sided at level a: cut the k order statistics with
    P(Binomial(n, 1/2) <= k - 1) <= a from each end."""
    n, k = len(d), 0
    while k < n // 2 and sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n <= a:
        k += 1
    s = sorted(d)
    return math.exp(s[k - 1]), math.exp(s[n - k])


def ci_of(stdout, workload, metric):
    m = re.search(rf"^{re.escape(workload)}\s+{metric}\s.*\[([0-9.]+), ([0-9.]+)\]", stdout, re.M)
    assert m, stdout
    return float(m[1]), float(m[2])


def test_paired_rounds_decide_what_pooled_runs_cannot(xdreport, tmp_path):
    """Runs that vary by 25% from round to round but by 1% within a round:
    pooled, no interval fits inside +-10% (inconclusive); paired, the gated
    row (median latency) is "same" and the rest are informational, shown."""
    load = shared_load(12, seed=40)
    base = write_rounds(tmp_path / "base", 12, load, seed=41)
    new = write_rounds(tmp_path / "new", 12, load, seed=42)
    unpaired = compare(xdreport, base, new, "--threshold", 10)
    assert unpaired.returncode == 3, unpaired.stdout
    assert rows(unpaired.stdout)[("randread-qd1-shm", "read_clat_p50")][1] == "inconclusive"
    junit = tmp_path / "junit.xml"
    p = compare(xdreport, base, new, "--paired", "--threshold", 10, "--junit", junit)
    assert p.returncode == 0, p.stdout + p.stderr
    r = rows(p.stdout)
    assert r[("randread-qd1-shm", "read_clat_p50")][1] == "same", p.stdout
    for metric in ("read_iops", "read_bw", "read_clat_mean", "read_clat_p99"):
        assert r[("randread-qd1-shm", metric)][1] == "informational", p.stdout
    assert "4 informational (shown, not gated)" in p.stdout, p.stdout
    assert "INCONCLUSIVE" not in p.stdout and "no regression beyond 10%" in p.stdout, p.stdout
    skipped = [c for c in ET.parse(junit).getroot().iter("testcase") if c.find("skipped") is not None]
    assert len(skipped) == 4 and all(c.find("skipped").get("message").startswith("informational: ")
                                     for c in skipped)


def test_paired_interval_is_the_sign_test_one(xdreport, tmp_path):
    """The CI printed is the sign test's interval for the median log ratio,
    each end at alpha / gated rows: 0.05 / 2 here (two workloads' medians),
    for every row, informational ones too."""
    load = shared_load(9, seed=50)
    base = write_rounds(tmp_path / "base", 9, load, seed=51, noise=0.03)
    new = write_rounds(tmp_path / "new", 9, load, seed=52, noise=0.03)
    write_rounds(base, 9, load, seed=53, name="other")
    write_rounds(new, 9, load, seed=54, name="other")
    p = compare(xdreport, base, new, "--paired", "--threshold", 10)
    iops = [[json.loads((side / f"randread-qd1-shm-r{k:02d}.json").read_text())["jobs"][0]["read"]["iops"]
             for side in (base, new)] for k in range(1, 10)]
    lo, hi = sign_interval([math.log(n / b) for b, n in iops], 0.025)
    assert ci_of(p.stdout, "randread-qd1-shm", "read_iops") == (round(lo, 3), round(hi, 3)), p.stdout
    assert "95% CI" in p.stdout and "one-sided 0.025 each way" in p.stdout, p.stdout


def test_paired_catches_a_20pct_regression(xdreport, tmp_path):
    load = shared_load(12, seed=60)
    base = write_rounds(tmp_path / "base", 12, load, seed=61)
    new = write_rounds(tmp_path / "new", 12, load, seed=62, factor=0.8)
    p = compare(xdreport, base, new, "--paired", "--threshold", 10)
    assert p.returncode == 1, p.stdout + p.stderr
    r = rows(p.stdout)
    ratio, verdict = r[("randread-qd1-shm", "read_clat_p50")]
    assert verdict == "regression" and abs(ratio - 1.25) < 0.03, p.stdout
    ratio, verdict = r[("randread-qd1-shm", "read_iops")]
    assert verdict == "informational" and abs(ratio - 0.8) < 0.02, p.stdout
    assert re.search(r"^REGRESSION: randread-qd1-shm/read_clat_p50$", p.stdout, re.M), p.stdout


def test_decided_rows_keep_their_verdict(xdreport, tmp_path):
    """A later look (--decided) keeps what an earlier one decided, with the
    figures that decided it, and judges only the rest afresh."""
    load = shared_load(12, seed=70)
    base, new = tmp_path / "base", tmp_path / "new"
    for name, seed in (("randread-qd1-shm", 71), ("other", 73)):
        write_rounds(base, 12, load, seed=seed, name=name)
        write_rounds(new, 12, load, seed=seed + 1, name=name)
    first = tmp_path / "verdicts-1.txt"
    p = compare(xdreport, base, new, "--paired", "--threshold", 10, "--verdicts", first)
    assert p.returncode == 0, p.stdout
    lines = first.read_text().splitlines()
    assert lines[0].startswith("#") and "randread-qd1-shm/read_clat_p50\tsame\t" in first.read_text()
    # the next look: other's median left undecided, and rounds that alone
    # would decide nothing (too few), as after a confirmation of other
    kept = "".join(l + "\n" for l in lines if not l.startswith("other/read_clat_p50\t"))
    (tmp_path / "decided.txt").write_text(kept)
    few_b, few_n = tmp_path / "few-base", tmp_path / "few-new"
    for name, seed in (("randread-qd1-shm", 75), ("other", 77)):
        write_rounds(few_b, 3, load, seed=seed, name=name)
        write_rounds(few_n, 3, load, seed=seed + 1, name=name)
    second = tmp_path / "verdicts-2.txt"
    p = compare(xdreport, few_b, few_n, "--paired", "--threshold", 10,
                "--decided", tmp_path / "decided.txt", "--verdicts", second)
    r = rows(p.stdout)
    assert r[("randread-qd1-shm", "read_clat_p50")][1] == "same", p.stdout
    assert "kept: decided same at an earlier look" in p.stdout, p.stdout
    assert r[("other", "read_clat_p50")][1] == "inconclusive", p.stdout
    assert re.search(r"^INCONCLUSIVE: other/read_clat_p50$", p.stdout, re.M), p.stdout
    assert p.returncode == 3
    # the kept row carries the interval that decided it, look after look
    old = next(l for l in lines if l.startswith("randread-qd1-shm/read_clat_p50\t"))
    assert old in second.read_text().splitlines(), second.read_text()


def test_paired_needs_rounds(xdreport, tmp_path):
    base = write_runs(tmp_path / "base", 5, 0.01, seed=80, workloads=("randread",))
    new = write_rounds(tmp_path / "new", 5, [1.0] * 5, seed=81, name="randread")
    (base / "odd.json").write_text((base / "run-00.json").read_text())
    p = compare(xdreport, base, new, "--paired")
    assert p.returncode == 2 and "no round number" in p.stderr and "odd.json" in p.stderr, p.stderr
    (tmp_path / "bad.txt").write_text("randread/read_iops\tsame\n")
    p = compare(xdreport, new, new, "--paired", "--decided", tmp_path / "bad.txt")
    assert p.returncode == 2 and "line 1 is not a row of --verdicts output" in p.stderr, p.stderr


def shown_value(text):
    """A base/new cell of the table as a number: 201.6k, 787.6MiB/s, 3.97us."""
    for suffix, scale in (("MiB/s", 1024 * 1024), ("ms", 1e6), ("us", 1e3), ("ns", 1),
                          ("M", 1e6), ("k", 1e3)):
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * scale
    return float(text)


def test_paired_medians_are_over_the_paired_rounds(xdreport, tmp_path):
    """12 BASE rounds, NEW without rounds 3 and 7, NEW 10% slower: the BASE
    and NEW medians shown are over the 10 rounds both ran, as the ratio
    is, so the two tell the same change (over all of BASE's rounds they
    once read 1.6% apart next to a ratio of 0.89), and every row says how
    many rounds were paired."""
    load = shared_load(12, seed=90)
    base = write_rounds(tmp_path / "base", 12, load, seed=91)
    new = write_rounds(tmp_path / "new", 12, load, seed=92, factor=0.9)
    for k in (3, 7):
        (new / f"randread-qd1-shm-r{k:02d}.json").unlink()
    p = compare(xdreport, base, new, "--paired", "--threshold", 5)
    assert p.returncode == 1, p.stdout + p.stderr
    iops = {side: {int(f.stem[-2:]): json.loads(f.read_text())["jobs"][0]["read"]["iops"]
                   for f in d.iterdir()} for side, d in (("base", base), ("new", new))}
    paired = sorted(set(iops["base"]) & set(iops["new"]))
    assert len(paired) == 10
    line = next(ln for ln in p.stdout.splitlines() if " read_iops " in ln)
    cells = line.split()
    assert cells[2] == "12/10", line
    median = lambda v: sorted(v)[len(v) // 2 - 1: len(v) // 2 + 1]
    for cell, side in ((cells[3], "base"), (cells[4], "new")):
        expect = sum(median([iops[side][k] for k in paired])) / 2
        assert shown_value(cell) == pytest.approx(expect, rel=0.001), (side, line)
    # the medians now tell the change the ratio does
    assert shown_value(cells[4]) / shown_value(cells[3]) == pytest.approx(float(cells[5]), abs=0.02), line
    for ln in p.stdout.splitlines():
        if re.match(r"^randread-qd1-shm\s+read_", ln):
            assert "10 paired rounds" in ln, ln
    assert "base, new: medians over the paired rounds only" in p.stdout, p.stdout


# --- jobs sharing a name: percentiles pooled from json+ bins, never averaged -----

def bins_percentile(bins, pct):
    """fio's calc_clat_percentiles: the first bin whose running count reaches
    pct% of the samples."""
    total, cum = sum(bins.values()), 0
    for ns in sorted(bins):
        cum += bins[ns]
        if cum >= pct / 100 * total:
            return ns
    raise ValueError("no samples")


def with_bins(ddir, bins):
    """A direction of fio's json+ output: its latency histogram and the
    percentiles fio reads from it."""
    lat = ddir["clat_ns"]
    lat["bins"] = {str(ns): n for ns, n in bins.items()}
    lat["percentile"] = {f"{p:f}": bins_percentile(bins, p) for p in (1, 50, 90, 99, 99.9)}
    n = sum(bins.values())
    lat["mean"] = sum(ns * c for ns, c in bins.items()) / n
    ddir["total_ios"] = lat["N"] = n
    ddir["iops"] = n / 2
    ddir["bw_bytes"] = n / 2 * 4096
    return ddir


def clone_bins(rng, slow_share):
    """One clone of a numjobs job: 100 us typical, slow_share of its I/O at
    about 1 ms (each clone stalls differently)."""
    bins = {}
    for _ in range(2000):
        ns = int(1_000_000 * rng.uniform(0.9, 1.1)) if rng.random() < slow_share \
            else int(100_000 * rng.uniform(0.9, 1.1))
        ns -= ns % 1000
        bins[ns] = bins.get(ns, 0) + 1
    return bins


def write_clone_runs(d: Path, runs, seed, group_reporting, json_plus=True):
    """numjobs=3 runs: three jobs named alike, or (group_reporting) one job
    holding their pooled histogram, exactly as fio would report the same I/O."""
    rng = random.Random(seed)
    d.mkdir(parents=True, exist_ok=True)
    for r in range(runs):
        clones = [clone_bins(rng, share) for share in (0.0, 0.002, 0.03)]
        if group_reporting:
            pooled = {}
            for b in clones:
                for ns, n in b.items():
                    pooled[ns] = pooled.get(ns, 0) + n
            clones = [pooled]
        doc = fio_doc([("randread", 1000, 100_000, 0, 0)] * len(clones), 1700000000 + r)
        for job, bins in zip(doc["jobs"], clones):
            with_bins(job["read"], bins)
            if not json_plus:
                del job["read"]["clat_ns"]["bins"]
        (d / f"run-{r:02d}.json").write_text(json.dumps(doc))
    return d


def test_jobs_sharing_a_name_pool_their_latency_bins(xdreport, tmp_path):
    """numjobs=3 without group_reporting against the same I/O reported with
    group_reporting: json+ bins pooled give the group's p50 and p99 (ratio
    1.000, same); a mean of the clones' p99s, weighted by I/O, would say
    the p99 fell by half."""
    base = write_clone_runs(tmp_path / "base", 6, seed=95, group_reporting=False)
    new = write_clone_runs(tmp_path / "new", 6, seed=95, group_reporting=True)
    p = compare(xdreport, base, new)
    assert p.returncode == 0, p.stdout + p.stderr
    r = rows(p.stdout)
    for metric in ("read_iops", "read_clat_mean", "read_clat_p50", "read_clat_p99"):
        assert r[("randread", metric)] == (1.0, "same"), p.stdout


def test_percentiles_of_jobs_sharing_a_name_without_bins_are_not_judged(xdreport, tmp_path):
    """Without json+ bins no pooled percentile exists: the p50 and p99 rows
    are shown but left inconclusive, naming why, in paired mode too (where
    the median is the gated row); IOPS and the mean stay judged."""
    base = write_clone_runs(tmp_path / "base", 6, seed=96, group_reporting=False, json_plus=False)
    new = write_clone_runs(tmp_path / "new", 6, seed=96, group_reporting=False, json_plus=False)
    p = compare(xdreport, base, new)
    assert p.returncode == 3, p.stdout + p.stderr
    r = rows(p.stdout)
    assert r[("randread", "read_iops")][1] == "same", p.stdout
    assert r[("randread", "read_clat_mean")][1] == "same", p.stdout
    for metric, pct in (("read_clat_p50", "p50"), ("read_clat_p99", "p99")):
        assert r[("randread", metric)][1] == "inconclusive", p.stdout
        line = next(ln for ln in p.stdout.splitlines() if f" {metric} " in ln)
        assert (f"not judged: in 12 run(s) jobs share the name and the JSON has no latency bins, "
                f"so this is an I/O-weighted mean of their {pct}s, not the pooled {pct}; allowed: "
                "--output-format=json+ (bins) or group_reporting") in line, line
    for side in (base, new):
        for k, f in enumerate(sorted(side.iterdir())):
            f.rename(side / f"randread-r{k + 1:02d}.json")
    p = compare(xdreport, base, new, "--paired")
    assert p.returncode == 3, p.stdout + p.stderr
    r = rows(p.stdout)
    assert r[("randread", "read_clat_p50")][1] == "inconclusive", p.stdout
    assert r[("randread", "read_clat_p99")][1] == "informational", p.stdout
    assert "an I/O-weighted mean of the p99s of jobs sharing the name" in p.stdout, p.stdout
