"""The Replication tab: the standbys, the replication slots and the WAL each keeps, the WAL
directory, the archiver and the checkpoints, every database's size; on a standby, its WAL
receiver and the recovery conflicts of each database."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from pgtop.formats import duration, size
from pgtop.model import CheckpointTarget, SlotTarget
from pgtop.panes.base import FILTER_BINDINGS, SORT_BINDINGS, ListPane
from pgtop.reports.replication import archiver_line, conflicts_text, wal_line
from pgtop.text import name_text, one_line
from pgtop.widgets.keyed_table import Column, Row
from pgtop.widgets.status_line import StatusLine

if TYPE_CHECKING:
    from pgtop.collectors.health import SlotState, StandbyState
    from pgtop.collectors.replication import DatabaseState, ReceiverState, ReplicationData

COLUMNS = (
    Column("kind", "KIND", width=8),
    Column("name", "NAME", min_width=12),
    Column("state", "STATE", width=15),
    Column("mode", "SYNC/WAL", width=10, hide_below=100),
    Column("bytes", "BYTES", width=9, align="right"),
    Column("lag", "LAG", width=8, align="right"),
    Column("detail", "DETAIL", min_width=12, hide_below=76),
)

RECEIVER_KEY = ("receiver",)
"""Rows sort by kind as standbys, the WAL receiver, slots (as read: most WAL kept first),
then databases (largest first)."""


def standby_key(pid: int) -> tuple[str, int]:
    return ("standby", pid)


def _bytes(value: int | None) -> str:
    return size(value) if value is not None else ""


def standby_row(standby: StandbyState) -> Row:
    name = standby.application_name or standby.client_addr or f"pid {standby.pid}"
    detail = (
        f"sent {_bytes(standby.sent_lag_bytes)} write {_bytes(standby.write_lag_bytes)} "
        f"flush {_bytes(standby.flush_lag_bytes)} · write {duration(standby.write_lag_s) or '-'} "
        f"flush {duration(standby.flush_lag_s) or '-'} · {name_text(standby.client_addr, 60)} "
        f"pid {standby.pid}"
    )
    cells = (
        "standby",
        name_text(name, 80),
        one_line(standby.state or "", 15),
        one_line(standby.sync_state or "", 10),
        _bytes(standby.replay_lag_bytes),
        duration(standby.replay_lag_s),
        detail,
    )
    return Row(
        key=standby_key(standby.pid),
        cells=cells,
        sort_values=(
            0,
            name,
            standby.state,
            standby.sync_state,
            standby.replay_lag_bytes,
            standby.replay_lag_s,
            None,
        ),
    )


def slot_row(slot: SlotState) -> Row:
    if slot.kind == "logical":
        what = f"logical {name_text(slot.plugin, 40)} db {name_text(slot.database, 40)}"
    else:
        what = "physical"
    parts = [what]
    if slot.safe_wal_size is not None:
        parts.append(f"safe {size(slot.safe_wal_size)}")
    if slot.xmin is not None:
        parts.append(f"xmin {slot.xmin}")
    if slot.catalog_xmin is not None:
        parts.append(f"catalog_xmin {slot.catalog_xmin}")
    state = f"active pid {slot.active_pid}" if slot.active else "inactive"
    tone = ""
    if slot.wal_status in ("unreserved", "lost"):
        tone = "error"
    elif not slot.active:
        tone = "warning"
    cells = (
        "slot",
        name_text(slot.name, 80),
        state,
        one_line(slot.wal_status or "", 10),
        _bytes(slot.retained_bytes),
        "",
        " · ".join(parts),
    )
    return Row(
        key=slot.name,
        cells=cells,
        sort_values=(2, slot.name, state, slot.wal_status, slot.retained_bytes, None, None),
        tone=tone,
    )


def receiver_row(receiver: ReceiverState) -> Row:
    upstream = ""
    if receiver.sender_host is not None:
        upstream = f"{receiver.sender_host}:{receiver.sender_port}"
    state = receiver.status or "not running"
    if receiver.replay_paused:
        state = f"{state}, paused"
    detail = f"received {receiver.received_lsn or '?'} replayed {receiver.replayed_lsn or '?'}" + (
        f" · pid {receiver.pid}" if receiver.pid is not None else ""
    )
    cells = (
        "receiver",
        name_text(upstream, 80),
        one_line(state, 30),
        "",
        "",
        duration(receiver.replay_delay_s),
        one_line(detail, 200),
    )
    return Row(
        key=RECEIVER_KEY,
        cells=cells,
        sort_values=(1, upstream, state, None, None, receiver.replay_delay_s, None),
        tone="warning" if receiver.replay_paused or receiver.status != "streaming" else "",
    )


def database_key(name: str) -> tuple[str, str]:
    return ("database", name)


def database_row(database: DatabaseState, in_recovery: bool) -> Row:
    state = "" if database.readable else "no access"
    detail = "" if database.readable else "its size needs CONNECT on it, or pg_read_all_stats"
    if in_recovery:
        detail = conflicts_text(database)
    cells = (
        "database",
        name_text(database.name, 80),
        state,
        "",
        _bytes(database.size_bytes),
        "",
        detail,
    )
    return Row(
        key=database_key(database.name),
        cells=cells,
        sort_values=(3, database.name, state, None, database.size_bytes, None, None),
        tone="warning" if database.conflict_count else "",
    )


def replication_rows(data: ReplicationData) -> list[Row]:
    rows = [standby_row(s) for s in data.standbys]
    rows += [slot_row(s) for s in data.slots]
    if data.receiver is not None:
        rows.append(receiver_row(data.receiver))
    rows += [database_row(d, data.in_recovery) for d in data.databases]
    return rows


class ReplicationPane(ListPane):
    """One row per standby, slot and WAL receiver, under the WAL and the archiver."""

    TAB = "replication"
    TITLE = "Replication"
    KEY = "8"
    COLUMNS = COLUMNS
    DEFAULT_SORT = "kind"
    DESCENDING = frozenset({"bytes", "lag"})
    NOUN = "rows"
    FAILURE_LABEL = "replication unavailable"
    BINDINGS: ClassVar[list[BindingType]] = [
        *FILTER_BINDINGS,
        *SORT_BINDINGS,
        Binding("D", "drop_slot", "Drop slot", id="drop-slot"),
        Binding("P", "checkpoint", "Checkpoint", id="checkpoint"),
    ]

    def __init__(self, *, lazy: bool = False) -> None:
        super().__init__(lazy=lazy)
        self._data: ReplicationData | None = None

    @property
    def data(self) -> ReplicationData | None:
        return self._data

    def selected_slot(self) -> SlotState | None:
        """The slot under the cursor, if the cursor is on one."""
        key = self.table.cursor_key
        if self._data is None or not isinstance(key, str):
            return None
        return next((slot for slot in self._data.slots if slot.name == key), None)

    def action_drop_slot(self) -> None:
        slot = self.selected_slot()
        if slot is None:
            self.host.say("put the cursor on a slot to drop it", timeout=3)
            return
        self.host.drop_slot(
            SlotTarget(
                slot.name,
                slot.kind,
                slot.database,
                slot.plugin,
                slot.active,
                slot.active_pid,
                slot.retained_bytes,
            )
        )

    def action_checkpoint(self) -> None:
        data = self._data
        if data is None:
            self.host.say("wait for the first read of the tab", timeout=3)
            return
        target = CheckpointTarget(data.in_recovery, data.wal.dir_bytes, data.last_checkpoint_time)
        self.host.checkpoint(target, data.may_checkpoint)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "checkpoint":
            return self.host.actions_offered() and self._data is not None
        if action == "drop_slot":
            if not self.host.actions_offered():
                return False
            return True if self.selected_slot() is not None else None
        return super().check_action(action, parameters)

    def compose_above(self) -> ComposeResult:
        yield StatusLine(id="replication-wal")
        yield StatusLine(id="replication-archiver")

    def show_data(self, data: ReplicationData) -> None:
        self._data = data
        self.failure = ""
        self.query_one("#replication-wal", StatusLine).set_text(wal_line(data))
        self.query_one("#replication-archiver", StatusLine).set_text(archiver_line(data))
        self.show_rows()

    def rows(self) -> Iterable[Row]:
        return replication_rows(self._data) if self._data is not None else []

    def empty_text(self) -> str:
        if self._data is not None and not self.table.filter_text:
            return "no standby, no replication slot, no database readable"
        return super().empty_text()

    def status_parts(self) -> list[str]:
        data = self._data
        if data is None:
            return ["waiting for the first read…"]
        role = "standby" if data.in_recovery else "primary"
        counts = f"standbys {len(data.standbys)}, slots {len(data.slots)}"
        if data.databases:
            total = sum(d.size_bytes or 0 for d in data.databases)
            counts += f", databases {len(data.databases)} ({size(total)})"
        parts = [f"{role}: {counts}", self.count_text()]
        if data.databases_problem:
            parts.append(data.databases_problem)
        return parts
