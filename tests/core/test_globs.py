"""Repository globs (importer.core.policy.globs): the documented semantics, kept exactly, at a cost linear in the name.

The matcher simulates the glob's automaton one character at a time, so no glob can make it backtrack. Three tables
prove it: semantic cases (every construct, and names that are not repository names at all), an equivalence property
against the regex translation the globs used to be compiled to (the reference semantics, run here only on inputs too
short to backtrack badly), and hostile globs against long names through every way a name reaches a glob.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.core.policy import Rule, parse_policy, repository_matcher
from importer.core.policy.globs import MAX_GLOB_LENGTH, compile_glob
from importer.core.policy.upstream import guarded_repository_for

# --- the semantics ---------------------------------------------------------------------------------------------------

SEMANTIC_CASES = [
    # `*`: any run within one segment, the empty run included
    ("*", "a", True),
    ("*", "", True),  # not a repository name, but `*` matches the empty run
    ("*", "a/b", False),
    ("a*", "a", True),
    ("*a", "ba", True),
    ("*a", "ab", False),
    ("a*b*c", "abc", True),
    ("a*b*c", "axxbyyc", True),
    ("a*b*c", "acb", False),
    ("*a*a*b", "aab", True),
    ("*a*a*b", "ab", False),
    ("*-*", "-", True),
    # `?`: exactly one character other than `/`
    ("?", "a", True),
    ("?", "", False),
    ("?", "/", False),
    ("??", "ab", True),
    ("??", "abc", False),
    ("?*", "a", True),
    ("?*", "", False),
    ("*?", "abc", True),
    # literal characters are literal
    ("a.b", "a.b", True),
    ("a.b", "axb", False),
    ("a-b_c", "a-b_c", True),
    ("team/app", "TEAM/app", False),  # names are compared as they are: no case folding
    ("team/app", "team/app/", False),
    # a sole `**`: one or more non-empty segments
    ("**", "a", True),
    ("**", "a/b/c", True),
    ("**", "", False),
    ("**", "/a", False),
    ("**", "a/", False),
    ("**", "a//b", False),
    # a leading `**`: zero or more whole segments
    ("**/b", "b", True),
    ("**/b", "a/b", True),
    ("**/b", "a/x/b", True),
    ("**/b", "/b", False),
    ("**/b", "ab", False),
    ("**/b", "a//b", False),
    ("**/*", "a", True),
    ("**/*", "a/b", True),
    # a middle `**`: zero or more whole segments
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a//b", False),
    ("a/**/b", "a/xb", False),
    ("a/**/b/**/c", "a/b/c", True),
    ("a/**/b/**/c", "a/x/b/y/z/c", True),
    ("a/**/b/**/c", "a/c", False),
    ("a/**/**/b", "a/b", True),  # consecutive `**` mean one
    ("**/**", "a", True),
    # a trailing `**`: one or more whole segments (the contents of what comes before)
    ("a/**", "a/b", True),
    ("a/**", "a/b/c", True),
    ("a/**", "a", False),
    ("a/**", "a/", False),
    ("a/**", "a//b", False),
    ("a/**", "ab/c", False),
    ("*/**", "x/y", True),
    ("*/**", "x", False),
    ("**/a/**", "a/b", True),
    ("**/a/**", "x/a/b/c", True),
    ("**/a/**", "x/a", False),
    ("?/**/?", "a/b", True),
    ("?/**/?", "a/xx/b", True),
    ("?/**/?", "ab", False),
    # the documented examples
    ("dockerhub/**", "dockerhub/library/nginx", True),
    ("dockerhub/**", "dockerhub", False),
    ("dh-*", "dh-nginx", True),
    ("team/*-web", "team/shop-web", True),
    ("team/*-web", "team/shop-web/x", False),
    ("*/scratch-*", "team/scratch-1", True),
]


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    SEMANTIC_CASES,
    ids=[f"{pattern} {'~' if expected else '!~'} {name!r}" for pattern, name, expected in SEMANTIC_CASES],
)
def test_glob_semantics(pattern: str, name: str, expected: bool) -> None:
    """Each construct matches exactly what the policy contract says, through the compiled glob, a rule and a matcher."""
    assert compile_glob(pattern).matches(name) is expected
    assert Rule(repositories=(pattern,)).matches(name) is expected
    assert repository_matcher((pattern,))(name) is expected


def _regex_translation(pattern: str) -> re.Pattern[str]:
    """What globs were compiled to before the automaton: the reference semantics (it backtracks; short inputs only)."""
    segments = pattern.split("/")
    collapsed = [s for i, s in enumerate(segments) if not (s == "**" and i > 0 and segments[i - 1] == "**")]
    last = len(collapsed) - 1
    parts: list[str] = []
    for i, segment in enumerate(collapsed):
        if segment == "**":
            if i == 0 and i == last:
                parts.append(r"[^/]+(?:/[^/]+)*")
            elif i == last:
                parts.append(r"(?:/[^/]+)+")
            else:
                if i > 0:
                    parts.append("/")
                parts.append(r"(?:[^/]+/)*")
            continue
        if i > 0 and collapsed[i - 1] != "**":
            parts.append("/")
        parts.append("".join({"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c)) for c in segment))
    return re.compile("".join(parts))


_SEGMENT = st.one_of(
    st.just("**"),
    st.lists(st.sampled_from(["a", "b", "*", "?"]), min_size=1, max_size=4).map("".join).filter(
        lambda segment: "**" not in segment  # `**` within a segment is refused (tested in test_policy)
    ),
)
_GLOBS = st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join)
_NAMES = st.lists(st.sampled_from(["a", "b", "/", "c"]), max_size=10).map("".join)


@settings(database=None, max_examples=500, deadline=None)
@given(_GLOBS, _NAMES)
def test_glob_matches_like_its_regex_translation(pattern: str, name: str) -> None:
    """On any glob of a, b, *, ? and ** and any short name (non-names too), the automaton agrees with the regex."""
    assert compile_glob(pattern).matches(name) is (_regex_translation(pattern).fullmatch(name) is not None)


# --- the length bound ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "accepted"),
    [("a" * MAX_GLOB_LENGTH, True), ("*a" * (MAX_GLOB_LENGTH // 2) + "*", True),
     ("a" * (MAX_GLOB_LENGTH + 1), False), ("*a" * 10_000, False)],
    ids=["255-literal", "255-stars", "256-literal", "20000-stars"],
)
def test_glob_length_is_bounded(pattern: str, accepted: bool) -> None:
    """A glob may be as long as a repository name (255 characters); a longer one is refused, quoted cut short."""
    if accepted:
        assert compile_glob(pattern).pattern == pattern
        return
    with pytest.raises(ValueError, match=f"{len(pattern)} characters, over the {MAX_GLOB_LENGTH}") as refused:
        compile_glob(pattern)
    assert len(str(refused.value)) < 200


# --- hostile globs, through every way a name reaches one -------------------------------------------------------------

BACKTRACKING_GLOB = "*a" * 10 + "*b"  # `*a*a*a*a*a*a*a*a*a*a*b`: catastrophic for a backtracking regex
HOSTILE_CASES = [
    ("stars-120", BACKTRACKING_GLOB, "a" * 120, False),
    ("stars-255", BACKTRACKING_GLOB, "a" * 255, False),
    ("stars-matching", BACKTRACKING_GLOB, "a" * 254 + "b", True),
    ("question-stars", "?*" * 60 + "b", "a" * 255, False),
    ("many-stars-max-length", "*a" * 127 + "*", "a" * 126 + "b" * 129, False),
    ("double-stars-segments", "**/a*a*a*a*a*a*a*a*b/**", "a/" * 64 + "a" * 120, False),
    ("segments-of-stars", "/".join(["*a*a*a*b"] * 8), "/".join(["a" * 30] * 8), False),
]


def _matched_through(way: str, pattern: str, name: str) -> bool:
    if way == "rule":
        return Rule(repositories=(pattern,)).matches(name)
    if way == "policy":  # rule_for: what every event and `check` go through
        policy = parse_policy(f"version: 1\nrules:\n  - repositories: ['{pattern}']\n    require: [linux/arm64]\n")
        return policy.rule_for(name) is policy.rules[0]
    if way == "matcher":  # paused repositories, `audit --repositories`
        return repository_matcher((pattern,))(name)
    if way == "upstream":  # a chart's image mapped back to the guarded repository
        policy = parse_policy(f"version: 1\nrules:\n  - repositories: ['{pattern}']\n    upstream: ghcr.io/{{path}}\n")
        return guarded_repository_for(policy, f"ghcr.io/{name}:1") is not None
    raise AssertionError(way)


WAYS = ["rule", "policy", "matcher", "upstream"]


@pytest.mark.timeout(60)  # before the automaton these took hours; the bound below is what is asserted
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(
    ("pattern", "name", "expected"), [case[1:] for case in HOSTILE_CASES], ids=[case[0] for case in HOSTILE_CASES]
)
def test_hostile_globs_match_in_linear_time(way: str, pattern: str, name: str, expected: bool) -> None:
    """Globs with many stars against long names answer right, in well under a second, whichever way they are used."""
    started = time.process_time()
    assert _matched_through(way, pattern, name) is expected
    assert time.process_time() - started < 1.0


def _timed(call: Callable[[], object]) -> float:
    started = time.process_time()
    call()
    return time.process_time() - started


@pytest.mark.timeout(60)
def test_matching_cost_grows_linearly_with_the_name() -> None:
    """Doubling the name about doubles the cost (a backtracking matcher multiplies it by far more)."""
    glob = compile_glob("*a" * 100 + "*b")
    names = {length: "a" * length for length in (2_000, 4_000)}
    cost = {length: min(_timed(lambda: [glob.matches(name) for _ in range(20)]) for _ in range(3))
            for length, name in names.items()}
    assert cost[4_000] < 4 * cost[2_000] + 0.01, cost
