"""Every HTTP request a registry client sends is counted, and each one that fails is counted under one class.

A real HTTP server on 127.0.0.1 answers each path its own way (a status, a redirect, a slow answer, a dropped
connection); a closed port stands for a registry that is down. The transport's observer is the real Prometheus adapter,
read back through its registry.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from importer.adapters.metrics.prometheus import OTHER_REGISTRY, MetricNames, PrometheusMetrics
from importer.adapters.registry.http import HttpTransport
from importer.ports.metrics import REGISTRY_ERROR_CLASSES
from testbed.registry import free_port


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        kind, _, value = self.path.strip("/").partition("/")
        if kind == "redirect":
            self.send_response(302)
            self.send_header("Location", "/status/200")
        elif kind == "slow":
            time.sleep(1.0)
            self.send_response(200)
        elif kind == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)  # no status line at all
            return
        else:
            self.send_response(int(value))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(("path", "requests", "error_class"), [
    pytest.param("status/200", 1, None, id="200-no-error"),
    pytest.param("status/204", 1, None, id="204-no-error"),
    pytest.param("redirect", 2, None, id="redirect-two-requests-no-error"),
    pytest.param("status/401", 1, "unauthorized", id="401-unauthorized"),
    pytest.param("status/403", 1, "unauthorized", id="403-unauthorized"),
    pytest.param("status/404", 1, "not_found", id="404-not-found"),
    pytest.param("status/429", 1, "throttled", id="429-throttled"),
    pytest.param("status/418", 1, "client_error", id="418-client-error"),
    pytest.param("status/500", 1, "server_error", id="500-server-error"),
    pytest.param("status/503", 1, "server_error", id="503-server-error"),
    pytest.param("slow", 1, "timeout", id="no-answer-in-time-timeout"),
    pytest.param("drop", 1, "connection", id="connection-dropped"),
    pytest.param(None, 1, "unreachable", id="nothing-listening-unreachable"),
])
def test_each_request_is_counted_with_its_class(server: str, path: str | None, requests: int,
                                                error_class: str | None) -> None:
    host = server if path is not None else f"127.0.0.1:{free_port()}"
    metrics = PrometheusMetrics(guarded_registries=[host])
    transport = HttpTransport(allow_http=True, timeout=0.3, max_attempts=1, observer=metrics.registry_observer(host))
    try:
        transport.request("GET", f"http://{host}/{path or ''}", context="test")
    except Exception:
        pass  # a retryable status or a failure raises after its one attempt: only the counts matter here
    finally:
        transport.close()
    value = metrics.registry.get_sample_value
    assert value(MetricNames.REGISTRY_REQUESTS, {"registry": host, "method": "GET"}) == requests
    counted = {name: value(MetricNames.REGISTRY_ERRORS, {"registry": host, "method": "GET", "class": name}) or 0
               for name in REGISTRY_ERROR_CLASSES}
    assert counted == {name: 1 if name == error_class else 0 for name in REGISTRY_ERROR_CLASSES}


@pytest.mark.parametrize(("guarded", "label"), [
    pytest.param(True, None, id="a-guarded-registry-is-its-own-label"),
    pytest.param(False, OTHER_REGISTRY, id="any-other-host-is-other"),
])
def test_only_guarded_registries_name_a_series(server: str, guarded: bool, label: str | None) -> None:
    metrics = PrometheusMetrics(guarded_registries=[server] if guarded else ["registry.example"])
    transport = HttpTransport(allow_http=True, observer=metrics.registry_observer(server))
    transport.request("GET", f"http://{server}/status/200", context="test")
    transport.close()
    registries = {sample.labels["registry"] for family in metrics.registry.collect() for sample in family.samples
                  if sample.name == MetricNames.REGISTRY_REQUESTS}
    assert registries == {label or server}
