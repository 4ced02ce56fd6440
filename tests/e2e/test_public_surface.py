"""The public surface: xdevice.h is strict C11, and libxdevice.so exports
exactly the functions xdevice.h declares (each marked XD_API), nothing more.

Compile-only and nm checks on what `make` built; no fio runs.
"""
import shutil
import subprocess

import pytest

from conftest import REPO

HEADER = REPO / "backends" / "xdevice.h"
SO = REPO / "build" / "libxdevice.so"
CHECK = REPO / "scripts" / "check-exports.sh"


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, **kw)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_header_compiles_as_strict_c11(cc, tmp_path):
    if not shutil.which(cc):
        pytest.skip(f"{cc} not found")
    src = tmp_path / "h.c"
    src.write_text("#include <xdevice.h>\nint main(void) { return XD_ERRLEN > 0 ? 0 : 1; }\n")
    r = run(cc, "-std=c11", "-pedantic", "-Werror", "-Wall", "-Wextra", f"-I{HEADER.parent}",
            "-fsyntax-only", src)
    assert r.returncode == 0, r.stderr


def test_shared_library_exports_exactly_the_header():
    assert SO.exists(), f"`make` builds {SO}"
    r = run("bash", CHECK, SO, HEADER)
    assert r.returncode == 0, r.stderr


def test_export_check_catches_leaks_and_missing_xd_api(tmp_path):
    """The check itself: an unmarked declaration, an exported internal
    function and a declared function that is never defined all fail it."""
    (tmp_path / "t.h").write_text(
        '#define XD_API __attribute__((visibility("default")))\n'
        "XD_API int t_public(int x);\n"
        "XD_API void (*t_returns_fn(int x))(void);\n"
        "int t_unmarked(void);\n"
        "XD_API int t_undefined(void);\n")
    (tmp_path / "t.c").write_text(
        '#include "t.h"\n'
        "static void nothing(void) {}\n"
        "int t_public(int x) { return x; }\n"
        "void (*t_returns_fn(int x))(void) { return x ? nothing : 0; }\n"
        "int t_unmarked(void) { return 1; }\n"
        "XD_API int t_internal(void);\n"
        "int t_internal(void) { return 2; }\n")
    so = tmp_path / "t.so"
    r = run("gcc", "-shared", "-fPIC", "-fvisibility=hidden", "-o", so, tmp_path / "t.c")
    assert r.returncode == 0, r.stderr
    r = run("bash", CHECK, so, tmp_path / "t.h")
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 3, r.stderr
    assert "does not declare" in lines[0] and lines[0].endswith(": t_internal"), lines[0]
    assert "put XD_API in front" in lines[1] and lines[1].endswith(": t_unmarked"), lines[1]
    assert "does not define" in lines[2] and lines[2].endswith(": t_undefined"), lines[2]
