"""Turning untrusted server text into something safe to show, and formatting values.

Everything the server sends (query texts, application names, role, database and relation
names) is untrusted. It reaches the screen only as plain text: never parsed as markup, with
every control character and bidirectional override replaced by a visible escape.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

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


def duration(seconds: float | None) -> str:
    """Compact age: ``"4.2s"``, ``"12m03s"``, ``"3h05m"``, ``"2d04h"``; empty when unknown.

    >>> duration(4.24), duration(723), duration(11100), duration(187200)
    ('4.2s', '12m03s', '3h05m', '2d04h')
    """
    if seconds is None:
        return ""
    if seconds < 0:
        seconds = 0.0
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def age(then: datetime | None, now: datetime) -> float | None:
    """Seconds from ``then`` to ``now``, or None when ``then`` is unknown."""
    if then is None:
        return None
    delta: timedelta = now - then
    return delta.total_seconds()


def size(num_bytes: float | None) -> str:
    """Human size with binary units.

    >>> size(0), size(1536), size(5 * 1024**3)
    ('0 B', '1.5 KiB', '5.0 GiB')
    """
    if num_bytes is None:
        return ""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
