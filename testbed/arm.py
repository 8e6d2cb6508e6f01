"""A local stand-in for ARM's `importImage` that does what the documentation says it does: copy, server-side.

    with ArmImportSimulator(target_host=registry.host) as arm:
        AcrImporter(..., arm_endpoint=arm.url, credential=…)      # the real SDK talks to it over loopback
        arm.imports                                               # the request bodies it received

`POST …/registries/{name}/importImage` with `{"source": {"registryUri", "sourceImage"}, "targetTags",
"untaggedTargetRepositories", "mode"}` copies `sourceImage` (repo@digest or repo:tag) from `registryUri` into the
target registry with the copy engine — every child of an index, as ACR does — and answers 200 (a finished
operation). It exists so that the pipeline's server-side re-import can run end to end here; the request and
long-running-operation shapes themselves are pinned by the contract tests in tests/test_acr_import.py.
Only loopback source registries are reachable, like everything in the testbed.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Self

from importer.adapters.registry.oci import OciRegistry
from importer.app.copying import copy_image
from importer.core.reference import is_loopback_host
from testbed.http_server import LocalHttpServer, QuietRequestHandler


class ArmImportSimulator:
    """An HTTP server on 127.0.0.1 that performs `importImage` against a local target registry."""

    def __init__(self, *, target_host: str) -> None:
        self.target_host = target_host
        self.imports: list[dict[str, Any]] = []
        simulator = self

        class Handler(QuietRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.read_body() or b"{}")
                if not self.path.split("?")[0].endswith("/importImage"):
                    self.send_json(404, {"error": {"code": "NotFound", "message": self.path}})
                    return
                try:
                    simulator._import(body)
                except Exception as error:  # the simulated operation failed: ARM reports it as an error body
                    self.send_json(400, {"error": {"code": "InvalidParameters", "message": str(error)}})
                    return
                self.send_json(200, {})

        self._http = LocalHttpServer(Handler, name="arm-import-simulator")

    @property
    def url(self) -> str:
        return self._http.url

    def _import(self, body: dict[str, Any]) -> None:
        self.imports.append(body)
        source = body["source"]
        host = source["registryUri"]
        if not is_loopback_host(host):
            raise ValueError(f"the simulator only imports from loopback registries, not {host!r}")
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
