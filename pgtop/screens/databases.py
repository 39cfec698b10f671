"""The database switcher: which database the Tables, Vacuum and Indexes tabs read."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from pgtop.collectors.catalog import DatabaseEntry, DatabaseList
from pgtop.formats import size
from pgtop.panes.host import ReportsFailures, host_of
from pgtop.source import PollError
from pgtop.text import name_text, one_line
from pgtop.widgets.keyed_table import Column, KeyedTable, Row


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
        table = self.query_one(KeyedTable)
        try:
            entries = await host_of(self.app).fetch(DatabaseList())
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
