"""Repository globs: compile a policy glob (``*``, ``?``, whole-segment ``**``) into a matcher that cannot backtrack.

The syntax is in the package docstring (`importer.core.policy`); `compile_glob` also records the literal
prefix that ``{path}`` in an upstream template strips.

    glob = compile_glob("dockerhub/**")
    glob.matches("dockerhub/library/nginx")      # True
    repository_matcher(["team/*", "infra/**"])   # a predicate over repository names

Matching is linear. A glob becomes a small automaton (at most one state per character, plus the end) that reads
the name once, one character at a time, keeping the set of states it could be in as the bits of an integer: every
character costs a few integer operations on at most ``MAX_GLOB_LENGTH + 1`` bits, whatever the glob, so a match
costs O(len(glob) * len(name)) bit operations at worst and no glob can make it backtrack. (The regex globs used to
be compiled to did: ``*a*a*a*a*a*a*a*a*a*a*b`` took 1.6 s against 32 `a`s and did not finish against 120.) Globs
are at most `MAX_GLOB_LENGTH` (255) characters, as long as a repository name can be; the names matched are
repository names, which the reference grammar bounds to 255 characters where they enter (events, references, the
registry client), though any string matches in time linear in its length.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from importer.core.reference import MAX_REPOSITORY_LENGTH

# What a glob may hold: the characters of a repository name plus the wildcards.
_GLOB_CHARACTERS = re.compile(r"[a-z0-9._/*?-]*")
WILDCARDS = re.compile(r"[*?]")
MAX_GLOB_LENGTH = MAX_REPOSITORY_LENGTH
_SHOWN_GLOB_CHARACTERS = 40  # of a glob too long to be one, in its error message


@dataclass(frozen=True, slots=True)
class _Automaton:
    """A glob's states as the bits of an integer (bit 0 the start, `accept` the end) and its moves by character class.

    A state moves to the next one on its class of character (`forward`: a literal character, or `any_forward`:
    any character but "/"), stays on any character but "/" (`loops`), goes back one on "/" (`back_on_slash`), and
    may skip one or two states without reading anything (`skip_one`, `skip_two`: a `*` that matched nothing, the
    end of a `**` run).
    """

    forward: dict[str, int]
    any_forward: int
    loops: int
    back_on_slash: int
    skip_one: int
    skip_two: int
    accept: int

    def matches(self, name: str) -> bool:
        states = self._closure(1)
        for character in name:
            if character == "/":
                states = ((states & self.forward.get("/", 0)) << 1) | ((states & self.back_on_slash) >> 1)
            else:
                moving = self.forward.get(character, 0) | self.any_forward
                states = ((states & moving) << 1) | (states & self.loops)
            if not states:
                return False
            states = self._closure(states)
        return bool(states & self.accept)

    def _closure(self, states: int) -> int:
        """`states` and every state reachable from them without reading a character."""
        while True:
            grown = states | ((states & self.skip_one) << 1) | ((states & self.skip_two) << 2)
            if grown == states:
                return states
            states = grown


class _AutomatonBuilder:
    """Lays out the states of a glob one construct after the other; each construct ends where the next begins."""

    def __init__(self) -> None:
        self._count = 0
        self._forward: dict[str, int] = {}
        self._any_forward = self._loops = self._back_on_slash = self._skip_one = self._skip_two = 0

    def _new_state(self) -> int:
        self._count += 1
        return 1 << (self._count - 1)

    def literal(self, character: str) -> None:
        state = self._new_state()
        self._forward[character] = self._forward.get(character, 0) | state

    def one(self) -> None:
        """`?`: one character other than "/"."""
        self._any_forward |= self._new_state()

    def star(self) -> None:
        """`*`: any run of characters other than "/", the empty run included."""
        state = self._new_state()
        self._loops |= state
        self._skip_one |= state

    def segments_with_slashes(self) -> None:
        """A leading or middle `**`: zero or more whole segments, each with its "/" (regex ``(?:[^/]+/)*``)."""
        segment_start, inside = self._new_state(), self._new_state()
        self._any_forward |= segment_start  # a segment's first character
        self._loops |= inside  # the rest of it
        self._back_on_slash |= inside  # its "/": another segment may follow
        self._skip_two |= segment_start  # or the run ends here

    def slashed_segments(self) -> None:
        """A trailing `**` after a segment: one or more "/segment" (regex ``(?:/[^/]+)+``)."""
        slash, segment_start, inside = self._new_state(), self._new_state(), self._new_state()
        self._forward["/"] = self._forward.get("/", 0) | slash
        self._any_forward |= segment_start
        self._loops |= inside
        self._back_on_slash |= inside
        self._skip_one |= inside

    def any_segments(self) -> None:
        """A `**` that is the whole glob: one or more segments joined by "/" (regex ``[^/]+(?:/[^/]+)*``)."""
        segment_start, inside = self._new_state(), self._new_state()
        self._any_forward |= segment_start
        self._loops |= inside
        self._back_on_slash |= inside
        self._skip_one |= inside

    def build(self) -> _Automaton:
        accept = self._new_state()
        return _Automaton(dict(self._forward), self._any_forward, self._loops, self._back_on_slash,
                          self._skip_one, self._skip_two, accept)


@dataclass(frozen=True, slots=True)
class RepositoryGlob:
    """A compiled repository glob and the literal prefix that `{path}` strips."""

    pattern: str
    literal_prefix: str | None  # None when the glob has no wildcard: `{path}` is then the whole name
    _automaton: _Automaton = field(repr=False, compare=False)

    def matches(self, repository: str) -> bool:
        """True when the glob matches the whole of `repository` (in time linear in its length)."""
        return self._automaton.matches(repository)

    def path_of(self, repository: str) -> str:
        if self.literal_prefix is None:
            return repository
        return repository[len(self.literal_prefix) :]


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> RepositoryGlob:
    """Compile a repository glob (see the package docstring); ValueError names what is wrong with it."""
    if not isinstance(pattern, str):
        raise ValueError(f"repository glob: expected a string, got {type(pattern).__name__}")
    if not pattern:
        raise ValueError("empty repository glob")
    if len(pattern) > MAX_GLOB_LENGTH:
        raise ValueError(
            f"{pattern[:_SHOWN_GLOB_CHARACTERS]!r}...: {len(pattern)} characters, over the {MAX_GLOB_LENGTH} a "
            "repository glob may have (as many as a repository name)"
        )
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

    # Consecutive `**` segments mean the same as one.
    collapsed = [s for i, s in enumerate(segments) if not (s == "**" and i > 0 and segments[i - 1] == "**")]
    last = len(collapsed) - 1
    builder = _AutomatonBuilder()
    for i, segment in enumerate(collapsed):
        if segment == "**":
            if i == 0 and i == last:
                builder.any_segments()
            elif i == last:
                builder.slashed_segments()  # one or more segments: `a/**` does not match `a`
            else:
                if i > 0:
                    builder.literal("/")
                builder.segments_with_slashes()  # zero or more segments, each with its slash
            continue
        if i > 0 and collapsed[i - 1] != "**":
            builder.literal("/")
        for character in segment:
            if character == "*":
                builder.star()
            elif character == "?":
                builder.one()
            else:
                builder.literal(character)

    first_wildcard = WILDCARDS.search(pattern)
    literal_prefix = pattern[: first_wildcard.start()] if first_wildcard else None
    return RepositoryGlob(pattern, literal_prefix, builder.build())


def repository_matcher(patterns: tuple[str, ...] | list[str]) -> Callable[[str], bool]:
    """A predicate true for repository names matching any of `patterns` (the policy's glob rules); ValueError if bad."""
    globs = tuple(compile_glob(pattern) for pattern in patterns)
    return lambda repository: any(glob.matches(repository) for glob in globs)
