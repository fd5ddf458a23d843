"""Card-number detection: the portal never accepts or stores a card number.

A run of 13 to 19 digits, optionally grouped by single spaces or dashes, that passes
the Luhn check is treated as a card number. Windows start and end on group boundaries,
so a card number followed by other digits ("4111 1111 1111 1111 12/27") is still found.
"""

from __future__ import annotations

import re

_DIGIT_RUN = re.compile(r"\d+(?:[ -]\d+)*")
_SEPARATOR = re.compile(r"[ -]")
MIN_DIGITS = 13
MAX_DIGITS = 19


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` passes the Luhn (mod 10) check."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def contains_card_number(text: str) -> bool:
    """True when ``text`` holds something that looks like a payment card number."""
    for run in _DIGIT_RUN.finditer(text):
        groups = _SEPARATOR.split(run.group())
        if any(_window_is_card(groups, start) for start in range(len(groups))):
            return True
    return False


def _window_is_card(groups: list[str], start: int) -> bool:
    digits = ""
    for group in groups[start:]:
        digits += group
        if len(digits) > MAX_DIGITS:
            return False
        if len(digits) >= MIN_DIGITS and luhn_valid(digits):
            return True
    return False
