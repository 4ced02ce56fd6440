"""Many hosts through fio's client/server mode: xdtune search --hosts runs
its trials on two fio servers (loopback ports, started and stopped by the
fixture), one per server at once, and records each trial's host; each
server's xd_stats document comes back in the client's output; a server
that cannot load the engine, and a bad hosts file, get one clear line.

Trials are 0.5 s fio runs on a 4 MiB file made beforehand (both servers are
this machine, so they read the same file: no layout race)."""
import csv
import json
import os
import re
import subprocess

import pytest

from conftest import FIO, REPO, needs_io_uring
from hostsfix import fio_servers  # noqa: F401 (a fixture)

XDTUNE = REPO / "build" / "xdtune"
XDREPORT = REPO / "build" / "xdreport"
TIMEOUT = 120

SPACE = "async = sync|io_uring\nread_ahead_kb = 0|128\n"
START = "[local]\nstorage_type = regular\nasync = sync\nenable_read_cache = true\n"


def job_text(engine_ref, data):
    return f"""[global]
ioengine=external:{engine_ref}
filename={data}
size=4m
bs=4k
iodepth=4
time_based
runtime=500ms
[work]
rw=randread
"""


def setup_files(tmp_path, engine_ref, hosts):
    data = tmp_path / "data.dat"
    data.write_bytes(os.urandom(4 << 20))
    (tmp_path / "job.fio").write_text(job_text(engine_ref, data))
    (tmp_path / "start.ini").write_text(START)
    (tmp_path / "space.ini").write_text(SPACE)
    (tmp_path / "hosts").write_text("# the fio servers\n\n" + "\n".join(hosts) + "\n")


def xdtune(tmp_path, *extra):
    args = [str(XDTUNE), "search", "--job", "job.fio", "--config", "start.ini", "--space",
            "space.ini", "--out", "out", "--hosts", "hosts", *[str(a) for a in extra]]
    p = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert p.returncode >= 0, f"xdtune killed by signal {-p.returncode}\n{p.stderr}"
    return p


def one_line(p, *needles):
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode != 0, p.stdout + p.stderr
    assert len(lines) == 1, f"want one line, got:\n{p.stderr}"
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"


@needs_io_uring
def test_search_on_two_hosts(engine, tmp_path, fio_servers):
    # a relative engine path: a server resolves it against its own
    # directory, so xdtune must send it absolute
    setup_files(tmp_path, os.path.relpath(engine, tmp_path), fio_servers)
    p = xdtune(tmp_path, "--budget", 3, "--finalists", 1, "--repeats", 1, "--seed", 2)
    assert p.returncode == 0, p.stdout + p.stderr
    out = tmp_path / "out"
    assert "xdtune best config" in (out / "best.ini").read_text()
    trials = json.loads((out / "history.json").read_text())["trials"]
    assert all(not t["failed"] for t in trials), trials
    assert {t["host"] for t in trials} == set(fio_servers)
    # the start config's reference run, once on each host, first
    ref = trials[:2]
    assert [t["host"] for t in ref] == fio_servers
    assert ref[0]["config"] == ref[1]["config"] and ref[0]["phase"].startswith("start")
    # every figure is rescaled to the first host's reference
    first_iops = ref[0]["figures"]["iops"]
    assert abs(ref[1]["normalised"]["iops"] - first_iops) < 1e-6 * first_iops
    assert ref[0]["normalised"]["iops"] == ref[0]["figures"]["iops"]
    for t in trials:
        job = (out / "trials" / f"{t['trial']:03d}.fio").read_text()
        assert f"ioengine=external:{engine}" in job, "the engine path must be sent absolute"
        assert f"xd_config={out.resolve()}/trials/" in job
        # the server's stats document came back through fio's output
        raw = (out / "trials" / f"{t['trial']:03d}.json").read_text()
        assert "> xdevice-stats: {" in raw
        assert 0 <= t["figures"]["cache_hit_ratio"] <= 1
    # 3 budgeted trials + 1 extra reference + 1 re-measure
    assert len(trials) == 5
    assert "xdtune: best config" in p.stdout


def test_server_without_the_engine(engine, tmp_path, fio_servers):
    setup_files(tmp_path, "/nonexistent/xdevice.so", fio_servers)
    p = xdtune(tmp_path, "--budget", 2, "--quiet")
    one_line(p, "cannot load the xdevice engine", fio_servers[0], "/nonexistent/xdevice.so",
             "same absolute path on every server")
    trials = json.loads((tmp_path / "out" / "history.json").read_text())["trials"]
    assert len(trials) == 2 and all(t["failed"] for t in trials), "no search past the reference"


def test_unreachable_server(engine, tmp_path, fio_servers):
    # a port no server listens on: fio's client cannot connect
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1,{s.getsockname()[1]}"
    setup_files(tmp_path, engine, [fio_servers[0], dead])
    p = xdtune(tmp_path, "--budget", 2, "--quiet")
    one_line(p, "reference run", dead, "connect")


BAD_HOSTS = [
    ("a b", "without spaces"),
    ("host,0", "port"),
    ("ip6:zz::1", "ip6:"),
    ("sock:relative", "absolute path"),
]


def test_bad_hosts_file(engine, tmp_path):
    for line, why in BAD_HOSTS:
        setup_files(tmp_path, engine, ["127.0.0.1,8765", line])
        p = xdtune(tmp_path)
        one_line(p, "hosts:4:", line, why)
    setup_files(tmp_path, engine, ["127.0.0.1,8765", "127.0.0.1,8765"])
    one_line(xdtune(tmp_path), "hosts:4:", "listed twice")
    setup_files(tmp_path, engine, [])
    one_line(xdtune(tmp_path), "names no fio server")
    setup_files(tmp_path, "no/such/xdevice.so", ["127.0.0.1,8765"])
    one_line(xdtune(tmp_path), "job.fio", "no/such/xdevice.so", "absolute path")


def test_hosts_file_as_editors_save_it(engine, tmp_path):
    """A byte order mark, CRLF line ends and ; comments, as in an INI file:
    the servers are read as the lines name them (the engine's missing path
    then stops the search, after the hosts file was read)."""
    setup_files(tmp_path, "no/such/xdevice.so", [])
    (tmp_path / "hosts").write_bytes(b"\xef\xbb\xbf; the lab\r\n127.0.0.1,8765   ; first\r\n"
                                     b"\r\n127.0.0.2,8765\r\n")
    one_line(xdtune(tmp_path), "job.fio", "no/such/xdevice.so", "absolute path")
    # the comment is not part of the name: the same server twice
    (tmp_path / "hosts").write_bytes(b"127.0.0.1,8765 ; one\n127.0.0.1,8765\n")
    one_line(xdtune(tmp_path), "hosts:2:", "listed twice")


# --- make bench HOSTS=FILE and the report by host ------------------------------------


@pytest.mark.xdist_group("repo-bench")  # a bench beside the others' /dev/shm checks
def test_bench_on_two_hosts(engine, tmp_path, fio_servers):
    """scripts/bench.sh with HOSTS=FILE (what `make bench HOSTS=FILE` runs:
    it hands over to scripts/bench-hosts.sh), cut to one configuration and
    one 0.5 s workload: one output per host, each with its server's stats
    document, and a report by host with an all-hosts row."""
    hosts = tmp_path / "hosts"
    hosts.write_text("# two servers\n" + "\n".join(fio_servers) + "\n")
    workloads = tmp_path / "workloads.fio"
    workloads.write_text("[randread-4k]\nstonewall\nrw=randread\nbs=4k\niodepth=4\n")
    res = tmp_path / "res"
    env = dict(os.environ, HOSTS=str(hosts), BENCH_DIR=str(tmp_path), BENCH_OUT=str(res), BENCH_SIZE="4m",
               BENCH_RUNTIME="500ms", BENCH_HOSTS_CONFIGS="regular:sync",
               BENCH_HOSTS_WORKLOADS=str(workloads))
    p = subprocess.run(["bash", str(REPO / "scripts" / "bench.sh")],
                       capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=REPO)
    assert p.returncode == 0, p.stdout + p.stderr
    outputs = sorted(res.glob("regular-sync.*.json"))
    assert len(outputs) == 2, outputs
    addrs = [h.split(":")[-1].split(",")[0] for h in fio_servers]  # 127.0.0.1, 127.0.0.2
    iops = {}
    for o in outputs:
        text = o.read_text()
        assert "> xdevice-stats: {" in text, "the server's stats must come back to the client"
        doc = json.loads(text[text.index("\n{") + 1:])
        (entry,) = [e for e in doc["client_stats"] if e["jobname"] == "randread-4k"]
        iops[entry["hostname"]] = entry["read"]["iops"]
    assert sorted(iops) == addrs
    # nothing of the run is left in BENCH_DIR: data unlinked by fio, stats by the script
    assert not list(tmp_path.glob("xdevice-bench-*")), list(tmp_path.glob("xdevice-bench-*"))
    rows = list(csv.DictReader((res / "report" / "hosts.csv").open()))
    by_host = {r["host"]: float(r["iops"]) for r in rows if r["workload"] == "randread-4k"}
    assert set(by_host) == {*addrs, "all hosts"}
    for a in addrs:
        assert abs(by_host[a] - iops[a]) < 1e-3 * iops[a] + 0.01
    assert abs(by_host["all hosts"] - sum(iops.values())) < 1e-3 * sum(iops.values())
    # figures.csv labels every fio figure with its host
    figs = list(csv.DictReader((res / "report" / "figures.csv").open()))
    assert {r["host"] for r in figs if r["kind"] == "fio"} == set(addrs)
    md = (res / "report" / "hosts.md").read_text()
    assert "## xdevice stats by host" in md
    for a in addrs:
        assert f"| {a} | host={a}" in md, md


def test_report_of_one_client_on_two_servers(engine, tmp_path, fio_servers):
    """One client run on both servers (fio --client=A --client=B, one output):
    each server sends its own stats document back, and the report shows both,
    one row each. Before, xdreport kept one of them (the one with the most
    jobs, the last of equals) and labelled it with the first host fio's JSON
    names, whichever server it came from."""
    job = tmp_path / "two.fio"
    job.write_text(f"[both]\nioengine=external:{engine}\nxd_type=regular\n"
                   f"xd_stats={tmp_path}/both.stats.json\nfilename={tmp_path}/data\n"
                   "size=1m\nbs=4k\nrw=randread\n")
    (tmp_path / "data").write_bytes(os.urandom(1 << 20))
    out = tmp_path / "client.json"
    p = subprocess.run([FIO, *[f"--client={h}" for h in fio_servers], "--output-format=json",
                        f"--output={out}", str(job)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stdout + p.stderr
    run_ids = set(re.findall(r'> xdevice-stats: \{"xdevice":\{[^}]*"run_id":"([^"]+)"',
                             out.read_text()))
    assert len(run_ids) == 2, out.read_text()[:2000]
    rep = tmp_path / "report"
    p = subprocess.run([str(XDREPORT), "report", "-o", str(rep), str(out)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    md = (rep / "hosts.md").read_text()
    section = md.split("## xdevice stats by host")[1].splitlines()
    rows = [ln for ln in section if ln.startswith("| ") and not ln.startswith("| host |")]
    assert len(rows) == 2 and rows[0] != rows[1], md
