"""``--once tables``, ``--once vacuum`` and ``--once indexes``: the catalog tabs' data of
the connected database, the whole list read at once, sizes exact for the largest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pgtop.collectors.catalog import CatalogNeeds, IndexesData, TablesData, VacuumData
from pgtop.collectors.catalog.model import MAX_EXACT
from pgtop.reports.base import Report, bytes_of, fields_of, since, text
from pgtop.text import one_line

NEEDS = CatalogNeeds(exact_default=MAX_EXACT)


def tables_of(data: TablesData) -> Report:
    """Every table, largest first; sizes exact for the largest."""
    database_bytes = data.header.database_bytes
    rows = [
        {
            "schema": t.schema,
            "table": t.name,
            **fields_of(t, "oid", "total_bytes", "table_bytes", "index_bytes", "toast_bytes"),
            **fields_of(t, "size_is_estimate", "locked"),
            "estimated_rows": t.est_rows,
            "share_of_database": t.total_bytes / database_bytes if database_bytes else None,
            **fields_of(t, "seq_scan", "idx_scan", "n_tup_ins", "n_tup_upd", "n_tup_del"),
        }
        for t in sorted(data.tables, key=lambda t: (-t.total_bytes, t.schema, t.name))
    ]
    columns = [
        ("SCHEMA", text("schema")),
        ("TABLE", text("table", 60)),
        ("TOTAL", bytes_of("total_bytes")),
        ("HEAP", bytes_of("table_bytes")),
        ("INDEXES", bytes_of("index_bytes")),
        ("TOAST", bytes_of("toast_bytes")),
        ("ROWS", lambda r: "" if r["estimated_rows"] is None else f"{r['estimated_rows']:.0f}"),
        ("SEQ SCANS", text("seq_scan")),
        ("IDX SCANS", text("idx_scan")),
        ("LOCKED", lambda r: "locked" if r["locked"] else ""),
    ]
    return Report(data.collected_at, rows, columns)


def vacuum_of(data: VacuumData) -> Report:
    """Every table's vacuum state, most dead rows first."""
    now = data.collected_at
    rows = [
        {
            "schema": t.schema,
            "table": t.name,
            **fields_of(t, "oid", "n_live_tup", "n_dead_tup", "dead_ratio"),
            **fields_of(t, "last_vacuum", "last_autovacuum", "last_analyze", "last_autoanalyze"),
            **fields_of(t, "vacuum_count", "autovacuum_count", "analyze_count"),
            **fields_of(t, "autoanalyze_count", "xid_age"),
            "xid_share_of_freeze_max_age": t.freeze_share,
            "xid_share_of_wraparound": t.wraparound_share,
            "autovacuum_due": t.verdict.due,
            "autovacuum_reason": t.verdict.vacuum or None,
            "autoanalyze_due": t.verdict.analyze,
            "autovacuum_enabled": t.verdict.enabled,
            "locked": t.locked,
        }
        for t in sorted(data.tables, key=lambda t: (-t.n_dead_tup, t.schema, t.name))
    ]

    columns = [
        ("SCHEMA", text("schema")),
        ("TABLE", text("table", 60)),
        ("LIVE", text("n_live_tup")),
        ("DEAD", text("n_dead_tup")),
        ("LAST VACUUM", since("last_vacuum", now)),
        ("LAST AUTOVACUUM", since("last_autovacuum", now)),
        ("LAST ANALYZE", since("last_analyze", now)),
        ("LAST AUTOANALYZE", since("last_autoanalyze", now)),
        ("XID AGE", text("xid_age")),
        ("AUTOVACUUM DUE", lambda r: r["autovacuum_reason"] or ""),
    ]
    return Report(now, rows, columns)


def indexes_of(data: IndexesData) -> Report:
    """Every index with its flags, largest first."""
    rows = [
        {
            "schema": i.schema,
            "table": i.table,
            "index": i.name,
            **fields_of(i, "oid", "index_bytes", "size_is_estimate", "locked"),
            **fields_of(i, "idx_scan", "idx_tup_read", "idx_tup_fetch", "last_idx_scan"),
            **fields_of(i, "unused", "invalid", "duplicate_of", "enforces_constraint"),
        }
        for i in sorted(data.indexes, key=lambda i: (-i.index_bytes, i.schema, i.name))
    ]
    columns = [
        ("SCHEMA", text("schema")),
        ("TABLE", text("table", 60)),
        ("INDEX", text("index", 60)),
        ("SIZE", bytes_of("index_bytes")),
        ("SCANS", text("idx_scan")),
        ("FLAGS", lambda r: one_line(", ".join(index_flags_of(r)), 120)),
    ]
    return Report(data.collected_at, rows, columns)


def index_flags_of(row: Mapping[str, Any]) -> list[str]:
    flags = []
    if row["invalid"]:
        flags.append("invalid")
    if row["unused"]:
        flags.append("unused")
    if row["duplicate_of"]:
        flags.append(f"duplicate of {row['duplicate_of']}")
    if row.get("locked"):
        flags.append("locked")
    return flags


async def _data(source: Any, tab: str) -> Any:
    activity = await source.poll()
    return await source.collect(tab, activity, NEEDS, now=True)


async def tables_report(source: Any) -> Report:
    return tables_of(await _data(source, "tables"))


async def vacuum_report(source: Any) -> Report:
    return vacuum_of(await _data(source, "vacuum"))


async def indexes_report(source: Any) -> Report:
    return indexes_of(await _data(source, "indexes"))
