"""Reading policy text into a `Policy`: `parse_policy`, which checks every key and stops at the first problem.

The messages name the source, the key path and the line (see the package docstring); the cross-key checks on
each resolved rule are `_PolicyReader._check_consistency`.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

from importer.core.excerpts import excerpt
from importer.core.platforms import (
    KNOWN_ARCHITECTURES,
    KNOWN_OPERATING_SYSTEMS,
    Platform,
    PlatformError,
    matches_pattern,
    validate_pattern,
)
from importer.core.platforms import parse as parse_platform
from importer.core.policy.globs import WILDCARDS, compile_glob
from importer.core.policy.model import (
    DEFAULT_POLICY,
    MATCH_MODES,
    MAX_POLICY_BYTES,
    MAX_POLICY_NESTING,
    QUARANTINE_MODES,
    SIGNATURE_MODES,
    VIOLATION_ACTIONS,
    Policy,
    PolicyError,
    Quarantine,
    Rule,
)
from importer.core.policy.yaml_lines import line_of_item, line_of_key, load_yaml
from importer.core.quarantine_names import MIN_STAND_IN, stand_in_room
from importer.core.reference import is_valid_host, is_valid_repository_component

_TOP_LEVEL_KEYS: Final = ("version", "defaults", "rules", "quarantine")
_DEFAULTS_KEYS: Final = ("require", "forbid", "match", "on_violation", "upstream", "flatten", "signatures")
_RULE_KEYS: Final = ("repositories", "ignore", *_DEFAULTS_KEYS)
_QUARANTINE_KEYS: Final = ("mode", "repository")
_UPSTREAM_PLACEHOLDERS: Final = ("repository", "path")
_QUARANTINE_PLACEHOLDERS: Final = ("repository",)

# Where a key that is unknown in one section belongs instead.
_TOP_LEVEL_HINTS: Final = {
    **{key: "it belongs under defaults or in a rule" for key in _DEFAULTS_KEYS},
    "repositories": "it belongs in a rule, under rules",
    "ignore": "it belongs in a rule, under rules",
    "mode": "it belongs under quarantine",
}
_DEFAULTS_HINTS: Final = {
    "repositories": "only rules have repositories",
    "ignore": "only a rule can be ignored; add a rule with repositories and ignore: true",
}
_RULE_HINTS: Final = {"mode": "it belongs under quarantine"}


def parse_policy(text: str, *, source: str = "<inline>") -> Policy:
    """Parse and validate policy YAML; `source` names it in error messages (a file name, a setting name)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_POLICY_BYTES:
        raise PolicyError(source, "", f"the policy is {size} bytes; the limit is {MAX_POLICY_BYTES} bytes (1 MiB)")
    # The loader bounds nesting and size (yaml_lines); should a stack or memory still run out, the caller gets a
    # PolicyError naming the source, never a traceback.
    try:
        return _PolicyReader(source).read(load_yaml(text, source))
    except RecursionError:
        raise PolicyError(
            source, "", f"too deeply nested to read (the limit is {MAX_POLICY_NESTING} levels)"
        ) from None
    except MemoryError:
        raise PolicyError(source, "", "too large to read in the memory available") from None


@dataclass(slots=True)
class _Section:
    """`defaults` or one rule while it is read: the keys it sets, and where each one is in the file."""

    path: str
    line: int | None
    values: dict[str, Any] = field(default_factory=dict)
    key_lines: dict[str, int | None] = field(default_factory=dict)
    item_lines: dict[str, list[int | None]] = field(default_factory=dict)

    def where(self, key: str, item: int | None = None) -> tuple[str, int | None]:
        """Key path and line of `key` (or of one of its items) when set here, else of the section itself."""
        if key not in self.values:
            return self.path, self.line
        if item is None:
            return f"{self.path}.{key}", self.key_lines.get(key)
        lines = self.item_lines.get(key, [])
        return f"{self.path}.{key}[{item}]", lines[item] if item < len(lines) else self.key_lines.get(key)

    def origin(self, key: str) -> str:
        """`` (from defaults)`` for a rule key it inherits, else nothing."""
        return "" if key in self.values or self.path == "defaults" else " (from defaults)"

    def setting(self, key: str, value: str) -> str:
        """``value`` when the key path in the message names `key`, else ``key: value (from defaults)``."""
        return value if key in self.values else f"{key}: {value}{self.origin(key)}"


def _describe(value: object) -> str:
    """A value as a YAML user would name it in ``(got …)``; a string as a short escaped excerpt (`excerpts`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return excerpt(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__} ({value})"


def _closest(word: object, choices: tuple[str, ...]) -> str | None:
    matches = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _template_problem(template: str, placeholders: tuple[str, ...]) -> str | None:
    """Why `template` has placeholders other than `placeholders` or stray braces, or None."""
    allowed = ", ".join("{" + name + "}" for name in placeholders)
    for name in re.findall(r"\{([^{}]*)\}", template):
        if name not in placeholders:
            return f"unknown placeholder {{{name}}} in {template!r}; use {allowed}"
    if re.search(r"[{}]", re.sub(r"\{[^{}]*\}", "", template)):
        return f"stray brace in {template!r}; braces only go around the placeholders {allowed}"
    return None


def _path_problem(template: str, rest: str) -> str | None:
    """Why the repository path part `rest` of `template` cannot give a repository name, or None."""
    for segment in rest.split("/"):
        sample = segment.replace("{repository}", "x").replace("{path}", "x")
        if not is_valid_repository_component(sample):
            return (
                f"{template!r}: {segment!r} is not a valid repository path segment "
                "(lower-case a-z 0-9, separated by '.', '_', '__' or '-')"
            )
    return None


def _upstream_problem(template: str) -> str | None:
    """Why `template` is not ``host/path`` shaped, or None."""
    example = "like 'docker.io/{path}'"
    if "://" in template:
        return f"{template!r} must be host/path without a scheme, {example}"
    host, _, rest = template.partition("/")
    if "{" in host:
        return f"{template!r} must be host/path with the host written out, {example}"
    if not rest:
        return f"{template!r} must be host/path, {example}"
    if not is_valid_host(host) or not ("." in host or ":" in host or host == "localhost"):
        return (
            f"{template!r} must be host/path, {example}: {host!r} is not a registry host "
            "(a host has a dot or a port, like docker.io or localhost:5000)"
        )
    if "@" in rest:
        return f"{template!r} must not carry a digest: the pushed tag is looked up upstream"
    if ":" in rest:
        return f"{template!r} must not carry a tag: the pushed tag is used"
    return _path_problem(template, rest)


def _quarantine_repository_problem(template: str) -> str | None:
    """Why `template` cannot name a quarantine repository for every repository, or None."""
    if problem := _template_problem(template, _QUARANTINE_PLACEHOLDERS):
        return problem
    if "{repository}" not in template:
        return f"must contain {{repository}}, so each repository is quarantined apart (got {template!r})"
    if template == "{repository}":
        return (
            "'{repository}' alone would quarantine an image into its own repository; "
            "add a prefix, like 'quarantine/{repository}'"
        )
    if stand_in_room(template) < MIN_STAND_IN:
        return (
            f"{template!r} leaves {max(stand_in_room(template), 0)} characters for each {{repository}} within the "
            f"255 of a name (as docker counts them, with docker.io/library/ in front); a shortened name needs "
            f"{MIN_STAND_IN}: shorten the rest of the template"
        )
    return _path_problem(template, template)


def _unknown_name_in_pattern(pattern: str) -> str | None:
    """A literal os or architecture in a forbid pattern that no platform can have (a typo), or None."""
    segments = pattern.lower().split("/")
    literal = [segment if not WILDCARDS.search(segment) and "[" not in segment else None for segment in segments]
    if len(segments) == 1:
        if literal[0] is None or _is_known_os(literal[0]) or _is_known_architecture(literal[0]):
            return None
        return f"{pattern!r}: {literal[0]!r} is not a known os or architecture"
    if literal[0] is not None and not _is_known_os(literal[0]):
        return f"{pattern!r}: {literal[0]!r} is not a known os"
    if literal[1] is not None and not _is_known_architecture(literal[1]):
        return f"{pattern!r}: {literal[1]!r} is not a known architecture"
    return None


def _is_known_os(name: str) -> bool:
    try:
        return parse_platform(f"{name}/amd64").os in KNOWN_OPERATING_SYSTEMS
    except PlatformError:
        return False


def _is_known_architecture(name: str) -> bool:
    try:
        return parse_platform(f"linux/{name}").architecture in KNOWN_ARCHITECTURES
    except PlatformError:
        return False


class _PolicyReader:
    """Turns the loaded YAML document into a `Policy`, raising PolicyError at the first problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str, line: int | None) -> NoReturn:
        raise PolicyError(self.source, path, problem, line)

    def read(self, document: object) -> Policy:
        if document is None:
            self.fail("", "the policy is empty; it needs at least 'version: 1'", None)
        if not isinstance(document, dict):
            expected = "must be a mapping with version, defaults, rules and quarantine"
            self.fail("", f"{expected} (got {_describe(document)})", 1)
        self._read_version(document)
        self._refuse_unknown_keys(document, "", _TOP_LEVEL_KEYS, _TOP_LEVEL_HINTS)

        defaults_section = _Section("defaults", line_of_key(document, "defaults"))
        if "defaults" in document:
            raw = self._mapping(document["defaults"], "defaults", defaults_section.line)
            self._read_section(raw, defaults_section, _DEFAULTS_KEYS, _DEFAULTS_HINTS)
        builtin = {key: getattr(DEFAULT_POLICY.defaults, key) for key in _DEFAULTS_KEYS}
        defaults = Rule(**(builtin | defaults_section.values))
        self._check_consistency(defaults, defaults_section)

        rules = self._read_rules(document, defaults)
        quarantine = self._read_quarantine(document)
        return Policy(defaults=defaults, rules=rules, quarantine=quarantine, source=self.source)

    def _read_version(self, document: dict[Any, Any]) -> None:
        if "version" not in document:
            self.fail("version", "missing: a policy starts with 'version: 1'", None)
        version, line = document["version"], line_of_key(document, "version")
        if isinstance(version, bool) or not isinstance(version, int):
            self.fail("version", f"must be 1 (got {_describe(version)})", line)
        if version != 1:
            self.fail("version", f"unsupported policy version {version}; this tool reads version 1", line)

    def _refuse_unknown_keys(
        self, mapping: dict[Any, Any], path: str, known: tuple[str, ...], hints: Mapping[str, str]
    ) -> None:
        for key in mapping:
            if key in known:
                continue
            hint = hints.get(key) if isinstance(key, str) else None
            if hint is None and (closest := _closest(key, known)):
                hint = f"did you mean {closest!r}?"
            problem = f"unknown key {key!r}" + (f" ({hint})" if hint else "") + f"; known keys: {', '.join(known)}"
            self.fail(f"{path}.{key}" if path else str(key), problem, line_of_key(mapping, key))

    def _mapping(self, value: object, path: str, line: int | None) -> dict[Any, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping (got {_describe(value)})", line)
        return value

    def _read_section(
        self, raw: dict[Any, Any], section: _Section, known: tuple[str, ...], hints: Mapping[str, str]
    ) -> None:
        self._refuse_unknown_keys(raw, section.path, known, hints)
        readers = {
            "repositories": self._read_globs,
            "ignore": self._read_bool,
            "flatten": self._read_bool,
            "require": self._read_platforms,
            "forbid": self._read_patterns,
            "match": functools.partial(self._read_choice, choices=MATCH_MODES),
            "on_violation": functools.partial(self._read_choice, choices=VIOLATION_ACTIONS),
            "upstream": self._read_upstream,
            "signatures": functools.partial(self._read_choice, choices=SIGNATURE_MODES),
        }
        for key, value in raw.items():
            line = line_of_key(raw, key)
            section.values[key] = readers[key](value, f"{section.path}.{key}", line)
            section.key_lines[key] = line
            if isinstance(value, list):
                section.item_lines[key] = [line_of_item(value, index) for index in range(len(value))]

    def _read_rules(self, document: dict[Any, Any], defaults: Rule) -> tuple[Rule, ...]:
        if "rules" not in document:
            return ()
        raw_rules = document["rules"]
        if not isinstance(raw_rules, list):
            self.fail("rules", f"must be a list of rules (got {_describe(raw_rules)})", line_of_key(document, "rules"))
        inherited = {key: getattr(defaults, key) for key in _DEFAULTS_KEYS}
        rules: list[Rule] = []
        for index, raw_rule in enumerate(raw_rules):
            section = _Section(f"rules[{index}]", line_of_item(raw_rules, index))
            raw = self._mapping(raw_rule, section.path, section.line)
            self._read_section(raw, section, _RULE_KEYS, _RULE_HINTS)
            if "repositories" not in section.values:
                problem = "missing 'repositories' (a list of repository globs, like ['team/**'])"
                self.fail(section.path, problem, section.line)
            rule = Rule(index=index, **(inherited | section.values))
            self._check_consistency(rule, section)
            rules.append(rule)
        return tuple(rules)

    def _read_quarantine(self, document: dict[Any, Any]) -> Quarantine:
        if "quarantine" not in document:
            return Quarantine()
        raw = self._mapping(document["quarantine"], "quarantine", line_of_key(document, "quarantine"))
        self._refuse_unknown_keys(raw, "quarantine", _QUARANTINE_KEYS, {})
        settings: dict[str, str] = {}
        if "mode" in raw:
            line = line_of_key(raw, "mode")
            settings["mode"] = self._read_choice(raw["mode"], "quarantine.mode", line, choices=QUARANTINE_MODES)
        if "repository" in raw:
            repository, line = raw["repository"], line_of_key(raw, "repository")
            if not isinstance(repository, str):
                expected = "must be a string like 'quarantine/{repository}'"
                self.fail("quarantine.repository", f"{expected} (got {_describe(repository)})", line)
            if problem := _quarantine_repository_problem(repository):
                self.fail("quarantine.repository", problem, line)
            settings["repository"] = repository
        return Quarantine(**settings)

    # Each reader checks one value and returns it as the Rule field wants it.

    def _read_bool(self, value: object, path: str, line: int | None) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false (got {_describe(value)})", line)
        return value

    def _read_choice(self, value: object, path: str, line: int | None, *, choices: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in choices:
            self.fail(path, f"must be one of {', '.join(choices)} (got {_describe(value)})", line)
        return value

    def _read_strings(self, value: object, path: str, line: int | None, what: str) -> list[str]:
        if isinstance(value, str):
            self.fail(path, f"must be a list of {what}, like [{value}] (got a string)", line)
        if not isinstance(value, list):
            self.fail(path, f"must be a list of {what} (got {_describe(value)})", line)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                item_line = line_of_item(value, index) or line
                self.fail(f"{path}[{index}]", f"must be a string (got {_describe(item)})", item_line)
        return value

    def _read_globs(self, value: object, path: str, line: int | None) -> tuple[str, ...]:
        globs = self._read_strings(value, path, line, "repository globs")
        if not globs:
            self.fail(path, "must list at least one repository glob, like ['team/**']", line)
        for index, glob in enumerate(globs):
            try:
                compile_glob(glob)
            except ValueError as error:
                self.fail(f"{path}[{index}]", str(error), line_of_item(value, index) or line)
        return tuple(globs)

    def _read_platforms(self, value: object, path: str, line: int | None) -> tuple[Platform, ...]:
        platforms: list[Platform] = []
        for index, specifier in enumerate(self._read_strings(value, path, line, "platforms")):
            item_path, item_line = f"{path}[{index}]", line_of_item(value, index) or line
            try:
                platform = parse_platform(specifier)
            except PlatformError as error:
                self.fail(item_path, str(error), item_line)
            if platform.os not in KNOWN_OPERATING_SYSTEMS:
                closest = _closest(platform.os, tuple(sorted(KNOWN_OPERATING_SYSTEMS)))
                hint = f" (did you mean {closest!r}?)" if closest else ""
                self.fail(item_path, f"{specifier!r} is not a known os{hint}", item_line)
            if platform.architecture not in KNOWN_ARCHITECTURES:
                closest = _closest(platform.architecture, tuple(sorted(KNOWN_ARCHITECTURES)))
                hint = f" (did you mean {closest!r}?)" if closest else ""
                self.fail(item_path, f"{specifier!r} is not a known architecture{hint}", item_line)
            if platform in platforms:
                earlier = platforms.index(platform)
                self.fail(item_path, f"{specifier!r} is {platform}, which is already listed at [{earlier}]", item_line)
            platforms.append(platform)
        return tuple(platforms)

    def _read_patterns(self, value: object, path: str, line: int | None) -> tuple[str, ...]:
        patterns = self._read_strings(value, path, line, "platform patterns")
        for index, pattern in enumerate(patterns):
            item_path, item_line = f"{path}[{index}]", line_of_item(value, index) or line
            try:
                validate_pattern(pattern)
            except PlatformError as error:
                self.fail(item_path, str(error), item_line)
            if problem := _unknown_name_in_pattern(pattern):
                self.fail(item_path, problem, item_line)
        return tuple(patterns)

    def _read_upstream(self, value: object, path: str, line: int | None) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(path, f"must be a template like 'docker.io/{{path}}', or null (got {_describe(value)})", line)
        if problem := _template_problem(value, _UPSTREAM_PLACEHOLDERS) or _upstream_problem(value):
            self.fail(path, problem, line)
        return value

    def _check_consistency(self, rule: Rule, section: _Section) -> None:
        """Checks across keys of one resolved rule (or defaults); an ignored rule is never evaluated."""
        if rule.ignore:
            return
        if rule.on_violation == "reimport" and rule.upstream is None:
            if rule.index is None:
                why_none = "defaults set none"
            elif "upstream" in section.values:
                why_none = "this rule sets upstream: null"
            else:
                why_none = "neither this rule nor defaults set one"
            path, line = section.where("on_violation")
            self.fail(path, f"{section.setting('on_violation', 'reimport')} needs an upstream, but {why_none}", line)
        for require_index, platform in enumerate(rule.require):
            for forbid_index, pattern in enumerate(rule.forbid):
                if not matches_pattern(pattern, platform):
                    continue
                if "forbid" in section.values or "require" not in section.values:
                    path, line = section.where("forbid", forbid_index)
                else:
                    path, line = section.where("require", require_index)
                self.fail(
                    path,
                    f"required platform {platform}{section.origin('require')} is also forbidden by "
                    f"{pattern!r}{section.origin('forbid')}",
                    line,
                )
        if rule.flatten and len(rule.require) != 1:
            path, line = section.where("flatten")
            required = ", ".join(str(platform) for platform in rule.require) or "none"
            self.fail(
                path,
                f"{section.setting('flatten', 'true')} needs exactly one required platform to point the tag at "
                f"(require{section.origin('require')} has {len(rule.require)}: {required})",
                line,
            )
