"""A seed-fixed slice of the torture test (tests/torture.py, `make torture`):
one random case per file storage type, so that make test runs every type
through a random mix of mode, iodepth, block sizes, rw, numjobs, thread or
fork, verify, reloads and migration. A failure prints the command that
replays the case alone."""
import random
import sys

import pytest

from conftest import REPO, _disk_base

sys.path.insert(0, str(REPO / "tests"))
import torture  # noqa: E402

SEED = 20240  # fixed: the slice is the same on every run and machine


@pytest.mark.parametrize("i,stype", list(enumerate(torture.FILE_TYPES)))
def test_torture_slice(engine, shm_dir, i, stype):
    case = torture.Case(SEED + i, [stype])  # no io_uring case where it is refused (torture.MODES)
    base = _disk_base()
    assert base, "no disk directory for the torture data"
    ok, msg, _ = torture.run_case(case, engine, base, str(shm_dir))
    # judged, not excused by the oracle: the slice keeps its coverage
    assert ok and not msg, (f"{case.describe()}\n{msg}\n"
                            f"replay: {torture.replay(case, [stype])}")


def unverifiable_case():
    """A job fio cannot verify with its own engines: time_based randrw with
    bs_unaligned at iodepth 8 (writes of different sizes overlap in flight)."""
    case = torture.Case(SEED, ["regular"])
    case.mode, case.rw, case.bs, case.iodepth, case.numjobs = "libaio", "randrw", "unaligned", 8, 1
    case.time_based, case.reload, case.read_cache, case.fsync = True, False, False, 0
    case.shared_file, case.verify, case.size_kib = False, "sha256", 1024
    case.trim, case.write_back, case.nrfiles, case.opts = None, False, 1, {}
    return case


def test_oracle_is_fio_without_xdevice(tmp_path):
    case = unverifiable_case()
    work = tmp_path / "w"
    args = torture.job_args(case, "/x/xdevice.so", work, str(tmp_path / "shm"), None)
    ref, oracle = torture.oracle_args(case, args, work, direct=False)
    assert oracle == "libaio" and ref[-1] == "--ioengine=libaio", ref
    assert not [a for a in ref if a.startswith("--xd_") or "xdevice.so" in a], ref
    assert f"--directory={work / 'oracle'}" in ref and "--bs_unaligned=1" in ref, ref


def test_case_fio_cannot_verify_is_not_judged(engine, shm_dir, tmp_path):
    """The harness reports a job that fio's own engine fails too as not
    judged, rather than as xdevice's failure; that engine does fail it."""
    case = unverifiable_case()
    work = tmp_path / "w"
    (work / "data").mkdir(parents=True)
    args = torture.job_args(case, engine, work, str(shm_dir), None)
    oracle, problems = torture.run_oracle(case, args, work)
    assert any("verif" in p or "error 84" in p for p in problems), problems
    ok, msg, _ = torture.run_case(case, engine, str(tmp_path), str(shm_dir))
    assert ok and (not msg or msg.startswith("not judged: fio's own libaio engine")), msg


def test_trim_oracle_runs_on_a_loop_device(tmp_path):
    """fio's engines trim only block devices: the oracle of a job with
    trims is fio's engine on a loop device, each job in a region of its
    own."""
    case = unverifiable_case()
    case.rw = case.trim = "trimwrite"
    case.bs, case.time_based, case.numjobs = "4k", False, 2
    work = tmp_path / "w"
    args = torture.job_args(case, "/x/xdevice.so", work, str(tmp_path / "shm"), None)
    ref, _ = torture.oracle_args(case, args, work, direct=False, loop="/dev/loop9")
    assert "--filename=/dev/loop9" in ref and "--offset_increment=1024k" in ref, ref
    assert not [a for a in ref if a.startswith("--directory=")], ref


def test_json_glued_to_an_error_line():
    """fio's job processes write io_u errors to the output file too; the
    document may begin on the same line as one of them (a corrupt run)."""
    from fiojson import split_output
    raw = ("fio: io_u error on file f: Input/output error: read offset=0, buflen=4096\n"
           "fio: io_u error on file f: Input/out"
           '{\n  "fio version" : "fio-3.33",\n  "jobs" : []\n}\n')
    doc, rest = split_output(raw)
    assert doc == {"fio version": "fio-3.33", "jobs": []}, rest
    assert rest.startswith("fio: io_u error"), rest


def file_with_data_in_the_middle(tmp_path):
    """A 1 MiB file that is a hole but for 4 KiB of 0x11 at 512 KiB."""
    path = tmp_path / "f"
    with open(path, "wb") as f:
        f.truncate(1 << 20)
        f.seek(512 << 10)
        f.write(b"\x11" * 4096)
    return path


def test_corrupt_flips_bytes_inside_the_data(tmp_path):
    """The corrupt run's flips land in the data a file holds, not in its
    holes (a container is mostly holes), and each changes its byte."""
    path = file_with_data_in_the_middle(tmp_path)
    flipped = torture.flip_bytes(random.Random(7), [path]).split()
    assert len(flipped) == torture.CORRUPT_BYTES, flipped
    body = path.read_bytes()
    for at in (int(x.split("@")[1]) for x in flipped):
        assert 512 << 10 <= at < (512 << 10) + 4096 and body[at] != 0x11, at


def test_corrupt_zeroes_a_sector_inside_the_data(tmp_path):
    """The other corrupt runs zero one aligned 512-byte sector of the data,
    as a disk that loses one; a case draws one or the other by its seed."""
    path = file_with_data_in_the_middle(tmp_path)
    said = torture.zero_one_sector(random.Random(7), [path])
    at = int(said.split("@")[1].split(":")[0])
    body = path.read_bytes()
    assert at % 512 == 0 and 512 << 10 <= at < (512 << 10) + 4096, said
    assert body[at:at + 512] == bytes(512) and body.count(b"\x11") == 4096 - 512, said
    kinds = set()
    for seed in range(20):
        case = unverifiable_case()
        case.seed = seed
        (tmp_path / f"d{seed}").mkdir()
        file_with_data_in_the_middle(tmp_path / f"d{seed}")
        kinds.add("zeroed" in torture.corrupt(case, tmp_path / f"d{seed}"))
    assert kinds == {True, False}


def test_serialize_overlap_never_meets_a_seed_checked_mix():
    """fio 3.33 draws a second verify seed for a write it holds back for an
    overlap (serialize_overlap's requeue), so a read/write mix whose blocks
    carry seeds, verified without verify_backlog, fails under its own
    engines whenever a requeue happens (seed 686821338: io_uring 30 runs in
    30 at iodepth=4). The harness never draws that pairing; it still draws
    serialize_overlap elsewhere."""
    drawn = seed_checked_mixes = 0
    for seed in range(686821000, 686831000):
        case = torture.Case(seed, torture.FILE_TYPES)
        if "serialize_overlap" not in case.opts:
            continue
        drawn += 1
        seed_checked_mixes += "rw" in case.rw and case.verify != "pattern" and \
            "verify_backlog" not in case.opts
    assert drawn > 20 and seed_checked_mixes == 0, (drawn, seed_checked_mixes)


def test_bytes_are_compared_with_the_modes_engine_at_iodepth_1(engine, shm_dir, tmp_path,
                                                              monkeypatch):
    """TORTURE_COMPARE's reference is fio's engine for the case's mode at
    any depth: xdevice drives a verify job in an async mode as fio's
    io_uring engine drives it, iodepth=1 too, and psync moves other bytes
    in some such jobs (this case: a rw mix over two loops, 557056 bytes
    read under psync, 573440 under io_uring and xdevice)."""
    monkeypatch.setattr(torture, "COMPARE", True)
    case = torture.Case(687399451, torture.FILE_TYPES)
    assert (case.mode, case.iodepth, case.rw, case.bytes_comparable) == \
        ("io_uring", 1, "rw", True), case.describe()
    ok, msg, _ = torture.run_case(case, engine, str(tmp_path), str(shm_dir))
    assert ok and not msg, f"{case.describe()}\n{msg}"


def test_number_ios_with_queued_syncs_is_not_compared():
    """fio counts requests in flight towards number_ios, a queued fsync
    among them, so where a job syncs at depth in an async mode the bytes it
    moves change from run to run under fio's own io_uring engine."""
    case = torture.Case(687399517, torture.FILE_TYPES)
    assert (case.mode, case.iodepth, case.fsync, case.opts.get("number_ios")) == \
        ("libaio", 4, 32, 50), case.describe()
    assert not case.bytes_comparable
    case.fsync = 0
    assert case.bytes_comparable
