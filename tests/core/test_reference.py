"""Tests for importer.core.reference: parsing and normalising image references, and loopback hosts."""

from __future__ import annotations

import pytest

from importer.core.reference import Reference, ReferenceError, is_loopback_host, parse_reference

SHA256 = "sha256:" + "a" * 64
SHA512 = "sha512:" + "0123456789abcdef" * 8

VALID = [
    # (input, registry, repository, tag, digest)
    ("127.0.0.1:5000/app:1", "127.0.0.1:5000", "app", "1", None),
    (f"myacr.azurecr.io/team/app@{SHA256}", "myacr.azurecr.io", "team/app", None, SHA256),
    ("nginx", "docker.io", "library/nginx", "latest", None),
    ("nginx:1.25-alpine", "docker.io", "library/nginx", "1.25-alpine", None),
    ("bitnami/redis", "docker.io", "bitnami/redis", "latest", None),
    ("docker.io/nginx", "docker.io", "library/nginx", "latest", None),
    ("index.docker.io/library/nginx:1", "docker.io", "library/nginx", "1", None),
    (f"ghcr.io/x/y:tag@{SHA256}", "ghcr.io", "x/y", "tag", SHA256),
    (f"ghcr.io/x/y@{SHA512}", "ghcr.io", "x/y", None, SHA512),
    ("localhost/app", "localhost", "app", "latest", None),
    ("localhost:5000/a/b/c:v1.0_rc", "localhost:5000", "a/b/c", "v1.0_rc", None),
    ("[::1]:5000/app:x", "[::1]:5000", "app", "x", None),
    ("registry.example.com/a.b_c__d---e/f:_under", "registry.example.com", "a.b_c__d---e/f", "_under", None),
    ("Registry.Example.com/app:T", "Registry.Example.com", "app", "T", None),
    ("quay.io/app:" + "t" * 128, "quay.io", "app", "t" * 128, None),
]


VALID_IDS = [case[0][:60] for case in VALID]


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), VALID, ids=VALID_IDS)
def test_valid_references_parse_into_their_parts(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    """A valid reference yields its normalised registry, repository, tag and digest."""
    assert parse_reference(text) == Reference(registry=registry, repository=repository, tag=tag, digest=digest)


@pytest.mark.parametrize("text", [case[0] for case in VALID], ids=VALID_IDS)
def test_canonical_form_parses_back_to_the_same_reference(text: str) -> None:
    """str() of a parsed reference parses back to an equal reference."""
    reference = parse_reference(text)
    assert parse_reference(str(reference)) == reference


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        (f"ghcr.io/x/y:tag@{SHA256}", f"ghcr.io/x/y:tag@{SHA256}"),
        (f"ghcr.io/x/y@{SHA256}", f"ghcr.io/x/y@{SHA256}"),
    ],
    ids=["docker-hub-official", "tag-and-digest", "digest-only"],
)
def test_str_gives_the_canonical_form(text: str, canonical: str) -> None:
    """str() spells out registry, repository, tag and digest in the canonical order."""
    assert str(parse_reference(text)) == canonical


@pytest.mark.parametrize(
    ("text", "expected"),
    [("app:1", "1"), (f"app@{SHA256}", SHA256), (f"app:1@{SHA256}", SHA256)],
    ids=["tag", "digest", "digest-wins-over-tag"],
)
def test_manifest_reference_prefers_the_digest(text: str, expected: str) -> None:
    """manifest_reference is the digest when there is one, else the tag."""
    assert parse_reference(text).manifest_reference == expected


INVALID = [
    # (input, what the message must say)
    ("", "empty"),
    (" nginx", "whitespace"),
    ("ngi nx", "whitespace"),
    ("Nginx", "lower-case"),
    ("example.com/Team/app", "lower-case"),
    ("example.com/app:", "nothing after ':'"),
    ("example.com/app@", "nothing after '@'"),
    ("example.com/app:-bad", "invalid tag"),
    ("example.com/app:" + "t" * 129, "invalid tag"),
    ("example.com/app:a/b", "invalid"),
    ("example.com/app@sha256:abc", "64 lower-case hex"),
    ("example.com/app@sha256:" + "A" * 64, "64 lower-case hex"),
    ("example.com/app@md5:" + "a" * 32, "sha256 or sha512"),
    ("example.com/app@sha512:" + "a" * 64, "128 lower-case hex"),
    ("example.com/-app", "components"),
    ("example.com/app_", "components"),
    ("example.com/a//b", "components"),
    ("example.com/a___b", "components"),
    ("example.com/", "empty"),
    ("exa_mple.com:5000/app", "invalid registry host"),
    ("example.com:port/app", "invalid registry host"),
    ("example.com/" + "a" * 256, "longer than 255"),
]


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[repr(case[0])[:50] for case in INVALID])
def test_invalid_references_are_refused_naming_the_input(text: str, message: str) -> None:
    """An invalid reference raises ReferenceError (a ValueError) that names the input and what is wrong."""
    with pytest.raises(ReferenceError) as raised:
        parse_reference(text)
    assert isinstance(raised.value, ValueError)
    assert repr(text) in str(raised.value)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:5000", True),
        ("127.255.3.4:80", True),
        ("localhost", True),
        ("LOCALHOST:5000", True),
        ("::1", True),
        ("[::1]", True),
        ("[::1]:5000", True),
        ("[::ffff:127.0.0.1]:5000", True),
        ("128.0.0.1", False),
        ("10.0.0.1:5000", False),
        ("[::2]:5000", False),
        ("localhost.example.com", False),
        ("myacr.azurecr.io", False),
        ("127.0.0.1.nip.io", False),
        ("", False),
    ],
    ids=lambda value: str(value),
)
def test_loopback_hosts_are_recognised_with_or_without_port(host: str, loopback: bool) -> None:
    """Only 127.0.0.0/8, ::1 and localhost count as loopback, with or without a port."""
    assert is_loopback_host(host) is loopback
