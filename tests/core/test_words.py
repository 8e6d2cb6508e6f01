"""The one pluraliser: counts read as English for regular and irregular nouns, zero and one included."""

from __future__ import annotations

import pytest

from importer.core.words import agreeing, counted, plural_of


@pytest.mark.parametrize(
    ("noun", "expected"),
    [
        pytest.param("tag", "tags", id="regular"),
        pytest.param("index entry", "index entries", id="consonant-y"),
        pytest.param("day", "days", id="vowel-y"),
        pytest.param("process", "processes", id="ends-in-s"),
        pytest.param("box", "boxes", id="ends-in-x"),
        pytest.param("patch", "patches", id="ends-in-ch"),
        pytest.param("attestation", "attestations", id="attestation"),
    ],
)
def test_regular_plurals(noun: str, expected: str) -> None:
    assert plural_of(noun) == expected


@pytest.mark.parametrize(
    ("count", "noun", "plural", "expected"),
    [
        pytest.param(0, "tag", None, "0 tags", id="zero-is-plural"),
        pytest.param(1, "tag", None, "1 tag", id="one-is-singular"),
        pytest.param(2, "attestation", None, "2 attestations", id="two"),
        pytest.param(1, "index entry", None, "1 index entry", id="one-entry"),
        pytest.param(3, "index entry", None, "3 index entries", id="three-entries"),
        pytest.param(2, "child", "children", "2 children", id="irregular"),
        pytest.param(1, "child", "children", "1 child", id="irregular-one"),
    ],
)
def test_counted(count: int, noun: str, plural: str | None, expected: str) -> None:
    assert counted(count, noun, plural) == expected


@pytest.mark.parametrize(
    ("count", "expected"),
    [pytest.param(1, "disagrees", id="one"), pytest.param(0, "disagree", id="zero"), pytest.param(2, "disagree", id="two")],
)
def test_agreeing(count: int, expected: str) -> None:
    assert agreeing(count, "disagrees", "disagree") == expected
