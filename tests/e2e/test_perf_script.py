"""scripts/perf.sh (`make perf`) in seconds: the cache section on a 16 MiB
file, and the knobs' refusals. The full run takes 15-20 minutes and is not
part of make test; this checks that its rows come out, named, judged or
marked informational, and that the engine's hit ratio is its own policy's
replayed on the run's trace (a gap between them is a bug in the layer)."""
import os
import re
import subprocess

import pytest

from conftest import REPO, _disk_base

TINY_CACHE = {"PERF_ONLY": "cache", "PERF_PAIRS": "1", "PERF_CACHE_SIZE": "16m",
              "PERF_CACHE_PASSES": "2", "PERF_CACHE_LONG_PASSES": "0"}
ROWS = ["zipf:1.1, 2x", "zipf:0.8, 2x", "zipf:1.1 reader + sequential scanner, 2x",
        "the same, unpaced (informational), 2x"]
NUM = r"\s+(\d+\.\d+)"
# name, engine, lru, min, gap, gap min, gap max, lfu gap, replay gap, a0 gap ("none": bound), verdict
ROW = re.compile(r"^(.+?, 2x)" + NUM * 8 + r"\s+(\S+)\s+none\s+(.+?)\s*$")


def perf(**env):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("PERF_") and k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    # perf.sh refuses a tmpfs PERF_DISK_DIR (its O_DIRECT rows) before any section
    e.setdefault("PERF_DISK_DIR", _disk_base() or "/var/tmp")
    e.update(env)
    return subprocess.run(["bash", "scripts/perf.sh"], cwd=REPO, env=e, capture_output=True,
                          text=True, timeout=300)


def test_cache_rows_come_out_named_and_judged():
    p = perf(**TINY_CACHE)
    out = f"rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    assert p.returncode == 0, out
    rows = {}
    for line in p.stdout.splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(1).strip()] = m
    assert list(rows) == ROWS, out
    for name, m in rows.items():
        engine, lru, mn, gap, replay = (float(m.group(i)) for i in (2, 3, 4, 5, 9))
        assert lru <= mn, out
        # the replay's hit ratio, from its share of the gap: on a trace this
        # short a gap share is a few dozen hits, so compare hit ratios
        replay_hit = lru + replay * (mn - lru)
        assert abs(engine - replay_hit) < 0.01, f"{name}: engine {engine}, replay {replay_hit}\n{out}"
        verdict = m.group(11)
        if "unpaced" in name:
            assert verdict == "(no target)", out
        else:
            assert verdict == ("ok" if gap >= 0.5 else "BELOW 0.5"), out


@pytest.mark.parametrize("knob,value", [("PERF_CACHE_PASSES", "two"), ("PERF_PAIRS", "0"),
                                        ("PERF_CACHE_LONG_PASSES", "-1"), ("PERF_ONLY", "cache,bogus")])
def test_a_bad_knob_stops_with_one_line(knob, value):
    p = perf(**{"PERF_ONLY": "cache", knob: value})
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 1, p.stdout + p.stderr
    assert len(lines) == 1 and lines[0].startswith("perf: "), p.stderr
    assert f"{knob}={value}" in lines[0], lines[0]
    assert "Read cache" not in p.stdout, p.stdout
