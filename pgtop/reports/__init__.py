"""``--once TAB``: one tab's data as plain records, for JSON and for an aligned text table.

Each report reads its tab's data through a source (``pgtop.source``), exactly as the tab
does, and turns it into records: the same report works on the live server and on any other
source. Texts are whole (up to ``WHOLE_TEXT_LIMIT`` characters), names and texts in the text
table made visible and kept on one line.
"""

from __future__ import annotations

from pgtop.reports.base import Reader, Report

__all__ = ["REPORTS", "Reader", "Report", "reports"]

REPORTS = ("activity", "locks", "queries", "tables", "vacuum", "indexes", "health")
"""The tabs ``--once`` prints, in order."""


def reports() -> dict[str, Reader]:
    """Every tab's report, by tab name (``REPORTS``)."""
    from pgtop.reports import activity, catalog, health, locks, queries

    return {
        "activity": activity.report,
        "locks": locks.report,
        "queries": queries.report,
        "tables": catalog.tables_report,
        "vacuum": catalog.vacuum_report,
        "indexes": catalog.indexes_report,
        "health": health.report,
    }
