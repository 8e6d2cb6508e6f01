"""Short, escaped quotes of what others wrote, for error messages: never the whole value, never raw control characters.

    excerpt(value)          # "['x', 'x', 'x', 'x', 'x', 'x', ...]", "'yyyyyyyy...": at most 80 characters
    excerpt(value, 200)     # a longer limit
    excerpt_text(text)      # free text (a parser's own message): unsafe characters escaped, cut to 200 characters
    json_excerpt(value)     # a value read from JSON, in JSON's terms: '""', '64', 'null', "an object with 2 keys"

A value from outside the process may be huge (a megabyte string, a list of a million items, a YAML alias bomb whose
`repr` is gigabytes long) or hold terminal controls. Messages quote it through these functions: the work is bounded
by the limit, not by the value (at most `_MAX_ITEMS` items per container, `_MAX_LEVELS` levels deep), and every
character that is not printable is shown escaped as in a Python literal (`\\x1b`, `\\u202e`, `\\ud800`), as `repr`
shows it — which covers every character `importer.core.safe_text` calls unsafe.
"""

from __future__ import annotations

import datetime
import itertools
import json
from collections.abc import Mapping

from importer.core.words import counted

__all__ = ["MAX_EXCERPT_CHARACTERS", "MAX_EXCERPT_TEXT_CHARACTERS", "excerpt", "excerpt_text", "json_excerpt"]

MAX_EXCERPT_CHARACTERS = 80
MAX_EXCERPT_TEXT_CHARACTERS = 200
_MAX_ITEMS = {"list": 6, "mapping": 4}  # as many as reprlib shows
_MAX_LEVELS = 3
_MAX_INTEGER_BITS = 256  # a longer integer is described, not written out
_CUT = "..."


def excerpt(value: object, limit: int = MAX_EXCERPT_CHARACTERS) -> str:
    """`value` as `repr` would write it, but at most `limit` characters (ending "..." when cut), whatever its size."""
    shown = _render(value, _MAX_LEVELS, limit)
    return shown if len(shown) <= limit else shown[: max(limit - len(_CUT), 0)] + _CUT


def excerpt_text(text: str, limit: int = MAX_EXCERPT_TEXT_CHARACTERS) -> str:
    """Free text with every character that is not printable escaped, cut to about `limit` characters."""
    cut = text[:limit]
    escaped = "".join(character if character.isprintable() else repr(character)[1:-1] for character in cut)
    return escaped + _CUT if len(text) > limit else escaped


def json_excerpt(value: object, limit: int = MAX_EXCERPT_CHARACTERS) -> str:
    """A value read from JSON, as a message should show it to someone who wrote JSON: a string as a JSON string (cut
    to `limit`, every character outside printable ASCII escaped), a number as JSON writes it, `true`, `false`,
    `null`; an array or object only by its kind and size ("an array of 3 items", "an object with 2 keys"), never its
    content or a Python repr of it. Bounded by `limit`, whatever the value's size."""
    if isinstance(value, str):
        shown = json.dumps(value[: limit + 1])  # ensure_ascii: controls and non-ASCII come out as \u escapes
        return shown if len(shown) <= limit else shown[: max(limit - len(_CUT) - 1, 0)] + _CUT + '"'
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        bits = value.bit_length()
        return str(value) if bits <= _MAX_INTEGER_BITS else f"an integer of {bits} bits"
    if isinstance(value, float):
        return json.dumps(value)[:limit]
    if isinstance(value, list | tuple):
        return f"an array of {counted(len(value), 'item')}"
    if isinstance(value, Mapping):
        return f"an object with {counted(len(value), 'key')}"
    return f"a {type(value).__name__}"


def _render(value: object, levels: int, limit: int) -> str:
    if isinstance(value, str):
        return repr(value[: limit + 1])
    if isinstance(value, bytes | bytearray):
        return repr(bytes(value[: limit + 1]))
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        bits = value.bit_length()
        return repr(value) if bits <= _MAX_INTEGER_BITS else f"<an integer of {bits} bits>"
    if isinstance(value, datetime.date | datetime.time | datetime.timedelta):
        return repr(value)
    if isinstance(value, Mapping):
        if levels == 0:
            return "{...}"
        pairs = [f"{_render(key, levels - 1, limit)}: {_render(item, levels - 1, limit)}"
                 for key, item in itertools.islice(value.items(), _MAX_ITEMS["mapping"])]
        return "{" + ", ".join([*pairs, *([_CUT] if len(value) > len(pairs) else [])]) + "}"
    if isinstance(value, list | tuple | set | frozenset):
        opening, closing = "[]" if isinstance(value, list) else "()" if isinstance(value, tuple) else "{}"
        if levels == 0:
            return f"{opening}{_CUT}{closing}"
        items = [_render(item, levels - 1, limit) for item in itertools.islice(value, _MAX_ITEMS["list"])]
        return opening + ", ".join([*items, *([_CUT] if len(value) > len(items) else [])]) + closing
    return f"<{type(value).__name__}>"
