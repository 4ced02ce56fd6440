"""build/xdcheckpoint against checkpoint directories made by hand, as a
hostile or careless user could leave them: untrusted directories, planted
links, manifests naming a path twice, damaged manifests, and its output.

The manifests are written exactly as the checkpoint layer writes them
(compact JSON, "format" first, crc32c of each copy), so only what a test
changes differs from a real checkpoint; tests/e2e/test_checkpoint.py takes
real ones under fio. Several cases need root (chown to nobody).
"""
import json
import os
import pwd
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, crc32c

TOOL = REPO / "build" / "xdcheckpoint"
ID1 = "20261204T053505.450793Z-000001"
ID2 = "20261204T053506.482688Z-000002"
DATA = b"checkpointed bytes\n" * 200

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to nobody)")


def test_crc32c_is_the_standard_one():
    assert crc32c(b"123456789") == 0xE3069283


def manifest_doc(ident, entries):
    return {"format": "xdevice-checkpoint-1", "id": ident, "time": "2026-12-04T05:35:05.450793Z",
            "time_unix_ns": 1796362505450793000, "storage_type": "regular", "files": entries,
            "bytes": sum(e["size"] for e in entries)}


def make_checkpoint(ckpt, files, ident=ID1):
    """A checkpoint ident in ckpt holding files [(target path, bytes)]."""
    ckpt.mkdir(mode=0o755, exist_ok=True)
    os.chmod(ckpt, 0o755)
    d = ckpt / ident
    d.mkdir(mode=0o755)
    entries = []
    for i, (path, data) in enumerate(files):
        copy = f"{i}-{Path(path).name}"
        (d / copy).write_bytes(data)
        entries.append({"path": str(path), "copy": copy, "size": len(data),
                        "crc32c": crc32c(data), "method": "copy"})
    (d / "manifest.json").write_text(json.dumps(manifest_doc(ident, entries),
                                                separators=(",", ":")) + "\n")
    return d


def tool(*args, stdout=subprocess.PIPE):
    return subprocess.run([str(TOOL), *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, timeout=60)


def one_line(r):
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"rc={r.returncode}, want one line on stderr:\n{r.stderr}"
    assert lines[0].startswith("xdcheckpoint: "), lines[0]
    return lines[0]


def nobody():
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def chown_tree(top, uid, gid):
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)
    os.lchown(top, uid, gid)


# --- the checkpoint directory must be one the checkpoint layer would accept ---


@needs_root
@pytest.mark.parametrize("how", ["other-owner", "symlink", "world-writable"])
def test_restore_refuses_an_untrusted_checkpoint_directory(tmp_path, how):
    target = tmp_path / "data" / "f.dat"
    target.parent.mkdir()
    ckpt = tmp_path / "ck"
    make_checkpoint(ckpt, [(target, DATA)])
    given = ckpt
    if how == "other-owner":
        chown_tree(ckpt, *nobody())
    elif how == "symlink":
        given = tmp_path / "ckl"
        given.symlink_to(ckpt)
    else:
        os.chmod(ckpt, 0o777)
    r = tool("restore", given, ID1)
    assert r.returncode == 1, r.stdout + r.stderr
    line = one_line(r)
    assert str(given) in line and "allowed:" in line, line
    assert not target.exists(), "an untrusted manifest decided what was written"
    assert r.stdout == ""


@needs_root
def test_restore_refuses_a_checkpoint_of_another_user_in_a_sticky_directory(tmp_path):
    """A sticky world-writable directory (like /tmp) is a fine checkpoint
    directory, but the checkpoints in it must be ours."""
    target = tmp_path / "data" / "f.dat"
    target.parent.mkdir()
    ckpt = tmp_path / "ck"
    d = make_checkpoint(ckpt, [(target, DATA)])
    os.chmod(ckpt, 0o1777)
    chown_tree(d, *nobody())
    r = tool("restore", ckpt, ID1)
    assert r.returncode == 1, r.stdout + r.stderr
    assert ID1 in one_line(r)
    assert not target.exists()


@pytest.mark.parametrize("second", ["{d}/f.dat", "{d}/./f.dat", "{d}//f.dat"])
def test_restore_refuses_a_manifest_naming_a_path_twice(tmp_path, second):
    """Without --force the second copy would silently replace the first."""
    target = tmp_path / "f.dat"
    ckpt = tmp_path / "ck"
    make_checkpoint(ckpt, [(target, DATA), (second.format(d=tmp_path), b"other bytes")])
    r = tool("restore", ckpt, ID1)
    assert r.returncode == 1, r.stdout + r.stderr
    line = one_line(r)
    assert "f.dat" in line and "twice" in line, line
    assert not target.exists(), "a refused restore wrote"


# --- targets: never through a link someone else planted ------------------------


@needs_root
def test_restore_never_follows_a_link_planted_by_another_user(tmp_path):
    uid, gid = nobody()
    rootonly = tmp_path / "rootonly"
    rootonly.mkdir(mode=0o700)
    victim = rootonly / "f.dat"
    victim.write_bytes(b"root's own bytes")
    userdir = tmp_path / "userdir"
    userdir.mkdir(mode=0o755)
    (userdir / "d").symlink_to(rootonly)
    chown_tree(userdir, uid, gid)
    ckpt = tmp_path / "ck"
    make_checkpoint(ckpt, [(userdir / "d" / "f.dat", DATA)])
    r = tool("restore", ckpt, ID1, "--force")
    assert r.returncode == 1, r.stdout + r.stderr
    line = one_line(r)
    assert str(userdir / "d") in line and "link" in line, line
    assert victim.read_bytes() == b"root's own bytes"
    assert sorted(p.name for p in rootonly.iterdir()) == ["f.dat"], "temp file left"


@needs_root
def test_restore_refuses_a_directory_another_user_controls(tmp_path):
    uid, gid = nobody()
    userdir = tmp_path / "userdir"
    userdir.mkdir(mode=0o755)
    os.chown(userdir, uid, gid)
    ckpt = tmp_path / "ck"
    make_checkpoint(ckpt, [(userdir / "f.dat", DATA)])
    r = tool("restore", ckpt, ID1)
    assert r.returncode == 1, r.stdout + r.stderr
    assert str(userdir) in one_line(r)
    assert not list(userdir.iterdir())


def test_restore_follows_a_link_of_our_own(tmp_path):
    """Links we (or root) made are followed: a path through /data -> /mnt/data
    is a normal setup."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    ckpt = tmp_path / "ck"
    make_checkpoint(ckpt, [(tmp_path / "link" / "f.dat", DATA)])
    r = tool("restore", ckpt, ID1)
    assert r.returncode == 0, r.stderr
    assert (real / "f.dat").read_bytes() == DATA


def test_restore_keeps_the_group_and_mode_of_a_replaced_file(tmp_path):
    """A file of ours is replaced keeping its group and mode (its owner is
    ours already); a new file gets the copy's mode."""
    target = tmp_path / "f.dat"
    target.write_bytes(b"newer bytes")
    gid = nobody()[1] if os.geteuid() == 0 else os.getegid()
    os.chown(target, -1, gid)
    os.chmod(target, 0o640)
    fresh = tmp_path / "new.dat"
    ckpt = tmp_path / "ck"
    d = make_checkpoint(ckpt, [(target, DATA), (fresh, DATA)])
    os.chmod(d / "1-new.dat", 0o604)
    r = tool("restore", ckpt, ID1, "--force")
    assert r.returncode == 0, r.stderr
    st = target.stat()
    assert target.read_bytes() == DATA
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (os.geteuid(), gid, 0o640)
    assert fresh.read_bytes() == DATA and fresh.stat().st_mode & 0o7777 == 0o604


@needs_root
@pytest.mark.parametrize("what", ["file", "link"])
def test_restore_refuses_another_users_file_at_a_target(tmp_path, what):
    """--force replaced another user's file at a target's name (planted in
    a sticky directory such as /tmp) and gave the restored bytes to that
    user: the replaced file's owner was kept. Refused in one line before any
    file is written; a link at the name is never replaced either."""
    uid, gid = nobody()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    first = tmp_path / "first.dat"  # restored before it in the manifest: must stay missing
    target = shared / "f.dat"
    victim = tmp_path / "victim"
    victim.write_bytes(b"victim bytes")
    if what == "file":
        target.write_bytes(b"their bytes")
        os.chown(target, uid, gid)
    else:
        target.symlink_to(victim)
        os.lchown(target, uid, gid)
    ckpt = tmp_path / "ck"
    make_checkpoint(ckpt, [(first, DATA), (target, DATA)])
    r = tool("restore", ckpt, ID1, "--force")
    assert r.returncode == 1, r.stdout + r.stderr
    line = one_line(r)
    assert str(target) in line and ("uid 65534" if what == "file" else "symbolic link") in line, line
    assert target.lstat().st_uid == uid and target.is_symlink() == (what == "link")
    assert victim.read_bytes() == b"victim bytes" and not first.exists()
    if what == "file":
        assert target.read_bytes() == b"their bytes"
    assert os.listdir(shared) == ["f.dat"], "a temp file was left"


# --- damaged checkpoints are named, never skipped --------------------------------

DAMAGE = {
    "missing": None,
    "empty": b"",
    "random": bytes(range(256)) * 4,
    "directory": "dir",
    "truncated": b'{"format":',
    "no-files": b'{"format":"xdevice-checkpoint-1","id":"x"}\n',
    "other-format": b'{"format":"xdevice-checkpoint-9","files":[]}\n',
}


def damage(d, how):
    m = d / "manifest.json"
    m.unlink()
    content = DAMAGE[how]
    if content == "dir":
        m.mkdir()
    elif content is not None:
        m.write_bytes(content)
    return m


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_checkpoint_is_named_by_list_and_verify(tmp_path, how):
    ckpt = tmp_path / "ck"
    make_checkpoint(ckpt, [(tmp_path / "f.dat", DATA)], ident=ID1)
    bad = make_checkpoint(ckpt, [(tmp_path / "f.dat", DATA)], ident=ID2)
    manifest = damage(bad, how)
    # what is not a checkpoint stays ignored: the layer's own leftovers, other names
    (ckpt / f".tmp-{ID2}-4242").mkdir()
    (ckpt / "notes").mkdir()
    (ckpt / "README").write_text("x")

    r = tool("verify", ckpt)
    assert r.returncode == 1, r.stdout + r.stderr
    line = one_line(r)
    assert str(manifest) in line and "damaged" in line, line
    assert r.stdout.split() == [ID1, "ok", "1", "files"], r.stdout

    r = tool("verify", ckpt, ID2)
    assert r.returncode == 1, r.stdout + r.stderr
    line = one_line(r)
    assert str(manifest) in line and "no checkpoint" not in line, line

    r = tool("list", ckpt)
    assert r.returncode == 1, r.stdout + r.stderr
    rows = [ln.split() for ln in r.stdout.splitlines()]
    assert [row[0] for row in rows] == [ID1, ID2], r.stdout
    assert rows[1][1] == "damaged" and rows[0][1] != "damaged", r.stdout
    assert str(manifest) in one_line(r)

    r = tool("restore", ckpt, ID2)
    assert r.returncode == 1 and str(manifest) in one_line(r)
    assert not (tmp_path / "f.dat").exists()


@pytest.mark.parametrize("what", ["fifo", "symlink"])
def test_a_copy_that_is_no_regular_file_is_damaged_and_never_waited_on(tmp_path, what):
    ckpt = tmp_path / "ck"
    d = make_checkpoint(ckpt, [(tmp_path / "f.dat", DATA)])
    copy = d / "0-f.dat"
    copy.unlink()
    if what == "fifo":
        os.mkfifo(copy)  # opening it to read would wait for a writer forever
    else:
        (tmp_path / "elsewhere").write_bytes(DATA)
        copy.symlink_to(tmp_path / "elsewhere")
    for args in [("verify", ckpt), ("restore", ckpt, ID1)]:
        r = tool(*args)
        assert r.returncode == 1, r.stdout + r.stderr
        line = one_line(r)
        assert str(copy) in line and "damaged" in line, line
    assert not (tmp_path / "f.dat").exists()


def test_a_manifest_with_other_spacing_is_read(tmp_path):
    """The manifest is read as JSON (no checksum covers its bytes), so the
    same document with other white space is the same checkpoint."""
    ckpt = tmp_path / "ck"
    d = make_checkpoint(ckpt, [(tmp_path / "f.dat", DATA)])
    m = d / "manifest.json"
    m.write_text(json.dumps(json.loads(m.read_text()), indent=2) + "\n")
    r = tool("list", ckpt)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [ID1, "2026-12-04T05:35:05.450793Z", "1", str(len(DATA))]
    r = tool("verify", ckpt)
    assert r.returncode == 0 and r.stdout.split() == [ID1, "ok", "1", "files"], r.stderr
    assert tool("restore", ckpt, ID1).returncode == 0
    assert (tmp_path / "f.dat").read_bytes() == DATA


def test_an_id_named_file_is_a_damaged_checkpoint(tmp_path):
    ckpt = tmp_path / "ck"
    ckpt.mkdir()
    (ckpt / ID1).write_text("not a directory")
    r = tool("verify", ckpt)
    assert r.returncode == 1 and str(ckpt / ID1) in one_line(r), r.stderr


def test_verify_says_when_there_are_no_checkpoints(tmp_path):
    ckpt = tmp_path / "ck"
    ckpt.mkdir()
    (ckpt / f".tmp-{ID1}-4242").mkdir()
    r = tool("verify", ckpt)
    assert r.returncode == 0, r.stderr
    assert "no checkpoints" in r.stdout and str(ckpt) in r.stdout, r.stdout
    assert r.stderr == ""
    r = tool("list", ckpt)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""


# --- the command line and its output -----------------------------------------------


@pytest.mark.parametrize("args", [
    ["restore", "{ck}", ID1, "--forc"],
    ["restore", "{ck}"],
    ["list", "{ck}", "extra"],
    ["verify", "{ck}", ID1, ID2],
    ["lst", "{ck}"],
    ["list"],
])
def test_bad_command_lines_say_one_line(tmp_path, args):
    ckpt = tmp_path / "ck"
    make_checkpoint(ckpt, [(tmp_path / "f.dat", DATA)])
    r = tool(*[a.replace("{ck}", str(ckpt)) for a in args])
    assert r.returncode == 2, r.stdout + r.stderr
    line = one_line(r)
    assert "allowed:" in line, line
    assert not (tmp_path / "f.dat").exists()


def test_help_prints_usage(tmp_path):
    for flag in ["--help", "-h"]:
        r = tool(flag)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        assert "xdcheckpoint list DIR" in r.stdout and "restore DIR ID" in r.stdout


@pytest.mark.parametrize("cmd", ["list", "verify"])
def test_a_failed_write_to_stdout_fails(tmp_path, cmd):
    ckpt = tmp_path / "ck"
    make_checkpoint(ckpt, [(tmp_path / "f.dat", DATA)])
    with open("/dev/full", "w") as full:  # only ever as stdout
        r = tool(cmd, ckpt, stdout=full)
    assert r.returncode == 1, r.stderr
    line = one_line(r)
    assert "standard output" in line, line
