"""Listing for a sweep: the repositories of a registry, and the tags of one repository as ListedTag.

    names = repository_names(registry, "team/**", page_size=None)   # a glob without wildcards names one outright
    tags = list_tags(registry, policy, "team/app", page_size=None, clock=utc_now)

Both follow `Link` pagination through the registry client. ACR (`ListsTagDigests`) lists through `/acr/v1`, which
also gives each tag's digest, so a sweep needs no HEAD per tag there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from importer.app.sweep.model import ListedTag
from importer.core.policy import Policy
from importer.ports.abilities import ListsTagDigests
from importer.ports.registry import NotFound, Registry


def has_wildcard(glob: str) -> bool:
    return "*" in glob or "?" in glob


def repository_names(registry: Registry, glob: str | None, *, page_size: int | None) -> Iterator[str]:
    """The names to consider for `glob` (None: every repository), unfiltered and possibly repeated."""
    if glob is not None and not has_wildcard(glob):
        return iter((glob,))  # one repository named outright: no catalog needed (nor the right to read it)
    if isinstance(registry, ListsTagDigests):
        return registry.list_repository_names(page_size=page_size)
    return registry.catalog(page_size=page_size)


def list_tags(registry: Registry, policy: Policy, repository: str, *, page_size: int | None,
              clock: Callable[[], str]) -> list[ListedTag]:
    """Every tag of `repository` (none when it was deleted since the catalog named it); RegistryError passes."""
    rule = policy.rule_for(repository)
    ignored = "repository is ignored by the policy" if rule.ignore else None
    try:
        if isinstance(registry, ListsTagDigests):
            read_at = clock()  # before the listing: anything recorded after it is newer than what we saw
            listing = registry.list_tag_properties(repository, page_size=page_size)
            return [ListedTag(repository, tag.name, tag.digest, read_at, ignored) for tag in listing]
        names = registry.list_tags(repository, page_size=page_size)
        return [ListedTag(repository, name, ignored_because=ignored) for name in names]
    except NotFound:  # deleted since the catalog named it: nothing left to judge
        return []
