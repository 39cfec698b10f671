"""``--once queries``: every pg_stat_statements entry's lifetime counters with its whole
text, most total execution time first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pgtop.collectors.activity import WHOLE_TEXT_LIMIT
from pgtop.collectors.statements import (
    COUNTER_FIELDS,
    Reading,
    StatementNeeds,
    StatementsSnapshot,
    StatementsUnavailable,
    StatementsUnavailableError,
)
from pgtop.formats import millis
from pgtop.reports.base import Report
from pgtop.text import one_line

NEEDS = StatementNeeds(all_texts=True, text_limit=WHOLE_TEXT_LIMIT + 1)
"""Every text, one character more than is shown, to tell when one was cut."""


def report_rows(reading: Reading, texts: Mapping[int, str]) -> list[dict[str, Any]]:
    """Lifetime counters of every entry, most total execution time first; texts cut at
    ``WHOLE_TEXT_LIMIT`` characters (``query_truncated``)."""
    rows: list[dict[str, Any]] = []
    ordered = sorted(reading.statements.values(), key=lambda s: -s.counters.exec_ms)
    for s in ordered:
        c = s.counters
        text = texts.get(s.queryid, "") if s.queryid is not None else ""
        mean = s.mean_exec_ms
        if mean is None and c.calls:
            mean = c.exec_ms / c.calls
        row: dict[str, Any] = {
            "queryid": s.queryid,
            "toplevel": s.toplevel,
            "user": s.user,
            "database": s.database,
            "query_hidden": s.hidden,
            "entries": s.entries,
            "query": text[:WHOLE_TEXT_LIMIT],
            "query_truncated": len(text) > WHOLE_TEXT_LIMIT,
            "calls": c.calls,
            "total_exec_ms": c.exec_ms,
            "mean_exec_ms": mean,
            "min_exec_ms": s.min_exec_ms,
            "max_exec_ms": s.max_exec_ms,
            "stddev_exec_ms": s.stddev_exec_ms,
            "rows": c.rows,
        }
        for name in COUNTER_FIELDS:
            if name in ("calls", "exec_ms", "rows"):
                continue
            row["total_plan_ms" if name == "plan_ms" else name] = getattr(c, name)
        row["stats_since"] = s.stats_since
        rows.append(row)
    return rows


def of(data: StatementsSnapshot) -> Report:
    reading = data.current

    def text_of(row: dict[str, Any]) -> str:
        if row["query_hidden"]:
            return f"<{row['entries']} statements hidden: needs pg_read_all_stats>"
        return one_line(row["query"], 200)

    columns = [
        ("QUERYID", lambda r: "" if r["queryid"] is None else str(r["queryid"])),
        ("USER", lambda r: one_line(r["user"] or "", 20)),
        ("DATABASE", lambda r: one_line(r["database"] or "", 20)),
        ("CALLS", lambda r: str(r["calls"])),
        ("TOTAL", lambda r: millis(r["total_exec_ms"])),
        ("MEAN", lambda r: millis(r["mean_exec_ms"])),
        ("ROWS", lambda r: str(r["rows"])),
        ("READ", lambda r: str(r["shared_blks_read"])),
        ("TEMP", lambda r: str(r["temp_blks_written"])),
        ("QUERY", text_of),
    ]
    notes = (data.texts_problem,) if data.texts_problem else ()
    return Report(reading.collected_at, report_rows(reading, data.texts), columns, notes)


async def report(source: Any) -> Report:
    """Raises:
    StatementsUnavailableError: pg_stat_statements cannot be read; says why.
    """
    activity = await source.poll()
    data = await source.collect("queries", activity, NEEDS, now=True)
    if isinstance(data, StatementsUnavailable):
        raise StatementsUnavailableError(f"{data.reason}. {data.remedy}")
    assert isinstance(data, StatementsSnapshot)
    return of(data)
