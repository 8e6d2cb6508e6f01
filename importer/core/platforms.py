"""Parse, normalise, format, match and rank OCI platforms, with containerd's semantics.

Use it like this::

    host = parse("linux/arm64")                   # Platform(os="linux", architecture="arm64")
    offered = [parse(s) for s in ("linux/amd64", "linux/arm/v7")]
    best_candidate(host, offered)                 # 1: an arm64 node runs arm/v7 images

Everything here is pure (no I/O, no clock, no globals that change). A `Platform` mirrors the OCI
platform object; `parse`, `from_oci` and `normalize` always return the normalised form, and
`PlatformError` (a `ValueError`) names the input that was refused.

Three questions are kept apart (as in regclient):

- *are they the same?*        `matches_strict(required, candidate)` — policy `match: strict`
- *can this host run that?*   `is_compatible(host, candidate)`      — policy `match: compatible`
- *which one is better?*      `rank_key(host, candidate)`, `best_candidate(host, candidates)`

`satisfies(required, candidate, strict=...)` picks the first or the second question.
`matches_pattern(pattern, platform)` answers policy `forbid` patterns such as ``"windows/*"``.

Specifiers
----------
``os/arch[/variant]``, case-insensitive, segments made of ``A-Z a-z 0-9 _ . -``:

====================================  ===============================================
``linux/amd64``, ``linux/arm64/v8``    os, architecture and optional variant
``arm64``                              a single segment is an architecture; os is linux
``windows(10.0.17763)/amd64``          ``os.version`` in parentheses after the os
====================================  ===============================================

``str(platform)`` gives ``os/arch[/variant]`` without the os.version;
``format_platform(platform, with_os_version=True)`` adds it back in parentheses.

Normalisation (lower-case first; the table `_ARCHITECTURE_ALIASES` below is the single source)
----------------------------------------------------------------------------------------------
==========================  ===================  =========================================
input                       normalised           note
==========================  ===================  =========================================
os ``macos``                ``darwin``
``i386``                    ``386``              variant dropped
``x86_64``, ``x86-64``      ``amd64``
``amd64/v1``, ``amd64/1``   ``amd64``            v1 is the baseline, written without variant
``aarch64``                 ``arm64``
``arm64/8``, ``/v8``,       ``arm64``            so ``linux/arm64/v8`` ≡ ``linux/arm64``
``/v8.0``
``arm64/9``, ``/9.0``,      ``arm64/v9``
``/v9.0``
``armhf``                   ``arm/v7``
``armel``                   ``arm/v6``
``arm``, ``arm/7``          ``arm/v7``           bare ``arm`` means v7
``arm/5``, ``/6``, ``/8``   ``arm/v5``, …        a bare digit gets its ``v``
==========================  ===================  =========================================

Two small additions to containerd, both harmless: a bare-digit variant of ``amd64`` or ``arm64``
gets its ``v`` too (``amd64/3`` → ``amd64/v3``, ``arm64/8.2`` → ``arm64/v8.2``).

Compatible fallbacks (containerd ``Only``), best first
-------------------------------------------------------
- ``amd64/vN`` runs ``amd64/vN``, ``vN-1`` … ``v1`` (= ``amd64``), then ``386``.
- ``arm/vN`` runs ``arm/vN``, ``vN-1`` … ``v5`` (so ``arm/v6`` does not run ``arm/v7``).
- ``arm64`` (= ``v8``) and ``arm64/v8.x`` run lower ``arm64/v8.y``, then 32-bit ``arm/v8``, ``v7``,
  ``v6``, ``v5``. ``arm64/v9.x`` runs ``v9.x`` … ``v9``, then ``v8.(x+5)`` … ``v8`` (ARMv9.0 forked
  from ARMv8.5), then the 32-bit ARM list.
- Any other architecture runs only itself. The os must always be equal.

Strict matching allows none of these: normalised os, architecture and variant must be equal.

Windows ``os.version`` (``major.minor.build[.revision]``, only for os ``windows``)
----------------------------------------------------------------------------------
- An empty os.version on either side matches anything.
- Major and minor must be equal. Hosts before build 20348 (Windows Server 2022) need the same build;
  hosts from 20348 on run container builds from 20348 up to their own build.
- Ranking prefers the build closest to the host's (the highest that runs), then the higher revision,
  and puts candidates without an os.version last.
- Strict matching, when both sides carry a version, wants the same major.minor.build, and the same
  revision when both give one (``10.0.17763`` strictly matches ``10.0.17763.5576``).
- os.features are carried along but never compared.

Not platforms
-------------
``unknown/unknown`` (BuildKit attestation entries) and platforms with an empty os or architecture are
`is_unknown`; they never satisfy and never are satisfied, and match no forbid pattern.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from importer.core.excerpts import json_excerpt

__all__ = [
    "KNOWN_ARCHITECTURES",
    "KNOWN_OPERATING_SYSTEMS",
    "Platform",
    "PlatformError",
    "best_candidate",
    "format_platform",
    "from_oci",
    "is_compatible",
    "is_unknown",
    "matches_pattern",
    "matches_strict",
    "normalize",
    "parse",
    "rank_key",
    "satisfies",
    "validate_pattern",
]


@dataclass(frozen=True, slots=True)
class Platform:
    """One OCI platform; field names follow the OCI JSON (``os.version`` → `os_version`)."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    def __str__(self) -> str:
        """Return ``os/arch[/variant]``, e.g. ``linux/arm/v7`` (os.version left out)."""
        if self.variant:
            return f"{self.os}/{self.architecture}/{self.variant}"
        return f"{self.os}/{self.architecture}"

    def to_oci(self) -> dict[str, object]:
        """Return the OCI platform object; optional keys only when they have a value."""
        oci: dict[str, object] = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            oci["variant"] = self.variant
        if self.os_version:
            oci["os.version"] = self.os_version
        if self.os_features:
            oci["os.features"] = list(self.os_features)
        return oci


class PlatformError(ValueError):
    """A platform specifier, OCI platform object or pattern that cannot be used; names the input."""


# Values known to Go (and so to containerd); used to read a single-segment specifier or pattern.
KNOWN_OPERATING_SYSTEMS: frozenset[str] = frozenset(
    {
        "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js",
        "linux", "nacl", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows", "zos",
    }
)
KNOWN_ARCHITECTURES: frozenset[str] = frozenset(
    {
        "386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "loong64", "mips",
        "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "ppc64", "ppc64le",
        "riscv", "riscv64", "s390", "s390x", "sparc", "sparc64", "wasm",
    }
)

# The alias table, in one place: other spelling → (architecture, implied variant or None to keep).
_ARCHITECTURE_ALIASES: dict[str, tuple[str, str | None]] = {
    "i386": ("386", ""),
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "aarch64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
}
_OS_ALIASES: dict[str, str] = {"macos": "darwin"}
# Per architecture: variants that mean the baseline (written as no variant) or have one spelling.
_VARIANT_ALIASES: dict[str, dict[str, str]] = {
    "amd64": {"v1": ""},
    "arm64": {"v8": "", "v8.0": "", "v9.0": "v9"},
    "arm": {"": "v7"},
}
_ARCHITECTURES_WITH_DIGIT_VARIANTS = frozenset({"amd64", "arm", "arm64"})

_SEGMENT = re.compile(r"[a-z0-9_.-]+")
_OS_SEGMENT = re.compile(r"(?P<os>[a-z0-9_.-]+)(?:\((?P<version>[^()]*)\))?")
_OS_VERSION = re.compile(r"[a-z0-9_.]+")
_PATTERN_SEGMENT = re.compile(r"[a-z0-9_.*?!\[\]-]+")
_GLOB_CHARACTERS = frozenset("*?[")
_DIGITS_VARIANT = re.compile(r"\d+(?:\.\d+)?")
_NUMBERED_VARIANT = re.compile(r"v(?P<major>\d+)(?:\.(?P<minor>\d+))?")

_WINDOWS = "windows"
_UNKNOWN = "unknown"
# Windows Server 2022 (ltsc2022, build 20348) started the stable container ABI.
_WINDOWS_STABLE_ABI_BUILD = 20348
_LOWEST_ARM_VARIANT = 5
# ARMv9.0 forked from ARMv8.5, so arm64/v9.x runs what arm64/v8.(x+5) runs.
_ARM64_V9_TO_V8_MINOR_OFFSET = 5
_ARM32_VARIANT_RUN_BY_ARM64 = 8


# --- parse, normalise, format -------------------------------------------------------------------


def parse(specifier: str) -> Platform:
    """Parse ``os/arch[/variant]`` (or a bare architecture, or ``os(version)/arch``) and normalise it."""
    if not isinstance(specifier, str):
        raise PlatformError(f"platform specifier {specifier!r}: expected a string, got {type(specifier).__name__}")
    if not specifier:
        raise PlatformError("platform specifier '': empty, expected os/arch[/variant]")
    segments = specifier.lower().split("/")
    if len(segments) > 3:
        raise PlatformError(f"platform specifier {specifier!r}: {len(segments)} segments, expected os/arch[/variant]")
    if any(not segment for segment in segments):
        raise PlatformError(f"platform specifier {specifier!r}: empty segment, expected os/arch[/variant]")

    if len(segments) == 1:
        return _parse_bare_architecture(specifier, segments[0])

    os_segment, architecture, *rest = segments
    os_match = _OS_SEGMENT.fullmatch(os_segment)
    if os_match is None:
        raise PlatformError(f"platform specifier {specifier!r}: invalid os {os_segment!r}")
    os_version = os_match["version"]
    if os_version is not None and not _OS_VERSION.fullmatch(os_version):
        raise PlatformError(
            f"platform specifier {specifier!r}: invalid os.version {os_version!r} "
            "(expected e.g. windows(10.0.17763)/amd64)"
        )
    for segment in (architecture, *rest):
        if not _SEGMENT.fullmatch(segment):
            raise PlatformError(
                f"platform specifier {specifier!r}: invalid segment {segment!r} (allowed: a-z 0-9 _ . -)"
            )
    return normalize(
        Platform(
            os=os_match["os"],
            architecture=architecture,
            variant=rest[0] if rest else "",
            os_version=os_version or "",
        )
    )


def _parse_bare_architecture(specifier: str, segment: str) -> Platform:
    if not _SEGMENT.fullmatch(segment):
        raise PlatformError(f"platform specifier {specifier!r}: invalid characters (allowed: a-z 0-9 _ . -)")
    platform = normalize(Platform(os="linux", architecture=segment))
    if platform.architecture in KNOWN_ARCHITECTURES:
        return platform
    if segment in KNOWN_OPERATING_SYSTEMS or segment in _OS_ALIASES:
        raise PlatformError(
            f"platform specifier {specifier!r}: names an os without an architecture, write e.g. {segment}/amd64"
        )
    raise PlatformError(
        f"platform specifier {specifier!r}: unknown architecture (a single segment is an architecture, "
        "os defaults to linux); write os/arch[/variant]"
    )


def normalize(platform: Platform) -> Platform:
    """Return a normalised copy: lower-case, aliases resolved, default variants applied (see table above)."""
    os_name = platform.os.lower()
    os_name = _OS_ALIASES.get(os_name, os_name)
    architecture, variant = _normalize_architecture(platform.architecture, platform.variant)
    return replace(platform, os=os_name, architecture=architecture, variant=variant)


def _normalize_architecture(architecture: str, variant: str) -> tuple[str, str]:
    architecture, variant = architecture.lower(), variant.lower()
    if architecture in _ARCHITECTURE_ALIASES:
        architecture, implied_variant = _ARCHITECTURE_ALIASES[architecture]
        if implied_variant is not None:
            variant = implied_variant
    if architecture in _ARCHITECTURES_WITH_DIGIT_VARIANTS and _DIGITS_VARIANT.fullmatch(variant):
        variant = "v" + variant
    variant = _VARIANT_ALIASES.get(architecture, {}).get(variant, variant)
    return architecture, variant


def from_oci(obj: Mapping[str, object]) -> Platform:
    """Read an OCI platform object (or the same fields of an image config) and normalise it.

    PlatformError names the field and what it held (`'os' must be a non-empty string, got ""`), never the object
    itself: an image config is mostly other fields (history, rootfs), and the caller says where the object was.
    """
    if not isinstance(obj, Mapping):
        raise PlatformError(f"expected an object, got {json_excerpt(obj)}")
    os_name = _required_text(obj, "os")
    architecture = _required_text(obj, "architecture")
    variant = _optional_text(obj, "variant")
    os_version = _optional_text(obj, "os.version")
    features = obj.get("os.features")
    if features is None:
        os_features: tuple[str, ...] = ()
    elif isinstance(features, list) and all(isinstance(feature, str) for feature in features):
        os_features = tuple(features)
    else:
        raise PlatformError(f"'os.features' must be a list of strings, got {_shown(features)}")
    return normalize(Platform(os_name, architecture, variant, os_version, os_features))


def _shown(value: object) -> str:
    if isinstance(value, list):  # say which item is wrong rather than only that it is a list
        wrong = next((item for item in value if not isinstance(item, str)), None)
        return f"an array holding {json_excerpt(wrong)}"
    return json_excerpt(value)


def _required_text(obj: Mapping[str, object], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        problem = "missing" if value is None else f"must be a non-empty string, got {json_excerpt(value)}"
        raise PlatformError(f"{key!r} {problem}")
    return value


def _optional_text(obj: Mapping[str, object], key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PlatformError(f"{key!r} must be a string, got {json_excerpt(value)}")
    return value


def format_platform(platform: Platform, *, with_os_version: bool = False) -> str:
    """Return ``os/arch[/variant]``, or ``os(version)/arch[/variant]`` when asked and a version is set."""
    if with_os_version and platform.os_version:
        text = f"{platform.os}({platform.os_version})/{platform.architecture}"
        return f"{text}/{platform.variant}" if platform.variant else text
    return str(platform)


# --- matching and ranking -----------------------------------------------------------------------


def is_unknown(platform: Platform) -> bool:
    """True for BuildKit's ``unknown/unknown`` attestation entries and for an unknown or empty os or arch."""
    normalized = normalize(platform)
    return normalized.os in ("", _UNKNOWN) or normalized.architecture in ("", _UNKNOWN)


def matches_strict(required: Platform, candidate: Platform) -> bool:
    """True when normalised os, architecture and variant are equal (and os.version, when both have one)."""
    if is_unknown(required) or is_unknown(candidate):
        return False
    required, candidate = normalize(required), normalize(candidate)
    if (required.os, required.architecture, required.variant) != (
        candidate.os,
        candidate.architecture,
        candidate.variant,
    ):
        return False
    if not required.os_version or not candidate.os_version:
        return True
    return _same_os_version(required.os, required.os_version, candidate.os_version)


def is_compatible(host: Platform, candidate: Platform) -> bool:
    """True when a node of platform `host` can run an image built for `candidate` (containerd ``Only``)."""
    return _compatibility_rank(host, candidate) is not None


def satisfies(required: Platform, candidate: Platform, *, strict: bool) -> bool:
    """Policy check: `matches_strict` when `strict`, else `is_compatible`."""
    return matches_strict(required, candidate) if strict else is_compatible(required, candidate)


def rank_key(host: Platform, candidate: Platform) -> tuple[int, ...]:
    """Sort key, smaller is better: runnable first, exact before fallback, higher variant, closest os.version."""
    fallback_rank = _compatibility_rank(host, candidate)
    if fallback_rank is None:
        return (1, 0, 0, 0, 0)
    return (0, fallback_rank, *_os_version_rank(normalize(host), normalize(candidate)))


def best_candidate(host: Platform, candidates: Sequence[Platform], *, strict: bool = False) -> int | None:
    """Index of the best candidate that satisfies `host` (the first one among equals), or None."""
    satisfying = [index for index, candidate in enumerate(candidates) if satisfies(host, candidate, strict=strict)]
    if not satisfying:
        return None
    return min(satisfying, key=lambda index: (rank_key(host, candidates[index]), index))


def _compatibility_rank(host: Platform, candidate: Platform) -> int | None:
    """Position of `candidate` in the host's fallback list (0 = exact), or None when it cannot run."""
    if is_unknown(host) or is_unknown(candidate):
        return None
    host, candidate = normalize(host), normalize(candidate)
    if host.os != candidate.os:
        return None
    if host.os == _WINDOWS and not _windows_runs(host.os_version, candidate.os_version):
        return None
    if (host.architecture, host.variant) == (candidate.architecture, candidate.variant):
        return 0
    fallback_rank = _FALLBACK_RANKS.get(host.architecture)
    return fallback_rank(host.variant, candidate) if fallback_rank else None


def _variant_number(variant: str) -> tuple[int, int] | None:
    """``v7`` → (7, 0), ``v8.2`` → (8, 2); None for anything else."""
    match = _NUMBERED_VARIANT.fullmatch(variant)
    if match is None:
        return None
    return int(match["major"]), int(match["minor"] or 0)


def _amd64_fallback_rank(host_variant: str, candidate: Platform) -> int | None:
    host_level = _amd64_level(host_variant)
    if candidate.architecture == "386" and not candidate.variant:
        # 386 comes right after amd64/v1; with a non-numeric host variant it is the only fallback.
        return host_level if host_level is not None else 1
    if candidate.architecture != "amd64" or host_level is None:
        return None
    candidate_level = _amd64_level(candidate.variant)
    if candidate_level is None or candidate_level > host_level:
        return None
    return host_level - candidate_level


def _amd64_level(variant: str) -> int | None:
    if not variant:
        return 1
    number = _variant_number(variant)
    if number is None or number[1] != 0:
        return None
    return number[0]


def _arm_fallback_rank(host_variant: str, candidate: Platform) -> int | None:
    host_number = _variant_number(host_variant)
    candidate_number = _variant_number(candidate.variant)
    if candidate.architecture != "arm" or host_number is None or candidate_number is None:
        return None
    if host_number[1] or candidate_number[1]:
        return None
    host_level, candidate_level = host_number[0], candidate_number[0]
    if not _LOWEST_ARM_VARIANT <= candidate_level <= host_level:
        return None
    return host_level - candidate_level


def _arm64_fallback_rank(host_variant: str, candidate: Platform) -> int | None:
    """Walk the arm64 list (own major, then v8 for v9 hosts), then the 32-bit ARM list."""
    host_major, host_minor = _variant_number(host_variant or "v8") or (0, 0)
    if host_major < 8:
        return None
    arm64_ladder: list[tuple[int, int, int]] = [(host_major, host_minor, 0)]  # (major, highest minor, lowest minor)
    if host_major == 9:
        arm64_ladder.append((8, host_minor + _ARM64_V9_TO_V8_MINOR_OFFSET, 0))
    arm64_steps = sum(highest - lowest + 1 for _, highest, lowest in arm64_ladder)

    if candidate.architecture == "arm64":
        candidate_major, candidate_minor = _variant_number(candidate.variant or "v8") or (0, 0)
        steps_before = 0
        for major, highest, lowest in arm64_ladder:
            if candidate_major == major and lowest <= candidate_minor <= highest:
                return steps_before + highest - candidate_minor
            steps_before += highest - lowest + 1
        return None
    if candidate.architecture == "arm":
        candidate_number = _variant_number(candidate.variant)
        if candidate_number is None or candidate_number[1]:
            return None
        level = candidate_number[0]
        if not _LOWEST_ARM_VARIANT <= level <= _ARM32_VARIANT_RUN_BY_ARM64:
            return None
        return arm64_steps + _ARM32_VARIANT_RUN_BY_ARM64 - level
    return None


# Host architectures that run more than themselves; every other architecture runs only itself.
_FALLBACK_RANKS: dict[str, Callable[[str, Platform], int | None]] = {
    "amd64": _amd64_fallback_rank,
    "arm": _arm_fallback_rank,
    "arm64": _arm64_fallback_rank,
}


def _windows_version(version: str) -> tuple[int, int, int, int | None] | None:
    """``10.0.17763.5576`` → (10, 0, 17763, 5576); ``10.0.17763`` → (10, 0, 17763, None); None if unreadable."""
    parts = version.split(".")
    if not 3 <= len(parts) <= 4 or not all(part.isdigit() for part in parts):
        return None
    revision = int(parts[3]) if len(parts) == 4 else None
    return int(parts[0]), int(parts[1]), int(parts[2]), revision


def _windows_runs(host_version: str, candidate_version: str) -> bool:
    if not host_version or not candidate_version:
        return True
    host, candidate = _windows_version(host_version), _windows_version(candidate_version)
    if host is None or candidate is None:
        return host_version == candidate_version
    if host[:2] != candidate[:2]:
        return False
    host_build, candidate_build = host[2], candidate[2]
    if host_build < _WINDOWS_STABLE_ABI_BUILD:
        return candidate_build == host_build
    return _WINDOWS_STABLE_ABI_BUILD <= candidate_build <= host_build


def _same_os_version(os_name: str, first: str, second: str) -> bool:
    if first == second:
        return True
    if os_name != _WINDOWS:
        return False
    first_parts, second_parts = _windows_version(first), _windows_version(second)
    if first_parts is None or second_parts is None or first_parts[:3] != second_parts[:3]:
        return False
    first_revision, second_revision = first_parts[3], second_parts[3]
    return first_revision is None or second_revision is None or first_revision == second_revision


def _os_version_rank(host: Platform, candidate: Platform) -> tuple[int, int, int]:
    """(no usable version, build distance, negated revision): closest build first, then higher revision."""
    if host.os != _WINDOWS:
        return (0, 0, 0)
    candidate_version = _windows_version(candidate.os_version)
    if candidate_version is None:
        return (1, 0, 0)
    host_version = _windows_version(host.os_version)
    candidate_build, candidate_revision = candidate_version[2], candidate_version[3] or 0
    distance = host_version[2] - candidate_build if host_version else -candidate_build
    return (0, distance, -candidate_revision)


# --- forbid patterns ----------------------------------------------------------------------------


def validate_pattern(pattern: str) -> None:
    """Raise PlatformError unless `pattern` is 1 to 3 non-empty glob segments ``os[/arch[/variant]]``."""
    if not isinstance(pattern, str):
        raise PlatformError(f"platform pattern {pattern!r}: expected a string, got {type(pattern).__name__}")
    if not pattern:
        raise PlatformError("platform pattern '': empty, expected os[/arch[/variant]] with * ? [] globs")
    segments = pattern.lower().split("/")
    if len(segments) > 3:
        raise PlatformError(f"platform pattern {pattern!r}: {len(segments)} segments, expected at most os/arch/variant")
    for segment in segments:
        if not segment:
            raise PlatformError(f"platform pattern {pattern!r}: empty segment, expected os[/arch[/variant]]")
        if not _PATTERN_SEGMENT.fullmatch(segment):
            raise PlatformError(
                f"platform pattern {pattern!r}: invalid segment {segment!r} (allowed: a-z 0-9 _ . - and * ? [ ] !)"
            )


def matches_pattern(pattern: str, platform: Platform) -> bool:
    """True when the normalised `platform` matches a forbid `pattern` such as ``windows/*`` or ``linux/arm``.

    Segments are compared with fnmatch. Literal os and architecture aliases in the pattern are
    normalised (``aarch64`` → ``arm64``, ``armhf`` → ``arm/v7``), but no default variant is added:
    ``linux/arm`` matches every 32-bit ARM variant. Missing trailing segments match anything. A single
    segment that names a known architecture is read as ``*/<arch>`` (``386``), otherwise as an os
    (``windows``). Platforms that are `is_unknown` (attestations) match no pattern.
    """
    validate_pattern(pattern)
    if is_unknown(platform):
        return False
    os_pattern, architecture_pattern, variant_pattern = _pattern_segments(pattern.lower())
    target = normalize(platform)
    wanted_and_actual = (
        (os_pattern, target.os),
        (architecture_pattern, target.architecture),
        (variant_pattern, target.variant),
    )
    return all(wanted is None or fnmatch.fnmatchcase(actual, wanted) for wanted, actual in wanted_and_actual)


def _is_glob(segment: str) -> bool:
    return any(character in _GLOB_CHARACTERS for character in segment)


def _pattern_segments(pattern: str) -> tuple[str | None, str | None, str | None]:
    """Split a validated pattern into (os, arch, variant) globs; None means "any value"."""
    segments: list[str | None] = list(pattern.split("/"))
    if len(segments) == 1 and not _is_glob(pattern):
        architecture, _ = _normalize_architecture(pattern, "")
        if architecture in KNOWN_ARCHITECTURES:
            segments = ["*", pattern]
    segments += [None] * (3 - len(segments))
    os_pattern, architecture_pattern, variant_pattern = segments

    if os_pattern is not None and not _is_glob(os_pattern):
        os_pattern = _OS_ALIASES.get(os_pattern, os_pattern)
    if architecture_pattern is not None and not _is_glob(architecture_pattern):
        if architecture_pattern in _ARCHITECTURE_ALIASES:
            architecture_pattern, implied_variant = _ARCHITECTURE_ALIASES[architecture_pattern]
            if variant_pattern is None and implied_variant is not None:
                variant_pattern = implied_variant or None
        if variant_pattern is not None and not _is_glob(variant_pattern):
            # Spell an explicit variant the way normalised platforms do (arm/7 → arm/v7, arm64/v8 → "").
            _, variant_pattern = _normalize_architecture(architecture_pattern, variant_pattern)
    return os_pattern, architecture_pattern, variant_pattern
