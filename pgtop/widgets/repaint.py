"""Repaint only the cells that changed, and write only those to the terminal.

A widget that refreshes itself whole has every one of its lines written to the terminal
again, padding included, on every refresh; over a slow SSH link that is what the user
feels. The widgets that change on every refresh (the header, the status lines, the tables)
tell Textual which cells changed (`changed_cells`), and the app writes only those
(`ChangedCellsUpdate`): Textual writes a changed region from the left edge of its widget,
and each piece of text with its own style sequences.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import zip_longest
from typing import Any

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.segment import Segment
from rich.text import Text
from textual._compositor import ChopsUpdate, Compositor
from textual.app import App, ReturnType
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip

__all__ = [
    "ChangedCellsApp",
    "ChangedCellsUpdate",
    "ChangedRowsCompositor",
    "changed_cells",
    "changed_lines",
]


def _screen_cells(text: str, marks: Sequence[Any] | None = None) -> list[tuple[str, Any]]:
    """What each terminal cell of a line shows: a character (a wide one, then ``""`` for
    the cell it covers) and the styles over it."""
    if text.isascii():  # one cell per character: the common case, built at C speed
        return list(zip(text, marks if marks is not None else [None] * len(text), strict=True))
    cells: list[tuple[str, Any]] = []
    for index, char in enumerate(text):
        mark = marks[index] if marks is not None else None
        cells.append((char, mark))
        if not char.isascii() and cell_len(char) == 2:
            cells.append(("", mark))
    return cells


def _marks(line: Text) -> list[Any]:
    """The styles of the spans over each character of a line."""
    marks: list[Any] = [None] * len(line.plain)
    for span in line.spans:
        for index in range(span.start, min(span.end, len(marks))):
            marks[index] = (marks[index], span.style)
    return marks


def changed_cells(old: str | Text, new: str | Text) -> tuple[int, int] | None:
    """The cells from the first to the last that differ between two versions of a line.

    Cells are compared where they stand on screen, with their styles: a text that got
    shorter or longer moves what follows it, and the line is changed up to the end of
    the longer one. A wide character counts two cells.

    >>> changed_cells("up 9.9s  at 10:00:01", "up 9.9s  at 10:00:02")
    (19, 20)
    >>> changed_cells("5 idle hidden (i) · b", "idle shown (i) · b")
    (0, 21)
    >>> changed_cells("same", "same") is None
    True

    Returns:
        ``(start, end)``, end excluded, or None when both show the same.
    """
    if isinstance(old, Text) and isinstance(new, Text):
        if old.style != new.style:
            return 0, max(old.cell_len, new.cell_len)
        if old.plain == new.plain and old.spans == new.spans:
            return None
        a = _screen_cells(old.plain, _marks(old))
        b = _screen_cells(new.plain, _marks(new))
    else:
        old, new = str(old), str(new)
        if old == new:
            return None
        a = _screen_cells(old)
        b = _screen_cells(new)
    size = max(len(a), len(b))
    blank = (" ", None)
    a += [blank] * (size - len(a))
    b += [blank] * (size - len(b))
    head = 0
    while head < size and a[head] == b[head]:
        head += 1
    if head == size:
        return None
    end = size
    while end > head and a[end - 1] == b[end - 1]:
        end -= 1
    return head, end


def changed_lines(
    old: Sequence[str | Text], new: Sequence[str | Text]
) -> Iterator[tuple[int, int, int]]:
    """``(line, start, end)`` of the cells that changed on each line (see `changed_cells`)."""
    for y, (before, after) in enumerate(zip_longest(old, new, fillvalue="")):
        span = changed_cells(before, after)
        if span is not None:
            yield y, *span


class ChangedCellsUpdate(ChopsUpdate):
    """A partial screen update that writes only the cells of the regions that changed.

    Textual's own writes each changed region from the left edge of the widget it lies in,
    and every piece of text with its own style sequences: a clock at the end of a line
    rewrites the whole line. This writes from the first changed cell (or from the start
    of a wide character cut there), and joins neighbouring pieces of the same style. What
    the terminal shows is the same.
    """

    @classmethod
    def of(cls, update: ChopsUpdate) -> ChangedCellsUpdate:
        return cls(update.chops, update.spans, update.chop_ends)

    def render_segments(self, console: Console) -> str:
        """The terminal sequences of the update."""
        sequences: list[str] = []
        append = sequences.append
        for y, x1, x2 in self.spans:
            line = self.chops[y]
            ends = self.chop_ends[y]
            for end, (x, strip) in zip(ends, line.items(), strict=False):
                if strip is None or x >= x2 or end <= x1:
                    continue
                segments, start = _cells(strip, x, max(x, x1), min(end, x2))
                if segments:
                    append(f"\x1b[{y + 1};{start + 1}H")
                    append(Strip(segments).render(console))
        return "".join(sequences)


def _cells(strip: Strip, x: int, start: int, end: int) -> tuple[list[Segment], int]:
    """The segments of ``strip`` (at column ``x``) between columns ``start`` and ``end``,
    neighbours of one style joined; and the column they start at (before ``start`` when
    a wide character straddles it)."""
    out: list[Segment] = []
    first = start
    position = x
    for text, style, control in strip:
        if control:
            continue
        seg_end = position + (len(text) if text.isascii() else cell_len(text))
        if seg_end <= start:
            position = seg_end
            continue
        if position >= end:
            break
        if position < start:
            text, position = _from_cell(text, start - position, position)
        if not out:
            first = position
        if seg_end > end:
            text = _to_cell(text, end - position)
        if out and out[-1].style == style:
            out[-1] = Segment(out[-1].text + text, style)
        else:
            out.append(Segment(text, style))
        position = seg_end
    return out, first


def _from_cell(text: str, cells: int, x: int) -> tuple[str, int]:
    """``text`` from its ``cells``-th cell on (from the wide character that covers it), and
    the column where that is, given the text starts at column ``x``."""
    if text.isascii():
        return text[cells:], x + cells
    used = 0
    for index, char in enumerate(text):
        width = cell_len(char)
        if used + width > cells:
            return text[index:], x + used
        used += width
    return "", x + used


def _to_cell(text: str, cells: int) -> str:
    """``text`` up to its ``cells``-th cell (a wide character cut there is kept whole)."""
    if text.isascii():
        return text[:cells]
    used = 0
    for index, char in enumerate(text):
        if used >= cells:
            return text[:index]
        used += cell_len(char)
    return text


class ChangedCellsApp(App[ReturnType]):
    """An app whose partial screen updates write only the cells that changed."""

    @staticmethod
    def terminal_update(renderable: RenderableType | None) -> RenderableType | None:
        """What is written for a screen update."""
        if type(renderable) is ChopsUpdate:
            return ChangedCellsUpdate.of(renderable)
        return renderable

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        super()._display(screen, self.terminal_update(renderable))


class ChangedRowsCompositor(Compositor):
    """A compositor whose partial updates render only the widgets on the rows that changed.

    For a partial update, Textual renders every widget that overlaps the box around all
    the changed regions, and writes only the changed rows. The header and the status line
    change on every refresh, so that box is the whole screen: the tab bar and the footer's
    keys were rendered on every refresh for nothing. Here a widget is rendered only where a
    row it covers changed; the rows written are the same, made of the same widgets.
    """

    _rows: list[tuple[int, int]] | None = None
    """During a partial update, the changed rows as ``(first, end)`` bands, end excluded."""

    def render_partial_update(self) -> ChopsUpdate | None:
        self._rows = _bands(self._dirty_regions)
        try:
            return super().render_partial_update()
        finally:
            self._rows = None

    def _get_renders(
        self, crop: Region | None = None
    ) -> Iterator[tuple[Region, Region, list[Strip]]]:
        rows = self._rows
        if crop is None or rows is None:
            yield from super()._get_renders(crop)
            return
        # Compositor._get_renders, with the widgets on no changed row left out.
        for widget, (region, clip) in list(self.visible_widgets.items()):
            if not crop.overlaps(clip) or not _on_rows(clip, rows):
                continue
            if clip.contains_region(region):
                yield region, clip, widget.render_lines(Region(0, 0, region.width, region.height))
                continue
            x, y, width, height = region.intersection(clip)
            if width and height:
                shown = Region(x - region.x, y - region.y, width, height)
                yield region, clip, widget.render_lines(shown)


def _bands(regions: Iterable[Region]) -> list[tuple[int, int]]:
    """The rows ``regions`` cover, as sorted, separate ``(first, end)`` bands.

    >>> _bands([Region(0, 5, 10, 2), Region(3, 0, 4, 1), Region(0, 6, 2, 3)])
    [(0, 1), (5, 9)]
    """
    bands: list[tuple[int, int]] = []
    for first, end in sorted((r.y, r.y + r.height) for r in regions if r.height > 0):
        if bands and first <= bands[-1][1]:
            bands[-1] = (bands[-1][0], max(end, bands[-1][1]))
        else:
            bands.append((first, end))
    return bands


def _on_rows(clip: Region, bands: list[tuple[int, int]]) -> bool:
    """Whether ``clip`` covers a row of one of ``bands``."""
    top, bottom = clip.y, clip.y + clip.height
    return any(first < bottom and top < end for first, end in bands)
