"""`xdreport report`: real fio results in, charts, HTML, Markdown and CSV out.

The fixtures are real fio runs made here: fio's own psync and mmap engines and
the xdevice engine with xd_stats, json+ with latency/IOPS/hist logs, a
--status-interval stream and a client/server run. The report must hold
exactly fio's numbers, label each configuration by what sets it apart, name
every bad input in one line while still reporting the rest, draw every chart
(checked in headless Chromium when it is installed) and stay fast.
"""
import csv
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import FIO, REPO

XDREPORT = REPO / "build" / "xdreport"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RUN_TIMEOUT = 120

COMMON = ["--rw=randread", "--bs=4k", "--size=8m", "--runtime=1", "--time_based",
          "--log_avg_msec=100", "--output-format=json+", "--eta=never"]
RANDREAD_CHARTS = ["iops", "bandwidth", "latency-percentiles", "clat-histogram", "clat-cdf",
                   "iops-over-time", "latency-over-time"]
MIXED_CHARTS = ["iops", "bandwidth", "latency-percentiles", "iops-over-time",
                "latency-over-time", "bandwidth-over-time"]
XD_CHARTS = ["xdevice-cache-hit-ratio", "xdevice-compression-ratio", "xdevice-space",
             "xdevice-tier-reads"]


@pytest.fixture(scope="module")
def xdreport():
    if not XDREPORT.is_file():
        pytest.fail(f"{XDREPORT} not found: run `make` first", pytrace=False)
    return str(XDREPORT)


def fio_docs(path):
    """Every JSON document in a fio output file (a --status-interval stream has several)."""
    raw = Path(path).read_text()
    dec, docs, pos = json.JSONDecoder(), [], 0
    while True:
        m = re.compile(r"^\{", re.M).search(raw, pos)
        if not m:
            return docs
        doc, pos = dec.raw_decode(raw, m.start())
        docs.append(doc)


def start_fio(args, cwd):
    return subprocess.Popen([FIO, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish_fio(procs):
    for p in procs:
        out, _ = p.communicate(timeout=RUN_TIMEOUT)
        assert p.returncode == 0, f"fio failed: {' '.join(p.args)}\n{out}"


@pytest.fixture(scope="module")
def runs(engine, tmp_path_factory):
    """One directory of real results: three engines on the same workload
    (json+, logs, xdevice stats) and a --status-interval stream of another."""
    d = tmp_path_factory.mktemp("xdreport-runs")
    for name in ("psync", "mmap", "xdevice", "stream"):
        with open(d / f"data-{name}", "wb") as f:
            f.truncate(8 << 20)
    jobs = [
        ["--name=randread", f"--filename={d}/data-psync", *COMMON, "--ioengine=psync",
         "--write_lat_log=psync", "--write_iops_log=psync", "--write_hist_log=psync",
         "--log_hist_msec=200", "--output=psync.json"],
        ["--name=randread", f"--filename={d}/data-mmap", *COMMON, "--ioengine=mmap",
         "--write_lat_log=mmap", "--write_iops_log=mmap", "--output=mmap.json"],
        ["--name=randread", f"--filename={d}/data-xdevice", *COMMON,
         f"--ioengine=external:{engine}", "--xd_type=regular",
         f"--xd_stats={d}/xdevice.stats.json", "--write_iops_log=xdevice",
         "--output=xdevice.json"],
        ["--name=mixed", f"--filename={d}/data-stream", "--rw=randrw", "--bs=4k", "--size=8m",
         "--runtime=3", "--time_based", "--ioengine=psync", "--status-interval=1",
         "--output-format=json", "--eta=never", "--output=stream.json"],
    ]
    finish_fio([start_fio(j, d) for j in jobs])
    for name in ("psync", "mmap", "xdevice"):
        data = d / f"data-{name}"
        data.unlink()
    (d / "data-stream").unlink()
    assert len(fio_docs(d / "stream.json")) >= 3, "the status-interval run gave no stream"
    return d


def run_report(xdreport, out, inputs, env=None, title=None):
    cmd = [xdreport, "report", "-o", str(out), *([f"--title={title}"] if title else []),
           *map(str, inputs)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
    p.elapsed = time.monotonic() - t0
    return p


@pytest.fixture(scope="module")
def report(xdreport, runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("xdreport-out") / "report"
    p = run_report(xdreport, out, [runs])
    assert p.returncode == 0, f"rc={p.returncode}\n{p.stderr}"
    assert p.stderr == "", f"a clean run printed: {p.stderr}"
    return out


def read_csv(out):
    with open(Path(out) / "figures.csv", newline="") as f:
        return list(csv.DictReader(f))


def figure(rows, **want):
    hits = [r for r in rows if all(r[k] == v for k, v in want.items())]
    assert len(hits) == 1, f"{len(hits)} rows in figures.csv match {want}"
    return float(hits[0]["value"])


def png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


# --- outputs ---------------------------------------------------------------------


def test_every_output_written(report):
    for name in ("report.html", "summary.md", "figures.csv", "charts.gp"):
        assert (report / name).stat().st_size > 0, f"{name} is empty"
    charts = [f"randread-{c}" for c in RANDREAD_CHARTS] + [f"mixed-{c}" for c in MIXED_CHARTS]
    for c in charts:
        w, h = png_size(report / f"{c}.png")
        assert w >= 800 and h >= 400, f"{c}.png is {w}x{h}"
        assert (report / f"{c}.png").stat().st_size > 5000, f"{c}.png looks empty"
        assert "</svg>" in (report / f"{c}.svg").read_text(), f"{c}.svg is cut short"
    # the real xdevice stats have no cache/compression/space/tier figures yet:
    # those charts are skipped, not drawn empty
    for c in XD_CHARTS:
        assert not (report / f"{c}.png").exists(), f"{c}.png drawn without data"


def test_charts_name_version_workload_and_differences(report):
    svg = (report / "randread-iops.svg").read_text()
    assert "randread: IOPS per configuration" in svg
    assert re.search(r"fio-3\.\d+ · 3 configurations differing in ioengine, xd_type", svg), \
        "the chart must say the fio version and which options differ"
    for label in ("psync", "mmap", "xdevice", "regular"):  # stacked one option per line
        assert f">{label}<" in svg, f"x axis lacks {label}"


def test_figures_equal_fio_json(report, runs):
    rows = read_csv(report)
    checked = 0
    for name in ("psync", "mmap", "xdevice", "stream"):
        path = runs / f"{name}.json"
        docs = fio_docs(path)
        for k, doc in enumerate(docs):
            final = k == len(docs) - 1
            source = str(path) if len(docs) == 1 else f"{path}:{k + 1}"
            kind = "fio" if final else "fio-interval"
            for job in doc["jobs"]:
                for ddir in ("read", "write", "trim"):
                    dj = job[ddir]
                    if not dj["total_ios"]:
                        continue
                    key = dict(kind=kind, source=source, workload=job["jobname"], direction=ddir)
                    for metric, want in [("iops", dj["iops"]), ("bw_bytes", dj["bw_bytes"]),
                                         ("io_bytes", dj["io_bytes"]),
                                         ("total_ios", dj["total_ios"]),
                                         ("runtime", dj["runtime"]),
                                         ("clat_mean", dj["clat_ns"]["mean"]),
                                         ("clat_min", dj["clat_ns"]["min"]),
                                         ("clat_max", dj["clat_ns"]["max"])]:
                        assert figure(rows, metric=metric, **key) == want, (metric, key)
                        checked += 1
                    pct = dj["clat_ns"]["percentile"]
                    for p, m in [("50.000000", "clat_p50"), ("99.000000", "clat_p99"),
                                 ("99.900000", "clat_p99.9"), ("99.990000", "clat_p99.99")]:
                        assert figure(rows, metric=m, **key) == pct[p], (m, key)
                        checked += 1
    assert checked > 100


def test_configurations_labelled_by_what_differs(report, runs):
    rows = read_csv(report)
    labels = {r["source"]: r["configuration"] for r in rows if r["kind"] == "fio"}
    # engine and storage type are shown by value: they read as names
    assert labels[str(runs / "psync.json")] == "psync"
    assert labels[str(runs / "mmap.json")] == "mmap"
    assert labels[str(runs / "xdevice.json")] == "xdevice regular"
    # logs are tied to their job through write_*_log and carry its label
    logs = {r["source"]: r["configuration"] for r in rows if r["kind"] == "log"}
    assert logs[str(runs / "psync_iops.1.log")] == "psync"
    assert logs[str(runs / "psync_clat_hist.1.log")] == "psync"
    assert logs[str(runs / "xdevice_iops.1.log")] == "xdevice regular"
    md = (report / "summary.md").read_text()
    assert "they differ in ioengine, xd_type" in md
    assert "| mmap | read |" in md


def test_stream_gives_intervals(report, runs):
    rows = read_csv(report)
    ndocs = len(fio_docs(runs / "stream.json"))
    interval_sources = {r["source"] for r in rows if r["kind"] == "fio-interval"}
    assert interval_sources == {f"{runs / 'stream.json'}:{k}" for k in range(1, ndocs)}
    samples = figure(rows, kind="interval", workload="mixed", direction="read",
                     metric="iops_samples")
    assert samples >= 2, "each status interval should give one IOPS point"


def test_logs_summarised(report, runs):
    rows = read_csv(report)
    lines = [ln for ln in (runs / "psync_iops.1.log").read_text().splitlines() if ln.strip()]
    vals = [float(ln.split(",")[1]) for ln in lines]
    key = dict(kind="log", source=str(runs / "psync_iops.1.log"), direction="read")
    assert figure(rows, metric="iops_samples", **key) == len(vals)
    assert figure(rows, metric="iops_max", **key) == max(vals)
    assert figure(rows, metric="iops_min", **key) == min(vals)


# --- bad input ---------------------------------------------------------------------


def test_byte_order_mark_is_not_part_of_the_json(xdreport, runs, tmp_path):
    """fio's JSON saved by an editor that starts UTF-8 with a byte order
    mark was refused as 'JSON but not fio output'."""
    marked = tmp_path / "marked.json"
    marked.write_bytes(b"\xef\xbb\xbf" + (runs / "psync.json").read_bytes())
    p = run_report(xdreport, tmp_path / "out", [marked])
    assert p.returncode == 0, p.stderr
    doc = fio_docs(runs / "psync.json")[0]
    assert figure(read_csv(tmp_path / "out"), kind="fio", source=str(marked), direction="read",
                  metric="iops") == doc["jobs"][0]["read"]["iops"]


def test_long_job_name_is_charted(xdreport, runs, tmp_path):
    """A chart's file is named after its job: a 250-byte job name made one
    past NAME_MAX, and gnuplot failed ('cannot open file')."""
    doc = fio_docs(runs / "psync.json")[0]
    for job in doc["jobs"]:
        job["jobname"] = "n" * 250
    named = tmp_path / "long.json"
    named.write_text(json.dumps(doc))
    p = run_report(xdreport, tmp_path / "out", [named])
    assert p.returncode == 0, p.stderr
    assert list((tmp_path / "out").glob("n*-iops.svg")), sorted((tmp_path / "out").iterdir())


def test_bad_inputs_named_rest_reported(xdreport, runs, tmp_path):
    good = runs / "psync.json"
    whole = (runs / "mmap.json").read_bytes()
    trunc = tmp_path / "truncated.json"
    trunc.write_bytes(whole[: len(whole) // 2])
    other = tmp_path / "other.json"
    other.write_text('{"name": "not fio", "items": [1, 2, 3]}\n')
    missing = tmp_path / "gone.json"
    missing_log = tmp_path / "gone_iops.1.log"
    badlog = tmp_path / "bad_lat.1.log"
    badlog.write_text("100, 2000, 0, 4096, 0\nnot a number\n")
    # figures fio never writes: a negative latency, a direction past wait
    neglog = tmp_path / "neg_lat.1.log"
    neglog.write_text("100, 2000, 0, 4096, 0\n200, -10, 0, 4096, 0\n")
    dirlog = tmp_path / "dir_lat.1.log"
    dirlog.write_text("100, 2000, 3, 4096, 0\n200, 20, 7, 4096, 0\n")
    out = tmp_path / "out"
    p = run_report(xdreport, out, [good, trunc, other, missing, missing_log, badlog, neglog, dirlog])
    assert p.returncode == 1, f"bad inputs must fail the run\n{p.stderr}"
    errs = p.stderr.splitlines()
    assert len(errs) == 7, f"one line per bad input:\n{p.stderr}"
    assert errs[5] == f"xdreport: {neglog}: line 2: value -10 is negative; allowed: 0 or more"
    assert errs[6].startswith(f"xdreport: {dirlog}: line 2: direction 7; allowed: 0 to 6")
    assert errs[0] == f"xdreport: {trunc}: truncated JSON at byte {len(whole) // 2}"
    assert errs[1].startswith(f"xdreport: {other}: JSON but not fio output")
    assert errs[2] == f"xdreport: {missing}: No such file or directory"
    assert errs[3] == f"xdreport: {missing_log}: No such file or directory"
    assert errs[4].startswith(f"xdreport: {badlog}: line 2: ")
    # what could be read is still reported
    rows = read_csv(out)
    doc = fio_docs(good)[0]
    assert figure(rows, kind="fio", source=str(good), direction="read", metric="iops") \
        == doc["jobs"][0]["read"]["iops"]
    assert figure(rows, kind="log", source=str(badlog), direction="read",
                  metric="lat_samples") == 1
    assert (out / "randread-iops.png").stat().st_size > 0
    html = (out / "report.html").read_text()
    assert "truncated JSON at byte" in html and "Problems" in html


def set_in(doc, path, value):
    """doc with the member at path (keys, list indices) set to value;
    value DELETE removes it."""
    d = json.loads(json.dumps(doc))
    obj = d
    for k in path[:-1]:
        obj = obj[k]
    if value is DELETE:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value
    return d


DELETE = object()
READ = ["jobs", 0, "read"]
BAD_VALUES = {   # name: (change, words the one line must hold)
    "iops-word": (READ + ["iops"], "many", ["job 'randread': read.iops", '"many" is not a number']),
    "iops-negative": (READ + ["iops"], -5, ["read.iops", "-5 is negative"]),
    "iops-huge": (READ + ["iops"], "HUGE", ["read.iops", "beyond the range of a double"]),
    "jobname-null": (["jobs", 0, "jobname"], None, ['"jobname" is null', "a non-empty string"]),
    "no-directions": (["jobs", 0], "NODIRS", ['no "read" object']),
    "bin-negative": (READ + ["clat_ns", "bins"], {"-5": 3, "100": 4},
                     ["read.clat_ns.bins", 'key "-5" is not a latency', "whole number of ns"]),
    "bin-word": (READ + ["clat_ns", "bins"], {"x": 3}, ["read.clat_ns.bins", 'key "x"']),
    "garbage-tail": (None, "TAIL", ['line ', '"GARBAGE TAIL {{{" after a JSON document']),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_bad_values_refused_in_one_line(xdreport, runs, tmp_path, case):
    """fio never writes these: each is one line naming the file, where the
    value is and the value, never a figure of 0, -5 or inf, an empty
    workload or a broken chart script."""
    path, value, words = BAD_VALUES[case]
    doc = fio_docs(runs / "psync.json")[0]
    if value == "NODIRS":
        doc = set_in(set_in(set_in(doc, path + ["read"], DELETE), path + ["write"], DELETE),
                     path + ["trim"], DELETE)
    elif value == "HUGE":
        doc = set_in(doc, path, 123456.5)
    elif path:
        doc = set_in(doc, path, value)
    text = json.dumps(doc).replace("123456.5", "1e999999")
    if value == "TAIL":
        text += "\nGARBAGE TAIL {{{\n"
    bad = tmp_path / f"{case}.json"
    bad.write_text(text)
    out = tmp_path / "out"
    p = run_report(xdreport, out, [bad])
    assert p.returncode == 1, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"xdreport: {bad}: "), p.stderr
    assert all(w in lines[0] for w in words), f"want {words} in {lines[0]}"
    if (out / "charts.gp").exists() and value != "TAIL":
        assert "randread" not in (out / "charts.gp").read_text(), "a refused document was drawn"


def test_bad_stats_figure_refused(xdreport, runs, tmp_path):
    doc = json.loads((runs / "xdevice.stats.json").read_text())
    doc["jobs"][0]["layers"]["cache"] = {"hits": 1, "misses": 1, "hit_ratio": "x"}
    bad = tmp_path / "bad.stats.json"
    bad.write_text(json.dumps(doc))
    p = run_report(xdreport, tmp_path / "out", [bad])
    assert p.returncode == 1, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0] == (
        f'xdreport: {bad}: jobs[0].layers.cache.hit_ratio: "x" is not allowed; '
        "allowed: a ratio from 0 to 1"), p.stderr


def test_same_file_twice_read_once(xdreport, runs, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(runs / "psync.json", d / "r.json")
    out = tmp_path / "out"
    p = run_report(xdreport, out, [d / "r.json", d / "r.json", d])
    assert p.returncode == 0, p.stderr
    # the second time through its directory
    assert p.stderr.splitlines() == [f"xdreport: note: {d / 'r.json'} is given twice; read once"] * 2, \
        p.stderr
    sources = {r["source"] for r in read_csv(out) if r["kind"] == "fio"}
    assert sources == {str(d / "r.json")}, sources
    assert "#2" not in (out / "summary.md").read_text(), "one file is one configuration"
    p = subprocess.run([xdreport, "report", "-o", "out2", "in/r.json", "./in"],
                       capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=tmp_path)
    assert p.returncode == 0 and p.stderr.splitlines() == [
        "xdreport: note: ./in/r.json is the same file as in/r.json; read once"], p.stderr


def test_json_nested_too_deep_says_so(xdreport, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text('{"jobs": ' + "[" * 200_000 + "]" * 200_000 + "}\n")
    p = run_report(xdreport, tmp_path / "out", [deep])
    assert p.returncode == 1, p.stderr
    at = len('{"jobs": ') + 1000 - 1    # the 1001st bracket, 0-based
    assert p.stderr.splitlines() == [
        f"xdreport: {deep}: JSON nested deeper than 1000 levels at byte {at} (line 1)"], p.stderr


@pytest.mark.parametrize("brk,shown", [("\n", "\\x0a"), ("\u2028", "\\xe2\\x80\\xa8")],
                         ids=["newline", "line-separator"])
def test_newline_in_an_input_name_stays_one_line(xdreport, tmp_path, brk, shown):
    """A newline (or a Unicode line separator, at which Python's splitlines
    and some terminals break a line) in an input's name is escaped: a load
    error (a file that is no fio output) and a directory holding no results
    are each one line, never a second starting with what the name held."""
    bad = tmp_path / f"in{brk}forged.json"
    bad.write_text('{"name": "not fio"}\n')
    empty = tmp_path / f"res{brk}forged"
    empty.mkdir()
    (empty / "notes.txt").write_text("no results\n")
    p = run_report(xdreport, tmp_path / "out", [bad, empty])
    assert p.returncode == 1, p.stderr
    lines = p.stderr.splitlines()
    named = [ln for ln in lines if "forged" in ln]
    assert len(named) == 2 and not any(ln.startswith("forged") for ln in lines), p.stderr
    assert f"xdreport: {tmp_path}/in{shown}forged.json: JSON but not fio output" in p.stderr, p.stderr
    assert f"xdreport: {tmp_path}/res{shown}forged: no *.json or *.log files in it" in lines, p.stderr


def test_recommendation_names_an_option_the_runner_up_lacks(xdreport, tmp_path):
    """The best sets iodepth, the runner-up leaves it out: said as such,
    not as "(not not set)"."""
    d = tmp_path / "in"
    d.mkdir()
    for name, iops, iodepth in (("deep", 200_000, "8"), ("shallow", 100_000, None)):
        job = bench_job("randread-4k-qd1", iops, 10_000)
        if iodepth:
            job["job options"]["iodepth"] = iodepth
        else:
            del job["job options"]["iodepth"]
        (d / f"{name}.json").write_text(json.dumps(fio_doc([job], {"ioengine": "psync"})))
    out = tmp_path / "out"
    p = run_report(xdreport, out, [d])
    assert p.returncode == 0, p.stderr
    summary = (out / "summary.md").read_text()
    assert "iodepth=8 (unset in the runner-up)" in summary, summary[:3000]
    assert "not not" not in summary and "not not" not in (out / "report.html").read_text()


def test_missing_gnuplot(xdreport, runs, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PATH=str(tmp_path / "empty-path"))
    p = run_report(xdreport, out, [runs / "psync.json"], env=env)
    assert p.returncode == 1
    assert p.stderr.splitlines() == [
        f"xdreport: gnuplot not found; install gnuplot-nox (the charts' script is in "
        f"{out}/charts.gp)"]
    for name in ("report.html", "summary.md", "figures.csv", "charts.gp"):
        assert (out / name).stat().st_size > 0
    assert not list(out.glob("*.png"))


def test_usage_errors(xdreport, tmp_path):
    p = subprocess.run([xdreport, "report", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 2 and "-o OUTDIR" in p.stderr
    p = subprocess.run([xdreport, "nonsense"], capture_output=True, text=True)
    assert p.returncode == 2 and 'unknown command "nonsense"' in p.stderr


# --- the output directory --------------------------------------------------------------


def shared_dir_with_link(tmp_path):
    """A sticky, world-writable directory (like /tmp) where another user
    planted out -> victim/ before our run."""
    sticky, victim = tmp_path / "sticky", tmp_path / "victim"
    sticky.mkdir()
    sticky.chmod(0o1777)
    victim.mkdir()
    os.symlink(victim, sticky / "out")
    if os.geteuid() == 0:
        os.lchown(sticky / "out", 65534, 65534)
    return sticky / "out", victim


@pytest.mark.parametrize("slash", ["", "/"])
def test_outdir_symlink_refused(xdreport, runs, tmp_path, slash):
    out, victim = shared_dir_with_link(tmp_path)
    p = run_report(xdreport, f"{out}{slash}", [runs / "psync.json"])
    assert p.returncode == 1, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and f"-o {out}{slash}:" in lines[0] and \
        "a symbolic link is at that name, not followed" in lines[0], p.stderr
    assert list(victim.iterdir()) == [], "nothing may be written through the link"
    hist = history(tmp_path, TRIALS)
    p = subprocess.run([xdreport, "convergence", "-o", str(out), str(hist)], capture_output=True,
                       text=True, timeout=RUN_TIMEOUT)
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1, p.stderr
    assert "a symbolic link is at that name" in p.stderr, p.stderr
    assert list(victim.iterdir()) == [], "convergence wrote through the link"


def test_outdir_of_another_user_refused_in_one_line(xdreport, runs, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    out = tmp_path / "theirs"
    out.mkdir()
    os.chown(out, 65534, 65534)
    p = run_report(xdreport, out, [runs / "psync.json"])
    assert p.returncode == 1, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and f"directory {out} belongs to uid 65534" in lines[0] and \
        "allowed:" in lines[0], p.stderr
    assert list(out.iterdir()) == []


def test_outdir_below_a_directory_of_another_user_refused(xdreport, runs, tmp_path):
    """Whoever owns a directory above OUTDIR could rename OUTDIR away and
    put a link to anywhere in its place between xdreport's check and its
    writes (made and removed by path): refused before anything is made."""
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    out = theirs / "sub" / "out"
    p = run_report(xdreport, out, [runs / "psync.json"])
    assert p.returncode == 1, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and f"directory {theirs} belongs to uid 65534" in lines[0], p.stderr
    assert list(theirs.iterdir()) == []


# An LD_PRELOAD shim for xdreport: the first mkdir of $XR_RACE_AT is preceded by
# a directory of uid 65534 made there, as another user's loop of mkdir in a
# sticky /tmp would win the gap between xdreport's look and its mkdir.
MKDIR_RACE_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int mkdir(const char *path, mode_t mode)
{
    static int (*real)(const char *, mode_t);
    static int done;
    const char *at = getenv("XR_RACE_AT");
    if (!real)
        real = (int (*)(const char *, mode_t))dlsym(RTLD_NEXT, "mkdir");
    if (at && !done && !strcmp(path, at)) {
        done = 1;
        if (!real(path, 0777))
            chown(path, 65534, 65534);
    }
    return real(path, mode);
}
"""


def test_outdir_parent_made_by_another_user_meanwhile_refused(xdreport, runs, tmp_path):
    """A directory above OUTDIR missing at xdreport's look but made by
    another user before its own mkdir (EEXIST was taken as its own):
    that user could then swap OUTDIR for a link to a directory of theirs,
    where gnuplot, run as root, read their charts.gp (seen: a root shell
    command in 15 tries). Checked again once every name is there."""
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    src, shim = tmp_path / "race.c", tmp_path / "race.so"
    src.write_text(MKDIR_RACE_SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(src), "-ldl"], check=True)
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    theirs = sticky / "x"
    out = theirs / "y"
    p = subprocess.run([xdreport, "report", "-o", str(out), str(runs / "psync.json")],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, LD_PRELOAD=str(shim), XR_RACE_AT=str(theirs)))
    assert theirs.stat().st_uid == 65534, "the shim did not make the directory"
    assert p.returncode == 1, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and f"directory {theirs} belongs to uid 65534" in lines[0], p.stderr
    assert not out.exists() or not list(out.iterdir()), "outputs written below their directory"


# --- text from the inputs reaches gnuplot as text only --------------------------------


def with_changes(doc, jobname=None, options=None):
    d = json.loads(json.dumps(doc))
    if jobname is not None:
        d["jobs"][0]["jobname"] = jobname
    d["jobs"][0]["job options"].update(options or {})
    return d


def test_input_text_never_runs_in_gnuplot(xdreport, runs, tmp_path):
    """A job name, an option value and a file name holding `touch FILE`
    (gnuplot runs backquotes inside double quotes) are drawn as text, and
    run nothing; a single quote among them is drawn too."""
    doc = fio_docs(runs / "psync.json")[0]
    ins = tmp_path / "in"
    ins.mkdir()
    files = {
        "job.json": with_changes(doc, jobname="a`touch ran-job`b'q @x"),
        "opt.json": with_changes(doc, jobname="opt", options={"iodepth": "`touch ran-opt`'"}),
        "plain-opt.json": with_changes(doc, jobname="opt"),
        "q`touch ran-file`'.json": with_changes(doc, jobname="file"),
        "plain-file.json": with_changes(doc, jobname="file"),
    }
    for name, d in files.items():
        (ins / name).write_text(json.dumps(d))
    out = tmp_path / "out"
    p = run_report(xdreport, out, [ins / name for name in files])
    assert p.returncode == 0, p.stderr
    ran = [str(f) for f in tmp_path.rglob("ran-*")]
    assert not ran, f"gnuplot ran a command from the inputs: {ran}"
    for slug, text in (("a-touch-ran-job-b-q--x", "a`touch ran-job`b'q @x: IOPS"),
                       ("opt", "`touch"), ("file", "ran-file`'")):
        svg = (out / f"{slug}-iops.svg").read_text()
        assert text in svg.replace("&apos;", "'").replace("&#39;", "'"), \
            f"{slug}-iops.svg does not show {text!r}"
        assert (out / f"{slug}-iops.png").stat().st_size > 5000, f"{slug}-iops.png missing"


def history(tmp_path, trials, job="randread"):
    path = tmp_path / "history.json"
    path.write_text(json.dumps({"xdtune": {"objective": "iops", "job": job}, "trials": trials}))
    return path


TRIALS = [{"trial": k, "config": {"cache_size": f"{k}m"}, "figures": {"iops": 100 + k},
           "best_so_far": 100 + k} for k in (1, 2, 3)]


def run_convergence(xdreport, out, hist, env=None):
    return subprocess.run([xdreport, "convergence", "-o", str(out), str(hist)], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT, env=env)


@pytest.mark.parametrize("trials", [[], [{"trial": 1, "config": {}, "failed": True}]],
                         ids=["no-trials", "all-failed"])
def test_convergence_failure_leaves_nothing(xdreport, tmp_path, trials):
    hist = history(tmp_path, trials)
    for out in (tmp_path / "new-out", tmp_path / "old-out"):
        if out.name == "old-out":
            out.mkdir()
        p = run_convergence(xdreport, out, hist)
        assert p.returncode == 1, p.stderr
        assert p.stderr.splitlines() == [
            f"xdreport: convergence: {hist}: no successful trial to draw ({len(trials)} trials); "
            "allowed: a history with a trial that gave a figure"], p.stderr
        assert (list(out.iterdir()) if out.exists() else None) == \
            ([] if out.name == "old-out" else None), "a failed run leaves no new file"


def test_convergence_without_gnuplot_leaves_nothing(xdreport, tmp_path):
    hist = history(tmp_path, TRIALS)
    out = tmp_path / "out"
    p = run_convergence(xdreport, out, hist, env=dict(os.environ, PATH=str(tmp_path / "none")))
    assert p.returncode == 1, p.stderr
    assert p.stderr.splitlines() == [
        f"xdreport: convergence: cannot run gnuplot for {out}/convergence.gp; install gnuplot-nox"]
    assert not out.exists(), list(out.iterdir())


TRUNCATED = '{"xdtune": {"objective": "iops"}, "trials": [{"trial": 1, "fig'
DEEP_HEAD = '{"trials": '


@pytest.mark.parametrize("text, words", [
    (TRUNCATED, f"truncated JSON at byte {len(TRUNCATED)}"),
    (DEEP_HEAD + "[" * 5000 + "]" * 5000 + "}",
     f"JSON nested deeper than 1000 levels at byte {len(DEEP_HEAD) + 999} (line 1)"),
    ('{"trials": []} trailing', "invalid JSON at byte 15 (line 1): text after the document"),
], ids=["truncated", "nested", "trailing"])
def test_convergence_names_broken_json(xdreport, tmp_path, text, words):
    hist = tmp_path / "history.json"
    hist.write_text(text)
    out = tmp_path / "out"
    p = subprocess.run([xdreport, "convergence", "-o", str(out), str(hist)], capture_output=True,
                       text=True, timeout=RUN_TIMEOUT)
    assert p.returncode == 1, p.stderr
    assert p.stderr.splitlines() == [
        f"xdreport: convergence: {hist}: {words}; allowed: an xdtune history.json"], p.stderr
    assert not out.exists(), "a refused history makes no output directory"


def test_convergence_job_name_never_runs(xdreport, tmp_path):
    hist = history(tmp_path, TRIALS, job="j`touch ran-conv`'x")
    out = tmp_path / "out"
    p = subprocess.run([xdreport, "convergence", "-o", str(out), str(hist)], capture_output=True,
                       text=True, timeout=RUN_TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert not list(tmp_path.rglob("ran-*")), "gnuplot ran the history's job name"
    svg = (out / "convergence.svg").read_text().replace("&apos;", "'").replace("&#39;", "'")
    assert "j`touch ran-conv`'x" in svg, "the title must show the job name as it is"


def block(gp, name):
    """The (x, y) rows of a datablock of convergence.gp."""
    rows = gp.split(f"${name} << EOD\n", 1)[1].split("EOD", 1)[0].splitlines()
    return [tuple(float(v) for v in ln.split()) for ln in rows]


def test_convergence_ends_on_the_winner(xdreport, tmp_path):
    """The audit's search: a single lucky run (16929, trial 3, never a
    finalist) led the search; the finalists' medians, once re-measured,
    put sync/16 first at 13782, the declared winner. The chart's line once
    ended at 16929. Now the search's line says its points are single runs,
    the finalists' medians are a line of their own, and the winner is drawn
    as such, where the line ends."""
    def trial(k, own, best, of, runs):
        return {"trial": k, "config": {"async": f"a{k}"}, "figures": {"iops": own},
                "best_so_far": best, "best_of": of, "best_runs": runs}
    trials = [trial(1, 12000, 12000, "search", 1), trial(2, 13000, 13000, "search", 1),
              trial(3, 16929, 16929, "search", 1), trial(4, 13500, 13500, "finalists", 2),
              trial(5, 14000, 13782, "finalists", 2), trial(6, 13782, 13782, "finalists", 4)]
    hist = tmp_path / "history.json"
    hist.write_text(json.dumps({"xdtune": {"objective": "max iops", "job": "j"}, "trials": trials,
                                "best": {"objective": 13782, "measurements": 4}}))
    out = tmp_path / "out"
    p = run_convergence(xdreport, out, hist)
    assert p.returncode == 0, p.stderr
    gp = (out / "convergence.gp").read_text()
    assert block(gp, "best") == [(1, 12000), (2, 13000), (3, 16929)], gp
    assert block(gp, "finalists") == [(4, 13500), (5, 13782), (6, 13782)], gp
    assert block(gp, "winner") == [(6, 13782)], gp
    svg = (out / "convergence.svg").read_text()
    for label in ("best single run so far", "best finalist (median of its runs)",
                  "winner: median of 4 runs"):
        assert label in svg, label


# --- xdevice stats -------------------------------------------------------------------


def test_xdevice_layer_figures(xdreport, runs, tmp_path):
    """The layers that measure these (cache, compress, tier) are still to
    come, so a real stats document gets them added here, where they will sit."""
    real = json.loads((runs / "xdevice.stats.json").read_text())
    doc = json.loads(json.dumps(real))
    doc["jobs"][0]["config"]["storage_type"] = "hybrid"
    doc["jobs"][0]["layers"].update({
        "cache": {"hits": 750, "misses": 250, "hit_ratio": 0.75},
        "compress": {"ratio": 2.5, "logical_bytes": 8 << 20, "stored_bytes": 3355443},
        "space": {"allocated_bytes": 4 << 20},
        "tier": {"hot_reads": 1200, "cold_reads": 300},
    })
    (tmp_path / "hybrid.stats.json").write_text(json.dumps(doc))
    shutil.copy(runs / "xdevice.stats.json", tmp_path / "regular.stats.json")
    out = tmp_path / "out"
    p = run_report(xdreport, out, [tmp_path / "hybrid.stats.json", tmp_path / "regular.stats.json"])
    assert p.returncode == 0, p.stderr
    rows = read_csv(out)
    key = dict(kind="xdevice", source=str(tmp_path / "hybrid.stats.json"))
    assert figure(rows, metric="cache_hit_ratio", **key) == 0.75
    assert figure(rows, metric="compression_ratio", **key) == 2.5
    assert figure(rows, metric="logical_bytes", **key) == 8 << 20
    assert figure(rows, metric="stored_bytes", **key) == 3355443
    assert figure(rows, metric="allocated_bytes", **key) == 4 << 20
    assert figure(rows, metric="tier_hot_reads", **key) == 1200
    assert figure(rows, metric="tier_cold_reads", **key) == 300
    assert not [r for r in rows if r["source"].endswith("regular.stats.json")
                and r["metric"] == "cache_hit_ratio"], "absent figures must not be invented"
    labels = {r["configuration"] for r in rows if r["kind"] == "xdevice"}
    assert labels == {"storage_type=hybrid"}, "label by the config key that differs"
    for c in XD_CHARTS:
        assert (out / f"{c}.png").stat().st_size > 5000, f"{c}.png missing"
        assert "storage_type" in (out / f"{c}.svg").read_text()


# --- client/server ----------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_client_server_output(xdreport, tmp_path):
    port = free_port()
    pidfile = tmp_path / "server.pid"
    subprocess.run([FIO, f"--server=ip:127.0.0.1,{port}", f"--daemonize={pidfile}"],
                   check=True, timeout=30)
    try:
        for _ in range(50):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            time.sleep(0.1)
        job = tmp_path / "cs.fio"
        job.write_text(f"[randread]\nfilename={tmp_path}/data\nsize=4m\nbs=4k\nrw=randread\n"
                       "runtime=1\ntime_based\nioengine=psync\n")
        res = tmp_path / "client.json"
        for _ in range(20):     # the server may still be binding its port
            p = subprocess.run([FIO, f"--client=ip:127.0.0.1,{port}", str(job),
                                "--output-format=json", f"--output={res}"],
                               capture_output=True, text=True, timeout=RUN_TIMEOUT)
            if p.returncode == 0:
                break
            time.sleep(0.2)
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        if pidfile.exists():
            subprocess.run(["kill", pidfile.read_text().strip()])
    doc = fio_docs(res)[0]
    entry = doc["client_stats"][0]
    out = tmp_path / "out"
    p = run_report(xdreport, out, [res])
    assert p.returncode == 0, p.stderr
    rows = read_csv(out)
    key = dict(kind="fio", source=str(res), direction="read", host=entry["hostname"])
    assert figure(rows, metric="iops", **key) == entry["read"]["iops"]


@pytest.mark.parametrize("fmt", ["--minimal", "--output-format=terse"])
def test_terse_output_named_as_such(xdreport, tmp_path, fmt):
    """fio's terse output starts with a digit as a log does; it was refused as
    a log with a bad first line. It gets one line naming the format and what
    xdreport reads instead, from report and compare alike."""
    res = tmp_path / "terse.txt"
    p = subprocess.run([FIO, "--name=t", f"--filename={tmp_path}/data", "--size=256k",
                        "--ioengine=psync", fmt, f"--output={res}"],
                       capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert p.returncode == 0, p.stderr
    for cmd in (["report", "-o", str(tmp_path / "out")], ["compare", str(res)]):
        p = subprocess.run([xdreport, *cmd, str(res)], capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
        lines = p.stderr.splitlines()
        assert p.returncode in (1, 2) and len(lines) == 1, p.stderr
        assert f"{res}: fio terse output" in lines[0] and "allowed: fio JSON" in lines[0], lines


def test_unified_rw_reporting(xdreport, tmp_path):
    """fio's unified_rw_reporting=1 gives a job only "mixed" (no "read" or
    "write"): report and compare read it as the direction "mixed", with fio's
    figures (both once refused the file); =both is read as read and write,
    its "mixed" (their sum) left out so nothing counts twice."""
    outs = {}
    for mode in ("1", "both"):
        outs[mode] = tmp_path / f"unified-{mode}.json"
        p = subprocess.run([FIO, "--name=u", f"--filename={tmp_path}/data", "--size=1m",
                            "--bs=4k", "--rw=randrw", "--ioengine=psync",
                            f"--unified_rw_reporting={mode}", "--output-format=json",
                            f"--output={outs[mode]}"],
                           capture_output=True, text=True, timeout=RUN_TIMEOUT)
        assert p.returncode == 0, p.stderr
    out = tmp_path / "out"
    p = run_report(xdreport, out, outs.values())
    assert p.returncode == 0, p.stderr
    rows = read_csv(out)
    mixed = fio_docs(outs["1"])[0]["jobs"][0]["mixed"]
    assert figure(rows, kind="fio", source=str(outs["1"]), direction="mixed",
                  metric="iops") == mixed["iops"]
    assert {r["direction"] for r in rows if r["source"] == str(outs["both"])} == {"read", "write"}
    p = subprocess.run([xdreport, "compare", str(outs["1"]), str(outs["1"])],
                       capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert p.returncode in (0, 3), p.stdout + p.stderr
    assert re.search(r"^u\s+mixed_iops\s", p.stdout, re.M), p.stdout


# --- the page in a browser ---------------------------------------------------------------


class SvgCounter(HTMLParser):
    """Counts each top-level <svg> and the path/rect elements inside it."""

    def __init__(self):
        super().__init__()
        self.svgs, self.depth, self.scripts, self.external = [], 0, 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        for k in ("src", "href"):
            v = a.get(k) or ""
            if re.match(r"(https?:)?//", v):
                self.external.append(v)
        if tag == "link":
            self.external.append(a.get("href"))
        if tag == "svg":
            if self.depth == 0:
                self.svgs.append(0)
            self.depth += 1
        elif self.depth and tag in ("path", "rect"):
            self.svgs[-1] += 1

    def handle_endtag(self, tag):
        if tag == "svg":
            self.depth -= 1


def chromium(args, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("chromium is not installed (scripts/deps.sh installs it)")
    profile = tempfile.mkdtemp(prefix="xdreport-chromium-", dir=tmp_path)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def test_html_in_chromium(report, tmp_path):
    page = report / "report.html"
    src = SvgCounter()
    src.feed(page.read_text())
    assert src.scripts == 0, "the report needs no JavaScript"
    assert not src.external, f"the report must be self-contained: {src.external}"
    nfigures = page.read_text().count("<figure")
    assert nfigures == len(RANDREAD_CHARTS) + len(MIXED_CHARTS)

    p = chromium(["--dump-dom", page.as_uri()], tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Uncaught" not in p.stderr and "CONSOLE" not in p.stderr, p.stderr[-2000:]
    dom = SvgCounter()
    dom.feed(p.stdout)
    assert len(dom.svgs) == nfigures, "every chart must be in the page as <svg>"
    assert all(n >= 10 for n in dom.svgs), f"path/rect elements per chart: {dom.svgs}"

    shot = tmp_path / "report.png"
    p = chromium([f"--screenshot={shot}", "--window-size=1400,3000", page.as_uri()], tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert png_size(shot) == (1400, 3000)
    # a blank or unstyled page compresses to a few KiB; charts and tables do not
    assert shot.stat().st_size > 100_000, f"screenshot is only {shot.stat().st_size} bytes"
    keep = os.environ.get("XD_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


# --- speed ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hundred(tmp_path_factory):
    """100 small real fio results (json+): one fio run of 100 jobs, each job
    written out as a result file of its own (100 fio processes one after
    another took several seconds of make test for the same documents)."""
    d = tmp_path_factory.mktemp("xdreport-100")
    engines = ["psync", "pvsync", "sync", "mmap", "posixaio"]
    sizes = ["4k", "8k", "16k", "32k", "64k"]
    modes = ["randread", "read", "randwrite", "write"]
    cases = [(e, b, m) for e in engines for b in sizes for m in modes][:100]
    job = "[global]\nsize=1m\n" + "".join(
        f"[speed]\nfilename=data{i:03d}\nbs={b}\nrw={m}\nioengine={e}\n"
        for i, (e, b, m) in enumerate(cases))
    (d / "all.fio").write_text(job)
    finish_fio([start_fio(["all.fio", "--output-format=json+", "--eta=never",
                           "--output=all.json"], d)])
    doc = json.loads((d / "all.json").read_text())
    assert len(doc["jobs"]) == 100, len(doc["jobs"])
    for i, one in enumerate(doc["jobs"]):
        (d / f"r{i:03d}.json").write_text(json.dumps(dict(doc, jobs=[one])))
    for name in ["all.fio", "all.json"] + [f"data{i:03d}" for i in range(100)]:
        (d / name).unlink()
    return d


def test_hundred_results(xdreport, hundred, tmp_path):
    """100 results in one report: every one in the CSV, every chart drawn.
    How long it takes is printed, never asserted (a test must not depend on
    the machine's speed)."""
    out = tmp_path / "out"
    p = run_report(xdreport, out, [hundred])
    assert p.returncode == 0, p.stderr
    rows = read_csv(out)
    assert len({r["source"] for r in rows if r["kind"] == "fio"}) == 100
    for c in ("iops", "bandwidth", "latency-percentiles", "clat-histogram", "clat-cdf"):
        assert (out / f"speed-{c}.png").stat().st_size > 5000
    print(f"xdreport: 100 fio results in {p.elapsed:.2f}s")


# --- the bench's report: recommendation first, in a real browser --------------------------
#
# A small synthetic results directory laid out as scripts/bench.sh lays out
# its own (NAME.xdevice.rK.json, NAME.reference.rK.json, NAME.xdevice.rK.stats.json),
# with figures chosen so the answer is known: on randread regular-io_uring
# is best, hybrid-io_uring within 1% of it (tied), direct-libaio far behind;
# regular-io_uring beats its reference by 25% with little noise. The hybrid
# never promoted and the direct type answered reads in 2 µs: both must be
# warned about. No fio runs: the test is about the report, and stays fast.

BENCH_CONFIGS = {   # name: (xdevice type, async, reference engine, base IOPS, reference IOPS)
    "regular-io_uring": ("regular", "io_uring", "io_uring", 100_000, 80_000),
    "hybrid-io_uring": ("hybrid", "io_uring", "io_uring", 99_000, 98_000),
    "direct-libaio": ("direct", "libaio", "libaio", 10_000, 11_000),
}
BENCH_WORKLOADS = {"randread-4k-qd1": ("randread", 1.0), "mixed-70-30-zipf": ("randrw", 0.7)}
JITTER = (1.01, 1.0, 0.995)     # per repetition: about 1% noise (the median is run 2)
REF_JITTER = (1.01, 0.99, 1.0)  # the references' own, so pairs do not cancel out


def fio_dir(iops, runtime_ms=300, lat_ns=10_000):
    if not iops:
        return {"io_bytes": 0, "bw_bytes": 0, "iops": 0, "runtime": 0, "total_ios": 0,
                "lat_ns": {"min": 0, "max": 0, "mean": 0}}
    ios = int(iops * runtime_ms / 1000)
    pct = {"50.000000": lat_ns, "90.000000": lat_ns * 2, "99.000000": lat_ns * 5,
           "99.900000": lat_ns * 20, "99.990000": lat_ns * 50}
    bins = {str(lat_ns // 2): ios // 4, str(lat_ns): ios // 2, str(lat_ns * 5): ios // 4}
    return {"io_bytes": ios * 4096, "bw_bytes": int(iops * 4096), "iops": float(iops),
            "runtime": runtime_ms, "total_ios": ios,
            "lat_ns": {"min": lat_ns // 4, "max": lat_ns * 100, "mean": lat_ns * 1.5,
                       "percentile": pct, "bins": bins}}


def fio_doc(jobs, global_opts):
    return {"fio version": "fio-3.33", "timestamp": 1764849600, "timestamp_ms": 1764849600000,
            "global options": global_opts, "jobs": jobs}


def bench_job(workload, iops, lat_ns):
    rw, read_share = BENCH_WORKLOADS[workload]
    return {"jobname": workload, "groupid": 0, "error": 0,
            "job options": {"rw": rw, "bs": "4k", "iodepth": "1", "stonewall": ""},
            "read": fio_dir(iops * read_share, lat_ns=lat_ns),
            "write": fio_dir(iops * (1 - read_share), lat_ns=lat_ns), "trim": fio_dir(0)}


def stats_doc(xd_type, rep):
    tier = {"hot_reads": 0, "cold_reads": 5000, "promotions": 0, "demotions": 0}
    file_layer = {"direct_alignment": 4096, "bounced": 0}
    layers = {"tier": tier} if xd_type == "hybrid" else {"file": file_layer}
    read = {"ops": 5000, "bytes": 5000 * 4096,
            "lat_ns": {"mean": 2500, "min": 1000, "max": 9000, "p50": 2000, "p99": 8000}}
    job = {"name": "randread-4k-qd1", "jobnum": 0, "type": xd_type,
           "config": {"storage_type": xd_type}, "layers": layers, "ops": {"read": read}}
    return {"xdevice": {"version": "0.1.0", "run_id": f"fixture-{rep}"}, "jobs": [job],
            "aggregate": {"jobs": 1, "ops": {"read": read}}}


@pytest.fixture(scope="module")
def bench_results(tmp_path_factory):
    d = tmp_path_factory.mktemp("xdreport-bench")
    for name, (xd_type, xd_async, engine, base, ref) in BENCH_CONFIGS.items():
        for rep, jit in enumerate(JITTER, start=1):
            xd_opts = {"ioengine": "external:/x/build/xdevice.so", "xd_type": xd_type,
                       "xd_async": xd_async, "filename": f"/var/tmp/b/{name}.dat",
                       "xd_stats": f"{d}/{name}.xdevice.r{rep}.stats.json"}
            if rep == 1:    # as the bench: logs in the first run only
                xd_opts["write_iops_log"] = f"{d}/{name}.xdevice"
                (d / f"{name}.xdevice_iops.1.log").write_text(
                    "".join(f"{t}, {int(base)}, 0, 4096, 0\n" for t in (50, 100, 150, 200)))
            ref_opts = {"ioengine": engine, "direct": "1" if xd_type == "direct" else "0",
                        "filename": f"/var/tmp/b/{name}.dat"}
            for side, opts, iops, lat in (("xdevice", xd_opts, base * jit, 8_000),
                                          ("reference", ref_opts, ref * REF_JITTER[rep - 1],
                                           12_000)):
                jobs = [bench_job(w, iops, lat) for w in BENCH_WORKLOADS]
                (d / f"{name}.{side}.r{rep}.json").write_text(json.dumps(fio_doc(jobs, opts)))
            (d / f"{name}.xdevice.r{rep}.stats.json").write_text(
                json.dumps(stats_doc(xd_type, rep)))
    return d


@pytest.fixture(scope="module")
def bench_report(xdreport, bench_results, tmp_path_factory):
    out = tmp_path_factory.mktemp("xdreport-bench-out") / "report"
    p = run_report(xdreport, out, [bench_results], title="fixture bench")
    assert p.returncode == 0, f"rc={p.returncode}\n{p.stderr}"
    return out


def recommendation_rows(summary):
    """workload -> the cells of its row in summary.md's recommendation table."""
    text = summary.split("## Recommendation", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) >= 6 and cells[0] in BENCH_WORKLOADS:
            rows[cells[0]] = cells
    return rows


def test_bench_recommendation(bench_report):
    summary = (bench_report / "summary.md").read_text()
    assert summary.index("## Recommendation") < summary.index("## randread-4k-qd1")
    rows = recommendation_rows(summary)
    assert set(rows) == set(BENCH_WORKLOADS), rows
    workload, best, tied, iops, vs_ref, why = rows["randread-4k-qd1"]
    assert best == "**regular-io_uring**"
    assert tied == "hybrid-io_uring", "1% apart with 1% noise is a tie; 10x apart is not"
    assert "3 runs" in iops
    m = re.match(r"([\d.]+)× \(([\d.]+)–([\d.]+)\) (faster|slower|within noise)$", vs_ref)
    assert m, vs_ref
    ratio, lo, hi = map(float, m.groups()[:3])
    assert abs(ratio - 1.25) < 0.01 and lo <= 1.25 <= hi and lo > 1, vs_ref
    assert m.group(4) == "faster"
    assert why.startswith("vs the runner-up hybrid-io_uring: xd_type=regular (not hybrid)"), why


def test_bench_within_noise_is_computed(bench_report):
    """The word beside each ratio is the interval's verdict, row by row:
    hybrid (99k against 98k, 1% noise on each side) is within noise,
    regular (100k against 80k) is faster, direct (10k against 11k) slower."""
    summary = (bench_report / "summary.md").read_text()
    section = summary.split("## randread-4k-qd1", 1)[1].split("\n## ", 1)[0]
    words = {}
    for name in BENCH_CONFIGS:
        row = [l for l in section.splitlines() if l.startswith(f"| {name} |")]
        assert row, section
        cell = row[0].rstrip(" |").split(" | ")[-1]
        m = re.match(r"([\d.]+)× \(([\d.]+)–([\d.]+)\) (faster|slower|within noise)$", cell)
        assert m, cell
        lo, hi = float(m.group(2)), float(m.group(3))
        assert lo < hi, f"{name}: the references' own noise must widen the interval: {cell}"
        assert m.group(4) == ("within noise" if lo <= 1 <= hi else "faster" if lo > 1
                              else "slower"), cell
        words[name] = m.group(4)
    assert words == {"hybrid-io_uring": "within noise", "regular-io_uring": "faster",
                     "direct-libaio": "slower"}, words


def test_bench_warnings(bench_report):
    summary = (bench_report / "summary.md").read_text()
    warnings = summary.split("## Warnings", 1)[1].split("\n## ", 1)[0]
    assert "**hybrid-io\\_uring**" in warnings or "**hybrid-io_uring**" in warnings
    assert "0 promotions" in warnings and "(3 of 3 runs)" in warnings
    assert "direct-libaio" in warnings and "page cache" in warnings
    assert "regular-io_uring" not in warnings, "the regular type does what it says"


def test_bench_pairs_and_colours(bench_report):
    html = (bench_report / "report.html").read_text()
    for w in BENCH_WORKLOADS:
        assert (bench_report / f"{w}-pairs.svg").is_file(), f"no paired bars for {w}"
    # the same configuration has the same colour in every workload, and no
    # two configurations of a workload share one
    for w in BENCH_WORKLOADS:
        section = html.split(f'<section id="w-{w}">', 1)[1].split("</section>", 1)[0]
        swatches = re.findall(r'<tr><td><span class="swatch" style="background:(#[0-9A-Fa-f]{6})">'
                              r'</span>([^<]+)</td>', section)
        assert len(swatches) == 2 * len(BENCH_CONFIGS), swatches
        assert len({c for c, _ in swatches}) == len(swatches), swatches
    per_workload = [dict((label, c) for c, label in re.findall(
        r'<span class="swatch" style="background:(#[0-9A-Fa-f]{6})"></span>([^<]+)</td>',
        html.split(f'<section id="w-{w}">', 1)[1].split("</section>", 1)[0]))
        for w in BENCH_WORKLOADS]
    assert per_workload[0] == per_workload[1]
    # references are labelled one way: "NAME ref (fio ENGINE)"
    refs = [label for label in per_workload[0] if " ref " in label]
    assert sorted(refs) == sorted(f"{n} ref (fio {c[2]})" for n, c in BENCH_CONFIGS.items())


GEOMETRY_SCRIPT = """
<script>
window.addEventListener('load', () => {
  const clipped = [], sections = [];
  let texts = 0;
  for (const s of document.querySelectorAll('main > section')) sections.push(s.id || s.className);
  for (const svg of document.querySelectorAll('figure svg')) {
    const box = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll('text')) {
      if (!t.textContent.trim()) continue;
      const r = t.getBoundingClientRect();
      if (r.width === 0) continue;
      texts++;
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 ||
          r.bottom > box.bottom + 1)
        clipped.push(svg.getAttribute('aria-label') + ': ' + t.textContent.trim());
    }
  }
  const out = document.createElement('pre');
  out.id = 'xd-geometry';
  out.textContent = JSON.stringify({sections, clipped, texts,
                                    svgs: document.querySelectorAll('figure svg').length});
  document.body.appendChild(out);
});
</script>
"""


def test_bench_report_in_chromium(bench_report, tmp_path):
    """The page as a browser lays it out: the recommendation is the first
    section, no chart text falls outside its chart, and the screenshot is a
    real page (not blank). One chromium run does both (--dump-dom and
    --screenshot): its start-up is most of the test's time."""
    page = bench_report / "report.html"
    # a copy with a measuring script at the end (the report itself has none);
    # the screenshot shows the top of the page, which the script leaves alone
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", GEOMETRY_SCRIPT + "</body>"))
    shot = tmp_path / "bench.png"
    p = chromium(["--dump-dom", f"--screenshot={shot}", "--window-size=1280,1400",
                  probe.as_uri()], tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    m = re.search(r'<pre id="xd-geometry">(.*?)</pre>', p.stdout, re.S)
    assert m, "the probe script did not run"
    geo = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&")
                     .replace("&lt;", "<").replace("&gt;", ">"))
    assert geo["sections"][0] == "recommendation", geo["sections"]
    assert geo["sections"][1] == "warnings", geo["sections"]
    assert geo["svgs"] >= 2 * len(BENCH_WORKLOADS)
    assert geo["texts"] >= 20 * geo["svgs"], f"too few chart labels measured: {geo}"
    assert not geo["clipped"], f"text outside its chart: {geo['clipped'][:10]}"

    assert png_size(shot) == (1280, 1400)
    # a blank or unstyled page compresses to a few KiB; tables and colour do not
    assert shot.stat().st_size > 60_000, f"screenshot is only {shot.stat().st_size} bytes"
    keep = os.environ.get("XD_KEEP_BENCH_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


@pytest.mark.parametrize("env, words", [
    ({"BENCH_REPS": "1"}, ["BENCH_REPS=1", "from 2 to 100"]),
    ({"BENCH_REPS": "three"}, ["BENCH_REPS=three", "from 2 to 100"]),
    ({"BENCH_ONLY": "mmap,nosuch"}, ["BENCH_ONLY", "nosuch", "allowed", "hybrid-io_uring"]),
    # patterns: grep took them, matched, and the bench ran nothing (exit 0)
    ({"BENCH_ONLY": "mmap*"}, ["BENCH_ONLY=mmap*", "\"mmap*\" is not a configuration"]),
    ({"BENCH_ONLY": ","}, ["BENCH_ONLY=,", "\"\" is not a configuration", "allowed"]),
])
@pytest.mark.xdist_group("repo-bench")  # compares the repository's results/
def test_bench_refuses_bad_knobs(env, words, tmp_path):
    """One line naming the knob, the value and what is allowed; no fio run."""
    results = REPO / "results"
    before = set(results.iterdir()) if results.is_dir() else set()
    p = subprocess.run(["bash", str(REPO / "scripts" / "bench.sh")], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, BENCH_DIR=str(tmp_path), **env))
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), p.stderr
    assert list(tmp_path.iterdir()) == [], "a refused bench leaves nothing behind"
    assert (set(results.iterdir()) if results.is_dir() else set()) == before, \
        "a refused bench makes no results directory"


def test_bench_logs_find_their_configuration(bench_report):
    """The logs are from run 1, the tables show run 2 (the median): each
    log still goes to its own configuration and workload (job 1)."""
    gp = (bench_report / "charts.gp").read_text()
    chart = gp.split("# --- randread-4k-qd1-iops-over-time ---", 1)[1].split("# --- ", 1)[0]
    titles = set(re.findall(r"title '([^']+)'", chart)) - {""}
    assert set(BENCH_CONFIGS) <= titles, titles
    assert "# --- mixed-70-30-zipf-iops-over-time ---" not in gp, "job 1's logs are randread's"


def test_bench_shared_options_said_once(bench_report):
    html = (bench_report / "report.html").read_text()
    section = html.split('<section id="w-randread-4k-qd1">', 1)[1].split("</section>", 1)[0]
    options = section.split("<summary>Options of each configuration</summary>", 1)[1]
    shared = re.search(r"<p>Every configuration: <code>(.*?)</code></p>", options)
    assert shared and "rw=randread" in shared.group(1) and "bs=4k" in shared.group(1), options[:500]
    rows = re.findall(r'<tr class="diff"><td>([^<]+)</td>', options)
    assert "ioengine" in rows and "xd_type" in rows, rows
    assert "rw" not in rows and "bs" not in rows, "a shared option is said once, not per column"


def plotted_titles(gp_text, chart):
    """[(title, dash type)] of the lines one chart of charts.gp plots (its SVG)."""
    body = gp_text.split(f"set output '{chart}.svg'")[1].split("set output")[0]
    return re.findall(r" dt (\d+) title '([^']*)'", body)


def test_group_reporting_jobs_are_lines_of_their_own(xdreport, tmp_path):
    """numjobs=2 with group_reporting: one configuration in the JSON (the
    sum of the two jobs), two bandwidth logs (one per job). Each job's line
    is labelled apart and drawn apart, not two lines titled 'G.fio read'
    in the same colour and dash, each at half the table's figure."""
    d = tmp_path / "in"
    d.mkdir()
    job = {"jobname": "G", "groupid": 0, "error": 0,
           "job options": {"rw": "randrw", "bs": "4k", "numjobs": "2", "group_reporting": "",
                           "write_bw_log": "G", "log_avg_msec": "200"},
           "read": fio_dir(20_000), "write": fio_dir(20_000), "trim": fio_dir(0)}
    (d / "G.fio.json").write_text(json.dumps(fio_doc([job], {"ioengine": "psync"})))
    for n in (1, 2):   # fio: time (ms), KiB/s, direction, block size, offset
        (d / f"G_bw.{n}.log").write_text("".join(
            f"{t}, {40000 + n}, {ddir}, 0, 0\n" for t in (200, 400, 600) for ddir in (0, 1)))
    out = tmp_path / "out"
    p = run_report(xdreport, out, [d])
    assert p.returncode == 0, p.stderr
    lines = plotted_titles((out / "charts.gp").read_text(), "G-bandwidth-over-time")
    assert sorted(lines) == [("1", "G.fio job 1 read"), ("2", "G.fio job 1 write"),
                             ("3", "G.fio job 2 read"), ("4", "G.fio job 2 write")], lines
    # each log still belongs to the configuration
    logs = {r["source"]: r["configuration"] for r in read_csv(out) if r["kind"] == "log"}
    assert logs == {str(d / "G_bw.1.log"): "G.fio", str(d / "G_bw.2.log"): "G.fio"}, logs
    assert "A group_reporting job writes a log per job" in (out / "report.html").read_text()


def test_cache_warning_names_fio_invalidate(xdreport, tmp_path):
    """A cache that never hit because fio dropped it at every pass
    (invalidate=1, fio's default, recorded by omission in the job's
    options) is blamed on invalidate, not on the cache's size; with
    invalidate=0, or without the fio job among the inputs, the old advice
    stands."""
    d = tmp_path / "in"
    d.mkdir()
    cache_stats = lambda ratio: {
        "xdevice": {"version": "0.1.0", "run_id": "x"},
        "jobs": [{"name": "c", "jobnum": 0, "type": "regular",
                  "config": {"storage_type": "regular", "enable_read_cache": True},
                  "layers": {"cache": {"hits": int(ratio * 1000), "misses": 1000 - int(ratio * 1000),
                                       "hit_ratio": ratio}}}]}
    for name, invalidate, ratio in (("looped", None, 0.0), ("warm", "0", 0.05)):
        opts = {"rw": "randread", "bs": "4k", "size": "8m", "io_size": "32m",
                "xd_enable_read_cache": "true", "xd_cache_size": "16m",
                "xd_stats": f"/elsewhere/{name}.stats.json"}
        if invalidate:
            opts["invalidate"] = invalidate
        job = {"jobname": "c", "groupid": 0, "error": 0, "job options": opts,
               "read": fio_dir(20_000), "write": fio_dir(0), "trim": fio_dir(0)}
        (d / f"{name}.json").write_text(json.dumps(fio_doc([job], {"ioengine": "external:x.so"})))
        (d / f"{name}.stats.json").write_text(json.dumps(cache_stats(ratio)))
    (d / "alone.stats.json").write_text(json.dumps(cache_stats(0.01)))
    out = tmp_path / "out"
    p = run_report(xdreport, out, [d])
    assert p.returncode == 0, p.stderr
    warnings = {m[0]: m[1] for m in re.findall(r"^- \*\*(.+?)\*\*: (.*)$",
                                               (out / "summary.md").read_text(), re.M)}
    looped = next(v for k, v in warnings.items() if "looped" in k)
    assert "fio ran the job with invalidate=1 (its default)" in looped, warnings
    assert "rerun with invalidate=0" in looped and "no cache" not in looped, warnings
    for name in ("warm", "alone"):
        text = next(v for k, v in warnings.items() if name in k)
        assert "invalidate" not in text and "(a larger xd_cache_size, or no cache)" in text, warnings


def test_no_winner_crowned_between_figures_that_print_alike(xdreport, tmp_path):
    """numjobs=2 without group_reporting, one run: two clones of one job at
    3000 and 2999.33 IOPS, both printed 3.00k, with no interval to tell
    them apart. Neither is bold in the table nor "run this"; a third
    configuration far behind leaves them marked together."""
    def report_of(jobs, name):
        d = tmp_path / name
        d.mkdir()
        (d / "I.fio.json").write_text(json.dumps(fio_doc(jobs, {"ioengine": "psync"})))
        out = tmp_path / f"{name}-out"
        p = run_report(xdreport, out, [d])
        assert p.returncode == 0, p.stderr
        return (out / "summary.md").read_text(), (out / "report.html").read_text()

    clone = lambda iops: {"jobname": "I", "groupid": 0, "error": 0,
                          "job options": {"rw": "randread", "bs": "4k", "numjobs": "2"},
                          "read": fio_dir(iops), "write": fio_dir(0), "trim": fio_dir(0)}
    md, html = report_of([clone(3000), clone(2999.33)], "two")
    row = next(ln for ln in md.splitlines() if ln.startswith("| I | "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == ("no pick: I.fio job 1, I.fio job 2 are level (the same IOPS as printed, "
                        "no interval tells them apart)"), row
    assert cells[4].startswith("between them: "), row
    assert "**3.00k**" not in md and "**" not in md.split("## Warnings")[0].split("| I |", 1)[1], md
    assert 'class="n best"' not in html and 'class="pick"' not in html.split("</thead>", 1)[1]

    md, _ = report_of([clone(3000), clone(2999.33),
                       {**clone(1000), "job options": {"rw": "randread", "bs": "4k", "iodepth": "2"}}],
                      "three")
    assert md.count("**3.00k**") == 2 and "**1.00k**" not in md, md
