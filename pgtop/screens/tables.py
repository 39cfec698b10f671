"""The Tables tab, and what the three catalog tabs share: the pane and the database switcher.

A catalog pane shows its collector's data (``show_data``) and keeps two things current on
the shared ``CatalogTarget``: the refresh cadence, and which rows are on screen, so the
next collection sizes exactly those. When rows on screen show estimates (after a scroll,
a sort or a filter), it asks for their exact sizes alone, once the cursor has rested.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, Static, TabPane

from pgtop.actions import RelationTarget
from pgtop.catalog import (
    TABS,
    CatalogTarget,
    DatabaseEntry,
    RelationRef,
    TableInfo,
    TablesData,
    catalog_target,
    list_databases,
    table_ref,
)
from pgtop.model import ActivitySnapshot
from pgtop.screens.failures import ReportsFailures
from pgtop.screens.pane_actions import RELATION_ACTION_BINDINGS, RelationActions
from pgtop.text import duration, name_text, one_line, size
from pgtop.widgets.keyed_table import Column, KeyedTable, Row

if TYPE_CHECKING:
    from pgtop.app import PgTopApp

ESTIMATE_MARK = "~"
"""Before a size that is a relpages estimate, not the files' size."""
LOCKED_TEXT = "LOCKED"
"""In the flags of a relation locked (or queued for) ACCESS EXCLUSIVE."""
SIZES_DELAY = 1.0
"""Seconds the cursor rests before the rows on screen are sized exactly."""


@functools.lru_cache(maxsize=4096)
def count(value: float | None) -> str:
    """A count in few characters: ``"950"``, ``"12.3k"``, ``"4.5M"``, ``"2.1G"``.

    >>> count(950), count(12_345), count(4_500_000), count(None)
    ('950', '12.3k', '4.5M', '')
    """
    if value is None:
        return ""
    magnitude = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def rate(value: float | None) -> str:
    """A per-second rate: ``""`` unknown, ``"0"``, ``"0.3"``, ``"12"``, ``"4.5k"``."""
    if value is None:
        return ""
    if value == 0:
        return "0"
    if value < 10:
        return f"{value:.1f}"
    return count(value)


def percent(share: float | None) -> str:
    """A share as a percentage: ``"12%"``, ``"0.4%"``.

    >>> percent(0.1234), percent(0.004), percent(None)
    ('12%', '0.4%', '')
    """
    if share is None:
        return ""
    value = share * 100
    return f"{value:.1f}%" if value < 10 else f"{value:.0f}%"


@functools.lru_cache(maxsize=4096)
def sized(num_bytes: int, estimate: bool) -> str:
    return f"{ESTIMATE_MARK}{size(num_bytes)}" if estimate else size(num_bytes)


class CatalogPane(RelationActions, TabPane):
    """What the Tables, Vacuum and Indexes panes share: one main table of relations,
    filter, sort keys, refresh on demand, the database switcher, and the status line."""

    TAB: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[Column, ...]] = ()
    DEFAULT_SORT: ClassVar[str] = ""
    DESCENDING: ClassVar[frozenset[str]] = frozenset()
    """Columns that read best largest first."""
    NOUN: ClassVar[str] = "relations"
    SIZES: ClassVar[bool] = False
    """The collector sizes the rows on screen exactly."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # A priority binding runs while the key is dispatched, before the keys typed
        # after it: they go to the filter however fast they come.
        Binding("slash", "start_filter", "Filter", id="filter", priority=True),
        Binding("greater_than_sign", "sort_step(1)", "Sort →", id="sort-next"),
        Binding("less_than_sign", "sort_step(-1)", "Sort ←", id="sort-previous", show=False),
        Binding("r", "reverse_sort", "Reverse", id="sort-reverse", show=False),
        Binding("f5,ctrl+r", "refresh_data", "Refresh", id="refresh-pane"),
        Binding("d", "switch_database", "Database", id="switch-database"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear-filter"),
        *RELATION_ACTION_BINDINGS,
    ]

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(title, id=id)
        self._data: Any = None
        self._failure = ""
        self._now: datetime | None = None
        self._asked: set[Hashable] = set()
        self._sizes_timer: Timer | None = None
        self._cache: dict[Hashable, tuple[object, Row]] = {}
        self._parts: tuple[object, list[str]] = (None, [])
        """The data last described by ``status_parts``, and what they said."""

    @property
    def pgtop(self) -> PgTopApp:
        return cast("PgTopApp", self.app)

    @property
    def target(self) -> CatalogTarget | None:
        """The shared state of the catalog collectors (None with other collectors)."""
        return catalog_target(self.pgtop.pane_factories.get(self.TAB))

    def compose(self) -> ComposeResult:
        yield Static(
            "waiting for the first refresh…", id=f"{self.TAB}-status", classes="pane-status"
        )
        table = KeyedTable(self.COLUMNS, id=f"{self.TAB}-table")
        table.sort_by(self.DEFAULT_SORT, reverse=self.DEFAULT_SORT in self.DESCENDING)
        table.empty_text = "waiting for the first refresh…"
        yield table
        yield from self.compose_more()
        yield Input(
            placeholder="filter: text in any column (Enter keeps it, Escape clears)",
            id=f"{self.TAB}-filter",
            classes="filter",
        )

    def compose_more(self) -> ComposeResult:
        """Widgets below the main table."""
        yield from ()

    @property
    def table(self) -> KeyedTable:
        return self.query_one(f"#{self.TAB}-table", KeyedTable)

    async def on_unmount(self) -> None:
        target = self.target
        if target is not None:
            await target.close()

    # -- data in -----------------------------------------------------------------------------

    def expected_database(self) -> str | None:
        target = self.target
        if target is None:
            return None
        return target.expected_database(self.pgtop.source.capabilities)

    def show(self, snapshot: ActivitySnapshot | None) -> None:
        """An Activity poll: the age of the data on screen moves on."""
        target = self.target
        if target is not None:
            target.refresh = self.pgtop.interval
        if snapshot is not None:
            self._now = snapshot.collected_at
        expected = self.expected_database()
        if self._data is not None and expected is not None and self._data.database != expected:
            self._clear(f"reading database {name_text(expected, 60)}…")
        self._show_status()

    def show_data(self, data: object) -> None:
        """The collector's data: rows replaced by key, cursor kept."""
        if not self.accepts(data):
            return
        expected = self.expected_database()
        database: str = getattr(data, "database", "")
        if expected is not None and database != expected:
            return  # read before a database switch
        previous = self._data
        fresh_database = previous is None or previous.database != database
        self._data = data
        self._failure = ""
        if fresh_database:
            self._cache.clear()
        if previous is None or previous.collected_at != getattr(data, "collected_at", None):
            # A full read: rows on screen may be asked for again. After a read of sizes
            # alone, rows that still show estimates (a lock came) wait for the next one.
            self._asked.clear()
        table = self.table
        table.set_rows(self.rows(data))
        if table.filter_text:
            table.empty_text = f"no {self.NOUN} match '{one_line(table.filter_text, 60)}'"
        else:
            table.empty_text = f"no {self.NOUN} in this database"
        self.after_rows(data)
        self._note_view()
        self._show_status()

    def show_failure(self, reason: str) -> None:
        """The collector failed: the rows stay, the reason shows."""
        self._failure = reason
        if self._data is None:
            self.table.empty_text = "no data"
        self._show_status()

    def accepts(self, data: object) -> bool:
        raise NotImplementedError

    def rows(self, data: Any) -> list[Row]:
        """The table rows of ``data``; rows of unchanged items are reused."""
        cache = self._cache
        fresh: dict[Hashable, tuple[object, Row]] = {}
        rows = []
        for key, item in self.items(data):
            cached = cache.get(key)
            # The collector hands back the same object for an unchanged relation.
            reuse = cached is not None and (cached[0] is item or cached[0] == item)
            row = cached[1] if cached is not None and reuse else self.row(item, data)
            fresh[key] = (item, row)
            rows.append(row)
        self._cache = fresh
        return rows

    def items(self, data: Any) -> Iterable[tuple[Hashable, object]]:
        raise NotImplementedError

    def row(self, item: Any, data: Any) -> Row:
        raise NotImplementedError

    def after_rows(self, data: Any) -> None:
        """Update the widgets below the main table."""

    def _clear(self, message: str) -> None:
        self._data = None
        self._cache.clear()
        table = self.table
        table.set_rows([])
        table.empty_text = message
        self.after_rows(None)

    # -- status ------------------------------------------------------------------------------

    def status_parts(self, data: Any) -> list[str]:
        """What this tab says about its data, after the row count."""
        return []

    def _show_status(self) -> None:
        data = self._data
        table = self.table
        if data is None:
            parts = [table.empty_text]
        else:
            shown = len(table.visible_rows)
            total = len(table.rows)
            head = f"{shown} of {total} {self.NOUN}"
            if table.filter_text:
                head += f" matching '{one_line(table.filter_text, 40)}'"
            parts = [head]
            header = data.header
            parts.append(
                f"database {name_text(header.database, 40)} "
                f"{ESTIMATE_MARK}{size(header.database_bytes)}"
            )
            age = 0.0
            if self._now is not None:
                age = max(0.0, (self._now - data.collected_at).total_seconds())
            fresh = f"data {duration(age)} old"
            listed = header.listed_at
            if listed is not None and self._now is not None:
                # Rows off screen are as the last read of the whole list found them.
                listed_age = max(0.0, (self._now - listed).total_seconds())
                fresh += f", list {duration(listed_age)} old"
            parts.append(f"{fresh} (F5)")
            # The status line changes with every Activity refresh (the age of the data);
            # what the tab says of its rows, counted over all of them, only with new data.
            if self._parts[0] is not data:
                self._parts = (data, self.status_parts(data))
            parts.extend(self._parts[1])
            if table.sort_column:
                label = next(c.label for c in self.COLUMNS if c.key == table.sort_column)
                arrow = "▼" if table.sort_reverse else "▲"
                parts.append(f"sort {label.lower()} {arrow} (< > r)")
        if self._failure:
            parts.append(f"refresh failed: {one_line(self._failure, 160)}")
        self.query_one(f"#{self.TAB}-status", Static).update(Text(" · ".join(parts)))

    # -- exact sizes for the rows on screen --------------------------------------------------

    def needs_size(self, key: Hashable) -> bool:
        """The row shows an estimate that an exact read could replace."""
        return False

    def keys_in_view(self) -> list[Hashable]:
        table = self.table
        top = table.scroll_offset.y
        height = max(1, table.size.height - 1)
        return [row.key for row in table.visible_rows[top : top + height]]

    def _note_view(self) -> None:
        """Tell the collector which rows are on screen (read on every refresh); ask for
        their sizes if needed."""
        target = self.target
        if target is None or self._data is None:
            return
        keys = self.keys_in_view()
        target.focus[self.TAB] = tuple(key for key in keys if isinstance(key, int))
        if not self.SIZES:
            return
        missing = [key for key in keys if key not in self._asked and self.needs_size(key)]
        if not missing:
            return
        if self._sizes_timer is not None:
            self._sizes_timer.stop()
        self._sizes_timer = self.set_timer(SIZES_DELAY, self._request_sizes)

    def _request_sizes(self) -> None:
        self._sizes_timer = None
        target = self.target
        if target is None or self._data is None:
            return
        keys = self.keys_in_view()
        target.focus[self.TAB] = tuple(key for key in keys if isinstance(key, int))
        self._asked.update(keys)
        target.request(self.TAB, "sizes")
        self.pgtop.refresh_pane(self.TAB)

    @on(KeyedTable.CursorMoved)
    def follow_view(self, event: KeyedTable.CursorMoved) -> None:
        if event.table is self.table:
            self._note_view()
            self.refresh_bindings()

    # -- selection ---------------------------------------------------------------------------

    def selected_relation(self) -> RelationRef | None:
        """The table or index under the cursor, for maintenance actions."""
        return None

    def selected_target(self) -> RelationTarget | None:
        ref = self.selected_relation()
        if ref is None:
            return None
        table = f"{ref.table_schema}.{ref.table_name}" if ref.table_name else None
        return RelationTarget(
            oid=ref.oid,
            schema=ref.schema,
            name=ref.name,
            kind="index" if ref.kind == "index" else "table",
            size_bytes=ref.size_bytes,
            table_oid=ref.table_oid,
            table_name=table,
            database=ref.database,
        )

    # -- actions -----------------------------------------------------------------------------

    def action_refresh_data(self) -> None:
        target = self.target
        if target is not None:
            target.request(self.TAB, "list")
        self.pgtop.refresh_pane(self.TAB)
        self.pgtop.say(f"refreshing {self.TAB}", timeout=2)

    def action_sort_step(self, step: int) -> None:
        keys = [column.key for column in self.COLUMNS]
        table = self.table
        current = keys.index(table.sort_column) if table.sort_column in keys else 0
        self.sort_by(keys[(current + step) % len(keys)])

    def sort_by(self, key: str) -> None:
        self.table.sort_by(key, reverse=key in self.DESCENDING)
        self._note_view()
        self._show_status()

    def action_reverse_sort(self) -> None:
        table = self.table
        table.sort_by(table.sort_column, reverse=not table.sort_reverse)
        self._note_view()
        self._show_status()

    def action_start_filter(self) -> None:
        box = self.query_one(f"#{self.TAB}-filter", Input)
        box.add_class("-shown")
        # At once, not after the next refresh: keys typed right after "/" (a paste, a
        # laggy link) are already queued and belong to the filter.
        self.screen.set_focus(box)

    def action_clear_filter(self) -> None:
        box = self.query_one(f"#{self.TAB}-filter", Input)
        if box.value:
            box.value = ""
        box.remove_class("-shown")
        self.table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "maintain":
            return self.check_maintain(str(parameters[0]))
        if action == "start_filter":
            # In the filter, "/" is text.
            return not self.query_one(f"#{self.TAB}-filter").has_focus
        if action == "clear_filter":
            return bool(self.table.filter_text) or self.query_one(f"#{self.TAB}-filter").has_focus
        if action == "switch_database":
            return self.target is not None
        return True

    @on(Input.Changed)
    def apply_filter(self, event: Input.Changed) -> None:
        if event.input.id != f"{self.TAB}-filter":
            return
        table = self.table
        table.set_filter(event.value)
        if self._data is not None:
            table.empty_text = (
                f"no {self.NOUN} match '{one_line(event.value, 60)}'"
                if event.value
                else f"no {self.NOUN} in this database"
            )
        self._note_view()
        self._show_status()

    @on(Input.Submitted)
    def keep_filter(self, event: Input.Submitted) -> None:
        if event.input.id != f"{self.TAB}-filter":
            return
        if not event.value:
            event.input.remove_class("-shown")
        self.table.focus()

    def action_switch_database(self) -> None:
        target = self.target
        caps = self.pgtop.source.capabilities
        if target is None or caps is None:
            return
        chosen = target.expected_database(caps) or caps.database
        self.app.push_screen(DatabaseSwitcher(chosen, caps.database), self._switch_to)

    def _switch_to(self, database: str | None) -> None:
        target = self.target
        caps = self.pgtop.source.capabilities
        if database is None or target is None or caps is None:
            return
        if database == target.expected_database(caps):
            return
        settings = self.pgtop.settings
        target.choose(
            None if database == caps.database else database,
            settings.conninfo,
            settings.password,
        )
        self._clear(f"reading database {name_text(database, 60)}…")
        self._show_status()
        for tab in TABS:
            self.pgtop.refresh_pane(tab)

    def screen_commands(self) -> Iterable[SystemCommand]:
        title = self.TAB.capitalize()
        yield from self.relation_commands(title)
        for column in self.COLUMNS:
            yield SystemCommand(
                f"Sort {self.TAB} by {column.label.lower()}",
                f"{title}: order rows by {column.label.lower()}",
                lambda key=column.key: self.sort_by(key),
            )
        yield SystemCommand(
            f"Filter {self.TAB}", f"{title}: text in any column", self.action_start_filter
        )
        yield SystemCommand(
            f"Refresh {self.TAB}",
            f"{title}: read the whole list again now",
            self.action_refresh_data,
        )
        if self.target is not None:
            yield SystemCommand(
                "Switch database",
                "Tables, Vacuum, Indexes: read another database",
                self.action_switch_database,
            )


class DatabaseSwitcher(ReportsFailures, ModalScreen[str | None]):
    """The databases of the server with their sizes; Enter reads the one under the cursor.

    Sizes come from pg_database_size(), which reads the size of every file: only when this
    screen opens.
    """

    DEFAULT_CSS = """
    DatabaseSwitcher {
        align: center middle;
    }
    DatabaseSwitcher > Vertical {
        width: 72;
        max-width: 100%;
        height: 20;
        max-height: 100%;
        border: tall $accent;
        background: $surface;
    }
    DatabaseSwitcher KeyedTable {
        height: 1fr;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_switcher", "Back", id="switcher-back"),
    ]

    COLUMNS = (
        Column("name", "DATABASE", min_width=16),
        Column("size", "SIZE", width=10, align="right"),
        Column("note", "", width=26),
    )

    def __init__(self, chosen: str, monitoring: str) -> None:
        super().__init__()
        self.chosen = chosen
        self.monitoring = monitoring

    @property
    def pgtop(self) -> PgTopApp:
        return cast("PgTopApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                "Read the Tables, Vacuum and Indexes tabs from database:",
                classes="pane-status",
            )
            table = KeyedTable(self.COLUMNS, sortable=False, id="databases-table")
            table.empty_text = "reading the databases and their sizes…"
            yield table
            yield Static("Enter: switch · Escape: back", classes="pane-status")

    def on_mount(self) -> None:
        self.query_one(KeyedTable).focus()
        self.load_databases()

    @work(group="databases", exit_on_error=False, description="list the databases")
    async def load_databases(self) -> None:
        from pgtop.source import PollError

        table = self.query_one(KeyedTable)
        try:
            entries = await self.pgtop.source.run(list_databases)
        except PollError as exc:
            table.empty_text = f"cannot list the databases: {one_line(str(exc), 120)}"
            return
        table.set_rows([self._row(entry) for entry in entries])
        table.move_cursor_to_key(self.chosen)

    def _row(self, entry: DatabaseEntry) -> Row:
        notes = []
        if entry.name == self.chosen:
            notes.append("shown")
        if entry.current:
            notes.append("pgtop's connection")
        if not entry.can_connect:
            notes.append("no CONNECT")
        return Row(
            key=entry.name,
            cells=(name_text(entry.name, 64), size(entry.bytes), ", ".join(notes)),
            sort_values=(),
            tone="muted" if not entry.can_connect else "",
        )

    @on(KeyedTable.RowActivated, "#databases-table")
    def choose(self, event: KeyedTable.RowActivated) -> None:
        key = event.key
        self.dismiss(key if isinstance(key, str) else None)

    def action_dismiss_switcher(self) -> None:
        self.dismiss(None)


# -- the Tables tab --------------------------------------------------------------------------

TABLE_COLUMNS = (
    Column("schema", "SCHEMA", width=10, hide_below=110),
    Column("name", "TABLE", min_width=16),
    Column("total", "TOTAL", width=10, align="right"),
    Column("heap", "HEAP", width=10, align="right", hide_below=90),
    Column("indexes", "INDEXES", width=10, align="right", hide_below=100),
    Column("toast", "TOAST", width=10, align="right", hide_below=120),
    Column("rows", "ROWS", width=7, align="right", hide_below=80),
    Column("share", "SHARE", width=5, align="right", hide_below=130),
    Column("seq_scan", "SEQ SCAN", width=8, align="right", hide_below=140),
    Column("idx_scan", "IDX SCAN", width=8, align="right", hide_below=140),
    Column("ins", "INS/S", width=6, align="right", hide_below=150),
    Column("upd", "UPD/S", width=6, align="right", hide_below=150),
    Column("del", "DEL/S", width=6, align="right", hide_below=150),
    Column("flags", "", width=6),
)


def table_row(table: TableInfo, database_bytes: int) -> Row:
    """The row of one table."""
    estimate = table.size_is_estimate
    share = table.total_bytes / database_bytes if database_bytes else None
    cells = (
        name_text(table.schema, 64),
        name_text(table.name),
        sized(table.total_bytes, estimate),
        sized(table.table_bytes, estimate),
        sized(table.index_bytes, estimate),
        sized(table.toast_bytes, estimate),
        count(table.est_rows),
        percent(share),
        count(table.seq_scan),
        count(table.idx_scan),
        rate(table.ins_per_s),
        rate(table.upd_per_s),
        rate(table.del_per_s),
        LOCKED_TEXT if table.locked else "",
    )
    sort_values = (
        table.schema,
        table.name,
        table.total_bytes,
        table.table_bytes,
        table.index_bytes,
        table.toast_bytes,
        table.est_rows,
        share,
        table.seq_scan,
        table.idx_scan,
        table.ins_per_s,
        table.upd_per_s,
        table.del_per_s,
        table.locked or None,
    )
    search = f"{table.schema}.{table.name}"
    return Row(
        key=table.oid,
        cells=cells,
        sort_values=sort_values,
        tone="error" if table.locked else "",
        search=search,
    )


class TablesPane(CatalogPane):
    """Every table of the database, largest first."""

    TAB = "tables"
    COLUMNS = TABLE_COLUMNS
    DEFAULT_SORT = "total"
    DESCENDING = frozenset(
        {"total", "heap", "indexes", "toast", "rows", "share", "seq_scan", "idx_scan",
         "ins", "upd", "del", "flags"}
    )  # fmt: skip
    NOUN = "tables"
    SIZES = True

    def accepts(self, data: object) -> bool:
        return isinstance(data, TablesData)

    def items(self, data: TablesData) -> Iterable[tuple[Hashable, object]]:
        return ((table.oid, table) for table in data.tables)

    def row(self, item: TableInfo, data: TablesData) -> Row:
        return table_row(item, data.header.database_bytes)

    def _info(self, key: Hashable) -> TableInfo | None:
        cached = self._cache.get(key)
        return cast(TableInfo, cached[0]) if cached is not None else None

    def needs_size(self, key: Hashable) -> bool:
        table = self._info(key)
        return table is not None and table.size_is_estimate and not table.locked

    def status_parts(self, data: TablesData) -> list[str]:
        parts = [f"{ESTIMATE_MARK} estimate (exact for rows on screen)"]
        locked = sum(1 for table in data.tables if table.locked)
        if locked:
            parts.append(f"{locked} locked ACCESS EXCLUSIVE")
        if data.sizes_problem:
            parts.append(one_line(data.sizes_problem, 100))
        return parts

    def selected_relation(self) -> RelationRef | None:
        data = self._data
        key = self.table.cursor_key
        table = self._info(key) if key is not None else None
        if data is None or table is None:
            return None
        return table_ref(data.database, table)
