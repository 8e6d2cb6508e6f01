"""Image references: parse `registry/repository[:tag][@digest]` the way docker and containerd do.

    ref = parse_reference("nginx")                          # docker.io/library/nginx:latest
    ref = parse_reference("127.0.0.1:5000/app@sha256:…")    # registry "127.0.0.1:5000", tag None
    ref.manifest_reference                                   # the digest when there is one, else the tag
    is_loopback_host("[::1]:5000")                           # True

Rules (from the distribution reference grammar and docker's normalisation):
- The first path component is the registry when it contains "." or ":" or is "localhost"; otherwise the
  registry is Docker Hub (`docker.io`), where a one-component name gets the `library/` prefix.
- No tag and no digest means tag `latest`; a digest alone leaves the tag None; both may be given.
- Repository: lower-case components `[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*` joined by "/", at most 255 characters.
  Tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`. Digest: `sha256:` + 64 or `sha512:` + 128 lower-case hex digits.
Invalid input raises ReferenceError (a ValueError) naming the input and what is wrong with it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
MAX_REPOSITORY_LENGTH = 255

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_COMPONENT_PATTERN = re.compile(_COMPONENT)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"(sha256):([a-f0-9]{64})|(sha512):([a-f0-9]{128})")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:.]+\])(?::[0-9]{{1,5}})?")


class ReferenceError(ValueError):
    """An image reference, repository name, tag, digest or registry host that does not follow the grammar."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed, normalised image reference; `str()` gives the canonical form."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def manifest_reference(self) -> str:
        """What to ask the registry's manifests endpoint for: the digest when there is one, else the tag."""
        if self.digest is not None:
            return self.digest
        assert self.tag is not None  # parse_reference never leaves both empty
        return self.tag


def is_valid_repository(name: str) -> bool:
    """True when `name` is a repository name (components joined by "/", at most 255 characters)."""
    return len(name) <= MAX_REPOSITORY_LENGTH and _REPOSITORY.fullmatch(name) is not None


def is_valid_repository_component(segment: str) -> bool:
    """True when `segment` is one "/"-separated component of a repository name."""
    return _COMPONENT_PATTERN.fullmatch(segment) is not None


def is_valid_tag(tag: str) -> bool:
    """True when `tag` is a tag: up to 128 characters from [A-Za-z0-9_.-], not starting with '.' or '-'."""
    return _TAG.fullmatch(tag) is not None


def is_valid_digest(digest: str) -> bool:
    """True when `digest` is `sha256:` + 64 or `sha512:` + 128 lower-case hex digits."""
    return _DIGEST.fullmatch(digest) is not None


def is_valid_host(host: str) -> bool:
    """True when `host` is a registry host: `name[:port]`, an IPv4 address or `[IPv6][:port]`."""
    return _HOST.fullmatch(host) is not None


def validate_repository(name: str) -> str:
    """Return `name` if it is a valid repository name, else raise ReferenceError saying why."""
    if not name:
        raise ReferenceError("invalid repository name '': it is empty")
    if len(name) > MAX_REPOSITORY_LENGTH:
        raise ReferenceError(f"invalid repository name {name!r}: longer than {MAX_REPOSITORY_LENGTH} characters")
    if not is_valid_repository(name):
        if name != name.lower():
            raise ReferenceError(f"invalid repository name {name!r}: it must be lower-case")
        raise ReferenceError(
            f"invalid repository name {name!r}: components are lower-case letters and digits separated by "
            "'.', '_', '__' or dashes, joined by '/'"
        )
    return name


def validate_tag(tag: str) -> str:
    """Return `tag` if it is a valid tag, else raise ReferenceError saying why."""
    if not is_valid_tag(tag):
        raise ReferenceError(
            f"invalid tag {tag!r}: up to 128 characters from [A-Za-z0-9_.-], not starting with '.' or '-'"
        )
    return tag


def validate_digest(digest: str) -> str:
    """Return `digest` if it is a sha256 or sha512 digest in lower-case hex, else raise ReferenceError."""
    if not is_valid_digest(digest):
        algorithm, _, hex_part = digest.partition(":")
        if algorithm not in _DIGEST_HEX_LENGTHS:
            raise ReferenceError(f"invalid digest {digest!r}: the algorithm must be sha256 or sha512")
        raise ReferenceError(
            f"invalid digest {digest!r}: {algorithm} needs {_DIGEST_HEX_LENGTHS[algorithm]} lower-case hex digits"
        )
    return digest


def validate_host(host: str) -> str:
    """Return `host` if it is a registry host (`name[:port]`, IPv4, `[IPv6][:port]`), else raise ReferenceError."""
    if not is_valid_host(host):
        raise ReferenceError(f"invalid registry host {host!r}: expected name[:port], an IP address or [IPv6][:port]")
    return host


def is_digest(reference: str) -> bool:
    """True when a manifest reference is meant as a digest (tags cannot contain ':'); it is not validated here."""
    return ":" in reference


def is_loopback_host(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1 (also IPv4-mapped), with or without a `:port`."""
    name = _strip_port(host.strip()).lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _strip_port(host: str) -> str:
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end != -1 else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host  # no port, or a bare IPv6 address


def _looks_like_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def names_registry(text: str) -> bool:
    """True when `text` starts with a registry host (`ghcr.io/app`), not a Docker Hub path (`bitnami/redis`)."""
    first, slash, _ = text.partition("/")
    return bool(slash) and _looks_like_registry(first)


def parse_reference(text: str) -> Reference:
    """Parse and normalise an image reference; raise ReferenceError naming `text` when it is not one."""
    if not text or text != text.strip() or any(character.isspace() for character in text):
        raise ReferenceError(f"invalid image reference {text!r}: empty or contains whitespace")
    name, at, digest = text.partition("@")
    if at and not digest:
        raise ReferenceError(f"invalid image reference {text!r}: nothing after '@'")
    first, slash, rest = name.partition("/")
    if slash and _looks_like_registry(first):
        registry, remainder = first, rest
    else:
        registry, remainder = DOCKER_HUB, name
    repository, colon, tag = remainder.rpartition(":") if ":" in remainder else (remainder, "", "")
    if colon and not tag:
        raise ReferenceError(f"invalid image reference {text!r}: nothing after ':'")
    if registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if repository and "/" not in repository:
            repository = DOCKER_HUB_OFFICIAL_PREFIX + repository
    try:
        validate_host(registry)
        validate_repository(repository)
        if colon:
            validate_tag(tag)
        if digest:
            validate_digest(digest)
    except ReferenceError as problem:
        raise ReferenceError(f"invalid image reference {text!r}: {problem}") from None
    if not colon and not digest:
        tag = DEFAULT_TAG
    return Reference(registry=registry, repository=repository, tag=tag or None, digest=digest or None)


def reference_of(registry: str | None, repository: str, tag: str | None, digest: str | None) -> str:
    """`registry/repository:tag@digest`, leaving out what is unknown."""
    text = f"{registry}/{repository}" if registry else repository
    if tag:
        text += f":{tag}"
    if digest:
        text += f"@{digest}"
    return text
