"""A real CNCF distribution registry on a free loopback port, started and stopped by the tests.

    with LocalRegistry(tmp_path, notify_url="http://127.0.0.1:8080/api/registry-events", token="t") as reg:
        reg.host   # "127.0.0.1:PORT"
        reg.url    # "http://127.0.0.1:PORT"

    with LocalRegistry(tmp_path, flavour="v3") as reg: ...     # distribution v3 instead of 2.8

Two flavours, the same configuration:

- "2.8" (the default): `/usr/bin/docker-registry`, Debian's `docker-registry`, distribution 2.8.
- "v3": distribution v3.1.2 built by `scripts/setup` (`testbed/tools.py` finds it; tests get it through the
  `any_registry` fixture, which runs them on each flavour and skips v3 where it is not built). Its configuration is
  2.8's: every key used here means the same in v3. v3 also validates that an index's children exist
  (`validation.manifests.indexes.platforms` defaults to `all`, as 2.8 always does). Neither flavour serves the OCI
  referrers API (`GET /v2/<name>/referrers/<digest>` answers 404 on both; tests/testbed/test_registry_flavours.py
  shows it), so clients fall back to the referrers tag schema (`sha256-<hex>` tags). v3 exports OpenTelemetry traces
  unless told not to: the process gets `OTEL_TRACES_EXPORTER=none`, so it never dials a collector.

Notifications, when asked for, go to `notify_url` with `Authorization: Bearer <token>`; pulls and mounts are not
sent, like the deployed configuration in the README. `htpasswd` turns on basic auth (an htpasswd file with bcrypt
hashes).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Literal

from testbed.process import ServiceProcess
from testbed.tools import missing_tool_message, tool_path

REGISTRY_BINARY = "/usr/bin/docker-registry"
V3_TOOL = "registry"  # the name of distribution v3 in scripts/tools.lock

RegistryFlavour = Literal["2.8", "v3"]
FLAVOURS: tuple[RegistryFlavour, ...] = ("2.8", "v3")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(service: LocalRegistry | ReferrersApiRegistry, name: str, *, seconds: float = 10) -> None:
    """Wait until the registry process just started answers `GET /v2/` (any HTTP status: a 401 with auth on is up);
    RuntimeError, with the end of its log, when it exits first or does not answer within `seconds` (then stopped)."""
    process = service._process
    assert process is not None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early: {service.log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{service.url}/v2/", timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.02)
    service.stop()
    raise RuntimeError(f"{name} on {service.host} did not start within {seconds:.0f} s")


class LocalRegistry(ServiceProcess):
    """One distribution registry process (2.8 or v3: `flavour`) bound to 127.0.0.1, with its storage under `root`."""

    def __init__(
        self,
        root: Path,
        *,
        notify_url: str | None = None,
        token: str | None = None,
        htpasswd: Path | None = None,
        token_auth: dict[str, str] | None = None,
        port: int | None = None,
        flavour: RegistryFlavour = "2.8",
    ) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour={flavour!r}: expected one of {', '.join(FLAVOURS)}")
        self.flavour = flavour
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

    def binary(self) -> str:
        """The registry executable of this flavour; RuntimeError when v3 is not built (see testbed/tools.py)."""
        if self.flavour == "2.8":
            return REGISTRY_BINARY
        built = tool_path(V3_TOOL)
        if built is None:
            raise RuntimeError(f"distribution v3: {missing_tool_message(V3_TOOL)}")
        return str(built)

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
        binary = self.binary()
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [binary, "serve", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "OTEL_TRACES_EXPORTER": "none"},
        )
        log.close()
        wait_until_serving(self, "registry")
        return self


REFERRERS_API_TOOL = "olareg"  # the name in scripts/tools.lock


class ReferrersApiRegistry(ServiceProcess):
    """A registry that serves the OCI referrers API (`GET /v2/<name>/referrers/<digest>`), bound to 127.0.0.1 with its
    storage under `root`: olareg, built by `scripts/setup` (distribution, 2.8 or v3.1.2, does not serve the API).

        with ReferrersApiRegistry(tmp_path) as reg: reg.host, reg.url

    Deletes are enabled (quarantine deletes manifests) and garbage collection is off, so what a test sees is what was
    written. It sends no notifications: tests hand events to the pipeline themselves.
    """

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        self.root = Path(root)
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.log_path = self.root / "registry.log"

    def start(self) -> "ReferrersApiRegistry":
        built = tool_path(REFERRERS_API_TOOL)
        if built is None:
            raise RuntimeError(f"referrers API registry: {missing_tool_message(REFERRERS_API_TOOL)}")
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [str(built), "serve", "--addr", "127.0.0.1", "--port", str(self.port), "--dir", str(self.root / "data"),
             "--api-delete", "--gc-frequency", "-1s", "--verbosity", "warn"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_until_serving(self, "olareg")
        return self

