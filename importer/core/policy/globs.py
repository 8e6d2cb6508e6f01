"""Repository globs: compile a policy glob (``*``, ``?``, whole-segment ``**``) into an anchored regex.

The syntax is in the package docstring (`importer.core.policy`); `compile_glob` also records the literal
prefix that ``{path}`` in an upstream template strips.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

# What a glob may hold: the characters of a repository name plus the wildcards.
_GLOB_CHARACTERS = re.compile(r"[a-z0-9._/*?-]*")
WILDCARDS = re.compile(r"[*?]")


@dataclass(frozen=True, slots=True)
class RepositoryGlob:
    """A compiled repository glob and the literal prefix that `{path}` strips."""

    pattern: str
    regex: re.Pattern[str]
    literal_prefix: str | None  # None when the glob has no wildcard: `{path}` is then the whole name

    def path_of(self, repository: str) -> str:
        if self.literal_prefix is None:
            return repository
        return repository[len(self.literal_prefix) :]


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> RepositoryGlob:
    """Compile a repository glob (see the package docstring); ValueError names what is wrong with it."""
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

    first_wildcard = WILDCARDS.search(pattern)
    literal_prefix = pattern[: first_wildcard.start()] if first_wildcard else None
    return RepositoryGlob(pattern, re.compile("".join(parts)), literal_prefix)


def repository_matcher(patterns: tuple[str, ...] | list[str]) -> Callable[[str], bool]:
    """A predicate true for repository names matching any of `patterns` (the policy's glob rules); ValueError if bad."""
    globs = tuple(compile_glob(pattern) for pattern in patterns)
    return lambda repository: any(glob.regex.fullmatch(repository) for glob in globs)
