"""Hostile file system: xdevice runs as root, another user plants links.

For every path xdevice makes (stats document, its fragments directory and
lock, periodic stats log, block trace, tmpfs data copies and backup temps,
the hybrid type's map and hot copies, compressed containers, xdtune's and
xdreport's outputs) a symlink to a victim file, then to a victim directory,
is planted at the name (and at the old fixed temp names), the job runs, and:

- the victim is untouched (content, mode, mtime; a directory's listing);
- the run either refuses with one line naming the path, or writes safely
  (the link itself is never written through).

Then the same places in a directory owned by `nobody` with mode 0777: the
run refuses with one line naming the directory, unless
allow_shared_directories says otherwise.

Also: another user's file (not a link) at a name xdevice replaces or writes
its format into (a config `xdconfig set` rewrites, a compressed container,
a hybrid cold file), another user's object at the hybrid type's shared
memory name, and another user's link in a name above a directory xdevice
writes into: each refused in one line, theirs left as it was.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import FIO, REPO, fio_job, load_stats, run_fio, tool_one_line, xdevice_lines

NOBODY = 65534
XDTUNE = REPO / "build" / "xdtune"
XDREPORT = REPO / "build" / "xdreport"
XDCONFIG = REPO / "build" / "xdconfig"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="plants files as another user: needs root")


# --- victims -------------------------------------------------------------------


class Victims:
    """A file and a directory that no run may change."""

    def __init__(self, base: Path):
        self.dir = base / "victims"
        self.dir.mkdir()
        self.file = self.dir / "precious.txt"
        self.file.write_text("precious\n")
        self.vdir = self.dir / "precious.d"
        self.vdir.mkdir()
        (self.vdir / "inside.txt").write_text("inside\n")
        self.before = self.snapshot()

    def snapshot(self):
        st = self.file.stat()
        dst = self.vdir.stat()
        return (self.file.read_bytes(), st.st_mode, st.st_mtime_ns, st.st_nlink,
                sorted(os.listdir(self.vdir)), (self.vdir / "inside.txt").read_bytes(),
                dst.st_mode, sorted(os.listdir(self.dir)))

    def target(self, kind):
        return self.file if kind == "file" else self.vdir

    def assert_untouched(self, where):
        assert self.snapshot() == self.before, f"a victim was changed through {where}"


def sticky_dir(tmp_path: Path, name="shared") -> Path:
    """A directory like /tmp: everyone may write, the sticky bit set."""
    d = tmp_path / name
    d.mkdir()
    d.chmod(0o1777)
    return d


def theirs_in(d: Path, name: str, text="theirs\n") -> Path:
    """A file another user (nobody) made in d."""
    f = d / name
    f.write_text(text)
    os.chown(f, NOBODY, NOBODY)
    return f


def plant(link: Path, target: Path):
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(target, link)


def still_link_or_regular(link: Path, target: Path):
    """Safe outcomes at a planted name: the link as it was, or a regular
    file put there by rename (never written through the link)."""
    if link.is_symlink():
        assert os.readlink(link) == str(target)
    else:
        assert not link.exists() or link.is_file()


def refused_once(r, *needles):
    """One distinct xdevice line, naming every needle."""
    lines = sorted(set(xdevice_lines(r.text)))
    hits = [ln for ln in lines if all(n in ln for n in needles)]
    assert len(hits) == 1 and len(lines) == 1, f"want one line naming {needles}, got:\n{r.text}"
    return hits[0]


@pytest.fixture
def place(tmp_path):
    """A directory of root's where the links are planted (xdevice trusts it)."""
    d = tmp_path / "place"
    d.mkdir()
    return d


def tmpfs_name(path: Path) -> str:
    """The tmpfs layer's name for a disk path: '/' and '%' escaped."""
    s = str(path)[1:]
    return s.replace("%", "%25").replace("/", "%2F")


KINDS = ["file", "dir"]


# --- the stats document, its fragments and lock -----------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["s.json", "s.json.d", "s.json.d.lock"])
def test_stats_paths(engine, tmp_path, place, kind, name):
    v = Victims(tmp_path)
    link = place / name
    plant(link, v.target(kind))
    stats = place / "s.json"
    r = run_fio(fio_job(engine, xd={"stats": stats}, filename=tmp_path / "data",
                        rw="write", bs="4k", size="64k", numjobs=2, thread=1),
                tmp_path, expect_ok=False)
    v.assert_untouched(link)
    still_link_or_regular(link, v.target(kind))
    if link.is_symlink():  # refused: said once, naming the stats file, and fio fails
        refused_once(r, str(stats))
        assert r.rc != 0
        # at the start, not after the work: no job wrote, nothing was made beside it
        assert not r.data or all(j["write"]["io_bytes"] == 0 for j in r.data["jobs"]), r.data
        assert [p.name for p in place.iterdir()] == [name], list(place.iterdir())
    assert not list(place.glob(".s.json.*")), "a temp file was left behind"


def test_stats_document_of_another_user(engine, tmp_path, place):
    """The document is renamed over its name: in /tmp that removed another
    user's file of the same name. Refused at the start, in one line."""
    stats = place / "s.json"
    stats.write_text("theirs\n")
    os.chown(stats, NOBODY, NOBODY)
    r = run_fio(fio_job(engine, xd={"stats": stats}, filename=tmp_path / "data", rw="write",
                        bs="4k", size="64k"), tmp_path, expect_ok=False)
    assert r.rc != 0
    assert stats.read_text() == "theirs\n" and stats.stat().st_uid == NOBODY
    refused_once(r, str(stats), "another user's file")


def test_stats_leaves_nothing_beside_it(engine, tmp_path, place):
    """The run's last job removes FILE.d and FILE.d.lock (threads and processes)."""
    for thread in (0, 1):
        stats = place / f"s{thread}.json"
        run_fio(fio_job(engine, xd={"stats": stats}, filename=tmp_path / "data",
                        rw="read", bs="4k", size="64k", numjobs=3, thread=thread), tmp_path)
        assert json.loads(stats.read_text())["aggregate"]["jobs"] == 3
    assert sorted(p.name for p in place.iterdir()) == ["s0.json", "s1.json"]


# --- periodic stats log and the block trace -------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("key,name,extra", [
    ("stats_log", "s.jsonl", {"stats_interval": 1}),
    ("trace", "t.trace", {}),
])
def test_appended_files(engine, tmp_path, place, kind, key, name, extra):
    v = Victims(tmp_path)
    link = place / name
    plant(link, v.target(kind))
    r = run_fio(fio_job(engine, xd={key: link, **extra}, filename=tmp_path / "data",
                        rw="write", bs="4k", size="64k"), tmp_path, expect_ok=False)
    v.assert_untouched(link)
    assert link.is_symlink() and os.readlink(link) == str(v.target(kind))
    assert r.rc != 0
    # xd_stats_log to a directory is already refused when fio parses it
    parsed = key == "stats_log" and kind == "dir"
    refused_once(r, f"{key}={link}", "is a directory" if parsed else "symbolic link")


def test_appended_file_of_another_user(engine, tmp_path, place):
    """A log someone else made (or hard-linked) at the name is not appended to."""
    v = Victims(tmp_path)
    theirs = place / "t.trace"
    os.link(v.file, theirs)  # a hard link: same inode as the victim
    r = run_fio(fio_job(engine, xd={"trace": theirs}, filename=tmp_path / "data",
                        rw="write", bs="4k", size="64k"), tmp_path, expect_ok=False)
    os.unlink(theirs)
    v.assert_untouched(theirs)
    assert r.rc != 0
    refused_once(r, f"trace={theirs}", "hard link")


# --- the tmpfs type: data copies, backup temps, the disk path -------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["data", "old-backup-temp", "disk-path"])
def test_tmpfs_paths(engine, tmp_path, shm_dir, kind, where):
    v = Victims(tmp_path)
    data = tmp_path / "disk" / "f.dat"
    data.parent.mkdir()
    link = {"data": shm_dir / tmpfs_name(data),
            "old-backup-temp": Path(f"{data}.xdbackup.tmp"),
            "disk-path": data}[where]
    plant(link, v.target(kind))
    r = run_fio(fio_job(engine, xd={"type": "tmpfs", "tmpfs_directory": shm_dir,
                                    "backup_to_disk": 1},
                        filename=data, rw="write", bs="4k", size="64k", fsync=4),
                tmp_path, expect_ok=False)
    v.assert_untouched(link)
    if where == "old-backup-temp":  # not a name xdevice uses any more: the run is fine
        assert r.rc == 0, r.text
        assert link.is_symlink() and data.is_file() and data.stat().st_size == 64 * 1024
    elif where == "disk-path" and not link.is_symlink():
        # fio found the link's target too small and laid the file out anew
        # (unlink, create): the link is gone before xdevice opens anything
        still_link_or_regular(link, v.target(kind))
    else:
        assert r.rc != 0
        refused_once(r, str(data), "symbolic link")
        assert link.is_symlink()
    assert not list(data.parent.glob(".f.dat.*")), "a temp file was left behind"


def test_tmpfs_private_default(engine, tmp_path):
    """No tmpfs_directory: /dev/shm/xdevice-UID, mode 0700, the user's."""
    data = tmp_path / "f.dat"
    run_fio(fio_job(engine, xd={"type": "tmpfs"}, filename=data, rw="write", bs="4k",
                    size="64k"), tmp_path)
    d = Path(f"/dev/shm/xdevice-{os.geteuid()}")
    st = d.lstat()
    assert d.is_dir() and not d.is_symlink() and st.st_uid == os.geteuid()
    assert st.st_mode & 0o777 == 0o700
    copy = d / tmpfs_name(data)
    assert copy.is_file()
    copy.unlink()


def mounted(d: Path) -> bool:
    return f" {d} " in Path("/proc/self/mountinfo").read_text()


@pytest.fixture
def unmount_after():
    """Mount points to take down after the test, should a bug leave one."""
    points = []
    yield points
    for p in points:
        while mounted(p):
            subprocess.run(["umount", str(p)], check=False)


def test_auto_mount_refuses_a_full_directory(engine, tmp_path, unmount_after):
    v = Victims(tmp_path)
    unmount_after.append(v.dir)
    r = run_fio(fio_job(engine, xd={"type": "tmpfs", "tmpfs_directory": v.dir, "auto_mount": 1},
                        filename=tmp_path / "f.dat", rw="write", bs="4k", size="64k"),
                tmp_path, expect_ok=False)
    assert not mounted(v.dir)
    v.assert_untouched("auto_mount")
    assert r.rc != 0
    refused_once(r, str(v.dir), "not empty")


def test_auto_mount_refuses_another_users_directory(engine, tmp_path, unmount_after):
    """An earlier xdevice's mount lock beside the name (left when a busy
    mount could not come down) vouched for whatever empty directory was
    there: one another user made since was mounted over and, by the last
    user, removed."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    os.chown(mnt, NOBODY, NOBODY)
    (tmp_path / "mnt.lock").write_text("")
    unmount_after.append(mnt)
    r = run_fio(fio_job(engine, xd={"type": "tmpfs", "tmpfs_directory": mnt, "auto_mount": 1},
                        filename=tmp_path / "f.dat", rw="write", bs="4k", size="64k"),
                tmp_path, expect_ok=False)
    assert mnt.is_dir() and mnt.stat().st_uid == NOBODY, "another user's directory was removed"
    assert not mounted(mnt)
    assert r.rc != 0
    refused_once(r, str(mnt), "belongs to another user")


def test_auto_mount_is_undone_by_the_last_user(engine, tmp_path, unmount_after):
    mnt = tmp_path / "mnt"
    unmount_after.append(mnt)
    r = run_fio(fio_job(engine, xd={"type": "tmpfs", "tmpfs_directory": mnt, "auto_mount": 1,
                                    "tmpfs_size": "16m"},
                        filename=tmp_path / "f.dat", rw="write", bs="4k", size="64k",
                        numjobs=2), tmp_path, expect_ok=False)
    if r.rc != 0 and "cannot mount" in r.text:
        pytest.skip("mount is not permitted here")
    assert r.rc == 0, r.text
    assert not mounted(mnt)
    assert not mnt.exists() and not Path(f"{mnt}.lock").exists()


# --- the hybrid type: map, hot copies; compressed containers -----------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["map", "hot", "cold"])
def test_hybrid_paths(engine, tmp_path, shm_dir, kind, where):
    v = Victims(tmp_path)
    data = tmp_path / "disk" / "h.dat"
    data.parent.mkdir()
    link = {"map": Path(f"{data}.xdmap"), "hot": shm_dir / tmpfs_name(data),
            "cold": data}[where]
    plant(link, v.target(kind))
    r = run_fio(fio_job(engine, xd={"type": "hybrid", "hot_directory": shm_dir},
                        filename=data, rw="randrw", bs="4k", size="256k", thread=1),
                tmp_path, expect_ok=False)
    v.assert_untouched(link)
    assert link.is_symlink()
    assert r.rc != 0
    refused_once(r, str(link if where != "hot" else data), "symbolic link")


@pytest.mark.parametrize("kind", KINDS)
def test_compressed_container(engine, tmp_path, kind):
    v = Victims(tmp_path)
    data = tmp_path / "c.dat"
    plant(data, v.target(kind))
    r = run_fio(fio_job(engine, xd={"type": "compressed"}, filename=data, rw="write", bs="4k",
                        size="64k"), tmp_path, expect_ok=False)
    v.assert_untouched(data)
    assert r.rc != 0
    refused_once(r, str(data), "symbolic link")


def test_compressed_container_fifo(engine, tmp_path):
    """A FIFO at the container's name (another user's, in /tmp): opening
    it to read its header waited for a writer for ever, and root's fio
    hung, deaf to SIGTERM. Refused at once, in one line."""
    data = tmp_path / "c.ctr"
    os.mkfifo(data)
    r = run_fio(fio_job(engine, xd={"type": "compressed"}, filename=data, rw="write", bs="4k",
                        size="64k"), tmp_path, expect_ok=False, timeout=60)
    assert r.rc != 0
    refused_once(r, str(data), "a FIFO, socket or device is at that name")


def test_mirror_copy_fifo(engine, tmp_path):
    """A FIFO at a mirror copy's name: the claim's open waited for a writer
    for ever. The copy is degraded at once and the job runs on."""
    mirror = tmp_path / "m"
    mirror.mkdir()
    os.mkfifo(mirror / "d.dat")
    r = run_fio(fio_job(engine, xd={"enable_redundancy": "true", "redundancy_factor": 2,
                                    "mirror_directories": mirror},
                        filename=tmp_path / "d.dat", rw="write", bs="4k", size="64k"),
                tmp_path, timeout=60)
    assert r.rc == 0
    assert any("degraded" in ln and "FIFO" in ln for ln in xdevice_lines(r.text)), r.text


@pytest.mark.parametrize("what", ["file", "link"])
@pytest.mark.parametrize("xdtype", ["compressed", "hybrid"])
def test_format_files_of_another_user(engine, tmp_path, shm_dir, xdtype, what):
    """A compressed container and a hybrid cold file hold xdevice's format
    and are written in place: another user's file at the name (planted in
    /tmp) got root's data written into it. Refused, as fio's layout of a
    data file refuses it, in one line; a link of theirs is never followed."""
    shared = sticky_dir(tmp_path)
    data = shared / "c.dat"
    v = Victims(tmp_path)
    if what == "file":
        data.write_bytes(b"")  # empty: the compressed type formats an empty file
        os.chown(data, NOBODY, NOBODY)
    else:
        plant(data, v.file)
        os.lchown(data, NOBODY, NOBODY)
    xd = {"type": xdtype, **({"hot_directory": shm_dir} if xdtype == "hybrid" else {})}
    r = run_fio(fio_job(engine, xd=xd, filename=data, rw="write", bs="4k", size="64k",
                        thread=1), tmp_path, expect_ok=False)
    v.assert_untouched(data)
    assert r.rc != 0
    assert os.listdir(shared) == ["c.dat"], os.listdir(shared)
    if what == "link":
        assert data.is_symlink()
        refused_once(r, str(data), "symbolic link")
        return
    st = data.stat()
    assert (st.st_uid, st.st_size) == (NOBODY, 0), "another user's file was written"
    refused_once(r, str(data), "uid 65534")


def test_hybrid_shared_state_of_another_user(engine, tmp_path, shm_dir):
    """The hybrid type's shared memory object is named after the cold
    file's device and inode (/dev/shm/xdevice-tier-DEV-INO), which anyone
    who can stat the file knows: the first opener removed whatever was at
    that name, another user's object too. Only our own (a crashed run's)
    is removed; another user's is refused in one line."""
    data = tmp_path / "h.dat"
    data.write_bytes(bytes(256 * 1024))
    st = data.stat()
    obj = Path(f"/dev/shm/xdevice-tier-{st.st_dev:x}-{st.st_ino:x}")
    obj.write_text("theirs\n")
    os.chown(obj, NOBODY, NOBODY)
    try:
        r = run_fio(fio_job(engine, xd={"type": "hybrid", "hot_directory": shm_dir},
                            filename=data, rw="randrw", bs="4k", size="256k", thread=1),
                    tmp_path, expect_ok=False)
        assert obj.exists() and obj.read_text() == "theirs\n", "another user's object was removed"
        assert obj.stat().st_uid == NOBODY
        assert r.rc != 0
        refused_once(r, str(obj), "uid 65534")
    finally:
        obj.unlink(missing_ok=True)


@pytest.mark.parametrize("kind", ["file", "link"])
def test_mirror_words_of_another_user(engine, tmp_path, kind):
    """The mirror's writers share a page of words in /dev/shm/xdevice-mirror-DEV-INO,
    named after the primary, which anyone who can stat it knows. Another
    user's object (or link) at that name is neither used, followed nor
    removed: the job runs, taking a lock per write instead of going solo."""
    primary, copy = tmp_path / "p", tmp_path / "c"
    primary.mkdir()
    copy.mkdir()
    data = primary / "m.dat"
    data.write_bytes(bytes(256 * 1024))
    st = data.stat()
    obj = Path(f"/dev/shm/xdevice-mirror-{st.st_dev:x}-{st.st_ino:x}")
    v = Victims(tmp_path)
    if kind == "file":
        obj.write_bytes(b"theirs\n")
        os.chown(obj, NOBODY, NOBODY)
    else:
        plant(obj, v.file)
        os.lchown(obj, NOBODY, NOBODY)
    stats = tmp_path / "s.json"
    try:
        xd = {"enable_redundancy": "true", "redundancy_factor": 2, "mirror_directories": copy,
              "stats": stats}
        run_fio(fio_job(engine, xd=xd, filename=data, rw="randwrite", bs="4k", size="256k"),
                tmp_path)
        assert obj.is_symlink() if kind == "link" else obj.read_bytes() == b"theirs\n"
        assert obj.lstat().st_uid == NOBODY
        v.assert_untouched("the mirror's words")
        assert load_stats(stats)["jobs"][0]["layers"]["mirror"]["solo_files"] == 0
    finally:
        obj.unlink(missing_ok=True)


# --- xdconfig set -------------------------------------------------------------------


def xdconfig_set(ini, *sets, cwd):
    return subprocess.run([str(XDCONFIG), "set", str(ini), *sets], capture_output=True, text=True,
                          timeout=60, cwd=str(cwd))


def test_xdconfig_set_keeps_another_users_config(tmp_path):
    """xdconfig set renamed a file of root's, mode 0600, over another
    user's config in a shared directory: theirs was gone."""
    shared = sticky_dir(tmp_path)
    ini = shared / "x.ini"
    ini.write_text("[local]\nread_ahead_kb = 64\n")
    os.chown(ini, NOBODY, NOBODY)
    p = xdconfig_set(ini, "read_ahead_kb=256", cwd=tmp_path)
    tool_one_line(p, 1, "xdconfig: ", str(ini), "uid 65534")
    st = ini.stat()
    assert ini.read_text() == "[local]\nread_ahead_kb = 64\n" and st.st_uid == NOBODY
    assert os.listdir(shared) == ["x.ini"], os.listdir(shared)


def test_xdconfig_set_never_reads_through_another_users_link(tmp_path):
    """set loaded the config through a link planted at its name: a file
    only root may read was shown, a line at a time, in the parse error."""
    secret = tmp_path / "secret"
    secret.write_text("the-secret-line\n")
    secret.chmod(0o600)
    shared = sticky_dir(tmp_path)
    ini = shared / "x.ini"
    plant(ini, secret)
    os.lchown(ini, NOBODY, NOBODY)
    p = xdconfig_set(ini, "read_ahead_kb=256", cwd=tmp_path)
    line = tool_one_line(p, 1, "xdconfig: ", str(ini), "symbolic link")
    assert "the-secret-line" not in line
    assert ini.is_symlink() and secret.read_text() == "the-secret-line\n"


# --- data files of the types fio lays out ---------------------------------------


def big_victim(tmp_path: Path) -> Path:
    """A root-only file as big as the job, so that fio does not lay the
    file out again (which would remove the link) and opens through it."""
    v = tmp_path / "victims-big"
    v.mkdir()
    f = v / "root-only.bin"
    f.write_bytes(b"V" * 65536)
    f.chmod(0o600)
    return f


@pytest.mark.parametrize("owner,xdtype", [(NOBODY, "regular"), (NOBODY, "mmap"), (0, "regular")])
def test_data_file_link_follows_only_ours_or_roots(engine, tmp_path, place, owner, xdtype):
    """A link at a data file's name is followed (/dev/disk/by-id) only when
    it is the caller's or root's: one another user planted in /tmp would aim
    root's writes at any file."""
    victim = big_victim(tmp_path)
    data = place / "d.dat"
    plant(data, victim)
    os.lchown(data, owner, owner)
    r = run_fio(fio_job(engine, xd={"type": xdtype}, filename=data, rw="write", bs="4k",
                        size="64k", buffer_pattern="0x41"), tmp_path, expect_ok=owner == 0)
    if owner == 0:
        assert victim.read_bytes() == b"A" * 65536, "root's own link was not followed"
        return
    assert victim.read_bytes() == b"V" * 65536, "written through another user's link"
    assert r.rc != 0 and data.is_symlink()
    refused_once(r, str(data), "symbolic link of another user's")


# Plays the other user who wins the race of fio's layout: at fio's
# open(O_CREAT) without O_EXCL of the data file, a link to the victim is put
# at the name when nothing is there (another user looping on symlink() in
# /tmp gets there between the removal and that open).
PLANT_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
static void plant(const char *path, int flags)
{
    const char *at = getenv("XD_PLANT_AT"), *to = getenv("XD_PLANT_TO");
    struct stat st;
    if (at && to && (flags & O_CREAT) && !(flags & O_EXCL) && !strcmp(path, at) &&
        lstat(path, &st) && !symlink(to, path))
        lchown(path, 65534, 65534);
}
#define WRAP(name)                                                        \
    int name(const char *path, int flags, ...)                            \
    {                                                                     \
        va_list ap;                                                       \
        va_start(ap, flags);                                              \
        mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;         \
        va_end(ap);                                                       \
        plant(path, flags);                                               \
        int (*real)(const char *, int, ...) = dlsym(RTLD_NEXT, #name);    \
        return real(path, flags, mode);                                   \
    }
WRAP(open)
WRAP(open64)
"""


def test_layout_race_leaves_no_gap_for_a_link(engine, tmp_path, place):
    """fio lays a data file out by the engine's unlink, then open(O_CREAT)
    by name, following links: a link planted in that gap had root's fio
    write the layout into the victim. The engine leaves a file of its own
    at the name, so the planting finds the name taken."""
    shim = tmp_path / "plant.so"
    src = tmp_path / "plant.c"
    src.write_text(PLANT_SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(src), "-ldl"], check=True)
    victim = big_victim(tmp_path)
    data = place / "d.dat"
    env = dict(os.environ, LD_PRELOAD=str(shim), XD_PLANT_AT=str(data), XD_PLANT_TO=str(victim))
    cmd = [FIO, *fio_job(engine, xd={"type": "regular"}, filename=data, rw="write", bs="4k",
                         size="64k")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                          env=env)
    assert victim.read_bytes() == b"V" * 65536, "fio's layout wrote through a planted link"
    assert proc.returncode == 0 and not data.is_symlink(), proc.stderr
    assert data.stat().st_size == 65536


def test_layout_keeps_another_users_file(engine, tmp_path, place):
    """fio lays a file out by removing what is at the name, through the
    engine: in /tmp that was any user's file of that name."""
    data = place / "d.dat"
    data.write_text("theirs\n")
    os.chown(data, NOBODY, NOBODY)
    r = run_fio(fio_job(engine, xd={"type": "regular"}, filename=data, rw="write", bs="4k",
                        size="64k"), tmp_path, expect_ok=False)
    assert r.rc != 0
    assert data.read_text() == "theirs\n" and data.stat().st_uid == NOBODY
    refused_once(r, str(data), "a file of uid 65534")


def test_unlink_keeps_a_file_whose_open_was_refused(engine, tmp_path, place):
    """unlink=1 after the open was refused (another user's sidecar beside
    their data file): the engine removed the data file it never opened."""
    data = place / "d.dat"
    data.write_bytes(b"T" * 65536)
    side = place / "d.dat.xdsum"
    side.write_text("x\n")
    for p in (data, side):
        os.chown(p, NOBODY, NOBODY)
    r = run_fio(fio_job(engine, xd={"type": "regular", "enable_checksums": "true"},
                        filename=data, rw="read", bs="4k", size="64k", unlink=1),
                tmp_path, expect_ok=False)
    assert r.rc != 0
    assert data.read_bytes() == b"T" * 65536, "another user's data file was removed"
    refused_once(r, str(side), "another user's file")


@pytest.mark.parametrize("owner,key", [(NOBODY, "stats"), (NOBODY, "tmpfs_directory"),
                                       (0, "stats")])
def test_directory_link_of_another_user(engine, tmp_path, shm_dir, owner, key):
    """A link at the name of a directory xdevice writes into is judged as
    the directory: one of another user's (planted in a sticky /dev/shm)
    would pick which of root's directories gets root's files. The check on
    the link's target alone passed it."""
    sticky = shm_dir / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    target = shm_dir / "roots"  # root's, 0755: passes the owner rule itself
    target.mkdir()
    link = sticky / "d"
    plant(link, target)
    os.lchown(link, owner, owner)
    xd = {"stats": link / "s.json"} if key == "stats" else {"type": "tmpfs", key: f"{link}/"}
    r = run_fio(fio_job(engine, xd=xd, filename=tmp_path / "data", rw="write", bs="4k",
                        size="64k"), tmp_path, expect_ok=owner == 0)
    if owner == 0:
        assert (target / "s.json").is_file(), "root's own link to a directory was refused"
        return
    assert r.rc != 0 and os.listdir(target) == [], "wrote through another user's link"
    refused_once(r, str(link), "symbolic link of another user's")


@pytest.mark.parametrize("owner,key", [(NOBODY, "stats"), (NOBODY, "tmpfs_directory"),
                                       (0, "stats"), (0, "tmpfs_directory")])
def test_link_above_the_directory(engine, tmp_path, shm_dir, owner, key):
    """A link in a name above the directory xdevice writes into (stats in
    /tmp/x/sub, /tmp/x another user's link to a directory of root's) was
    followed: only the directory's own name was judged, so the link chose
    where root's files went. Every name on the way now gets
    fs.protected_symlinks' rule (here 0, so the kernel does not apply it):
    another user's link in a sticky directory is refused in one line
    naming it; root's link there (like /var/run -> /run) is followed."""
    sticky = shm_dir / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    target = shm_dir / "roots"
    (target / "sub").mkdir(parents=True)
    link = sticky / "x"
    plant(link, target)
    os.lchown(link, owner, owner)
    d = link / "sub"
    xd = {"stats": d / "s.json"} if key == "stats" else {"type": "tmpfs", key: d}
    r = run_fio(fio_job(engine, xd=xd, filename=tmp_path / "data", rw="write", bs="4k",
                        size="64k"), tmp_path, expect_ok=owner == 0)
    made = os.listdir(target / "sub")
    if owner == 0:
        assert made, "root's own link above the directory was refused"
        return
    assert r.rc != 0 and made == [], "wrote through another user's link"
    refused_once(r, str(link), "symbolic link of uid 65534")


# --- a directory another user controls ------------------------------------------


@pytest.fixture
def nobody_dir(tmp_path):
    d = tmp_path / "theirs"
    d.mkdir()
    os.chown(d, NOBODY, NOBODY)
    os.chmod(d, 0o777)
    return d


@pytest.fixture
def nobody_shm():
    d = Path(tempfile.mkdtemp(prefix="xd-e2e-theirs-", dir="/dev/shm"))
    os.chown(d, NOBODY, NOBODY)
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def shared_cases(engine, tmp_path, d, theirs_shm, own_shm):
    """Each place in d (or theirs_shm), with data and tmpfs copies of root's elsewhere."""
    data = tmp_path / "data"
    return {
        "stats": fio_job(engine, xd={"stats": d / "s.json"}, filename=data),
        "stats_log": fio_job(engine, xd={"stats_log": d / "s.jsonl", "stats_interval": 1},
                             filename=data),
        "trace": fio_job(engine, xd={"trace": d / "t.trace"}, filename=data),
        "tmpfs": fio_job(engine, xd={"type": "tmpfs", "tmpfs_directory": theirs_shm},
                         filename=data),
        "backup": fio_job(engine, xd={"type": "tmpfs", "backup_to_disk": 1,
                                      "tmpfs_directory": own_shm}, filename=d / "b.dat"),
        "hybrid-map": fio_job(engine, xd={"type": "hybrid", "hot_directory": own_shm},
                              filename=d / "h.dat", thread=1),
    }


CASES = ["stats", "stats_log", "trace", "tmpfs", "backup", "hybrid-map"]


@pytest.mark.parametrize("case", CASES)
def test_directory_of_another_user(engine, tmp_path, nobody_dir, nobody_shm, shm_dir, case):
    args = shared_cases(engine, tmp_path, nobody_dir, nobody_shm, shm_dir)[case]
    common = ["--rw=write", "--bs=4k", "--size=64k"]
    r = run_fio(args + common, tmp_path, expect_ok=False)
    where = nobody_shm if case == "tmpfs" else nobody_dir
    line = refused_once(r, str(where), "allow_shared_directories")
    assert "uid 65534" in line, line
    assert r.rc != 0, r.text
    # the job's own data files (b.dat laid out by fio, h.dat the hybrid
    # cold file) are trusted as named; xdevice adds nothing of its own
    made = [p.name for p in where.iterdir() if p.name not in ("b.dat", "h.dat")]
    assert not made, f"files made in {where}: {made}"
    # the same with the config's consent
    ok = run_fio(args + common + ["--xd_allow_shared_directories=1"], tmp_path,
                 expect_ok=False)
    assert ok.rc == 0 and not xdevice_lines(ok.text), ok.text


def test_world_writable_directory_without_sticky_bit(engine, tmp_path):
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)
    r = run_fio(fio_job(engine, xd={"stats": d / "s.json"}, filename=tmp_path / "data",
                        rw="write", bs="4k", size="64k"), tmp_path, expect_ok=False)
    refused_once(r, str(d), "writable by others without the sticky bit")
    assert not list(d.iterdir())


# --- xdtune and xdreport outputs ----------------------------------------------------


def xdtune_search(engine, tmp_path, out):
    job = tmp_path / "job.fio"
    job.write_text(f"[global]\nioengine=external:{engine}\nfilename={tmp_path}/data.dat\n"
                   "size=1m\nbs=4k\ntime_based\nruntime=1\n[work]\nrw=randread\n")
    start = tmp_path / "start.ini"
    start.write_text("[local]\nstorage_type = regular\n")
    space = tmp_path / "space.ini"
    space.write_text("async = sync|io_uring\n")
    args = ["search", "--job", job, "--config", start, "--out", out, "--space", space,
            "--budget", 1, "--finalists", 1, "--repeats", 1, "--quiet"]
    proc = subprocess.run([str(XDTUNE), *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=str(tmp_path))
    assert proc.returncode >= 0, proc.stderr
    return proc


@pytest.mark.parametrize("kind", KINDS)
def test_xdtune_trial_files(engine, tmp_path, kind):
    """Links planted at trials/ names are never followed: an --out whose
    trials/ holds anything is refused before any trial, in one line, and
    what is there is left as it was (xdtune deletes nothing it did not make
    in this run)."""
    v = Victims(tmp_path)
    out = tmp_path / "out"
    names = [f"trials/001.{ext}" for ext in ("err", "json", "fio", "ini", "stats.json")]
    for n in names:
        plant(out / n, v.target(kind))
    proc = xdtune_search(engine, tmp_path, out)
    v.assert_untouched("xdtune's trial files")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "trials/ holds 5 files of an earlier search" in lines[0], lines[0]
    for n in names:
        assert (out / n).is_symlink(), n
    assert not (out / "history.json").exists()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["history.json", "best.ini"])
def test_xdtune_results(engine, tmp_path, kind, name):
    """A link at a result in --out is refused before any trial, in one line."""
    v = Victims(tmp_path)
    out = tmp_path / "out"
    plant(out / name, v.target(kind))
    proc = xdtune_search(engine, tmp_path, out)
    v.assert_untouched(name)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert name in lines[0] and "symbolic link" in lines[0], lines[0]
    assert not (out / "trials" / "001.json").exists()


def test_xdtune_refuses_a_shared_out(engine, tmp_path):
    """--out /tmp: root's xdtune renamed its results over another user's
    history.json and best.ini there. A directory writable by others is
    refused before anything is made in it."""
    out = sticky_dir(tmp_path)
    theirs = theirs_in(out, "history.json")
    proc = xdtune_search(engine, tmp_path, out)
    assert proc.returncode != 0
    assert theirs.read_text() == "theirs\n" and theirs.stat().st_uid == NOBODY
    assert os.listdir(out) == ["history.json"], os.listdir(out)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "writable by others" in lines[0], proc.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_xdreport_outputs(engine, tmp_path, kind):
    v = Victims(tmp_path)
    r = run_fio(fio_job(engine, filename=tmp_path / "data", rw="read", bs="4k", size="64k"),
                tmp_path)
    res = tmp_path / "run.json"
    res.write_text(json.dumps(r.data))
    out = tmp_path / "report"
    names = ["report.html", "summary.md", "figures.csv", "charts.gp"]
    for n in names:
        plant(out / n, v.target(kind))
    proc = subprocess.run([str(XDREPORT), "report", "-o", str(out), str(res)], capture_output=True,
                          text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode >= 0, proc.stderr
    v.assert_untouched("xdreport's outputs")
    for n in names:
        still_link_or_regular(out / n, v.target(kind))
    assert (out / "report.html").is_file() and not (out / "report.html").is_symlink()


def test_xdreport_refuses_a_shared_output_directory(engine, tmp_path):
    """-o /tmp: xdreport removed whatever was at its output names (another
    user's report.html included) and gnuplot, root's, then wrote NAME.png
    by name, following a link planted in between. A directory writable by
    others is refused, and nothing in it is touched."""
    r = run_fio(fio_job(engine, filename=tmp_path / "data", rw="read", bs="4k", size="64k"),
                tmp_path)
    res = tmp_path / "run.json"
    res.write_text(json.dumps(r.data))
    out = sticky_dir(tmp_path)
    theirs = theirs_in(out, "report.html")
    proc = subprocess.run([str(XDREPORT), "report", "-o", str(out), str(res)], capture_output=True,
                          text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode != 0
    assert theirs.read_text() == "theirs\n" and theirs.stat().st_uid == NOBODY
    assert os.listdir(out) == ["report.html"], os.listdir(out)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "writable by others" in lines[0] and str(out) in lines[0], proc.stderr


def test_xdreport_compare_output_through_another_users_link(engine, tmp_path, place):
    """--junit DIR/j.xml, DIR another user's link to a directory of root's:
    the owner rule, applied to the target, let the link choose where root's
    file went."""
    r = run_fio(fio_job(engine, filename=tmp_path / "data", rw="read", bs="4k", size="64k"),
                tmp_path)
    res = tmp_path / "run.json"
    res.write_text(json.dumps(r.data))
    target = tmp_path / "roots"
    target.mkdir()
    link = place / "d"
    plant(link, target)
    os.lchown(link, NOBODY, NOBODY)
    proc = subprocess.run([str(XDREPORT), "compare", "--junit", str(link / "j.xml"), str(res),
                           str(res)], capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path))
    assert proc.returncode != 0 and os.listdir(target) == [], proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "symbolic link of another user's" in lines[0], proc.stderr


@pytest.mark.parametrize("owner", [NOBODY, 0])
def test_xdreport_compare_output_below_another_users_link(engine, tmp_path, owner):
    """--junit /tmp/x/sub/j.xml, /tmp/x another user's link to a directory
    of root's: xdreport judged only the last directory's name, so the link
    chose where root's file went. A link above gets fs.protected_symlinks'
    rule, as xdevice's own directories do; root's link is followed."""
    r = run_fio(fio_job(engine, filename=tmp_path / "data", rw="read", bs="4k", size="64k"),
                tmp_path)
    res = tmp_path / "run.json"
    res.write_text(json.dumps(r.data))
    target = tmp_path / "roots"
    (target / "sub").mkdir(parents=True)
    link = sticky_dir(tmp_path) / "x"
    plant(link, target)
    os.lchown(link, owner, owner)
    proc = subprocess.run([str(XDREPORT), "compare", "--junit", str(link / "sub" / "j.xml"),
                           str(res), str(res)], capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path))
    made = os.listdir(target / "sub")
    if owner == 0:
        assert made == ["j.xml"], proc.stderr
        return
    assert proc.returncode != 0 and made == [], proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(link) in lines[0] and "uid 65534" in lines[0], proc.stderr


# --- file_permissions and dir_permissions -------------------------------------------


def test_permissions_apply_to_every_file(engine, tmp_path, shm_dir):
    """Every file and directory xdevice makes gets the configured mode
    exactly, whatever the umask (fio runs with 022 here)."""
    d = tmp_path / "out"
    d.mkdir()
    perms = {"file_permissions": "0640", "dir_permissions": "0750"}
    run_fio(fio_job(engine, xd={"type": "tmpfs", "tmpfs_directory": shm_dir / "sub" / "dir",
                                "backup_to_disk": 1, "stats": d / "s.json",
                                "stats_log": d / "s.jsonl", "stats_interval": 1,
                                "trace": d / "t.trace", **perms},
                    filename=d / "new" / "f.dat", rw="write", bs="4k", size="64k", fsync=4,
                    create_on_open=1, numjobs=1), tmp_path)
    run_fio(fio_job(engine, xd={"type": "hybrid", "hot_directory": shm_dir, **perms},
                    filename=d / "h.dat", rw="randrw", bs="4k", size="256k", thread=1), tmp_path)
    files = [d / "s.json", d / "s.jsonl", d / "t.trace", d / "h.dat", d / "h.dat.xdmap",
             shm_dir / "sub" / "dir" / tmpfs_name(d / "new" / "f.dat")]
    dirs = [shm_dir / "sub", shm_dir / "sub" / "dir"]
    for f in files:
        assert f.stat().st_mode & 0o7777 == 0o640, f"{f}: {oct(f.stat().st_mode)}"
    for x in dirs:
        assert x.stat().st_mode & 0o7777 == 0o750, f"{x}: {oct(x.stat().st_mode)}"


# --- make bench's scratch directories -------------------------------------------------


@pytest.mark.xdist_group("repo-bench")  # results/latest, /dev/shm/xdevice-bench.*
def test_bench_removes_only_its_own(tmp_path):
    """Two benches at once, and a user's file in BENCH_DIR: each bench makes
    and removes its own scratch directories, and an interrupted bench never
    becomes results/latest. fio is a stand-in that fails (the first bench's
    after a pause, so the second ends while the first still uses its
    directories)."""
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "fio").write_text('#!/bin/sh\n[ -n "$SHIM_WAIT" ] && { : > "$SHIM_WAIT"; sleep 2; }\n'
                              "exit 1\n")
    os.chmod(shim / "fio", 0o755)
    parent = tmp_path / "benchdir"
    parent.mkdir()
    (parent / "mine.txt").write_text("mine\n")
    latest = REPO / "results" / "latest"
    before = os.readlink(latest) if latest.is_symlink() else None
    shm_before = set(Path("/dev/shm").glob("xdevice-bench.*"))
    env = dict(os.environ, PATH=f"{shim}:{os.environ['PATH']}", BENCH_DIR=str(parent))
    started = tmp_path / "a-started"
    bench = ["bash", str(REPO / "scripts" / "bench.sh")]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": str(tmp_path)}
    a = subprocess.Popen(bench, env=dict(env, SHIM_WAIT=str(started)), **quiet)
    procs = [a]
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert a.poll() is None, "the first bench ended before its first fio"
            assert time.monotonic() < deadline, "the first bench never reached fio"
            time.sleep(0.05)
        a_dirs = sorted(parent.glob("xdevice-bench.*"))
        assert len(a_dirs) == 1, a_dirs
        b = subprocess.Popen(bench, env=env, **quiet)
        procs.append(b)
        assert b.wait(timeout=60) != 0
        assert a.poll() is None, "the pause was too short for this check"
        assert sorted(parent.glob("xdevice-bench.*")) == a_dirs, \
            "the second bench touched the first one's directory"
        assert a.wait(timeout=60) != 0
        assert [p.name for p in parent.iterdir()] == ["mine.txt"]
        assert (parent / "mine.txt").read_text() == "mine\n"
        assert set(Path("/dev/shm").glob("xdevice-bench.*")) <= shm_before
        now = os.readlink(latest) if latest.is_symlink() else None
        assert now == before, "results/latest moved to an incomplete run"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            for run in (REPO / "results").glob(f"*-{p.pid}"):
                shutil.rmtree(run, ignore_errors=True)
