"""`json_excerpt`: a value read from JSON, shown in JSON's terms in a message, bounded and escaped (pure)."""

from __future__ import annotations

import pytest

from importer.core.excerpts import MAX_EXCERPT_CHARACTERS, json_excerpt

CASES = [
    ("empty-string", "", '""'),
    ("string", "linux", '"linux"'),
    ("terminal-escape", "\x1b[2J", '"\\u001b[2J"'),
    ("right-to-left-override", "a\u202eb", '"a\\u202eb"'),
    ("quote", 'say "x"', '"say \\"x\\""'),
    ("integer", 64, "64"),
    ("negative", -1, "-1"),
    ("huge-integer", 2**300, "an integer of 301 bits"),
    ("float", 1.5, "1.5"),
    ("true", True, "true"),
    ("false", False, "false"),
    ("null", None, "null"),
    ("empty-array", [], "an array of 0 items"),
    ("one-item-array", ["v7"], "an array of 1 item"),
    ("object", {"name": "linux", "x": 1}, "an object with 2 keys"),
    ("one-key-object", {"name": "linux"}, "an object with 1 key"),
]


@pytest.mark.parametrize(("_", "value", "shown"), CASES, ids=[case[0] for case in CASES])
def test_json_excerpt(_: str, value: object, shown: str) -> None:
    """Strings and scalars as JSON writes them (every character outside printable ASCII escaped); arrays and objects
    by kind and size only: never their content, never a Python repr."""
    assert json_excerpt(value) == shown


BIG = {
    "megabyte-string": "x" * 1_000_000,
    "many-escapes": "\x1b" * 100_000,
    "million-items": ["x"] * 1_000_000,
    "ten-thousand-keys": {str(n): n for n in range(10_000)},
}


@pytest.mark.parametrize("value", BIG.values(), ids=BIG.keys())
def test_json_excerpt_is_bounded(value: object) -> None:
    """Whatever the value's size, the excerpt stays within the limit and holds no raw control character."""
    shown = json_excerpt(value)
    assert len(shown) <= MAX_EXCERPT_CHARACTERS and "\x1b" not in shown and "{" not in shown
