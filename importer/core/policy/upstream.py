"""The inverse of `Rule.upstream_for`: from an upstream image name to the guarded repository that mirrors it."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from importer.core.policy.globs import compile_glob
from importer.core.policy.model import Policy, Rule
from importer.core.reference import (
    DOCKER_HUB,
    DOCKER_HUB_ALIASES,
    DOCKER_HUB_OFFICIAL_PREFIX,
    ReferenceError,
    parse_reference,
    validate_repository,
)

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
    globs = [compile_glob(glob) for glob in rule.repositories]  # cached: the very globs the rule matches with
    for name in names:
        found = pattern.fullmatch(name)
        if found is None:
            continue
        if "repository" in pattern.groupindex:
            candidates = [found["repository"]]
        elif "path" in pattern.groupindex:
            path = found["path"]
            prefixes = [glob.literal_prefix for glob in globs] or [None]
            candidates = [path if prefix is None else prefix + path for prefix in prefixes]
        else:  # a fixed upstream: only literal globs name a repository
            candidates = [glob.pattern for glob in globs if glob.literal_prefix is None]
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
