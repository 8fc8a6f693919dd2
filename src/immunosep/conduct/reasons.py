"""Free-text reasons (an emergency unblinding, a password reset): meaningful text, not filler.

A reason goes into the audit trail as the answer to "why?"; ten dots, NUL bytes or one letter repeated
answer nothing. The rule: at least ``min_chars`` characters once trimmed, no control or invisible
characters (line breaks and tabs aside), at least ``min_letters`` letters of which at least three differ.
"""

from __future__ import annotations

import unicodedata

from immunosep.errors import ImmunoSepError

#: Characters of a reason (trimmed) and letters in it, at least.
MIN_REASON_CHARS = 10
MIN_REASON_LETTERS = 5
_ALLOWED_CONTROLS = frozenset("\n\r\t")


def require_meaningful(
    text: str, what: str, *, field: str = "reason", min_chars: int = MIN_REASON_CHARS
) -> str:
    """The trimmed ``text``, or :class:`ImmunoSepError` naming ``what`` when it is not a real reason."""
    if not isinstance(text, str):
        raise ImmunoSepError(f"{what} must be text", field=field)
    for ch in text:
        if ch not in _ALLOWED_CONTROLS and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise ImmunoSepError(
                f"{what} holds a control or invisible character (U+{ord(ch):04X}); type it as plain text",
                field=field,
            )
    stripped = text.strip()
    letters = [ch.casefold() for ch in stripped if ch.isalpha()]
    if len(stripped) < min_chars or len(letters) < MIN_REASON_LETTERS or len(set(letters)) < 3:
        raise ImmunoSepError(
            f"{what} needs a reason in words: at least {min_chars} characters and "
            f"{MIN_REASON_LETTERS} letters (say what happened)",
            field=field,
        )
    return stripped
