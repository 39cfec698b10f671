"""The Pools tab, shown instead of the PostgreSQL tabs on a PgBouncer admin console: one row
per pool, the pools with clients waiting for a server first."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual import on
from textual.binding import BindingType

from pgtop.formats import duration, rate
from pgtop.model import Pool, PoolsSnapshot
from pgtop.panes.base import FILTER_BINDINGS, SORT_BINDINGS, ListPane
from pgtop.text import name_text, one_line
from pgtop.widgets.keyed_table import Column, KeyedTable, Row

COLUMNS = (
    Column("database", "DATABASE", min_width=8),
    Column("user", "USER", width=10),
    Column("cl_active", "CL_ACTIVE", width=9, align="right"),
    Column("cl_waiting", "CL_WAITING", width=10, align="right"),
    Column("maxwait", "MAXWAIT", width=7, align="right"),
    Column("sv_active", "SV_ACTIVE", width=9, align="right"),
    Column("sv_idle", "SV_IDLE", width=7, align="right"),
    Column("sv_used", "SV_USED", width=7, align="right", hide_below=90),
    Column("pool_mode", "POOL_MODE", width=11, hide_below=104),
    Column("pool_size", "SIZE", width=4, align="right", hide_below=104),
    Column("xact_rate", "TX/S", width=7, align="right", hide_below=120),
    Column("query_rate", "QUERY/S", width=7, align="right", hide_below=120),
)
"""PgBouncer's own names; the columns that tell whether clients wait stay on a narrow
terminal."""
DEFAULT_SORT = "cl_waiting"
"""Clients waiting for a server are what a pooler incident looks like."""


def pool_row(pool: Pool) -> Row:
    """The table row of one pool."""
    cells = (
        name_text(pool.database, 64),
        name_text(pool.user, 64),
        str(pool.cl_active),
        str(pool.cl_waiting),
        duration(pool.maxwait_s) if pool.cl_waiting else "",
        str(pool.sv_active),
        str(pool.sv_idle),
        str(pool.sv_used),
        name_text(pool.pool_mode or "", 20),
        "" if pool.pool_size is None else str(pool.pool_size),
        rate(pool.xact_per_s),
        rate(pool.query_per_s),
    )
    sort_values = (
        pool.database,
        pool.user,
        pool.cl_active,
        pool.cl_waiting,
        pool.maxwait_s,
        pool.sv_active,
        pool.sv_idle,
        pool.sv_used,
        pool.pool_mode,
        pool.pool_size,
        pool.xact_per_s,
        pool.query_per_s,
    )
    tone = "warning" if pool.cl_waiting else ""
    return Row(key=(pool.database, pool.user), cells=cells, sort_values=sort_values, tone=tone)


def waiting_text(snapshot: PoolsSnapshot) -> str:
    """``4 clients waiting for a server, longest 3.2s (app/app)``, or that none waits."""
    waiting = snapshot.clients_waiting
    if not waiting:
        return "no client waiting for a server"
    first = snapshot.waiting_pools()[0]
    where = one_line(f"{first.database}/{first.user}", 60)
    clients = "client" if waiting == 1 else "clients"
    return (
        f"{waiting} {clients} waiting for a server, longest {duration(first.maxwait_s)} ({where})"
    )


class PoolsPane(ListPane):
    """Every pool of the PgBouncer, one per row; Enter shows its clients and servers."""

    TAB = "pools"
    TITLE = "Pools"
    KEY = "1"
    COLUMNS = COLUMNS
    DEFAULT_SORT = DEFAULT_SORT
    DESCENDING = frozenset(column.key for column in COLUMNS[2:])
    """Counts, waits and rates read best largest first; names alphabetically."""
    NOUN = "pools"

    BINDINGS: ClassVar[list[BindingType]] = [*FILTER_BINDINGS, *SORT_BINDINGS]

    def __init__(self, *, lazy: bool = False) -> None:
        super().__init__(lazy=lazy)
        self._snapshot: PoolsSnapshot | None = None

    def show_activity(self, snapshot: PoolsSnapshot | None) -> None:
        self._snapshot = snapshot
        if snapshot is not None:
            self.show_rows()

    def rows(self) -> Iterable[Row]:
        snapshot = self._snapshot
        return [] if snapshot is None else [pool_row(pool) for pool in snapshot.pools]

    def status_parts(self) -> list[str]:
        parts = [self.count_text()]
        if self._snapshot is not None:
            parts.append(waiting_text(self._snapshot))
        parts.append("Enter: clients and servers")
        return parts

    def selected_pool(self) -> Pool | None:
        """The pool under the cursor, from the latest snapshot."""
        key = self.table.cursor_key
        if key is None or self._snapshot is None:
            return None
        return next((p for p in self._snapshot.pools if (p.database, p.user) == key), None)

    @on(KeyedTable.RowActivated, "#pools-table")
    def open_pool(self, event: KeyedTable.RowActivated) -> None:
        snapshot = self._snapshot
        if snapshot is None:
            return
        pool = next((p for p in snapshot.pools if (p.database, p.user) == event.key), None)
        if pool is not None:
            self.host.open_pool(pool)
