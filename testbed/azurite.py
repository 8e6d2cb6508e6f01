"""Azurite, the Azure Storage emulator, on free loopback ports: Table Storage for tests and benchmarks.

    with Azurite(tmp_path / "azurite") as azurite:
        ledger = TableLedger(connection_string=azurite.connection_string)
        azurite.table_endpoint      # "http://127.0.0.1:PORT/devstoreaccount1"
        read_only_tables(azurite)   # a connection string whose SAS may only read and list tables

Azurite is the npm package pinned in the repository's package.json; `npm ci` at the repository root installs it
into ./node_modules (node 18 or newer). `azurite_command()` says what is missing when it cannot run. The
well-known development account (`devstoreaccount1` and its published key) is the only account Azurite serves;
`UseDevelopmentStorage=true` always means ports 10000-10002, so the connection string here names the ports.
"""

from __future__ import annotations

import datetime
import shutil
import socket
import subprocess
import time
from pathlib import Path

from testbed.process import ServiceProcess

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
AZURITE_SCRIPT = REPOSITORY_ROOT / "node_modules" / ".bin" / "azurite"

# Azurite's built-in development account: public, documented, and accepted by nothing but the emulator.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

_START_ATTEMPTS = 3  # free ports are picked before Azurite binds them: another process may take one meanwhile
_READY_SECONDS = 30.0


class AzuriteUnavailable(RuntimeError):
    """Azurite cannot be started here: node or the npm package is missing, or it did not come up."""


def node_binary() -> str | None:
    """The `node` executable on PATH, or None."""
    return shutil.which("node")


def azurite_command(script: Path = AZURITE_SCRIPT) -> list[str]:
    """The command that runs Azurite (without its options); AzuriteUnavailable says what to install if absent."""
    node = node_binary()
    if node is None:
        raise AzuriteUnavailable("node is not installed (Debian: apt-get install nodejs npm), so Azurite cannot run")
    if not script.exists():
        raise AzuriteUnavailable(f"Azurite is not installed: {script} is missing; run `npm ci` in {REPOSITORY_ROOT}")
    return [node, str(script)]


def _free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that are free right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Azurite(ServiceProcess):
    """One Azurite process (blob, queue and table services) bound to 127.0.0.1, its data under `root`."""

    def __init__(self, root: Path, *, in_memory: bool = False, script: Path = AZURITE_SCRIPT) -> None:
        """`in_memory` keeps the data in memory only (benchmarks that must not measure the disk); `script` is
        Azurite's launcher, by default the one `npm ci` installs in this repository."""
        self.root = Path(root)
        self.in_memory = in_memory
        self.script = Path(script)
        self.log_path = self.root / "azurite.log"
        self.blob_port = self.queue_port = self.table_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def table_host(self) -> str:
        """`127.0.0.1:PORT` of the Table service (e.g. the upstream of a FaultProxy)."""
        return f"127.0.0.1:{self.table_port}"

    @property
    def table_endpoint(self) -> str:
        """The Table service URL of the development account (path-style, as Azurite serves it)."""
        return f"http://{self.table_host}/{ACCOUNT_NAME}"

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{ACCOUNT_NAME}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.queue_port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        """A full connection string for the development account on this instance's ports."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )

    def connection_string_via(self, table_host: str) -> str:
        """The connection string with the Table service reached at `table_host` instead (a proxy in front of it)."""
        return self.connection_string.replace(
            f"TableEndpoint={self.table_endpoint};", f"TableEndpoint=http://{table_host}/{ACCOUNT_NAME};"
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> "Azurite":
        """Start Azurite and wait until its table port accepts connections."""
        command = azurite_command(self.script)
        self.root.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.blob_port, self.queue_port, self.table_port = _free_ports(3)
            if self._try_start(command):
                return self
            if attempt == _START_ATTEMPTS or not self._lost_a_port():
                break
        raise AzuriteUnavailable(
            f"Azurite did not start on 127.0.0.1 (table port {self.table_port}) within {_READY_SECONDS:.0f} s;"
            f" its log ends with:\n{self._log_tail()}"
        )

    def _try_start(self, command: list[str]) -> bool:
        options = [
            "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
            "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
            "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
            "--location", str(self.root / "data"),
            "--silent", "--disableTelemetry", "--skipApiVersionCheck",
        ]  # fmt: skip
        if self.in_memory:
            options.append("--inMemoryPersistence")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*command, *options],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
            )
        deadline = time.monotonic() + _READY_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            if _accepts_connections(self.table_port):
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def _lost_a_port(self) -> bool:
        """Whether the last start failed because a port was taken between choosing it and binding it."""
        return "EADDRINUSE" in self._log_tail()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


def read_only_tables(azurite: Azurite) -> str:
    """A connection string to `azurite`'s Table service whose account SAS may read and list tables, nothing else (an
    identity without write access, for the checks that must say so). The Azure SDK is imported here, on first use."""
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.data.tables import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(
        AzureNamedKeyCredential(ACCOUNT_NAME, ACCOUNT_KEY),
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(read=True, list=True),
        expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
    )
    return f"TableEndpoint={azurite.table_endpoint};SharedAccessSignature={sas}"
