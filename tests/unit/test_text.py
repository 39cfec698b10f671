"""Untrusted text is shown literally, on one line, with control characters visible."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from pgtop.collectors.activity import rates
from pgtop.model import ServerCounters
from pgtop.text import name_text, one_line, visible


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("SELECT '\x1b[2J'", "SELECT '\\e[2J'"),
        ("ring\x07", "ring^G"),
        ("cr\rlf", "cr^Mlf"),
        ("nul\x00", "nul^@"),
        ("del\x7f", "del\\x7f"),
        ("c1\x9b31m", "c1\\x9b31m"),
        ("abc\u202edcba", "abc<U+202E>dcba"),
        ("iso\u2066x\u2069", "iso<U+2066>x<U+2069>"),
        ("[bold]x[/] [@click=app.quit]q[/]", "[bold]x[/] [@click=app.quit]q[/]"),
        ("日本語 😀 e\u0301", "日本語 😀 e\u0301"),
        # Invisible or look-alike: format characters, separators, other spaces,
        # private use, unassigned code points, tag characters.
        ("zero\u200bwidth", "zero<U+200B>width"),
        ("soft\u00adhyphen", "soft\\xadhyphen"),
        ("line\u2028sep", "line<U+2028>sep"),
        ("nb\u00a0sp", "nb\\xa0sp"),
        ("private\ue000use", "private<U+E000>use"),
        ("unassigned\U000e0080", "unassigned<U+E0080>"),
        ("tag\U000e0041", "tag<U+E0041>"),
    ],
)
def test_visible_makes_every_control_character_visible(raw: str, shown: str) -> None:
    assert visible(raw) == shown
    assert all(ch.isprintable() or ch == " " for ch in visible(raw))


def test_one_line_folds_whitespace_and_newlines() -> None:
    assert one_line("SELECT *\n  FROM t\n\tWHERE a = 1") == "SELECT * FROM t WHERE a = 1"
    assert one_line(None) == ""


def test_one_line_keeps_a_huge_text_cheap() -> None:
    huge = "SELECT " + "x" * 1_000_000
    assert len(one_line(huge)) == 512
    assert len(one_line(huge, 40)) == 40


def test_rates_never_go_negative_after_a_reset() -> None:
    t = datetime(2026, 1, 1)
    before = ServerCounters(t, 1000, 5000, 50)
    after_reset = ServerCounters(t + timedelta(seconds=1), 10, 20, 0)
    tps, hit = rates(before, after_reset)
    assert tps is None
    assert hit == 1.0


NAMES = [
    "orders",
    "orders ",
    " orders",
    "or  ders",
    "or ders",
    "or\tders",
    "or\nders",
    "or\u200bders",
    "or\u00a0ders",
    "or\u00adders",
    "or\u2028ders",
    "ORDERS",
]


def test_names_that_differ_never_look_the_same() -> None:
    """Two tables (roles, databases...) whose names differ by an invisible or folded
    character are told apart on screen."""
    shown = [name_text(name) for name in NAMES]
    assert len(set(shown)) == len(NAMES), shown
    for text in shown:
        assert all(ch.isprintable() for ch in text), text


def test_name_text_is_plain_text_and_cut() -> None:
    assert name_text("[bold]x[/]") == "[bold]x[/]"
    assert name_text("x" * 300) == "x" * 128
    assert name_text("x" * 300, 10) == "x" * 10
    assert name_text(None) == ""
