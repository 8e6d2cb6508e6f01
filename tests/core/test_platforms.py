"""Tables of cases for importer.core.platforms: parsing, normalisation, matching, ranking and forbid patterns.

Each row is one rule of containerd's platform semantics (see the module docstring); rows named
``regression-…`` pin bugs that other tools shipped.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.core.platforms import (
    Platform,
    PlatformError,
    best_candidate,
    format_platform,
    from_oci,
    is_compatible,
    is_unknown,
    matches_pattern,
    matches_strict,
    normalize,
    parse,
    rank_key,
    satisfies,
    validate_pattern,
)

P = Platform


def _ids(rows: list[tuple[object, ...]]) -> list[str]:
    """Row ids for parametrize: the first column of each row."""
    return [str(row[0]) for row in rows]

# --- parse and normalise ------------------------------------------------------------------------

PARSE_CASES = [
    ("linux/amd64", P("linux", "amd64")),
    ("linux/arm64", P("linux", "arm64")),
    ("darwin/arm64", P("darwin", "arm64")),
    ("arm64", P("linux", "arm64")),
    ("amd64", P("linux", "amd64")),
    ("aarch64", P("linux", "arm64")),
    ("armhf", P("linux", "arm", "v7")),
    ("LINUX/AMD64", P("linux", "amd64")),
    ("Linux/ARM/V7", P("linux", "arm", "v7")),
    ("macos/arm64", P("darwin", "arm64")),
    ("MacOS/x86_64", P("darwin", "amd64")),
    ("linux/i386", P("linux", "386")),
    ("linux/i386/whatever", P("linux", "386")),
    ("linux/x86_64", P("linux", "amd64")),
    ("linux/x86-64", P("linux", "amd64")),
    ("linux/amd64/v1", P("linux", "amd64")),
    ("linux/amd64/1", P("linux", "amd64")),
    ("linux/x86_64/v1", P("linux", "amd64")),
    ("linux/amd64/v3", P("linux", "amd64", "v3")),
    ("linux/amd64/3", P("linux", "amd64", "v3")),
    ("linux/aarch64", P("linux", "arm64")),
    ("linux/arm64/8", P("linux", "arm64")),
    ("linux/arm64/v8", P("linux", "arm64")),
    ("linux/arm64/v8.0", P("linux", "arm64")),
    ("linux/aarch64/v8", P("linux", "arm64")),
    ("linux/arm64/v8.2", P("linux", "arm64", "v8.2")),
    ("linux/arm64/9", P("linux", "arm64", "v9")),
    ("linux/arm64/9.0", P("linux", "arm64", "v9")),
    ("linux/arm64/v9.0", P("linux", "arm64", "v9")),
    ("linux/arm64/v9", P("linux", "arm64", "v9")),
    ("linux/armhf", P("linux", "arm", "v7")),
    ("linux/armhf/v6", P("linux", "arm", "v7")),
    ("linux/armel", P("linux", "arm", "v6")),
    ("linux/arm", P("linux", "arm", "v7")),
    ("linux/arm/7", P("linux", "arm", "v7")),
    ("linux/arm/v7", P("linux", "arm", "v7")),
    ("linux/arm/5", P("linux", "arm", "v5")),
    ("linux/arm/6", P("linux", "arm", "v6")),
    ("linux/arm/8", P("linux", "arm", "v8")),
    ("linux/arm/v6", P("linux", "arm", "v6")),
    ("linux/ppc64le", P("linux", "ppc64le")),
    ("linux/s390x", P("linux", "s390x")),
    ("linux/riscv64", P("linux", "riscv64")),
    ("windows/amd64", P("windows", "amd64")),
    ("windows(10.0.17763)/amd64", P("windows", "amd64", os_version="10.0.17763")),
    ("windows(10.0.20348.2582)/amd64", P("windows", "amd64", os_version="10.0.20348.2582")),
    ("Windows(10.0.17763)/ARM64/v8", P("windows", "arm64", os_version="10.0.17763")),
    ("unknown/unknown", P("unknown", "unknown")),
]


@pytest.mark.parametrize(("specifier", "expected"), PARSE_CASES, ids=_ids(PARSE_CASES))
def test_parse_returns_the_normalised_platform(specifier: str, expected: Platform) -> None:
    """Every accepted spelling parses to the one normalised platform containerd would use."""
    assert parse(specifier) == expected


@pytest.mark.parametrize(("specifier", "_"), PARSE_CASES, ids=_ids(PARSE_CASES))
def test_parse_format_parse_round_trips(specifier: str, _: Platform) -> None:
    """Formatting a parsed platform (with its os.version) and parsing it again gives the same platform."""
    parsed = parse(specifier)
    assert parse(format_platform(parsed, with_os_version=True)) == parsed
    assert parse(str(parsed)) == normalize(Platform(parsed.os, parsed.architecture, parsed.variant))


INVALID_SPECIFIERS = [
    ("", "empty"),  # nothing at all
    ("a/b/c/d", "4 segments"),  # more than os/arch/variant
    ("linux/amd64/v2/x", "4 segments"),  # a fourth segment after a valid platform
    ("/amd64", "empty segment"),  # empty os
    ("linux/", "empty segment"),  # empty architecture
    ("linux//v7", "empty segment"),  # empty architecture between os and variant
    ("linux/arm/", "empty segment"),  # trailing slash: empty variant
    ("/", "empty segment"),  # two empty segments
    ("linux/amd 64", "invalid segment"),  # space inside a segment
    (" linux/amd64", "invalid os"),  # leading whitespace is not trimmed
    ("linux/amd64\n", "invalid segment"),  # trailing newline
    ("linux/amd64:latest", "invalid segment"),  # a reference, not a platform
    ("linux/arm/v7*", "invalid segment"),  # glob characters belong in patterns only
    ("linux,windows/amd64", "invalid os"),  # a list is not a platform
    ("windows()/amd64", "invalid os.version"),  # empty parentheses
    ("windows(10.0 17763)/amd64", "invalid os.version"),  # space inside the os.version
    ("windows(10.0.17763/amd64", "invalid os"),  # unbalanced parenthesis
    ("windows(10.0.17763)", "invalid characters"),  # os.version with no architecture
    ("windows", "names an os"),  # a lone os has no architecture to default to
    ("macos", "names an os"),  # the same for an os alias
    ("foo", "unknown architecture"),  # a lone segment must be a known architecture
    ("linüx/amd64", "invalid os"),  # non-ASCII letters
]


@pytest.mark.parametrize(("specifier", "problem"), INVALID_SPECIFIERS, ids=[repr(row[0]) for row in INVALID_SPECIFIERS])
def test_parse_rejects_invalid_specifiers_naming_the_input(specifier: str, problem: str) -> None:
    """Malformed specifiers raise PlatformError whose message quotes the specifier and says what is wrong."""
    with pytest.raises(PlatformError) as raised:
        parse(specifier)
    assert repr(specifier) in str(raised.value)
    assert problem in str(raised.value)


def test_parse_rejects_a_non_string() -> None:
    """A specifier that is not a string (e.g. a YAML number) is a PlatformError, not a TypeError."""
    with pytest.raises(PlatformError, match="expected a string, got int"):
        parse(386)  # type: ignore[arg-type]


def test_platform_error_is_a_value_error() -> None:
    """Callers may catch PlatformError as ValueError."""
    assert issubclass(PlatformError, ValueError)


NORMALIZE_CASES = [
    ("lower-cases-everything", P("LINUX", "AMD64", "V3"), P("linux", "amd64", "v3")),
    ("macos-is-darwin", P("MacOS", "arm64"), P("darwin", "arm64")),
    ("i386-drops-variant", P("linux", "i386", "v1"), P("linux", "386")),
    ("x86_64-v1-dropped", P("linux", "x86_64", "v1"), P("linux", "amd64")),
    ("arm64-v8.0-is-arm64", P("linux", "arm64", "v8.0"), P("linux", "arm64")),
    ("arm64-9.0-is-v9", P("linux", "arm64", "9.0"), P("linux", "arm64", "v9")),
    ("arm-empty-variant-is-v7", P("linux", "arm"), P("linux", "arm", "v7")),
    ("armel-forces-v6", P("linux", "armel", "v7"), P("linux", "arm", "v6")),
    ("unknown-variant-kept", P("linux", "arm", "v4"), P("linux", "arm", "v4")),
    ("unknown-arch-kept", P("Plan9", "MIPS64LE"), P("plan9", "mips64le")),
    (
        "os-version-and-features-kept",
        P("Windows", "AMD64", "", "10.0.17763.5576", ("win32k",)),
        P("windows", "amd64", "", "10.0.17763.5576", ("win32k",)),
    ),
]


@pytest.mark.parametrize(("_", "given_platform", "expected"), NORMALIZE_CASES, ids=_ids(NORMALIZE_CASES))
def test_normalize_applies_containerd_rules(_: str, given_platform: Platform, expected: Platform) -> None:
    """normalize returns a normalised copy and leaves os.version and os.features alone."""
    assert normalize(given_platform) == expected
    assert normalize(expected) == expected


# --- formatting and OCI objects -----------------------------------------------------------------

FORMAT_CASES = [
    ("os-arch", P("linux", "amd64"), "linux/amd64", "linux/amd64"),
    ("os-arch-variant", P("linux", "arm", "v7"), "linux/arm/v7", "linux/arm/v7"),
    ("windows-version", P("windows", "amd64", os_version="10.0.17763"), "windows/amd64", "windows(10.0.17763)/amd64"),
    (
        "windows-version-variant",
        P("windows", "arm64", "v8.2", "10.0.26100"),
        "windows/arm64/v8.2",
        "windows(10.0.26100)/arm64/v8.2",
    ),
    ("no-version-to-add", P("windows", "amd64"), "windows/amd64", "windows/amd64"),
]


@pytest.mark.parametrize(
    ("_", "platform", "plain", "with_version"), FORMAT_CASES, ids=_ids(FORMAT_CASES)
)
def test_str_and_format_platform(_: str, platform: Platform, plain: str, with_version: str) -> None:
    """str() omits the os.version; format_platform adds it in parentheses only when asked."""
    assert str(platform) == plain
    assert format_platform(platform) == plain
    assert format_platform(platform, with_os_version=True) == with_version


OCI_CASES = [
    ("minimal", {"os": "linux", "architecture": "amd64"}, P("linux", "amd64")),
    ("variant", {"os": "linux", "architecture": "arm", "variant": "v7"}, P("linux", "arm", "v7")),
    (
        "windows-all-fields",
        {"os": "windows", "architecture": "amd64", "os.version": "10.0.20348.2582", "os.features": ["win32k"]},
        P("windows", "amd64", "", "10.0.20348.2582", ("win32k",)),
    ),
]


@pytest.mark.parametrize(("_", "oci", "platform"), OCI_CASES, ids=_ids(OCI_CASES))
def test_to_oci_and_from_oci_round_trip(_: str, oci: dict[str, object], platform: Platform) -> None:
    """to_oci writes only the keys that have a value, and from_oci reads them back."""
    assert platform.to_oci() == oci
    assert from_oci(oci) == platform


FROM_OCI_NORMALISES = [
    ("image-config-aarch64", {"os": "linux", "architecture": "aarch64", "variant": "v8"}, P("linux", "arm64")),
    ("bare-arm", {"os": "linux", "architecture": "arm"}, P("linux", "arm", "v7")),
    (
        "null-optionals",
        {"os": "linux", "architecture": "amd64", "variant": None, "os.features": None},
        P("linux", "amd64"),
    ),
    (
        "extra-config-keys-ignored",
        {"os": "linux", "architecture": "amd64", "rootfs": {}, "config": {}},
        P("linux", "amd64"),
    ),
    ("attestation", {"os": "unknown", "architecture": "unknown"}, P("unknown", "unknown")),
]


@pytest.mark.parametrize(("_", "oci", "expected"), FROM_OCI_NORMALISES, ids=_ids(FROM_OCI_NORMALISES))
def test_from_oci_normalises(_: str, oci: dict[str, object], expected: Platform) -> None:
    """from_oci accepts index platform objects and image configs and returns the normalised platform."""
    assert from_oci(oci) == expected


FROM_OCI_INVALID = [
    ("missing-os", {"architecture": "amd64"}, "'os' missing"),
    ("missing-architecture", {"os": "linux"}, "'architecture' missing"),
    ("empty-os", {"os": "", "architecture": "amd64"}, "'os' must be a non-empty string, got \"\""),
    ("numeric-architecture", {"os": "linux", "architecture": 64}, "'architecture' must be a non-empty string, got 64"),
    ("object-os", {"os": {"name": "linux"}, "architecture": "amd64"},
     "'os' must be a non-empty string, got an object with 1 key"),
    ("list-variant", {"os": "linux", "architecture": "arm", "variant": ["v7"]},
     "'variant' must be a string, got an array of 1 item"),
    (
        "numeric-os-version",
        {"os": "windows", "architecture": "amd64", "os.version": 10},
        "'os.version' must be a string, got 10",
    ),
    (
        "string-os-features",
        {"os": "windows", "architecture": "amd64", "os.features": "win32k"},
        "'os.features' must be a list of strings, got \"win32k\"",
    ),
    (
        "os-features-with-a-number",
        {"os": "windows", "architecture": "amd64", "os.features": ["win32k", 3]},
        "'os.features' must be a list of strings, got an array holding 3",
    ),
]


@pytest.mark.parametrize(("_", "oci", "problem"), FROM_OCI_INVALID, ids=_ids(FROM_OCI_INVALID))
def test_from_oci_rejects_missing_or_mistyped_fields(_: str, oci: dict[str, object], problem: str) -> None:
    """from_oci raises PlatformError naming the field and what it held in JSON's terms, never the object it came
    from: an image config is mostly other fields (history, rootfs), and a Python dict is no message."""
    with pytest.raises(PlatformError) as raised:
        from_oci({**oci, "history": [{"created_by": "RUN make"}], "rootfs": {"type": "layers"}})
    message = str(raised.value)
    assert message == problem
    assert "{" not in message and "history" not in message


def test_from_oci_rejects_a_non_mapping() -> None:
    """A platform that is not a JSON object is refused with its JSON kind named."""
    with pytest.raises(PlatformError, match="^expected an object, got an array of 2 items$"):
        from_oci(["linux", "amd64"])  # type: ignore[arg-type]


# --- compatible vs strict -----------------------------------------------------------------------

# (id, host or required, candidate, is_compatible, matches_strict)
MATCH_CASES = [
    ("same-platform", "linux/amd64", "linux/amd64", True, True),
    ("other-os", "linux/amd64", "windows/amd64", False, False),
    ("darwin-is-not-linux", "linux/arm64", "darwin/arm64", False, False),
    ("other-arch", "linux/amd64", "linux/arm64", False, False),
    ("aliases-equal", "linux/x86_64", "linux/amd64", True, True),
    # amd64 levels
    ("amd64-runs-386", "linux/amd64", "linux/386", True, False),
    ("386-does-not-run-amd64", "linux/386", "linux/amd64", False, False),
    ("amd64-does-not-run-v2", "linux/amd64", "linux/amd64/v2", False, False),
    ("amd64-v3-runs-v2", "linux/amd64/v3", "linux/amd64/v2", True, False),
    ("amd64-v3-runs-v1", "linux/amd64/v3", "linux/amd64", True, False),
    ("amd64-v3-runs-386", "linux/amd64/v3", "linux/386", True, False),
    ("amd64-v2-does-not-run-v3", "linux/amd64/v2", "linux/amd64/v3", False, False),
    ("amd64-does-not-run-arm", "linux/amd64", "linux/arm/v7", False, False),
    # 32-bit ARM
    ("arm-v7-runs-v7", "linux/arm/v7", "linux/arm/v7", True, True),
    ("arm-v7-runs-v6", "linux/arm/v7", "linux/arm/v6", True, False),
    ("arm-v7-runs-v5", "linux/arm/v7", "linux/arm/v5", True, False),
    ("arm-v7-does-not-run-v8", "linux/arm/v7", "linux/arm/v8", False, False),
    ("arm-v7-does-not-run-arm64", "linux/arm/v7", "linux/arm64", False, False),
    ("arm-v6-does-not-run-v7", "linux/arm/v6", "linux/arm/v7", False, False),
    ("arm-v6-runs-v5", "linux/arm/v6", "linux/arm/v5", True, False),
    ("arm-v8-runs-v7", "linux/arm/v8", "linux/arm/v7", True, False),
    ("arm-v7-does-not-run-v4", "linux/arm/v7", "linux/arm/v4", False, False),
    ("bare-arm-is-v7", "linux/arm", "linux/arm/v7", True, True),
    ("armhf-is-arm-v7", "linux/armhf", "linux/arm/v7", True, True),
    ("armel-runs-v5-not-v7", "linux/armel", "linux/arm/v5", True, False),
    # arm64
    ("arm64-runs-arm64", "linux/arm64", "linux/arm64", True, True),
    ("arm64-runs-arm-v8", "linux/arm64", "linux/arm/v8", True, False),
    ("arm64-runs-arm-v7", "linux/arm64", "linux/arm/v7", True, False),
    ("arm64-runs-arm-v6", "linux/arm64", "linux/arm/v6", True, False),
    ("arm64-runs-arm-v5", "linux/arm64", "linux/arm/v5", True, False),
    ("arm64-does-not-run-amd64", "linux/arm64", "linux/amd64", False, False),
    ("arm64-does-not-run-v8.2", "linux/arm64", "linux/arm64/v8.2", False, False),
    ("arm64-v8.2-runs-v8.1", "linux/arm64/v8.2", "linux/arm64/v8.1", True, False),
    ("arm64-v8.2-runs-arm64", "linux/arm64/v8.2", "linux/arm64", True, False),
    ("arm64-v8.2-runs-arm-v7", "linux/arm64/v8.2", "linux/arm/v7", True, False),
    ("arm64-v9-runs-arm64-v8.5", "linux/arm64/v9", "linux/arm64/v8.5", True, False),
    ("arm64-v9-does-not-run-v8.6", "linux/arm64/v9", "linux/arm64/v8.6", False, False),
    ("arm64-v9.1-runs-v8.6", "linux/arm64/v9.1", "linux/arm64/v8.6", True, False),
    ("arm64-v9.1-runs-v9", "linux/arm64/v9.1", "linux/arm64/v9", True, False),
    ("arm64-v9-runs-arm64", "linux/arm64/v9", "linux/arm64", True, False),
    ("arm64-v9-runs-arm-v8", "linux/arm64/v9", "linux/arm/v8", True, False),
    ("arm64-v9-does-not-run-arm-v9", "linux/arm64/v9", "linux/arm/v9", False, False),
    ("arm64-does-not-run-v9", "linux/arm64", "linux/arm64/v9", False, False),
    ("arm-v7-host-does-not-run-arm64", "linux/arm/v7", "linux/arm64/v8", False, False),
    # architectures without fallbacks
    ("ppc64le-only-itself", "linux/ppc64le", "linux/ppc64le", True, True),
    ("ppc64le-does-not-run-ppc64", "linux/ppc64le", "linux/ppc64", False, False),
    ("s390x-does-not-run-386", "linux/s390x", "linux/386", False, False),
    ("386-does-not-run-other-386-variant", "linux/amd64", "linux/386/sse2", False, False),
    # regression: kaniko / oras-go / containers/image did not treat arm64 and arm64/v8 as the same
    ("regression-kaniko-arm64-entry-matches-arm64-v8", "linux/arm64/v8", "linux/arm64", True, True),
    ("regression-oras-arm64-v8-entry-matches-arm64", "linux/arm64", "linux/arm64/v8", True, True),
    ("regression-containers-image-aarch64-v8", "linux/aarch64/8", "linux/arm64", True, True),
]


@pytest.mark.parametrize(
    ("_", "host", "candidate", "compatible", "strict"), MATCH_CASES, ids=_ids(MATCH_CASES)
)
def test_compatible_and_strict_matching(_: str, host: str, candidate: str, compatible: bool, strict: bool) -> None:
    """Each fallback of containerd's Only holds in compatible mode and none of them in strict mode."""
    host_platform, candidate_platform = parse(host), parse(candidate)
    assert is_compatible(host_platform, candidate_platform) is compatible
    assert matches_strict(host_platform, candidate_platform) is strict
    assert satisfies(host_platform, candidate_platform, strict=False) is compatible
    assert satisfies(host_platform, candidate_platform, strict=True) is strict


@pytest.mark.parametrize(("_", "host", "candidate", "compatible", "strict"), MATCH_CASES, ids=_ids(MATCH_CASES))
def test_matching_ignores_spelling(_: str, host: str, candidate: str, compatible: bool, strict: bool) -> None:
    """Matching normalises its inputs itself: un-normalised upper-case platforms match the same way."""
    raw_host = Platform(*(part.upper() for part in _split(host)))
    raw_candidate = Platform(*(part.upper() for part in _split(candidate)))
    assert is_compatible(raw_host, raw_candidate) is compatible
    assert matches_strict(raw_host, raw_candidate) is strict


def _split(specifier: str) -> list[str]:
    return specifier.split("/")


# (id, host os.version, candidate os.version, is_compatible)
WINDOWS_CASES = [
    ("ltsc2019-same-build", "10.0.17763", "10.0.17763.5576", True),
    ("ltsc2019-same-build-other-revision", "10.0.17763.1000", "10.0.17763.5576", True),
    ("ltsc2019-newer-container", "10.0.17763", "10.0.20348.2582", False),
    ("ltsc2019-older-container", "10.0.17763", "10.0.14393.1000", False),
    ("ltsc2022-same-build", "10.0.20348", "10.0.20348.2582", True),
    ("ltsc2022-older-than-stable-abi", "10.0.20348", "10.0.17763.5576", False),
    ("ltsc2025-runs-ltsc2022", "10.0.26100", "10.0.20348.2582", True),
    ("ltsc2025-runs-own-build", "10.0.26100.1000", "10.0.26100.2894", True),
    ("ltsc2022-does-not-run-ltsc2025", "10.0.20348", "10.0.26100.2894", False),
    ("ltsc2025-does-not-run-ltsc2019", "10.0.26100", "10.0.17763.5576", False),
    ("win11-runs-ltsc2022", "10.0.22621", "10.0.20348.2582", True),
    ("other-major-minor", "10.0.20348", "11.0.20348", False),
    ("empty-host-version", "", "10.0.17763.5576", True),
    ("empty-candidate-version", "10.0.17763", "", True),
    ("both-empty", "", "", True),
    ("unreadable-version-only-equal", "10.0", "10.0.17763", False),
    ("unreadable-version-equal-string", "10.0", "10.0", True),
]


@pytest.mark.parametrize(
    ("_", "host_version", "candidate_version", "compatible"), WINDOWS_CASES, ids=_ids(WINDOWS_CASES)
)
def test_windows_os_version_compatibility(
    _: str, host_version: str, candidate_version: str, compatible: bool
) -> None:
    """Windows hosts before build 20348 need their own build; later hosts run 20348 up to their own."""
    host = Platform("windows", "amd64", os_version=host_version)
    candidate = Platform("windows", "amd64", os_version=candidate_version)
    assert is_compatible(host, candidate) is compatible


def test_os_version_is_ignored_for_compatibility_outside_windows() -> None:
    """containerd applies os.version rules only to Windows; a linux os.version never blocks a match."""
    assert is_compatible(Platform("linux", "amd64", os_version="1"), Platform("linux", "amd64", os_version="2"))


def test_windows_arch_rules_still_apply() -> None:
    """A Windows host with a matching os.version still needs a runnable architecture."""
    host = parse("windows(10.0.20348)/amd64")
    assert not is_compatible(host, parse("windows(10.0.20348)/arm64"))


# (id, required, candidate, matches_strict)
STRICT_OS_VERSION_CASES = [
    ("same-build-revision-on-one-side", "10.0.17763", "10.0.17763.5576", True),
    ("same-build-same-revision", "10.0.17763.5576", "10.0.17763.5576", True),
    ("same-build-other-revision", "10.0.17763.1000", "10.0.17763.5576", False),
    ("other-build", "10.0.20348", "10.0.26100.1", False),
    ("required-without-version", "", "10.0.17763.5576", True),
    ("candidate-without-version", "10.0.17763", "", True),
]


@pytest.mark.parametrize(
    ("_", "required_version", "candidate_version", "strict"),
    STRICT_OS_VERSION_CASES,
    ids=_ids(STRICT_OS_VERSION_CASES),
)
def test_strict_matching_compares_windows_os_version(
    _: str, required_version: str, candidate_version: str, strict: bool
) -> None:
    """Strict matching wants the same Windows build when both sides carry an os.version."""
    required = Platform("windows", "amd64", os_version=required_version)
    candidate = Platform("windows", "amd64", os_version=candidate_version)
    assert matches_strict(required, candidate) is strict


def test_strict_matching_compares_other_os_versions_exactly() -> None:
    """Outside Windows, two os.versions only match strictly when they are the same string."""
    assert not matches_strict(Platform("linux", "amd64", os_version="1"), Platform("linux", "amd64", os_version="2"))
    assert matches_strict(Platform("linux", "amd64", os_version="1"), Platform("linux", "amd64", os_version="1"))


def test_os_features_are_not_compared() -> None:
    """os.features are carried along but take no part in matching."""
    required = Platform("windows", "amd64")
    candidate = Platform("windows", "amd64", os_features=("win32k",))
    assert matches_strict(required, candidate) and is_compatible(required, candidate)


# --- not platforms ------------------------------------------------------------------------------

UNKNOWN_CASES = [
    ("attestation-unknown-unknown", P("unknown", "unknown"), True),
    ("unknown-os", P("unknown", "amd64"), True),
    ("unknown-arch", P("linux", "unknown"), True),
    ("upper-case-unknown", P("UNKNOWN", "Unknown"), True),
    ("empty-os", P("", "amd64"), True),
    ("empty-arch", P("linux", ""), True),
    ("linux-amd64", P("linux", "amd64"), False),
    ("windows-with-version", P("windows", "amd64", os_version="10.0.17763"), False),
]


@pytest.mark.parametrize(("_", "platform", "unknown"), UNKNOWN_CASES, ids=_ids(UNKNOWN_CASES))
def test_is_unknown(_: str, platform: Platform, unknown: bool) -> None:
    """BuildKit attestation entries and platforms with an unknown or empty os or arch are unknown."""
    assert is_unknown(platform) is unknown


UNKNOWN_PAIRS = [
    ("regression-multiarch-tuning-attestation-as-candidate", P("linux", "amd64"), P("unknown", "unknown")),
    ("attestation-as-required", P("unknown", "unknown"), P("unknown", "unknown")),
    ("unknown-arch-same-os", P("linux", "unknown"), P("linux", "unknown")),
    ("empty-arch", P("linux", ""), P("linux", "")),
]


@pytest.mark.parametrize(("_", "required", "candidate"), UNKNOWN_PAIRS, ids=_ids(UNKNOWN_PAIRS))
@pytest.mark.parametrize("strict", [False, True], ids=["compatible", "strict"])
def test_unknown_platforms_never_satisfy(_: str, required: Platform, candidate: Platform, strict: bool) -> None:
    """An unknown platform satisfies nothing and is satisfied by nothing, even by itself."""
    assert not satisfies(required, candidate, strict=strict)
    assert best_candidate(required, [candidate], strict=strict) is None


# --- ranking ------------------------------------------------------------------------------------

# (id, host, candidates in any order, the order rank_key must give to the satisfying ones)
RANK_CASES = [
    (
        "exact-before-fallback-amd64",
        "linux/amd64",
        ["linux/386", "linux/amd64"],
        ["linux/amd64", "linux/386"],
    ),
    (
        "amd64-v3-higher-level-first",
        "linux/amd64/v3",
        ["linux/386", "linux/amd64", "linux/amd64/v2", "linux/amd64/v3"],
        ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"],
    ),
    (
        "arm-v7-higher-variant-first",
        "linux/arm/v7",
        ["linux/arm/v5", "linux/arm/v6", "linux/arm/v7"],
        ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"],
    ),
    (
        "arm64-prefers-64-bit-then-higher-arm",
        "linux/arm64",
        ["linux/arm/v5", "linux/arm/v7", "linux/arm/v6", "linux/arm64", "linux/arm/v8"],
        ["linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"],
    ),
    (
        "arm64-v8.2-minor-variants-first",
        "linux/arm64/v8.2",
        ["linux/arm/v7", "linux/arm64", "linux/arm64/v8.1", "linux/arm64/v8.2"],
        ["linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64", "linux/arm/v7"],
    ),
    (
        "arm64-v9.1-v9-before-v8",
        "linux/arm64/v9.1",
        ["linux/arm64", "linux/arm64/v8.6", "linux/arm64/v9", "linux/arm/v8", "linux/arm64/v9.1"],
        ["linux/arm64/v9.1", "linux/arm64/v9", "linux/arm64/v8.6", "linux/arm64", "linux/arm/v8"],
    ),
    (
        "windows-closest-build-then-higher-revision-then-unversioned",
        "windows(10.0.26100)/amd64",
        [
            "windows/amd64",
            "windows(10.0.20348.2582)/amd64",
            "windows(10.0.26100.1)/amd64",
            "windows(10.0.26100.2894)/amd64",
        ],
        [
            "windows(10.0.26100.2894)/amd64",
            "windows(10.0.26100.1)/amd64",
            "windows(10.0.20348.2582)/amd64",
            "windows/amd64",
        ],
    ),
    (
        "windows-host-without-version-prefers-higher",
        "windows/amd64",
        ["windows(10.0.17763.5576)/amd64", "windows(10.0.20348.2582)/amd64", "windows(10.0.20348.3000)/amd64"],
        ["windows(10.0.20348.3000)/amd64", "windows(10.0.20348.2582)/amd64", "windows(10.0.17763.5576)/amd64"],
    ),
]


@pytest.mark.parametrize(("_", "host", "candidates", "expected_order"), RANK_CASES, ids=_ids(RANK_CASES))
def test_rank_key_orders_exact_then_higher_variant(
    _: str, host: str, candidates: list[str], expected_order: list[str]
) -> None:
    """Sorting satisfying candidates by rank_key puts the exact match first, then higher variants or builds."""
    host_platform = parse(host)
    ranked = sorted((parse(candidate) for candidate in candidates), key=lambda c: rank_key(host_platform, c))
    assert [format_platform(p, with_os_version=True) for p in ranked] == expected_order


def test_rank_key_puts_unsatisfying_candidates_last() -> None:
    """A candidate the host cannot run sorts after every candidate it can run."""
    host = parse("linux/arm/v7")
    assert rank_key(host, parse("linux/arm/v5")) < rank_key(host, parse("linux/arm64"))


# (id, host, candidates, strict, expected index)
BEST_CASES = [
    ("exact-wins-over-earlier-fallback", "linux/amd64", ["linux/386", "linux/amd64"], False, 1),
    ("fallback-when-no-exact", "linux/arm64", ["linux/amd64", "linux/arm/v6", "linux/arm/v7"], False, 2),
    ("strict-refuses-fallback", "linux/arm64", ["linux/amd64", "linux/arm/v7"], True, None),
    ("strict-finds-exact", "linux/arm64/v8", ["linux/arm/v7", "linux/arm64"], True, 1),
    ("first-among-equals", "linux/amd64", ["linux/amd64", "linux/x86_64"], False, 0),
    ("nothing-runs", "linux/s390x", ["linux/amd64", "linux/arm64"], False, None),
    ("empty-list", "linux/amd64", [], False, None),
    ("attestation-skipped", "linux/amd64", ["unknown/unknown", "linux/amd64"], False, 1),
    ("arm-v6-host-skips-v7", "linux/arm/v6", ["linux/arm/v7", "linux/arm/v5"], False, 1),
    (
        "windows-ltsc2019-needs-its-build",
        "windows(10.0.17763)/amd64",
        ["windows(10.0.20348.2582)/amd64", "windows(10.0.17763.5576)/amd64"],
        False,
        1,
    ),
    (
        "windows-strict-highest-revision",
        "windows(10.0.17763)/amd64",
        ["windows(10.0.17763.1)/amd64", "windows(10.0.17763.5576)/amd64"],
        True,
        1,
    ),
]


@pytest.mark.parametrize(("_", "host", "candidates", "strict", "expected"), BEST_CASES, ids=_ids(BEST_CASES))
def test_best_candidate(_: str, host: str, candidates: list[str], strict: bool, expected: int | None) -> None:
    """best_candidate returns the index of the best satisfying candidate, or None when none satisfies."""
    assert best_candidate(parse(host), [parse(c) for c in candidates], strict=strict) == expected


# --- forbid patterns ----------------------------------------------------------------------------

# (id, pattern, platform, matches)
PATTERN_CASES = [
    ("windows-star-windows", "windows/*", "windows/amd64", True),
    ("windows-star-linux", "windows/*", "linux/amd64", False),
    ("lone-os", "windows", "windows(10.0.17763)/amd64", True),
    ("lone-os-other", "windows", "linux/amd64", False),
    ("lone-arch-is-any-os", "386", "linux/386", True),
    ("lone-arch-alias", "aarch64", "darwin/arm64", True),
    ("lone-arch-other", "386", "linux/amd64", False),
    ("star-matches-everything", "*", "linux/s390x", True),
    ("star-386", "*/386", "linux/386", True),
    ("star-386-not-amd64", "*/386", "linux/amd64", False),
    ("linux-arm-any-variant-v7", "linux/arm", "linux/arm/v7", True),
    ("linux-arm-any-variant-v5", "linux/arm", "linux/arm/v5", True),
    ("linux-arm-not-arm64", "linux/arm", "linux/arm64", False),
    ("linux-arm-v5-exact", "linux/arm/v5", "linux/arm/v5", True),
    ("linux-arm-v5-not-v7", "linux/arm/v5", "linux/arm/v7", False),
    ("variant-digit-normalised", "linux/arm/5", "linux/arm/v5", True),
    ("arch-alias-aarch64", "linux/aarch64", "linux/arm64", True),
    ("arch-alias-x86_64", "linux/x86_64", "linux/amd64/v3", True),
    ("arch-alias-armhf-implies-v7", "linux/armhf", "linux/arm/v7", True),
    ("arch-alias-armhf-not-v6", "linux/armhf", "linux/arm/v6", False),
    ("arch-alias-armel-implies-v6", "linux/armel", "linux/arm/v6", True),
    ("no-default-variant-for-arm64", "linux/arm64", "linux/arm64/v8.2", True),
    ("arm64-v8-pattern-is-baseline", "linux/arm64/v8", "linux/arm64", True),
    ("arm64-v8-pattern-not-v8.2", "linux/arm64/v8", "linux/arm64/v8.2", False),
    ("amd64-v1-pattern-is-baseline", "linux/amd64/v1", "linux/amd64", True),
    ("amd64-v1-pattern-not-v3", "linux/amd64/v1", "linux/amd64/v3", False),
    ("variant-glob", "linux/arm/v[56]", "linux/arm/v6", True),
    ("variant-glob-miss", "linux/arm/v[56]", "linux/arm/v7", False),
    ("arch-glob", "linux/arm*", "linux/arm64", True),
    ("question-mark", "linux/s390?", "linux/s390x", True),
    ("pattern-case-insensitive", "WINDOWS/*", "windows/amd64", True),
    ("os-alias-macos", "macos/*", "darwin/arm64", True),
    ("platform-normalised-first", "linux/arm64", "LINUX/AARCH64", True),
    ("attestation-matches-nothing", "*", "unknown/unknown", False),
    ("attestation-matches-nothing-explicit", "unknown/unknown", "unknown/unknown", False),
]


@pytest.mark.parametrize(("_", "pattern", "platform", "expected"), PATTERN_CASES, ids=_ids(PATTERN_CASES))
def test_matches_pattern(_: str, pattern: str, platform: str, expected: bool) -> None:
    """Forbid patterns compare fnmatch segments with the normalised platform, adding no default variant."""
    target = Platform(*_split_with_version(platform))
    assert matches_pattern(pattern, target) is expected


def _split_with_version(specifier: str) -> tuple[str, ...]:
    """Split without normalising, so that the platform reaches matches_pattern as written."""
    os_part, *rest = specifier.split("/")
    if "(" in os_part:
        os_name, version = os_part.rstrip(")").split("(")
        return (os_name, rest[0], rest[1] if len(rest) > 1 else "", version)
    return (os_part, *rest)


INVALID_PATTERNS = [
    ("", "empty"),  # nothing at all
    ("linux/arm/v7/x", "4 segments"),  # more than os/arch/variant
    ("*/*/*/*", "4 segments"),  # globs do not excuse a fourth segment
    ("linux/", "empty segment"),  # trailing slash
    ("/amd64", "empty segment"),  # no os segment
    ("linux//v7", "empty segment"),  # empty architecture
    ("linux/amd 64", "invalid segment"),  # space
    ("windows(10.0.17763)/*", "invalid segment"),  # os.version is not part of a pattern
    ("linux/amd64,linux/arm64", "invalid segment"),  # a list, not a pattern
]


@pytest.mark.parametrize(("pattern", "problem"), INVALID_PATTERNS, ids=[repr(row[0]) for row in INVALID_PATTERNS])
def test_validate_pattern_rejects_invalid_patterns(pattern: str, problem: str) -> None:
    """validate_pattern and matches_pattern raise PlatformError naming the pattern and the problem."""
    with pytest.raises(PlatformError) as raised:
        validate_pattern(pattern)
    assert repr(pattern) in str(raised.value) and problem in str(raised.value)
    with pytest.raises(PlatformError):
        matches_pattern(pattern, parse("linux/amd64"))


@pytest.mark.parametrize("pattern", [row[1] for row in PATTERN_CASES], ids=_ids(PATTERN_CASES))
def test_validate_pattern_accepts_valid_patterns(pattern: str) -> None:
    """Every pattern used in the matching table is valid."""
    assert validate_pattern(pattern) is None


def test_validate_pattern_rejects_a_non_string() -> None:
    """A pattern that is not a string is a PlatformError naming its type."""
    with pytest.raises(PlatformError, match="expected a string, got list"):
        validate_pattern(["windows/*"])  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------------

_OS_NAMES = st.sampled_from(["linux", "LINUX", "windows", "darwin", "macos", "MacOS", "freebsd", "plan9"])
_ARCHITECTURES = st.sampled_from(
    ["amd64", "x86_64", "X86-64", "i386", "386", "arm", "ARM", "armhf", "armel", "arm64", "aarch64", "ppc64le", "s390x"]
)
_VARIANTS = st.sampled_from(
    ["", "1", "v1", "2", "v3", "5", "6", "7", "V7", "8", "v8", "v8.0", "v8.2", "9", "9.0", "v9.0", "v9.3", "sse2"]
)
_OS_VERSIONS = st.sampled_from(["", "10.0.17763", "10.0.20348.2582", "10.0.26100.1"])
_PLATFORMS = st.builds(Platform, os=_OS_NAMES, architecture=_ARCHITECTURES, variant=_VARIANTS, os_version=_OS_VERSIONS)
_SEGMENT_TEXT = st.text(alphabet="abcdefxyz0123456789_.-ABC", min_size=1, max_size=8)


@settings(database=None, max_examples=300, deadline=None)
@given(_PLATFORMS)
def test_normalize_is_idempotent(platform: Platform) -> None:
    """Normalising a normalised platform changes nothing."""
    once = normalize(platform)
    assert normalize(once) == once


@settings(database=None, max_examples=300, deadline=None)
@given(_PLATFORMS)
def test_format_then_parse_gives_the_normalised_platform(platform: Platform) -> None:
    """parse(format_platform(p, with_os_version=True)) is normalize(p) for any spelling of p."""
    assert parse(format_platform(platform, with_os_version=True)) == normalize(platform)


@settings(database=None, max_examples=300, deadline=None)
@given(st.lists(_SEGMENT_TEXT, min_size=2, max_size=3))
def test_parse_str_parse_round_trips_for_any_valid_segments(segments: list[str]) -> None:
    """Any two or three valid segments parse, and the formatted result parses to the same platform."""
    parsed = parse("/".join(segments))
    assert parse(str(parsed)) == parsed


@settings(database=None, max_examples=200, deadline=None)
@given(_PLATFORMS, _PLATFORMS)
def test_strict_match_implies_compatible(required: Platform, candidate: Platform) -> None:
    """Whatever matches strictly is also compatible, and a platform is always compatible with itself."""
    if matches_strict(required, candidate):
        assert is_compatible(required, candidate)
    assert is_compatible(required, required)
