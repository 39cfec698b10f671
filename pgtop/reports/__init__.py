"""``--once TAB``: one tab's data as plain records, for JSON and for an aligned text table.

Each report reads its tab's data through a source (``pgtop.source``), exactly as the tab
does, and turns it into records: the same report works on the live server and on any other
source. Texts are whole (up to ``WHOLE_TEXT_LIMIT`` characters), names and texts in the text
table made visible and kept on one line.
"""

from __future__ import annotations

from pgtop.reports.base import Reader, Report

__all__ = ["POOLER_REPORTS", "REPORTS", "SERVER_REPORTS", "Reader", "Report", "reports"]

REPORTS = (
    "activity",
    "connections",
    "locks",
    "queries",
    "tables",
    "vacuum",
    "indexes",
    "health",
    "replication",
    "pools",
    "servers",
)
"""The reports ``--once`` prints, in order (one per tab, and the Activity tab's groups)."""

POOLER_REPORTS = ("pools", "health")
"""The reports of a PgBouncer admin console."""

SERVER_REPORTS = tuple(name for name in REPORTS if name not in ("pools", "servers"))
"""The reports of a PostgreSQL server (``servers`` is of every server watched)."""


def reports() -> dict[str, Reader]:
    """Every report, by name (``REPORTS``)."""
    from pgtop.reports import (
        activity,
        catalog,
        connections,
        health,
        locks,
        pools,
        queries,
        replication,
        servers,
    )

    return {
        "activity": activity.report,
        "connections": connections.report,
        "pools": pools.report,
        "locks": locks.report,
        "queries": queries.report,
        "tables": catalog.tables_report,
        "vacuum": catalog.vacuum_report,
        "indexes": catalog.indexes_report,
        "health": health.report,
        "replication": replication.report,
        "servers": servers.report,
    }
