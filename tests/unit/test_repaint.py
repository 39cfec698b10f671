"""``pgtop.widgets.repaint`` writes Textual's partial screen updates itself, from Textual's
private ``ChopsUpdate``: these tests fail when the installed Textual is not the one it is
written for, or when what it writes differs from what Textual would have written."""

from __future__ import annotations

import inspect
import re
import sys
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version
from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate, Compositor
from textual.app import App
from textual.strip import Strip

from pgtop.widgets.repaint import ChangedCellsApp, ChangedCellsUpdate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
_SEQUENCE = re.compile(r"\x1b\[(\d+);(\d+)H|\x1b\[([0-9;]*)m|\n")


def test_textual_is_the_version_pyproject_pins() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (textual,) = [
        Requirement(d) for d in project["dependencies"] if Requirement(d).name == "textual"
    ]
    installed = Version(version("textual"))
    assert textual.specifier.contains(installed)
    # Private internals: a minor release may change them, so no other is allowed.
    (upper,) = [s for s in textual.specifier if s.operator == "<"]
    assert Version(upper.version).release == (installed.major, installed.minor + 1)


def test_the_internals_it_uses_have_the_shape_it_expects() -> None:
    assert list(inspect.signature(ChopsUpdate.__init__).parameters) == [
        "self",
        "chops",
        "spans",
        "chop_ends",
    ]
    assert list(inspect.signature(App._display).parameters) == ["self", "screen", "renderable"]
    # What an update writes is what its render_segments gives.
    assert "render_segments(console)" in inspect.getsource(App._display)
    assert ChangedCellsApp.terminal_update(None) is None
    # ChangedRowsCompositor: a partial update renders what _get_renders gives for the regions
    # made dirty, and _get_renders renders each visible widget the crop overlaps.
    assert "self._dirty_regions" in inspect.getsource(Compositor.render_partial_update)
    assert "self._get_renders(crop)" in inspect.getsource(Compositor._render_chops)
    renders = inspect.getsource(Compositor._get_renders)
    assert "visible_widgets.items()" in renders
    assert "crop_overlaps(clip)" in renders
    assert renders.count("widget.render_lines(") == 2


def terminal(text: str, width: int, height: int) -> list[list[tuple[str, str]]]:
    """The cells (character, style sequences in force) after writing ``text`` to a blank
    terminal: cursor moves, SGR sequences, text (a wide character takes two cells)."""
    cells = [[(" ", "")] * width for _ in range(height)]
    x = y = 0
    style = ""
    position = 0
    for match in _SEQUENCE.finditer(text + "\n"):
        for char in text[position : match.start()]:
            cells[y][x] = (char, style)
            if cell_len(char) == 2:
                cells[y][x + 1] = ("", style)
            x += cell_len(char)
        position = match.end()
        if match.group(1):
            y, x = int(match.group(1)) - 1, int(match.group(2)) - 1
        elif match.group(3) is not None:
            code = match.group(3)
            style = "" if code in ("", "0") else style + ";" + code
    return cells


def test_it_writes_what_textual_writes_in_the_spans_and_less() -> None:
    bold, red = Style(bold=True), Style(color="red")
    plain = Style()
    # Two lines of two chops each (x offsets 0 and 10, each 10 cells wide), with pieces of
    # several styles, one of them made of wide characters.
    line0 = {
        0: Strip([Segment("abc", bold), Segment("def", bold), Segment("ghij", red)]),
        10: Strip([Segment("日本", plain), Segment("語x", plain), Segment("yzw", red)]),
    }
    line1 = {
        0: Strip([Segment("0123456789", plain)]),
        10: Strip([Segment("ABCDEFGHIJ", bold)]),
    }
    chops = [line0, line1]
    ends = [[10, 20], [10, 20]]
    console = Console(width=20, color_system="truecolor", force_terminal=True)
    whole = [(0, 0, 20), (1, 0, 20)]
    screen = terminal(ChopsUpdate(chops, whole, ends).render_segments(console), 20, 2)
    for spans in (
        [(0, 4, 16), (1, 12, 14)],  # from inside a piece, across chops
        [(0, 11, 13)],  # from the right half of a wide character to a left half
        whole,
        [(1, 9, 10)],  # one cell at the end of a chop
    ):
        ours = ChangedCellsUpdate(chops, spans, ends).render_segments(console)
        theirs = ChopsUpdate(chops, spans, ends).render_segments(console)
        written = terminal(ours, 20, 2)
        blank = [[(" ", "")] * 20 for _ in range(2)]
        for y, x1, x2 in spans:
            # The cells of the span as the screen has them, a wide character cut at either
            # end written whole; nothing else.
            start = x1 - 1 if screen[y][x1][0] == "" else x1
            end = x2 + 1 if x2 < 20 and screen[y][x2][0] == "" else x2
            assert written[y][start:end] == screen[y][start:end], (spans, y)
            blank[y][start:end] = screen[y][start:end]
        assert written == blank, spans
        if spans != [(0, 11, 13)]:  # there Textual writes half a wide character
            assert len(ours.encode()) <= len(theirs.encode())
