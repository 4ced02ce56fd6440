"""A seed-fixed slice of the torture test (tests/torture.py, `make torture`):
one random case per file storage type, so that make test runs every type
through a random mix of mode, iodepth, block sizes, rw, numjobs, thread or
fork, verify, reloads and migration. A failure prints the command that
replays the case alone."""
import sys

import pytest

from conftest import REPO, _disk_base

sys.path.insert(0, str(REPO / "tests"))
import torture  # noqa: E402

SEED = 20240  # fixed: the slice is the same on every run and machine


@pytest.mark.parametrize("i,stype", list(enumerate(torture.FILE_TYPES)))
def test_torture_slice(engine, shm_dir, i, stype):
    case = torture.Case(SEED + i, [stype])
    base = _disk_base()
    assert base, "no disk directory for the torture data"
    ok, msg, _ = torture.run_case(case, engine, base, str(shm_dir))
    assert ok, (f"{case.describe()}\n{msg}\n"
                f"replay: {torture.replay(case, [stype])}")
