"""A fast table for large, frequently refreshed sets of rows, identified by key.

`KeyedTable` replaces Textual's `DataTable` where rows are replaced wholesale on every
refresh (sessions, locks, relations...). It draws through Textual's Line API: only the lines
on screen are built, and each built line is kept in a small cache, so a refresh that changes
a few visible rows costs a few lines. Applying a new snapshot is a list and a dict build plus
a sort; the cursor stays on the same key whatever moved around it.

Cell text is always plain text: it is never parsed as markup, whatever it contains.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from operator import is_
from typing import Any, ClassVar, Literal

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

__all__ = ["TONES", "Column", "KeyedTable", "Row"]

TONES: tuple[str, ...] = ("error", "warning", "success", "muted")
"""Row tones, each styled by the component class ``keyed-table--<tone>``."""

CURSOR_GLYPH = "▶"
"""Shown in the one-cell gutter of the cursor row, so the cursor is visible without colour."""

ELLIPSIS = "…"
SORT_DESCENDING = " ▼"
SORT_ASCENDING = " ▲"

_LINE_CACHE_SIZE = 1024
Signature = tuple[tuple[int, int], list[tuple[Any, ...] | None]]
"""What a table's view shows (see `KeyedTable._screen_signature`)."""
_BLANK: tuple[Any, ...] = ((), "", False)
"""A blank line, as a row without cells (it has the style of an untoned row)."""
# C0/C1 control characters and DEL. Callers sanitize cells; this is only a safety net so a
# stray newline or escape can never reach the terminal.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a `KeyedTable`.

    Attributes:
        key: Identifier of the column, e.g. ``"pid"``; used by `KeyedTable.sort_by`.
        label: Header text.
        width: Fixed width in cells, or None for a flexible column that shares the width left
            over by the fixed ones (at least ``min_width``).
        min_width: Smallest width of a flexible column.
        align: Alignment of the cells and the header label.
        hide_below: The column is left out while the table is narrower than this many cells,
            so the columns that matter most keep room on a small terminal.
    """

    key: str
    label: str
    width: int | None = None
    min_width: int = 4
    align: Literal["left", "right"] = "left"
    hide_below: int = 0


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a `KeyedTable`.

    Attributes:
        key: Identity of the row (a pid, an oid, a tuple path for tree rows). Unique in a set.
        cells: Display text per column, already on one line and sanitized by the caller.
        sort_values: Value to sort by, per column. None always sorts last, in either direction.
        tone: ``""`` or one of `TONES`: styles the whole row.
        search: Extra text the filter matches (e.g. the full query text), besides the cells.
    """

    key: Hashable
    cells: tuple[str, ...]
    sort_values: tuple[Any, ...]
    tone: str = ""
    search: str | None = None


def fit_cell(text: str, width: int, align: str = "left") -> str:
    """Pad or truncate ``text`` to exactly ``width`` terminal cells.

    Too long a text is cut and ends with "…". Widths are measured in terminal cells, so wide
    (CJK, emoji) characters keep the columns aligned.

    Args:
        text: Plain text on one line.
        width: Width in cells.
        align: ``"right"`` pads on the left, anything else on the right.

    Returns:
        A string of exactly ``width`` cells.
    """
    if width <= 0:
        return ""
    if not text.isprintable():
        text = _CONTROL.sub("\ufffd", text)
    if text.isascii():
        size = len(text)
        if size > width:
            return text[: width - 1] + ELLIPSIS
    else:
        size = cell_len(text)
        if size > width:
            # Cutting through a wide character leaves a padding space: keep it after the "…".
            head = set_cell_size(text, width - 1)
            if head.endswith(" "):
                head = head.rstrip(" ")
            text = head + ELLIPSIS
            size = cell_len(text)
    if size == width:
        return text
    padding = " " * (width - size)
    return padding + text if align == "right" else text + padding


def column_widths(columns: Sequence[Column], available: int) -> list[int]:
    """Share ``available`` cells between columns separated by one space.

    Fixed columns take their width. Flexible columns share what remains evenly, each getting
    at least its ``min_width``; any leftover cells go to the last flexible columns.

    Args:
        columns: The columns.
        available: Width to fill, in cells.

    Returns:
        The width of each column. Their sum plus the separators may exceed ``available``.
    """
    widths = [max(0, column.width) if column.width is not None else 0 for column in columns]
    pending = [index for index, column in enumerate(columns) if column.width is None]
    if not pending:
        return widths
    budget = available - sum(widths) - max(0, len(columns) - 1)
    while pending:
        share = budget // len(pending)
        narrow = [index for index in pending if columns[index].min_width > share]
        if not narrow:
            break
        for index in narrow:
            widths[index] = max(0, columns[index].min_width)
            budget -= widths[index]
        pending = [index for index in pending if index not in narrow]
    if pending:
        share, extra = divmod(budget, len(pending))
        for position, index in enumerate(pending):
            widths[index] = share + (1 if position >= len(pending) - extra else 0)
    return widths


def _fallback_sort_key(value: Any) -> tuple[int, Any]:
    """Order values of mixed, mutually incomparable types: numbers first, then as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def _header_cell(label: str, suffix: str, width: int, align: str) -> str:
    """Fit a header label plus its sort arrow, keeping the arrow when the label is cut."""
    if not suffix:
        return fit_cell(label, width, align)
    if width <= len(suffix):
        return fit_cell(suffix.strip(), width, align)
    room = width - len(suffix)
    if cell_len(label) > room:
        label = fit_cell(label, room)
    return fit_cell(label + suffix, width, align)


class KeyedTable(ScrollView, can_focus=True):
    """A table of keyed rows, replaced wholesale by `set_rows`, that renders only what shows.

    The first line is a header that stays in place vertically and scrolls horizontally with
    the body. Every body line starts with a one-cell gutter showing "▶" on the cursor row.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "cursor_page_up", "Page up", show=False),
        Binding("pagedown", "cursor_page_down", "Page down", show=False),
        Binding("home,g", "cursor_first", "First row", show=False),
        Binding("end,G", "cursor_last", "Last row", show=False),
        Binding("left", "scroll_columns_left", "Scroll left", show=False),
        Binding("right", "scroll_columns_right", "Scroll right", show=False),
        Binding("enter", "activate", "Open", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "keyed-table--header",
        "keyed-table--cursor",
        "keyed-table--error",
        "keyed-table--warning",
        "keyed-table--success",
        "keyed-table--muted",
    }

    DEFAULT_CSS = """
    KeyedTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        scrollbar-gutter: stable;

        & > .keyed-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .keyed-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus {
            & > .keyed-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .keyed-table--error {
            color: $text-error;
        }
        & > .keyed-table--warning {
            color: $text-warning;
        }
        & > .keyed-table--success {
            color: $text-success;
        }
        & > .keyed-table--muted {
            color: $text-muted;
        }
    }
    """

    class RowActivated(Message):
        """Posted when Enter is pressed (or a row double-clicked) on the cursor row."""

        def __init__(self, table: KeyedTable, key: Hashable, row: Row) -> None:
            """Create the message.

            Args:
                table: The table that posted it.
                key: Key of the activated row.
                row: The activated row.
            """
            super().__init__()
            self.table = table
            self.key = key
            self.row = row

        @property
        def control(self) -> KeyedTable:
            """The table that posted the message."""
            return self.table

    class CursorMoved(Message):
        """Posted when the key under the cursor changes (None when there are no rows)."""

        def __init__(self, table: KeyedTable, key: Hashable | None, row: Row | None) -> None:
            """Create the message.

            Args:
                table: The table that posted it.
                key: Key of the row now under the cursor, or None.
                row: That row, or None.
            """
            super().__init__()
            self.table = table
            self.key = key
            self.row = row

        @property
        def control(self) -> KeyedTable:
            """The table that posted the message."""
            return self.table

    def __init__(
        self,
        columns: Iterable[Column] = (),
        *,
        sortable: bool = True,
        empty_text: str = "no rows",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """Create a table.

        Args:
            columns: Initial columns (see `set_columns`).
            sortable: False keeps rows in the order given, e.g. for tree views.
            empty_text: Shown when no row is visible.
            name: Widget name.
            id: Widget id.
            classes: Widget classes.
            disabled: Whether the widget starts disabled.
        """
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._columns: tuple[Column, ...] = ()
        self._rows: list[Row] = []
        self._by_key: dict[Hashable, Row] = {}
        self._visible: tuple[Row, ...] = ()
        self._visible_index: dict[Hashable, int] | None = None
        self._cursor_index = 0
        self._posted_key: Hashable | None = None
        self._sortable = sortable
        self._sort_column: str | None = None
        self._sort_reverse = False
        self._filter_text = ""
        self._filter_folded = ""
        self._empty_text = empty_text
        # Layout, recomputed when the columns or the width change.
        self._layout_width = -1
        self._view_height = 0
        self._widths: list[int] = []
        self._starts: list[int] = []
        self._aligns: list[str] = []
        self._shown: list[int] = []
        """Indexes of the columns on screen; `_widths` and `_aligns` follow it."""
        self._hidden_keys: frozenset[str] = frozenset()
        self._content_width = 0
        # Styles of the last render; the line cache is valid for these only.
        self._styles: tuple[Style, ...] | None = None
        self._base_style = Style()
        self._header_style = Style()
        self._cursor_style = Style()
        self._tone_styles: dict[str, Style] = {}
        self._style_sources: tuple[Style, tuple[object, ...]] | None = None
        """What the styles were worked out from: the widget's own style, and the style
        rules of its component classes as the stylesheet last applied them."""
        self._line_cache: LRUCache[tuple[Any, ...], Strip] = LRUCache(_LINE_CACHE_SIZE)
        if columns:
            self.set_columns(columns)

    # ------------------------------------------------------------------ public state

    @property
    def columns(self) -> tuple[Column, ...]:
        """The columns, in display order."""
        return self._columns

    @property
    def shown_columns(self) -> tuple[Column, ...]:
        """The columns on screen now: not hidden, and with room at this width."""
        return tuple(self._columns[index] for index in self._shown)

    @property
    def rows(self) -> Sequence[Row]:
        """All rows, in the order given to `set_rows` (before filter and sort)."""
        return self._rows

    @property
    def visible_rows(self) -> Sequence[Row]:
        """The rows displayed, after filter and sort, in display order."""
        return self._visible

    @property
    def cursor_index(self) -> int:
        """Index of the cursor in `visible_rows` (0 when there are none)."""
        return self._cursor_index

    @property
    def cursor_row(self) -> Row | None:
        """The row under the cursor, or None when no row is visible."""
        if not self._visible:
            return None
        return self._visible[self._cursor_index]

    @property
    def cursor_key(self) -> Hashable | None:
        """The key of the row under the cursor, or None when no row is visible."""
        row = self.cursor_row
        return None if row is None else row.key

    @property
    def sort_column(self) -> str | None:
        """Key of the column rows are sorted by, or None for the given order."""
        return self._sort_column

    @property
    def sort_reverse(self) -> bool:
        """True when sorted in descending order."""
        return self._sort_reverse

    @property
    def sortable(self) -> bool:
        """False keeps the given row order whatever `sort_by` asked (for tree views)."""
        return self._sortable

    @sortable.setter
    def sortable(self, sortable: bool) -> None:
        if sortable != self._sortable:
            self._sortable = sortable
            self._rebuild(force_refresh=True)

    @property
    def filter_text(self) -> str:
        """The current filter; ``""`` shows all rows."""
        return self._filter_text

    @property
    def empty_text(self) -> str:
        """Text shown, muted, when no row is visible."""
        return self._empty_text

    @empty_text.setter
    def empty_text(self, text: str) -> None:
        if text != self._empty_text:
            self._empty_text = text
            if not self._visible:
                self.refresh()

    def get_row(self, key: Hashable) -> Row | None:
        """Look up a row by key, visible or filtered out.

        Args:
            key: Row key.

        Returns:
            The row, or None if no row has this key.
        """
        return self._by_key.get(key)

    # ------------------------------------------------------------------ public operations

    def set_columns(self, columns: Iterable[Column]) -> None:
        """Replace the columns.

        A sort on a column that no longer exists is dropped.

        Args:
            columns: The new columns, in display order. Keys must be unique.

        Raises:
            ValueError: If two columns share a key.
        """
        new_columns = tuple(columns)
        if new_columns == self._columns:
            return
        keys = [column.key for column in new_columns]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate column keys in {keys!r}")
        self._columns = new_columns
        if self._sort_column not in keys:
            self._sort_column = None
            self._sort_reverse = False
        self._layout_width = -1
        self._update_layout()
        self._rebuild(force_refresh=True)

    def set_hidden_columns(self, keys: Iterable[str]) -> None:
        """Leave these columns out of the display; their cells stay in the rows."""
        hidden = frozenset(keys)
        if hidden == self._hidden_keys:
            return
        self._hidden_keys = hidden
        self._layout_width = -1
        self._update_layout()

    def set_rows(self, rows: Iterable[Row]) -> None:
        """Replace the whole set of rows with a new snapshot.

        The cursor stays on the same key; if that key is gone (or filtered out), it stays at
        the same index, clamped. Nothing is repainted unless a visible line changed.

        Args:
            rows: The rows. Keys should be unique; for a repeated key the last row wins (at
                the position of the first).
        """
        new_rows = list(rows)
        if new_rows == self._rows:
            return
        by_key = {row.key: row for row in new_rows}
        if len(by_key) != len(new_rows):
            new_rows = list(by_key.values())
        self._rows = new_rows
        self._by_key = by_key
        self._rebuild()

    def sort_by(self, column_key: str | None, reverse: bool | None = None) -> None:
        """Sort rows by a column.

        Args:
            column_key: Key of the column to sort by, or None for the order given.
            reverse: Descending when True. None toggles the direction when ``column_key`` is
                already the sort column, and means ascending for a new sort column.

        Raises:
            ValueError: If no column has this key.
        """
        if column_key is not None and column_key not in {c.key for c in self._columns}:
            raise ValueError(f"no column {column_key!r}")
        if reverse is None:
            reverse = not self._sort_reverse if column_key == self._sort_column else False
        if column_key is None:
            reverse = False
        if column_key == self._sort_column and reverse == self._sort_reverse:
            return
        self._sort_column = column_key
        self._sort_reverse = reverse
        self._rebuild(force_refresh=True)

    def set_filter(self, text: str) -> None:
        """Show only rows containing ``text``, case-insensitively.

        The text is looked for in the cells (joined by spaces) and in `Row.search`.

        Args:
            text: Substring to look for; ``""`` shows all rows.
        """
        if text == self._filter_text:
            return
        self._filter_text = text
        self._filter_folded = text.casefold()
        self._rebuild()

    def move_cursor_to_key(self, key: Hashable) -> bool:
        """Put the cursor on the row with ``key``, scrolling it into view.

        Args:
            key: Row key.

        Returns:
            True if the row is visible and now under the cursor, False otherwise (the cursor
            does not move).
        """
        index = self._index_of(key)
        if index is None:
            return False
        self._move_cursor(index)
        return True

    # ------------------------------------------------------------------ actions

    def action_cursor_up(self) -> None:
        """Move the cursor up one row."""
        self._move_cursor(self._cursor_index - 1)

    def action_cursor_down(self) -> None:
        """Move the cursor down one row."""
        self._move_cursor(self._cursor_index + 1)

    def action_cursor_page_up(self) -> None:
        """Move the cursor up one page."""
        self._move_cursor(self._cursor_index - max(1, self._body_height()))

    def action_cursor_page_down(self) -> None:
        """Move the cursor down one page."""
        self._move_cursor(self._cursor_index + max(1, self._body_height()))

    def action_cursor_first(self) -> None:
        """Move the cursor to the first row."""
        self._move_cursor(0)

    def action_cursor_last(self) -> None:
        """Move the cursor to the last row."""
        self._move_cursor(len(self._visible) - 1)

    def action_scroll_columns_left(self) -> None:
        """Scroll left to the previous column start."""
        x = self.scroll_offset.x
        starts = [start for start in self._starts if start < x]
        self.scroll_to(x=starts[-1] if starts else 0, animate=False, force=True)

    def action_scroll_columns_right(self) -> None:
        """Scroll right to the next column start (when the columns are wider than the view)."""
        x = self.scroll_offset.x
        target = next((start for start in self._starts if start > x), self.max_scroll_x)
        self.scroll_to(x=min(target, self.max_scroll_x), animate=False, force=True)

    def action_activate(self) -> None:
        """Post `RowActivated` for the cursor row."""
        row = self.cursor_row
        if row is not None:
            self.post_message(self.RowActivated(self, row.key, row))

    # ------------------------------------------------------------------ events

    def on_resize(self, event: events.Resize) -> None:
        """Lay the columns out again for the new width and keep the cursor in view."""
        self._update_layout()
        self._scroll_cursor_into_view()

    def on_click(self, event: events.Click) -> None:
        """Move the cursor to the clicked row; a double click activates it."""
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        index = self.scroll_offset.y + offset.y - 1
        if 0 <= index < len(self._visible):
            self._move_cursor(index)
            if event.chain >= 2:
                self.action_activate()

    def notify_style_update(self) -> None:
        """Repaint when the styles (theme, focus) change; `render_lines` checks the cache."""
        super().notify_style_update()
        self._style_sources = None
        self.refresh()

    # ------------------------------------------------------------------ rendering

    def render_lines(self, crop: Region) -> list[Strip]:
        """Render the lines in ``crop``; picks up style and width changes first.

        Args:
            crop: Region to render, relative to the content.

        Returns:
            The lines.
        """
        self._update_styles()
        self._update_layout()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        """Render one line of the view: the header at 0, rows below.

        Args:
            y: Line of the view (not of the virtual content).

        Returns:
            The line, exactly as wide as the view.
        """
        if self._styles is None:
            self._update_styles()
        width = self._layout_width
        if width <= 0:
            return Strip.blank(0)
        if y == 0:
            return self._render_header(width)
        visible = self._visible
        if not visible:
            if y == self._empty_line():
                return self._render_empty(width)
            return Strip.blank(width, self._base_style)
        index = self.scroll_offset.y + y - 1
        if index >= len(visible):
            return Strip.blank(width, self._base_style)
        return self._render_row(visible[index], index == self._cursor_index, width)

    def _update_styles(self) -> None:
        """Fetch the current styles; drop the line cache if they changed.

        Textual forgets the component styles at every refresh, and works each one out
        again through every ancestor. They change only with the widget's own style (its
        ancestors' included) or when the stylesheet applies its component rules again
        (focus, classes, theme), which makes new rule objects: neither, and they are
        the ones of the last render.
        """
        base = self.rich_style
        sources = tuple(self._component_styles.values())
        known = self._style_sources
        if (
            known is not None
            and known[0] == base
            and len(known[1]) == len(sources)
            and all(map(is_, known[1], sources))
        ):
            return
        self._style_sources = (base, sources)
        get = self.get_component_rich_style
        header = get("keyed-table--header")
        cursor = get("keyed-table--cursor")
        tones = {tone: get(f"keyed-table--{tone}") for tone in TONES}
        styles = (base, header, cursor, *tones.values())
        if styles != self._styles:
            self._styles = styles
            self._base_style = base
            self._header_style = header
            self._cursor_style = cursor
            self._tone_styles = {"": base, **tones}
            self._line_cache.clear()

    def _compose_line(self, gutter: str, text: str, style: Style, width: int) -> Strip:
        """Make a line: the fixed gutter, then ``text`` scrolled horizontally and padded."""
        view = width - 1
        scroll_x = self.scroll_offset.x
        content = self._content_width
        segments = [Segment(gutter, style)]
        if scroll_x or content > view:
            body = Strip([Segment(text, style)], content).crop(scroll_x, scroll_x + view)
            segments.extend(body)
            used = body.cell_length
        else:
            segments.append(Segment(text, style))
            used = content
        if used < view:
            segments.append(Segment(" " * (view - used), style))
        return Strip(segments, width)

    def _render_header(self, width: int) -> Strip:
        sort_column = self._sort_column if self._sortable else None
        cache_key = ("\x00header", sort_column, self._sort_reverse, self.scroll_offset.x, width)
        strip = self._line_cache.get(cache_key)
        if strip is None:
            arrow = SORT_DESCENDING if self._sort_reverse else SORT_ASCENDING
            columns = self._columns
            text = " ".join(
                _header_cell(
                    columns[index].label, arrow if columns[index].key == sort_column else "", w, a
                )
                for index, w, a in zip(self._shown, self._widths, self._aligns, strict=False)
            )
            strip = self._compose_line(" ", text, self._header_style, width)
            self._line_cache[cache_key] = strip
        return strip

    def _render_row(self, row: Row, cursor: bool, width: int) -> Strip:
        cache_key = (row.key, row.cells, row.tone, cursor, self.scroll_offset.x, width)
        strip = self._line_cache.get(cache_key)
        if strip is None:
            if cursor:
                style = self._cursor_style
            else:
                style = self._tone_styles.get(row.tone, self._base_style)
            cells = row.cells
            count = len(cells)
            text = " ".join(
                fit_cell(cells[index] if index < count else "", w, align)
                for index, w, align in zip(self._shown, self._widths, self._aligns, strict=False)
            )
            strip = self._compose_line(CURSOR_GLYPH if cursor else " ", text, style, width)
            self._line_cache[cache_key] = strip
        return strip

    def _render_empty(self, width: int) -> Strip:
        text = fit_cell(self._empty_text, width).rstrip()
        left = (width - cell_len(text)) // 2
        style = self._tone_styles.get("muted", self._base_style)
        return Strip(
            [Segment(" " * left, self._base_style), Segment(text, style)],
            left + cell_len(text),
        ).adjust_cell_length(width, self._base_style)

    def _empty_line(self) -> int:
        """The view line showing `empty_text`: one blank line below the header if room."""
        return 2 if self._body_height() >= 2 else 1

    # ------------------------------------------------------------------ internals

    def _body_height(self) -> int:
        """Number of row lines in the view (below the header)."""
        return max(0, self._view_height - 1)

    def _update_layout(self) -> None:
        """Recompute column widths if the view width changed; track the view height."""
        if not self.is_mounted:
            return
        view = self.scrollable_content_region.size
        self._view_height = view.height
        if view.width == self._layout_width:
            return
        self._layout_width = view.width
        self._shown = [
            index
            for index, column in enumerate(self._columns)
            if view.width >= column.hide_below and column.key not in self._hidden_keys
        ]
        shown = [self._columns[index] for index in self._shown]
        self._widths = column_widths(shown, max(0, view.width - 1))
        self._aligns = [column.align for column in shown]
        starts: list[int] = []
        position = 0
        for w in self._widths:
            starts.append(position)
            position += w + 1
        self._starts = starts
        self._content_width = max(0, position - 1)
        self._line_cache.clear()
        self._update_virtual_size()
        self.refresh()

    def _update_virtual_size(self) -> None:
        """Follow the row count and the content width with the scrollbars only.

        Setting ``virtual_size`` the usual way repaints the whole table and lays the
        screen out again: every line written anew, blank ones included, each time a
        session comes or goes. Nothing on screen moves when the row count changes; the
        lines whose text changed are repainted by `_repaint_changes`, and the scrollbars
        (which lay the screen out again when they appear or go) follow here.
        """
        size = Size(1 + self._content_width, 1 + len(self._visible))
        if size == self.virtual_size:
            return
        self.set_reactive(ScrollView.virtual_size, size)
        if self.is_mounted:
            self._scroll_update(size)

    def _compute_visible(self) -> tuple[Row, ...]:
        """Filter then sort the rows."""
        rows: list[Row] = self._rows
        needle = self._filter_folded
        if needle:
            rows = [
                row
                for row in rows
                if needle in " ".join(row.cells).casefold()
                or (row.search is not None and needle in row.search.casefold())
            ]
        if self._sortable and self._sort_column is not None:
            index = next(i for i, c in enumerate(self._columns) if c.key == self._sort_column)
            present: list[tuple[Any, Row]] = []
            missing: list[Row] = []
            for row in rows:
                values = row.sort_values
                value = values[index] if index < len(values) else None
                if value is None:
                    missing.append(row)
                else:
                    present.append((value, row))
            try:
                present.sort(key=_first, reverse=self._sort_reverse)
            except TypeError:
                present.sort(key=_fallback_first, reverse=self._sort_reverse)
            return (*(row for _, row in present), *missing)
        return tuple(rows)

    def _index_of(self, key: Hashable) -> int | None:
        """Index of ``key`` in the visible rows, or None."""
        if self._visible_index is None:
            self._visible_index = {row.key: index for index, row in enumerate(self._visible)}
        return self._visible_index.get(key)

    def _screen_signature(self) -> Signature:
        """What the view shows: its scroll position, then each body line: a row's
        ``(cells, tone, cursor)``, the empty text, or None for a blank line."""
        top = self.scroll_offset.y
        body = self._body_height()
        lines: list[tuple[Any, ...] | None]
        if self._visible:
            cursor = self._cursor_index - top
            window = self._visible[top : top + body]
            lines = [(row.cells, row.tone, line == cursor) for line, row in enumerate(window)]
            lines += [None] * (body - len(window))
        else:
            lines = [None] * body
            empty = self._empty_line() - 1
            if 0 <= empty < body:
                lines[empty] = (self._empty_text,)
        return (top, self.scroll_offset.x), lines

    def _rebuild(self, force_refresh: bool = False) -> None:
        """Recompute the displayed rows, keep the cursor key, repaint if anything shows."""
        before = None if force_refresh else self._screen_signature()
        old_key = self.cursor_key
        old_index = self._cursor_index
        self._visible = self._compute_visible()
        self._visible_index = None
        count = len(self._visible)
        index: int | None = None
        if old_key is not None:
            if old_index < count and self._visible[old_index].key == old_key:
                index = old_index
            else:
                index = self._index_of(old_key)
        if index is None:
            index = min(old_index, count - 1)
        self._cursor_index = max(0, index)
        self._update_virtual_size()
        self._scroll_cursor_into_view()
        self._repaint_changes(before, self._screen_signature())
        self._post_cursor_moved()

    def _repaint_changes(self, before: Signature | None, after: Signature) -> None:
        """Repaint only what changed: on each line whose row changed, from the first to the
        last changed column; a line that stays blank is never written. A terminal over a
        slow link gets only those cells (and what precedes them on their lines: the
        compositor writes a line from the widget's left edge)."""
        if before == after:
            return
        if before is None or before[0] != after[0]:
            self.refresh()  # scrolled: every line moved
            return
        width = self.size.width
        for y, (old, new) in enumerate(zip_longest(before[1], after[1]), start=1):
            if old == new:
                continue
            span = self._changed_span(old, new, width)
            if span is not None:
                self.refresh(Region(span[0], y, span[1] - span[0], 1))

    def _changed_span(
        self, old: tuple[Any, ...] | None, new: tuple[Any, ...] | None, width: int
    ) -> tuple[int, int] | None:
        """The cells of a view line that differ between two of its contents: the whole line
        unless both are rows (or blank) in the same style, then the changed columns only."""
        old = old or _BLANK
        new = new or _BLANK
        if len(old) != 3 or len(new) != 3 or old[1:] != new[1:]:
            return 0, width
        old_cells, new_cells = old[0], new[0]
        first = last = -1
        tail = 0
        for position, index in enumerate(self._shown):
            before = old_cells[index] if index < len(old_cells) else ""
            after = new_cells[index] if index < len(new_cells) else ""
            if before != after:
                if first < 0:
                    first = position
                last, tail = position, max(cell_len(before), cell_len(after))
        if first < 0:
            return None
        if self._aligns[last] == "right":
            tail = self._widths[last]  # the change is at the end of the column
        scroll_x = self.scroll_offset.x
        x1 = max(1, 1 + self._starts[first] - scroll_x)
        x2 = min(width, 1 + self._starts[last] + min(tail, self._widths[last]) - scroll_x)
        return (x1, x2) if x2 > x1 else None

    def _move_cursor(self, index: int) -> None:
        """Put the cursor on a visible index (clamped), repaint, scroll it into view."""
        count = len(self._visible)
        if not count:
            return
        index = max(0, min(index, count - 1))
        old = self._cursor_index
        if index != old:
            self._cursor_index = index
            self._refresh_row(old)
            self._refresh_row(index)
        self._scroll_cursor_into_view()
        self._post_cursor_moved()

    def _refresh_row(self, index: int) -> None:
        y = 1 + index - self.scroll_offset.y
        if 1 <= y < self._view_height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _scroll_cursor_into_view(self) -> None:
        body = self._body_height()
        if body <= 0 or not self._visible:
            return
        top = self.scroll_offset.y
        index = self._cursor_index
        if index < top:
            target = index
        elif index >= top + body:
            target = index - body + 1
        else:
            return
        self.scroll_to(y=target, animate=False, force=True)

    def _post_cursor_moved(self) -> None:
        row = self.cursor_row
        key = None if row is None else row.key
        if key != self._posted_key:
            self._posted_key = key
            self.post_message(self.CursorMoved(self, key, row))


def _first(pair: tuple[Any, Row]) -> Any:
    return pair[0]


def _fallback_first(pair: tuple[Any, Row]) -> tuple[int, Any]:
    return _fallback_sort_key(pair[0])
