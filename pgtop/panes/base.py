"""What every tab's pane is: a list of rows with a status line, a filter, sort keys and the
keys that go with them, shown from the data it is given.

A tab is a subclass that declares its name, its columns and how its data becomes rows
(``rows``), and may say what it needs of its collector (``needs``). It gets the snapshot of
every refresh (``show_activity``: the Activity snapshot, or on a PgBouncer its pools) and
its own data when its collector read some (``show_data``), always frozen values. The base
owns the table, the filter box, sorting and the status line; keys have one id per action
across all tabs (for ``[keymap]``).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import Input, TabPane

from pgtop.panes.host import Host, ReportsFailures, host_of
from pgtop.text import one_line
from pgtop.widgets.keyed_table import Column, KeyedTable, Row
from pgtop.widgets.status_line import StatusLine

FILTER_PLACEHOLDER = "filter: text in any column (Enter keeps it, Escape clears)"

NOTICE_SECONDS = 10.0
"""How long the status line says what was just done."""

FILTER_BINDINGS: list[BindingType] = [
    # A priority binding runs while the key is dispatched, before the keys typed after it:
    # they go to the filter however fast they come (a paste, a laggy link).
    Binding("slash", "start_filter", "Filter", id="filter", priority=True),
    Binding("escape", "clear_filter", "Clear filter", show=False, id="clear-filter"),
]
SORT_BINDINGS: list[BindingType] = [
    Binding("greater_than_sign", "sort_step(1)", "Sort →", id="sort-next"),
    Binding("less_than_sign", "sort_step(-1)", "Sort ←", id="sort-previous", show=False),
    Binding("r", "reverse_sort", "Reverse", id="sort-reverse", show=False),
]
"""A pane lists them in its ``BINDINGS`` where its footer shows them: filter first, then
what changes which rows show, then sort, then actions."""


class ListPane(ReportsFailures, TabPane):
    """One tab: a table of rows, filtered and sorted, under a status line."""

    TAB: ClassVar[str] = ""
    """The tab's name (``--once`` name, widget ids, the collector's key)."""
    TITLE: ClassVar[str] = ""
    KEY: ClassVar[str] = ""
    """The key that shows the tab."""
    COLUMNS: ClassVar[tuple[Column, ...]] = ()
    DEFAULT_SORT: ClassVar[str | None] = None
    DESCENDING: ClassVar[frozenset[str]] = frozenset()
    """Columns that read best largest first (the others sort ascending)."""
    NOUN: ClassVar[str] = "rows"
    """What a row is, plural: ``3 of 40 sessions``."""
    SORTABLE: ClassVar[bool] = True
    """False keeps the rows' order (a tree) and offers neither sort nor filter."""
    FAILURE_LABEL: ClassVar[str] = "refresh failed"
    """Before the reason in the status line when the tab's collection failed."""

    BINDINGS: ClassVar[list[BindingType]] = []
    """Each pane lists its own, in its footer's order (``FILTER_BINDINGS``...)."""

    REVEAL_TRIES: ClassVar[int] = 2
    """Refreshes of the rows a row asked for by ``reveal`` may take to appear."""

    def __init__(self, *, lazy: bool = False) -> None:
        super().__init__(f"{self.KEY} {self.TITLE}", id=self.TAB)
        self.failure = ""
        """Why the last collection failed ("" after a good one)."""
        self.lazy = lazy
        """Its widgets are made when it is first shown (`show_content`), not at start-up."""
        self.composed = False
        """Its widgets are made."""
        self._reveal: tuple[Hashable, str, int] | None = None
        """A row to put the cursor on when it shows: key, what it is, tries left."""
        self._notice = ""
        """What was just done (a copy), first in the status line for a while."""

    @property
    def host(self) -> Host:
        return host_of(self.app)

    def compose(self) -> ComposeResult:
        if not self.lazy:
            yield from self._widgets()

    def on_mount(self) -> None:
        if self.composed:
            self.content_mounted()

    def show_content(self) -> None:
        """Make the pane's widgets if they are not made yet (it is being shown)."""
        if not self.composed:
            self.mount_all(list(self._widgets()))
            self.content_mounted()

    def content_mounted(self) -> None:
        """The pane's widgets are made (they may not be on screen yet)."""

    def _widgets(self) -> ComposeResult:
        self.composed = True
        yield StatusLine(id=f"{self.TAB}-status")
        yield from self.compose_above()
        table = KeyedTable(self.columns(), sortable=self.SORTABLE, id=f"{self.TAB}-table")
        if self.DEFAULT_SORT is not None:
            table.sort_by(self.DEFAULT_SORT, reverse=self.DEFAULT_SORT in self.DESCENDING)
        table.empty_text = "waiting for the first refresh…"
        yield table
        yield from self.compose_below()
        if self.SORTABLE:
            yield Input(placeholder=FILTER_PLACEHOLDER, id=f"{self.TAB}-filter", classes="filter")

    def compose_above(self) -> ComposeResult:
        """Widgets between the status line and the table."""
        yield from ()

    def compose_below(self) -> ComposeResult:
        """Widgets below the table."""
        yield from ()

    def columns(self) -> tuple[Column, ...]:
        """The table's columns now."""
        return self.COLUMNS

    @property
    def table(self) -> KeyedTable:
        return self.query_one(f"#{self.TAB}-table", KeyedTable)

    @property
    def filter_box(self) -> Input:
        return self.query_one(f"#{self.TAB}-filter", Input)

    # -- data in -----------------------------------------------------------------------------

    def show_activity(self, snapshot: Any) -> None:
        """The snapshot of a refresh (on every refresh, while the tab is shown): the
        Activity snapshot, or the pools of a PgBouncer, as its source gives (``Snapshot``);
        None before the first."""

    def show_data(self, data: Any) -> None:
        """New data of the tab's collector."""

    def show_failure(self, reason: str) -> None:
        """The tab's collector failed: the rows stay, the reason shows."""
        self.failure = reason
        self.show_status()

    def forget(self) -> None:
        """Another server is shown: no row of the one before stays; the filter does."""
        self.failure = ""
        for cached in ("_snapshot", "_data", "_forest", "_unavailable"):
            if hasattr(self, cached):
                setattr(self, cached, None)
        if not self.composed:
            return  # never shown: no rows, no status line yet
        table = self.table
        table.set_rows([])
        table.empty_text = "waiting for the first read…"
        self.show_status()

    def needs(self) -> object | None:
        """What the tab's collector should read (a frozen value of its own type)."""
        return None

    def state_needs(self, *, now: bool = False) -> None:
        """Tell the host what this tab needs now; ``now``: have it read at once."""
        self.host.state_needs(self.TAB, self.needs(), now=now)

    # -- rows and status ---------------------------------------------------------------------

    def rows(self) -> Iterable[Row]:
        """The table rows of the data shown."""
        return ()

    def show_rows(self) -> None:
        """Put the rows in the table, and say what they are."""
        table = self.table
        table.set_rows(self.rows())
        table.empty_text = self.empty_text()
        self._follow_reveal()
        self.show_status()

    def reveal(self, key: Hashable, what: str) -> None:
        """Put the cursor on the row ``key`` (``what`` it is, for a message), now or when it
        shows; a filter that hides it is cleared."""
        self._reveal = (key, what, self.REVEAL_TRIES)
        self._follow_reveal(now=True)

    def _follow_reveal(self, *, now: bool = False) -> None:
        if self._reveal is None:
            return
        key, what, tries = self._reveal
        table = self.table
        if key not in {row.key for row in table.rows}:
            if now:
                return
            if tries > 1:
                self._reveal = (key, what, tries - 1)
            else:
                self._reveal = None
                self.host.say(f"{what} is not listed here any more", timeout=5)
            return
        self._reveal = None
        if not table.move_cursor_to_key(key) and table.filter_text:
            self.filter_box.value = ""
            table.set_filter("")
            self.filter_box.remove_class("-shown")
            table.move_cursor_to_key(key)
        table.focus()

    def empty_text(self) -> str:
        """What the table says when no row shows."""
        filter_text = self.table.filter_text
        if filter_text:
            return f"no {self.NOUN} match '{one_line(filter_text, 60)}'"
        return f"no {self.NOUN}"

    def count_text(self) -> str:
        """``3 of 40 sessions matching 'x'``."""
        table = self.table
        head = f"{len(table.visible_rows)} of {len(table.rows)} {self.NOUN}"
        if table.filter_text:
            head += f" matching '{one_line(table.filter_text, 40)}'"
        return head

    def status_parts(self) -> list[str]:
        """The status line, before its sort and failure parts."""
        return [self.count_text()]

    def show_status(self) -> None:
        parts = self.status_parts()
        table = self.table
        if self.SORTABLE and table.sort_column:
            label = next(c.label for c in table.columns if c.key == table.sort_column)
            parts.append(f"sort {label.lower()} {'▼' if table.sort_reverse else '▲'} (< > r)")
        if self.failure:
            parts.append(f"{self.FAILURE_LABEL}: {one_line(self.failure, 160)}")
        if self._notice:
            parts.insert(0, self._notice)
        self.query_one(f"#{self.TAB}-status", StatusLine).set_text(" · ".join(parts))

    def show_notice(self, text: str, seconds: float = NOTICE_SECONDS) -> None:
        """Say what was just done first in the status line, for ``seconds``."""
        self._notice = one_line(text, 300)
        self.show_status()

        def expire(shown: str = self._notice) -> None:
            if self._notice == shown:
                self._notice = ""
                self.show_status()

        self.set_timer(seconds, expire)

    def view_changed(self) -> None:
        """The rows on screen changed (a scroll, a sort, a filter)."""

    # -- filter and sort ---------------------------------------------------------------------

    def action_start_filter(self) -> None:
        box = self.filter_box
        box.add_class("-shown")
        # At once, not after the next refresh: keys typed right after "/" are queued.
        self.screen.set_focus(box)

    def action_clear_filter(self) -> None:
        box = self.filter_box
        if box.value:
            box.value = ""
        box.remove_class("-shown")
        self.table.focus()

    @on(Input.Changed)
    def apply_filter(self, event: Input.Changed) -> None:
        if event.input.id != f"{self.TAB}-filter":
            return
        table = self.table
        table.set_filter(event.value)
        table.empty_text = self.empty_text()
        self.filter_changed()
        self.view_changed()
        self.show_status()

    def filter_changed(self) -> None:
        """The filter text changed (the table already applied it)."""

    @on(Input.Submitted)
    def keep_filter(self, event: Input.Submitted) -> None:
        if event.input.id != f"{self.TAB}-filter":
            return
        if not event.value:
            event.input.remove_class("-shown")
        self.table.focus()

    def action_sort_step(self, step: int) -> None:
        # Only through the columns on screen: a sort by a column one cannot see (left out
        # at this width, or the tag marks' column) would look like nothing happened.
        table = self.table
        keys = [column.key for column in table.shown_columns if column.label] or [
            column.key for column in self.columns()
        ]
        current = keys.index(table.sort_column) if table.sort_column in keys else 0
        self.sort_by(keys[(current + step) % len(keys)])

    def sort_by(self, key: str) -> None:
        self.table.sort_by(key, reverse=key in self.DESCENDING)
        self.view_changed()
        self.show_status()

    def action_reverse_sort(self) -> None:
        table = self.table
        table.sort_by(table.sort_column, reverse=not table.sort_reverse)
        self.view_changed()
        self.show_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("start_filter", "clear_filter", "sort_step", "reverse_sort"):
            if not self.SORTABLE:
                return False
            if action == "start_filter":
                # In the filter, "/" is text.
                return not self.filter_box.has_focus
            if action == "clear_filter":
                return bool(self.table.filter_text) or self.filter_box.has_focus
        return True

    @on(KeyedTable.CursorMoved)
    def follow_cursor(self, event: KeyedTable.CursorMoved) -> None:
        if event.table is self.table:
            self.view_changed()
            self.refresh_bindings()

    def screen_commands(self) -> Iterable[SystemCommand]:
        """The palette's commands for this tab (titles and help are markup: no server
        text goes in them)."""
        if not self.SORTABLE:
            return
        title = self.TITLE
        for column in self.columns():
            if not column.label:
                continue
            yield SystemCommand(
                f"Sort {self.NOUN} by {column.label.lower()}",
                f"{title}: order rows by {column.label.lower()}",
                lambda key=column.key: self.sort_by(key),
            )
        yield SystemCommand(
            f"Filter {self.NOUN}", f"{title}: text in any column", self.action_start_filter
        )
