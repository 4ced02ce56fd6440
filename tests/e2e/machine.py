"""What this machine lets the tests use, asked once, shared by the e2e suite
(conftest.py), the sanitizer runs and the torture test."""
import ctypes
import os


def io_uring_refused() -> str:
    """Why this machine refuses io_uring ("" when it does not): the
    kernel.io_uring_disabled sysctl, a seccomp filter (a container's default
    profile), a kernel without it. xdevice then refuses async=io_uring in one
    line, as it should, and the tests skip their io_uring cases saying why
    (tests/unit/check.h does the same for the unit tests)."""
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed
    fd = libc.syscall(425, 1, params)  # io_uring_setup, on x86-64 and arm64 alike
    if fd >= 0:
        os.close(fd)
        return ""
    err = ctypes.get_errno()
    if err in (1, 13):  # EPERM, EACCES
        return "io_uring is refused here (kernel.io_uring_disabled, or a seccomp filter)"
    return "this kernel has no io_uring" if err == 38 else ""  # ENOSYS


IO_URING_REFUSED = io_uring_refused()
