"""Two fio servers on loopback, for the many-hosts tests (xdtune search
--hosts, make bench HOSTS=, xdreport by host). Server n is `fio
--server=ip4:127.0.0.N,PORT` (N = n + 1: two loopback addresses, so that fio's
own "hostname" of each client tells them apart) on a free port, started here
and always stopped by the fixture's teardown; when one cannot start the
tests skip, saying why."""
import os
import socket
import subprocess
import time

import pytest

FIO = "/usr/bin/fio"
START_DEADLINE = 20  # seconds for a server to accept connections (a busy machine)


def _free_port(addr):
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def _accepting(addr, port):
    try:
        with socket.create_connection((addr, port), timeout=0.5):
            return True
    except OSError:
        return False


def _start(workdir, addr, n):
    """(Popen, port) of a fio server that accepts connections, or (None, why)."""
    why = "no attempt"
    for _ in range(3):  # a port taken between the probe and fio's bind: another one
        try:
            port = _free_port(addr)
        except OSError as e:
            return None, f"{addr}: {e}"
        log = open(workdir / f"server{n}-{port}.log", "w")
        proc = subprocess.Popen([FIO, f"--server=ip4:{addr},{port}"], stdout=log,
                                stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline and proc.poll() is None:
            if _accepting(addr, port):
                return proc, port
            time.sleep(0.05)
        why = (workdir / f"server{n}-{port}.log").read_text()[-300:] or "it did not listen"
        _stop(proc)
    return None, why


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def fio_servers(tmp_path_factory):
    """Two running fio servers: a list of their names in fio's --client syntax."""
    if not os.access(FIO, os.X_OK):
        pytest.skip(f"fio servers cannot start: {FIO} is missing")
    workdir = tmp_path_factory.mktemp("fio-servers")
    procs, names = [], []
    try:
        for n in range(2):
            addr = f"127.0.0.{n + 1}"
            proc, port = _start(workdir, addr, n)
            if proc is None:
                pytest.skip(f"fio servers cannot start on loopback: {port}")
            procs.append(proc)
            # the two spellings fio's --client takes for an IPv4 server
            names.append(f"ip4:{addr},{port}" if n == 0 else f"{addr},{port}")
        yield names
    finally:
        for proc in procs:
            _stop(proc)
