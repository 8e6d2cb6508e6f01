"""The policy file: which platforms every tag of a repository must offer, and what to do when it does not.

Use it like this::

    policy = load_policy("policy.yaml")             # or parse_policy(text, source="PLATFORM_GUARD_POLICY")
    rule = policy.rule_for("dockerhub/library/nginx")
    rule.require, rule.forbid, rule.strict, rule.on_violation, rule.flatten, rule.ignore
    rule.upstream_for("dockerhub/library/nginx")    # "docker.io/library/nginx"
    guarded_repository_for(policy, "nginx:1.27")    # (that rule, "dockerhub/library/nginx"): the inverse
    policy.quarantine.repository_for("team/app")    # "quarantine/team/app"
    policy.quarantine.holds("quarantine/team/app")  # True: a quarantine destination, not to be judged again

Everything here is pure except `load_policy`, which reads one file. Errors are `PolicyError` (a
`ValueError`) with the message ``<file>: <key path>: <what is wrong> (line N)``, for example
``policy.yaml: rules[1].require[0]: ... not a known architecture (line 12)``. Rules are counted from 0.
The first problem found is reported (the version first, then each section in order). Besides the shape of
every key, these are refused: duplicate YAML keys, an unknown os or architecture in ``require`` (and as a
literal in a ``forbid`` pattern), the same platform required twice, and text over 1 MiB (which also bounds
YAML alias tricks; aliases are shared, never expanded).

The file (YAML, version 1; DESIGN.md §4 is the contract, `schemas/policy.schema.json` the editor schema)
------------------------------------------------------------------------------------------------------
``version: 1`` (required), ``defaults`` (require, forbid, match, on_violation, upstream, flatten),
``rules`` (a list; each has ``repositories`` plus any defaults key and ``ignore``), ``quarantine``
(mode, repository). Keys left out of ``defaults`` take the built-in values of `DEFAULT_POLICY`:
require [linux/amd64], forbid [], match compatible, on_violation quarantine, upstream null, flatten false,
quarantine move to ``quarantine/{repository}`` (its `source` is ``<default>``).

Resolution
----------
- Rules are tried in order; the first whose ``repositories`` match wins. Keys the rule does not set come
  from ``defaults``. A key that is written is set, even as ``[]`` or (for ``upstream``) ``null``.
  A repository no rule matches gets ``defaults``. Rules in a parsed `Policy` are already resolved.
- Cross-key checks run on each resolved rule and on ``defaults``: ``on_violation: reimport`` needs an
  upstream; no required platform may match a forbid pattern; ``flatten: true`` needs exactly one required
  platform. A rule with ``ignore: true`` is never evaluated, so it may carry any other keys: their values
  are still checked one by one, but these cross-key checks are skipped for it.

Repository globs (anchored; matched against the whole repository name)
----------------------------------------------------------------------
- ``*`` any run of characters within one path segment (never ``/``); ``?`` one character other than ``/``.
- ``**`` must be a whole segment and spans any number of whole segments: ``a/**/b`` matches ``a/b`` and
  ``a/x/y/b``; ``**/b`` matches ``b`` and ``x/b``; ``**`` matches every name.
- ``a/**`` matches ``a/b`` and ``a/b/c`` but **not** ``a`` itself — like ``.gitignore``: the contents of
  ``a``. (It also keeps ``{path}`` below from ever being empty.) Write ``["a", "a/**"]`` for both.
- Allowed characters are those of repository names (lower-case ``a-z 0-9 . _ - /``) plus ``* ?``.

Templates
---------
- ``upstream``: ``{repository}`` is the whole repository name; ``{path}`` is the name minus the literal
  prefix before the first wildcard of the first glob of the rule that matches it (character-wise, as the
  design says): ``dockerhub/**`` + ``dockerhub/library/nginx`` → ``library/nginx``; ``dh-*`` + ``dh-nginx``
  → ``nginx``. For a glob without wildcards, and for ``defaults``, ``{path}`` is the whole name.
  The template must be ``host/path``: a literal host with a dot or a port, or ``localhost``; no scheme,
  tag or digest (the pushed tag is used).
- ``quarantine.repository`` must contain ``{repository}`` and give a repository name on the same registry.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn

import yaml

from importer.core.platforms import (
    KNOWN_ARCHITECTURES,
    KNOWN_OPERATING_SYSTEMS,
    Platform,
    PlatformError,
    matches_pattern,
    validate_pattern,
)
from importer.core.platforms import parse as parse_platform
from importer.core.reference import (
    DOCKER_HUB,
    DOCKER_HUB_ALIASES,
    DOCKER_HUB_OFFICIAL_PREFIX,
    ReferenceError,
    is_valid_host,
    is_valid_repository_component,
    parse_reference,
    validate_repository,
)

__all__ = [
    "DEFAULT_POLICY",
    "MATCH_MODES",
    "MAX_POLICY_BYTES",
    "QUARANTINE_MODES",
    "VIOLATION_ACTIONS",
    "Policy",
    "PolicyError",
    "Quarantine",
    "Rule",
    "guarded_repository_for",
    "load_policy",
    "parse_policy",
]

MAX_POLICY_BYTES: Final = 1024 * 1024
MATCH_MODES: Final = ("compatible", "strict")
VIOLATION_ACTIONS: Final = ("reimport", "quarantine", "alert")
QUARANTINE_MODES: Final = ("move", "lock")

_TOP_LEVEL_KEYS: Final = ("version", "defaults", "rules", "quarantine")
_DEFAULTS_KEYS: Final = ("require", "forbid", "match", "on_violation", "upstream", "flatten")
_RULE_KEYS: Final = ("repositories", "ignore", *_DEFAULTS_KEYS)
_QUARANTINE_KEYS: Final = ("mode", "repository")
_UPSTREAM_PLACEHOLDERS: Final = ("repository", "path")
_QUARANTINE_PLACEHOLDERS: Final = ("repository",)

# One component of an OCI repository name (distribution's reference grammar).
_GLOB_CHARACTERS = re.compile(r"[a-z0-9._/*?-]*")
_WILDCARDS = re.compile(r"[*?]")


class PolicyError(ValueError):
    """A policy that cannot be used; `str()` is ``<file>: <key path>: <what is wrong> (line N)``."""

    def __init__(self, source: str, path: str, problem: str, line: int | None = None) -> None:
        super().__init__(source, path, problem, line)
        self.source = source
        self.path = path
        self.problem = problem
        self.line = line

    def __str__(self) -> str:
        where = f"{self.source}: {self.path}: " if self.path else f"{self.source}: "
        return where + self.problem + (f" (line {self.line})" if self.line is not None else "")


# --- repository globs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RepositoryGlob:
    """A compiled repository glob and the literal prefix that `{path}` strips."""

    pattern: str
    regex: re.Pattern[str]
    literal_prefix: str | None  # None when the glob has no wildcard: `{path}` is then the whole name

    def path_of(self, repository: str) -> str:
        if self.literal_prefix is None:
            return repository
        return repository[len(self.literal_prefix) :]


@functools.lru_cache(maxsize=1024)
def _compile_glob(pattern: str) -> _RepositoryGlob:
    """Compile a repository glob (see the module docstring); ValueError names what is wrong with it."""
    if not isinstance(pattern, str):
        raise ValueError(f"repository glob {pattern!r} must be a string")
    if not pattern:
        raise ValueError("empty repository glob")
    if not _GLOB_CHARACTERS.fullmatch(pattern):
        if pattern.lower() != pattern:
            raise ValueError(f"{pattern!r}: repository names are lower-case, write {pattern.lower()!r}")
        wrong = next(character for character in pattern if not _GLOB_CHARACTERS.fullmatch(character))
        raise ValueError(f"{pattern!r}: {wrong!r} is not allowed in a repository glob (only a-z 0-9 . _ - / * ?)")
    segments = pattern.split("/")
    if "" in segments:
        raise ValueError(f"{pattern!r}: empty path segment (a leading, trailing or doubled '/')")
    for segment in segments:
        if "**" in segment and segment != "**":
            raise ValueError(f"{pattern!r}: '**' must be a whole path segment, as in 'a/**' or 'a/**/b'")

    # Consecutive `**` segments mean the same as one, and one keeps the regex below simple.
    collapsed = [s for i, s in enumerate(segments) if not (s == "**" and i > 0 and segments[i - 1] == "**")]
    last = len(collapsed) - 1
    parts: list[str] = []
    for i, segment in enumerate(collapsed):
        if segment == "**":
            if i == 0 and i == last:
                parts.append(r"[^/]+(?:/[^/]+)*")
            elif i == last:
                parts.append(r"(?:/[^/]+)+")  # one or more segments: `a/**` does not match `a`
            else:
                if i > 0:
                    parts.append("/")
                parts.append(r"(?:[^/]+/)*")  # zero or more segments, each with its slash
            continue
        if i > 0 and collapsed[i - 1] != "**":
            parts.append("/")
        parts.append("".join({"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c)) for c in segment))

    first_wildcard = _WILDCARDS.search(pattern)
    literal_prefix = pattern[: first_wildcard.start()] if first_wildcard else None
    return _RepositoryGlob(pattern, re.compile("".join(parts)), literal_prefix)


def repository_matcher(patterns: tuple[str, ...] | list[str]) -> Callable[[str], bool]:
    """A predicate true for repository names matching any of `patterns` (the policy's glob rules); ValueError if bad."""
    globs = tuple(_compile_glob(pattern) for pattern in patterns)
    return lambda repository: any(glob.regex.fullmatch(repository) for glob in globs)


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """What a set of repositories must offer and what happens otherwise; `defaults` has no `repositories`.

    `repositories` are globs (() for `defaults`, which matches every repository). `index` is the
    position in `rules` (None for `defaults`), used in messages as ``rules[2]``.
    """

    repositories: tuple[str, ...] = ()
    require: tuple[Platform, ...] = ()
    forbid: tuple[str, ...] = ()
    match: str = "compatible"
    on_violation: str = "quarantine"
    upstream: str | None = None
    flatten: bool = False
    ignore: bool = False
    index: int | None = None
    _globs: tuple[_RepositoryGlob, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.match not in MATCH_MODES:
            raise ValueError(f"{self.key_path}: match must be one of {', '.join(MATCH_MODES)} (got {self.match!r})")
        if self.on_violation not in VIOLATION_ACTIONS:
            raise ValueError(
                f"{self.key_path}: on_violation must be one of {', '.join(VIOLATION_ACTIONS)} "
                f"(got {self.on_violation!r})"
            )
        object.__setattr__(self, "_globs", tuple(_compile_glob(pattern) for pattern in self.repositories))

    @property
    def strict(self) -> bool:
        """True for ``match: strict`` (normalised os/arch/variant equal), False for ``compatible``."""
        return self.match == "strict"

    @property
    def key_path(self) -> str:
        """Where the rule sits in the file: ``rules[2]``, or ``defaults``."""
        return "defaults" if self.index is None else f"rules[{self.index}]"

    def matches(self, repository: str) -> bool:
        """True when one of the globs matches the whole name; `defaults` (no globs) matches every name."""
        return not self._globs or self._matching_glob(repository) is not None

    def upstream_for(self, repository: str) -> str | None:
        """The upstream reference (without tag) for `repository`, or None when the rule has no upstream.

        Raises ValueError when `repository` is not one this rule matches.
        """
        if self.upstream is None:
            return None
        if self._globs:
            glob = self._matching_glob(repository)
            if glob is None:
                raise ValueError(f"{self.key_path}: repository {repository!r} does not match {list(self.repositories)}")
            path = glob.path_of(repository)
        else:
            path = repository
        return self.upstream.replace("{repository}", repository).replace("{path}", path)

    def _matching_glob(self, repository: str) -> _RepositoryGlob | None:
        return next((glob for glob in self._globs if glob.regex.fullmatch(repository)), None)


@dataclass(frozen=True, slots=True)
class Quarantine:
    """Where violating images go: ``move`` to `repository` (a template with ``{repository}``) or ``lock`` in place."""

    mode: str = "move"
    repository: str = "quarantine/{repository}"

    def __post_init__(self) -> None:
        if self.mode not in QUARANTINE_MODES:
            raise ValueError(f"quarantine.mode must be one of {', '.join(QUARANTINE_MODES)} (got {self.mode!r})")
        if "{repository}" not in self.repository:
            raise ValueError(f"quarantine.repository must contain {{repository}} (got {self.repository!r})")

    def repository_for(self, repository: str) -> str:
        """The quarantine repository for `repository`: ``team/app`` → ``quarantine/team/app``."""
        return self.repository.replace("{repository}", repository)

    def holds(self, repository: str) -> bool:
        """True when `repository` is itself a quarantine destination (pushes there must not be judged again)."""
        return self.original_of(repository) is not None

    def original_of(self, repository: str) -> str | None:
        """The guarded repository whose quarantine `repository` is (``quarantine/team/app`` → ``team/app``), or None."""
        literal_parts = self.repository.split("{repository}")
        pattern = "(?P<name>.+)".join(re.escape(part) for part in literal_parts[:2])
        pattern += "".join("(?P=name)" + re.escape(part) for part in literal_parts[2:])
        found = re.fullmatch(pattern, repository)
        return found.group("name") if found else None


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated policy: `defaults`, resolved `rules` (first match wins), `quarantine`, and where it came from."""

    defaults: Rule
    rules: tuple[Rule, ...] = ()
    quarantine: Quarantine = Quarantine()
    source: str = "<inline>"

    def rule_for(self, repository: str) -> Rule:
        """The first rule matching `repository` (its unset keys already filled from defaults), else `defaults`."""
        return next((rule for rule in self.rules if rule.matches(repository)), self.defaults)


DEFAULT_POLICY: Final = Policy(
    defaults=Rule(require=(parse_platform("linux/amd64"),)),
    rules=(),
    quarantine=Quarantine(),
    source="<default>",
)


# --- the inverse of upstream_for ------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"(\{repository\}|\{path\})")


def guarded_repository_for(
    policy: Policy, image_reference: str, *, guarded_host: str | None = None
) -> tuple[Rule, str] | None:
    """Where an image named by its upstream lives in the guarded registry: the inverse of `Rule.upstream_for`.

    Returns (the rule the policy gives that repository, the guarded repository name), or None when no rule's
    upstream maps any repository to the image. With ``dockerhub/**`` and ``upstream: "docker.io/{path}"``,
    ``nginx:1.27`` (``docker.io/library/nginx``) lives at ``dockerhub/library/nginx``. An image on
    `guarded_host` lives where it says. Rules are tried in order, `defaults` last; a candidate counts only when
    the policy really gives it that rule and the rule's upstream maps it back to the image, so the answer always
    round-trips. Docker Hub names are compared normalised; for an official image the name with ``library/`` is
    tried before the one without. Tag and digest do not matter. ReferenceError when `image_reference` is not an
    image reference.
    """
    reference = parse_reference(image_reference)
    if guarded_host is not None and reference.registry.lower() == guarded_host.lower():
        return policy.rule_for(reference.repository), reference.repository
    wanted = (_canonical_host(reference.registry), reference.repository)
    for rule in (*policy.rules, policy.defaults):
        for candidate in _guarded_candidates(rule, reference.registry, reference.repository):
            if policy.rule_for(candidate) != rule:
                continue
            try:
                upstream = parse_reference(rule.upstream_for(candidate) or "")
            except ValueError:  # the candidate does not make a valid upstream name
                continue
            if (_canonical_host(upstream.registry), upstream.repository) == wanted:
                return rule, candidate
    return None


def _canonical_host(host: str) -> str:
    host = host.lower()
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def _guarded_candidates(rule: Rule, registry: str, repository: str) -> Iterator[str]:
    """Guarded repository names whose upstream under `rule` could be `registry/repository` (checked by the caller)."""
    if rule.upstream is None:
        return
    template_host, _, path_template = rule.upstream.partition("/")
    if _canonical_host(template_host) != _canonical_host(registry):
        return
    names = [repository]
    if _canonical_host(registry) == DOCKER_HUB and repository.startswith(DOCKER_HUB_OFFICIAL_PREFIX):
        names.append(repository[len(DOCKER_HUB_OFFICIAL_PREFIX) :])  # `docker.io/nginx` normalises to library/
    pattern = _template_pattern(path_template)
    for name in names:
        found = pattern.fullmatch(name)
        if found is None:
            continue
        if "repository" in pattern.groupindex:
            candidates = [found["repository"]]
        elif "path" in pattern.groupindex:
            path = found["path"]
            prefixes = [glob.literal_prefix for glob in rule._globs] or [None]
            candidates = [path if prefix is None else prefix + path for prefix in prefixes]
        else:  # a fixed upstream: only literal globs name a repository
            candidates = [glob.pattern for glob in rule._globs if glob.literal_prefix is None]
        for candidate in candidates:
            try:
                yield validate_repository(candidate)
            except ReferenceError:
                continue


@functools.lru_cache(maxsize=256)
def _template_pattern(path_template: str) -> re.Pattern[str]:
    """A regex matching what the path part of an upstream template expands to, one named group per placeholder."""
    parts: list[str] = []
    seen: set[str] = set()
    for piece in _PLACEHOLDER.split(path_template):
        if _PLACEHOLDER.fullmatch(piece):
            name = piece[1:-1]
            parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+)")
            seen.add(name)
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


# --- loading -------------------------------------------------------------------------------------


def load_policy(path: str | Path) -> Policy:
    """Read and validate the policy file at `path`; PolicyError names the file for every problem."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_POLICY_BYTES + 1)
    except OSError as error:
        raise PolicyError(source, "", f"cannot read the policy file: {error.strerror or error}") from error
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(source, "", f"the policy file is larger than {MAX_POLICY_BYTES} bytes (1 MiB)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        problem = f"the policy file is not UTF-8 text (bad byte at offset {error.start})"
        raise PolicyError(source, "", problem) from error
    return parse_policy(text, source=source)


def parse_policy(text: str, *, source: str = "<inline>") -> Policy:
    """Parse and validate policy YAML; `source` names it in error messages (a file name, a setting name)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_POLICY_BYTES:
        raise PolicyError(source, "", f"the policy is {size} bytes; the limit is {MAX_POLICY_BYTES} bytes (1 MiB)")
    return _PolicyReader(source).read(_load_yaml(text, source))


class _LineMap(dict[Any, Any]):
    """A YAML mapping that remembers the line of each key."""

    __slots__ = ("key_lines",)

    def __init__(self) -> None:
        super().__init__()
        self.key_lines: dict[Any, int] = {}


class _LineList(list[Any]):
    """A YAML sequence that remembers the line of each item."""

    __slots__ = ("item_lines",)

    def __init__(self) -> None:
        super().__init__()
        self.item_lines: list[int] = []


class _LineLoader(yaml.SafeLoader):
    """yaml.SafeLoader that keeps line numbers (for messages) and refuses duplicate keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[_LineMap]:
    mapping = _LineMap()
    yield mapping
    _refuse_duplicate_keys(node)
    loader.flatten_mapping(node)  # resolves `<<` merge keys, as yaml.safe_load does
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        try:
            mapping[key] = loader.construct_object(value_node)
        except TypeError as error:  # an unhashable key, e.g. a list
            problem = "a key must be a plain value, not a list or a mapping"
            raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark) from error
        mapping.key_lines[key] = key_node.start_mark.line + 1


def _refuse_duplicate_keys(node: yaml.MappingNode) -> None:
    first_line: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        identity = (key_node.tag, key_node.value)
        line = key_node.start_mark.line + 1
        if identity in first_line:
            problem = f"duplicate key {key_node.value!r} (first at line {first_line[identity]})"
            raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
        first_line[identity] = line


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[_LineList]:
    sequence = _LineList()
    yield sequence
    sequence.extend(loader.construct_object(child) for child in node.value)
    sequence.item_lines.extend(child.start_mark.line + 1 for child in node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a yaml.SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "unreadable"
        raise PolicyError(source, "", f"invalid YAML: {problem}", mark.line + 1 if mark else None) from error
    except yaml.YAMLError as error:
        raise PolicyError(source, "", f"invalid YAML: {error}") from error


# --- validation ----------------------------------------------------------------------------------

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
    """A value as a YAML user would name it in ``(got …)``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__} ({value})"


def _key_line(mapping: object, key: object) -> int | None:
    return getattr(mapping, "key_lines", {}).get(key)


def _item_line(sequence: object, index: int) -> int | None:
    lines = getattr(sequence, "item_lines", [])
    return lines[index] if index < len(lines) else None


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
    return _path_problem(template, template)


def _unknown_name_in_pattern(pattern: str) -> str | None:
    """A literal os or architecture in a forbid pattern that no platform can have (a typo), or None."""
    segments = pattern.lower().split("/")
    literal = [segment if not _WILDCARDS.search(segment) and "[" not in segment else None for segment in segments]
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

        defaults_section = _Section("defaults", _key_line(document, "defaults"))
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
        version, line = document["version"], _key_line(document, "version")
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
            self.fail(f"{path}.{key}" if path else str(key), problem, _key_line(mapping, key))

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
        }
        for key, value in raw.items():
            line = _key_line(raw, key)
            section.values[key] = readers[key](value, f"{section.path}.{key}", line)
            section.key_lines[key] = line
            if isinstance(value, list):
                section.item_lines[key] = [_item_line(value, index) for index in range(len(value))]

    def _read_rules(self, document: dict[Any, Any], defaults: Rule) -> tuple[Rule, ...]:
        if "rules" not in document:
            return ()
        raw_rules = document["rules"]
        if not isinstance(raw_rules, list):
            self.fail("rules", f"must be a list of rules (got {_describe(raw_rules)})", _key_line(document, "rules"))
        inherited = {key: getattr(defaults, key) for key in _DEFAULTS_KEYS}
        rules: list[Rule] = []
        for index, raw_rule in enumerate(raw_rules):
            section = _Section(f"rules[{index}]", _item_line(raw_rules, index))
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
        raw = self._mapping(document["quarantine"], "quarantine", _key_line(document, "quarantine"))
        self._refuse_unknown_keys(raw, "quarantine", _QUARANTINE_KEYS, {})
        settings: dict[str, str] = {}
        if "mode" in raw:
            line = _key_line(raw, "mode")
            settings["mode"] = self._read_choice(raw["mode"], "quarantine.mode", line, choices=QUARANTINE_MODES)
        if "repository" in raw:
            repository, line = raw["repository"], _key_line(raw, "repository")
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
                item_line = _item_line(value, index) or line
                self.fail(f"{path}[{index}]", f"must be a string (got {_describe(item)})", item_line)
        return value

    def _read_globs(self, value: object, path: str, line: int | None) -> tuple[str, ...]:
        globs = self._read_strings(value, path, line, "repository globs")
        if not globs:
            self.fail(path, "must list at least one repository glob, like ['team/**']", line)
        for index, glob in enumerate(globs):
            try:
                _compile_glob(glob)
            except ValueError as error:
                self.fail(f"{path}[{index}]", str(error), _item_line(value, index) or line)
        return tuple(globs)

    def _read_platforms(self, value: object, path: str, line: int | None) -> tuple[Platform, ...]:
        platforms: list[Platform] = []
        for index, specifier in enumerate(self._read_strings(value, path, line, "platforms")):
            item_path, item_line = f"{path}[{index}]", _item_line(value, index) or line
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
            item_path, item_line = f"{path}[{index}]", _item_line(value, index) or line
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
