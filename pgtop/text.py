"""Turning untrusted server text into something safe to show (figures: ``pgtop.formats``).

Everything the server sends (query texts, application names, role, database and relation
names) is untrusted. It reaches the screen only as plain text: never parsed as markup, with
every control character and bidirectional override replaced by a visible escape.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_FOLDED = re.compile(r"[\t\n][ \t\n]*| {2,}")
"""Runs that ``one_line`` folds into one space: ASCII spaces, tabs and newlines only. Any
other whitespace (NBSP, U+2028, ...) is shown escaped, never folded away."""


def _escape(char: str) -> str:
    code = ord(char)
    if code == 0x1B:
        return "\\e"
    if code < 0x20:
        return f"^{chr(code + 0x40)}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that did not decode (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"<U+{code:04X}>"


def _escaped(text: str, keep: str = "") -> str:
    """Every character that is not printable, and not in ``keep``, as a visible escape.

    Not printable (``str.isprintable``) is what would not show as itself: control
    characters, format characters (bidirectional overrides, zero-width spaces, soft hyphens,
    tag characters), line and paragraph separators, spaces other than the ASCII space,
    private-use, surrogate and unassigned code points.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escape(c) for c in text)


def visible(text: str | None) -> str:
    """Make every character that would not show as itself visible; keep newlines and tabs.

    >>> visible("a\\x1b[2Jb")
    'a\\\\e[2Jb'
    >>> visible("bell\\x07"), visible("a\\u200bb\\u00adc"), visible("x\\ny")
    ('bell^G', 'a<U+200B>b\\\\xadc', 'x\\ny')
    """
    if not text:
        return ""
    return "\n".join(_escaped(line, "\t") for line in text.split("\n"))


def one_line(text: str | None, limit: int = 512) -> str:
    """Fold ``text`` onto one line (runs of spaces, tabs and newlines become one space),
    make it visible.

    Only the first ``limit`` characters are kept: a list never needs more, and a 1 MB query
    text must not cost a refresh anything.

    >>> one_line("SELECT 1\\n  FROM  t\\r\\n")
    'SELECT 1 FROM t^M'
    >>> one_line("a\\u00a0b")
    'a\\\\xa0b'
    """
    if not text:
        return ""
    head = text[: limit * 2]
    folded = _FOLDED.sub(" ", head.strip(" \t\n"))
    return _escaped(folded[:limit])


def name_text(text: str | None, limit: int = 128) -> str:
    """A name (role, database, relation, application...) on one line, exactly as it is:
    nothing folded, so two names that differ never look the same; every character that
    would not show as itself (tabs and newlines too) made visible; cut at ``limit``.

    >>> name_text("orders"), name_text("a  b"), name_text("a\\tb"), name_text("[bold]x")
    ('orders', 'a  b', 'a^Ib', '[bold]x')
    """
    if not text:
        return ""
    return _escaped(text[:limit])


def lenient(text: str) -> str:
    """``text`` with each byte that did not decode (a lone surrogate) as U+FFFD.

    >>> lenient("caf\\udce9")
    'caf\\ufffd'
    """
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


_PASSWORD_IN_TEXT = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)|(://[^:/@\s]*:)[^@\s]*@")


def redact_text(text: str, secrets: Sequence[str | None] = ()) -> str:
    """Remove passwords from free text (logs, crash reports).

    >>> redact_text("dsn password='a b' x postgresql://u:pw@h/db", ["zz"])
    'dsn password=*** x postgresql://u:***@h/db'
    """

    def mask(match: re.Match[str]) -> str:
        if match.group(1):
            return f"{match.group(1)}***"
        return f"{match.group(3)}***@"

    text = _PASSWORD_IN_TEXT.sub(mask, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
