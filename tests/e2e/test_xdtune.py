"""xdtune: search and daemon against real fio runs of the xdevice engine.

Trials are fio runs of 1 s (0.4 s where a test only counts trials and
checks what they recorded) on an 8 MiB file. The search must leave best.ini
(loadable by the engine, verified under numjobs=2), history.json with every
trial and the convergence chart; bad input gets one line naming the file,
key or option; a failing trial is recorded and the search goes on; the
daemon rewrites the live keys of a running job's config and records each
change with its measured effect.
"""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import REPO, assert_verified, fio_job, needs_io_uring, run_fio

XDTUNE = REPO / "build" / "xdtune"
XDCONFIG = REPO / "build" / "xdconfig"
TIMEOUT = 180


def write_job(tmp_path, engine, rw="randread", extra="", size="8m", runtime="1"):
    job = tmp_path / "job.fio"
    job.write_text(f"""[global]
ioengine=external:{engine}
filename={tmp_path}/data.dat
size={size}
bs=4k
iodepth=8
time_based
runtime={runtime}
{extra}
[work]
rw={rw}
""")
    return job


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def xdtune(*args, cwd, timeout=TIMEOUT, env=None):
    proc = subprocess.run([str(XDTUNE), *[str(a) for a in args]], capture_output=True, text=True,
                          timeout=timeout, cwd=str(cwd), env=env)
    assert proc.returncode >= 0, f"xdtune killed by signal {-proc.returncode}\n{proc.stderr}"
    return proc


def one_line_error(proc, *needles):
    """The run failed with exactly one line on stderr naming every needle."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert len(lines) == 1, f"want one line, got:\n{proc.stderr}"
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


SHORT = "400ms"  # trials of searches whose figures only need to exist

SMALL_SPACE = """# a 12-point space: two async modes, readahead, the page cache
async = sync|io_uring
read_ahead_kb = 0|128|1024
[enable_page_cache]
values = true|false
"""


@needs_io_uring
def test_search_small(engine, tmp_path):
    job = write_job(tmp_path, engine, runtime=SHORT)
    start = write(tmp_path, "start.ini", "[local]\nstorage_type = regular\nasync = sync\n")
    space = write(tmp_path, "space.ini", SMALL_SPACE)
    out = tmp_path / "out"
    proc = xdtune("search", "--job", job, "--config", start, "--out", out, "--space", space,
                  "--budget", 6, "--finalists", 2, "--repeats", 3, "--seed", 3, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # progress: trial k of N, best so far, time left - one line per trial
    progress = [ln for ln in proc.stdout.splitlines() if " of 12 [" in ln]
    assert len(progress) == 12, proc.stdout
    assert all("best so far" in ln and " s left" in ln for ln in progress), proc.stdout
    assert progress[0].startswith("xdtune: trial 1 of 12 [start]")
    assert any("[warm start: random access" in ln for ln in progress) or \
        any("[warm start:" in ln for ln in progress), proc.stdout
    assert sum("[re-measure" in ln for ln in progress) == 6

    hist = json.loads((out / "history.json").read_text())
    trials = hist["trials"]
    assert [t["trial"] for t in trials] == list(range(1, 13))
    for t in trials:
        assert set(t["config"]) == {"async", "read_ahead_kb", "enable_page_cache"}
        assert t["failed"] is False and t["figures"]["iops"] > 0 and "score" in t
    # latencies are fio's total latency (lat): in io_uring mode a page-cached
    # read finishes inside the engine's queue(), and clat would say ~0.1 us
    for t in trials:
        doc = (out / "trials" / f"{t['trial']:03d}.json").read_text()
        lat = json.loads(doc[doc.index("{"):])["jobs"][0]["read"]["lat_ns"]
        assert t["figures"]["p99_us"] == pytest.approx(lat["percentile"]["99.000000"] / 1000), t
        assert t["figures"]["lat_us"] == pytest.approx(lat["mean"] / 1000), t
        assert t["figures"]["p99_us"] > 0.5, t
    # the search itself never runs a configuration twice; finalists run >= 3 more times
    search = [json.dumps(t["config"], sort_keys=True) for t in trials[:6]]
    assert len(set(search)) == 6, search
    best = hist["best"]
    assert best["measurements"] >= 4 and best["spread_pct"] >= 0
    assert hist["changes"] and {"time", "parameter", "old", "new", "effect"} <= set(hist["changes"][0])
    # the winner is the finalist with the best median IOPS among those measured again
    assert best["figures"]["iops"] > 0

    text = (out / "best.ini").read_text()
    head = [ln for ln in text.splitlines() if ln.startswith(("#", ";"))]
    assert any("tuned for: maximise IOPS" in ln for ln in head), text
    assert any(f"job: {job}" in ln for ln in head), text
    assert any(f"iops {best['figures']['iops']:.0f}" in ln and "median of" in ln for ln in head), text
    for key, value in best["config"].items():
        chk = subprocess.run([str(XDCONFIG), "json", str(out / "best.ini")], capture_output=True, text=True)
        assert chk.returncode == 0, chk.stderr
        assert str(json.loads(chk.stdout)[key]).lower() == value.lower() or \
            json.loads(chk.stdout)[key] == int(value), (key, value, chk.stdout)

    svg = (out / "convergence.svg").read_text()
    assert "</svg>" in svg and "best so far" in svg
    assert (out / "convergence.png").stat().st_size > 1000
    # re-measured points are drawn apart, with their own legend entry: the
    # chart's $again block holds exactly the trials of a configuration run before
    seen, again = set(), []
    for t in trials:
        key = json.dumps(t["config"], sort_keys=True)
        if key in seen:
            again.append(t["trial"])
        seen.add(key)
    gp = (out / "convergence.gp").read_text()
    block = gp.split("$again << EOD\n", 1)[1].split("EOD", 1)[0]
    assert [int(float(ln.split()[0])) for ln in block.splitlines()] == again, block
    assert "re-measured (a configuration run before)" in svg

    # the verdict: computed from the finalists' runs, never "ready for production"
    assert "production" not in text.lower(), text
    fins = best["finalists"]
    assert len(fins) == 2 and sum(f["winner"] for f in fins) == 1, fins
    win = next(f for f in fins if f["winner"])
    tied = [f for f in fins if not f["winner"] and
            min(f["runs"]) <= max(win["runs"]) and min(win["runs"]) <= max(f["runs"])]
    assert best["verdict"] == ("tied" if tied else "clear"), (best["verdict"], fins)
    verdict = [ln for ln in head if "verdict:" in ln]
    assert len(verdict) == 1, text
    if tied:
        assert "TIED" in verdict[0] and "spread" in verdict[0], text
        for f in [win] + tied:
            assert any(ln.startswith(f"# tied: {f['config']}: IOPS median") for ln in head), text
    else:
        assert "clear winner" in verdict[0], text

    # best.ini runs unchanged in the engine: write + crc32c verify, two jobs
    r = run_fio(fio_job(engine, "verify", xd={"config": out / "best.ini"}, rw="write", bs="64k",
                        size="4m", numjobs=2, verify="crc32c", verify_fatal=1,
                        filename_format=f"{tmp_path}/v.$jobnum", iodepth=4), tmp_path)
    assert_verified(r.data, size=4 * 1024 * 1024, njobs=2)



def shipped(name, tmp_path, engine):
    """A jobs/ file with 256 MiB cut to 16 MiB (its data goes to
    $XDEVICE_SCRATCH, which the caller points at tmp_path)."""
    text = (REPO / "jobs" / name).read_text()
    assert "directory=${XDEVICE_SCRATCH}" in text
    text = text.replace("size=256m", "size=16m").replace("external:build/xdevice.so", f"external:{engine}")
    return write(tmp_path, name, text)


def test_readme_example_files(engine, tmp_path):
    """The README's search example: jobs/tune-fill.fio, then xdtune on
    jobs/tune.fio from jobs/tune-start.ini over jobs/tune-space.ini (a short
    budget: this checks the files work together, bench-tune.sh judges the
    search)."""
    fill = shipped("tune-fill.fio", tmp_path, engine)
    job = shipped("tune.fio", tmp_path, engine)
    env = {**os.environ, "XDEVICE_SCRATCH": str(tmp_path)}
    r = subprocess.run(["fio", "--output=/dev/null", str(fill)], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=TIMEOUT, env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "xdevice-tune.xdc").is_file()
    out = tmp_path / "out"
    proc = xdtune("search", "--job", job, "--config", REPO / "jobs" / "tune-start.ini",
                  "--space", REPO / "jobs" / "tune-space.ini", "--out", out, "--budget", 2,
                  "--finalists", 1, "--repeats", 1, "--quiet", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = json.loads((out / "history.json").read_text())["trials"]
    assert len(trials) == 3 and not any(t["failed"] for t in trials), trials
    assert all(set(t["config"]) == {"cache_size", "cache_block_size", "cache_policy"} for t in trials)
    # every trial read the container through the cache: hits were counted
    assert all(t["figures"]["cache_hit_ratio"] > 0 for t in trials), trials
    # the warm start's rule for random access: four times the start's 2 MiB cache
    assert trials[1]["phase"].startswith("warm start: random access")
    assert trials[1]["config"]["cache_size"] == "8m", trials[1]  # as the schema writes sizes
    best = (out / "best.ini").read_text()
    size = re.search(r"^cache_size = (\S+)$", best, re.M).group(1)
    assert re.fullmatch(r"\d+[kmg]", size), best
    assert re.search(r"^# tuned values: .*cache_size=\d+[kmg]\b", best, re.M), best
    assert re.search(r"^# verdict: (noise unknown|best of the search)", best, re.M), best


def readme_space():
    """The --space example of the README's "Tuning" section, as printed there."""
    tuning = (REPO / "README.md").read_text().split("\n## Tuning\n", 1)[1]
    return re.search(r"`--space FILE` replaces the default.*?```ini\n(.*?)```", tuning, re.S).group(1)


def test_readme_space_example(engine, tmp_path):
    """The README's space file, ; comments after values and all, runs as
    printed: 3 async modes x 6 readaheads x 5 levels x 5 cache sizes. Saved
    by an editor with a byte order mark, CRLF line ends and trailing blanks
    it reads the same: the search gets past the space to the job."""
    text = readme_space()
    assert re.search(r"\S +; ", text), text  # what this test is about
    job = write_job(tmp_path, engine, runtime="200ms")
    start = write(tmp_path, "start.ini", "[local]\nasync = sync\n")
    space = write(tmp_path, "space.ini", text)
    out = tmp_path / "out"
    proc = xdtune("search", "--job", job, "--config", start, "--out", out, "--space", space,
                  "--budget", 1, "--finalists", 1, "--repeats", 0, "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hist = json.loads((out / "history.json").read_text())
    assert hist["xdtune"]["space_size"] == 3 * 6 * 5 * 5, hist["xdtune"]
    assert set(hist["trials"][0]["config"]) == {"async", "read_ahead_kb", "compression_level",
                                                "cache_size"}, hist["trials"][0]
    edited = tmp_path / "edited.ini"
    edited.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "  \r\n").encode())
    plain = write(tmp_path, "plain.fio", "[x]\nioengine=psync\nrw=read\nsize=1m\n")
    one_line_error(xdtune("search", "--job", plain, "--config", start, "--out", tmp_path / "o2",
                          "--space", edited, cwd=tmp_path), "plain.fio", "xdevice engine")


def test_unreachable_target(engine, tmp_path):
    job = write_job(tmp_path, engine, runtime=SHORT)
    start = write(tmp_path, "start.ini", "[local]\nasync = sync\n")
    space = write(tmp_path, "space.ini", "async = sync|io_uring\n")
    out = tmp_path / "out"
    proc = xdtune("search", "--job", job, "--config", start, "--out", out, "--space", space,
                  "--budget", 2, "--finalists", 1, "--repeats", 1, "--target-iops", 1e9,
                  "--target-p99-us", 0.001, "--quiet", cwd=tmp_path)
    line = one_line_error(proc, "no configuration met the targets", "best.ini", "iops",
                          "of target 1000000000", "p99")
    assert proc.returncode == 3, line
    hist = json.loads((out / "history.json").read_text())
    assert hist["best"]["targets_met"] is False
    assert "NOT met" in (out / "best.ini").read_text()


def test_cache_target_without_cache(engine, tmp_path):
    job = write_job(tmp_path, engine)
    start = write(tmp_path, "start.ini", "[local]\nasync = sync\n")
    space = write(tmp_path, "space.ini", "async = sync|io_uring\n")
    proc = xdtune("search", "--job", job, "--config", start, "--out", tmp_path / "o",
                  "--space", space, "--target-cache-hit", 0.9, cwd=tmp_path)
    one_line_error(proc, "--target-cache-hit 0.9 cannot be reached", "enable_read_cache")


def test_failed_trial_is_recorded(engine, tmp_path):
    """The block type on a regular file: fio fails, the search goes on."""
    job = write_job(tmp_path, engine, runtime=SHORT)
    start = write(tmp_path, "start.ini", "[local]\nstorage_type = regular\n")
    space = write(tmp_path, "space.ini", "storage_type = regular|block\n")
    out = tmp_path / "out"
    proc = xdtune("search", "--job", job, "--config", start, "--out", out, "--space", space,
                  "--budget", 2, "--finalists", 1, "--repeats", 1, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hist = json.loads((out / "history.json").read_text())
    failed = [t for t in hist["trials"] if t["failed"]]
    assert len(failed) == 1 and failed[0]["config"]["storage_type"] == "block"
    assert failed[0]["error"].startswith("fio exited with"), failed[0]["error"]
    assert "block" in failed[0]["error"], failed[0]["error"]
    assert "FAILED: fio exited with" in proc.stdout
    assert hist["best"]["config"]["storage_type"] == "regular"


@pytest.mark.parametrize("space,needles", [
    ("cache_sise = 1m..8m x2\n", ["space.ini:1", "unknown parameter \"cache_sise\""]),
    ("read_ahead_kb = 512..16 x2\n", ["space.ini:1", "read_ahead_kb", "bad bound", "512"]),
    ("cache_size = 64m..8m x2\n", ["space.ini:1", "cache_size", "lo 64m is above hi 8m"]),
    ("async = sync|fast\n", ["space.ini:1", "async", "value fast is not allowed"]),
    ("[read_ahead_kb]\nlo = 8\nhi = 64\nstep = x0\n", ["space.ini:1", "read_ahead_kb", "bad step"]),
    ("; nothing to search\nasync = io_uring\n", ["space.ini", "the space is empty"]),
    ("", ["space.ini", "the space is empty"]),
])
def test_space_file_errors(engine, tmp_path, space, needles):
    job = write_job(tmp_path, engine)
    start = write(tmp_path, "start.ini", "[local]\n")
    sp = write(tmp_path, "space.ini", space)
    proc = xdtune("search", "--job", job, "--config", start, "--out", tmp_path / "o",
                  "--space", sp, cwd=tmp_path)
    one_line_error(proc, *needles)
    assert not (tmp_path / "o" / "trials").exists() or not any((tmp_path / "o" / "trials").iterdir())


def test_newline_in_a_path_stays_one_line(engine, tmp_path):
    """A newline in a --space, --config or --history path is written \\x0a:
    each refusal is one line, never a second starting with what the name
    held."""
    job = write_job(tmp_path, engine)
    start = write(tmp_path, "start.ini", "[local]\n")
    sp = write(tmp_path, "space\nforged.ini", "cache_sise = 1m..8m x2\n")
    one_line_error(xdtune("search", "--job", job, "--config", start, "--out", tmp_path / "o",
                          "--space", sp, cwd=tmp_path),
                   f"{tmp_path}/space\\x0aforged.ini:1: unknown parameter")
    off = write(tmp_path, "off\nforged.ini", "[local]\nread_ahead_kb = 128\n")
    one_line_error(xdtune("daemon", "--config", off, "--fio-status", tmp_path / "s.json", cwd=tmp_path),
                   f"{tmp_path}/off\\x0aforged.ini: enable_auto_tuning is false")
    cfg = write(tmp_path, "live.ini", LIVE_INI)
    notes = write(tmp_path, "notes\nforged.txt", "mine\n")
    one_line_error(xdtune("daemon", "--config", cfg, "--stats", tmp_path / "none.jsonl", "--cycles", 1,
                          "--interval", 0.1, "--history", notes, cwd=tmp_path),
                   f"{tmp_path}/notes\\x0aforged.txt: not the history of an xdtune daemon")


def test_out_with_a_line_break_is_refused_before_a_job_file_holds_it(engine, tmp_path):
    """Each trial's fio job file names its config and stats under --out; a
    fio job file has no escapes, so a line break in --out ended the option
    there and made the rest of the name a line of the job of its own (an
    option fio then read). Refused in one line; no trial runs."""
    job = write_job(tmp_path, engine)
    start = write(tmp_path, "start.ini", "[local]\n")
    out = tmp_path / "o\nrw=write"
    one_line_error(xdtune("search", "--job", job, "--config", start, "--out", out,
                          "--budget", 1, cwd=tmp_path),
                   "--out", "o\\x0arw=write", "line break")
    assert not out.exists()


def test_bad_options_and_job(engine, tmp_path):
    start = write(tmp_path, "start.ini", "[local]\n")
    plain = write(tmp_path, "plain.fio", "[x]\nioengine=psync\nrw=read\nsize=1m\n")
    one_line_error(xdtune("search", "--job", plain, "--config", start, "--out", tmp_path / "o",
                          cwd=tmp_path), "plain.fio", "xdevice engine")
    job = write_job(tmp_path, engine)
    one_line_error(xdtune("search", "--job", job, "--config", start, "--out", tmp_path / "o",
                          "--budget", "many", cwd=tmp_path), "--budget many")
    one_line_error(xdtune("search", "--job", job, "--config", start, "--out", tmp_path / "o",
                          "--method", "annealing", cwd=tmp_path), "--method annealing", "gp")
    bad = write(tmp_path, "bad.ini", "[local]\nasync = turbo\n")
    one_line_error(xdtune("search", "--job", job, "--config", bad, "--out", tmp_path / "o",
                          cwd=tmp_path), "bad.ini", "async", "turbo")


LIVE_INI = "[local]\nread_ahead_kb = 128\n[tuning]\nenable_auto_tuning = true\n"


def start_fio(tmp_path, engine, cfg, seconds, rw="read", extra="", size="8m"):
    """A job (sequential reads unless told) on cfg with the engine's periodic
    stats every second."""
    job = write_job(tmp_path, engine, rw=rw, size=size,
                    extra=f"xd_config={cfg}\nxd_stats={tmp_path}/stats.json\nxd_stats_interval=1\n"
                          + extra)
    text = job.read_text().replace("runtime=1", f"runtime={seconds}")
    job.write_text(text)
    status = tmp_path / "status.json"
    proc = subprocess.Popen(["fio", "--output-format=json", f"--output={status}",
                             "--status-interval=1", str(job)], cwd=str(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, status


def run_daemon(tmp_path, cfg, status, cycles):
    """xdtune daemon on cfg: 1 s cycles on fio's status and the engine's stats."""
    hist_path = tmp_path / "daemon.json"
    proc = xdtune("daemon", "--config", cfg, "--fio-status", status, "--history", hist_path,
                  "--stats", tmp_path / "stats.json.jsonl", "--interval", 1, "--cycles", cycles,
                  cwd=tmp_path)
    return proc, hist_path


def test_daemon_cycles(engine, tmp_path):
    cfg = write(tmp_path, "live.ini", LIVE_INI)
    fio, status = start_fio(tmp_path, engine, cfg, 6)
    try:
        proc, hist_path = run_daemon(tmp_path, cfg, status, cycles=4)
    finally:
        _, err = fio.communicate(timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fio.returncode == 0, err
    hist = json.loads(hist_path.read_text())
    changes = hist["changes"]
    assert changes, proc.stdout
    for c in changes:
        assert c["parameter"] == "read_ahead_kb" and c["old"] != c["new"]
        assert c["effect"]["metric"] == "iops" and "time" in c
    judged = [c for c in changes if "after" in c["effect"]]
    assert judged and all(c["effect"]["before"] > 0 and "delta_pct" in c["effect"] for c in judged)
    # live: the engine reloaded each rewrite while fio ran (its periodic
    # records carry the config it runs with)
    assert all(c.get("engine_applied") is True for c in judged), changes
    assert "the engine runs it" in proc.stdout
    # the rewritten config still loads and holds the last value written
    chk = subprocess.run([str(XDCONFIG), "json", str(cfg)], capture_output=True, text=True)
    assert chk.returncode == 0, chk.stderr
    assert str(json.loads(chk.stdout)["read_ahead_kb"]) == changes[-1]["new"]
    assert "written by xdtune daemon" in cfg.read_text()


def test_daemon_waits_for_a_filling_cache(engine, tmp_path):
    """Below its hit target but not yet full (no evictions), a cache's misses
    are first reads: the daemon must not grow it (that only overshoots)."""
    cfg = write(tmp_path, "fill.ini", "[local]\nenable_read_cache = true\ncache_size = 512m\n"
                "[tuning]\nenable_auto_tuning = true\ntarget_cache_hit_ratio = 0.99\n")
    # at most 20 000 random 4k reads a second over 65 536 blocks (norandommap:
    # blocks come again; invalidate=0: fio does not empty the cache at each
    # pass): the cache fills for seconds
    fio, status = start_fio(tmp_path, engine, cfg, 6, rw="randread", size="256m",
                            extra="rate_iops=20000\nnorandommap\ninvalidate=0\n")
    try:
        deadline = time.time() + 30
        while not (tmp_path / "stats.json.jsonl").exists() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(1.2)  # a first record to measure from
        proc, hist_path = run_daemon(tmp_path, cfg, status, cycles=3)
    finally:
        _, err = fio.communicate(timeout=60)
    assert proc.returncode == 0 and fio.returncode == 0, proc.stdout + proc.stderr + err
    hits = [float(ln.rsplit(" ", 1)[1]) for ln in proc.stdout.splitlines()
            if ln.startswith("xdtune: cycle") and "cache_hit_ratio" in ln and "effect" not in ln]
    assert hits and all(h < 0.99 for h in hits), proc.stdout  # below target throughout
    assert hits[-1] > 0.05, proc.stdout  # and in use: blocks read again hit
    assert "the cache is still filling" in proc.stdout, proc.stdout
    changes = json.loads(hist_path.read_text())["changes"]
    assert not [c for c in changes if c["parameter"] == "cache_size"], changes
    assert "cache_size = 512m" in cfg.read_text()


def test_daemon_sizes_in_schema_units(engine, tmp_path):
    """A 1 MiB cache on a 16 MiB zipf read set is full at once and under its
    target: the daemon grows it, and says so in sizes as the schema writes
    them (1m -> 4m), in its messages, the history and the config."""
    cfg = write(tmp_path, "grow.ini", "[local]\nenable_read_cache = true\ncache_size = 1m\n"
                "[tuning]\nenable_auto_tuning = true\ntarget_cache_hit_ratio = 0.99\n")
    fio, status = start_fio(tmp_path, engine, cfg, 3, rw="randread", size="16m",
                            extra="random_distribution=zipf:1.1\ninvalidate=0\n")
    try:
        deadline = time.time() + 30
        while not (tmp_path / "stats.json.jsonl").exists() and time.time() < deadline:
            time.sleep(0.1)
        proc, hist_path = run_daemon(tmp_path, cfg, status, cycles=2)
    finally:
        _, err = fio.communicate(timeout=60)
    assert proc.returncode == 0 and fio.returncode == 0, proc.stdout + proc.stderr + err
    changes = [c for c in json.loads(hist_path.read_text())["changes"] if c["parameter"] == "cache_size"]
    assert changes, proc.stdout
    unit = re.compile(r"\d+[kmgt]")
    assert all(unit.fullmatch(c["old"]) and unit.fullmatch(c["new"]) for c in changes), changes
    assert f"set cache_size {changes[0]['old']} -> {changes[0]['new']}" in proc.stdout, proc.stdout
    assert re.search(r"^cache_size = \d+[kmgt]$", cfg.read_text(), re.M), cfg.read_text()


def test_daemon_needs_auto_tuning(tmp_path):
    cfg = write(tmp_path, "off.ini", "[local]\nread_ahead_kb = 128\n")
    proc = xdtune("daemon", "--config", cfg, "--fio-status", tmp_path / "s.json", cwd=tmp_path)
    one_line_error(proc, "off.ini", "enable_auto_tuning")
    assert cfg.read_text() == "[local]\nread_ahead_kb = 128\n"


def test_daemon_says_when_its_input_never_reads(tmp_path):
    """A status file with bytes but never a fio document (another file
    named, binary): every cycle said 'nothing new to measure yet' and no
    more. After 3 such cycles one line on stderr says what the file holds
    and what is allowed; cycles with nothing yet go on as before."""
    cfg = write(tmp_path, "live.ini", LIVE_INI)
    status = tmp_path / "status.bin"
    status.write_bytes(bytes(range(256)) * 4)
    proc = xdtune("daemon", "--config", cfg, "--fio-status", status, "--history",
                  tmp_path / "h.json", "--interval", 0.1, "--cycles", 5, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "no fio status document" in ln]
    assert len(lines) == 1 and f"{status}: 1024 bytes" in lines[0] and "after 3 cycles" in lines[0], \
        proc.stderr
    assert proc.stdout.count("nothing new to measure yet") == 5, proc.stdout


HISTORY_REFUSED = {
    "missing-dir": (lambda d: d / "nodir" / "h.json", ["nodir", "cannot open directory"]),
    "directory": (lambda d: (d / "hd").mkdir() or d / "hd",
                  ["hd: is a directory", "allowed: a regular file"]),
    "symlink": (lambda d: (d / "h.json").symlink_to(d / "elsewhere.json") or d / "h.json",
                ["h.json", "symbolic link"]),
    "not-a-history": (lambda d: (d / "notes.txt").write_text("mine\n") and d / "notes.txt",
                      ["notes.txt", "not the history of an xdtune daemon"]),
}


@pytest.mark.parametrize("case", list(HISTORY_REFUSED))
def test_daemon_history_refused_at_start(tmp_path, case):
    """A --history that cannot be written (or is someone else's file) stops
    the daemon before its first cycle, with one line and exit 1: found
    after all cycles, the changes they made would be unrecorded."""
    make, want = HISTORY_REFUSED[case]
    path = make(tmp_path)
    cfg = write(tmp_path, "live.ini", LIVE_INI)
    proc = xdtune("daemon", "--config", cfg, "--stats", tmp_path / "none.jsonl", "--cycles", 1,
                  "--interval", 0.1, "--history", path, cwd=tmp_path)
    line = one_line_error(proc, "--history", *want)
    assert proc.returncode == 1, line
    assert "cycle" not in proc.stdout, proc.stdout
    assert not (tmp_path / "elsewhere.json").exists()
    if case == "not-a-history":
        assert path.read_text() == "mine\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="plants a file as another user: needs root")
@pytest.mark.parametrize("what", ["file", "link"])
def test_daemon_history_of_another_user(tmp_path, what):
    """--history in a shared directory (/tmp): the daemon renamed its
    history, root's, over another user's history of the same name, and read
    one through a link they planted. Refused before any cycle, in one line;
    their file or link is left as it was."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    hist = shared / "h.json"
    theirs = tmp_path / "theirs.json"  # a history of a daemon of theirs
    theirs.write_text(json.dumps({"xdtune": {"mode": "daemon"}, "changes": []}))
    if what == "file":
        shutil.copy(theirs, hist)
        os.chown(hist, 65534, 65534)
    else:
        hist.symlink_to(theirs)
        os.lchown(hist, 65534, 65534)
    before = hist.read_text()
    cfg = write(tmp_path, "live.ini", LIVE_INI)
    proc = xdtune("daemon", "--config", cfg, "--stats", tmp_path / "none.jsonl", "--cycles", 1,
                  "--interval", 0.1, "--history", hist, cwd=tmp_path)
    one_line_error(proc, "--history", str(hist), "uid 65534" if what == "file" else "symbolic link")
    assert "cycle" not in proc.stdout, proc.stdout
    assert hist.is_symlink() == (what == "link") and hist.lstat().st_uid == 65534
    assert hist.read_text() == before and os.listdir(shared) == ["h.json"]


def test_daemon_history_lost_later(tmp_path):
    """The history's directory removed while the daemon runs: it stops at the
    next write, with one line and exit 1."""
    cfg = write(tmp_path, "live.ini", LIVE_INI)
    (tmp_path / "hist").mkdir()
    hist = tmp_path / "hist" / "h.json"
    d = subprocess.Popen([str(XDTUNE), "daemon", "--config", str(cfg), "--stats",
                          str(tmp_path / "none.jsonl"), "--history", str(hist), "--interval", "0.2",
                          "--cycles", "100"], cwd=str(tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while not hist.exists() and time.time() < deadline and d.poll() is None:
            time.sleep(0.05)
        assert hist.exists(), "the daemon writes its history at start"
        hist.unlink()
        (tmp_path / "hist").rmdir()
        out, err = d.communicate(timeout=30)
    finally:
        if d.poll() is None:
            d.kill()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert d.returncode == 1 and len(lines) == 1, out + err
    assert "--history" in lines[0] and "stopping" in lines[0], lines[0]


@pytest.mark.parametrize("spoil", ["delete", "garble"])
def test_daemon_config_spoiled(engine, tmp_path, spoil):
    """Deleted, or rewritten into something no one can read as a config."""
    cfg = write(tmp_path, "live.ini", LIVE_INI)
    fio, status = start_fio(tmp_path, engine, cfg, 4)
    try:
        d = subprocess.Popen([str(XDTUNE), "daemon", "--config", str(cfg), "--fio-status",
                              str(status), "--interval", "0.5", "--cycles", "20"],
                             cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        time.sleep(1.6)
        if spoil == "delete":
            cfg.unlink()
        else:
            cfg.write_text("[local]\nread_ahead_kb = lots\n")
        out, err = d.communicate(timeout=30)
    finally:
        fio.communicate(timeout=60)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert d.returncode == 1 and len(lines) == 1, out + err
    assert "live.ini" in lines[0] and "stopping" in lines[0], lines[0]


def test_search_keeps_the_safety_keys(engine, tmp_path):
    """Recovery keys are in no default space: a start config with checksums
    and retries keeps them in every trial and in best.ini, and types that
    refuse checksums (compressed) are never tried. A space that names one
    explicitly is searched, with a line saying so."""
    job = write_job(tmp_path, engine, runtime=SHORT)
    start = write(tmp_path, "start.ini", "[local]\nstorage_type = regular\nasync = sync\n"
                  "[recovery]\nenable_checksums = true\nmax_retries = 2\n")
    space = write(tmp_path, "space.ini", "storage_type = regular|compressed\nasync = sync|io_uring\n")
    out = tmp_path / "out"
    proc = xdtune("search", "--job", job, "--config", start, "--out", out, "--space", space,
                  "--budget", 4, "--finalists", 1, "--repeats", 1, "--seed", 1, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = json.loads((out / "history.json").read_text())["trials"]
    assert trials and all(t["config"].get("storage_type", "regular") == "regular" for t in trials)
    best = (out / "best.ini").read_text()
    assert "enable_checksums = true" in best and "max_retries = 2" in best, best
    explicit = write(tmp_path, "explicit.ini", "enable_checksums = true|false\n")
    proc = xdtune("search", "--job", job, "--config", start, "--out", tmp_path / "o2",
                  "--space", explicit, "--budget", 2, "--finalists", 1, "--repeats", 1,
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = [ln for ln in proc.stderr.splitlines() if "enable_checksums" in ln]
    assert len(said) == 1 and "explicit.ini:1" in said[0] and "[recovery]" in said[0], proc.stderr
    tried = {t["config"]["enable_checksums"]
             for t in json.loads((tmp_path / "o2" / "history.json").read_text())["trials"]}
    assert len(tried) == 2, tried


# --- every job layout fio accepts ------------------------------------------------
#
# Each layout runs the smallest search there is (one trial of 0.2 s, no
# re-measures): the point is that fio accepts the trial's copy, and that the
# candidate's options reach the xdevice jobs and only them.

DATA = "filename={d}/data.dat\nsize=4m\nbs=4k\ntime_based\nruntime=0.2\n"

LAYOUTS = {
    # the job: the engine named in the job's own section, no [global]
    "engine-in-job": {"job.fio": "[z]\nioengine=external:{e}\n" + DATA +
                      "rw=randread\nrandom_distribution=zipf:1.2\n"},
    "engine-in-global": {"job.fio": "[global]\nioengine=external:{e}\n" + DATA +
                         "[z]\nrw=randread\n"},
    # a [global] without the engine, then the engine in the job
    "global-without-engine": {"job.fio": "[global]\n" + DATA + "[z]\nioengine=external:{e}\n"
                              "rw=randread\n"},
    # two xdevice jobs (one by [global], one by its own line) and a psync job
    # that must not get the engine's options; fio's ${VAR} in the engine's path
    "several-jobs": {"job.fio": "[global]\nioengine=external:${XDT_ENGINE}\n" + DATA +
                     "[xd-a]\nrw=randread\n"
                     "[plain]\nstonewall\nioengine=psync\nfilename={d}/plain.dat\nrw=read\n"
                     "[xd-b]\nstonewall\nioengine=external:{e}\nrw=read\n"},
    # a later [global] turns the engine on for the jobs after it only
    "second-global": {"job.fio": "[plain]\nioengine=psync\n" + DATA + "rw=read\n"
                      "[global]\nioengine=external:{e}\n"
                      "[z]\nstonewall\n" + DATA + "rw=randread\n"},
    # include files, relative to the including file's directory (xdtune runs
    # elsewhere), one inside another
    "include": {"jobs/job.fio": "[global]\ninclude inc/engine.inc\n[z]\ninclude inc/work.inc\n",
                "jobs/inc/engine.inc": "; the engine\nioengine=external:{e}\ninclude data.inc\n",
                "jobs/inc/data.inc": DATA,
                "jobs/inc/work.inc": "rw=randread\n"},
}


def write_layout(tmp_path, engine, files):
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text.replace("{e}", engine).replace("{d}", str(tmp_path)))
    return tmp_path / next(iter(files))


def tiny_search(tmp_path, job, env=None, cwd=None):
    start = write(tmp_path, "start.ini", "[local]\nasync = sync\n")
    space = write(tmp_path, "space.ini", "async = sync|io_uring\n")
    out = tmp_path / "out"
    proc = xdtune("search", "--job", job, "--config", start, "--out", out, "--space", space,
                  "--budget", 1, "--finalists", 1, "--repeats", 0, "--quiet",
                  cwd=cwd or tmp_path, env=env)
    return proc, out


def sections(text):
    """{section: [option lines]} of a job file."""
    out, cur = {}, None
    for ln in text.splitlines():
        ln = ln.strip()
        if ln.startswith("["):
            cur = ln[1:-1]
            out.setdefault(cur, [])
        elif ln and not ln.startswith((";", "#")) and cur is not None:
            out[cur].append(ln)
    return out


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_search_any_job_layout(engine, tmp_path, layout):
    job = write_layout(tmp_path, engine, LAYOUTS[layout])
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    proc, out = tiny_search(tmp_path, job, env={**os.environ, "XDT_ENGINE": engine}, cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = json.loads((out / "history.json").read_text())["trials"]
    assert trials and all(not t["failed"] and t["figures"]["iops"] > 0 for t in trials), trials
    copy = sections((out / "trials" / "001.fio").read_text())
    for name, opts in copy.items():
        runs_xd = name not in ("global", "plain")
        assert any(o.startswith("xd_config=") for o in opts) == runs_xd, (name, opts)
    # the xdevice jobs ran with the candidate: each published its stats
    stats = json.loads((out / "trials" / "001.stats.json").read_text())
    names = {j.get("name") or j.get("jobname") for j in stats["jobs"]}
    assert names == {n for n in copy if n not in ("global", "plain")}, stats["jobs"]


def test_search_job_on_the_command_line(engine, tmp_path):
    """fio's command-line form after --: options before the first --name are
    global, each --name starts a job; only the xdevice job gets the options."""
    start = write(tmp_path, "start.ini", "[local]\nasync = sync\n")
    out = tmp_path / "out"
    proc = xdtune("search", "--config", start, "--out", out, "--space",
                  write(tmp_path, "space.ini", "async = sync|io_uring\n"), "--budget", 1,
                  "--finalists", 1, "--repeats", 0, "--quiet", "--",
                  f"--ioengine=external:{engine}", f"--filename={tmp_path}/data.dat", "--size=4m",
                  "--time_based", "--runtime=0.2", "--name=xd", "--rw=randread",
                  "--name=plain", "--stonewall", "--ioengine=psync", f"--filename={tmp_path}/p.dat",
                  "--rw=read", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = json.loads((out / "history.json").read_text())["trials"]
    assert trials and all(not t["failed"] and t["figures"]["iops"] > 0 for t in trials), trials
    copy = sections((out / "trials" / "001.fio").read_text())
    assert list(copy) == ["global", "xd", "plain"], copy
    assert [n for n, opts in copy.items() if any(o.startswith("xd_config=") for o in opts)] == ["xd"]
    bad = xdtune("search", "--config", start, "--out", tmp_path / "o2", "--", "rw=read", cwd=tmp_path)
    one_line_error(bad, "fio job argument 1", "rw=read", "--name=NAME")


OFF_GRID_SPACE = "async = sync|libaio\nread_ahead_kb = 0..1024 x16\n"  # readahead 0, 16, 256


def off_grid_search(engine, tmp_path, *more):
    """A search from a start config off the space's grid: read_ahead_kb is
    unset (128), the nearest grid value 16."""
    start = write(tmp_path, "start.ini", "[local]\nstorage_type = regular\n")
    space = write(tmp_path, "space.ini", OFF_GRID_SPACE)
    out = tmp_path / "out"
    proc = xdtune("search", "--config", start, "--space", space, "--out", out, "--budget", 3,
                  "--finalists", 2, "--repeats", 1, "--seed", 3, *more, "--",
                  f"--ioengine=external:{engine}", f"--filename={tmp_path}/data.dat", "--size=8m",
                  "--name=z", "--rw=randread", "--bs=4k", "--time_based=1", "--runtime=300ms",
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, out, json.loads((out / "history.json").read_text())


def test_search_records_what_ran(engine, tmp_path):
    """The start trial once ran the start config as given (readahead 128)
    but was recorded, and its figures pooled with the re-measures, as the
    nearest grid point (16). Every trial's recorded config is now what the
    engine ran, by the engine's own stats, and a finalist's runs are those
    of its configuration alone."""
    proc, out, hist = off_grid_search(engine, tmp_path)
    trials = hist["trials"]
    for t in trials:
        stats = json.loads((out / "trials" / f"{t['trial']:03d}.stats.json").read_text())
        ran = stats["jobs"][0]["config"]
        assert {k: str(ran[k]).lower() for k in t["config"]} == t["config"], (t["trial"], ran)
    for f in hist["best"]["finalists"]:
        runs = [t["figures"]["iops"] for t in trials
                if " ".join(f"{k}={v}" for k, v in t["config"].items()) == f["config"]]
        assert sorted(runs) == sorted(f["runs"]), (f, trials)
    # the move to the grid is said, with the value given and the one run
    said = [ln for ln in proc.stdout.splitlines() if "read_ahead_kb=128" in ln]
    assert len(said) == 1 and "read_ahead_kb=128 -> 16" in said[0], proc.stdout
    assert hist["xdtune"]["start_moved_to_grid"] == "read_ahead_kb=128 -> 16", hist["xdtune"]


def test_search_best_so_far_ends_on_the_winner(engine, tmp_path):
    """The best so far once compared one run of a configuration with the
    finalists' medians of four, so the progress line and the chart ended
    on a lucky single run that never became a finalist while best.ini
    declared another. The search's best is now said to be of one run; once
    the finalists are measured again it is the best finalist's median, so
    the last trial's best so far is the winner's."""
    proc, out, hist = off_grid_search(engine, tmp_path)
    trials, best = hist["trials"], hist["best"]
    search = [t for t in trials if not t["phase"].startswith("re-measure")]
    again = [t for t in trials if t["phase"].startswith("re-measure")]
    assert all(t["best_of"] == "search" and t["best_runs"] == 1 for t in search), search
    assert all(t["best_of"] == "finalists" and t["best_runs"] >= 1 for t in again), again
    assert trials[-1]["best_so_far"] == pytest.approx(best["objective"]), (trials[-1], best)
    assert trials[-1]["best_runs"] == best["measurements"], (trials[-1], best)
    lines = [ln for ln in proc.stdout.splitlines() if "| best so far" in ln]
    assert all("one run" in ln for ln in lines[:len(search)]), proc.stdout
    assert all("among the finalists" in ln for ln in lines[len(search):]), proc.stdout
    assert f"iops {best['figures']['iops']:.0f}" in lines[-1], (lines[-1], best)
    assert f"median of {best['measurements']} runs" in lines[-1], (lines[-1], best)
    svg = (out / "convergence.svg").read_text()
    assert f"winner: median of {best['measurements']} runs" in svg


def test_search_refuses_an_earlier_out(engine, tmp_path):
    """An --out that holds an earlier search's trials is refused with one
    line, and left as it was: searched into, its old trials (003-006 of a
    longer search) would sit beside the new ones, unnamed in the new
    history.json. With its trials/ removed, it is searched into again."""
    job = write_job(tmp_path, engine, runtime="200ms")
    out = tmp_path / "out"
    (out / "trials").mkdir(parents=True)
    for n in range(3, 7):
        for ext in ("ini", "fio", "json", "err"):
            (out / "trials" / f"{n:03d}.{ext}").write_text("an earlier search's\n")
    before = {str(p): p.stat().st_mtime_ns for p in out.rglob("*")}
    proc, _ = tiny_search(tmp_path, job)
    line = one_line_error(proc, f"--out {out}", f"{out}/trials/ holds 16 files of an earlier search",
                          "allowed: a new --out", "remove its trials/")
    assert proc.returncode == 1, line
    assert {str(p): p.stat().st_mtime_ns for p in out.rglob("*")} == before
    shutil.rmtree(out / "trials")
    proc, _ = tiny_search(tmp_path, job)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in (out / "trials").glob("*.ini")) == ["001.ini"]


def test_man_page_covers_the_usage(tmp_path):
    """Every option and form `xdtune --help` shows is in man/xdtune.1: the
    job after `--` in fio's command-line form too."""
    usage = xdtune("--help", cwd=tmp_path).stdout
    man = (REPO / "man" / "xdtune.1").read_text().replace("\\-", "-")
    options = set(re.findall(r"--[a-z][a-z0-9-]*", usage))
    assert {"--job", "--name", "--hosts", "--history"} <= options, usage
    missing = sorted(o for o in options if o not in man)
    assert not missing, f"man/xdtune.1 lacks {missing}"
    assert re.search(r"^\.B --$", man, re.M), "the -- before a command-line job"
    assert "--name=" in man and "[global]" in man


def test_search_include_errors(engine, tmp_path):
    """A missing include and a section in an included file: one line each,
    naming the file and line, before any trial."""
    job = write_layout(tmp_path, engine, {"job.fio": "[global]\nioengine=external:{e}\n"
                                          "[z]\ninclude nothere.inc\n"})
    proc, _ = tiny_search(tmp_path, job)
    one_line_error(proc, "job.fio:4", "include nothere.inc", "cannot read")
    job = write_layout(tmp_path, engine, {"job.fio": "[z]\ninclude sec.inc\n",
                                          "sec.inc": "ioengine=external:{e}\n[other]\n"})
    proc, _ = tiny_search(tmp_path, job)
    one_line_error(proc, "sec.inc:2", "no new section in an included file")
