"""Properties of image references (importer.core.reference) over hostile text.

For any text: `parse_reference` returns a Reference or raises ReferenceError, and a parsed reference prints to text
that parses back to the same reference; `validate_repository`, `validate_tag`, `validate_digest` and `validate_host`
return their input or raise ReferenceError, and agree with their `is_valid_*` twins; `is_loopback_host` and
`names_registry` answer for any text without raising. All within the bounds of `tests.property.hostile`, for names
far longer than any limit (the grammar's regexes must not backtrack on them: each call runs in a forked child that
is killed if it hangs, `bounded_in_child`).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from importer.core.reference import (
    MAX_REPOSITORY_LENGTH,
    Reference,
    ReferenceError,
    is_loopback_host,
    is_valid_digest,
    is_valid_host,
    is_valid_repository,
    is_valid_tag,
    names_registry,
    parse_reference,
    validate_digest,
    validate_host,
    validate_repository,
    validate_tag,
)
from tests.property.event_bodies import DIGESTS, REPOSITORIES, TAGS
from tests.property.hostile import bounded_in_child, hostile_text, huge_text, mostly, scaled_examples, spliced

FORKED_EXAMPLES = scaled_examples(0.5)  # every example forks a child (`bounded_in_child`): half as many

HOSTS = st.sampled_from(("docker.io", "index.docker.io", "127.0.0.1:5000", "localhost", "[::1]:5000",
                         "contoso.azurecr.io", "ghcr.io", "a" * 300 + ".io", "[::ffff:127.0.0.1]"))
# Runs that make regexes with nested repetition backtrack, if they can: long, and failing only at the very end.
BACKTRACKING_BAIT = st.builds(
    lambda unit, count, tail: unit * count + tail,
    st.sampled_from(("a-", "a.", "a__", "a-a", "a.a-", "aa/", "a", "0.")),
    st.one_of(st.integers(10, 260), st.integers(260, 60_000)),  # under and over the 255-character limit
    st.sampled_from(("!", "-", "/", ":", "A", "", "@sha256:x")),
)
REFERENCE_TEXTS = mostly(
    st.builds(lambda host, repository, tag, digest: f"{host}/{repository}{tag}{digest}",
              HOSTS, REPOSITORIES, st.one_of(st.just(""), TAGS.map(lambda tag: ":" + tag)),
              st.one_of(st.just(""), DIGESTS.map(lambda digest: "@" + digest))),
    st.one_of(hostile_text(), BACKTRACKING_BAIT, spliced(REPOSITORIES), huge_text()),
    valid_share=2,
)


@settings(max_examples=FORKED_EXAMPLES)
@given(text=REFERENCE_TEXTS)
@example(text="a-" * 100_000 + "!")
@example(text="127.0.0.1:5000/" + "a" * 254 + "!")  # as long as the length check lets through to the regex
@example(text="127.0.0.1:5000/" + "a" * 200 + ":" + "b" * 120 + "!")
@example(text="127.0.0.1:5000/" + "a" * 300)
@example(text="docker.io/library/nginx:\ud800")
def test_any_text_parses_to_a_reference_that_round_trips_or_is_refused(text: str) -> None:
    """A Reference whose text parses to itself, or ReferenceError naming the input."""
    reference = bounded_in_child(lambda: parse_reference(text), allowed=(ReferenceError,), what="reference")
    if isinstance(reference, Reference):
        assert parse_reference(str(reference)) == reference
        assert is_valid_repository(reference.repository) and len(reference.repository) <= MAX_REPOSITORY_LENGTH
        assert reference.tag is None or is_valid_tag(reference.tag)
        assert reference.digest is None or is_valid_digest(reference.digest)
        assert reference.tag is not None or reference.digest is not None


VALIDATORS: dict[str, tuple[Callable[[str], str], Callable[[str], bool], st.SearchStrategy[str]]] = {
    "repository": (validate_repository, is_valid_repository, REPOSITORIES),
    "tag": (validate_tag, is_valid_tag, TAGS),
    "digest": (validate_digest, is_valid_digest, DIGESTS),
    "host": (validate_host, is_valid_host, HOSTS),
}


@pytest.mark.parametrize("kind", VALIDATORS, ids=list(VALIDATORS))
@settings(max_examples=FORKED_EXAMPLES)
@given(data=st.data())
def test_each_validator_agrees_with_its_predicate(kind: str, data: st.DataObject) -> None:
    """`validate_*` returns its input exactly when `is_valid_*` is true, and raises ReferenceError otherwise."""
    validate, is_valid, valid = VALIDATORS[kind]
    text = data.draw(mostly(valid, st.one_of(hostile_text(), BACKTRACKING_BAIT, spliced(valid)), valid_share=1))
    answer = bounded_in_child(lambda: validate(text), allowed=(ReferenceError,), what=kind)
    assert (answer == text) is is_valid(text), (answer, text[:100])


# Names as long as each length check lets through, failing only at the last character.
BAIT_TABLE = [
    pytest.param(kind, text, id=f"{kind}-{label}")
    for kind, texts in {
        "repository": {"254-letters": "a" * 254 + "!", "dashes": "a-" * 127 + "!", "segments": "ab/" * 84 + "!"},
        "tag": {"128-letters": "a" * 127 + "!", "dots": "a." * 64 + "!"},
        "digest": {"long-hex": "sha256:" + "a" * 300 + "!", "no-algorithm": "a" * 300},
        "host": {"long-name": "a" * 3_000 + "!", "labels": "a-" * 2_000 + ".", "port": "a.b:" + "1" * 3_000},
    }.items()
    for label, text in texts.items()
]


@pytest.mark.parametrize(("kind", "text"), BAIT_TABLE)
def test_validators_answer_backtracking_bait_in_bounded_time(kind: str, text: str) -> None:
    validate, is_valid, _ = VALIDATORS[kind]
    answer = bounded_in_child(lambda: validate(text), allowed=(ReferenceError,), what=kind)
    assert (answer == text) is is_valid(text)


@settings(max_examples=FORKED_EXAMPLES)
@given(text=st.one_of(hostile_text(), HOSTS, BACKTRACKING_BAIT))
@example(text="[" + ":" * 100_000)
def test_host_predicates_answer_for_any_text(text: str) -> None:
    """`is_loopback_host` and `names_registry` never raise."""
    answers = bounded_in_child(lambda: (is_loopback_host(text), names_registry(text)), allowed=(), what="host")
    assert isinstance(answers, tuple) and all(isinstance(answer, bool) for answer in answers), answers
