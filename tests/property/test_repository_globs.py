"""Properties of repository globs (importer.core.policy.globs) against an independent reference matcher.

For any text, `compile_glob` returns a glob or raises ValueError. For any glob it accepts and any name, the matcher
agrees with `reference_match`, a plain dynamic-programming reading of the documented semantics (the package
docstring of importer.core.policy), and answers within the bounds of `tests.property.hostile` however many
wildcards the glob has and however long the name is, whether it is asked directly, through `repository_matcher`,
or through a parsed policy's `rule_for`. Hostile globs are matched in a forked child (`bounded_in_child`): a
backtracking regex would hold the GIL for hours, and the child is killed instead.
"""

from __future__ import annotations

import functools

from hypothesis import example, given, settings
from hypothesis import strategies as st

from importer.core.policy import PolicyError, parse_policy, repository_matcher
from importer.core.policy.globs import compile_glob
from tests.property.hostile import bounded, bounded_in_child, hostile_text, scaled_examples


def reference_match(glob: str, name: str) -> bool:
    """The documented semantics, read literally: `*` any run within a segment, `?` one character but `/`, `**` a
    whole segment spanning whole non-empty segments (one or more when it is last or alone, else zero or more)."""
    globs = [segment for number, segment in enumerate(glob.split("/"))
             if not (segment == "**" and number > 0 and glob.split("/")[number - 1] == "**")]
    names = name.split("/")

    @functools.cache
    def segments(g: int, n: int) -> bool:
        if g == len(globs):
            return n == len(names)
        if globs[g] == "**":
            least = 1 if g == len(globs) - 1 else 0
            return any(segments(g + 1, n + taken) for taken in range(least, len(names) - n + 1)
                       if all(names[n:n + taken]))
        return n < len(names) and _segment_match(globs[g], names[n]) and segments(g + 1, n + 1)

    return segments(0, 0)


def _segment_match(pattern: str, text: str) -> bool:
    """`*` and `?` within one segment: the textbook table, pattern prefix by text prefix."""
    row = [True] + [False] * len(text)
    for character in pattern:
        if character == "*":
            row = [any(row[: end + 1]) for end in range(len(text) + 1)]
        else:
            row = [False] + [row[end] and (character == "?" or character == text[end]) for end in range(len(text))]
    return row[-1]


GLOB_PIECES = st.sampled_from(("a", "b", "-", ".", "*", "?", "/", "**", "*a", "a*"))
NAME_PIECES = st.sampled_from(("a", "b", "-", ".", "/", "ab", "aa"))
GLOBS = st.lists(GLOB_PIECES, min_size=1, max_size=10).map("".join)
NAMES = st.lists(NAME_PIECES, min_size=0, max_size=14).map("".join)
# Globs that make a backtracking matcher explore every way to split the name, and names that fail only at the end.
HOSTILE_GLOBS = st.one_of(
    st.builds(lambda stars, unit, tail: unit * stars + tail, st.integers(2, 120),
              st.sampled_from(("*a", "*?", "a*", "?*", "*-", "**/*a/")), st.sampled_from(("*b", "b", "**", "?b"))),
    st.builds(lambda count: "/".join(["**", "*a*"] * count) + "/b", st.integers(1, 40)),
    hostile_text(),
)
LONG_NAMES = st.builds(lambda unit, count, tail: unit * count + tail, st.sampled_from(("a", "a/", "aa-", "a.")),
                       st.integers(1, 3_000), st.sampled_from(("", "c", "/c", "-")))


@given(glob=hostile_text())
def test_any_text_compiles_to_a_glob_or_a_value_error(glob: str) -> None:
    bounded(lambda: compile_glob(glob), allowed=(ValueError,), what="glob")


@settings(max_examples=scaled_examples(10.0))
@given(glob=GLOBS, name=NAMES)
@example(glob="a/**", name="a")
@example(glob="**/b", name="b")
@example(glob="a/**/b", name="a/b")
@example(glob="*", name="")
def test_the_matcher_agrees_with_the_documented_semantics(glob: str, name: str) -> None:
    """Short globs and names, where any correct matcher is quick: the answer is the reference answer."""
    try:
        compile_glob(glob)
    except ValueError:
        return
    assert repository_matcher((glob,))(name) is reference_match(glob, name), (glob, name)


@given(glob=HOSTILE_GLOBS, name=LONG_NAMES)
@example(glob="*a*a*a*a*a*a*a*a*a*a*b", name="a" * 120)  # issue 12 item 8: minutes of backtracking before the fix
@example(glob="**/*a*/**/*a*/**/*a*/**/*a*/b", name="a/" * 60 + "c")
def test_hostile_globs_match_long_names_in_bounded_time(glob: str, name: str) -> None:
    """Any glob against any name, directly: a bool, or ValueError for a glob that is refused."""
    answer = bounded_in_child(lambda: repository_matcher((glob,))(name), allowed=(ValueError,), what="match")
    assert isinstance(answer, bool | ValueError)


@settings(max_examples=scaled_examples(0.5))
@given(glob=HOSTILE_GLOBS, name=LONG_NAMES)
@example(glob="*a*a*a*a*a*a*a*a*a*a*b", name="a" * 120)
def test_hostile_globs_in_a_policy_pick_rules_in_bounded_time(glob: str, name: str) -> None:
    """The same through a parsed policy: the policy is refused (PolicyError), or `rule_for` answers in bounded time."""
    text = f"version: 1\nrules:\n  - repositories: [{glob!r}]\n    require: [linux/arm64]\n"

    def rule_index() -> int | None:
        return parse_policy(text, source="glob.yaml").rule_for(name).index

    index = bounded_in_child(rule_index, allowed=(PolicyError,), what="policy")
    assert index in (0, None) or isinstance(index, PolicyError)
