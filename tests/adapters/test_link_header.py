"""Pagination Link headers (importer.adapters.registry.oci): what they mean, and a cost linear in their length.

A fake registry on 127.0.0.1 answers the catalog with one page and the Link header a test gives it. The header is
the registry's to write: one of 60,000 `<` used to make the client's regex backtrack over the rest of the header at
every `<` (15 s of CPU for 64 KiB), on every page of every catalog or tag listing.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest

from importer.adapters.registry.oci import OciRegistry
from importer.ports.registry import ProtocolError
from testbed.http_server import LocalHttpServer, QuietRequestHandler

pytestmark = pytest.mark.timeout(120)


class CatalogHandler(QuietRequestHandler):
    """/v2/ answers 200; the catalog's first page lists "first" with the owner's Link header, the next "second"."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        link: str = self.server.owner  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        if path == "/v2/":
            self.send_body(200, b"{}", {"Content-Type": "application/json"})
        elif path == "/v2/_catalog" and "last=" not in self.path:
            headers = {"Content-Type": "application/json"} | ({"Link": link} if link else {})
            self.send_body(200, json.dumps({"repositories": ["first"]}).encode(), headers)
        elif path == "/v2/_catalog":
            self.send_body(200, json.dumps({"repositories": ["second"]}).encode(), {"Content-Type": "application/json"})
        else:
            self.send_body(404, b"{}")


def catalog_with_link(link: str) -> list[str]:
    with LocalHttpServer(CatalogHandler, owner=link) as server, OciRegistry(server.host) as client:
        return list(client.catalog())


NEXT = "/v2/_catalog?last=first&n=1"
SEMANTIC_CASES = [
    ("no-link", "", ["first"]),
    ("next", f'<{NEXT}>; rel="next"', ["first", "second"]),
    ("next-unquoted", f"<{NEXT}>; rel=next", ["first", "second"]),
    ("next-after-another", f'</v2/_catalog?other>; rel="prev", <{NEXT}>; rel="next"', ["first", "second"]),
    ("only-another", '</v2/_catalog?other>; rel="prev"', ["first"]),
]


@pytest.mark.parametrize(("link", "expected"), [case[1:] for case in SEMANTIC_CASES],
                         ids=[case[0] for case in SEMANTIC_CASES])
def test_link_header_is_followed_as_rfc_8288_says(link: str, expected: list[str]) -> None:
    """The `rel="next"` target is fetched next; without one the listing ends."""
    assert catalog_with_link(link) == expected


HOSTILE_CASES = [
    ("60000-opening-brackets", "<" * 60_000),
    ("an-open-bracket-then-60000-characters", "<" + "a" * 60_000),
    ("30000-unclosed-links", "<a" * 30_000),
]


@pytest.mark.parametrize("link", [case[1] for case in HOSTILE_CASES], ids=[case[0] for case in HOSTILE_CASES])
def test_hostile_link_headers_are_refused_in_linear_time(link: str) -> None:
    """A Link header with no link in it is a ProtocolError, quoting a short excerpt, within a second of CPU."""
    started = time.process_time()
    with pytest.raises(ProtocolError, match="unreadable Link header") as refused:
        catalog_with_link(link)
    assert time.process_time() - started < 1.0
    assert len(str(refused.value)) < 400
