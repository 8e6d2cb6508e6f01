"""The local doorbell: Unix datagram sockets in one private directory per SQLite queue.

    bell = doorbell_for_queue(Path("ledger.queue.db"))   # None where Unix sockets are not available
    bell.ring()            # the intake, after a put: one byte to every listener's socket
    rings = bell.wait(0.5) # a worker process: wake on a ring (its own socket is bound on first wait)

Each listening process binds `<directory>/<pid>-<random>.sock`; `ring` sends to every socket there, and removes the
ones nobody listens on any more (a killed worker's). Work is linear in the number of worker processes. The directory
sits next to the queue file, or, where that path is too long for a socket address, under the temporary directory
named by a hash of the queue's path; it must be this user's and private, else there is no doorbell (workers poll).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import select
import socket
import stat
import tempfile
from pathlib import Path

log = logging.getLogger("platform_guard.queue")

_SOCKET_PATH_LIMIT = 100  # sun_path holds 108 bytes on Linux, 104 on macOS; keep room for the file name
_SOCKET_SUFFIX = ".sock"
_MAX_RINGS_DRAINED = 1024


class UnixDoorbell:
    """Rings and listens through the sockets in `directory` (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)
        self._listener: socket.socket | None = None
        self._listener_path: Path | None = None

    def ring(self) -> None:
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return
        for entry in entries:
            if not entry.name.endswith(_SOCKET_SUFFIX) or entry.path == str(self._listener_path):
                continue
            try:
                self._sender.sendto(b"\x01", entry.path)
            except BlockingIOError:
                pass  # its buffer is full of rings already: it will wake
            except (ConnectionRefusedError, FileNotFoundError):
                _unlink_quietly(Path(entry.path))  # nobody listens there any more (a worker that was killed)
            except OSError as error:
                log.debug("doorbell: could not ring %s: %s", entry.path, error)

    def wait(self, timeout: float) -> int:
        listener = self._listening()
        readable, _, _ = select.select([listener], [], [], max(0.0, timeout))
        if not readable:
            return 0
        rings = 0
        while rings < _MAX_RINGS_DRAINED:
            try:
                listener.recv(16)
            except BlockingIOError:
                break
            rings += 1
        return rings

    def close(self) -> None:
        self._sender.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._listener_path is not None:
            _unlink_quietly(self._listener_path)
            self._listener_path = None

    def _listening(self) -> socket.socket:
        if self._listener is None:
            path = self.directory / f"{os.getpid()}-{secrets.token_hex(4)}{_SOCKET_SUFFIX}"
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            listener.bind(str(path))
            listener.setblocking(False)
            self._listener, self._listener_path = listener, path
        return self._listener


def doorbell_for_queue(queue_path: Path) -> UnixDoorbell | None:
    """The doorbell of the SQLite queue at `queue_path`, or None (no Unix sockets, or no private directory for them)."""
    if not hasattr(socket, "AF_UNIX"):
        return None
    directory = Path(f"{queue_path.resolve()}.wake")
    made = [directory]
    if len(str(directory)) + 32 > _SOCKET_PATH_LIMIT:
        digest = hashlib.sha256(str(queue_path.resolve()).encode()).hexdigest()[:16]
        directory = Path(tempfile.gettempdir()) / f"platform-guard-{os.getuid()}" / digest
        made = [directory.parent, directory]
    if not all(_private_directory(path) for path in made):
        log.warning("no doorbell for %s (%s is not a private directory of this user): workers poll instead",
                    queue_path, directory)
        return None
    return UnixDoorbell(directory)


def _private_directory(path: Path) -> bool:
    """Create `path` for this user only, if missing; whether it is a directory of this user's that nobody else may
    write to or read (a symlink or someone else's directory is refused: rings would go where they say)."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        status = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(status.st_mode) and status.st_uid == os.getuid() and not status.st_mode & 0o077


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
