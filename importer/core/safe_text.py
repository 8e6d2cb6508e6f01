"""Text from outside the process: which characters are unsafe, and how they are shown. One definition for all.

Event bodies, registry responses, image configs, settings and ledgers hold text that others wrote. The same
characters are refused in an identifier (importer/core/events: the event is rejected, naming the field), shown
escaped on a terminal (importer/entry/terminal.py) and kept out of storage as they are (the ledgers):

- C0 controls U+0000–U+001F (ESC, BEL, CR, LF, …), DEL U+007F and C1 controls U+0080–U+009F (CSI U+009B …):
  a terminal acts on them (clears the screen, moves the cursor, starts a new line that looks like ours);
- the bidi embeddings and overrides U+202A–U+202E and isolates U+2066–U+2069: they reorder what is shown;
- the line and paragraph separators U+2028 and U+2029: line breaks to many viewers and to `str.splitlines`;
- lone surrogates U+D800–U+DFFF: not Unicode scalar values, so they have no UTF-8 form (SQLite, Table Storage
  and a UTF-8 terminal all refuse them). JSON's `"\\ud800"` escape makes one.

    unsafe_character(text)      # None, or (position, the character) of the first unsafe one
    escape_unsafe(text)         # "amd64\\x1b[2J\\r\\nforged": every unsafe character as a visible escape
    escape_surrogates(text)     # only the lone surrogates escaped: what storage that needs UTF-8 can take
"""

from __future__ import annotations

import re

_UNSAFE_RANGES = ((0x00, 0x1F), (0x7F, 0x9F), (0x2028, 0x2029), (0x202A, 0x202E), (0x2066, 0x2069), (0xD800, 0xDFFF))
UNSAFE_CHARACTERS = re.compile("[" + "".join(f"{chr(first)}-{chr(last)}" for first, last in _UNSAFE_RANGES) + "]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_character(character: str) -> str:
    """One character as Python writes it in a string literal: `\\n`, `\\x1b`, `\\u202e`, `\\ud800`."""
    short = _SHORT_ESCAPES.get(character)
    if short is not None:
        return short
    code = ord(character)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


# str.translate tables, so escaping is one C-speed pass however many unsafe characters there are.
_UNSAFE_ESCAPES = {
    code: escape_character(chr(code)) for first, last in _UNSAFE_RANGES for code in range(first, last + 1)
}
_SURROGATE_ESCAPES = {code: _UNSAFE_ESCAPES[code] for code in range(0xD800, 0xE000)}


def escape_unsafe(text: str) -> str:
    """`text` with every unsafe character replaced by its visible escape; safe text comes back unchanged."""
    return text.translate(_UNSAFE_ESCAPES) if UNSAFE_CHARACTERS.search(text) else text


def escape_surrogates(text: str) -> str:
    """`text` with its lone surrogates replaced by their escapes (`\\ud800`), so that it has a UTF-8 form."""
    return text.translate(_SURROGATE_ESCAPES) if _SURROGATES.search(text) else text


def unsafe_character(text: str) -> tuple[int, str] | None:
    """The position and the first unsafe character of `text`, or None when there is none."""
    match = UNSAFE_CHARACTERS.search(text)
    return None if match is None else (match.start(), match.group())


def describe_unsafe(position: int, character: str) -> str:
    """An unsafe character for an error message, `position` counted from 0: "a control character \\x1b at
    character 6"."""
    if "\ud800" <= character <= "\udfff":
        kind = "a lone surrogate"
    elif character in "\u2028\u2029":
        kind = "a line separator"
    elif "\u202a" <= character <= "\u2069":
        kind = "a bidi control"
    else:
        kind = "a control character"
    return f"{kind} {escape_character(character)} at character {position + 1}"
