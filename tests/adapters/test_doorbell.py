"""The local doorbell on real Unix sockets: a ring wakes a listener in another process, a silent bell times out,
a killed listener's socket is cleared by the next ring, a full buffer never blocks the intake, and a directory that is
not this user's and private is refused (workers then poll)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from importer.adapters.queue.doorbell import UnixDoorbell, doorbell_for_queue

LISTENER = """
import sys
from pathlib import Path
from importer.adapters.queue.doorbell import UnixDoorbell
bell = UnixDoorbell(Path(sys.argv[1]))
bell.wait(0)                      # binds its socket
print("listening", flush=True)
print(bell.wait(30), flush=True)  # rings received, 0 if none within 30 s
bell.close()
"""
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory whose path leaves room for socket names next to a queue file (pytest's tmp_path may not)."""
    path = Path(tempfile.mkdtemp(prefix="pg-bell-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bell(short_dir: Path) -> Iterator[UnixDoorbell]:
    found = doorbell_for_queue(short_dir / "ledger.queue.db")
    assert found is not None and found.directory == Path(f"{short_dir / 'ledger.queue.db'}.wake")
    yield found
    found.close()


def test_a_ring_wakes_a_listener_in_another_process(bell: UnixDoorbell) -> None:
    listener = subprocess.Popen([sys.executable, "-c", LISTENER, str(bell.directory)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "listening"
        bell.ring()
        assert int(listener.stdout.readline()) >= 1  # 0 would mean it only woke at its 30 s timeout
        assert listener.wait(timeout=10) == 0
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert not list(bell.directory.glob("*.sock")), "a closed listener leaves its socket behind"


def test_an_unrung_bell_times_out_with_no_rings(bell: UnixDoorbell) -> None:
    assert bell.wait(0.05) == 0


@pytest.mark.parametrize("rings", [1, 3], ids=["one", "three"])
def test_every_ring_is_counted_once(bell: UnixDoorbell, rings: int) -> None:
    """(Up to what the socket holds, net.unix.max_dgram_qlen, 10 by default: more rings than workers change nothing.)"""
    listener = UnixDoorbell(bell.directory)
    try:
        listener.wait(0)
        for _ in range(rings):
            bell.ring()
        assert listener.wait(1) == rings
        assert listener.wait(0) == 0
    finally:
        listener.close()


def test_a_killed_listeners_socket_is_removed_by_the_next_ring(bell: UnixDoorbell) -> None:
    stale = bell.directory / "4242-deadbeef.sock"
    orphan = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    orphan.bind(str(stale))
    orphan.close()  # as after SIGKILL: the file stays, nobody reads it
    bell.ring()
    assert not stale.exists()


def test_a_listener_whose_buffer_is_full_never_blocks_a_ring(bell: UnixDoorbell) -> None:
    listener = UnixDoorbell(bell.directory)
    listener.wait(0)
    rang = threading.Event()

    def ring_many() -> None:
        for _ in range(5_000):  # far past a datagram socket's receive buffer
            bell.ring()
        rang.set()

    try:
        threading.Thread(target=ring_many, daemon=True).start()
        assert rang.wait(30), "ring blocked on a full listener"
        assert listener.wait(1) >= 1
    finally:
        listener.close()


def test_a_queue_path_too_long_for_a_socket_gets_a_private_directory_elsewhere(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    found = doorbell_for_queue(deep / "ledger.queue.db")
    assert found is not None and not str(found.directory).startswith(str(deep))
    try:
        found.wait(0)  # binding works: the address fits
        assert oct(found.directory.stat().st_mode & 0o777) == oct(0o700)
    finally:
        found.close()
        shutil.rmtree(found.directory, ignore_errors=True)


@pytest.mark.parametrize("spoil", ["group-writable", "symlink"])
def test_a_directory_others_could_use_is_refused(short_dir: Path, spoil: str) -> None:
    tmp_path = short_dir
    queue_path = tmp_path / "ledger.queue.db"
    wake = Path(f"{queue_path}.wake")
    if spoil == "group-writable":
        wake.mkdir()
        os.chmod(wake, 0o770)
    else:
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        wake.symlink_to(tmp_path / "elsewhere")
    assert doorbell_for_queue(queue_path) is None
