"""The Tables tab: every table with its sizes (estimated, exact for the rows on screen),
rows, scans and write rates."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING

from pgtop.formats import ESTIMATE_MARK, count, percent, rate, sized
from pgtop.model import RelationTarget
from pgtop.panes.catalog import LOCKED_TEXT, CatalogPane
from pgtop.text import name_text, one_line
from pgtop.widgets.keyed_table import Column, Row

if TYPE_CHECKING:
    from pgtop.collectors.catalog import TableInfo, TablesData

TABLE_COLUMNS = (
    Column("schema", "SCHEMA", width=10, hide_below=110),
    Column("name", "TABLE", min_width=16),
    Column("total", "TOTAL", width=10, align="right"),
    Column("heap", "HEAP", width=10, align="right", hide_below=60),
    Column("indexes", "INDEXES", width=10, align="right", hide_below=70),
    Column("toast", "TOAST", width=10, align="right", hide_below=120),
    Column("rows", "ROWS", width=7, align="right", hide_below=50),
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
    TITLE = "Tables"
    KEY = "4"
    COLUMNS = TABLE_COLUMNS
    DEFAULT_SORT = "total"
    DESCENDING = frozenset(
        {"total", "heap", "indexes", "toast", "rows", "share", "seq_scan", "idx_scan",
         "ins", "upd", "del", "flags"}
    )  # fmt: skip
    NOUN = "tables"
    SIZES = True

    def items(self, data: TablesData) -> Iterable[tuple[Hashable, object]]:
        return ((table.oid, table) for table in data.tables)

    def row(self, item: TableInfo, data: TablesData) -> Row:
        return table_row(item, data.header.database_bytes)

    def needs_size(self, key: Hashable) -> bool:
        table: TableInfo | None = self.item(key)
        return table is not None and table.size_is_estimate and not table.locked

    def data_parts(self, data: TablesData) -> list[str]:
        parts = [f"{ESTIMATE_MARK} estimate (exact for rows on screen)"]
        locked = sum(1 for table in data.tables if table.locked)
        if locked:
            parts.append(f"{locked} locked ACCESS EXCLUSIVE")
        if data.sizes_problem:
            parts.append(one_line(data.sizes_problem, 100))
        return parts

    def selected_target(self) -> RelationTarget | None:
        data: TablesData | None = self._data
        table: TableInfo | None = self.item(self.table.cursor_key)
        if data is None or table is None:
            return None
        return RelationTarget(
            oid=table.oid,
            schema=table.schema,
            name=table.name,
            kind="table",
            size_bytes=table.total_bytes,
            database=data.database,
        )
