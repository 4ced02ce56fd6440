"""From a checkout to a production program: make install, pkg-config, make deb.

Everything happens in scratch trees: `make install DESTDIR=<tmp> PREFIX=/usr`
and `dpkg --root=<tmp>`, never the real system. The examples are built from
the installed tree with `pkg-config --cflags --libs xdevice` only, as a user
would, and run with LD_LIBRARY_PATH into it.
"""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import FIO, REPO, records, wait_for

# make in the repository tree: in one xdist worker (see the Makefile's test)
pytestmark = pytest.mark.xdist_group("repo-tree")

MiB = 1024 * 1024
MAN_PAGES = ["man1/xdconfig.1", "man1/xdreport.1", "man1/xdtune.1", "man1/xdcheckpoint.1", "man3/libxdevice.3",
             "man7/xdevice.7"]


def sh(*args, check=True, **kw):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=120, **kw)
    if check:
        assert r.returncode == 0, f"{' '.join(map(str, args))} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def make(*targets, **kw):
    # -s: quiet; the caller's MAKEFLAGS (make test -j) would only add noise
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return sh("make", "-s", "-C", str(REPO), *targets, env=env, **kw)


def xd_version():
    h = (REPO / "backends" / "xdevice.h").read_text()
    return re.search(r'#define XD_VERSION "([^"]+)"', h).group(1)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A tree holding `make install DESTDIR=<it> PREFIX=/usr`."""
    d = tmp_path_factory.mktemp("destdir")
    make("install", f"DESTDIR={d}", "PREFIX=/usr")
    return d


def pkg_env(root):
    env = dict(os.environ)
    env.update(PKG_CONFIG_SYSROOT_DIR=str(root), PKG_CONFIG_PATH=str(root / "usr/lib/pkgconfig"),
               LD_LIBRARY_PATH=str(root / "usr/lib"))
    return env


def test_installed_layout(root):
    v = xd_version()
    lib = root / "usr/lib"
    real = lib / f"libxdevice.so.{v}"
    assert real.is_file() and not real.is_symlink()
    assert os.readlink(lib / "libxdevice.so.0") == real.name
    assert (lib / "libxdevice.so").resolve() == real.resolve()
    soname = sh("readelf", "-d", str(real)).stdout
    assert "Library soname: [libxdevice.so.0]" in soname
    assert (lib / "libxdevice.a").is_file() and (root / "usr/include/xdevice.h").is_file()
    engine = lib / "fio/xdevice.so"
    assert stat.S_IMODE(engine.stat().st_mode) == 0o644, "the engine is loaded, never executed"
    for tool in ["xdconfig", "xdreport", "xdtune", "xdmicro", "xdcachesim", "xdcheckpoint"]:
        assert os.access(root / "usr/bin" / tool, os.X_OK), tool
    for page in MAN_PAGES:
        assert (root / "usr/share/man" / page).is_file(), page
    share = root / "usr/share/xdevice"
    assert (share / "xdevice-defaults.ini").is_file() and (share / "examples/xdexample.c").is_file()
    # the installed jobs name the installed engine, not build/
    job = (share / "jobs/regular.fio").read_text()
    assert "ioengine=external:/usr/lib/fio/xdevice.so" in job and "build/xdevice.so" not in job
    # and the INI files they name, installed beside them
    job = (share / "jobs/recovery.fio").read_text()
    assert "xd_config=/usr/share/xdevice/recovery.ini" in job and (share / "recovery.ini").is_file()
    pc = (lib / "pkgconfig/xdevice.pc").read_text()
    fields = dict(line.split(": ", 1) for line in pc.splitlines() if ": " in line)
    assert fields["Version"] == v
    for pkg in ["liburing", "liblz4", "libzstd", "libbrotlienc", "zlib"]:
        has_pc = sh("pkg-config", "--exists", pkg, check=False).returncode == 0
        assert (pkg in fields["Requires.private"].split()) == has_pc, (pkg, pc)
    assert "-laio" in fields["Libs.private"].split()


def test_public_header_is_strict_c11(root, tmp_path):
    src = tmp_path / "h.c"
    src.write_text("#include <xdevice.h>\nint main(void) { return XD_ERRLEN > 0 ? 0 : 1; }\n")
    r = sh("gcc", "-std=c11", "-pedantic", "-Werror", "-Wall", "-Wextra", f"-I{root}/usr/include",
           "-c", "-o", str(tmp_path / "h.o"), str(src), check=False)
    assert r.returncode == 0, r.stderr


def build_example(root, name, out_dir):
    env = pkg_env(root)
    flags = sh("pkg-config", "--cflags", "--libs", "xdevice", env=env).stdout.split()
    assert f"-I{root}/usr/include" in flags and f"-L{root}/usr/lib" in flags, flags
    exe = out_dir / name
    sh("gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
       str(root / "usr/share/xdevice/examples" / f"{name}.c"), *flags, env=env)
    needed = sh("readelf", "-d", str(exe)).stdout
    assert "Shared library: [libxdevice.so.0]" in needed
    return exe


def test_example_program_from_installed_tree(root, tmp_path):
    exe = build_example(root, "xdexample", tmp_path)
    ini = root / "usr/share/xdevice/example.ini"
    r = sh(str(exe), str(ini), str(tmp_path / "data.ctr"), "8", env=pkg_env(root), check=False)
    assert r.returncode == 0, r.stderr
    assert "all equal" in r.stderr
    # the stats were taken with the file still open: the compressed layer's
    # figures are live, not zero until the last close
    comp = json.loads(r.stdout)["layers"]["compress"]
    assert comp["logical_bytes"] == 8 * MiB and comp["live_logical_bytes"] == 8 * MiB, comp
    assert 0 < comp["stored_bytes"] < 8 * MiB and comp["ratio"] > 1.5, comp


def test_example_names_its_file_in_one_line(root, tmp_path):
    """A newline in FILE is written \\x0a: the closing line stays one line,
    never a second starting with what the name held."""
    exe = build_example(root, "xdexample", tmp_path)
    data = tmp_path / "data\nforged.ctr"
    r = sh(str(exe), str(root / "usr/share/xdevice/example.ini"), str(data), "1", env=pkg_env(root),
           check=False)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        f"xdexample: wrote and read back 1 MiB of {tmp_path}/data\\x0aforged.ctr (compressed), all equal"], r.stderr


def test_reload_example_applies_live_keys_and_refuses_others(root, tmp_path):
    exe = build_example(root, "xdreload", tmp_path)
    share = root / "usr/share/xdevice"
    env = pkg_env(root)
    r = sh(str(exe), str(share / "example.ini"), str(share / "example-reload.ini"),
           str(tmp_path / "a.ctr"), env=env, check=False)
    assert r.returncode == 0, r.stderr
    assert "compression_level: 1 -> 3" in r.stdout and "cache_size: 16777216 -> 33554432" in r.stdout
    assert "2 keys changed live" in r.stderr
    other = tmp_path / "other.ini"
    other.write_text("[local]\nstorage_type = regular\n")
    r = sh(str(exe), str(share / "example.ini"), str(other), str(tmp_path / "b.ctr"), env=env, check=False)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "storage_type" in lines[0], r.stderr


def test_follow_example_reloads_its_ini_while_running(root, tmp_path):
    """xdfollow (xd_monitor): a rewrite of its INI while it runs changes the
    live key on the open device, its command-line override still wins, and
    one record per second goes to FILE.jsonl. Run until signalled (SECONDS
    0), so that a loaded machine cannot end it before the reload; SIGTERM
    ends it cleanly: exit 0, the last record written."""
    exe = build_example(root, "xdfollow", tmp_path)
    ini, data = tmp_path / "app.ini", tmp_path / "data"
    log = Path(f"{data}.jsonl")
    ini.write_text("[local]\nread_ahead_kb = 128\n[monitoring]\nmetrics_interval_sec = 1\n")
    proc = subprocess.Popen([str(exe), str(ini), str(data), "0", "slow_operation_threshold_ms=50"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=pkg_env(root))
    try:
        # the monitor makes the log when it opens: then it watches
        wait_for(proc, log.exists, 60, "xdfollow's log")
        new = tmp_path / "app.ini.new"
        new.write_text("[local]\nread_ahead_kb = 4096\n[monitoring]\nmetrics_interval_sec = 1\n"
                       "slow_operation_threshold_ms = 9\n")
        os.replace(new, ini)
        wait_for(proc, lambda: any(r["config"]["read_ahead_kb"] == 4096 for r in records(log)),
                 60, "a record after the reload")
        n_before = len(records(log))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "xdfollow: config=" in err and "reloaded: read_ahead_kb 128 -> 4096" in err, err
    assert "slow_operation_threshold_ms" not in err, err
    recs = records(log)
    assert len(recs) > n_before, "no last record at SIGTERM"
    assert len(recs) >= 2 and [r["seq"] for r in recs] == list(range(len(recs))), recs
    assert recs[-1]["config"]["read_ahead_kb"] == 4096
    assert recs[-1]["config"]["slow_operation_threshold_ms"] == 50


@pytest.mark.parametrize("seconds", ["abc", "-1", "3s"])
def test_follow_example_refuses_bad_seconds(root, tmp_path, seconds):
    """SECONDS that is no number of seconds is one line and exit 2, never
    a run until signalled (0's meaning), which a typo would otherwise get."""
    exe = build_example(root, "xdfollow", tmp_path)
    ini = tmp_path / "app.ini"
    ini.write_text("[local]\nread_ahead_kb = 128\n")
    r = subprocess.run([str(exe), str(ini), str(tmp_path / "data"), seconds], capture_output=True,
                       text=True, env=pkg_env(root), timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and f"SECONDS={seconds}" in lines[0], r.stderr
    assert not (tmp_path / "data").exists()


def test_follow_example_shows_bad_arguments_in_one_line(root, tmp_path):
    """A newline in SECONDS or in a KEY=VALUE argument is written \\x0a:
    the refusal is one line, never a second starting with what it held."""
    exe = build_example(root, "xdfollow", tmp_path)
    ini = tmp_path / "app.ini"
    ini.write_text("[local]\nread_ahead_kb = 128\n")
    for args, want in [(["3\nforged"], "xdfollow: SECONDS=3\\x0aforged: not a number of seconds"),
                       (["0", "nokey\nforged"], "xdfollow: nokey\\x0aforged: not KEY=VALUE")]:
        r = subprocess.run([str(exe), str(ini), str(tmp_path / "data"), *args], capture_output=True,
                           text=True, env=pkg_env(root), timeout=60)
        lines = r.stderr.splitlines()
        assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith(want), r.stderr


def test_installed_examples_makefile(root, tmp_path):
    """What the README tells a user to run: the examples' own Makefile, which
    asks pkg-config for every flag."""
    env = {k: v for k, v in pkg_env(root).items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    sh("make", "-s", "-C", str(root / "usr/share/xdevice/examples"), f"O={tmp_path}", env=env)
    r = sh(str(tmp_path / "xdexample"), str(root / "usr/share/xdevice/example.ini"),
           str(tmp_path / "x.ctr"), "1", env=env, check=False)
    assert r.returncode == 0 and "all equal" in r.stderr, r.stderr


def test_man_pages_render_cleanly(root):
    env = dict(os.environ, MANWIDTH="80")
    for page in MAN_PAGES:
        path = root / "usr/share/man" / page
        r = sh("groff", "-ww", "-z", "-man", str(path), check=False)
        assert r.returncode == 0 and r.stderr == "", f"{page}: {r.stderr}"
        r = sh("man", "-l", str(path), env=env, check=False)
        assert r.returncode == 0 and r.stderr == "", f"{page}: {r.stderr}"
        assert "NAME" in r.stdout and "SEE ALSO" in r.stdout, page


def test_xdevice7_covers_every_key_and_engine_option(root):
    """xdevice(7) is generated from the schema: every INI key and every option
    the engine registers with fio appears in it."""
    text = sh("man", "-l", str(root / "usr/share/man/man7/xdevice.7"),
              env=dict(os.environ, MANWIDTH="200")).stdout
    defaults = (root / "usr/share/xdevice/xdevice-defaults.ini").read_text()
    keys = re.findall(r"^([a-z_0-9]+) =", defaults, re.M)
    assert len(keys) > 50
    missing = [k for k in keys if not re.search(rf"^\s+{k} \(fio option xd_{k}\)", text, re.M)]
    assert not missing, missing
    enghelp = sh(FIO, f"--enghelp={root}/usr/lib/fio/xdevice.so").stdout
    options = re.findall(r"^(xd_[a-z_0-9]+)\s+:", enghelp, re.M)
    assert "xd_stats_log" in options
    missing = [o for o in options if o not in text]
    assert not missing, missing


def test_systemd_unit_is_hardened(root, tmp_path):
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.skip("systemd-analyze not found (the systemd package): the unit is not verified")
    text = (root / "usr/lib/systemd/system/xdtune-daemon@.service").read_text()
    assert "ExecStart=/usr/bin/xdtune daemon --config /etc/xdevice/%i.ini" in text
    assert "WantedBy=" in text  # enable-able, and make install enables nothing
    # verify needs ExecStart to exist: point it into the scratch tree
    unit = tmp_path / "xdtune-daemon@.service"
    unit.write_text(text.replace("/usr/bin/xdtune", f"{root}/usr/bin/xdtune"))
    r = sh(tool, "verify", "--man=no", str(unit), check=False)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    # exposure 0 (locked down) .. 10 (unprotected): keep it "OK" (below 2)
    r = sh(tool, "security", "--offline=yes", "--threshold=20", str(unit), check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr


def test_install_then_uninstall_leaves_nothing(tmp_path):
    make("install", f"DESTDIR={tmp_path}", "PREFIX=/usr")
    manifest = (tmp_path / "usr/share/xdevice/install-manifest").read_text().splitlines()
    assert "/usr/lib/fio/xdevice.so" in manifest and "dir /usr" in manifest
    make("uninstall", f"DESTDIR={tmp_path}", "PREFIX=/usr")
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == [], left


def test_uninstall_removes_nothing_outside_destdir(tmp_path):
    """A manifest line climbing out of DESTDIR ("/../../x": anyone who may
    write DESTDIR may write the manifest) had uninstall remove x; and a
    link at the manifest's name had install write through it."""
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    victim = outside / "victim"
    victim.write_text("mine\n")
    planted = dest / "usr/share/xdevice/install-manifest"
    planted.parent.mkdir(parents=True)
    planted.symlink_to(outside / "through-link")
    make("install", f"DESTDIR={dest}", "PREFIX=/usr")
    assert not (outside / "through-link").exists(), "install wrote its manifest through a link"
    with planted.open("a") as m:
        m.write("/" + "../" * 12 + str(victim).lstrip("/") + "\n")
    make("uninstall", f"DESTDIR={dest}", "PREFIX=/usr")
    assert victim.read_text() == "mine\n"


def test_deb_installs_into_scratch_root_and_runs_fio(tmp_path):
    deb = Path(make("deb").stdout.strip().splitlines()[-1])
    assert deb.is_file() and deb.name == f"xdevice_{xd_version()}_{deb.name.rsplit('_', 1)[1]}"
    fio_version = sh("dpkg-query", "-W", "-f=${Version}", "fio").stdout
    depends = sh("dpkg-deb", "-f", str(deb), "Depends").stdout
    assert f"fio (= {fio_version})" in depends and "libaio1" in depends and "liburing" in depends, depends
    assert "-dev" not in depends and "gcc" not in depends, depends
    triplet = sh("dpkg-architecture", "-qDEB_HOST_MULTIARCH").stdout.strip()

    # dpkg with its own database in the scratch root; its dependencies are
    # the real system's, which --root cannot see
    sysroot = tmp_path / "root"
    for d in ["updates", "info", "triggers"]:
        (sysroot / "var/lib/dpkg" / d).mkdir(parents=True)
    (sysroot / "var/lib/dpkg/status").touch()
    dpkg = ["dpkg", f"--root={sysroot}", "--force-script-chrootless"]
    sh(*dpkg, "--force-depends", "-i", str(deb))
    engine = sysroot / "usr/lib" / triplet / "fio/xdevice.so"
    assert engine.is_file()

    work = tmp_path / "work"
    work.mkdir()
    stats = work / "stats.json"
    r = sh(FIO, "--name=deb", f"--ioengine=external:{engine}", "--xd_type=compressed",
           f"--xd_stats={stats}", f"--filename={work / 'data'}", "--size=4m", "--bs=64k",
           "--rw=write", "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0",
           "--output-format=json", cwd=work, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    doc = json.loads(stats.read_text())
    assert doc["jobs"] and doc["xdevice"]["version"] == xd_version()

    sh(*dpkg, "--purge", "xdevice")
    left = sorted(str(p.relative_to(sysroot)) for p in sysroot.rglob("*")
                  if not str(p.relative_to(sysroot)).startswith("var"))
    assert left == [], left
