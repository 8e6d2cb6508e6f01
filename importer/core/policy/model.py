"""The policy model: `Rule`, `Quarantine`, `Policy`, `PolicyError`, the allowed values and `DEFAULT_POLICY`.

Values only, already validated: reading YAML into them is `importer.core.policy.reader`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from importer.core.platforms import Platform
from importer.core.platforms import parse as parse_platform
from importer.core.policy.globs import RepositoryGlob, compile_glob
from importer.core.quarantine_names import is_shortened, quarantine_repository

MAX_POLICY_BYTES: Final = 1024 * 1024
MAX_POLICY_NESTING: Final = 32  # levels of YAML collections; a policy needs 4 (document, rules, a rule, a list)
MAX_POLICY_NODES: Final = 50_000  # YAML values, aliases and merged keys; 1,000 usual rules take about 13,000
MATCH_MODES: Final = ("compatible", "strict")
VIOLATION_ACTIONS: Final = ("reimport", "quarantine", "alert")
QUARANTINE_MODES: Final = ("move", "lock")
SIGNATURE_MODES: Final = ("keep", "allow-loss")


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


@dataclass(frozen=True, slots=True)
class Rule:
    """What a set of repositories must offer and what happens otherwise; `defaults` has no `repositories`.

    `repositories` are globs (() for `defaults`, which matches every repository). `index` is the
    position in `rules` (None for `defaults`), used in messages as ``rules[2]``.

    `signatures` says what a re-import may do to the upstream's signatures. A filtered index (the upstream index
    rebuilt without the forbidden platforms) has a new digest that none of the upstream's signatures cover.
    ``allow-loss`` (the default, the behaviour from before the key existed) re-imports it anyway and the outcome
    records ``signatures: lost``. ``keep`` (`keeps_signatures`) prefers a remedy that keeps a signed digest: the
    whole upstream index when it is compliant, or its signed child flattened when exactly one platform is required;
    where only an unsigned filtered index would do, the image is quarantined instead. An upstream without
    signatures has none to lose. The remediation acts on it; the policy only reads and checks the value.
    """

    repositories: tuple[str, ...] = ()
    require: tuple[Platform, ...] = ()
    forbid: tuple[str, ...] = ()
    match: str = "compatible"
    on_violation: str = "quarantine"
    upstream: str | None = None
    flatten: bool = False
    signatures: str = "allow-loss"
    ignore: bool = False
    index: int | None = None
    _globs: tuple[RepositoryGlob, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.match not in MATCH_MODES:
            raise ValueError(f"{self.key_path}: match must be one of {', '.join(MATCH_MODES)} (got {self.match!r})")
        if self.on_violation not in VIOLATION_ACTIONS:
            raise ValueError(
                f"{self.key_path}: on_violation must be one of {', '.join(VIOLATION_ACTIONS)} "
                f"(got {self.on_violation!r})"
            )
        if self.signatures not in SIGNATURE_MODES:
            raise ValueError(
                f"{self.key_path}: signatures must be one of {', '.join(SIGNATURE_MODES)} (got {self.signatures!r})"
            )
        object.__setattr__(self, "_globs", tuple(compile_glob(pattern) for pattern in self.repositories))

    @property
    def strict(self) -> bool:
        """True for ``match: strict`` (normalised os/arch/variant equal), False for ``compatible``."""
        return self.match == "strict"

    @property
    def keeps_signatures(self) -> bool:
        """True for ``signatures: keep`` (re-import a digest the upstream signed, else quarantine: never a filtered
        index that loses the upstream's signatures), False for ``allow-loss``."""
        return self.signatures == "keep"

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

    def _matching_glob(self, repository: str) -> RepositoryGlob | None:
        return next((glob for glob in self._globs if glob.matches(repository)), None)


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
        """The quarantine repository for `repository`: ``team/app`` → ``quarantine/team/app``; shortened to
        ``quarantine/<head>--<hash>`` when that would not be a valid name (importer.core.quarantine_names)."""
        return quarantine_repository(self.repository, repository)

    def holds(self, repository: str) -> bool:
        """True when `repository` is itself a quarantine destination (pushes there must not be judged again),
        shortened names included."""
        return self._stand_in(repository) is not None

    def original_of(self, repository: str) -> str | None:
        """The guarded repository whose quarantine `repository` is (``quarantine/team/app`` → ``team/app``), or None;
        None also for a shortened name, which does not say its original (the ledger and the registry do)."""
        stand_in = self._stand_in(repository)
        return None if stand_in is None or is_shortened(stand_in) else stand_in

    def _stand_in(self, repository: str) -> str | None:
        """What stands for ``{repository}`` in `repository` when it is named by the template, else None."""
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
