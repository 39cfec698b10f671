"""What the Tables, Vacuum and Indexes panes share: relations of one database, the age of
what is shown, a read of everything on demand, and the database they read.

A catalog pane tells its collector (``CatalogNeeds``) which database to read, which rows
are on screen (they are read on every refresh and sized exactly), and when to read the
whole list or exact sizes at once: F5, or the cursor resting on rows that show estimates.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.timer import Timer

from pgtop.formats import ESTIMATE_MARK, duration, size
from pgtop.model import ActivitySnapshot, RelationTarget
from pgtop.panes.actions import RELATION_ACTION_BINDINGS, RelationActions
from pgtop.panes.base import FILTER_BINDINGS, SORT_BINDINGS, ListPane
from pgtop.text import name_text, one_line
from pgtop.widgets.keyed_table import Row

if TYPE_CHECKING:
    from pgtop.collectors.catalog import CatalogNeeds

LOCKED_TEXT = "LOCKED"
"""In the flags of a relation locked (or queued for) ACCESS EXCLUSIVE."""
SIZES_DELAY = 1.0
"""Seconds the cursor rests before the rows on screen are sized exactly."""


class CatalogPane(RelationActions, ListPane):
    """One main table of relations of one database."""

    SIZES: ClassVar[bool] = False
    """The collector sizes the rows on screen exactly."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # Most needed first: a narrow footer cuts the last ones.
        *RELATION_ACTION_BINDINGS,
        *FILTER_BINDINGS,
        Binding("d", "switch_database", "Database", id="switch-database"),
        *SORT_BINDINGS,
        Binding("f5,ctrl+r", "refresh_data", "Refresh", id="refresh-pane"),
    ]

    def __init__(self, *, lazy: bool = False) -> None:
        super().__init__(lazy=lazy)
        self._data: Any = None
        self._now: datetime | None = None
        self._asked: set[Hashable] = set()
        self._sizes_timer: Timer | None = None
        self._cache: dict[Hashable, tuple[object, Row]] = {}
        self._parts: tuple[object, list[str]] = (None, [])
        """The data last described by ``data_parts``, and what they said."""
        self._list_asked = 0
        self._sizes_asked = 0
        self._on_screen: tuple[int, ...] = ()

    # -- data in -----------------------------------------------------------------------------

    def expected_database(self) -> str | None:
        """The database the next data should come from."""
        chosen = self.host.catalog_database
        if chosen is not None:
            return chosen
        caps = self.host.capabilities
        return caps.database if caps is not None else None

    def needs(self) -> CatalogNeeds:
        # The catalog tabs' code loads when one of them is first shown.
        from pgtop.collectors.catalog import CatalogNeeds

        return CatalogNeeds(
            database=self.host.catalog_database,
            on_screen=self._on_screen,
            refresh=self.host.interval,
            list_asked=self._list_asked,
            sizes_asked=self._sizes_asked,
        )

    def show_activity(self, snapshot: ActivitySnapshot | None) -> None:
        """An Activity poll: the age of the data on screen moves on."""
        if snapshot is not None:
            self._now = snapshot.collected_at
        expected = self.expected_database()
        if self._data is not None and expected is not None and self._data.database != expected:
            self._clear(f"reading database {name_text(expected, 60)}…")
        self.state_needs()
        self.show_status()

    def show_data(self, data: Any) -> None:
        """The collector's data: rows replaced by key, cursor kept."""
        expected = self.expected_database()
        database: str = data.database
        if expected is not None and database != expected:
            return  # read before a database switch
        previous = self._data
        if previous is None or previous.database != database:
            self._cache.clear()
        if previous is None or previous.collected_at != data.collected_at:
            # A full read: rows on screen may be asked for again. After a read of sizes
            # alone, rows that still show estimates (a lock came) wait for the next one.
            self._asked.clear()
        self._data = data
        self.failure = ""
        self.show_rows()
        self.after_rows(data)
        self.view_changed()

    def show_failure(self, reason: str) -> None:
        """The collector failed: the rows stay, the reason shows."""
        self.failure = reason
        if self._data is None:
            self.table.empty_text = "no data"
        self.show_status()

    def rows(self) -> Iterable[Row]:
        """The table rows of the data; rows of unchanged items are reused."""
        data = self._data
        if data is None:
            return []
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

    def item(self, key: Hashable | None) -> Any:
        """The relation shown in the row of ``key``."""
        cached = self._cache.get(key) if key is not None else None
        return cached[0] if cached is not None else None

    def empty_text(self) -> str:
        if self._data is None:
            return self.table.empty_text
        filter_text = self.table.filter_text
        if filter_text:
            return f"no {self.NOUN} match '{one_line(filter_text, 60)}'"
        return f"no {self.NOUN} in this database"

    def _clear(self, message: str) -> None:
        self._data = None
        self._cache.clear()
        table = self.table
        table.set_rows([])
        table.empty_text = message
        self.after_rows(None)

    # -- status ------------------------------------------------------------------------------

    def data_parts(self, data: Any) -> list[str]:
        """What this tab says about its data, after the row count."""
        return []

    def status_parts(self) -> list[str]:
        data = self._data
        if data is None:
            return [self.table.empty_text]
        parts = [self.count_text()]
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
        # The status line changes with every Activity refresh (the age of the data); what
        # the tab says of its rows, counted over all of them, only with new data.
        if self._parts[0] is not data:
            self._parts = (data, self.data_parts(data))
        parts.extend(self._parts[1])
        return parts

    # -- exact sizes for the rows on screen --------------------------------------------------

    def needs_size(self, key: Hashable) -> bool:
        """The row shows an estimate that an exact read could replace."""
        return False

    def keys_in_view(self) -> list[Hashable]:
        table = self.table
        top = table.scroll_offset.y
        height = max(1, table.size.height - 1)
        return [row.key for row in table.visible_rows[top : top + height]]

    def view_changed(self) -> None:
        """Tell the collector which rows are on screen (read on every refresh); ask for
        their sizes once the cursor rests, if they show estimates."""
        if self._data is None:
            return
        keys = self.keys_in_view()
        on_screen = tuple(key for key in keys if isinstance(key, int))
        if on_screen != self._on_screen:
            self._on_screen = on_screen
            self.state_needs()
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
        if self._data is None:
            return
        keys = self.keys_in_view()
        self._on_screen = tuple(key for key in keys if isinstance(key, int))
        self._asked.update(keys)
        self._sizes_asked += 1
        self.state_needs(now=True)

    # -- selection ---------------------------------------------------------------------------

    def selected_target(self) -> RelationTarget | None:
        """The table or index under the cursor, for maintenance actions."""
        return None

    # -- actions -----------------------------------------------------------------------------

    def action_refresh_data(self) -> None:
        self._list_asked += 1
        self.state_needs(now=True)
        self.host.say(f"refreshing {self.TAB}", timeout=2)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "maintain":
            return self.check_maintain(str(parameters[0]))
        if action == "switch_database":
            return self.host.other_databases()
        return super().check_action(action, parameters)

    def action_switch_database(self) -> None:
        if self.host.other_databases():
            self.host.open_database_switcher()

    def database_chosen(self, database: str) -> None:
        """The catalog tabs read ``database`` from now on: what shows is no longer it."""
        self._clear(f"reading database {name_text(database, 60)}…")
        self.show_status()

    def screen_commands(self) -> Iterable[SystemCommand]:
        title = self.TITLE
        yield from self.relation_commands(title)
        yield from super().screen_commands()
        yield SystemCommand(
            f"Refresh {self.TAB}",
            f"{title}: read the whole list again now",
            self.action_refresh_data,
        )
        yield SystemCommand(
            "Switch database",
            "Tables, Vacuum, Indexes: read another database",
            self.action_switch_database,
        )
