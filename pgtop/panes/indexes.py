"""The Indexes tab: every index with its size, scans, and what is wrong with it (unused,
invalid, duplicate of another)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from pgtop.formats import ESTIMATE_MARK, count, duration, sized
from pgtop.model import RelationTarget
from pgtop.panes.catalog import LOCKED_TEXT, CatalogPane
from pgtop.text import name_text, one_line
from pgtop.widgets.keyed_table import Column, Row

if TYPE_CHECKING:
    from pgtop.collectors.catalog import IndexesData, IndexInfo

COLUMNS = (
    Column("schema", "SCHEMA", width=10, hide_below=120),
    Column("table", "TABLE", min_width=12),
    Column("name", "INDEX", min_width=16),
    Column("size", "SIZE", width=10, align="right"),
    Column("scans", "SCANS", width=7, align="right"),
    Column("read", "TUP READ", width=8, align="right", hide_below=110),
    Column("fetched", "FETCHED", width=8, align="right", hide_below=130),
    Column("last_scan", "LAST SCAN", width=9, align="right", hide_below=150),
    Column("kind", "KIND", width=8, hide_below=100),
    Column("flags", "PROBLEM", min_width=12),
)


def index_kind(index: IndexInfo) -> str:
    if index.is_primary:
        return "primary"
    if index.is_exclusion:
        return "exclude"
    if index.is_unique:
        return "unique"
    return index.method


def index_problems(index: IndexInfo) -> list[str]:
    """What is wrong with an index, most serious first."""
    problems = []
    if index.invalid:
        problems.append("INVALID")
    if index.duplicate_of:
        problems.append(f"DUPLICATE of {name_text(index.duplicate_of, 64)}")
    if index.unused:
        problems.append("UNUSED")
    if index.locked:
        problems.append(LOCKED_TEXT)
    return problems


def index_row(index: IndexInfo, now: datetime) -> Row:
    """The row of one index."""
    last_scan = (
        (now - index.last_idx_scan).total_seconds() if index.last_idx_scan is not None else None
    )
    problems = index_problems(index)
    cells = (
        name_text(index.schema, 64),
        name_text(index.table),
        name_text(index.name),
        sized(index.index_bytes, index.size_is_estimate),
        count(index.idx_scan),
        count(index.idx_tup_read),
        count(index.idx_tup_fetch),
        duration(last_scan),
        one_line(index_kind(index), 16),
        ", ".join(problems),
    )
    sort_values = (
        index.schema,
        index.table,
        index.name,
        index.index_bytes,
        index.idx_scan,
        index.idx_tup_read,
        index.idx_tup_fetch,
        last_scan,
        index_kind(index),
        (index.invalid, bool(index.duplicate_of), index.unused) if problems else None,
    )
    if index.invalid or index.locked:
        tone = "error"
    elif index.duplicate_of or index.unused:
        tone = "warning"
    else:
        tone = ""
    return Row(
        key=index.oid,
        cells=cells,
        sort_values=sort_values,
        tone=tone,
        search=f"{index.schema}.{index.table} {index.schema}.{index.name}",
    )


class IndexesPane(CatalogPane):
    """Every index of the database, largest first, with its problems."""

    TAB = "indexes"
    TITLE = "Indexes"
    KEY = "6"
    COLUMNS = COLUMNS
    DEFAULT_SORT = "size"
    DESCENDING = frozenset({"size", "scans", "read", "fetched", "last_scan", "flags"})
    NOUN = "indexes"
    SIZES = True

    def items(self, data: IndexesData) -> Iterable[tuple[Hashable, object]]:
        return ((index.oid, index) for index in data.indexes)

    def row(self, item: IndexInfo, data: IndexesData) -> Row:
        return index_row(item, data.collected_at)

    def needs_size(self, key: Hashable) -> bool:
        index: IndexInfo | None = self.item(key)
        return index is not None and index.size_is_estimate and not index.locked

    def data_parts(self, data: IndexesData) -> list[str]:
        unused = sum(1 for index in data.indexes if index.unused)
        invalid = sum(1 for index in data.indexes if index.invalid)
        duplicate = sum(1 for index in data.indexes if index.duplicate_of)
        parts = [f"{unused} unused", f"{invalid} invalid", f"{duplicate} duplicate"]
        reset = data.header.stats_reset
        if reset is not None:
            since = duration((data.collected_at - reset).total_seconds())
            parts.append(f"scans counted for {since}")
        parts.append(f"{ESTIMATE_MARK} estimate")
        if data.sizes_problem:
            parts.append(one_line(data.sizes_problem, 100))
        return parts

    def selected_target(self) -> RelationTarget | None:
        data: IndexesData | None = self._data
        index: IndexInfo | None = self.item(self.table.cursor_key)
        if data is None or index is None:
            return None
        return RelationTarget(
            oid=index.oid,
            schema=index.schema,
            name=index.name,
            kind="index",
            size_bytes=index.index_bytes,
            table_oid=index.table_oid,
            table_name=f"{index.schema}.{index.table}",
            database=data.database,
        )
