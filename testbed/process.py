"""The one way the testbed runs a local service process: start it, use it as a context manager, stop it.

    class LocalThing(ServiceProcess):
        def start(self) -> "LocalThing":
            self._process = subprocess.Popen([...], start_new_session=True)
            ...wait until it answers...
            return self

    with LocalThing(...) as thing: ...          # stopped on exit, even when the body raises
"""

from __future__ import annotations

import subprocess
from types import TracebackType
from typing import Self


class ServiceProcess:
    """Base for a service the testbed starts; subclasses set `_process` in `start()`."""

    _process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        raise NotImplementedError

    @property
    def pid(self) -> int:
        """The running process's id (benchmarks read its CPU time from /proc)."""
        if self._process is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._process.pid

    def stop(self) -> None:
        """Stop the process this object started: terminate, then kill after 5 s."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
