"""The Vacuum tab: per-table vacuum state, vacuums running now, and what holds the xmin
horizon back (why vacuum leaves dead rows behind)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import Static

from pgtop.formats import count, duration, percent, size
from pgtop.model import ActivitySnapshot, RelationTarget
from pgtop.panes.catalog import LOCKED_TEXT, CatalogPane
from pgtop.text import name_text, one_line
from pgtop.widgets.keyed_table import Column, KeyedTable, Row

if TYPE_CHECKING:
    from pgtop.collectors.catalog import HorizonHolder, VacuumData, VacuumProgress, VacuumTable

COLUMNS = (
    Column("schema", "SCHEMA", width=10, hide_below=120),
    Column("name", "TABLE", min_width=16),
    Column("live", "LIVE", width=7, align="right"),
    Column("dead", "DEAD", width=7, align="right"),
    Column("dead_ratio", "DEAD%", width=5, align="right", hide_below=90),
    Column("vacuum", "VACUUM", width=11, align="right", hide_below=100),
    Column("autovacuum", "AUTOVACUUM", width=11, align="right", hide_below=96),
    Column("analyze", "ANALYZE", width=11, align="right", hide_below=150),
    Column("autoanalyze", "AUTOANALYZE", width=11, align="right", hide_below=140),
    Column("due", "AUTOVACUUM DUE", width=18),
    Column("xid_age", "XID AGE", width=7, align="right"),
    Column("freeze", "FREEZE%", width=7, align="right", hide_below=100),
    Column("wrap", "WRAP%", width=5, align="right", hide_below=130),
    Column("flags", "", width=6),
)

HOLDER_COLUMNS = (
    Column("holder", "HOLDING THE XMIN HORIZON", width=26),
    Column("state", "STATE", width=12),
    Column("age", "AGE (XIDS)", width=10, align="right"),
    Column("since", "FOR", width=8, align="right"),
    Column("database", "DATABASE", width=12, hide_below=110),
    Column("user", "USER", width=10, hide_below=130),
    Column("xmin", "XMIN", width=10, hide_below=150),
    Column("detail", "QUERY / DETAIL", min_width=12),
)

RUNNING_COLUMNS = (
    Column("pid", "PID", width=7, align="right"),
    Column("command", "RUNNING", width=11),
    Column("relation", "RELATION", min_width=16),
    Column("phase", "PHASE", width=20),
    Column("percent", "DONE", width=5, align="right"),
    Column("blocks", "HEAP BLOCKS", width=15, align="right", hide_below=110),
    Column("dead", "DEAD ITEMS", width=10, align="right", hide_below=120),
    Column("elapsed", "FOR", width=8, align="right"),
)

_IDLE_IN_TX = ("idle in transaction", "idle in transaction (aborted)")
HOLDERS_SHOWN = 6
"""Rows of the horizon table on screen at most (it scrolls)."""


def _ago(then: datetime | None, count_: int, now: datetime) -> tuple[str, float | None]:
    seconds = (now - then).total_seconds() if then is not None else None
    when = duration(seconds) if seconds is not None else "never"
    return (f"{when} ×{count_}" if count_ else when), seconds


def due_text(table: VacuumTable) -> str:
    """What autovacuum would do with the table now, in words."""
    verdict = table.verdict
    parts = []
    if verdict.vacuum:
        parts.append(verdict.vacuum)
    if verdict.analyze:
        parts.append("analyze")
    if not parts and not verdict.enabled:
        return "off for table"
    return ", ".join(parts)


def vacuum_row(table: VacuumTable, now: datetime) -> Row:
    """The row of one table; ages measured from ``now`` (when the data was read)."""
    vacuum, vacuum_s = _ago(table.last_vacuum, table.vacuum_count, now)
    auto, auto_s = _ago(table.last_autovacuum, table.autovacuum_count, now)
    analyze, analyze_s = _ago(table.last_analyze, table.analyze_count, now)
    autoanalyze, autoanalyze_s = _ago(table.last_autoanalyze, table.autoanalyze_count, now)
    due = due_text(table)
    cells = (
        name_text(table.schema, 64),
        name_text(table.name),
        count(table.n_live_tup),
        count(table.n_dead_tup),
        percent(table.dead_ratio),
        vacuum,
        auto,
        analyze,
        autoanalyze,
        due,
        count(table.xid_age),
        percent(table.freeze_share),
        percent(table.wraparound_share),
        LOCKED_TEXT if table.locked else "",
    )
    sort_values = (
        table.schema,
        table.name,
        table.n_live_tup,
        table.n_dead_tup,
        table.dead_ratio,
        vacuum_s,
        auto_s,
        analyze_s,
        autoanalyze_s,
        (table.verdict.vacuum == "wraparound", bool(table.verdict.vacuum), table.verdict.analyze)
        if due
        else None,
        table.xid_age,
        table.freeze_share,
        table.wraparound_share,
        table.locked or None,
    )
    if table.locked or table.verdict.vacuum == "wraparound":
        tone = "error"
    elif table.verdict.vacuum:
        tone = "warning"
    else:
        tone = ""
    return Row(
        key=table.oid,
        cells=cells,
        sort_values=sort_values,
        tone=tone,
        search=f"{table.schema}.{table.name}",
    )


def holder_label(holder: HorizonHolder) -> str:
    if holder.kind == "session":
        kind = holder.backend_type if holder.backend_type != "client backend" else "pid"
        return f"{one_line(kind, 20)} {holder.ident}"
    if holder.kind == "slot":
        return f"slot {name_text(holder.ident, 40)}"
    return f"prepared {name_text(holder.ident, 40)}"


def holder_row(holder: HorizonHolder, now: datetime, database: str) -> Row:
    """The row of one holder of the xmin horizon."""
    state = holder.state or ""
    if state in _IDLE_IN_TX:
        state = "!! idle in tx"
    since = (now - holder.since).total_seconds() if holder.since is not None else None
    xmin = holder.xmin or holder.xid or ""
    if holder.kind == "slot" and holder.catalog_xmin:
        xmin = f"{holder.xmin or '-'}/{holder.catalog_xmin}"
    other_database = (
        holder.kind != "slot"
        and holder.backend_type != "walsender"
        and holder.database is not None
        and holder.database != database
    )
    detail = one_line(holder.detail)
    if holder.kind == "slot":
        detail = f"{one_line(holder.backend_type, 20)} slot {one_line(holder.detail, 60)}".strip()
    cells = (
        holder_label(holder),
        state,
        count(holder.age),
        duration(since),
        name_text(holder.database, 64),
        name_text(holder.user, 64),
        one_line(xmin, 40),
        detail,
    )
    if other_database:
        tone = "muted"
    elif holder.idle_in_transaction:
        tone = "error"
    else:
        tone = "warning"
    return Row(key=(holder.kind, holder.ident), cells=cells, sort_values=(), tone=tone)


def running_row(progress: VacuumProgress, now: datetime) -> Row:
    """The row of one vacuum running now."""
    done = progress.percent
    blocks = ""
    if progress.heap_blks_total:
        blocks = f"{count(progress.heap_blks_scanned)}/{count(progress.heap_blks_total)}"
    dead = ""
    if progress.dead_tuple_bytes is not None:
        dead = size(progress.dead_tuple_bytes)
    elif progress.dead_items is not None:
        dead = count(progress.dead_items)
    elapsed = (now - progress.started).total_seconds() if progress.started else None
    cells = (
        str(progress.pid),
        one_line(progress.command, 20),
        name_text(progress.relation, 128),
        one_line(progress.phase, 40),
        f"{done:.0f}%" if done is not None else "",
        blocks,
        dead,
        duration(elapsed),
    )
    return Row(key=progress.pid, cells=cells, sort_values=())


class VacuumPane(CatalogPane):
    """Which tables need vacuum, what vacuum is doing, and what stops it from cleaning."""

    TAB = "vacuum"
    TITLE = "Vacuum"
    KEY = "5"
    COLUMNS = COLUMNS
    DEFAULT_SORT = "dead"
    DESCENDING = frozenset(
        {"live", "dead", "dead_ratio", "vacuum", "autovacuum", "analyze", "autoanalyze",
         "due", "xid_age", "freeze", "wrap", "flags"}
    )  # fmt: skip
    NOUN = "tables"

    def compose_below(self) -> ComposeResult:
        yield Static("", id="vacuum-running-title", classes="pane-status")
        running = KeyedTable(RUNNING_COLUMNS, sortable=False, id="vacuum-running")
        running.display = False
        yield running
        yield Static("", id="vacuum-horizon-title", classes="pane-status")
        holders = KeyedTable(HOLDER_COLUMNS, sortable=False, id="vacuum-horizon")
        holders.display = False
        yield holders

    def items(self, data: VacuumData) -> Iterable[tuple[Hashable, object]]:
        return ((table.oid, table) for table in data.tables)

    def row(self, item: VacuumTable, data: VacuumData) -> Row:
        return vacuum_row(item, data.collected_at)

    def after_rows(self, data: VacuumData | None) -> None:
        running = self.query_one("#vacuum-running", KeyedTable)
        holders = self.query_one("#vacuum-horizon", KeyedTable)
        running_title = self.query_one("#vacuum-running-title", Static)
        horizon_title = self.query_one("#vacuum-horizon-title", Static)
        if data is None:
            running.set_rows([])
            holders.set_rows([])
            running.display = holders.display = False
            running_title.update("")
            horizon_title.update("")
            return
        now = data.collected_at
        running.set_rows([running_row(p, now) for p in data.running])
        running.display = bool(data.running)
        running.styles.height = min(len(data.running), 4) + 1
        running_title.update(
            Text(
                f"vacuums running now: {len(data.running)}"
                if data.running
                else "no vacuum is running now"
            )
        )
        holders.set_rows([holder_row(h, now, data.database) for h in data.holders])
        holders.display = bool(data.holders)
        holders.styles.height = min(len(data.holders), HOLDERS_SHOWN) + 1
        # Slot names and prepared-transaction ids are server text: never markup.
        horizon_title.update(Text(horizon_summary(data)))

    def data_parts(self, data: VacuumData) -> list[str]:
        from pgtop.collectors.catalog.model import xid_share

        due = sum(1 for table in data.tables if table.verdict.due)
        parts = [f"{due} autovacuum due"]
        wraparound = sum(1 for table in data.tables if table.verdict.vacuum == "wraparound")
        if wraparound:
            parts.append(f"{wraparound} to prevent wraparound")
        if not data.settings.active:
            parts.append("autovacuum is OFF")
        share = xid_share(data.header.datfrozenxid_age, data.settings.freeze_max_age)
        if share is not None:
            parts.append(f"database xid age {percent(share)} of freeze max")
        return parts

    def selected_target(self) -> RelationTarget | None:
        data: VacuumData | None = self._data
        table: VacuumTable | None = self.item(self.table.cursor_key)
        if data is None or table is None:
            return None
        return RelationTarget(
            oid=table.oid,
            schema=table.schema,
            name=table.name,
            kind="table",
            size_bytes=table.relpages * data.header.block_size,
            database=data.database,
        )

    @on(KeyedTable.RowActivated, "#vacuum-horizon")
    def open_holder(self, event: KeyedTable.RowActivated) -> None:
        data = self._data
        snapshot = self.host.snapshot
        if data is None or not isinstance(snapshot, ActivitySnapshot):
            return
        holder = next((h for h in data.holders if (h.kind, h.ident) == event.key), None)
        if holder is None or holder.pid is None:
            return
        backend = next((b for b in snapshot.backends if b.pid == holder.pid), None)
        if backend is not None:
            self.host.open_session(backend)


def horizon_summary(data: VacuumData) -> str:
    """One line: what holds the xmin horizon back the most, or that nothing does."""
    if not data.holders:
        return "xmin horizon: nothing holds it back"
    first = data.holders[0]
    what = holder_label(first)
    if first.idle_in_transaction:
        what += " idle in transaction"
    age = f" {count(first.age)} xids" if first.age is not None else ""
    return f"xmin horizon: {what} holds it back{age} (Tab: select, Enter: session)"
