"""A real CNCF distribution registry on a free loopback port, started and stopped by the tests.

    with LocalRegistry(tmp_path, notify_url="http://127.0.0.1:8080/api/registry-events", token="t") as reg:
        reg.host   # "127.0.0.1:PORT"
        reg.url    # "http://127.0.0.1:PORT"

The registry is `/usr/bin/docker-registry` (Debian's `docker-registry`, distribution 2.8). Notifications, when
asked for, go to `notify_url` with `Authorization: Bearer <token>`; pulls and mounts are not sent, like the
deployed configuration in the README. `htpasswd` turns on basic auth (an htpasswd file with bcrypt hashes).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from testbed.process import ServiceProcess

REGISTRY_BINARY = "/usr/bin/docker-registry"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRegistry(ServiceProcess):
    """One distribution registry process bound to 127.0.0.1, with its storage under `root`."""

    def __init__(
        self,
        root: Path,
        *,
        notify_url: str | None = None,
        token: str | None = None,
        htpasswd: Path | None = None,
        token_auth: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.notify_url = notify_url
        self.token = token
        self.htpasswd = htpasswd
        self.token_auth = token_auth
        self._process: subprocess.Popen[bytes] | None = None
        self.config_path = self.root / "config.yml"
        self.log_path = self.root / "registry.log"

    def config(self) -> dict[str, object]:
        """The registry configuration (YAML is a superset of JSON, so it is written as JSON)."""
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "relativeurls": True, "secret": "local-test-secret"},
        }
        if self.notify_url:
            endpoint: dict[str, object] = {
                "name": "guard",
                "url": self.notify_url,
                "timeout": "2s",
                "threshold": 3,
                "backoff": "1s",
                "ignore": {"actions": ["pull", "mount"]},
            }
            if self.token:
                endpoint["headers"] = {"Authorization": [f"Bearer {self.token}"]}
            config["notifications"] = {"events": {"includereferences": True}, "endpoints": [endpoint]}
        if self.htpasswd:
            config["auth"] = {"htpasswd": {"realm": "local", "path": str(self.htpasswd)}}
        elif self.token_auth:
            config["auth"] = {"token": self.token_auth}
        return config

    def start(self) -> "LocalRegistry":
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"registry exited early: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=1):
                    return self
            except urllib.error.HTTPError:
                return self  # 401 with auth on: it is up
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"registry on {self.host} did not start within 10 s")
