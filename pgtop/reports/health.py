"""``--once health``: every Health check, worst first; the exit status says the worst."""

from __future__ import annotations

from typing import Any

from pgtop.collectors.health import UNITS, HealthData, Status
from pgtop.model import PoolsSnapshot
from pgtop.reports.base import Report, Row, text
from pgtop.text import one_line

EXIT_WARN = 8
"""``--once health``: the worst check is ``warn``."""
EXIT_CRIT = 9
"""``--once health``: the worst check is ``crit``."""


def health_rows(data: HealthData) -> list[Row]:
    return [
        {
            "check": f.check,
            "status": f.status.word,
            "summary": f.summary,
            "value": f.value,
            "warn": f.warn,
            "crit": f.crit,
            "unit": UNITS.get(f.check, ""),
            "since": f.since,
            "target": f.target.record() if f.target is not None else None,
        }
        for f in data.findings
    ]


def of(data: HealthData, server: dict[str, Any] | None = None) -> Report:
    columns = [
        ("STATUS", lambda row: str(row["status"]).upper()),
        ("CHECK", text("check", 24)),
        ("SUMMARY", lambda row: one_line(row["summary"], 300)),
    ]
    worst = data.worst()
    code = EXIT_CRIT if worst is Status.CRIT else EXIT_WARN if worst is Status.WARN else 0
    return Report(data.collected_at, health_rows(data), columns, exit_code=code, server=server)


async def report(source: Any) -> Report:
    activity = await source.poll()
    data = await source.collect("health", activity, None, now=True)
    assert isinstance(data, HealthData)
    if isinstance(activity, PoolsSnapshot):
        return of(data, {"software": "PgBouncer", "version": activity.version})
    return of(data)
