"""Tests for importer.core.quarantine_names: quarantine tags and repositories that always fit, and what they say.

Names that fit keep today's format exactly; names that do not are shortened to `<head>--<hash>`, where the hash is
the first 16 hex digits of the SHA-256 of the whole original (computed here on its own, not with the module's).
A repository name fits when it is valid and at most 255 characters as docker and distribution count them (with
`docker.io/` in front, `docker.io/library/` for one component, unless a host comes first): the real registry of
the testbed refuses `quarantine/` + 235 characters with "repository name must not be more than 255 characters".
"""

from __future__ import annotations

import hashlib

import pytest

from importer.core.policy import PolicyError, Quarantine, parse_policy
from importer.core.quarantine_names import (
    MIN_STAND_IN,
    QuarantineTag,
    parse_quarantine_tag,
    quarantine_repository,
    quarantine_tag,
)
from importer.core.reference import validate_repository, validate_tag

SHA256 = "sha256:" + "0123456789abcdef" * 4
SHA512 = "sha512:" + "fedcba9876543210" * 8
HEX256 = SHA256.split(":")[1]
HEX512_KEPT = SHA512.split(":")[1][:64]


def hashed(original: str) -> str:
    """`--` and the first 16 hex digits of the SHA-256 of `original`: the end of a shortened stand-in."""
    return "--" + hashlib.sha256(original.encode()).hexdigest()[:16]


def repository_of(length: int, *, stem: str = "team/") -> str:
    """A readable repository name of exactly `length` characters: `team/` then `part-NN` components."""
    name = stem
    number = 0
    while len(name) < length:
        name += ("/" if not name.endswith("/") else "") + f"part-{number:02d}"
        number += 1
    name = name[:length].rstrip("/-")
    return name + "x" * (length - len(name))


TAG_100 = "v1.2.3-" + "build" * 18 + "-abc"  # 100 characters
TAG_CASES = {
    # id: (tag, digest, expected quarantine tag)
    "short-tag-unchanged": ("1.0", SHA256, f"1.0.sha256-{HEX256}"),
    "sha512-keeps-64-hex-digits": ("x.y", SHA512, f"x.y.sha512-{HEX512_KEPT}"),
    "56-characters-fit-exactly": ("a" * 56, SHA256, "a" * 56 + f".sha256-{HEX256}"),
    "57-characters-are-shortened": ("a" * 57, SHA256, "a" * 38 + hashed("a" * 57) + f".sha256-{HEX256}"),
    "100-character-tag": (TAG_100, SHA256, TAG_100[:38] + hashed(TAG_100) + f".sha256-{HEX256}"),
    "128-character-tag": ("t" * 128, SHA256, "t" * 38 + hashed("t" * 128) + f".sha256-{HEX256}"),
    "long-tag-sha512": ("_" + "z" * 99, SHA512, "_" + "z" * 37 + hashed("_" + "z" * 99) + f".sha512-{HEX512_KEPT}"),
}


@pytest.mark.parametrize(("tag", "digest", "expected"), TAG_CASES.values(), ids=TAG_CASES.keys())
def test_quarantine_tags_fit_and_say_what_they_can(tag: str, digest: str, expected: str) -> None:
    """Tags that fit keep `<tag>.<algorithm>-<hex>`; longer ones are exactly 128 characters, valid, and parse back
    to their head, flagged as shortened; the digest (first 64 hex digits) always stays readable."""
    kept = quarantine_tag(tag, digest)
    assert kept == expected
    assert validate_tag(kept) == kept and len(kept) <= 128
    shortened = len(tag) > 56
    parsed = parse_quarantine_tag(kept)
    assert parsed == QuarantineTag(tag[:38] if shortened else tag, digest[:7 + 64], shortened=shortened)
    if shortened:
        assert len(kept) == 128
    assert quarantine_tag(tag, digest) == kept  # deterministic


def test_long_tags_sharing_their_head_get_different_names() -> None:
    """Two tags alike in their first 38 characters (all a shortened tag shows) still get different names."""
    first, second = "release-2024-" + "x" * 60 + "-amd64", "release-2024-" + "x" * 60 + "-arm64"
    assert quarantine_tag(first, SHA256) != quarantine_tag(second, SHA256)
    assert quarantine_tag(first, SHA256)[:38] == quarantine_tag(second, SHA256)[:38]


PARSE_CASES = {
    # id: (name, what it says, or None when it is not a quarantine tag)
    "plain-tag": ("latest", None),
    "unknown-algorithm": ("1.0.sha1-" + "a" * 40, None),
    "hex-too-short": ("1.0.sha256-abc", None),
    "upper-case-hex": ("1.0.sha256-" + "A" * 64, None),
    "referrers-tag": (f"sha256-{HEX256}", None),
    "nothing-before-the-digest": (f".sha256-{HEX256}", None),
    "today's-format": (f"1.0.sha256-{HEX256}", QuarantineTag("1.0", SHA256, shortened=False)),
    "dotted-tag": (f"v1.2.sha256-{HEX256}", QuarantineTag("v1.2", SHA256, shortened=False)),
    "tag-ending-like-a-hash-but-short": (f"app--0123456789abcdef.sha256-{HEX256}",
                                         QuarantineTag("app--0123456789abcdef", SHA256, shortened=False)),
    "cut-by-the-old-rule": ("c" * 56 + f".sha256-{HEX256}", QuarantineTag("c" * 56, SHA256, shortened=False)),
    "shortened": ("s" * 38 + "--0123456789abcdef" + f".sha256-{HEX256}",
                  QuarantineTag("s" * 38, SHA256, shortened=True)),
}


@pytest.mark.parametrize(("name", "expected"), PARSE_CASES.values(), ids=PARSE_CASES.keys())
def test_parse_quarantine_tag(name: str, expected: QuarantineTag | None) -> None:
    """A quarantine tag gives its original tag (its head when shortened) and digest; anything else gives None."""
    assert parse_quarantine_tag(name) == expected


R234 = repository_of(234)
R235 = repository_of(235)
R250 = repository_of(250)
R240 = repository_of(240)
R226 = repository_of(226)
R236 = repository_of(236)
R200 = repository_of(200)
ONE_COMPONENT = "x" * 230
CUT_AT_SLASH = "team/" + "a" * 210 + "/" + "b" * 20  # the head would end in "/"
CUT_IN_DASHES = "team/" + "a" * 209 + "---" + "b" * 20  # the head would end in "--"
DEFAULT = "quarantine/{repository}"
PREFIXED = "quarantined-images/{repository}"
HOST_LIKE = "quarantine.example/{repository}"  # a first component with a dot: docker puts nothing in front
REPOSITORY_CASES = {
    # id: (template, repository, expected quarantine repository); the limit is 255 characters counted with
    # "docker.io/" in front ("docker.io/library/" for one component), so "quarantine/<name>" fits up to 245
    "short-unchanged": (DEFAULT, "team/app", "quarantine/team/app"),
    "template-with-suffix": ("held/{repository}-q", "team/app", "held/team/app-q"),
    "template-twice": ("q/{repository}/{repository}", "a/b", "q/a/b/a/b"),
    "exactly-at-the-limit-unchanged": (DEFAULT, R234, "quarantine/" + R234),
    "one-over-the-limit-shortened": (DEFAULT, R235, "quarantine/" + R235[:216].rstrip("/-") + hashed(R235)),
    "250-character-repository": (DEFAULT, R250, "quarantine/" + R250[:216].rstrip("/-") + hashed(R250)),
    "prefix-template-at-the-limit": (PREFIXED, R226, "quarantined-images/" + R226),
    "prefix-template-240-characters": (PREFIXED, R240, "quarantined-images/" + R240[:208].rstrip("/-") + hashed(R240)),
    "host-like-template-at-255": (HOST_LIKE, R236, "quarantine.example/" + R236),
    "host-like-template-240-characters": (HOST_LIKE, R240,
                                          "quarantine.example/" + R240[:218].rstrip("/-") + hashed(R240)),
    "suffix-template-250-characters": ("held/{repository}-q", R250,
                                       "held/" + R250[:220].rstrip("/-") + hashed(R250) + "-q"),
    "template-twice-200-characters": ("q/{repository}/{repository}", R200,
                                      "q/" + R200[:103] + hashed(R200) + "/" + R200[:103] + hashed(R200)),
    "one-component-name": ("{repository}-quarantined", ONE_COMPONENT,
                           "x" * 207 + hashed(ONE_COMPONENT) + "-quarantined"),
    "cut-after-a-slash": (DEFAULT, CUT_AT_SLASH, "quarantine/team/" + "a" * 210 + hashed(CUT_AT_SLASH)),
    "cut-in-a-dash-run": (DEFAULT, CUT_IN_DASHES, "quarantine/team/" + "a" * 209 + hashed(CUT_IN_DASHES)),
}


def docker_length(name: str) -> int:
    """The length docker and distribution check against 255: with docker.io/[library/] unless a host comes first."""
    first, slash, _ = name.partition("/")
    if slash and ("." in first or first == "localhost"):
        return len(name)
    return len(name) + len("docker.io/") + (0 if slash else len("library/"))


@pytest.mark.parametrize(("template", "repository", "expected"), REPOSITORY_CASES.values(), ids=REPOSITORY_CASES.keys())
def test_quarantine_repositories_fit_and_are_recognised(template: str, repository: str, expected: str) -> None:
    """Names that fit are the template filled in; longer ones use `<head>--<hash>` for every {repository}; each is a
    valid name that fits, which the quarantine recognises as its own; only unshortened names give their original."""
    assert validate_repository(repository) == repository
    name = quarantine_repository(template, repository)
    assert name == expected
    assert validate_repository(name) == name and docker_length(name) <= 255
    quarantine = Quarantine(repository=template)
    assert quarantine.repository_for(repository) == name
    assert quarantine.holds(name)
    unchanged = name == template.replace("{repository}", repository)
    assert quarantine.original_of(name) == (repository if unchanged else None)


def test_long_repositories_sharing_their_head_get_different_names() -> None:
    """Two repositories alike in all a shortened name shows still get different quarantine repositories."""
    first, second = R250[:-1] + "1", R250[:-1] + "2"
    assert quarantine_repository(DEFAULT, first) != quarantine_repository(DEFAULT, second)


def test_a_template_must_leave_room_for_a_shortened_name() -> None:
    """The policy refuses a quarantine template whose own text leaves no room for a shortened stand-in; one that
    leaves exactly enough still quarantines the longest repository under a valid name."""
    tight = "q" * (255 - 18 - MIN_STAND_IN - 1) + "/{repository}"  # room for docker.io/library/ and a stand-in
    too_tight = "q" + tight
    with pytest.raises(PolicyError, match="leaves 18 characters"):
        parse_policy(f"version: 1\nquarantine:\n  repository: '{too_tight}'\n")
    policy = parse_policy(f"version: 1\nquarantine:\n  repository: '{tight}'\n")
    name = policy.quarantine.repository_for(repository_of(255))
    assert validate_repository(name) == name and docker_length(name) == 255


def test_a_name_that_ends_like_a_shortened_one_is_looked_up_rather_than_read() -> None:
    """A repository whose name happens to end in `--` and 16 hex digits is held, but its original is not read from
    the name (release finds it in the ledger or next to the image)."""
    quarantine = Quarantine()
    name = quarantine.repository_for("team/app--0123456789abcdef")
    assert name == "quarantine/team/app--0123456789abcdef"
    assert quarantine.holds(name) and quarantine.original_of(name) is None
