"""fio's JSON stays JSON with the engine's notices.

fio 3.33's log_info writes to the stream fio's JSON goes to (stdout, or the
--output file), log_err copies its lines into an --output file, and in
client/server mode both reach the client's output. The engine's notices (a
live reload, the mmap async-mode notice) must go to stderr, so these tests
parse fio's whole output with json.loads: one stray line fails them.
"""
import json
import subprocess

import pytest

from conftest import FIO, REPO, wait_for

XDCONFIG = REPO / "build" / "xdconfig"
TIMEOUT = 60


def xdconfig_set(ini, *kv):
    p = subprocess.run([str(XDCONFIG), "set", str(ini), *kv], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("where", ["stdout", "file"])
def test_live_reload_keeps_json(engine, tmp_path, where):
    ini = tmp_path / "xd.ini"
    log = tmp_path / "recs.jsonl"
    xdconfig_set(ini, "read_ahead_kb=128")
    out = tmp_path / "fio.json"
    cmd = [FIO, "--output-format=json", *([f"--output={out}"] if where == "file" else []),
           "--name=rl", f"--ioengine=external:{engine}", f"--xd_config={ini}",
           f"--xd_stats_log={log}", "--xd_stats_interval=1", f"--filename={tmp_path}/data",
           "--size=4m", "--bs=64k", "--rw=read", "--time_based", "--runtime=600",
           f"--trigger-file={tmp_path / 'stop'}"]
    err = tmp_path / "fio.err"
    with open(err, "w") as errf:  # a file: read while fio runs
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, text=True, cwd=tmp_path)
    # the job is running once its first periodic record is there; it runs
    # until the reload is said, then fio's trigger file ends it (exit 0),
    # rather than for a fixed time a loaded machine could use up first
    wait_for(proc, lambda: log.exists() and log.stat().st_size > 0, 30, "the first record")
    xdconfig_set(ini, "read_ahead_kb=256")
    wait_for(proc, lambda: "reloaded: read_ahead_kb 128 -> 256" in err.read_text(), 30,
             "the reload")
    (tmp_path / "stop").touch()
    stdout, _ = proc.communicate(timeout=TIMEOUT)
    stderr = err.read_text()
    assert proc.returncode == 0, stdout + stderr
    assert any("reloaded: read_ahead_kb 128 -> 256" in ln for ln in stderr.splitlines()), stderr
    doc = json.loads(out.read_text() if where == "file" else stdout)
    assert doc["jobs"][0]["error"] == 0


@pytest.mark.parametrize("where", ["stdout", "file"])
def test_mmap_notice_keeps_json(engine, tmp_path, where):
    out = tmp_path / "fio.json"
    cmd = [FIO, "--output-format=json", *([f"--output={out}"] if where == "file" else []),
           "--name=mm", f"--ioengine=external:{engine}", "--xd_type=mmap", "--xd_async=io_uring",
           f"--filename={tmp_path}/data", "--size=1m", "--rw=read"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    notes = [ln for ln in p.stderr.splitlines() if ln.startswith("xdevice: mmap:")]
    assert len(notes) == 1 and "async=io_uring" in notes[0], p.stderr
    doc = json.loads(out.read_text() if where == "file" else p.stdout)
    assert doc["jobs"][0]["read"]["io_bytes"] == 1 << 20


def test_client_server_json(engine, tmp_path):
    """A server runs the job; the client's JSON must parse, the notice stays
    on the server's stderr."""
    sock = tmp_path / "fio.sock"
    job = tmp_path / "job.fio"
    job.write_text(f"[cs]\nioengine=external:{engine}\nxd_type=mmap\nxd_async=io_uring\n"
                   f"filename={tmp_path}/data\nsize=1m\nrw=read\n")
    server = subprocess.Popen([FIO, f"--server=sock:{sock}"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        wait_for(server, sock.exists, 20, "the server's socket")
        p = subprocess.run([FIO, f"--client=sock:{sock}", "--output-format=json", str(job)],
                           capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    finally:
        server.terminate()
        try:
            _, server_err = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            _, server_err = server.communicate()
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    (job_stats,) = doc["client_stats"][:1]
    assert job_stats["jobname"] == "cs" and job_stats["error"] == 0
    assert "xdevice: mmap:" in server_err, server_err
