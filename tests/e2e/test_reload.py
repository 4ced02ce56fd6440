"""Hot reload of xd_config and periodic stats (xd_stats_interval) in real fio runs.

A time_based run writes one JSON line per job and second; the test rewrites
the INI mid-run (xdconfig set, i.e. xd_config_save) and checks that the
engine says so in one line per changed key, that the next intervals' figures
show the new value, that a bad or refused rewrite is one line and changes
nothing, and that fio still exits 0 with counts equal to fio's own.
"""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import FIO, REPO, fio_job, needs_io_uring, records, wait_for, xdevice_lines

XDCONFIG = REPO / "build" / "xdconfig"


def xdconfig_set(ini, *assignments):
    p = subprocess.run([str(XDCONFIG), "set", str(ini), *assignments], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr


def start_fio(args, tmp_path):
    """fio in the background; its stderr goes to a file, so a test can wait
    for a line there (fio_stderr) while it runs."""
    out = tmp_path / "fio-out.json"
    cmd = [FIO, f"--output={out}", "--output-format=json", *[str(a) for a in args]]
    with open(tmp_path / "fio-stderr.txt", "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                cwd=str(tmp_path))
    return proc, out


def fio_stderr(out):
    """What the fio started by start_fio(…) with this out has printed to stderr so far."""
    return (out.parent / "fio-stderr.txt").read_text(errors="replace")


def finish_fio(proc, out, timeout=120):
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, _ = proc.communicate()
        pytest.fail(f"fio did not finish\n{stdout}\n{fio_stderr(out)}")
    stderr = fio_stderr(out)
    raw = out.read_text(errors="replace") if out.exists() else ""
    m = re.search(r"^\{", raw, re.M)
    data = json.JSONDecoder().raw_decode(raw, m.start())[0] if m else None
    text = stdout + stderr
    # fio copies log_err lines into the --output file as well: keep one copy
    seen = set(text.splitlines())
    rest = raw[: m.start()] if m else raw
    text += "\n".join(ln for ln in rest.splitlines() if ln.strip() and ln not in seen) + "\n"
    assert proc.returncode == 0, f"fio failed rc={proc.returncode}\n{text}"
    assert data is not None, text
    assert all(j["error"] == 0 for j in data["jobs"]), text
    return data, text


def start_fio_until_stopped(args, tmp_path):
    """start_fio of a time_based job that runs until stop_fio, not for a
    fixed time: a run of 4 s could end on a loaded machine before the
    records a test waits for (bounded) came. fio's --trigger-file ends
    it, exit 0, JSON as usual."""
    return start_fio([*args, "--time_based", "--runtime=600",
                      f"--trigger-file={tmp_path / 'stop'}"], tmp_path)


def stop_fio(proc, out):
    """End the job start_fio_until_stopped started, and finish_fio it."""
    (out.parent / "stop").touch()
    return finish_fio(proc, out)


def wait_for_record_after(proc, log, since_ms, what, jobs=1):
    """Until jobs jobs have each written a record 300 ms past since_ms."""
    def came():
        late = per_job([r for r in records(log) if r["time_ms"] > since_ms + 300])
        return len(late) >= jobs
    wait_for(proc, came, 20, what)


def per_job(recs):
    jobs = {}
    for r in recs:
        jobs.setdefault(r["jobnum"], []).append(r)
    return jobs


def check_interval_sums(recs, data, ddir):
    """Per job, the intervals add up to the total, and the totals are fio's."""
    totals = []
    for jobnum, rs in per_job(recs).items():
        assert [r["seq"] for r in rs] == list(range(len(rs))), f"job {jobnum}: seq {[r['seq'] for r in rs]}"
        summed = sum(r["interval"]["ops"][ddir]["ops"] for r in rs)
        assert summed == rs[-1]["total"]["ops"][ddir]["ops"], f"job {jobnum}"
        for r in rs:  # rates to the byte: JSON numbers carry 15 digits (they had 6)
            iv = r["interval"]
            moved = sum(op["bytes"] for d, op in iv["ops"].items() if d in ("read", "write", "trim"))
            assert iv["bw_bytes"] == pytest.approx(moved / iv["seconds"], rel=1e-9), (jobnum, iv)
        totals.append(rs[-1]["total"]["ops"][ddir]["ops"])
    fio_totals = [j[ddir]["total_ios"] for j in data["jobs"]]
    assert sorted(totals) == sorted(fio_totals), (totals, fio_totals)


@needs_io_uring
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_reload_read_ahead_mid_run(engine, tmp_path, mode):
    ini = tmp_path / "xd.ini"
    stats = tmp_path / "stats.json"
    log = tmp_path / "stats.json.jsonl"
    xdconfig_set(ini, "read_ahead_kb=128", "async=io_uring")
    args = fio_job(engine, name="follow", xd={"config": ini, "stats": stats, "stats_interval": 1},
                   rw="read", bs="64k", size="8m", iodepth=4, numjobs=2,
                   filename=tmp_path / "data", group_reporting=0)
    if mode == "thread":
        args.append("--thread=1")
    proc, out = start_fio_until_stopped(args, tmp_path)
    # one interval on the old config from both jobs, then the rewrite
    wait_for(proc, lambda: len(per_job(records(log))) == 2, 20, "the first records")
    t_change = time.time() * 1000
    xdconfig_set(ini, "read_ahead_kb=4096")
    # each step waits for the line that says the previous one was seen, not
    # for a fixed time: a rewrite the device had not looked at yet would be
    # folded into the next one
    def noticed(line):
        return lambda: line in fio_stderr(out)

    wait_for(proc, noticed("reloaded: read_ahead_kb 128 -> 4096"), 20, "the reload")
    # that line is one job's; each job looks for itself (10 times a second,
    # between its requests), and one that had not looked yet when the bad
    # file came would fold the two and never reload: wait until every job's
    # record says it did (records come each second)
    def reloaded_everywhere():
        jobs = per_job(records(log))
        return len(jobs) == 2 and all(any(r["config"]["read_ahead_kb"] == 4096 for r in rs)
                                      for rs in jobs.values())

    wait_for(proc, reloaded_everywhere, 20, "every job's reload")
    # a bad file (written in place): refused in one line, the old one stays
    ini.write_text("[local]\nread_ahead_kb = lots\n")
    wait_for(proc, noticed("was rewritten but is not used"), 20, "the bad file's refusal")
    # a key fixed at open: refused in one line, nothing applied
    fresh = tmp_path / "fresh.ini"  # xdconfig set would refuse to start from the bad file
    xdconfig_set(fresh, "read_ahead_kb=8", "async=io_uring", "use_direct_io=true")
    os.replace(fresh, ini)
    wait_for(proc, noticed("cannot change while the device is open"), 20, "the fixed key's refusal")
    ini.unlink()
    wait_for(proc, noticed("was removed"), 20, "the removal")
    data, text = stop_fio(proc, out)

    lines = xdevice_lines(text)
    changed = [ln for ln in lines if "reloaded: read_ahead_kb 128 -> 4096" in ln]
    assert len(changed) == 1, "\n".join(lines)
    bad = [ln for ln in lines if "was rewritten but is not used" in ln]
    assert len(bad) == 1 and "read_ahead_kb=lots" in bad[0] and "allowed:" in bad[0], "\n".join(lines)
    refused = [ln for ln in lines if "cannot change while the device is open" in ln]
    assert len(refused) == 1 and "use_direct_io (false -> true)" in refused[0], "\n".join(lines)
    removed = [ln for ln in lines if "was removed" in ln]
    assert len(removed) == 1, "\n".join(lines)
    assert not any("reloaded: read_ahead_kb 4096 -> 8" in ln for ln in lines), "\n".join(lines)

    recs = records(log)
    for jobnum, rs in per_job(recs).items():
        before = [r for r in rs if r["time_ms"] < t_change]
        first_new = next((i for i, r in enumerate(rs) if r["config"]["read_ahead_kb"] == 4096), None)
        assert before and first_new is not None, f"job {jobnum}: {len(before)} records before, none after"
        after = rs[first_new:]
        for r in before:
            assert r["config"]["read_ahead_kb"] == 128 and r["layers"]["file"]["read_ahead_kb"] == 128
        # every interval from the job's reload on: the new value, in the
        # config and in the driver (the bad file, the fixed key and the
        # removal after it changed nothing)
        for r in after:
            assert r["config"]["read_ahead_kb"] == 4096, (jobnum, r["seq"], r["config"]["read_ahead_kb"])
            assert r["layers"]["file"]["read_ahead_kb"] == 4096
            assert r["config"]["use_direct_io"] is False
        assert all(r["interval"]["seconds"] > 0.5 for r in rs[:-1]), [r["interval"]["seconds"] for r in rs]
        assert any(r["interval"]["ops"]["read"]["ops"] > 0 for r in after)
        assert all(r["interval"]["ops"]["read"]["lat_ns"]["p99"] > 0 for r in rs
                   if r["interval"]["ops"]["read"]["ops"])
    check_interval_sums(recs, data, "read")


def test_reload_compression_level(engine, tmp_path):
    ini = tmp_path / "xd.ini"
    log = tmp_path / "periodic.jsonl"
    xdconfig_set(ini, "storage_type=compressed", "compression_type=zstd", "compression_level=1",
                 "async=libaio")
    args = fio_job(engine, name="squeeze", xd={"config": ini, "stats_log": log, "stats_interval": 1},
                   rw="write", bs="64k", size="16m", iodepth=4,
                   filename=tmp_path / "data.xdc", buffer_compress_percentage=60,
                   buffer_compress_chunk="4k", refill_buffers=None)
    proc, out = start_fio_until_stopped(args, tmp_path)
    wait_for(proc, lambda: len(records(log)) >= 1, 20, "the first record")
    t_change = time.time() * 1000
    xdconfig_set(ini, "compression_level=9")
    wait_for_record_after(proc, log, t_change, "a record after the change")
    data, text = stop_fio(proc, out)
    lines = xdevice_lines(text)
    assert sum("reloaded: compression_level 1 -> 9" in ln for ln in lines) == 1, "\n".join(lines)
    recs = records(log)
    before = [r for r in recs if r["time_ms"] < t_change]
    after = [r for r in recs if r["time_ms"] > t_change + 300]
    assert before and after, (len(before), len(after))
    assert all(r["layers"]["compress"]["level"] == 1 for r in before)
    assert all(r["layers"]["compress"]["level"] == 9 and r["config"]["compression_level"] == 9
               for r in after)
    check_interval_sums(recs, data, "write")


@needs_io_uring
def test_reload_cache_size(engine, tmp_path):
    """A smaller cache_size mid-run: the shared cache shrinks at once."""
    ini = tmp_path / "xd.ini"
    log = tmp_path / "periodic.jsonl"
    xdconfig_set(ini, "enable_read_cache=true", "cache_size=4m", "async=io_uring")
    args = fio_job(engine, name="cached", xd={"config": ini, "stats_log": log, "stats_interval": 1},
                   rw="read", bs="16k", size="3m", iodepth=4, numjobs=2, thread=1,
                   filename=tmp_path / "data",
                   invalidate=0)  # fio invalidates at every pass over the file otherwise
    proc, out = start_fio_until_stopped(args, tmp_path)
    wait_for(proc, lambda: len(per_job(records(log))) == 2, 20, "the first records")
    t_change = time.time() * 1000
    xdconfig_set(ini, "cache_size=1m")
    wait_for_record_after(proc, log, t_change, "each job's record after the change", jobs=2)
    data, text = stop_fio(proc, out)
    lines = xdevice_lines(text)
    assert sum("reloaded: cache_size 4194304 -> 1048576" in ln for ln in lines) == 1, "\n".join(lines)
    recs = records(log)
    before = [r for r in recs if r["time_ms"] < t_change]
    after = [r for r in recs if r["time_ms"] > t_change + 300]
    assert before and after, (len(before), len(after))
    assert all(r["layers"]["cache"]["capacity_bytes"] == 4 << 20 for r in before)
    assert max(r["layers"]["cache"]["bytes_cached"] for r in before) > 1 << 20, \
        [(r["jobnum"], r["seq"], r["interval"]["ops"]["read"]["ops"], r["layers"]["cache"]) for r in recs]
    for r in after:
        assert r["layers"]["cache"]["capacity_bytes"] == 1 << 20
        assert r["layers"]["cache"]["bytes_cached"] <= 1 << 20
        assert r["config"]["cache_size"] == 1 << 20
    check_interval_sums(recs, data, "read")


@pytest.mark.parametrize("async_mode", ["sync", "libaio", "io_uring"])
def test_reload_verifies_across_a_change(engine, tmp_path, async_mode):
    """Data written before and after a live change reads back (verify)."""
    ini = tmp_path / "xd.ini"
    log = tmp_path / "periodic.jsonl"
    xdconfig_set(ini, "storage_type=compressed", "compression_type=zstd", f"async={async_mode}")
    args = fio_job(engine, name="v", xd={"config": ini, "stats_log": log, "stats_interval": 1},
                   rw="randwrite", bs="16k", size="24m", iodepth=8, numjobs=2, thread=1,
                   filename_format="$jobname.$jobnum", directory=tmp_path, verify="crc32c",
                   verify_fatal=1, rate="6m", buffer_compress_percentage=50,
                   buffer_compress_chunk="4k")
    proc, out = start_fio(args, tmp_path)
    wait_for(proc, lambda: len(records(log)) >= 2, 20, "the first records")
    xdconfig_set(ini, "compression_level=12")
    data, text = finish_fio(proc, out)
    assert sum("reloaded: compression_level 1 -> 12" in ln for ln in xdevice_lines(text)) == 1, text
    for j in data["jobs"]:
        assert j["write"]["io_bytes"] == 24 * 1024 * 1024
        assert j["read"]["io_bytes"] == j["write"]["io_bytes"], "verified bytes differ from written"


def test_stats_interval_needs_a_file(engine, tmp_path):
    args = fio_job(engine, name="nofile", xd={"stats_interval": 1}, rw="read", size="1m",
                   filename=tmp_path / "d")
    p = subprocess.run([FIO, "--output-format=normal", *[str(a) for a in args]],
                       capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert p.returncode != 0
    lines = xdevice_lines(p.stdout + p.stderr)
    assert len(set(lines)) == 1, "\n".join(lines)
    assert "metrics_interval_sec=1" in lines[0] and "xd_stats_log=FILE" in lines[0], "\n".join(lines)


@pytest.mark.skipif(not shutil.which("strace"), reason="strace is not installed")
def test_save_order_and_flags(tmp_path):
    """xd_config_save: temp file with O_EXCL|O_NOFOLLOW, the configured mode,
    fsync of the file, rename, then fsync of the directory - in that order."""
    ini = tmp_path / "o.ini"
    xdconfig_set(ini, "config_file_mode=0640")
    p = subprocess.run(["strace", "-f", "-e", "trace=openat,fchmod,fsync,rename,renameat,renameat2",
                        str(XDCONFIG), "set", str(ini), "read_ahead_kb=256"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    trace = p.stderr.splitlines()
    opens = [i for i, ln in enumerate(trace) if "openat" in ln and "\".o.ini." in ln and "O_CREAT" in ln]
    assert len(opens) == 1, trace
    assert "O_EXCL" in trace[opens[0]] and "O_NOFOLLOW" in trace[opens[0]], trace[opens[0]]
    tmp_fd = re.search(r"= (\d+)$", trace[opens[0]]).group(1)
    dir_open = [i for i, ln in enumerate(trace) if "openat" in ln and "O_DIRECTORY" in ln]
    assert dir_open, trace
    dir_fd = re.search(r"= (\d+)$", trace[dir_open[-1]]).group(1)
    chmod = [i for i, ln in enumerate(trace) if re.search(rf"fchmod\({tmp_fd}, 0640\)", ln)]
    fsync_file = [i for i, ln in enumerate(trace) if re.search(rf"fsync\({tmp_fd}\)", ln)]
    rename = [i for i, ln in enumerate(trace) if "rename" in ln and "o.ini" in ln]
    fsync_dir = [i for i, ln in enumerate(trace) if re.search(rf"fsync\({dir_fd}\)", ln)]
    assert chmod and fsync_file and rename and fsync_dir, trace
    assert opens[0] < chmod[0] < fsync_file[0] < rename[0] < fsync_dir[-1], trace
    assert oct(os.stat(ini).st_mode & 0o7777) == "0o640"
    assert "read_ahead_kb = 256" in ini.read_text()
