"""Quarantine names: where a quarantined image is kept, and what its name still says about where it came from.

    quarantine_tag("1.0", "sha256:3f2a…")                          # "1.0.sha256-3f2a…"
    quarantine_repository("quarantine/{repository}", "team/app")   # "quarantine/team/app"
    parse_quarantine_tag("1.0.sha256-3f2a…")    # QuarantineTag(tag="1.0", digest="sha256:3f2a…", shortened=False)

The rule (docs/design.md, Remediation):
- Tag: `<tag>.<algorithm>-<hex>`, where `<hex>` is the digest's hex (a sha512 digest keeps its first 64 digits).
  When that is longer than a tag may be (128 characters: a tag of more than 56 characters), it is
  `<head>--<hash>.<algorithm>-<hex>`: `<head>` is the tag's first 38 characters and `<hash>` the first 16 hex
  digits of the SHA-256 of the whole original tag, so the name is exactly 128 characters.
- Repository: the policy's `quarantine.repository` template with `{repository}` replaced by the repository name.
  When that does not fit — not a valid name, or longer than 255 characters as docker and distribution count them:
  with `docker.io/` in front (`docker.io/library/` for a name of one component) unless the first component is a
  host — every `{repository}` is replaced by the same stand-in `<head>--<hash>`: `<head>` is the longest start of
  the name that fits, without trailing `.`, `_`, `-` or `/`, and `<hash>` the first 16 hex digits of the SHA-256
  of the whole original repository name. (So `quarantine/<name>` fits up to 245 characters.)
Names that fit are exactly what they always were. A shortened name is still a valid name, deterministic, keeps the
digest readable, and differs for different originals (64 bits of hash); its original is on record in the ledger
and, where the registry takes it, in an annotation artifact next to the image (importer.core.quarantine_origin).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from importer.core.reference import (
    DOCKER_HUB,
    DOCKER_HUB_OFFICIAL_PREFIX,
    MAX_REPOSITORY_LENGTH,
    ReferenceError,
    is_valid_repository,
    is_valid_tag,
    names_registry,
)

PLACEHOLDER: Final = "{repository}"
MAX_TAG_LENGTH: Final = 128
DIGEST_HEX_KEPT: Final = 64  # a sha512 digest keeps its first 64 hex digits in the tag (the ledger has the rest)
HASH_DIGITS: Final = 16
SHORTENED_MARK: Final = "--"
MIN_STAND_IN: Final = 1 + len(SHORTENED_MARK) + HASH_DIGITS  # one readable character, the mark and the hash
MAX_DOCKER_OVERHEAD: Final = len(f"{DOCKER_HUB}/{DOCKER_HUB_OFFICIAL_PREFIX}")  # "docker.io/library/"

_QUARANTINE_TAG = re.compile(r"(?P<stem>.+)\.(?P<algorithm>sha256|sha512)-(?P<hex>[0-9a-f]{64})")
_SHORTENED = re.compile(rf"(?P<head>.+){SHORTENED_MARK}[0-9a-f]{{{HASH_DIGITS}}}")
_SEPARATORS = "._-/"


@dataclass(frozen=True, slots=True)
class QuarantineOrigin:
    """Where a quarantined image came from: the guarded repository, its tag and the image's digest."""

    repository: str
    tag: str
    digest: str


@dataclass(frozen=True, slots=True)
class QuarantineTag:
    """What a quarantine tag says: the original tag (only its head when `shortened`) and the digest it names
    (for sha512, `sha512:` and its first 64 hex digits)."""

    tag: str
    digest: str
    shortened: bool


def name_hash(original: str) -> str:
    """The first 16 hex digits of the SHA-256 of `original`: what tells shortened names apart."""
    return hashlib.sha256(original.encode("utf-8")).hexdigest()[:HASH_DIGITS]


def quarantine_tag(tag: str, digest: str) -> str:
    """`<tag>.<algorithm>-<hex>`, or `<head>--<hash>.<algorithm>-<hex>` (128 characters) when that does not fit."""
    algorithm, _, encoded = digest.partition(":")
    suffix = f".{algorithm}-{encoded[:DIGEST_HEX_KEPT]}"
    if is_valid_tag(tag + suffix):
        return tag + suffix
    tail = SHORTENED_MARK + name_hash(tag)
    return tag[: MAX_TAG_LENGTH - len(suffix) - len(tail)] + tail + suffix


def parse_quarantine_tag(name: str) -> QuarantineTag | None:
    """What a quarantine tag says, or None when `name` is not one (no `.<algorithm>-<64 hex>` at its end)."""
    found = _QUARANTINE_TAG.fullmatch(name)
    if found is None:
        return None
    stem, digest = found.group("stem"), f"{found.group('algorithm')}:{found.group('hex')}"
    shortened = _SHORTENED.fullmatch(stem) if len(name) == MAX_TAG_LENGTH else None
    if shortened is not None:
        return QuarantineTag(shortened.group("head"), digest, shortened=True)
    return QuarantineTag(stem, digest, shortened=False)


def quarantine_repository(template: str, repository: str) -> str:
    """The template filled with `repository`, or with the stand-in `<head>--<hash>` when that does not fit.

    Raises ReferenceError (a ValueError) when even the shortest stand-in gives no name that fits: a template the
    policy reader refuses (importer.core.policy.reader).
    """
    full = template.replace(PLACEHOLDER, repository)
    if fits(full):
        return full
    tail = SHORTENED_MARK + name_hash(repository)
    for overhead in (_docker_overhead(full), MAX_DOCKER_OVERHEAD):  # the head may cut the first component short
        room = _room(template, MAX_REPOSITORY_LENGTH - overhead) - len(tail)
        shortened = template.replace(PLACEHOLDER, repository[: max(room, 1)].rstrip(_SEPARATORS) + tail)
        if fits(shortened):
            return shortened
    raise ReferenceError(
        f"invalid quarantine repository {shortened!r}: the template {template!r} leaves no room for {repository!r}"
    )


def fits(name: str) -> bool:
    """True when `name` is a valid repository name that fits 255 characters as docker counts them: with
    `docker.io/` in front (and `library/` for a name of one component) unless its first component is a host."""
    return is_valid_repository(name) and len(name) + _docker_overhead(name) <= MAX_REPOSITORY_LENGTH


def stand_in_room(template: str) -> int:
    """How many characters each `{repository}` of `template` may surely take in a name that fits."""
    return _room(template, MAX_REPOSITORY_LENGTH - MAX_DOCKER_OVERHEAD)


def _room(template: str, limit: int) -> int:
    count = max(template.count(PLACEHOLDER), 1)
    literal = len(template) - template.count(PLACEHOLDER) * len(PLACEHOLDER)
    return (limit - literal) // count


def _docker_overhead(name: str) -> int:
    """What docker's name normalisation puts in front of `name` (distribution counts it against the 255)."""
    if names_registry(name):
        return 0
    return len(f"{DOCKER_HUB}/") + (0 if "/" in name else len(DOCKER_HUB_OFFICIAL_PREFIX))


def is_shortened(stand_in: str) -> bool:
    """True when what stands for `{repository}` in a quarantine repository name is a shortened `<head>--<hash>`.

    A name that ends like one by chance (`app--0123456789abcdef`) counts as shortened too: its original is then
    looked up rather than read from the name.
    """
    return _SHORTENED.fullmatch(stand_in) is not None
