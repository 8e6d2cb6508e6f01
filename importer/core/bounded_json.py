"""JSON from outside the process, parsed only when it nests no deeper than `MAX_JSON_DEPTH` arrays and objects.

Python's parser recurses once per level and gives up with RecursionError near 1,000 levels, minus whatever the
caller's stack already uses; and everything that walks the document afterwards (json.dumps of a rejected event,
a manifest's fields, an error message) recurses again, deeper in the stack. A body nested ~976 deep passed the
parser and then crashed the code after it. So the depth is measured first, in linear time and without recursion,
and a document deeper than the limit is refused before anything parses it:

    document = loads(body)          # JsonTooDeep (a ValueError) past MAX_JSON_DEPTH; json's own errors as usual

Every JSON document the guard reads from outside goes through here: event bodies (importer/core/events), manifests
and image configs (importer/core/manifests.py), and registry answers (token responses, error bodies, listings).
Real documents nest a handful of levels (an OCI index: 5; an Event Grid delivery: 5), so 64 leaves a wide margin.
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any

MAX_JSON_DEPTH = 64

# +1 for an opening bracket, -1 for a closing one, 0 for every other byte.
_DEPTH_STEP = tuple(1 if byte in b"[{" else -1 if byte in b"]}" else 0 for byte in range(256))
_NOT_BRACKETS_OR_QUOTES = bytes(byte for byte in range(256) if byte not in b'[]{}"')
_CHUNK = 64 * 1024  # brackets measured at a time by check_depth


class JsonTooDeep(ValueError):
    """A JSON document nested deeper than the limit; the message says so and names the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested too deeply (more than {limit} levels of arrays and objects)")
        self.limit = limit


def nesting_depth(text: bytes | str) -> int:
    """How many arrays and objects are open at the deepest point of `text`, brackets inside strings not counted.

    Linear time, no recursion, every step a C-speed bytes operation. Exact for valid JSON; for invalid JSON it
    counts the brackets of the part a parser reads before it reaches the error, so it never undercounts what a
    parser would recurse into.
    """
    return _depth(_brackets(text))


def check_depth(text: bytes | str, limit: int = MAX_JSON_DEPTH) -> None:
    """JsonTooDeep when `text` nests deeper than `limit` arrays and objects."""
    brackets = _brackets(text)
    if brackets.count(b"[") + brackets.count(b"{") <= limit:
        return  # too few openers to go deeper, however they nest
    # Chunk by chunk, stopping at the first chunk that goes past the limit: a document within it only ever holds
    # small running depths (cached ints, nothing allocated), and a deep one costs one chunk, not its whole length.
    depth = 0
    for start in range(0, len(brackets), _CHUNK):
        running = list(accumulate(map(_DEPTH_STEP.__getitem__, brackets[start : start + _CHUNK]), initial=depth))
        if max(running) > limit:
            raise JsonTooDeep(limit)
        depth = running[-1]


def loads(text: bytes | str, *, max_depth: int = MAX_JSON_DEPTH, **options: Any) -> Any:
    """`json.loads(text, **options)` for a document no deeper than `max_depth`; JsonTooDeep past it.

    Every failure is a ValueError (json.JSONDecodeError, UnicodeDecodeError, JsonTooDeep), so callers keep the
    one `except ValueError` they have for "not valid JSON".
    """
    check_depth(text, max_depth)
    try:
        return json.loads(text, **options)
    except RecursionError:  # not expected below the limit; kept so no caller ever sees one
        raise JsonTooDeep(max_depth) from None


def _brackets(text: bytes | str) -> bytes:
    """The brackets of `text` that lie outside strings, in order."""
    data = _utf8(text)
    # In valid JSON a backslash appears only inside strings, and each one starts an escape. Escaped backslashes
    # first (a run of them pairs up from its start, as replace does), then escaped quotes: every quote left is
    # a string delimiter, so the even pieces between quotes are what lies outside strings.
    data = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_BRACKETS_OR_QUOTES)
    return b"".join(data.split(b'"')[0::2])


def _depth(brackets: bytes) -> int:
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _utf8(text: bytes | str) -> bytes:
    """The document as UTF-8 bytes, so that bracket and quote bytes are exactly those characters."""
    if isinstance(text, str):
        return text.encode("utf-8", "surrogatepass")
    data = bytes(text)
    encoding = json.detect_encoding(data)
    if encoding in ("utf-8", "utf-8-sig"):
        return data
    try:  # UTF-16 and UTF-32 bodies, which json.loads accepts too: their code units may hold bracket bytes
        return data.decode(encoding).encode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data  # json.loads refuses it as well, with its own message


def loads_object(raw: bytes, what: str) -> dict[str, Any]:
    """`raw` parsed as a JSON object (through `loads`); ValueError `<what> is not JSON` / `… is not a JSON object`,
    for callers that turn it into their own error class with their context."""
    try:
        document = loads(raw)
    except ValueError:
        raise ValueError(f"{what} is not JSON") from None
    if not isinstance(document, dict):
        raise ValueError(f"{what} is not a JSON object")
    return document

