"""The Activity tab: one row per backend, sorted, filtered, cursor kept by pid."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import ClassVar

from textual import on
from textual.app import SystemCommand
from textual.binding import Binding, BindingType

from pgtop.formats import duration
from pgtop.model import ActivitySnapshot, Backend
from pgtop.panes.actions import SESSION_ACTION_BINDINGS, SessionActions
from pgtop.panes.base import FILTER_BINDINGS, SORT_BINDINGS, ListPane
from pgtop.text import name_text, one_line
from pgtop.widgets.keyed_table import Column, KeyedTable, Row

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


class ActivityPane(SessionActions, ListPane):
    """Every backend but pgtop's own, one per row."""

    TAB = "activity"
    TITLE = "Activity"
    KEY = "1"
    COLUMNS = COLUMNS
    DEFAULT_SORT = DEFAULT_SORT
    DESCENDING = frozenset({"xact_age", "query_age", "blocked_by"})
    """Ages and lock counts read best largest first; names alphabetically."""
    NOUN = "sessions"

    BINDINGS: ClassVar[list[BindingType]] = [
        *FILTER_BINDINGS,
        Binding("i", "toggle_idle", "Idle", id="toggle-idle"),
        Binding("b", "toggle_background", "Background", id="toggle-background"),
        *SORT_BINDINGS,
        *SESSION_ACTION_BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_idle = False
        self.show_background = False
        self._snapshot: ActivitySnapshot | None = None
        self._cache: dict[int, tuple[Backend, int, Row]] = {}
        self._hidden = (0, 0)
        """Idle sessions and background processes left out of the rows."""

    def on_mount(self) -> None:
        self.table.set_hidden_columns({"type"})

    def show_activity(self, snapshot: ActivitySnapshot | None) -> None:
        """Apply a snapshot; unchanged rows are reused, not rebuilt."""
        self._snapshot = snapshot
        if snapshot is not None:
            self.show_rows()

    def rows(self) -> Iterable[Row]:
        snapshot = self._snapshot
        if snapshot is None:
            return []
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
        self._hidden = (hidden_idle, hidden_background)
        return rows

    def empty_text(self) -> str:
        if self.table.filter_text:
            return f"no session matches '{one_line(self.table.filter_text, 60)}'"
        return "no sessions to show"

    def status_parts(self) -> list[str]:
        hidden_idle, hidden_background = self._hidden
        return [
            self.count_text(),
            "idle shown (i)" if self.show_idle else f"{hidden_idle} idle hidden (i)",
            "background shown (b)"
            if self.show_background
            else f"{hidden_background} background hidden (b)",
        ]

    def _reshow(self) -> None:
        self._cache.clear()
        self.show_activity(self._snapshot)

    def filter_changed(self) -> None:
        self.show_activity(self._snapshot)

    # -- actions -----------------------------------------------------------------------------

    def action_toggle_idle(self) -> None:
        self.show_idle = not self.show_idle
        self._reshow()

    def action_toggle_background(self) -> None:
        self.show_background = not self.show_background
        # The type column only tells rows apart when background processes are listed.
        self.table.set_hidden_columns(set() if self.show_background else {"type"})
        self._reshow()

    def selected_backend(self) -> Backend | None:
        """The backend under the cursor, from the latest snapshot."""
        key = self.table.cursor_key
        if key is None or self._snapshot is None:
            return None
        return next((b for b in self._snapshot.backends if b.pid == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "signal":
            return self.check_signal()
        return super().check_action(action, parameters)

    @on(KeyedTable.RowActivated, "#activity-table")
    def open_backend(self, event: KeyedTable.RowActivated) -> None:
        snapshot = self._snapshot
        if snapshot is None:
            return
        backend = next((b for b in snapshot.backends if b.pid == event.key), None)
        if backend is not None:
            self.host.open_session(backend)

    def screen_commands(self) -> Iterable[SystemCommand]:
        yield from super().screen_commands()
        yield SystemCommand("Show or hide idle sessions", "Activity", self.action_toggle_idle)
        yield SystemCommand(
            "Show or hide background processes", "Activity", self.action_toggle_background
        )
        yield from self.session_commands("Activity")
