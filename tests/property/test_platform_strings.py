"""Properties of platform strings (importer.core.platforms) over hostile specifiers, patterns and OCI objects.

For any text: `parse` returns a normalised Platform or raises PlatformError; `validate_pattern` returns or raises
PlatformError; `matches_pattern` answers a bool for every pattern `validate_pattern` accepts (fnmatch globs against
architecture strings as long as an image config may hold); `from_oci` reads any mapping into a Platform or raises
PlatformError. All within the bounds of `tests.property.hostile`; a parsed platform parses again to itself. The
calls that run regexes (`parse`, the pattern checks) run in a forked child that is killed if it hangs.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from importer.core.platforms import (
    Platform,
    PlatformError,
    format_platform,
    from_oci,
    matches_pattern,
    normalize,
    parse,
    validate_pattern,
)
from tests.property.hostile import (
    bounded,
    bounded_in_child,
    hostile_text,
    json_values,
    mostly,
    one_value_corrupted,
    scaled_examples,
    spliced,
)

FORKED_EXAMPLES = scaled_examples(0.5)  # every example forks a child (`bounded_in_child`): half as many

SEGMENTS = ("linux", "windows", "darwin", "macos", "amd64", "arm64", "arm", "x86_64", "aarch64", "armhf", "386",
            "v7", "v8", "8", "unknown", "Linux", "AMD64", "windows(10.0.17763)", "windows(10.0.17763", "ppc64le")
GLOB_SEGMENTS = ("*", "?", "[a-z]*", "[!w]*", "arm*", "*64", "[", "]", "!", "*a*a*a*a*a*a*a*a*b")


def _joined(segments: list[str]) -> str:
    return "/".join(segments)


SPECIFIERS = mostly(
    st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=4).map(_joined),
    st.one_of(hostile_text(), spliced(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map(_joined))),
    valid_share=2,
)
PATTERNS = mostly(
    st.lists(st.sampled_from(SEGMENTS + GLOB_SEGMENTS), min_size=1, max_size=4).map(_joined),
    st.one_of(hostile_text(), st.integers(1, 2_000).map(lambda count: "*a" * count + "*b")),
    valid_share=2,
)
# Architecture strings as long as an image config may hold (configs are capped at 1 MiB).
LONG_PLATFORMS = st.builds(
    lambda os, unit, count: Platform(os, unit * count),
    st.sampled_from(("linux", "windows")),
    st.sampled_from(("a", "ab", "arm", "x")),
    st.integers(1, 200_000),
)
_VALID_OCI = st.fixed_dictionaries(
    {"os": st.sampled_from(SEGMENTS), "architecture": st.sampled_from(SEGMENTS)},
    optional={"variant": st.sampled_from(("v7", "v8", "")), "os.version": st.just("10.0.17763.1"),
              "os.features": st.just(["win32k"])},
)
OCI_OBJECTS = st.one_of(
    _VALID_OCI.flatmap(lambda obj: one_value_corrupted(obj, favoured=frozenset({"os", "architecture"}))),
    st.dictionaries(hostile_text(12), json_values(with_raw=False), max_size=4),
)


@settings(max_examples=FORKED_EXAMPLES)
@given(specifier=SPECIFIERS)
@example(specifier="linux/" + "a" * 1_000_000)
@example(specifier="\ud800/amd64")
def test_any_specifier_parses_or_is_refused(specifier: str) -> None:
    """A normalised Platform that parses back to itself, or PlatformError."""
    platform = bounded_in_child(lambda: parse(specifier), allowed=(PlatformError,), what="specifier")
    if isinstance(platform, Platform):
        assert platform == normalize(platform)
        assert parse(format_platform(platform, with_os_version=True)) == platform


@settings(max_examples=FORKED_EXAMPLES)
@given(pattern=PATTERNS, platform=st.one_of(SPECIFIERS.map(lambda text: _parsed_or_none(text)), LONG_PLATFORMS))
@example(pattern="*a*a*a*a*a*a*a*a*a*a*b", platform=Platform("linux", "a" * 100_000))
@example(pattern="linux/" + "*a" * 500 + "*b", platform=Platform("linux", "a" * 100_000))
def test_any_pattern_is_validated_and_matches_in_bounded_time(pattern: str, platform: Platform | None) -> None:
    """`validate_pattern` accepts or raises PlatformError; an accepted pattern answers `matches_pattern` with a bool."""
    checked = bounded_in_child(lambda: validate_pattern(pattern), allowed=(PlatformError,), what="pattern")
    if isinstance(checked, PlatformError) or platform is None:
        return
    answer = bounded_in_child(lambda: matches_pattern(pattern, platform), allowed=(), what="match")
    assert isinstance(answer, bool)


@given(obj=OCI_OBJECTS)
@example(obj={"os": "linux", "architecture": "amd64", "os.features": [[[[[["x"]]]]]] * 1000})
@example(obj={"os": "linux", "architecture": "amd64", "variant": "\ud800" * 1000})
def test_any_oci_platform_object_reads_or_is_refused(obj: dict[str, Any]) -> None:
    """`from_oci` over any mapping (an index entry's platform, an image config): a Platform or PlatformError."""
    platform = bounded(lambda: from_oci(obj), allowed=(PlatformError,), what="OCI platform")
    if isinstance(platform, Platform):
        assert platform == normalize(platform)


def _parsed_or_none(text: str) -> Platform | None:
    try:
        return parse(text)
    except PlatformError:
        return None
