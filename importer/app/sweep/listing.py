"""Listing for a sweep: the repositories of a registry, and the tags of one repository as ListedTag.

    names = repository_names(registry, "team/**", page_size=None)   # a glob without wildcards names one outright
    tags = list_tags(registry, policy, "team/app", page_size=None, clock=utc_now, deadline=deadline)
    entry = listed_tag(registry, policy, "team/app", "1.0", clock=utc_now)   # one tag: a HEAD, no listing
    order = resume_order(["team/m", "team/n"], names)   # team/m, team/n, then team/o … team/z, team/a … team/l

Both follow `Link` pagination through the registry client. ACR (`ListsTagDigests`) lists through `/acr/v1`, which
also gives each tag's digest, so a sweep needs no HEAD per tag there. `list_tags` raises OutOfTime when the deadline
passes before it is done; the scan reads the catalog through `before(deadline, …)` as well.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence

from importer.app.sweep.budget import before
from importer.app.sweep.model import ListedTag, has_wildcard
from importer.core.policy import Policy
from importer.ports.abilities import ListsTagDigests
from importer.ports.registry import NotFound, Registry


def repository_names(registry: Registry, glob: str | None, *, page_size: int | None) -> Iterator[str]:
    """The names to consider for `glob` (None: every repository), unfiltered and possibly repeated."""
    if glob is not None and not has_wildcard(glob):
        return iter((glob,))  # one repository named outright: no catalog needed (nor the right to read it)
    if isinstance(registry, ListsTagDigests):
        return registry.list_repository_names(page_size=page_size)
    return registry.catalog(page_size=page_size)


def list_tags(registry: Registry, policy: Policy, repository: str, *, page_size: int | None,
              clock: Callable[[], str], deadline: float | None = None) -> list[ListedTag]:
    """Every tag of `repository` (none when it was deleted since the catalog named it); RegistryError passes, and
    OutOfTime when `deadline` passes first."""
    rule = policy.rule_for(repository)
    ignored = "repository is ignored by the policy" if rule.ignore else None
    try:
        if isinstance(registry, ListsTagDigests):
            read_at = clock()  # before the listing: anything recorded after it is newer than what we saw
            listing = registry.list_tag_properties(repository, page_size=page_size)
            return [ListedTag(repository, tag.name, tag.digest, read_at, ignored)
                    for tag in before(deadline, listing)]
        names = registry.list_tags(repository, page_size=page_size)
        return [ListedTag(repository, name, ignored_because=ignored) for name in before(deadline, names)]
    except NotFound:  # deleted since the catalog named it: nothing left to judge
        return []


def listed_tag(registry: Registry, policy: Policy, repository: str, tag: str, *,
               clock: Callable[[], str]) -> ListedTag | None:
    """`tag` of `repository` as `list_tags` would list it, from one HEAD instead of the whole listing: its digest and
    when it was read where the listing gives them (ACR), not elsewhere; None when the repository has no such tag (or
    no longer exists). RegistryError passes."""
    rule = policy.rule_for(repository)
    ignored = "repository is ignored by the policy" if rule.ignore else None
    with_digest = isinstance(registry, ListsTagDigests)
    read_at = clock() if with_digest else None  # before the read: anything recorded after it is newer
    try:
        head = registry.head_manifest(repository, tag)
    except NotFound:
        return None
    if head is None:
        return None
    if with_digest:
        return ListedTag(repository, tag, head.digest, read_at, ignored)
    return ListedTag(repository, tag, ignored_because=ignored)


def resume_order(resume: Sequence[str], repositories: Iterable[str]) -> list[str]:
    """The order to sweep `repositories` in: first those of `resume` (the repositories the last run did not reach, in
    its order), then the others in name order, starting after the last of `resume` and wrapping around — so that a
    resume point cut short still continues where the last run stopped."""
    listed = set(repositories)
    first = [name for name in dict.fromkeys(resume) if name in listed]
    rest = sorted(listed.difference(first))
    if resume:
        cut = bisect.bisect_right(rest, resume[-1])
        rest = rest[cut:] + rest[:cut]
    return first + rest
