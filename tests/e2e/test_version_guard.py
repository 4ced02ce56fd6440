"""The engine refuses a fio other than the one it was compiled against.

build/tests/xdevice-other-fio.so is the same engine built as if for
"fio-0.0-other" (make test builds it). Loading it must fail with one line
naming both versions, and never crash or run I/O.
"""
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OTHER = os.path.join(REPO, "build", "tests", "xdevice-other-fio.so")


def test_other_fio_version_is_refused(tmp_path):
    assert os.path.exists(OTHER), "make test builds " + OTHER
    target = tmp_path / "data"
    proc = subprocess.run(
        ["fio", "--name=guard", f"--ioengine=external:{OTHER}", f"--filename={target}",
         "--size=1m", "--rw=write", "--bs=4k"],
        capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode > 0, out  # failed, and not killed by a signal
    lines = [l for l in out.splitlines() if "built for fio-0.0-other" in l]
    assert lines, out
    assert "loaded into fio-3" in lines[0] and "rebuild" in lines[0]
    assert "Segmentation" not in out and "signal" not in out
    assert not target.exists() or target.stat().st_size == 0 or "err=" in out
