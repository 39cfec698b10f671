"""The Activity tab: one row per backend, sorted, filtered, cursor kept by pid."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, cast

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import Input, TabPane

from pgtop.model import ActivitySnapshot, Backend
from pgtop.screens.pane_actions import SESSION_ACTION_BINDINGS, SessionActions
from pgtop.text import duration, name_text, one_line
from pgtop.widgets.keyed_table import Column, KeyedTable, Row
from pgtop.widgets.status_bar import StatusLine

if TYPE_CHECKING:
    from pgtop.app import PgTopApp

HIDDEN_TEXT = "‹hidden: this role needs pg_read_all_stats to see other roles' queries›"

COLUMNS = (
    Column("pid", "PID", width=7, align="right"),
    Column("database", "DATABASE", width=12, hide_below=140),
    Column("user", "USER", width=10, hide_below=90),
    Column("application", "APPLICATION", width=12, hide_below=100),
    Column("client", "CLIENT", width=15, hide_below=160),
    Column("type", "TYPE", width=14),
    Column("state", "STATE", width=10),
    Column("wait", "WAIT", width=18, hide_below=96),
    Column("xact_age", "TX AGE", width=8, align="right"),
    Column("query_age", "RUNTIME", width=9, align="right"),
    Column("blocked_by", "BLOCKED BY", width=10),
    Column("query", "QUERY", min_width=20),
)
COLUMN_KEYS = tuple(column.key for column in COLUMNS)
DEFAULT_SORT = "xact_age"
"""Long transactions hold locks and the xmin horizon: they are where incidents start."""

_STATE_LABELS = {
    "idle in transaction": "idle in tx",
    "idle in transaction (aborted)": "aborted tx",
    "fastpath function call": "fastpath",
}
_BUSY_STATES = {"active", "fastpath function call"}


def state_label(backend: Backend) -> str:
    if backend.query_hidden and backend.state is None:
        return "hidden"
    if backend.state is None:
        return ""
    return _STATE_LABELS.get(backend.state, backend.state)


def backend_row(backend: Backend, now: datetime, blocking: int) -> tuple[Row, bool]:
    """The table row of one backend, and whether it changes with time alone.

    Args:
        backend: the backend.
        now: the server clock at the poll; ages are measured from it.
        blocking: how many backends this one blocks directly.
    """
    xact_age = (now - backend.xact_start).total_seconds() if backend.xact_start else None
    busy = backend.state in _BUSY_STATES
    query_age = (
        (now - backend.query_start).total_seconds() if busy and backend.query_start else None
    )
    if backend.blocked_by:
        locks = ",".join(map(str, backend.blocked_by))
    elif blocking:
        locks = f"▲ blocks {blocking}"
    else:
        locks = ""
    wait = ":".join(filter(None, (backend.wait_event_type, backend.wait_event)))
    query = HIDDEN_TEXT if backend.query_hidden else one_line(backend.query)
    client = backend.client_addr or backend.client_hostname or ""
    if not client and backend.is_client:
        client = "local"
    state = state_label(backend)
    cells = (
        str(backend.pid),
        name_text(backend.database, 64),
        name_text(backend.user, 64),
        name_text(backend.application_name, 64),
        name_text(client, 64),
        name_text(backend.backend_type, 64),
        state,
        wait,
        duration(xact_age),
        duration(query_age),
        locks,
        query,
    )
    sort_values = (
        backend.pid,
        backend.database or "",
        backend.user or "",
        backend.application_name,
        client,
        backend.backend_type,
        state,
        wait,
        xact_age,
        query_age,
        (len(backend.blocked_by), blocking) if backend.blocked_by or blocking else None,
        query,
    )
    if blocking:
        tone = "error"
    elif backend.blocked_by:
        tone = "warning"
    elif backend.state in ("idle in transaction", "idle in transaction (aborted)"):
        tone = "warning" if xact_age is not None and xact_age > 10 else ""
    elif backend.state == "idle" or not backend.is_client:
        tone = "muted"
    else:
        tone = ""
    search = f"{' '.join(cells[:-1])} {backend.query}"
    row = Row(key=backend.pid, cells=cells, sort_values=sort_values, tone=tone, search=search)
    return row, xact_age is not None or query_age is not None


class ActivityPane(SessionActions, TabPane):
    """Every backend but pgtop's own, one per row."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # A priority binding runs while the key is dispatched, before the keys typed
        # after it: they go to the filter however fast they come.
        Binding("slash", "start_filter", "Filter", id="filter", priority=True),
        Binding("i", "toggle_idle", "Idle", id="toggle-idle"),
        Binding("b", "toggle_background", "Background", id="toggle-background"),
        Binding("greater_than_sign", "sort_step(1)", "Sort →", id="sort-next"),
        Binding("less_than_sign", "sort_step(-1)", "Sort ←", id="sort-previous", show=False),
        Binding("r", "reverse_sort", "Reverse", id="sort-reverse", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear-filter"),
        *SESSION_ACTION_BINDINGS,
    ]

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(title, id=id)
        self.show_idle = False
        self.show_background = False
        self._snapshot: ActivitySnapshot | None = None
        self._cache: dict[int, tuple[Backend, int, Row]] = {}

    @property
    def pgtop(self) -> PgTopApp:
        return cast("PgTopApp", self.app)

    def compose(self) -> ComposeResult:
        yield StatusLine(id="activity-status")
        table = KeyedTable(COLUMNS, id="activity-table")
        table.set_hidden_columns({"type"})
        table.sort_by(DEFAULT_SORT, reverse=True)
        table.empty_text = "waiting for the first refresh…"
        yield table
        yield Input(
            placeholder="filter: text in any column (Enter keeps it, Escape clears)",
            id="activity-filter",
            classes="filter",
        )

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#activity-table", KeyedTable)

    def show(self, snapshot: ActivitySnapshot | None) -> None:
        """Apply a snapshot; unchanged rows are reused, not rebuilt."""
        self._snapshot = snapshot
        if snapshot is None:
            return
        now = snapshot.collected_at
        blocking: dict[int, int] = {}
        for backend in snapshot.backends:
            for pid in backend.blocked_by:
                blocking[pid] = blocking.get(pid, 0) + 1
        cache = self._cache
        fresh: dict[int, tuple[Backend, int, Row]] = {}
        rows: list[Row] = []
        hidden_idle = hidden_background = 0
        for backend in snapshot.backends:
            if not backend.is_client and not self.show_background:
                hidden_background += 1
                continue
            if backend.state == "idle" and not self.show_idle:
                hidden_idle += 1
                continue
            blocks = blocking.get(backend.pid, 0)
            cached = cache.get(backend.pid)
            # The collector keeps the same Backend object for an unchanged row.
            if cached is not None and cached[0] is backend and cached[1] == blocks:
                row = cached[2]
                fresh[backend.pid] = cached
            else:
                row, ages = backend_row(backend, now, blocks)
                if not ages:
                    fresh[backend.pid] = (backend, blocks, row)
            rows.append(row)
        self._cache = fresh
        table = self.table
        table.set_rows(rows)
        filter_text = table.filter_text
        if filter_text:
            table.empty_text = f"no session matches '{one_line(filter_text, 60)}'"
        else:
            table.empty_text = "no sessions to show"
        self._show_status(len(rows), hidden_idle, hidden_background)

    def _show_status(self, shown: int, hidden_idle: int, hidden_background: int) -> None:
        table = self.table
        parts = [f"{len(table.visible_rows)} of {shown} sessions"]
        if table.filter_text:
            parts[0] += f" matching '{one_line(table.filter_text, 40)}'"
        parts.append("idle shown (i)" if self.show_idle else f"{hidden_idle} idle hidden (i)")
        parts.append(
            "background shown (b)"
            if self.show_background
            else f"{hidden_background} background hidden (b)"
        )
        if table.sort_column:
            label = next(c.label for c in COLUMNS if c.key == table.sort_column)
            parts.append(f"sort {label.lower()} {'▼' if table.sort_reverse else '▲'} (< > r)")
        self.query_one("#activity-status", StatusLine).set_text(" · ".join(parts))

    def _reshow(self) -> None:
        self._cache.clear()
        self.show(self._snapshot)

    # -- actions -----------------------------------------------------------------------------

    def action_toggle_idle(self) -> None:
        self.show_idle = not self.show_idle
        self._reshow()

    def action_toggle_background(self) -> None:
        self.show_background = not self.show_background
        # The type column only tells rows apart when background processes are listed.
        self.table.set_hidden_columns(set() if self.show_background else {"type"})
        self._reshow()

    def action_sort_step(self, step: int) -> None:
        table = self.table
        current = COLUMN_KEYS.index(table.sort_column) if table.sort_column else 0
        key = COLUMN_KEYS[(current + step) % len(COLUMN_KEYS)]
        self.sort_by(key)

    def sort_by(self, key: str) -> None:
        # Ages, pids and lock counts read best largest first; names alphabetically.
        descending = key in ("xact_age", "query_age", "blocked_by")
        self.table.sort_by(key, reverse=descending)
        self.show(self._snapshot)

    def action_reverse_sort(self) -> None:
        table = self.table
        table.sort_by(table.sort_column, reverse=not table.sort_reverse)
        self.show(self._snapshot)

    def action_start_filter(self) -> None:
        box = self.query_one("#activity-filter", Input)
        box.add_class("-shown")
        # At once, not after the next refresh: keys typed right after "/" (a paste, a
        # laggy link) are already queued and belong to the filter.
        self.screen.set_focus(box)

    def action_clear_filter(self) -> None:
        box = self.query_one("#activity-filter", Input)
        if box.value:
            box.value = ""
        box.remove_class("-shown")
        self.table.focus()

    def selected_backend(self) -> Backend | None:
        """The backend under the cursor, from the latest snapshot."""
        key = self.table.cursor_key
        if key is None or self._snapshot is None:
            return None
        return next((b for b in self._snapshot.backends if b.pid == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "signal":
            return self.check_signal()
        if action == "start_filter":
            # In the filter, "/" is text.
            return not self.query_one("#activity-filter").has_focus
        if action == "clear_filter":
            return bool(self.table.filter_text) or self.query_one("#activity-filter").has_focus
        return True

    @on(Input.Changed, "#activity-filter")
    def apply_filter(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)
        self.show(self._snapshot)

    @on(Input.Submitted, "#activity-filter")
    def keep_filter(self, event: Input.Submitted) -> None:
        if not event.value:
            event.input.remove_class("-shown")
        self.table.focus()

    @on(KeyedTable.CursorMoved, "#activity-table")
    def update_action_keys(self) -> None:
        self.refresh_bindings()

    @on(KeyedTable.RowActivated, "#activity-table")
    def open_backend(self, event: KeyedTable.RowActivated) -> None:
        snapshot = self._snapshot
        if snapshot is None:
            return
        backend = next((b for b in snapshot.backends if b.pid == event.key), None)
        if backend is not None:
            from pgtop.screens.backend import BackendScreen

            self.app.push_screen(BackendScreen(backend))

    def screen_commands(self) -> Iterable[SystemCommand]:
        for column in COLUMNS:
            yield SystemCommand(
                f"Sort sessions by {column.label.lower()}",
                f"Activity: order rows by {column.label.lower()}",
                lambda key=column.key: self.sort_by(key),
            )
        yield SystemCommand("Show or hide idle sessions", "Activity", self.action_toggle_idle)
        yield SystemCommand(
            "Show or hide background processes", "Activity", self.action_toggle_background
        )
        yield SystemCommand(
            "Filter sessions", "Activity: text in any column", self.action_start_filter
        )
        yield from self.session_commands("Activity")
