"""Strict reading of the numbers people write in settings and command-line flags.

    parse_whole_number("8", least=1, most=64)        # 8
    parse_decimal("2.5", least=0.1, most=300)         # 2.5
    parse_whole_number("３", least=1, most=64)        # NumberError: "expected a whole number from 1 to 64
                                                      #   (got '\\uff13')"

A number is ASCII digits, with a fraction (`2.5`) only where a decimal is meant: no sign, spaces, `_`, exponent, hex,
other scripts' digits, nan or infinity, and it must lie in the documented range [least, most]. Anything else is a
NumberError whose message gives the range and shows what was given (escaped, cut short), for the caller to prefix
with the setting's or flag's name. The text is matched against a bounded pattern before it is converted, so a
100,000-digit "number" costs no more than a short one.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["NumberError", "parse_decimal", "parse_whole_number", "shown", "written"]

_MAX_DIGITS: Final = 18  # beyond any range here; keeps conversion cheap
_WHOLE: Final = re.compile(r"[0-9]{1,%d}" % _MAX_DIGITS)
_DECIMAL: Final = re.compile(r"[0-9]{1,%d}(?:\.[0-9]{1,%d})?" % (_MAX_DIGITS, _MAX_DIGITS))
_SHOWN_CHARACTERS: Final = 40


class NumberError(ValueError):
    """Text that is not a number in the expected range; the message says what was expected and what was given."""


def written(number: float) -> str:
    """A range end as messages write it: `1000000`, `0.1` (never `1e+06`)."""
    return str(int(number)) if float(number).is_integer() else str(number)


def shown(text: str) -> str:
    """`text` as a message quotes it: escaped to ASCII (so `３` shows as `'\\uff13'`), cut after 40 characters."""
    if len(text) <= _SHOWN_CHARACTERS:
        return ascii(text)
    return ascii(text[:_SHOWN_CHARACTERS]) + f"… ({len(text)} characters)"


def parse_whole_number(text: str, *, least: int, most: int) -> int:
    """`text` as a whole number from `least` to `most`, else NumberError."""
    if _WHOLE.fullmatch(text) is None or not least <= int(text) <= most:
        raise NumberError(f"expected a whole number from {least} to {most} (got {shown(text)})")
    return int(text)


def parse_decimal(text: str, *, least: float, most: float, what: str = "a number") -> float:
    """`text` as a decimal number (digits, optionally `.` and more digits) from `least` to `most`, else NumberError
    saying that `what` was expected."""
    if _DECIMAL.fullmatch(text) is None or not least <= float(text) <= most:
        raise NumberError(
            f"expected {what} from {written(least)} to {written(most)}, in digits like 5 or 2.5 (got {shown(text)})"
        )
    return float(text)
