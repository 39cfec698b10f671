"""The Locks tab: the blocking forest, root blockers first, one row per place in the tree."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import SystemCommand
from textual.binding import BindingType

from pgtop.formats import duration
from pgtop.model import ActivitySnapshot, Backend
from pgtop.panes.actions import COPY_BINDING, SESSION_ACTION_BINDINGS, SessionActions
from pgtop.panes.activity import HIDDEN_TEXT, state_label
from pgtop.panes.base import ListPane
from pgtop.text import name_text, one_line
from pgtop.widgets.keyed_table import Column, KeyedTable, Row

if TYPE_CHECKING:
    # The collector's module loads when the tab is first shown: what runs is imported
    # where it is used.
    from pgtop.collectors.locks import Forest, LocksData, LockWait, Node

COLUMNS = (
    Column("session", "SESSION", width=18),
    Column("blocks", "BLOCKS", width=7, align="right"),
    Column("user", "USER", width=10, hide_below=150),
    Column("application", "APPLICATION", width=12, hide_below=130),
    Column("state", "STATE", width=13),
    Column("wait", "WAIT", width=18, hide_below=180),
    Column("lock", "WAITING FOR", min_width=18),
    Column("waited", "WAITED", width=7, align="right"),
    Column("xact_age", "TX AGE", width=7, align="right", hide_below=100),
    Column("query", "QUERY", min_width=8),
)
"""The lock and the query share the width left; on a narrow terminal the lock keeps more."""

IDLE_IN_TX_MARK = "!! "
"""Before the state of a blocker idle in a transaction: the usual culprit, told by a mark
and not by colour alone."""
_IDLE_IN_TX = ("idle in transaction", "idle in transaction (aborted)")
REPEAT_MARK = " ↑"
"""After a pid whose blocked sessions are listed where it first appears, above."""
CYCLE_MARK = " ↻"
"""After a pid met again on its own path: sessions blocking each other in a circle."""
UPPER_BOUND = "≤"
"""Before a wait known only as the age of the waiting statement (no pg_locks.waitstart)."""


def _state(node: Node) -> str:
    from pgtop.collectors.locks import PREPARED_PID

    backend = node.backend
    if backend is None:
        return "prepared tx" if node.pid == PREPARED_PID else "ended"
    label = state_label(backend)
    if backend.state in _IDLE_IN_TX and node.blocks_direct:
        return IDLE_IN_TX_MARK + label
    return label


def _waited(node: Node, now: datetime) -> str:
    from pgtop.collectors.locks import wait_age

    seconds, exact = wait_age(node.backend, node.wait, now)
    if seconds is None:
        return ""
    return duration(seconds) if exact else UPPER_BOUND + duration(seconds)


def _lock(node: Node) -> str:
    wait: LockWait | None = node.wait
    if wait is not None:
        return wait.label
    backend = node.backend
    if backend is not None and backend.waiting_on_lock:
        return one_line(backend.wait_event, 40)  # granted since, or not read yet
    return ""


def node_row(node: Node, now: datetime) -> Row:
    """The table row of one place in the tree."""
    from pgtop.collectors.locks import PREPARED_PID

    backend = node.backend
    session = f"{node.prefix}{node.pid}"
    if node.pid == PREPARED_PID and backend is None:
        session += " prepared"
    if node.cycle:
        session += CYCLE_MARK
    elif node.repeat:
        session += REPEAT_MARK
    if node.blocks_direct:
        counts = f"{node.blocks_direct}/{node.blocks_total}"
        blocks = f"▲ {counts}" if node.is_root else counts
    else:
        blocks = ""
    xact_age = (
        (now - backend.xact_start).total_seconds()
        if backend is not None and backend.xact_start
        else None
    )
    if backend is None:
        query = ""
        user = application = wait = ""
    else:
        query = HIDDEN_TEXT if backend.query_hidden else one_line(backend.query)
        user = name_text(backend.user, 64)
        application = name_text(backend.application_name, 64)
        wait = ":".join(filter(None, (backend.wait_event_type, backend.wait_event)))
    cells = (
        session,
        blocks,
        user,
        application,
        _state(node),
        one_line(wait, 64),
        _lock(node),
        _waited(node, now),
        duration(xact_age),
        query,
    )
    if backend is None:
        tone = "muted"
    elif node.is_root:
        tone = "error"
    else:
        tone = "warning"
    return Row(key=node.path, cells=cells, sort_values=(), tone=tone)


class LocksPane(SessionActions, ListPane):
    """Who blocks whom: each root blocker with the sessions it holds up indented below."""

    TAB = "locks"
    TITLE = "Locks"
    KEY = "2"
    COLUMNS = COLUMNS
    SORTABLE = False
    FAILURE_LABEL = "lock details unavailable"
    BINDINGS: ClassVar[list[BindingType]] = [*SESSION_ACTION_BINDINGS, COPY_BINDING]

    def __init__(self, *, lazy: bool = False) -> None:
        super().__init__(lazy=lazy)
        self._snapshot: ActivitySnapshot | None = None
        self._waits: dict[int, LockWait] = {}
        self._forest: Forest | None = None
        self._by_path: dict[Hashable, Node] = {}

    @property
    def forest(self) -> Forest | None:
        """The tree on screen."""
        return self._forest

    # -- data in -----------------------------------------------------------------------------

    def show_activity(self, snapshot: ActivitySnapshot | None) -> None:
        """A new Activity poll: the tree follows it at once, with the lock details known."""
        if snapshot is None:
            return
        self._snapshot = snapshot
        self._rebuild_tree()

    def show_data(self, data: LocksData) -> None:
        """The waiters' locks, read right after the Activity poll they belong to."""
        self._waits = data.waits_by_pid()
        self.failure = ""
        current = self._snapshot
        # Data kept from an earlier visit to the tab must not bring back an older tree.
        if current is None or data.activity.collected_at >= current.collected_at:
            self._snapshot = data.activity
        self._rebuild_tree()

    def _rebuild_tree(self) -> None:
        snapshot = self._snapshot
        if snapshot is None:
            return
        from pgtop.collectors.locks import build_forest

        forest = build_forest(snapshot, self._waits)
        self._forest = forest
        self._by_path = {node.path: node for node in forest.nodes}
        table = self.table
        previous = table.cursor_key
        self.show_rows()
        if previous is not None and previous not in self._by_path and isinstance(previous, tuple):
            # Its place in the tree changed (a blocker went away): follow the session.
            pid = previous[-1]
            moved = next((n.path for n in forest.nodes if n.pid == pid), None)
            if moved is not None:
                table.move_cursor_to_key(moved)

    def rows(self) -> Iterable[Row]:
        snapshot, forest = self._snapshot, self._forest
        if snapshot is None or forest is None:
            return []
        now = snapshot.collected_at
        return [node_row(node, now) for node in forest.nodes]

    def empty_text(self) -> str:
        forest = self._forest
        if forest is not None and forest.waiting:
            return "no blocker reported"
        return "no session is waiting on a lock"

    def show_status(self) -> None:
        if self._snapshot is None or self._forest is None:
            return
        super().show_status()

    def status_parts(self) -> list[str]:
        snapshot, forest = self._snapshot, self._forest
        assert snapshot is not None
        assert forest is not None
        waiting = len(forest.waiting)
        if not waiting:
            parts = ["no session is waiting on a lock"]
        else:
            parts = [f"{waiting} session{'s' if waiting != 1 else ''} waiting on locks"]
            from pgtop.collectors.locks import longest_wait

            longest = longest_wait(snapshot, self._waits)
            if longest is not None:
                pid, seconds, exact = longest
                mark = "" if exact else UPPER_BOUND
                parts.append(f"longest wait {mark}{duration(seconds)} (pid {pid})")
            idle = self._idle_root(forest, snapshot.collected_at)
            if idle:
                parts.append(idle)
            roots = len(forest.roots)
            if roots:
                parts.append(f"{roots} root blocker{'s' if roots != 1 else ''}")
            parts.append("BLOCKS = direct/in all")
        if forest.cut:
            parts.append(f"tree cut at {len(forest.nodes)} rows")
        return parts

    @staticmethod
    def _idle_root(forest: Forest, now: datetime) -> str:
        for node in forest.nodes:
            backend = node.backend
            if node.is_root and backend is not None and backend.state in _IDLE_IN_TX:
                start = backend.state_change or backend.xact_start
                since = f" {duration((now - start).total_seconds())}" if start else ""
                return f"{IDLE_IN_TX_MARK}root {node.pid} idle in transaction{since}"
        return ""

    # -- selection ---------------------------------------------------------------------------

    def selected_node(self) -> Node | None:
        """The place in the tree under the cursor."""
        key = self.table.cursor_key
        return None if key is None else self._by_path.get(key)

    def selected_backend(self) -> Backend | None:
        """The session under the cursor, for actions such as cancel and terminate.

        None when nothing is selected, or the node is no live session (a prepared
        transaction, a session that ended).
        """
        node = self.selected_node()
        return None if node is None else node.backend

    def action_open_selected(self) -> None:
        backend = self.selected_backend()
        if backend is not None:
            self.host.open_session(backend)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "signal":
            return self.check_signal()
        if action == "copy_query":
            return self.selected_backend() is not None
        return super().check_action(action, parameters)

    @on(KeyedTable.RowActivated, "#locks-table")
    def open_backend(self, event: KeyedTable.RowActivated) -> None:
        node = self._by_path.get(event.key)
        if node is not None and node.backend is not None:
            self.host.open_session(node.backend)

    def action_first_root(self) -> None:
        self.table.action_cursor_first()
        self.table.focus()

    def screen_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "Go to the top root blocker",
            "Locks: the session blocking the most others",
            self.action_first_root,
        )
        if self.selected_backend() is not None:
            yield SystemCommand(
                "Open the selected session",
                "Locks: detail of the session",
                self.action_open_selected,
            )
        yield from self.session_commands("Locks")
