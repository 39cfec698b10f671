"""``--once servers``: one record per server watched, read once and all at the same time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pgtop.collectors.health import Status
from pgtop.collectors.servers import ServerRow
from pgtop.formats import duration
from pgtop.reports.base import Report, Row, text


def record(row: ServerRow) -> Row:
    """One server's record (figures None where it could not be read)."""
    figures = row.figures
    finding = row.finding
    return {
        "name": row.name,
        "host": row.host,
        "port": int(row.port) if row.port.isdigit() else None,
        "role": row.role or None,
        "upstream": figures.upstream if figures else None,
        "version": figures.version if figures else None,
        "connections": figures.connections if figures else None,
        "max_connections": figures.max_connections if figures else None,
        "active": figures.active if figures else None,
        "waiting": figures.waiting if figures else None,
        "lag_s": figures.lag_s if figures else None,
        "health": None if finding is None else finding.status.word,
        "health_summary": None
        if finding is None or finding.status <= Status.OK
        else finding.summary,
        "read_only": row.read_only,
        "status": row.status,
    }


def of(rows: Sequence[ServerRow]) -> Report:
    def lag(row: Row) -> str:
        return "" if row["lag_s"] is None else duration(row["lag_s"])

    columns = [
        ("NAME", text("name", 40)),
        ("HOST", text("host", 40)),
        ("PORT", text("port")),
        ("ROLE", text("role")),
        ("VERSION", text("version")),
        ("CONN", text("connections")),
        ("MAX", text("max_connections")),
        ("ACTIVE", text("active")),
        ("WAITING", text("waiting")),
        ("LAG", lag),
        ("HEALTH", text("health")),
        ("STATUS", text("status", 200)),
    ]
    records = [record(row) for row in rows]
    exit_code = 0 if any(row.ok for row in rows) else 3
    server = {"servers": len(records)}
    return Report(datetime.now().astimezone(), records, columns, exit_code=exit_code, server=server)


async def report(servers: Any) -> Report:
    """``servers``: a ``pgtop.servers.ServerSet``, every server read once."""
    await servers.read_all()
    return of([server.row(in_view=False, health=None) for server in servers.servers])
