"""A local stand-in for ARM's `importImage` that does what the documentation says it does: copy, server-side.

    with ArmImportSimulator(target_host=registry.host) as arm:
        AcrImporter(..., arm_endpoint=arm.url, credential=…)      # the real SDK talks to it over loopback
        arm.imports                                               # the request bodies it received

`POST …/registries/{name}/importImage` with `{"source": {"registryUri" | "resourceId", "sourceImage"},
"targetTags", "untaggedTargetRepositories", "mode"}` copies `sourceImage` (repo@digest or repo:tag) from the source
registry into the target registry with the copy engine — every child of an index, as ACR does — and answers 200 (a
finished operation). A source named by `resourceId` is looked up in `registries` (resource id → loopback host).
It exists so that the pipeline's server-side re-import can run end to end here; the request and long-running-operation
shapes themselves are pinned by the contract tests in tests/adapters/test_acr_import.py.
Only loopback source registries are reachable, like everything in the testbed.

    ArmImportSimulator(target_host=…, asynchronous=True)      # 202 + Location, then the operation answers when polled
    ArmImportSimulator(target_host=…, refuse={"poll"})        # 403 AuthorizationFailed on the poll (the import ran)
    ArmImportSimulator(target_host=…, refuse={"import"})      # 403 AuthorizationFailed on the POST itself

`asynchronous` answers the POST as ARM does for a long-running action (RPC "Call Action POST Asynchronously"): 202
with a `Location` header (the header the importImage spec declares for its 202), whose URL then answers what the
synchronous call would have: 200, or the error. `refuse` answers 403 with ARM's AuthorizationFailed shape for the
import ("import") or for the GET of that URL ("poll", which implies `asynchronous`); the messages name the action
and scope the way ARM's do, but their text is the simulator's own.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

from importer.adapters.registry.oci import OciRegistry
from importer.app.copying import copy_image
from importer.core.reference import is_loopback_host
from testbed.http_server import LocalHttpServer, QuietRequestHandler

REFUSALS = frozenset({"import", "poll"})
IMPORT_ACTION = "Microsoft.ContainerRegistry/registries/importImage/action"
POLL_ACTION = "Microsoft.ContainerRegistry/locations/operationResults/read"
SIMULATED_CLIENT = "00000000-0000-0000-0000-0000000000aa"


def authorization_failed(action: str, scope: str) -> dict[str, Any]:
    """ARM's 403 body for a caller without `action` on `scope` (code AuthorizationFailed)."""
    return {"error": {"code": "AuthorizationFailed", "message": (
        f"The client '{SIMULATED_CLIENT}' with object id '{SIMULATED_CLIENT}' does not have authorization to perform "
        f"action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please "
        "refresh your credentials.")}}


class ArmImportSimulator:
    """An HTTP server on 127.0.0.1 that performs `importImage` against a local target registry."""

    def __init__(
        self,
        *,
        target_host: str,
        registries: Mapping[str, str] | None = None,
        asynchronous: bool = False,
        refuse: Iterable[str] = (),
    ) -> None:
        self.target_host = target_host
        self.registries = {resource_id.lower(): host for resource_id, host in (registries or {}).items()}
        self.refuse = frozenset(refuse)
        if not self.refuse <= REFUSALS:
            raise ValueError(f"refuse: {sorted(self.refuse - REFUSALS)} not in {sorted(REFUSALS)}")
        self.asynchronous = asynchronous or "poll" in self.refuse
        self.imports: list[dict[str, Any]] = []  # every importImage body received (refused ones too)
        self.polls: list[str] = []  # the path of every GET on an operation URL
        self._operations: dict[str, tuple[int, dict[str, Any]]] = {}  # path → the synchronous answer
        self._lock = threading.Lock()
        simulator = self

        class Handler(QuietRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.read_body() or b"{}")
                path = self.path.split("?")[0]
                if not path.endswith("/importImage"):
                    self.send_json(404, {"error": {"code": "NotFound", "message": self.path}})
                    return
                with simulator._lock:
                    simulator.imports.append(body)
                if "import" in simulator.refuse:
                    self.send_json(403, authorization_failed(IMPORT_ACTION, path.removesuffix("/importImage")))
                    return
                try:
                    simulator._import(body)
                except Exception as error:  # the simulated operation failed: ARM reports it as an error body
                    answer = (400, {"error": {"code": "InvalidParameters", "message": str(error)}})
                else:
                    answer = (200, {})
                if not simulator.asynchronous:
                    self.send_json(*answer)
                    return
                operation = simulator._operation(path, answer)
                self.send_body(202, headers={"Location": f"{simulator.url}{operation}?api-version=2025-04-01",
                                             "Retry-After": "0"})

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with simulator._lock:
                    answer = simulator._operations.get(path)
                    if answer is not None:
                        simulator.polls.append(path)
                if answer is None:
                    self.send_json(404, {"error": {"code": "NotFound", "message": self.path}})
                elif "poll" in simulator.refuse:
                    self.send_json(403, authorization_failed(POLL_ACTION, path))
                else:
                    self.send_json(*answer)

        self._http = LocalHttpServer(Handler, name="arm-import-simulator")

    @property
    def url(self) -> str:
        return self._http.url

    def _operation(self, import_path: str, answer: tuple[int, dict[str, Any]]) -> str:
        """A subscription-level operation URL path (the RPC's preferred form) that will answer `answer`."""
        subscription = import_path.split("/")[2] if import_path.startswith("/subscriptions/") else "unknown"
        path = (f"/subscriptions/{subscription}/providers/Microsoft.ContainerRegistry/locations/local"
                f"/operationResults/{uuid.uuid4()}")
        with self._lock:
            self._operations[path] = answer
        return path

    def _source_host(self, source: Mapping[str, Any]) -> str:
        if "resourceId" in source:
            host = self.registries.get(str(source["resourceId"]).lower())
            if host is None:
                raise ValueError(f"the registry {source['resourceId']} was not found")
        else:
            host = source["registryUri"]
        if not is_loopback_host(host):
            raise ValueError(f"the simulator only imports from loopback registries, not {host!r}")
        return host

    def _import(self, body: dict[str, Any]) -> None:
        source = body["source"]
        host = self._source_host(source)
        image = source["sourceImage"]
        repository, _, digest = image.partition("@")
        reference = digest or repository.rpartition(":")[2]
        repository = repository if digest else repository.rpartition(":")[0]
        with OciRegistry(host) as upstream, OciRegistry(self.target_host) as target:
            for name in body.get("untaggedTargetRepositories") or []:
                copy_image(upstream, repository, reference, target, name, None)
            for tagged in body.get("targetTags") or []:
                name, _, tag = tagged.rpartition(":")
                copy_image(upstream, repository, reference, target, name, tag)

    def start(self) -> Self:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
