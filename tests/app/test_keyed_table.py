# mypy: disable-error-code="comparison-overlap"
# (an assert on cursor_key narrows the property; the keys pressed next change it)
"""KeyedTable: what a user sees and what the keyboard does, in a small running app."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import pytest
from helpers import TerminalWrites, screen_text
from rich.cells import cell_len
from rich.style import Style
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from pgtop.widgets.keyed_table import (
    CURSOR_GLYPH,
    Column,
    KeyedTable,
    Row,
    column_widths,
    fit_cell,
)
from pgtop.widgets.repaint import ChangedCellsApp
from pgtop.widgets.status_line import StatusLine

COLUMNS = [
    Column("pid", "pid", width=6, align="right"),
    Column("user", "user", width=10),
    Column("query", "query"),
]


def make_row(pid: int, user: str = "alice", query: str = "select 1", **kwargs: Any) -> Row:
    sort_values = kwargs.pop("sort_values", (pid, user, query))
    return Row(pid, (str(pid), user, query), sort_values, **kwargs)


class TableApp(ChangedCellsApp[None]):
    """Hosts one table and records the messages it posts; writes as pgtop does."""

    def __init__(self, columns: list[Column] | None = None, **table_kwargs: Any) -> None:
        super().__init__()
        self.columns = COLUMNS if columns is None else columns
        self.table_kwargs = table_kwargs
        self.activated: list[Hashable] = []
        self.moved: list[Hashable | None] = []

    def compose(self) -> ComposeResult:
        yield KeyedTable(self.columns, **self.table_kwargs)

    def on_keyed_table_row_activated(self, message: KeyedTable.RowActivated) -> None:
        assert message.control is message.table
        assert message.row.key == message.key
        self.activated.append(message.key)

    def on_keyed_table_cursor_moved(self, message: KeyedTable.CursorMoved) -> None:
        self.moved.append(message.key)


def screen_lines(table: KeyedTable) -> list[str]:
    """The text of every line of the table's view, as rendered."""
    return [table.render_line(y).text for y in range(table.scrollable_content_region.height)]


def body_lines(table: KeyedTable) -> list[str]:
    return [line for line in screen_lines(table)[1:] if line.strip()]


def cursor_line(table: KeyedTable) -> str:
    (line,) = [line for line in screen_lines(table) if line.startswith(CURSOR_GLYPH)]
    return line


def shown_pids(table: KeyedTable) -> list[int]:
    return [int(line[1:].split()[0]) for line in body_lines(table)]


# ---------------------------------------------------------------------- pure helpers


def test_fit_cell_pads_aligns_and_truncates_in_cells() -> None:
    assert fit_cell("ab", 4) == "ab  "
    assert fit_cell("ab", 4, "right") == "  ab"
    assert fit_cell("abcdef", 4) == "abc…"
    assert fit_cell("漢字漢字", 5) == "漢字…"
    assert fit_cell("漢字漢字", 6) == "漢字… "  # half a wide character cannot be shown
    assert cell_len(fit_cell("漢字漢字", 4)) == 4
    assert cell_len(fit_cell("🐘🐘🐘", 4)) == 4
    assert fit_cell("x", 0) == ""
    assert fit_cell("a\nb\x1b", 5) == "a\ufffdb\ufffd "


def test_column_widths_share_the_rest_between_flexible_columns() -> None:
    columns = [
        Column("a", "a", width=5),
        Column("b", "b"),
        Column("c", "c", min_width=10),
    ]
    # 30 - 5 - 2 separators = 23 -> 11 and 12 (leftover to the last flexible column)
    assert column_widths(columns, 30) == [5, 11, 12]
    # Not enough room: flexible columns keep their minimum, the total overflows.
    assert column_widths(columns, 12) == [5, 4, 10]
    # A large minimum is honoured, the others share what is left.
    assert column_widths(columns, 20) == [5, 3, 10] or column_widths(columns, 20) == [5, 4, 10]


# ---------------------------------------------------------------------- rendering


async def test_cells_are_never_parsed_as_markup() -> None:
    app = TableApp([Column("pid", "pid", width=4), Column("text", "[b]label[/b]")])
    async with app.run_test(size=(80, 10)) as pilot:
        table = app.query_one(KeyedTable)
        hostile = "[bold]x[/] [@click=app.quit]q"
        table.set_rows([Row(1, ("1", hostile), (1, hostile))])
        await pilot.pause()
        lines = screen_lines(table)
        assert "[b]label[/b]" in lines[0]
        assert hostile in lines[1]
        for segment in table.render_line(1):
            assert not segment.style or not segment.style.meta
            assert not segment.style or not segment.style.link
        assert app.is_running


async def test_header_shows_labels_and_gutter_marks_the_cursor() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(KeyedTable)
        table.set_rows([make_row(1), make_row(2)])
        await pilot.pause()
        header, first, second = screen_lines(table)[:3]
        assert header.split() == ["pid", "user", "query"]
        assert first.startswith(CURSOR_GLYPH)
        assert second.startswith(" ")
        # Right-aligned pid column: the number ends where the header label ends.
        assert header.index("pid") + 3 == first.index("1") + 1
        assert all(
            len(line) == table.scrollable_content_region.width for line in screen_lines(table)
        )


async def test_wide_characters_keep_columns_aligned() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(KeyedTable)
        table.set_rows(
            [
                make_row(1, user="alice", query="QUERY-A"),
                make_row(2, user="漢字ユーザー", query="QUERY-B"),
                make_row(3, user="🐘🐘", query="QUERY-C"),
                make_row(4, user="漢字漢字漢字漢字", query="QUERY-D"),
            ]
        )
        await pilot.pause()
        offsets = set()
        for line in body_lines(table):
            start = line.index("QUERY-")
            offsets.add(cell_len(line[:start]))
        assert len(offsets) == 1
        header = screen_lines(table)[0]
        assert offsets == {cell_len(header[: header.index("query")])}
        assert "漢字漢字… " in body_lines(table)[3]


async def test_long_cells_are_truncated_with_an_ellipsis() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 10)) as pilot:
        table = app.query_one(KeyedTable)
        table.set_rows([make_row(1, user="a_very_long_user_name", query="x" * 200)])
        await pilot.pause()
        line = body_lines(table)[0]
        assert "a_very_lo…" in line
        assert line.rstrip().endswith("x…")
        assert len(line) == table.scrollable_content_region.width


async def test_empty_text_is_shown_and_settable() -> None:
    app = TableApp(empty_text="no sessions")
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(KeyedTable)
        await pilot.pause()
        assert any("no sessions" in line for line in screen_lines(table))
        assert table.cursor_key is None
        assert table.cursor_row is None
        table.set_rows([make_row(1)])
        await pilot.pause()
        assert not any("no sessions" in line for line in screen_lines(table))
        table.set_filter("foo")
        table.empty_text = "no sessions match 'foo'"
        await pilot.pause()
        assert any("no sessions match 'foo'" in line for line in screen_lines(table))
        assert screen_lines(table)[0].split() == ["pid", "user", "query"]


# ---------------------------------------------------------------------- snapshots and cursor


async def test_cursor_follows_its_key_across_snapshots() -> None:
    app = TableApp(sortable=False)
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        table.focus()
        table.set_rows([make_row(pid) for pid in (1, 2, 3, 4)])
        await pilot.press("down", "down")
        assert table.cursor_key == 3

        # Reordered.
        table.set_rows([make_row(pid) for pid in (3, 4, 2, 1)])
        await pilot.pause()
        assert table.cursor_key == 3
        assert cursor_line(table)[1:].split()[0] == "3"

        # Rows inserted above.
        table.set_rows([make_row(pid) for pid in (10, 11, 3, 4, 2, 1)])
        await pilot.pause()
        assert table.cursor_key == 3
        assert table.cursor_index == 2

        # Rows removed above.
        table.set_rows([make_row(pid) for pid in (3, 2, 1)])
        await pilot.pause()
        assert table.cursor_key == 3
        assert table.cursor_index == 0

        # The cursor's own row vanishes: same index, clamped.
        table.set_rows([make_row(pid) for pid in (7, 8)])
        await pilot.pause()
        assert table.cursor_key == 7
        table.move_cursor_to_key(8)
        table.set_rows([make_row(7)])
        await pilot.pause()
        assert table.cursor_key == 7
        assert app.moved == [1, 2, 3, 7, 8, 7]


async def test_equal_snapshot_does_not_repaint() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        table.set_rows([make_row(pid) for pid in range(5)])
        await pilot.pause()
        calls: list[object] = []
        original = table.refresh

        def counting_refresh(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            return original(*args, **kwargs)

        table.refresh = counting_refresh  # type: ignore[method-assign]
        table.set_rows([make_row(pid) for pid in range(5)])
        assert calls == []
        # A change below the view does not repaint either.
        many = [make_row(pid) for pid in range(50)]
        table.set_rows(many)
        calls.clear()
        table.set_rows([*many[:-1], make_row(49, user="changed")])
        assert calls == []
        table.set_rows([make_row(0, user="changed"), *many[1:]])
        assert calls


async def test_rows_that_come_and_go_write_only_the_lines_that_changed() -> None:
    """At 100x20 the header is terminal line 0 and the row at index i is line 1 + i."""
    app = TableApp()
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(KeyedTable)
        table.set_rows([make_row(pid) for pid in range(1, 6)])
        await pilot.pause()
        writes = TerminalWrites(app)

        # A row appears at the end: its line, and nothing else.
        table.set_rows([make_row(pid) for pid in range(1, 7)])
        await pilot.pause()
        assert set(writes.lines()) == {6}
        assert writes.lines()[6].split() == ["6", "alice", "select", "1"]
        assert writes.size < 2 * 100

        # A row in the middle goes: the lines below it move up (only their pid differs:
        # only that column is written), the last line is cleared once (up to where its
        # text ended), and the blank lines below are not written.
        writes.clear()
        table.set_rows([make_row(pid) for pid in (1, 2, 4, 5, 6)])
        await pilot.pause()
        lines = writes.lines()
        assert set(lines) == {3, 4, 5, 6}
        assert [lines[line].split() for line in (3, 4, 5)] == [["4"], ["5"], ["6"]]
        assert lines[6].strip() == ""
        assert writes.size < 4 * 100

        # The same rows again: nothing is written.
        writes.clear()
        table.set_rows([make_row(pid) for pid in (1, 2, 4, 5, 6)])
        await pilot.pause()
        assert writes.updates == []

        # Every row gone: the lines that showed rows, and the empty text.
        writes.clear()
        table.set_rows([])
        await pilot.pause()
        lines = writes.lines()
        assert set(lines) == {1, 2, 3, 4, 5}
        assert lines[2].strip() == "no rows"


async def test_a_changed_cell_is_written_up_to_the_end_of_its_column() -> None:
    app = TableApp()
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(KeyedTable)
        table.set_rows([make_row(pid) for pid in range(1, 4)])
        await pilot.pause()
        writes = TerminalWrites(app)
        table.set_rows([make_row(1), make_row(2, user="carol"), make_row(3)])
        await pilot.pause()
        # The user column only: not the row around it, nor the padding after it.
        assert writes.lines() == {2: "carol"}
        assert writes.size < 50


async def test_rows_that_come_and_go_off_screen_keep_the_cursor_and_the_view() -> None:
    app = TableApp()
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(KeyedTable)
        table.focus()
        table.set_rows([make_row(pid) for pid in range(5000)])
        table.move_cursor_to_key(2500)
        await pilot.pause()
        top = table.scroll_offset.y
        lines = screen_lines(table)
        writes = TerminalWrites(app)
        table.set_rows([make_row(pid) for pid in range(4990)])
        await pilot.pause()
        table.set_rows([make_row(pid) for pid in range(5010)])
        await pilot.pause()
        assert (table.cursor_key, table.scroll_offset.y) == (2500, top)
        assert screen_lines(table) == lines
        # Only the scrollbar, in the last two columns, may have been written.
        assert all(not text.strip(" ▁▂▃▄▅▆▇█▔") for text in writes.lines().values())


async def test_move_cursor_to_key_and_keyboard_navigation() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        table.focus()
        table.set_rows([make_row(pid) for pid in range(100)])
        await pilot.pause()
        assert table.move_cursor_to_key(42)
        assert not table.move_cursor_to_key("missing")
        await pilot.pause()
        assert table.cursor_key == 42
        assert cursor_line(table)[1:].split()[0] == "42"
        await pilot.press("j", "j", "k")
        assert table.cursor_key == 43
        await pilot.press("g")
        assert table.cursor_key == 0
        await pilot.press("G")
        assert table.cursor_key == 99
        await pilot.press("home", "pagedown")
        assert table.cursor_key == 11  # a page is the body height: 12 lines minus the header
        await pilot.press("end")
        await pilot.pause()
        assert cursor_line(table)[1:].split()[0] == "99"


async def test_enter_posts_row_activated() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        table.focus()
        table.set_rows([make_row(pid) for pid in (5, 6, 7)])
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.activated == [6]


async def test_five_thousand_rows_render_and_reach_the_end() -> None:
    app = TableApp()
    async with app.run_test(size=(80, 20)) as pilot:
        table = app.query_one(KeyedTable)
        table.focus()
        table.set_rows([make_row(pid, query=f"select {pid}") for pid in range(5000)])
        await pilot.pause()
        assert shown_pids(table)[:3] == [0, 1, 2]
        await pilot.press("end")
        await pilot.pause()
        lines = screen_lines(table)
        assert lines[0].split() == ["pid", "user", "query"]  # the header does not scroll away
        assert lines[-1].startswith(CURSOR_GLYPH)
        assert "4999" in lines[-1]
        assert "select 4999" in lines[-1]
        assert table.cursor_key == 4999
        await pilot.press("up")
        await pilot.pause()
        assert table.cursor_key == 4998
        assert screen_lines(table)[-2].startswith(CURSOR_GLYPH)


# ---------------------------------------------------------------------- sort and filter


async def test_sort_by_orders_toggles_and_puts_none_last() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        rows = [
            make_row(1, sort_values=(1, "b", 30)),
            make_row(2, sort_values=(2, None, None)),
            make_row(3, sort_values=(3, "a", 10)),
            make_row(4, sort_values=(4, "c", 20)),
        ]
        table.set_rows(rows)
        await pilot.pause()
        assert shown_pids(table) == [1, 2, 3, 4]

        table.sort_by("query")
        await pilot.pause()
        assert (table.sort_column, table.sort_reverse) == ("query", False)
        assert shown_pids(table) == [3, 4, 1, 2]
        assert "query ▲" in screen_lines(table)[0]

        table.sort_by("query")  # same column: toggles
        await pilot.pause()
        assert table.sort_reverse
        assert shown_pids(table) == [1, 4, 3, 2]
        assert "query ▼" in screen_lines(table)[0]

        table.sort_by("user")  # new column: ascending
        await pilot.pause()
        assert shown_pids(table) == [3, 1, 4, 2]
        assert "▲" in screen_lines(table)[0]
        assert "query ▲" not in screen_lines(table)[0]
        table.sort_by("user", reverse=True)
        assert [row.key for row in table.visible_rows] == [4, 1, 3, 2]

        table.sort_by(None)
        assert [row.key for row in table.visible_rows] == [1, 2, 3, 4]
        with pytest.raises(ValueError, match="no column"):
            table.sort_by("nope")


async def test_sort_keeps_cursor_key_and_unsortable_keeps_order() -> None:
    app = TableApp(sortable=False)
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        table.set_rows([make_row(pid) for pid in (3, 1, 2)])
        table.sort_by("pid")
        await pilot.pause()
        assert shown_pids(table) == [3, 1, 2]
        assert "▲" not in screen_lines(table)[0]
        table.move_cursor_to_key(2)
        table.sortable = True
        await pilot.pause()
        assert shown_pids(table) == [1, 2, 3]
        assert table.cursor_key == 2
        assert cursor_line(table)[1:].split()[0] == "2"


async def test_mixed_type_sort_values_do_not_crash() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        table.set_rows(
            [
                make_row(1, sort_values=(1, "x", "text")),
                make_row(2, sort_values=(2, "x", 5)),
                make_row(3, sort_values=(3, "x", 2.5)),
            ]
        )
        table.sort_by("query")
        await pilot.pause()
        assert shown_pids(table) == [3, 2, 1]


async def test_filter_narrows_and_clearing_restores() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        table.set_rows(
            [
                make_row(1, user="alice", query="select 1"),
                make_row(2, user="bob", query="UPDATE t", search="UPDATE t SET x = 1 -- hidden"),
                make_row(3, user="carol", query="select 3"),
            ]
        )
        table.move_cursor_to_key(3)
        table.set_filter("SELECT")
        await pilot.pause()
        assert table.filter_text == "SELECT"
        assert shown_pids(table) == [1, 3]
        assert table.cursor_key == 3
        table.set_filter("hidden")  # matches Row.search
        await pilot.pause()
        assert shown_pids(table) == [2]
        assert table.cursor_key == 2
        table.set_filter("")
        await pilot.pause()
        assert shown_pids(table) == [1, 2, 3]
        assert table.cursor_key == 2


# ---------------------------------------------------------------------- wide tables


async def test_columns_wider_than_the_view_scroll_horizontally() -> None:
    columns = [Column(f"c{i}", f"col{i}", width=12) for i in range(8)]
    app = TableApp(columns)
    async with app.run_test(size=(40, 10)) as pilot:
        table = app.query_one(KeyedTable)
        table.focus()
        table.set_rows([Row(1, tuple(f"v{i}" for i in range(8)), tuple(range(8)))])
        await pilot.pause()
        header, body = screen_lines(table)[:2]
        assert header.split()[:2] == ["col0", "col1"]
        assert "col7" not in header
        assert table.virtual_size.width > table.scrollable_content_region.width
        await pilot.press("right")
        await pilot.pause()
        header, body = screen_lines(table)[:2]
        assert header.split()[0] == "col1"
        assert body.startswith(CURSOR_GLYPH)
        assert body[1:].split()[0] == "v1"
        await pilot.press("end", "right", "right", "right", "right", "right", "right", "right")
        await pilot.pause()
        assert "col7" in screen_lines(table)[0]
        await pilot.press("left")
        await pilot.pause()
        assert table.scroll_offset.x > 0


async def focused_table(app: TableApp, pilot: Pilot[None]) -> KeyedTable:
    """The app's table, holding two rows, focused."""
    table = app.query_one(KeyedTable)
    table.set_rows([make_row(1), make_row(2)])
    table.focus()
    await pilot.pause()
    return table


async def test_cursor_is_stronger_when_focused() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = await focused_table(app, pilot)
        focused = table.render_line(1)
        assert focused.text.startswith(CURSOR_GLYPH)
        table.blur()
        await pilot.pause()
        blurred = table.render_line(1)
        assert blurred.text.startswith(CURSOR_GLYPH)
        assert [segment.style for segment in focused] != [segment.style for segment in blurred]
        # Other rows are not styled as the cursor.
        assert table.render_line(2).text.startswith(" ")
        assert list(table.render_line(2))[1].style != list(blurred)[1].style


async def test_styles_are_worked_out_again_when_the_theme_changes_not_at_each_refresh() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = await focused_table(app, pilot)
        asked: list[tuple[str, ...]] = []
        fetch = table.get_component_rich_style

        def counted(*names: str, **options: Any) -> Style:
            asked.append(names)
            return fetch(*names, **options)

        table.get_component_rich_style = counted  # type: ignore[method-assign]
        table.set_rows([make_row(1), make_row(3)])
        await pilot.pause()
        assert "3" in screen_lines(table)[2], "the new row was rendered"
        assert asked == []
        dark = [segment.style for segment in table.render_line(1)]
        app.theme = "textual-light"
        await pilot.pause()
        assert asked
        assert [segment.style for segment in table.render_line(1)] != dark


async def test_rows_set_before_mount_show_up() -> None:
    table = KeyedTable(COLUMNS, empty_text="nothing")
    table.set_rows([make_row(pid) for pid in (1, 2, 3)])
    table.sort_by("pid", reverse=True)

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield table

    async with Host().run_test(size=(60, 10)) as pilot:
        await pilot.pause()
        assert shown_pids(table) == [3, 2, 1]
        assert table.cursor_key == 1  # the cursor was on the first row given, and follows it
        assert cursor_line(table)[1:].split()[0] == "1"
        assert "pid ▼" in screen_lines(table)[0]


async def test_a_status_line_that_gets_shorter_is_written_where_it_moved() -> None:
    """What follows a shorter or longer text moves: it is written again where it now is."""

    class StatusApp(ChangedCellsApp[None]):
        def compose(self) -> ComposeResult:
            yield StatusLine()

    app = StatusApp()
    async with app.run_test(size=(60, 3)) as pilot:
        status = app.query_one(StatusLine)
        status.set_text("12 of 12 sessions · 500 idle hidden (i) · sort")
        await pilot.pause()
        before = screen_text(app).split("\n")
        for text in ("12 of 512 sessions · idle shown (i) · sort", "9 of 9 sessions · sort"):
            writes = TerminalWrites(app)
            status.set_text(text)
            await pilot.pause()
            after = screen_text(app).split("\n")
            assert after[0].strip() == text
            assert writes.apply(before) == after
            before = after
